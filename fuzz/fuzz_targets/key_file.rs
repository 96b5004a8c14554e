//! The key directory's file parser, `tokend::keys::parse_key_pem`: UTF-8, one PEM
//! `PRIVATE KEY` block, PKCS#8 DER of ES256, EdDSA or RS256 (ring's parsers underneath).
//!
//! Input: the first byte picks the algorithm a status file would name (or none, and the
//! loader detects it); the rest is the file. An accepted key must give a public JWK, a
//! stable thumbprint and a verification key, as the loader would build.
//!
//! The body is `fuzz/bodies/key_file.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/key_file.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
