//! RS256 without an RSA implementation of tokend's own (RUSTSEC-2023-0071): the real
//! binary refuses to start with `TOKEND_SIGNING_ALG=RS256` and no key (exit 2, the openssl
//! command in the message, nothing created); the command it prints makes a key it starts
//! with; rotation takes the operator's next key (`tokend keys rotate --key-file`, PKCS#1
//! here) and refuses to make one.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::helpers::{openssl, spawn_announcing};

const BIN: &str = env!("CARGO_BIN_EXE_tokend");

/// `tokend ARGS` with this environment only (none of the test's TOKEND_* variables).
fn tokend(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("TOKEND_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .current_dir(dir)
        .env("DATABASE_URL", format!("sqlite://{}/data/tokend.db", dir.display()))
        .env("TOKEND_KEYS_DIR", dir.join("keys"))
        .env("TOKEND_SIGNING_ALG", "RS256")
        .env("TOKEND_BIND", "127.0.0.1:0")
        .env("TOKEND_ISSUER", "http://127.0.0.1:0")
        .env("TOKEND_WORKERS", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs to completion: (exit code, stdout, stderr).
#[track_caller]
fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn rs256_runs_on_the_operators_openssl_keys() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let keys = dir.join("keys");

    // No key: a configuration error (exit 2) naming the variable and the command; the
    // database and the key directory are not created.
    let (code, _, err) = run(tokend(dir, &["serve"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tokend: configuration error: TOKEND_SIGNING_ALG is RS256"), "{err}");
    assert!(err.contains("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"), "{err}");
    assert!(!dir.join("data").exists() && !keys.exists(), "a refused start creates nothing");
    let (code, _, err) = run(tokend(dir, &["keys", "list"]));
    assert_eq!(code, 2, "the key commands say the same: {err}");
    assert!(!keys.exists());

    // The command the message gives, run as given, makes a key tokend starts with.
    let line = err.lines().find(|l| l.contains("configuration error")).unwrap();
    let command = line.trim().rsplit("with: ").next().unwrap().to_string();
    assert!(command.starts_with("mkdir -p -m 700 ") && command.ends_with("rsa.pem"), "{command}");
    let st = Command::new("sh").args(["-c", &command]).stderr(Stdio::null()).status().unwrap();
    assert!(st.success(), "{command}");
    let (code, out, err) = run(tokend(dir, &["keys", "list"]));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains("\tRS256\tsigning\t"), "{out}");
    let first = rows[0].split('\t').next().unwrap().to_string();

    // Rotation cannot make an RSA key: it says how, and changes nothing.
    let (code, _, err) = run(tokend(dir, &["keys", "rotate"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tokend keys rotate --key-file"), "{err}");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 1, "nothing written");
    // A key file that is not a key: refused, naming it, nothing written.
    std::fs::write(dir.join("junk.pem"), "not a key").unwrap();
    let (code, _, err) = run(tokend(dir, &["keys", "rotate", "--key-file", "junk.pem"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("junk.pem"), "{err}");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 1, "nothing written");

    // The operator's next key, PKCS#1 this time (`openssl genrsa -traditional`).
    let pkcs8 = crate::common::helpers::rsa_private_pem();
    let pkcs1 = openssl(&["pkey", "-traditional"], pkcs8.as_bytes());
    assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    std::fs::write(dir.join("next.pem"), &pkcs1).unwrap();
    let (code, out, err) = run(tokend(dir, &["keys", "rotate", "--key-file", "next.pem"]));
    assert_eq!(code, 0, "{err}");
    let j: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["alg"], "RS256");
    let next = j["kid"].as_str().unwrap().to_string();
    let (_, out, _) = run(tokend(dir, &["keys", "list"]));
    assert!(out.lines().any(|l| l.starts_with(&format!("{first}\t")) && l.contains("\tsigning")), "{out}");
    assert!(out.lines().any(|l| l.starts_with(&format!("{next}\t")) && l.contains("not yet signing")), "{out}");
    let (code, _, err) = run(tokend(dir, &["keys", "rotate", "--key-file", "next.pem"]));
    assert_eq!(code, 1, "the same key twice: {err}");
    assert!(err.contains("already in"), "{err}");

    // The server starts on them and publishes both RSA keys.
    let (mut child, base) =
        spawn_announcing(&mut tokend(dir, &["serve"]), "tokend listening on", Duration::from_secs(120));
    let jwks: Value = ureq::get(&format!("{base}/.well-known/jwks.json")).call().unwrap().into_json().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    assert!(keys.iter().all(|k| k["kty"] == "RSA" && k["alg"] == "RS256" && k.get("d").is_none()), "{jwks}");
    assert!(keys.iter().any(|k| k["kid"] == first.as_str()) && keys.iter().any(|k| k["kid"] == next.as_str()));
}
