//! HTTP Basic client credentials, `tokend::http::oauth::decode_basic`.
//!
//! Two inputs from one: the bytes as a header value (never a panic; a non-Basic scheme is
//! `None`; every refusal is `invalid_client` with the Basic challenge; what is accepted
//! re-encodes to credentials that decode to the same pair), and the bytes as a client id
//! and secret, encoded as RFC 6749 §2.3.1 says a client does, which must decode exactly.
//!
//! The body is `fuzz/bodies/basic_decode.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/basic_decode.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
