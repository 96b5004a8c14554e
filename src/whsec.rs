//! Webhook signing secrets: generation (Standard Webhooks' `whsec_` + base64 format),
//! sealing at rest, and the `webhook-signature` of a message.
//!
//! The server must sign every delivery, so the secret cannot be stored as a hash like
//! tokend's other secrets. It is sealed with AES-256-GCM under a key kept in the key
//! directory (`webhook-secrets.key`, 32 random bytes, mode 0600, created on first start),
//! with the webhook's id as associated data: a copy of the database alone reveals no
//! secret, and a sealed secret cannot be moved to another webhook's row.
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The key file's name in the key directory.
pub const KEY_FILE: &str = "webhook-secrets.key";
const PREFIX: &str = "whsec_";
/// Random bytes in a signing secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

#[derive(thiserror::Error, Debug)]
pub enum SealError {
    #[error("webhook secret key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("a sealed webhook secret does not open with the current key")]
    Open,
    #[error("randomness unavailable")]
    Random,
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate() -> Result<String, SealError> {
    let mut b = [0u8; SECRET_BYTES];
    SystemRandom::new().fill(&mut b).map_err(|_| SealError::Random)?;
    Ok(format!("{PREFIX}{}", B64.encode(b)))
}

/// A non-secret hint to recognise a secret by: its first 4 characters after the prefix.
pub fn hint(secret: &str) -> String {
    let body = secret.strip_prefix(PREFIX).unwrap_or(secret);
    format!("{PREFIX}{}…", body.chars().take(4).collect::<String>())
}

/// The Standard Webhooks signature of a message: `v1,` + base64 HMAC-SHA256 over
/// `{id}.{timestamp}.{body}` with the base64-decoded part of the secret after `whsec_`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let raw =
        secret.strip_prefix(PREFIX).and_then(|b| B64.decode(b).ok()).unwrap_or_else(|| secret.as_bytes().to_vec());
    let key = hmac::Key::new(hmac::HMAC_SHA256, &raw);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", B64.encode(ctx.sign().as_ref()))
}

/// Seals and opens signing secrets with the key of the key directory.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The key of `dir/webhook-secrets.key`, created (0600) when missing. Several instances
    /// sharing the directory agree on one key: the file is created exclusively, and an
    /// instance that loses the race reads the winner's.
    pub fn open_dir(dir: &Path) -> Result<Sealer, SealError> {
        let path = dir.join(KEY_FILE);
        let err = |p: &PathBuf, reason: String| SealError::Key { path: p.display().to_string(), reason };
        let bytes = match std::fs::read(&path) {
            Ok(b) => {
                // Checked like the signing keys' PEM files: a copy readable by others is
                // a copy of every webhook secret.
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).map_err(|e| err(&path, e.to_string()))?.permissions().mode();
                if mode & 0o077 != 0 {
                    let fix = format!("readable by group or others; fix it with: chmod 600 {}", path.display());
                    return Err(err(&path, fix));
                }
                b
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new().fill(&mut key).map_err(|_| SealError::Random)?;
                create_private(&path, &key).map_err(|e| err(&path, e.to_string()))?;
                std::fs::read(&path).map_err(|e| err(&path, e.to_string()))?
            }
            Err(e) => return Err(err(&path, e.to_string())),
        };
        Sealer::from_key(&bytes).ok_or_else(|| err(&path, format!("expected 32 bytes, found {}", bytes.len())))
    }

    pub fn from_key(bytes: &[u8]) -> Option<Sealer> {
        if bytes.len() != 32 {
            return None;
        }
        UnboundKey::new(&AES_256_GCM, bytes).ok().map(|k| Sealer { key: LessSafeKey::new(k) })
    }

    /// base64(nonce ‖ ciphertext ‖ tag), bound to `id`.
    pub fn seal(&self, id: &str, secret: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buf = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(B64.encode(out))
    }

    pub fn open(&self, id: &str, sealed: &str) -> Result<String, SealError> {
        let raw = B64.decode(sealed).map_err(|_| SealError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = ct.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(id.as_bytes()), &mut buf).map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }
}

fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(parent)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => {
            f.write_all(bytes)?;
            f.sync_all()
        }
        // Another instance created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_standard_format() {
        let s = generate().unwrap();
        assert!(s.starts_with("whsec_"));
        assert_eq!(B64.decode(&s[6..]).unwrap().len(), 32);
        assert_ne!(s, generate().unwrap());
        assert_eq!(hint("whsec_abcdefgh"), "whsec_abcd…");
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn sealing_round_trips_and_binds_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::open_dir(dir.path()).unwrap();
        let sealed = a.seal("hook-1", "whsec_secret").unwrap();
        assert!(!sealed.contains("secret"));
        // A second instance on the same directory reads the same key.
        let b = Sealer::open_dir(dir.path()).unwrap();
        assert_eq!(b.open("hook-1", &sealed).unwrap(), "whsec_secret");
        assert!(b.open("hook-2", &sealed).is_err(), "bound to its webhook");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A key file others can read is refused, naming the fix.
        std::fs::set_permissions(dir.path().join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Sealer::open_dir(dir.path()).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
