//! The key directory's file parser, `tokend::keys::parse_key_pem`: UTF-8, one PEM
//! `PRIVATE KEY` block, PKCS#8 DER of ES256, EdDSA or RS256 (ring's parsers underneath).
//!
//! Input: the first byte picks the algorithm a status file would name (or none, and the
//! loader detects it); the rest is the file. An accepted key must give a public JWK, a
//! stable thumbprint and a verification key, as the loader would build.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/key_file.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.
use tokend::keys::{parse_key_pem, Alg};

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&sel, file)) = data.split_first() else { return };
    let alg = match sel % 4 {
        0 => None,
        1 => Some(Alg::ES256),
        2 => Some(Alg::EdDSA),
        _ => Some(Alg::RS256),
    };
    let Ok(key) = parse_key_pem("fuzz.pem", file, alg) else { return };
    if let Some(a) = alg {
        assert_eq!(key.alg, a);
    }
    let jwk = key.public_jwk();
    assert_eq!(jwk["alg"].as_str(), Some(key.alg.as_str()));
    let kid = key.thumbprint();
    assert_eq!(kid.len(), 43);
    assert_eq!(kid, key.thumbprint());
    key.decoding_key().expect("a parsed key's own JWK does not make a verification key");
    // The same file, its algorithm now known (as after the loader wrote a status file).
    let again = parse_key_pem("fuzz.pem", file, Some(key.alg)).expect("refused with its own algorithm");
    assert_eq!(again.thumbprint(), kid);
}
