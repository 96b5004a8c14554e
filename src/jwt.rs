//! RFC 9068 access tokens: the claims, issuing, and verification against the key ring.
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, KeyRing, KeySet};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub roles: Vec<String>,
    pub org: String,
    /// `user` | `service_account` | `app`
    pub acct: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The login session of an interactive token (logout and password changes end it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The principal's epoch at mint: a later bump (secret regeneration, reset, disable,
    /// sign-out-everywhere) ends this token at the management API and introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ep: Option<i64>,
}

impl AccessClaims {
    pub fn interactive(&self) -> bool {
        self.amr.as_ref().is_some_and(|a| a.iter().any(|m| m == "pwd"))
    }
}

pub fn issue(keys: &KeyRing, claims: &AccessClaims, now: i64) -> Result<String, KeyError> {
    let body = serde_json::to_vec(claims).map_err(|e| KeyError::Refused(e.to_string()))?;
    keys.sign(&body, now)
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token type")]
    Type,
    #[error("unknown key")]
    UnknownKey,
    #[error("invalid signature or claims")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
}

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: i64 = 30;

/// The order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// (n − 1) / 2 for P-256: the largest low-S value.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a fixed-size (r ‖ s) P-256 signature has its high-S twin's form: (r, n − s) is
/// equally valid, so accepting both would let anyone mint a second encoding of a token.
pub fn es256_high_s(sig: &[u8]) -> bool {
    sig.len() == 64 && sig[32..] > P256_HALF_N[..]
}

/// Turns a fixed-size P-256 signature into its low-S form (s := n − s when s > n/2); ring
/// signs with either.
pub fn es256_low_s(sig: &mut [u8]) {
    if !es256_high_s(sig) {
        return;
    }
    let s = &mut sig[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = P256_N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        s[i] = (d + 256 * borrow) as u8;
    }
}

/// Refuses an ES256 token whose signature is in high-S form (`KeyRing::sign` emits low-S
/// only; a token signed before that rule is refused half the time, within its short TTL).
fn refuse_high_s(token: &str, alg: jsonwebtoken::Algorithm) -> Result<(), VerifyError> {
    use base64::Engine;
    if alg != jsonwebtoken::Algorithm::ES256 {
        return Ok(());
    }
    let sig = token.rsplit('.').next().unwrap_or_default();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).map_err(|_| VerifyError::Malformed)?;
    if es256_high_s(&sig) {
        return Err(VerifyError::Invalid);
    }
    Ok(())
}

/// Verifies signature (the algorithm is the key's own: never `none`, never HMAC),
/// `typ`, `iss`, `aud`, `exp` and `nbf` against the supplied clock.
pub fn verify(
    set: &KeySet,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
    now: i64,
) -> Result<AccessClaims, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    match header.typ.as_deref() {
        Some("at+jwt") | Some("application/at+jwt") => {}
        _ => return Err(VerifyError::Type),
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let key = set.find(&kid).ok_or(VerifyError::UnknownKey)?;
    if header.alg != key.meta.alg.jsonwebtoken() {
        return Err(VerifyError::Invalid);
    }
    refuse_high_s(token, header.alg)?;
    let mut v = jsonwebtoken::Validation::new(key.meta.alg.jsonwebtoken());
    // Time checks use our clock below, not the library's.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims = ["iss", "sub", "aud", "exp"].iter().map(|s| s.to_string()).collect();
    v.set_issuer(&[issuer]);
    match audience {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v).map_err(|_| VerifyError::Invalid)?;
    let c = data.claims;
    // NumericDates before 1970 are refused, as `verify_with_jwks` (jsonwebtoken reads them
    // as u64) does: both verifiers must give the same answer for the same token.
    if c.exp < 0 || c.nbf < 0 {
        return Err(VerifyError::Invalid);
    }
    // Saturating: a signed `exp` or `nbf` at the ends of the i64 range must not overflow.
    if c.exp.saturating_add(LEEWAY) <= now {
        return Err(VerifyError::Expired);
    }
    if c.nbf.saturating_sub(LEEWAY) > now {
        return Err(VerifyError::NotYetValid);
    }
    Ok(c)
}

/// Verification for resource servers and the CLI: against a JWKS document (bytes), with the
/// algorithm taken from the matching key, never from the token alone.
pub fn verify_with_jwks(
    jwks: &[u8],
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, VerifyError> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(jwks).map_err(|_| VerifyError::UnknownKey)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if !matches!(header.typ.as_deref(), Some("at+jwt") | Some("application/at+jwt")) {
        return Err(VerifyError::Type);
    }
    let jwk = header.kid.as_deref().and_then(|k| set.find(k)).ok_or(VerifyError::UnknownKey)?;
    let alg = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        _ => return Err(VerifyError::UnknownKey),
    };
    if header.alg != alg {
        return Err(VerifyError::Invalid);
    }
    refuse_high_s(token, alg)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| VerifyError::UnknownKey)?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.leeway = LEEWAY as u64;
    // jsonwebtoken skips `nbf` unless asked; a token must not be usable before it.
    v.validate_exp = true;
    v.validate_nbf = true;
    v.required_spec_claims = ["iss", "sub", "aud", "exp", "nbf"].iter().map(|s| s.to_string()).collect();
    v.set_issuer(&[issuer]);
    match audience {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    jsonwebtoken::decode::<AccessClaims>(token, &key, &v).map(|d| d.claims).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
        jsonwebtoken::errors::ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        _ => VerifyError::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Alg, KeyRing};

    const ISS: &str = "http://127.0.0.1:8080";
    const AUD: &str = "https://api.example";

    fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn claims(nbf: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "u1".into(),
            aud: AUD.into(),
            exp,
            iat: nbf,
            nbf,
            jti: "j1".into(),
            client_id: "c1".into(),
            scope: String::new(),
            roles: vec!["org:member".into()],
            org: "o1".into(),
            acct: "user".into(),
            amr: None,
            sid: None,
            ep: None,
        }
    }

    /// n − s of a compact token's signature (its high-S twin when s is low).
    fn twin(token: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig = b64.decode(sig).unwrap();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = P256_N[i] as i16 - sig[32 + i] as i16 - borrow;
            borrow = i16::from(d < 0);
            sig[32 + i] = (d + 256 * borrow) as u8;
        }
        format!("{head}.{}", b64.encode(sig))
    }

    #[test]
    fn es256_signatures_are_low_s_and_high_s_twins_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        let ring = KeyRing::open(dir.path(), Alg::ES256, 0, t - 10).unwrap();
        let jwks = ring.set().jwks_body.to_vec();
        for _ in 0..40 {
            let tok = issue(&ring, &claims(t, t + 600), t).unwrap();
            assert!(verify(&ring.set(), &tok, ISS, Some(AUD), t).is_ok(), "our own tokens are low-S");
            let high = twin(&tok);
            assert_ne!(high, tok);
            // The twin is a valid ECDSA signature: only the rule refuses it.
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&jwks).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
            let (msg, sig) = high.rsplit_once('.').unwrap();
            assert!(jsonwebtoken::crypto::verify(sig, msg.as_bytes(), &key, jsonwebtoken::Algorithm::ES256).unwrap());
            assert_eq!(verify(&ring.set(), &high, ISS, Some(AUD), t), Err(VerifyError::Invalid));
            assert_eq!(verify_with_jwks(&jwks, &high, ISS, Some(AUD)), Err(VerifyError::Invalid));
        }
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&P256_HALF_N);
        assert!(!es256_high_s(&sig));
        sig[63] += 1;
        assert!(es256_high_s(&sig));
        es256_low_s(&mut sig);
        assert!(!es256_high_s(&sig));
    }

    #[test]
    fn verify_with_jwks_checks_nbf_exp_iss_and_aud() {
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        for alg in [Alg::ES256, Alg::EdDSA] {
            let sub = dir.path().join(alg.as_str());
            let ring = KeyRing::open(&sub, alg, 0, t - 10).unwrap();
            let jwks = ring.set().jwks_body.to_vec();
            let sign = |c: &AccessClaims| issue(&ring, c, t).unwrap();

            let ok = sign(&claims(t, t + 600));
            assert_eq!(verify_with_jwks(&jwks, &ok, ISS, Some(AUD)).unwrap(), claims(t, t + 600));
            // Within the leeway on both sides.
            let skewed = sign(&claims(t + LEEWAY / 2, t + 600));
            assert!(verify_with_jwks(&jwks, &skewed, ISS, Some(AUD)).is_ok());

            let future = sign(&claims(t + 3600, t + 7200));
            assert_eq!(verify_with_jwks(&jwks, &future, ISS, Some(AUD)), Err(VerifyError::NotYetValid));
            let beyond_leeway = sign(&claims(t + LEEWAY + 60, t + 7200));
            assert_eq!(verify_with_jwks(&jwks, &beyond_leeway, ISS, Some(AUD)), Err(VerifyError::NotYetValid));

            let expired = sign(&claims(t - 7200, t - LEEWAY - 60));
            assert_eq!(verify_with_jwks(&jwks, &expired, ISS, Some(AUD)), Err(VerifyError::Expired));

            assert_eq!(verify_with_jwks(&jwks, &ok, ISS, Some("https://other.example")), Err(VerifyError::Invalid));
            assert_eq!(verify_with_jwks(&jwks, &ok, "http://elsewhere:8080", Some(AUD)), Err(VerifyError::Invalid));
        }
    }

    #[test]
    fn verify_survives_extreme_times() {
        // Found by fuzz/fuzz_targets/jwt_verify.rs: `exp + LEEWAY` and `nbf - LEEWAY`
        // overflowed (a panic with overflow checks, and with wrapping an exp at the end of
        // the range read as expired).
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        let ring = KeyRing::open(dir.path(), Alg::EdDSA, 0, t - 10).unwrap();
        let set = ring.set();
        let forever = issue(&ring, &claims(0, i64::MAX), t).unwrap();
        assert_eq!(verify(&set, &forever, ISS, Some(AUD), t).unwrap(), claims(0, i64::MAX));
        // A negative nbf: refused by both verifiers alike (jsonwebtoken reads it as u64).
        let jwks = set.jwks_body.to_vec();
        let before_1970 = issue(&ring, &claims(-1, t + 600), t).unwrap();
        assert_eq!(verify(&set, &before_1970, ISS, Some(AUD), t), Err(VerifyError::Invalid));
        assert!(verify_with_jwks(&jwks, &before_1970, ISS, Some(AUD)).is_err());
        let never = issue(&ring, &claims(i64::MAX, i64::MAX), t).unwrap();
        assert_eq!(verify(&set, &never, ISS, Some(AUD), t), Err(VerifyError::NotYetValid));
        // A negative exp is not the unsigned NumericDate jsonwebtoken requires.
        let long_ago = issue(&ring, &claims(i64::MIN, i64::MIN), t).unwrap();
        assert_eq!(verify(&set, &long_ago, ISS, Some(AUD), t), Err(VerifyError::Invalid));
    }

    #[test]
    fn verify_with_jwks_takes_the_alg_from_the_jwk() {
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        let ring = KeyRing::open(dir.path(), Alg::ES256, 0, t - 10).unwrap();
        let jwks = ring.set().jwks_body.to_vec();
        let token = issue(&ring, &claims(t, t + 600), t).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let kid = ring.set().keys[0].meta.kid.clone();
        use base64::Engine;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        // Same kid and signature, header claiming another algorithm: refused.
        for alg in ["EdDSA", "RS256", "HS256", "none"] {
            let forged = format!("{}.{rest}", b64(serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid})));
            assert!(verify_with_jwks(&jwks, &forged, ISS, Some(AUD)).is_err(), "{alg}");
        }
        // A JWT that is not an access token.
        let plain = format!("{}.{rest}", b64(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid})));
        assert_eq!(verify_with_jwks(&jwks, &plain, ISS, Some(AUD)), Err(VerifyError::Type));
    }
}
