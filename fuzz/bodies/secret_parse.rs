//! `tokend::secrets::parse` (and `hint`, `hash`) on arbitrary UTF-8.
//!
//! The input is used twice: as a presented string, which must never panic and, when
//! accepted, must carry the checksum an independent re-implementation computes; and as the
//! raw material of a well-formed secret (prefix + 43 base62 digits + our own checksum),
//! which must be accepted with its kind while any one-character change must be refused.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/secret_parse.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.
use tokend::secrets::{self, SecretKind};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KINDS: [SecretKind; 3] = [SecretKind::Personal, SecretKind::Service, SecretKind::ClientSecret];

/// CRC32 of `body` as 6 big-endian base62 digits, written independently of src/secrets.rs.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; 6];
    for d in out.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    assert_eq!(n, 0, "a CRC32 always fits in 6 base62 digits");
    String::from_utf8(out.to_vec()).unwrap()
}

/// One fuzz input.
pub fn run(s: &str) {
    // 1. The string as presented.
    let parsed = secrets::parse(s);
    let hint = secrets::hint(s);
    assert!(hint.ends_with('…'));
    assert_eq!(secrets::hash(s).len(), 64);
    if let Ok(kind) = parsed {
        let prefix = kind.prefix();
        assert!(s.starts_with(prefix));
        assert_eq!(s.len(), prefix.len() + 43 + 6, "{s:?}");
        assert!(s[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric()), "{s:?}");
        let (body, check) = s.split_at(s.len() - 6);
        assert_eq!(checksum(body), check, "accepted with a checksum that does not regenerate: {s:?}");
        assert!(hint.starts_with(prefix));
    }

    // 2. A well-formed secret made from the input.
    let bytes = s.as_bytes();
    let Some((&sel, rest)) = bytes.split_first() else { return };
    let kind = KINDS[usize::from(sel) % 3];
    let mut secret = kind.prefix().to_string();
    secret.extend((0..43).map(|i| char::from(ALPHABET[usize::from(rest.get(i).copied().unwrap_or(0)) % 62])));
    let check = checksum(&secret);
    secret.push_str(&check);
    assert_eq!(secrets::parse(&secret), Ok(kind), "{secret:?}");
    // One changed character, position and replacement from the input.
    if rest.len() >= 2 {
        let pos = usize::from(rest[0]) % secret.len();
        let mut changed = secret.clone().into_bytes();
        let mut with = ALPHABET[usize::from(rest[1]) % 62];
        if with == changed[pos] {
            with = if with == b'0' { b'1' } else { b'0' };
        }
        changed[pos] = with;
        let changed = String::from_utf8(changed).unwrap();
        assert!(secrets::parse(&changed).is_err(), "one-character change accepted: {secret:?} -> {changed:?}");
    }
}
