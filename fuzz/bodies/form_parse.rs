//! The token endpoint's strict `application/x-www-form-urlencoded` parser,
//! `tokend::http::oauth::parse_form_body`.
//!
//! Input: the Content-Type value up to the first `\n` (`""` when it is not UTF-8, as for a
//! header that is not visible ASCII), then the body. Checked against the `form_urlencoded`
//! crate (what serde_urlencoded uses): an accepted body is exactly its pairs, each name once;
//! a refused body with the right type has a repeated name or a part that is not UTF-8.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/form_parse.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.
use std::collections::HashMap;
use tokend::http::oauth::parse_form_body;

/// One fuzz input.
pub fn run(data: &[u8]) {
    let (ct, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let ct = std::str::from_utf8(ct).unwrap_or("");
    let result = parse_form_body(ct, body);
    let type_ok = ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded");
    if !type_ok {
        let e = result.expect_err("accepted a body that is not application/x-www-form-urlencoded");
        assert_eq!(e.error, "invalid_request");
        return;
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    match result {
        Ok(map) => {
            assert_eq!(map.len(), pairs.len(), "a repeated name was accepted: {body:?}");
            let parsed: HashMap<String, String> = map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let reference: HashMap<String, String> = pairs.into_iter().collect();
            assert_eq!(parsed, reference, "{body:?}");
        }
        Err(e) => {
            assert_eq!(e.error, "invalid_request");
            let mut seen = std::collections::HashSet::new();
            let repeated = pairs.iter().any(|(k, _)| !seen.insert(k.clone()));
            // form_urlencoded decodes lossily: U+FFFD where the strict parser refuses.
            let lossy = pairs.iter().any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'));
            assert!(repeated || lossy, "refused a valid body: {body:?}: {}", e.description);
        }
    }
}
