//! HTTP Basic client credentials, `tokend::http::oauth::decode_basic`.
//!
//! Two inputs from one: the bytes as a header value (never a panic; a non-Basic scheme is
//! `None`; every refusal is `invalid_client` with the Basic challenge; what is accepted
//! re-encodes to credentials that decode to the same pair), and the bytes as a client id
//! and secret, encoded as RFC 6749 §2.3.1 says a client does, which must decode exactly.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/basic_decode.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.
use base64::Engine;
use tokend::http::oauth::decode_basic;

fn encode(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match decode_basic(&text) {
        Ok(None) => {
            let scheme = text.split_once(' ').map(|(s, _)| s);
            assert!(!scheme.is_some_and(|s| s.eq_ignore_ascii_case("basic")), "{text:?}");
        }
        Ok(Some((id, secret))) => {
            let again = decode_basic(&encode(&id, &secret)).expect("re-encoded credentials refused");
            assert_eq!(again, Some((id, secret)), "{text:?}");
        }
        Err(e) => {
            assert_eq!(e.error, "invalid_client");
            assert!(e.basic, "a Basic refusal must carry the challenge");
        }
    }
    // The same bytes as credentials: the id is everything before the first 0 byte.
    let (id, secret) = match text.split_once('\0') {
        Some((a, b)) => (a, b),
        None => (&*text, ""),
    };
    let header = encode(id, secret);
    assert_eq!(decode_basic(&header).expect("well-formed credentials refused"), Some((id.into(), secret.into())));
    // The scheme name is case-insensitive and the credentials may carry surrounding spaces.
    let shouted = format!("BASIC  {} ", &header["Basic ".len()..]);
    assert_eq!(decode_basic(&shouted).expect("BASIC refused"), Some((id.into(), secret.into())));
}
