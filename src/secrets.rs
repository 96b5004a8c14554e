//! API token and client secret format: `tkd_<kind>_` + base62(32 random bytes) + base62(CRC32).
//! Only the SHA-256 of a secret is ever stored; the hint is what listings show.
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_BYTES: usize = 32;
/// ceil(256 / log2(62)): 32 bytes always fit in 43 base62 digits.
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Personal,
    Service,
    ClientSecret,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::Personal => "tkd_pat_",
            SecretKind::Service => "tkd_sat_",
            SecretKind::ClientSecret => "tkd_cs_",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("unknown prefix")]
    Prefix,
    #[error("wrong length")]
    Length,
    #[error("invalid character")]
    Alphabet,
    #[error("checksum mismatch")]
    Checksum,
}

/// A freshly generated secret. `value` is shown once and then dropped.
pub struct NewSecret {
    pub value: String,
    pub hash: String,
    pub hint: String,
}

fn base62_fixed(bytes: &[u8], width: usize) -> String {
    // Repeated division of a big-endian number by 62; inputs are at most 32 bytes.
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn checksum(text: &str) -> String {
    base62_fixed(&crc32fast::hash(text.as_bytes()).to_be_bytes(), CHECK_LEN)
}

pub fn generate(kind: SecretKind) -> NewSecret {
    let mut raw = [0u8; RANDOM_BYTES];
    // The OS RNG failing is unrecoverable; ring only errors when getrandom does.
    SystemRandom::new().fill(&mut raw).expect("operating system RNG failed");
    let mut value = String::with_capacity(kind.prefix().len() + BODY_LEN + CHECK_LEN);
    value.push_str(kind.prefix());
    value.push_str(&base62_fixed(&raw, BODY_LEN));
    let check = checksum(&value);
    value.push_str(&check);
    NewSecret { hash: hash(&value), hint: hint(&value), value }
}

/// Checks a presented secret's form without touching storage; returns its kind.
pub fn parse(s: &str) -> Result<SecretKind, SecretError> {
    let kind = [SecretKind::Personal, SecretKind::Service, SecretKind::ClientSecret]
        .into_iter()
        .find(|k| s.starts_with(k.prefix()))
        .ok_or(SecretError::Prefix)?;
    let rest = &s[kind.prefix().len()..];
    if rest.len() != BODY_LEN + CHECK_LEN {
        return Err(SecretError::Length);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SecretError::Alphabet);
    }
    let (body, check) = s.split_at(s.len() - CHECK_LEN);
    if !bool::from(checksum(body).as_bytes().ct_eq(check.as_bytes())) {
        return Err(SecretError::Checksum);
    }
    Ok(kind)
}

/// Lowercase hex SHA-256: what the database stores and looks up.
pub fn hash(secret: &str) -> String {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in d.as_ref() {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// Non-secret recognisable prefix, e.g. `tkd_pat_Ab12…`.
pub fn hint(secret: &str) -> String {
    let cut = secret.find('_').and_then(|i| secret[i + 1..].find('_').map(|j| i + j + 2));
    let start = cut.unwrap_or(0);
    // Four characters on (four bytes for a real secret, which is ASCII), never half of one.
    let end = secret[start..].char_indices().nth(4).map_or(secret.len(), |(i, _)| start + i);
    format!("{}…", &secret[..end])
}

pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A random URL-safe identifier (client ids): not secret, just unguessable.
pub fn random_id(prefix: &str, bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    SystemRandom::new().fill(&mut raw).expect("operating system RNG failed");
    format!("{prefix}{}", base62_fixed(&raw, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_secrets_parse_and_hint() {
        for kind in [SecretKind::Personal, SecretKind::Service, SecretKind::ClientSecret] {
            let s = generate(kind);
            assert_eq!(parse(&s.value), Ok(kind));
            assert!(s.value.starts_with(kind.prefix()));
            assert_eq!(s.value.len(), kind.prefix().len() + BODY_LEN + CHECK_LEN);
            assert!(s.hint.starts_with(kind.prefix()) && s.hint.ends_with('…'));
            assert_eq!(s.hint.chars().count(), kind.prefix().len() + 5);
            assert_eq!(s.hash, hash(&s.value));
            assert_eq!(s.hash.len(), 64);
        }
    }

    #[test]
    fn rejects_bad_forms() {
        let s = generate(SecretKind::Personal).value;
        assert_eq!(parse(&s.replacen("tkd_pat_", "tkd_xxx_", 1)), Err(SecretError::Prefix));
        assert_eq!(parse(&s[..s.len() - 1]), Err(SecretError::Length));
        assert_eq!(parse(&format!("{}-", &s[..s.len() - 1])), Err(SecretError::Alphabet));
        assert_eq!(parse(""), Err(SecretError::Prefix));
    }

    #[test]
    fn hint_never_splits_a_character() {
        // Found by fuzz/fuzz_targets/secret_parse.rs: the cut was four bytes on, and
        // panicked inside a multi-byte character.
        assert_eq!(hint("tkd_pat_é_ü_ÄÖ€€"), "tkd_pat_é_ü_…");
        assert_eq!(hint("ab€"), "ab€…");
        assert_eq!(hint("x_y_€€€€€"), "x_y_€€€€…");
        assert_eq!(hint("tkd_pat_AbCdEf"), "tkd_pat_AbCd…");
        assert_eq!(hint("tkd_pat_Ab"), "tkd_pat_Ab…");
        assert_eq!(hint(""), "…");
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_rejected(pos in 0usize..57, ch in 0usize..62) {
            let s = generate(SecretKind::Personal).value;
            let pos = pos % s.len();
            let mut bytes = s.clone().into_bytes();
            let replacement = ALPHABET[ch];
            prop_assume!(bytes[pos] != replacement);
            bytes[pos] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(parse(&changed).is_err());
        }

        #[test]
        fn roundtrip(_seed in 0u8..255) {
            let s = generate(SecretKind::Service);
            prop_assert_eq!(parse(&s.value), Ok(SecretKind::Service));
        }
    }
}
