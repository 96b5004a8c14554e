//! The token endpoint's strict `application/x-www-form-urlencoded` parser,
//! `tokend::http::oauth::parse_form_body`.
//!
//! Input: the Content-Type value up to the first `\n` (`""` when it is not UTF-8, as for a
//! header that is not visible ASCII), then the body. Checked against the `form_urlencoded`
//! crate (what serde_urlencoded uses): an accepted body is exactly its pairs, each name once;
//! a refused body with the right type has a repeated name or a part that is not UTF-8.
//!
//! The body is `fuzz/bodies/form_parse.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/form_parse.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
