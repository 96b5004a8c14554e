//! `tokend::secrets::parse` (and `hint`, `hash`) on arbitrary UTF-8.
//!
//! The input is used twice: as a presented string, which must never panic and, when
//! accepted, must carry the checksum an independent re-implementation computes; and as the
//! raw material of a well-formed secret (prefix + 43 base62 digits + our own checksum),
//! which must be accepted with its kind while any one-character change must be refused.
//!
//! The body is `fuzz/bodies/secret_parse.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/secret_parse.rs"]
mod body;

fuzz_target!(|s: &str| body::run(s));
