//! Signing keys: a directory of PEM files (PKCS#8; RSA keys also PKCS#1) with a small JSON
//! status file each. The KeyRing keeps parsed key pairs, the pre-serialised JWKS and its
//! ETag, and swaps them atomically when the directory changes.
//!
//! tokend generates ES256 and EdDSA keys itself (ring). It never generates RSA keys: the
//! one pure-Rust RSA implementation (the `rsa` crate) has an open timing side channel
//! (RUSTSEC-2023-0071) and ring only loads RSA keys. RS256 keys are the operator's: made
//! with `openssl genpkey` and put into the directory (first start) or added with
//! `tokend keys rotate --key-file` (rotation).
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            "RS256" => Some(Alg::RS256),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
        }
    }
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    #[error("key directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    /// The key directory is not usable as it is (mode, a leftover lock): what to do.
    #[error("key directory {0}: {1}")]
    DirState(String, String),
    #[error("key file {0} is readable by group or others; fix it with: chmod 600 {0}")]
    Permissions(String),
    #[error("key file {0} is not a valid PEM private key (PKCS#8, or PKCS#1 for RSA): {1}")]
    Malformed(String, String),
    /// RS256 is configured and an RSA key would have to be generated: tokend does not
    /// generate RSA keys. The message says how to make one (a configuration error).
    #[error("{0}")]
    RsaKeyNeeded(String),
    #[error("key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// What `fs::read_to_string` says of a file that is not UTF-8.
    #[error("key file {0}: stream did not contain valid UTF-8")]
    NotUtf8(String),
    #[error("{0}")]
    Refused(String),
    #[error("no signing keys in {0}{1}")]
    NoKeys(String, &'static str),
}

/// The status file beside each PEM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: Alg,
    pub created_at: i64,
    /// Published from creation; signs from this time on.
    pub activates_at: i64,
    #[serde(default)]
    pub retired_at: Option<i64>,
    /// Creation order, to tell apart keys made within the same second.
    #[serde(default)]
    pub serial: u64,
}

enum Signer {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

pub struct Key {
    pub meta: KeyMeta,
    signer: Signer,
    /// base64url of the JWS header, built once per key.
    header_b64: String,
    pub jwk: serde_json::Value,
    pub decoding: jsonwebtoken::DecodingKey,
}

/// One consistent view of the directory.
pub struct KeySet {
    /// Live (not retired) keys, oldest activation first.
    pub keys: Vec<Arc<Key>>,
    pub jwks_body: Arc<[u8]>,
    pub etag: String,
    /// What was read, to notice changes cheaply.
    stamp: Vec<KeyMeta>,
}

impl KeySet {
    pub fn find(&self, kid: &str) -> Option<&Arc<Key>> {
        self.keys.iter().find(|k| k.meta.kid == kid)
    }

    /// The newest key whose activation time has come.
    pub fn signing_key(&self, now: i64) -> Option<&Arc<Key>> {
        self.keys.iter().rev().find(|k| k.meta.activates_at <= now).or_else(|| self.keys.first())
    }
}

pub struct KeyRing {
    dir: PathBuf,
    alg: Alg,
    publish_delay: i64,
    rng: SystemRandom,
    /// The current set: loaded without a lock by every token request (`set`), swapped
    /// whole when the directory changes (reload, rotation, retirement).
    current: ArcSwap<KeySet>,
}

fn pem_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.pem"))
}
fn meta_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.json"))
}

/// The command that makes an RSA key tokend can load (PKCS#8, 2048 bits), written to `out`.
pub fn rsa_keygen_command(out: &str) -> String {
    format!("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {out} && chmod 600 {out}")
}

/// How a key file's PEM block holds the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `PRIVATE KEY`: PKCS#8, any algorithm.
    Pkcs8,
    /// `RSA PRIVATE KEY`: PKCS#1 (what `openssl genrsa -traditional` writes), RSA only.
    Pkcs1,
}

fn parse_signer(alg: Alg, der: &[u8]) -> Result<Signer, String> {
    parse_signer_as(alg, Format::Pkcs8, der)
}

fn parse_signer_as(alg: Alg, format: Format, der: &[u8]) -> Result<Signer, String> {
    match (alg, format) {
        (Alg::RS256, Format::Pkcs1) => return RsaKeyPair::from_der(der).map(Signer::Rsa).map_err(|e| e.to_string()),
        (_, Format::Pkcs1) => {
            return Err(format!("an RSA PRIVATE KEY block holds an RSA key, not an {} key", alg.as_str()))
        }
        _ => {}
    }
    match alg {
        Alg::ES256 => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map(Signer::Ec)
            .map_err(|e| e.to_string()),
        Alg::EdDSA => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(Signer::Ed).map_err(|e| e.to_string()),
        Alg::RS256 => RsaKeyPair::from_pkcs8(der).map(Signer::Rsa).map_err(|e| e.to_string()),
    }
}

fn public_jwk(signer: &Signer, alg: Alg) -> serde_json::Value {
    match signer {
        Signer::Ec(k) => {
            let p = k.public_key().as_ref();
            serde_json::json!({"kty":"EC","crv":"P-256","x":B64.encode(&p[1..33]),"y":B64.encode(&p[33..65]),"alg":alg.as_str(),"use":"sig"})
        }
        Signer::Ed(k) => {
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":B64.encode(k.public_key().as_ref()),"alg":alg.as_str(),"use":"sig"})
        }
        Signer::Rsa(k) => {
            let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
            let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
            serde_json::json!({"kty":"RSA",
                "n":B64.encode(strip(&c.n)),
                "e":B64.encode(strip(&c.e)),
                "alg":alg.as_str(),"use":"sig"})
        }
    }
}

/// RFC 7638 JWK thumbprint: a kid that is stable for the key material.
fn thumbprint(jwk: &serde_json::Value) -> String {
    let s = |k: &str| jwk[k].as_str().unwrap_or_default().to_string();
    let canonical = match s("kty").as_str() {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, s("crv"), s("x"), s("y")),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv"), s("x")),
        _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
    };
    B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

fn decoding_key(jwk: &serde_json::Value) -> Result<jsonwebtoken::DecodingKey, String> {
    let s = |k: &str| jwk[k].as_str().unwrap_or_default();
    match s("kty") {
        "EC" => jsonwebtoken::DecodingKey::from_ec_components(s("x"), s("y")),
        "OKP" => jsonwebtoken::DecodingKey::from_ed_components(s("x")),
        _ => jsonwebtoken::DecodingKey::from_rsa_components(s("n"), s("e")),
    }
    .map_err(|e| e.to_string())
}

fn build_key(meta: KeyMeta, signer: Signer) -> Result<Key, String> {
    let mut jwk = public_jwk(&signer, meta.alg);
    jwk["kid"] = serde_json::Value::String(meta.kid.clone());
    let header = serde_json::json!({"alg": meta.alg.as_str(), "typ": "at+jwt", "kid": meta.kid});
    let header_b64 = B64.encode(header.to_string());
    let decoding = decoding_key(&jwk)?;
    Ok(Key { meta, signer, header_b64, jwk, decoding })
}

/// A new PKCS#8 key of `alg`. `None` for RS256: tokend does not generate RSA keys.
fn generate_der(alg: Alg, rng: &SystemRandom) -> Option<Result<Vec<u8>, String>> {
    match alg {
        Alg::ES256 => Some(
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                .map(|d| d.as_ref().to_vec())
                .map_err(|e| e.to_string()),
        ),
        Alg::EdDSA => Some(Ed25519KeyPair::generate_pkcs8(rng).map(|d| d.as_ref().to_vec()).map_err(|e| e.to_string())),
        Alg::RS256 => None,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let io = |source: std::io::Error| KeyError::Io { path: path.display().to_string(), source };
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn write_meta(dir: &Path, meta: &KeyMeta) -> Result<(), KeyError> {
    let body = serde_json::to_vec_pretty(meta)
        .map_err(|e| KeyError::Malformed(meta_path(dir, &meta.kid).display().to_string(), e.to_string()))?;
    write_private(&meta_path(dir, &meta.kid), &body)
}

fn detect_alg(format: Format, der: &[u8]) -> Option<Alg> {
    [Alg::ES256, Alg::EdDSA, Alg::RS256].into_iter().find(|a| parse_signer_as(*a, format, der).is_ok())
}

/// A private key as read from one key file: its algorithm and the key pair.
pub struct ParsedKey {
    pub alg: Alg,
    signer: Signer,
}

impl ParsedKey {
    /// The public JWK (without `kid`), as the JWKS publishes it.
    pub fn public_jwk(&self) -> serde_json::Value {
        public_jwk(&self.signer, self.alg)
    }

    /// The RFC 7638 thumbprint: the kid of a key file without a status file.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.public_jwk())
    }

    /// The verification key built from the public JWK, as for a loaded key.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, String> {
        decoding_key(&self.public_jwk())
    }
}

/// The bytes of a key file as one PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1)
/// block (errors name the file `name`).
fn parse_pem_block(name: &str, bytes: &[u8]) -> Result<(pem::Pem, Format), KeyError> {
    // What `fs::read_to_string` says of a file that is not UTF-8.
    let text = std::str::from_utf8(bytes).map_err(|_| KeyError::NotUtf8(name.to_string()))?;
    let pem = pem::parse(text).map_err(|e| KeyError::Malformed(name.to_string(), e.to_string()))?;
    let format = match pem.tag() {
        "PRIVATE KEY" => Format::Pkcs8,
        "RSA PRIVATE KEY" => Format::Pkcs1,
        other => {
            return Err(KeyError::Malformed(
                name.to_string(),
                format!("expected a PRIVATE KEY or RSA PRIVATE KEY block, found {other}"),
            ))
        }
    };
    Ok((pem, format))
}

/// DER as a key of `alg` (the status file's), or of whichever algorithm it fits.
fn parse_der(name: &str, der: &[u8], format: Format, alg: Option<Alg>) -> Result<ParsedKey, KeyError> {
    let alg = match alg {
        Some(a) => a,
        None => detect_alg(format, der)
            .ok_or_else(|| KeyError::Malformed(name.to_string(), "not an ES256, EdDSA or RS256 key".into()))?,
    };
    let signer = parse_signer_as(alg, format, der).map_err(|e| KeyError::Malformed(name.to_string(), e))?;
    Ok(ParsedKey { alg, signer })
}

/// The contents of a key file (`name` is used in errors), as the key directory loader reads
/// it: UTF-8, one PEM block holding a key of `alg` (from the key's status file) or, with
/// `None`, of whichever of ES256, EdDSA and RS256 it fits: `PRIVATE KEY` (PKCS#8, any of
/// them) or `RSA PRIVATE KEY` (PKCS#1, RS256).
pub fn parse_key_pem(name: &str, bytes: &[u8], alg: Option<Alg>) -> Result<ParsedKey, KeyError> {
    let (pem, format) = parse_pem_block(name, bytes)?;
    parse_der(name, pem.contents(), format, alg)
}

/// Creates the key directory 0700 if missing; refuses one that group or others can write
/// (whoever can add a PEM file there can sign tokens), and warns when they can read it.
fn private_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::DirBuilderExt;
    let name = dir.display().to_string();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Dir { path: name.clone(), source })?;
    let mode = fs::metadata(dir).map_err(|source| KeyError::Dir { path: name.clone(), source })?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(KeyError::DirState(
            name.clone(),
            format!("writable by group or others; fix it with: chmod 700 {name}"),
        ));
    }
    if mode & 0o077 != 0 {
        log::warn!("key directory {name} is readable by group or others; consider: chmod 700 {name}");
    }
    Ok(())
}

/// Reads every `*.pem` of the directory (non-recursive), with its status file if present.
fn load_dir(dir: &Path) -> Result<Vec<Key>, KeyError> {
    let entries = fs::read_dir(dir).map_err(|source| KeyError::Dir { path: dir.display().to_string(), source })?;
    let mut keys = Vec::new();
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.display().to_string();
        let md = fs::metadata(&path).map_err(|source| KeyError::Io { path: name.clone(), source })?;
        if md.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Permissions(name));
        }
        let bytes = fs::read(&path).map_err(|source| KeyError::Io { path: name.clone(), source })?;
        let (pem, format) = parse_pem_block(&name, &bytes)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let meta_file = meta_path(dir, &stem);
        let meta: Option<KeyMeta> = match fs::read(&meta_file) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| KeyError::Malformed(meta_file.display().to_string(), e.to_string()))?,
            ),
            Err(_) => None,
        };
        let ParsedKey { alg, signer } = parse_der(&name, pem.contents(), format, meta.as_ref().map(|m| m.alg))?;
        let meta = match meta {
            Some(m) => m,
            // A PEM dropped in by hand: published and signing at once, kid from its thumbprint.
            None => KeyMeta {
                kid: thumbprint(&public_jwk(&signer, alg)),
                alg,
                created_at: 0,
                activates_at: 0,
                retired_at: None,
                serial: 0,
            },
        };
        if meta.retired_at.is_some() {
            continue;
        }
        keys.push(build_key(meta, signer).map_err(|e| KeyError::Malformed(name, e))?);
    }
    keys.sort_by(|a, b| {
        (a.meta.activates_at, a.meta.serial, &a.meta.kid).cmp(&(b.meta.activates_at, b.meta.serial, &b.meta.kid))
    });
    Ok(keys)
}

fn build_set(keys: Vec<Key>) -> KeySet {
    let jwks: Vec<&serde_json::Value> = keys.iter().map(|k| &k.jwk).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "keys": jwks })).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    let etag = format!("\"{}\"", B64.encode(&digest.as_ref()[..12]));
    let stamp = keys.iter().map(|k| k.meta.clone()).collect();
    KeySet { keys: keys.into_iter().map(Arc::new).collect(), jwks_body: body.into(), etag, stamp }
}

/// One row of `tokend keys list`.
#[derive(Serialize, Debug)]
pub struct KeyStatus {
    pub kid: String,
    pub alg: &'static str,
    pub status: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

/// The JWKS of an existing key directory (live keys only, as the server publishes it),
/// read-only: unlike `KeyRing::open` it never creates the directory, a lock or a key, so
/// `tokend verify` cannot leave a signing key behind in a directory it only reads.
pub fn published_jwks(dir: &Path) -> Result<Vec<u8>, KeyError> {
    if !dir.is_dir() {
        return Err(KeyError::NoKeys(dir.display().to_string(), " (no such directory)"));
    }
    let keys = load_dir(dir)?;
    if keys.is_empty() {
        return Err(KeyError::NoKeys(dir.display().to_string(), ""));
    }
    Ok(build_set(keys).jwks_body.to_vec())
}

impl KeyRing {
    /// Opens the directory, generating a first key when it holds none.
    pub fn open(dir: &Path, alg: Alg, publish_delay: i64, now: i64) -> Result<KeyRing, KeyError> {
        let dirname = dir.display().to_string();
        if alg == Alg::RS256 && (!dir.exists() || load_dir(dir)?.is_empty()) {
            // Nothing to load and nothing tokend may make: say how to make one, and create
            // nothing (not even the directory).
            let pem = dir.join("rsa.pem").display().to_string();
            return Err(KeyError::RsaKeyNeeded(format!(
                "TOKEND_SIGNING_ALG is RS256 and the key directory {dirname} holds no key; tokend does not \
                 generate RSA keys. Make one (PKCS#8 or PKCS#1 PEM, 2048 to 4096 bits) with: \
                 mkdir -p -m 700 {dirname} && {}",
                rsa_keygen_command(&pem)
            )));
        }
        private_dir(dir)?;
        let ring = KeyRing {
            dir: dir.to_path_buf(),
            alg,
            publish_delay,
            rng: SystemRandom::new(),
            current: ArcSwap::from_pointee(build_set(Vec::new())),
        };
        let mut keys = load_dir(dir)?;
        if keys.is_empty() {
            // Several instances may start together on one empty shared directory: one of
            // them creates the first key, the others wait for it and use it.
            let lock = dir.join(".first-key.lock");
            let mut waited = 0;
            loop {
                match fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                    Ok(_) => {
                        keys = load_dir(dir)?;
                        if keys.is_empty() {
                            // Nothing can have been signed yet, so the first key signs at once.
                            let made = ring.create_key(now, now);
                            let _ = fs::remove_file(&lock);
                            made?;
                            keys = load_dir(dir)?;
                        } else {
                            let _ = fs::remove_file(&lock);
                        }
                        break;
                    }
                    Err(_) if waited < 100 => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        waited += 1;
                        keys = load_dir(dir)?;
                        if !keys.is_empty() {
                            break;
                        }
                    }
                    Err(e) => {
                        return Err(KeyError::DirState(
                            dirname,
                            format!("{} is held (a crashed first start?); remove it: {e}", lock.display()),
                        ))
                    }
                }
            }
        }
        ring.current.store(Arc::new(build_set(keys)));
        Ok(ring)
    }

    pub fn set(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Re-reads the directory; keeps the current set if the directory is broken.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let keys = load_dir(&self.dir)?;
        let stamp: Vec<KeyMeta> = keys.iter().map(|k| k.meta.clone()).collect();
        if keys.is_empty() || stamp == self.set().stamp {
            return Ok(false);
        }
        self.current.store(Arc::new(build_set(keys)));
        Ok(true)
    }

    fn create_key(&self, now: i64, activates_at: i64) -> Result<KeyMeta, KeyError> {
        let Some(der) = generate_der(self.alg, &self.rng) else {
            return Err(KeyError::RsaKeyNeeded(format!(
                "TOKEND_SIGNING_ALG is RS256 and tokend does not generate RSA keys. Make one with: {} \
                 and add it with: tokend keys rotate --key-file new.pem",
                rsa_keygen_command("new.pem")
            )));
        };
        let der = der.map_err(KeyError::Refused)?;
        let signer = parse_signer(self.alg, &der).map_err(KeyError::Refused)?;
        self.add_key(now, activates_at, self.alg, &signer, &pem::Pem::new("PRIVATE KEY", der))
    }

    /// Writes a key's status file, then its PEM (`block`, the key as parsed into `signer`).
    fn add_key(
        &self,
        now: i64,
        activates_at: i64,
        alg: Alg,
        signer: &Signer,
        block: &pem::Pem,
    ) -> Result<KeyMeta, KeyError> {
        let kid = thumbprint(&public_jwk(signer, alg));
        let metas = self.metas()?;
        if metas.iter().any(|m| m.kid == kid) || pem_path(&self.dir, &kid).exists() {
            return Err(KeyError::Refused(format!("key {kid} is already in {}", self.dir.display())));
        }
        let serial = metas.iter().map(|m| m.serial).max().map_or(1, |m| m + 1);
        let meta = KeyMeta { kid: kid.clone(), alg, created_at: now, activates_at, retired_at: None, serial };
        // Status file first: a reader that sees the PEM always sees its activation time.
        write_meta(&self.dir, &meta)?;
        write_private(&pem_path(&self.dir, &kid), pem::encode(block).as_bytes())?;
        Ok(meta)
    }

    /// Adds a key that is published now and signs after the publish delay. For RS256 this
    /// is refused ([`KeyError::RsaKeyNeeded`]): RSA keys come from [`KeyRing::rotate_to`].
    pub fn rotate(&self, now: i64) -> Result<KeyMeta, KeyError> {
        let meta = self.create_key(now, now + self.publish_delay)?;
        self.reload()?;
        Ok(meta)
    }

    /// Rotation to a key the operator made (`tokend keys rotate --key-file FILE`): the key
    /// file's contents (`name` in errors) as the directory loader reads them (PKCS#8 of any
    /// of the three algorithms, or PKCS#1 RSA); copied into the directory under its kid,
    /// published now and signing after the publish delay. A key already in the directory
    /// (live or retired) is refused.
    pub fn rotate_to(&self, name: &str, bytes: &[u8], now: i64) -> Result<KeyMeta, KeyError> {
        let (block, format) = parse_pem_block(name, bytes)?;
        let ParsedKey { alg, signer } = parse_der(name, block.contents(), format, None)?;
        let block = pem::Pem::new(block.tag(), block.contents().to_vec());
        let meta = self.add_key(now, now + self.publish_delay, alg, &signer, &block)?;
        self.reload()?;
        Ok(meta)
    }

    /// Stops publishing a key. Refused for the signing key, and for a key that signed
    /// within `max_token_ttl` seconds unless `force` (its tokens would stop verifying).
    pub fn retire(&self, kid: &str, now: i64, max_token_ttl: i64, force: bool) -> Result<(), KeyError> {
        let set = self.set();
        let key = set.find(kid).ok_or_else(|| KeyError::Refused(format!("no live key with kid {kid}")))?;
        let signing = set.signing_key(now).map(|k| k.meta.kid.clone());
        if signing.as_deref() == Some(kid) {
            return Err(KeyError::Refused(format!("{kid} is the current signing key; rotate first")));
        }
        if key.meta.activates_at > now {
            return Err(KeyError::Refused(format!("{kid} has not started signing yet")));
        }
        // It stopped signing when the next key activated.
        let stopped = set
            .keys
            .iter()
            .filter(|k| k.meta.activates_at > key.meta.activates_at && k.meta.activates_at <= now)
            .map(|k| k.meta.activates_at)
            .min()
            .unwrap_or(now);
        if now - stopped < max_token_ttl && !force {
            return Err(KeyError::Refused(format!(
                "{kid} signed tokens until {} that are valid for up to {max_token_ttl}s; retire after {} or pass --force",
                crate::clock::rfc3339(stopped),
                crate::clock::rfc3339(stopped + max_token_ttl)
            )));
        }
        let mut meta = key.meta.clone();
        meta.retired_at = Some(now);
        write_meta(&self.dir, &meta)?;
        self.current.store(Arc::new(build_set(load_dir(&self.dir)?)));
        Ok(())
    }

    /// Every status file of the directory, retired keys included.
    fn metas(&self) -> Result<Vec<KeyMeta>, KeyError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|source| KeyError::Dir { path: self.dir.display().to_string(), source })?;
        Ok(entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| fs::read(&p).ok().and_then(|b| serde_json::from_slice::<KeyMeta>(&b).ok()))
            .collect())
    }

    pub fn list(&self, now: i64) -> Result<Vec<KeyStatus>, KeyError> {
        let mut metas: BTreeMap<String, KeyMeta> = self.metas()?.into_iter().map(|m| (m.kid.clone(), m)).collect();
        let set = self.set();
        // Live keys without a status file (PEMs dropped in by hand) are listed too.
        for k in &set.keys {
            metas.entry(k.meta.kid.clone()).or_insert_with(|| k.meta.clone());
        }
        let signing = set.signing_key(now).map(|k| k.meta.kid.clone());
        let mut metas: Vec<KeyMeta> = metas.into_values().collect();
        metas.sort_by_key(|m| (m.activates_at, m.serial));
        let out: Vec<KeyStatus> = metas
            .into_iter()
            .map(|m| KeyStatus {
                status: if m.retired_at.is_some() {
                    "retired"
                } else if signing.as_deref() == Some(m.kid.as_str()) {
                    "signing"
                } else if m.activates_at > now {
                    "published (not yet signing)"
                } else {
                    "published (verify only)"
                },
                alg: m.alg.as_str(),
                kid: m.kid,
                created_at: m.created_at,
                activates_at: m.activates_at,
                retired_at: m.retired_at,
            })
            .collect();
        Ok(out)
    }

    /// Signs a compact JWS with the cached key pair of the current signing key.
    pub fn sign(&self, claims_json: &[u8], now: i64) -> Result<String, KeyError> {
        // A guard, not a clone of the Arc: no shared counter touched per token.
        let set = self.current.load();
        let key = set.signing_key(now).ok_or_else(|| KeyError::Refused("no signing key".into()))?;
        let mut out = String::with_capacity(key.header_b64.len() + claims_json.len() * 4 / 3 + 100);
        out.push_str(&key.header_b64);
        out.push('.');
        B64.encode_string(claims_json, &mut out);
        let sig = match &key.signer {
            Signer::Ec(k) => k.sign(&self.rng, out.as_bytes()).map(|s| {
                let mut sig = s.as_ref().to_vec();
                crate::jwt::es256_low_s(&mut sig);
                sig
            }),
            Signer::Ed(k) => Ok(k.sign(out.as_bytes()).as_ref().to_vec()),
            Signer::Rsa(k) => {
                let mut buf = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut buf).map(|_| buf)
            }
        }
        .map_err(|_| KeyError::Refused("signing failed".into()))?;
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Alg::ES256, 600, 1000).unwrap();
        let kid = ring.set().keys[0].meta.kid.clone();
        let mode = fs::metadata(pem_path(dir.path(), &kid)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = KeyRing::open(dir.path(), Alg::ES256, 600, 2000).unwrap();
        assert_eq!(again.set().keys[0].meta.kid, kid);
    }

    #[test]
    fn the_key_directory_is_created_private_and_refused_when_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("a").join("keys");
        KeyRing::open(&keys, Alg::EdDSA, 0, 1000).unwrap();
        assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o777)).unwrap();
        let err = KeyRing::open(&keys, Alg::EdDSA, 0, 1000).err().unwrap().to_string();
        assert!(err.contains("chmod 700"), "{err}");
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(KeyRing::open(&keys, Alg::EdDSA, 0, 1000).is_ok(), "readable only: a warning");
    }

    #[test]
    fn refuses_world_readable_and_malformed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Alg::EdDSA, 0, 1000).unwrap();
        let kid = ring.set().keys[0].meta.kid.clone();
        let path = pem_path(dir.path(), &kid);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyRing::open(dir.path(), Alg::EdDSA, 0, 1000).err().unwrap().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_private(&dir.path().join("junk.pem"), b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let err = KeyRing::open(dir.path(), Alg::EdDSA, 0, 1000).err().unwrap().to_string();
        assert!(err.contains("junk.pem"), "{err}");
    }

    #[test]
    fn instances_starting_together_share_one_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let kids: Vec<String> = (0..4)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || {
                    KeyRing::open(&p, Alg::ES256, 600, 1000).unwrap().set().keys[0].meta.kid.clone()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        let pems = fs::read_dir(&path)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pem"))
            .count();
        assert_eq!(pems, 1);
    }

    #[test]
    fn published_jwks_never_creates_keys() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = published_jwks(&missing).err().unwrap().to_string();
        assert!(err.starts_with("no signing keys in ") && err.contains("missing"), "{err}");
        assert!(!missing.exists());
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let err = published_jwks(&empty).err().unwrap().to_string();
        assert_eq!(err, format!("no signing keys in {}", empty.display()));
        assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
        let ring = KeyRing::open(&empty, Alg::EdDSA, 0, 1000).unwrap();
        assert_eq!(published_jwks(&empty).unwrap(), ring.set().jwks_body.to_vec());
    }

    #[test]
    fn parse_key_pem_reads_what_the_loader_reads() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [Alg::ES256, Alg::EdDSA] {
            let sub = dir.path().join(alg.as_str());
            let ring = KeyRing::open(&sub, alg, 0, 1000).unwrap();
            let kid = ring.set().keys[0].meta.kid.clone();
            let bytes = fs::read(pem_path(&sub, &kid)).unwrap();
            for given in [None, Some(alg)] {
                let key = parse_key_pem("k.pem", &bytes, given).unwrap();
                assert_eq!((key.alg, key.thumbprint()), (alg, kid.clone()));
            }
        }
        let err = parse_key_pem("k.pem", b"\xff", None).err().unwrap().to_string();
        assert_eq!(err, "key file k.pem: stream did not contain valid UTF-8");
        // The loader used to read key files with fs::read_to_string: same message.
        fs::write(dir.path().join("bin"), b"\xff").unwrap();
        let io = fs::read_to_string(dir.path().join("bin")).unwrap_err().to_string();
        assert_eq!(err, format!("key file k.pem: {io}"));
        let err = parse_key_pem("k.pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", None);
        assert!(err
            .err()
            .unwrap()
            .to_string()
            .contains("expected a PRIVATE KEY or RSA PRIVATE KEY block, found PUBLIC KEY"));
    }

    /// A 2048-bit RSA key made by the openssl command line (tokend makes none), as PKCS#8
    /// (`PRIVATE KEY`) or, `traditional`, PKCS#1 (`RSA PRIVATE KEY`).
    pub(crate) fn openssl_rsa(traditional: bool) -> Vec<u8> {
        use std::process::{Command, Stdio};
        let gen = Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            .stderr(Stdio::null())
            .output()
            .expect("the openssl command line (apt-get install openssl)");
        assert!(gen.status.success(), "openssl genpkey failed");
        if !traditional {
            return gen.stdout;
        }
        let mut child = Command::new("openssl")
            .args(["pkey", "-traditional"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&gen.stdout).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl pkey -traditional failed");
        out.stdout
    }

    #[test]
    fn rs256_keys_are_the_operators_pkcs8_or_pkcs1() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        // Nothing to load, nothing tokend makes: refused, with the command that makes one,
        // and the directory holds no key afterwards.
        let err = KeyRing::open(&keys, Alg::RS256, 0, 1000).err().unwrap();
        assert!(matches!(err, KeyError::RsaKeyNeeded(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"), "{msg}");
        assert!(msg.contains(&keys.display().to_string()), "{msg}");
        assert!(!keys.exists(), "a refused start creates nothing");
        private_dir(&keys).unwrap();
        assert!(matches!(KeyRing::open(&keys, Alg::RS256, 0, 1000), Err(KeyError::RsaKeyNeeded(_))));
        assert_eq!(fs::read_dir(&keys).unwrap().count(), 0);

        // A PKCS#8 key dropped in by hand: it signs, its JWK carries n and e.
        let pkcs8 = openssl_rsa(false);
        assert!(pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        write_private(&keys.join("rsa.pem"), &pkcs8).unwrap();
        let ring = KeyRing::open(&keys, Alg::RS256, 600, 1000).unwrap();
        let set = ring.set();
        let first = set.keys[0].clone();
        assert_eq!(first.meta.alg, Alg::RS256);
        assert_eq!((first.jwk["kty"].as_str(), first.jwk["e"].as_str()), (Some("RSA"), Some("AQAB")));
        assert_eq!(B64.decode(first.jwk["n"].as_str().unwrap()).unwrap().len(), 256);
        let token = ring.sign(br#"{"sub":"x"}"#, 1000).unwrap();
        let (msg, sig) = token.rsplit_once('.').unwrap();
        assert!(
            jsonwebtoken::crypto::verify(sig, msg.as_bytes(), &first.decoding, jsonwebtoken::Algorithm::RS256).unwrap()
        );

        // Rotation cannot generate one: refused with the command and --key-file.
        let err = ring.rotate(2000).err().unwrap();
        assert!(matches!(err, KeyError::RsaKeyNeeded(_)), "{err:?}");
        assert!(err.to_string().contains("tokend keys rotate --key-file"), "{err}");
        // Rotation to a PKCS#1 key: published now, signing after the delay, kept as PKCS#1.
        let pkcs1 = openssl_rsa(true);
        assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        let meta = ring.rotate_to("new.pem", &pkcs1, 2000).unwrap();
        assert_eq!((meta.alg, meta.activates_at), (Alg::RS256, 2600));
        assert_eq!(ring.set().signing_key(2000).unwrap().meta.kid, first.meta.kid);
        assert_eq!(ring.set().signing_key(2600).unwrap().meta.kid, meta.kid);
        let stored = fs::read(pem_path(&keys, &meta.kid)).unwrap();
        assert!(stored.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(fs::metadata(pem_path(&keys, &meta.kid)).unwrap().permissions().mode() & 0o777, 0o600);
        // The same key again, or garbage: refused, nothing written.
        let before = fs::read_dir(&keys).unwrap().count();
        assert!(ring.rotate_to("new.pem", &pkcs1, 2100).err().unwrap().to_string().contains("already in"));
        let err = ring.rotate_to("bad.pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 2100);
        assert!(err.err().unwrap().to_string().contains("bad.pem"));
        assert_eq!(fs::read_dir(&keys).unwrap().count(), before);
        // A restart reads both (status files say RS256; one PKCS#1).
        let again = KeyRing::open(&keys, Alg::RS256, 600, 3000).unwrap();
        assert_eq!(again.set().keys.len(), 2);
        assert_eq!(again.set().signing_key(3000).unwrap().meta.kid, meta.kid);
        // An RSA PRIVATE KEY block holding no RSA key is named.
        let ec =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let fake = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", ec.as_ref().to_vec()));
        assert!(parse_key_pem("fake.pem", fake.as_bytes(), None).err().unwrap().to_string().contains("fake.pem"));
    }

    #[test]
    fn rotation_publishes_before_signing() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Alg::ES256, 600, 1000).unwrap();
        let old = ring.set().keys[0].meta.kid.clone();
        let new = ring.rotate(2000).unwrap();
        let set = ring.set();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.signing_key(2000).unwrap().meta.kid, old);
        assert_eq!(set.signing_key(2600).unwrap().meta.kid, new.kid);
        assert!(ring.retire(&old, 2700, 1800, false).is_err());
        ring.retire(&old, 2600 + 1800, 1800, false).unwrap();
        assert_eq!(ring.set().keys.len(), 1);
    }
}
