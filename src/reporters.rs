//! Secret-scanning reporters' public keys (`TOKEND_LEAK_REPORTER_KEYS`) and the check of
//! their signatures, as in the code hosts' secret-scanning partner programs: an ECDSA P-256
//! SHA-256 signature (ASN.1 DER, base64) over the raw request body, with the id of the key
//! that made it in another header.
//!
//! The key list is a file path or an http(s) URL answering the partner programs' document
//! `{"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…","is_current":true}]}`
//! (a bare array of such objects is accepted too). It is read on first use and again
//! when it is older than [`RELOAD_SECONDS`], or when a request names a key id it does not
//! hold (at most once per [`MIN_RELOAD_GAP_SECONDS`], so unknown ids cannot make tokend
//! hammer the source). A reload that fails keeps the keys it had.
//!
//! Each key also has a request budget ([`REPORTS_PER_MINUTE`]), counted after its
//! signature verified, so forged requests cannot spend a real reporter's budget.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

/// A key list older than this is read again on the next request.
pub const RELOAD_SECONDS: u64 = 300;
/// An unknown key id triggers a reload at most this often.
pub const MIN_RELOAD_GAP_SECONDS: u64 = 10;
/// Signed requests one reporter key may send a minute.
pub const REPORTS_PER_MINUTE: u32 = 60;
/// Upper bound on the key document.
const MAX_KEY_DOC: u64 = 1 << 20;
/// At most this many keys are kept from one document.
const MAX_KEYS: usize = 100;

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1) before the
/// 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leak reports are not configured (TOKEND_LEAK_REPORTER_KEYS)")]
    NotConfigured,
    #[error("unknown reporter key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}

#[derive(Default)]
struct Loaded {
    keys: HashMap<String, Vec<u8>>,
    loaded_at: Option<Instant>,
    tried_at: Option<Instant>,
}

/// The configured reporters' keys and their request budgets.
pub struct ReporterKeys {
    source: Option<String>,
    loaded: Mutex<Loaded>,
    budget: Mutex<HashMap<String, (Instant, u32)>>,
}

impl ReporterKeys {
    pub fn new(source: Option<String>) -> ReporterKeys {
        ReporterKeys { source, loaded: Mutex::default(), budget: Mutex::default() }
    }

    pub fn configured(&self) -> bool {
        self.source.is_some()
    }

    /// Verifies `signature_b64` over `body` with key `kid`, (re)reading the key list when
    /// due. Blocking (file or HTTP): call it off the async executor.
    pub fn verify(&self, kid: &str, signature_b64: &str, body: &[u8]) -> Result<(), VerifyError> {
        let Some(source) = &self.source else { return Err(VerifyError::NotConfigured) };
        let key = {
            let mut l = self.loaded.lock();
            let stale = l.loaded_at.is_none_or(|t| t.elapsed() > Duration::from_secs(RELOAD_SECONDS));
            let unknown = !l.keys.contains_key(kid);
            let may_try = l.tried_at.is_none_or(|t| t.elapsed() > Duration::from_secs(MIN_RELOAD_GAP_SECONDS));
            if (stale || unknown) && may_try {
                l.tried_at = Some(Instant::now());
                match load(source) {
                    Ok(keys) => {
                        l.keys = keys;
                        l.loaded_at = Some(Instant::now());
                    }
                    // Kept: the keys read last time. The message names the source, never a key.
                    Err(e) => log::warn!("reading the leak reporter keys: {e}"),
                }
            }
            l.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)?
        };
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| VerifyError::BadSignature)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key).verify(body, &sig).map_err(|_| VerifyError::BadSignature)
    }

    /// Counts one request of `kid`; false when its budget for the current minute is spent.
    /// Answers the seconds until the budget refills when refused.
    pub fn admit(&self, kid: &str) -> Result<(), u64> {
        let mut b = self.budget.lock();
        let now = Instant::now();
        if b.len() > 10 * MAX_KEYS {
            b.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = b.entry(kid.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= REPORTS_PER_MINUTE {
            return Err(60u64.saturating_sub(now.duration_since(entry.0).as_secs()).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

fn load(source: &str) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut doc = Vec::new();
    if source.starts_with("https://") || source.starts_with("http://") {
        let agent =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout(Duration::from_secs(10)).build();
        let resp = agent.get(source).call().map_err(|e| format!("fetching the key list: {e}"))?;
        resp.into_reader().take(MAX_KEY_DOC + 1).read_to_end(&mut doc).map_err(|e| format!("{source}: {e}"))?;
    } else {
        std::fs::File::open(source)
            .and_then(|f| f.take(MAX_KEY_DOC + 1).read_to_end(&mut doc))
            .map_err(|e| format!("{source}: {e}"))?;
    }
    if doc.len() as u64 > MAX_KEY_DOC {
        return Err(format!("{source}: larger than {MAX_KEY_DOC} bytes"));
    }
    parse_keys(&doc).map_err(|e| format!("{source}: {e}"))
}

#[derive(serde::Deserialize)]
struct Doc {
    public_keys: Vec<KeyEntry>,
}

#[derive(serde::Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

/// Parses a key document: key id → uncompressed P-256 point. Keys that are not P-256
/// public keys are skipped (logged), so one odd entry does not drop the others.
pub fn parse_keys(doc: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
    let entries: Vec<KeyEntry> = match serde_json::from_slice::<Doc>(doc) {
        Ok(d) => d.public_keys,
        Err(_) => serde_json::from_slice(doc)
            .map_err(|e| format!("expected {{\"public_keys\":[{{\"key_identifier\",\"key\"}}]}}: {e}"))?,
    };
    let mut keys = HashMap::new();
    for e in entries.into_iter().take(MAX_KEYS) {
        match p256_point(&e.key) {
            Some(point) => {
                keys.insert(e.key_identifier, point);
            }
            None => log::warn!("leak reporter key {:?} is not a P-256 public key (PEM); skipped", e.key_identifier),
        }
    }
    Ok(keys)
}

/// The uncompressed point of a PEM `PUBLIC KEY` holding a P-256 key.
pub fn p256_point(pem_text: &str) -> Option<Vec<u8>> {
    let p = pem::parse(pem_text.trim()).ok()?;
    if p.tag() != "PUBLIC KEY" {
        return None;
    }
    let der = p.contents();
    let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
    (point.len() == 65 && point[0] == 4).then(|| point.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    fn pair() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(kp.public_key().as_ref());
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
        (kp, pem)
    }

    #[test]
    fn signatures_verify_against_the_file_and_reloads_find_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.json");
        let (kp, pem) = pair();
        std::fs::write(&file, serde_json::json!({"public_keys": [{"key_identifier": "k1", "key": pem}]}).to_string())
            .unwrap();
        let keys = ReporterKeys::new(Some(file.display().to_string()));
        let body = b"[{\"token\":\"x\"}]";
        let sig = kp.sign(&SystemRandom::new(), body).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        assert_eq!(keys.verify("k1", &b64, body), Ok(()));
        assert_eq!(keys.verify("k1", &b64, b"other"), Err(VerifyError::BadSignature));
        assert_eq!(keys.verify("k1", "!!", body), Err(VerifyError::BadSignature));
        assert_eq!(keys.verify("k2", &b64, body), Err(VerifyError::UnknownKey));
        assert_eq!(ReporterKeys::new(None).verify("k1", &b64, body), Err(VerifyError::NotConfigured));
    }

    #[test]
    fn the_budget_is_per_key() {
        let keys = ReporterKeys::new(None);
        for _ in 0..REPORTS_PER_MINUTE {
            assert!(keys.admit("a").is_ok());
        }
        assert!(keys.admit("a").is_err());
        assert!(keys.admit("b").is_ok());
    }

    #[test]
    fn odd_keys_are_skipped() {
        let (_, pem) = pair();
        let doc = serde_json::json!([{"key_identifier": "ok", "key": pem}, {"key_identifier": "bad", "key": "nope"}]);
        let keys = parse_keys(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("ok"));
    }
}
