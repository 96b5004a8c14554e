//! Access-token verification: `tokend::jwt::verify_with_jwks` (resource servers, the CLI)
//! and the server's own `tokend::jwt::verify`.
//!
//! The first input byte picks the mode.
//! - Even: raw. The rest splits at NUL bytes into JWKS bytes, token, issuer and audience
//!   (absent: none). The token is verified against that JWKS and against the fixed keys.
//! - Odd: built. The rest drives `arbitrary` to build a compact JWS from fuzzed header and
//!   payload fields (each the right value, absent, or any JSON value; the first variant of
//!   every choice is the right one, so a short input is a valid token) and either a real
//!   signature by one of the fixed keys, a corrupted one, or fuzzed bytes. The fixed keys:
//!   an ES256 and an EdDSA key generated once per process by `KeyRing::open` in a temporary
//!   key directory, and an RS256 key (generating one takes half a minute in this build, so
//!   it is the test-only key below, dropped into the directory as an operator would). Checks:
//!   nothing verifies without a real signature, with a header algorithm other than the key's,
//!   or with a wrong `typ`, `iss`, `aud`, `exp` or `nbf`; and both verifiers agree (away
//!   from the one-second boundaries where their clocks are read at different times).
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/jwt_verify.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};
use tokend::jwt::{verify, verify_with_jwks, AccessClaims, LEEWAY};
use tokend::keys::{Alg, KeyRing, KeySet};

/// A throwaway RSA key for this fuzz target only (never used anywhere else).
const RSA_TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCvTXZVqGz1rP3W\n\
nWSu73COqET4cDoez9AzTqqSLbrsO0DqaU1BmsI2hzCkJ6xMKhrf/98F9XD1MA+t\n\
pxbEKpxiNPoCXeMEKceXjZUprvlMBNLNwaoiLDARXIo1AixouSHq/NKVxexnHIOj\n\
69bqQv4+H6m9RSkVCGdK4cxjvFNXIKto7zWUzY8EPdlw4advRMyF9SzxvxGavKQK\n\
OKJdgCW/YGJ2/dtm7WtYxivVCNq9iX2oCOLjSuwsnyImoYczmN7eU7WEQIwQFeQ/\n\
19eCbUsNPLp9beW/Q6/md2/dFhpT8SHthAZ94VbN7LAWY57tX8sYQ5m8U8FC7IjB\n\
jOc6rHMvAgMBAAECggEABLAqT/7McILghFLP6dXBdC86g6JiC4eR5oKzZmwOqa6p\n\
UnDf02H+JlMrO9ihGlBYnlD2Ipn+cVrdsHkyz1WMZRv266/zGEi9wRHU7A51NaaT\n\
X1P55tFjtQh9Mbm4fPx71GWlLsLiSvJPmvH9sg957n4OSLTcH7yKdqLfQnOQ5Fg8\n\
oblSX5MmeQ4W+tdtqiQ/hFKD1LTNQAIEgN5jlrfewSOW0y4+2XlP2oUWQdU6LZOL\n\
GKwQWgaUfdg8hG+l7A0X1KmfHQBNoPzOYnga7OCOGV3mbEACOKp0o/MrZwDAawDZ\n\
LWDa9d1aoIShGegIUlV/qj8Wn5Q2sI2nLOhYly9+8QKBgQDi7jXzV4ZSCJn5NRr9\n\
WxWlFbqPbkREFV2iYTdB68Fle1VkTv+cBiqHHjjslPQ7KNP5fCcLkE+3jzjuyZXz\n\
VXuV2ULv6lqTqBwr8HV88SrHghWt7hlJklK9iR0rVVe4CBRPd4eKqaW9ApLl13jZ\n\
YpvVUKhXNu62egidTk/TDzR/wwKBgQDFwjQ6ziUmXKQptpqsk3d03ayemeGKT6El\n\
qDGCwOScFuhuBojO80mo859XwH8mhfLcp3oViLGcjL0zjq65/D/32Ch3gzKcMqXG\n\
09cyA1zCjo+QSXMFDDi3ZK77R1slRxnZojCgoRCWHN1/SSuwEOCvm/g5RTMMnsYp\n\
l1ZfUI5UJQKBgQDEFPjhDxus/mms/8oWaQHG54OQM8Mg4SVLDZ1lhIRTX8JlLi2H\n\
b3yHzAF7yylNhPXEeRZz03pOLZ8QFXdQDuj+jgBcta8WLwhInzmlf+1q/mglJbsL\n\
6zc7NqLRsqhdB/4kvC+ODRB8xSCRISH3FFF6fHs5AOo7Gi8fXW9z+4ttaQKBgQDE\n\
tWFIoScY2ou8plOCmAj56Uo8VKqg7oZHs97TxdVgYfT/BGbvG9bIRNTZ77NKeXDT\n\
BZANfXPWWbQVZbbtbzmd6ZiPEKS19Dcr6ColKG0LZczt4/GSMs7ztSXM8vR5xxiy\n\
f39JOA0MlFfKtdjMAG3OoCEvrmKSChjo5A1ZMALzNQKBgBYCHA+lmI6UwFo+JWiN\n\
dX7w3IisUQ/KQLD/CVRu6uq2TzVUpOXAhc0k+cDOt3+9BVb93jGoY67rFrNXL5O4\n\
d7lYKk3js2nxvnAydY4/LGe3YxLWsJSoQB/jB0CFF9dnL3WDwGukOioqxrXEQa6P\n\
dbP3XSwK16voqtARimC7Ai3e\n\
-----END PRIVATE KEY-----\n\
";

const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";

enum Signer {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

struct Fixed {
    set: Arc<KeySet>,
    jwks: Vec<u8>,
    /// (kid, alg, private key) of each key of `set`.
    keys: Vec<(String, Alg, Signer)>,
    rng: SystemRandom,
    _dir: tempfile::TempDir,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One key directory holding an ES256 and an EdDSA key, each made by `KeyRing::open` in
/// a directory of its own and copied over, and the RS256 test key without a status file.
fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let all = dir.path().join("all");
        std::fs::create_dir(&all).unwrap();
        let t = now() - 100;
        write_private(&all.join("rsa-test.pem"), RSA_TEST_KEY.as_bytes());
        for alg in [Alg::ES256, Alg::EdDSA] {
            let one = dir.path().join(alg.as_str());
            KeyRing::open(&one, alg, 0, t).unwrap();
            for e in std::fs::read_dir(&one).unwrap() {
                let p = e.unwrap().path();
                std::fs::copy(&p, all.join(p.file_name().unwrap())).unwrap();
            }
        }
        let ring = KeyRing::open(&all, Alg::ES256, 0, t).unwrap();
        let set = ring.set();
        assert_eq!(set.keys.len(), 3);
        let rng = SystemRandom::new();
        let keys = set
            .keys
            .iter()
            .map(|k| {
                let file = match k.meta.alg {
                    Alg::RS256 => all.join("rsa-test.pem"),
                    _ => all.join(format!("{}.pem", k.meta.kid)),
                };
                let pem = pem::parse(std::fs::read(file).unwrap()).unwrap();
                let der = pem.contents();
                let s = match k.meta.alg {
                    Alg::ES256 => Signer::Ec(
                        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).unwrap(),
                    ),
                    Alg::EdDSA => Signer::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).unwrap()),
                    Alg::RS256 => Signer::Rsa(RsaKeyPair::from_pkcs8(der).unwrap()),
                };
                (k.meta.kid.clone(), k.meta.alg, s)
            })
            .collect();
        Fixed { jwks: set.jwks_body.to_vec(), set, keys, rng, _dir: dir }
    })
}

/// A key file as the key directory requires it: mode 0600.
fn write_private(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

impl Fixed {
    fn sign(&self, i: usize, msg: &[u8]) -> Vec<u8> {
        match &self.keys[i].2 {
            Signer::Ec(k) => {
                // Low-S, as tokend signs (high-S twins are refused).
                let mut sig = k.sign(&self.rng, msg).unwrap().as_ref().to_vec();
                tokend::jwt::es256_low_s(&mut sig);
                sig
            }
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut buf = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut buf).unwrap();
                buf
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Object(Vec<(String, Scalar)>),
}

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => json!(b),
        Scalar::Int(i) => json!(i),
        Scalar::Uint(u) => json!(u),
        Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Scalar::Str(s) => json!(s),
    }
}

fn value(j: &Json) -> Value {
    match j {
        Json::Scalar(s) => scalar(s),
        Json::Array(v) => Value::Array(v.iter().map(scalar).collect()),
        Json::Object(v) => Value::Object(v.iter().map(|(k, s)| (k.clone(), scalar(s))).collect()),
    }
}

/// A claim or header field: left out, the value a good token has, or anything.
#[derive(Arbitrary, Debug)]
enum Field {
    Good,
    Absent,
    Any(Json),
}

/// `exp`, `nbf`, `iat`: also seconds from now, to reach both sides of every check.
#[derive(Arbitrary, Debug)]
enum Time {
    Good,
    Absent,
    FromNow(i32),
    At(i64),
    /// Within 255 seconds of the end (true) or start of the i64 range.
    Extreme(bool, u8),
    Any(Json),
}

#[derive(Arbitrary, Debug)]
enum AlgName {
    /// The signing key's own algorithm.
    Key,
    ES256,
    EdDSA,
    RS256,
    HS256,
    None,
    Any(Json),
    Absent,
}

#[derive(Arbitrary, Debug)]
enum Kid {
    /// The signing key's kid.
    Key,
    /// Another fixed key's kid.
    Other(u8),
    Any(Json),
    Absent,
}

#[derive(Arbitrary, Debug)]
enum Sig {
    Real,
    /// A real signature with one bit flipped.
    Flipped(u16),
    /// A real signature, truncated.
    Cut(u16),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Built {
    /// Which fixed key signs (index mod 3).
    key: u8,
    alg: AlgName,
    typ: Field,
    kid: Kid,
    header_extra: Vec<(String, Json)>,
    iss: Field,
    sub: Field,
    aud: Field,
    exp: Time,
    nbf: Time,
    iat: Time,
    jti: Field,
    client_id: Field,
    scope: Field,
    roles: Field,
    org: Field,
    acct: Field,
    amr: Field,
    sid: Field,
    ep: Field,
    payload_extra: Vec<(String, Json)>,
    /// Instead of the JSON object above: these bytes as the payload.
    raw_payload: Option<Vec<u8>>,
    sig: Sig,
    /// 0: base64url without padding (the right one); 1: with padding; 2: standard alphabet.
    b64: u8,
    /// Appended to the token as is.
    tail: Option<String>,
    /// Verify with the audience (else without).
    with_aud: bool,
}

fn set_field(obj: &mut Map<String, Value>, name: &str, f: &Field, good: Value) {
    match f {
        Field::Absent => {}
        Field::Good => {
            obj.insert(name.into(), good);
        }
        Field::Any(j) => {
            obj.insert(name.into(), value(j));
        }
    }
}

fn set_time(obj: &mut Map<String, Value>, name: &str, t: &Time, good: i64, now: i64) {
    let v = match t {
        Time::Absent => return,
        Time::Good => json!(good),
        Time::FromNow(d) => json!(now + i64::from(*d)),
        Time::At(a) => json!(a),
        Time::Extreme(end, k) => json!(if *end { i64::MAX - i64::from(*k) } else { i64::MIN + i64::from(*k) }),
        Time::Any(j) => value(j),
    };
    obj.insert(name.into(), v);
}

fn check_raw(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let jwks = parts.next().unwrap_or_default();
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let issuer = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let audience = parts.next().map(String::from_utf8_lossy);
    let _ = verify_with_jwks(jwks, &token, &issuer, audience.as_deref());
    // Keys generated in this process never signed anything the fuzzer can have seen.
    let f = fixed();
    assert!(verify_with_jwks(&f.jwks, &token, &issuer, audience.as_deref()).is_err(), "{token:?}");
    assert!(verify(&f.set, &token, &issuer, audience.as_deref(), now()).is_err(), "{token:?}");
}

fn check_built(b: Built) {
    let f = fixed();
    let now = now();
    let ki = usize::from(b.key) % f.keys.len();
    let (kid, alg, _) = &f.keys[ki];

    let mut header = Map::new();
    for (k, v) in &b.header_extra {
        header.insert(k.clone(), value(v));
    }
    let mut header_alg_is_key = false;
    match &b.alg {
        AlgName::Key => {
            header.insert("alg".into(), json!(alg.as_str()));
            header_alg_is_key = true;
        }
        AlgName::ES256 => drop(header.insert("alg".into(), json!("ES256"))),
        AlgName::EdDSA => drop(header.insert("alg".into(), json!("EdDSA"))),
        AlgName::RS256 => drop(header.insert("alg".into(), json!("RS256"))),
        AlgName::HS256 => drop(header.insert("alg".into(), json!("HS256"))),
        AlgName::None => drop(header.insert("alg".into(), json!("none"))),
        AlgName::Any(j) => drop(header.insert("alg".into(), value(j))),
        AlgName::Absent => drop(header.remove("alg")),
    }
    header_alg_is_key |= header.get("alg").and_then(Value::as_str) == Some(alg.as_str());
    set_field(&mut header, "typ", &b.typ, json!("at+jwt"));
    match &b.kid {
        Kid::Key => drop(header.insert("kid".into(), json!(kid))),
        Kid::Other(i) => drop(header.insert("kid".into(), json!(f.keys[usize::from(*i) % f.keys.len()].0))),
        Kid::Any(j) => drop(header.insert("kid".into(), value(j))),
        Kid::Absent => drop(header.remove("kid")),
    }
    let typ_ok = matches!(header.get("typ").and_then(Value::as_str), Some("at+jwt" | "application/at+jwt"));
    let kid_is_key = header.get("kid").and_then(Value::as_str) == Some(kid.as_str());

    let mut claims = Map::new();
    for (k, v) in &b.payload_extra {
        claims.insert(k.clone(), value(v));
    }
    set_field(&mut claims, "iss", &b.iss, json!(ISS));
    set_field(&mut claims, "sub", &b.sub, json!("u1"));
    set_field(&mut claims, "aud", &b.aud, json!(AUD));
    set_time(&mut claims, "exp", &b.exp, now + 600, now);
    set_time(&mut claims, "nbf", &b.nbf, now - 10, now);
    set_time(&mut claims, "iat", &b.iat, now - 10, now);
    set_field(&mut claims, "jti", &b.jti, json!("j1"));
    set_field(&mut claims, "client_id", &b.client_id, json!("c1"));
    set_field(&mut claims, "scope", &b.scope, json!("read"));
    set_field(&mut claims, "roles", &b.roles, json!(["org:member"]));
    set_field(&mut claims, "org", &b.org, json!("o1"));
    set_field(&mut claims, "acct", &b.acct, json!("user"));
    set_field(&mut claims, "amr", &b.amr, json!(["pwd"]));
    set_field(&mut claims, "sid", &b.sid, json!("s1"));
    set_field(&mut claims, "ep", &b.ep, json!(1));

    let enc = |bytes: &[u8]| match b.b64 % 3 {
        0 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        1 => base64::engine::general_purpose::URL_SAFE.encode(bytes),
        _ => base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    let payload = match &b.raw_payload {
        Some(raw) => raw.clone(),
        None => serde_json::to_vec(&Value::Object(claims)).unwrap(),
    };
    let signing_input = format!("{}.{}", enc(Value::Object(header).to_string().as_bytes()), enc(&payload));
    let real = f.sign(ki, signing_input.as_bytes());
    let (sig, sig_real) = match &b.sig {
        Sig::Real => (real, true),
        Sig::Flipped(bit) => {
            let mut s = real;
            let i = usize::from(*bit) % (s.len() * 8);
            s[i / 8] ^= 1 << (i % 8);
            (s, false)
        }
        Sig::Cut(n) => {
            let mut s = real;
            s.truncate(usize::from(*n) % s.len());
            (s, false)
        }
        // Nothing the fuzzer makes is a signature by a key generated in this process.
        Sig::Bytes(v) => (v.clone(), false),
    };
    let mut token = format!("{signing_input}.{}", enc(&sig));
    if let Some(t) = &b.tail {
        token.push_str(t);
    }
    let sig_real = sig_real && b.tail.as_ref().is_none_or(|t| t.is_empty());
    let audience = b.with_aud.then_some(AUD);

    let server = verify(&f.set, &token, ISS, audience, now);
    let jwks = verify_with_jwks(&f.jwks, &token, ISS, audience);

    for (who, r) in [("verify", &server), ("verify_with_jwks", &jwks)] {
        let Ok(c) = r else { continue };
        let c: &AccessClaims = c;
        assert!(sig_real, "{who} accepted a token without a real signature: {token}");
        assert!(header_alg_is_key, "{who} accepted a header algorithm other than the key's: {token}");
        assert!(kid_is_key, "{who} accepted a kid other than the signing key's: {token}");
        assert!(typ_ok, "{who} accepted a typ other than at+jwt: {token}");
        assert_eq!(c.iss, ISS, "{who}: {token}");
        if b.with_aud {
            assert_eq!(c.aud, AUD, "{who}: {token}");
        }
        assert!(c.exp.saturating_add(LEEWAY) >= now, "{who} accepted an expired token: {token}");
        assert!(c.nbf.saturating_sub(LEEWAY) <= now + 1, "{who} accepted a token before its nbf: {token}");
    }
    if let (Ok(a), Ok(b)) = (&server, &jwks) {
        assert_eq!(a, b);
    }
    // The two verifiers read the clock at different moments and draw the expiry line one
    // second apart; away from those lines they must agree.
    let claim =
        |name: &str| serde_json::from_slice::<Value>(&payload).ok().and_then(|p| p.get(name).and_then(Value::as_i64));
    let near = |name: &str, line: i64| claim(name).is_some_and(|v| v.abs_diff(line) <= 3);
    if !near("exp", now - LEEWAY) && !near("nbf", now + LEEWAY) {
        assert_eq!(server.is_ok(), jwks.is_ok(), "verify: {server:?}, verify_with_jwks: {jwks:?}: {token}");
    }
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        check_raw(rest);
    } else if let Ok(b) = Built::arbitrary_take_rest(Unstructured::new(rest)) {
        check_built(b);
    }
}
