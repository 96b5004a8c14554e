//! Leak reports (issue #23): `POST /leaks/report` signed like the code hosts' secret-scanning
//! partner programs (ECDSA P-256 SHA-256 over the raw body, key id and base64 signature in
//! headers) by a test reporter key made here with ring; live credentials revoked with reason
//! `leak_report`, the URL in the audit row, `token.revoked` to webhooks and email to an SMTP
//! sink; refusals change nothing. And the operator's `tokend leaks check` (the real binary).
use crate::common;
use crate::webhooks::{smtp_sink, Receiver};

use base64::Engine;
use common::{Backend, Server};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use tokend::secrets::{self, SecretKind};

const KID: &str = "test-reporter-key-1";
const URL: &str = "https://code.example.test/octo/app/blob/abc123/config.yml";
/// DER of a P-256 SubjectPublicKeyInfo before the point.
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A reporter's key pair and its key document (the partner programs' format).
struct Reporter {
    key: EcdsaKeyPair,
    doc: Value,
}

impl Reporter {
    fn new(kid: &str) -> Reporter {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(key.public_key().as_ref());
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
        let doc = json!({"public_keys": [{"key_identifier": kid, "key": pem, "is_current": true}]});
        Reporter { key, doc }
    }

    fn sign(&self, body: &[u8]) -> String {
        let sig = self.key.sign(&SystemRandom::new(), body).unwrap();
        base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
    }
}

type Mails = std::sync::Arc<std::sync::Mutex<Vec<crate::webhooks::Mail>>>;

/// A server with the reporter's key file and an SMTP sink; answers (server, the key file,
/// the mails, the directory holding the file).
fn start(b: &Backend, r: &Reporter) -> (Server, std::path::PathBuf, Mails, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reporter-keys.json");
    std::fs::write(&file, r.doc.to_string()).unwrap();
    let (port, mails) = smtp_sink();
    let f = file.clone();
    let s = b.start_with(move |c| {
        c.smtp_url = Some(tokend::config::SmtpUrl(format!("smtp://127.0.0.1:{port}")));
        c.leak_reporter_keys = Some(f.display().to_string());
    });
    (s, file, mails, dir)
}

fn post(s: &Server, kid: &str, sig: &str, body: &[u8]) -> common::Resp {
    s.raw(
        "POST",
        "/leaks/report",
        &[
            ("Content-Type", "application/json"),
            ("Github-Public-Key-Identifier", kid),
            ("Github-Public-Key-Signature", sig),
        ],
        body,
    )
}

fn item(token: &str, kind: &str) -> Value {
    json!({"token": token, "type": kind, "url": URL, "source": "content"})
}

/// A batch: a live PAT, a live app secret, an already revoked PAT, a random tkd_ string with
/// a valid checksum, one with a bad checksum → the right labels, two revocations, two
/// `token.revoked` events with reason `leak_report`, two emails with the URL. Before it,
/// a bad signature, an unknown key and no signature change nothing.
fn a_signed_batch_revokes_exactly_the_live_credentials(b: &Backend) {
    let rep = Reporter::new(KID);
    let (s, _, mails, _dir) = start(b, &rep);
    let owner = s.owner_login();
    let rx = Receiver::start(0);
    let r = s.post("/api/v1/webhooks", &owner, json!({"url": rx.url, "events": ["token.revoked"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let (_, dana) = s.user(&owner, "dana@example.test", &["org:developer"]);
    let (pat_id, pat) = s.pat(&dana, json!({"name": "laptop", "ttl_days": 5, "roles": ["org:developer"]}));
    let (app_id, client_id, app_secret) = s.app(&owner, json!({"name": "billing-sync", "roles": ["org:member"]}));
    let (old_id, old) = s.pat(&owner, json!({"name": "old", "ttl_days": 5}));
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{old_id}"), &owner).status, 204);
    let random = secrets::generate(SecretKind::Personal).value;
    let mut bad = pat.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    assert!(secrets::parse(&random).is_ok() && secrets::parse(&bad).is_err());
    let batch = json!([
        item(&pat, "tokend_personal_token"),
        item(&app_secret, "tokend_client_secret"),
        item(&old, "tokend_personal_token"),
        item(&random, "tokend_personal_token"),
        item(&bad, "tokend_personal_token"),
    ])
    .to_string();

    // Refusals: 401, nothing changed (audit of refusals aside).
    let before = s.data_snapshot();
    let other = Reporter::new(KID);
    for (what, r) in [
        ("signed by another key under the same id", post(&s, KID, &other.sign(batch.as_bytes()), batch.as_bytes())),
        ("a signature over another body", post(&s, KID, &rep.sign(b"[]"), batch.as_bytes())),
        ("an unknown key id", post(&s, "nobody", &rep.sign(batch.as_bytes()), batch.as_bytes())),
        ("not base64", post(&s, KID, "!!not-base64!!", batch.as_bytes())),
        ("no signature", s.raw("POST", "/leaks/report", &[("Content-Type", "application/json")], batch.as_bytes())),
    ] {
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert!(!r.text.contains(&pat[8..]), "{what}: the answer never repeats a secret");
    }
    assert_eq!(s.data_snapshot(), before, "refused reports change nothing");
    assert_eq!(s.exchange(&pat).status, 200, "the PAT still works");

    // The signed batch.
    let r = post(&s, KID, &rep.sign(batch.as_bytes()), batch.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    let labels: Vec<(String, String, String)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["token_hash"].as_str().unwrap().into(),
                l["token_type"].as_str().unwrap().into(),
                l["label"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = [
        (&pat, "tokend_personal_token", "true_positive"),
        (&app_secret, "tokend_client_secret", "true_positive"),
        (&old, "tokend_personal_token", "false_positive"),
        (&random, "tokend_personal_token", "false_positive"),
        (&bad, "tokend_personal_token", "false_positive"),
    ];
    assert_eq!(labels.len(), expect.len());
    for ((hash, kind, label), (secret, k, l)) in labels.iter().zip(expect) {
        assert_eq!(
            (hash.as_str(), kind.as_str(), label.as_str()),
            (secrets::hash(secret).as_str(), k, l),
            "{secret:.12}"
        );
    }
    assert!(!r.text.contains(&pat[8..]) && !r.text.contains(&app_secret[7..]), "labels carry hashes, not secrets");

    // Revoked at once.
    let ex = s.exchange(&pat);
    assert_eq!((ex.status, ex.body["error"].as_str()), (400, Some("invalid_grant")), "{}", ex.text);
    let cc = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&client_id, &app_secret)));
    assert_eq!(cc.status, 401, "the app's leaked secret is dead: {}", cc.text);
    let rec = s.get(&format!("/api/v1/me/tokens/{pat_id}"), &dana);
    assert_eq!(rec.body["status"], json!("revoked"), "{}", rec.text);
    // The audit rows carry the reason and the URL; the secrets appear nowhere in the database.
    let audit = s.rows("audit_events").join("\n");
    let revocations: Vec<&str> = audit.lines().filter(|l| l.contains("leak_report")).collect();
    assert_eq!(revocations.len(), 2, "{revocations:#?}");
    assert!(revocations.iter().any(|l| l.contains(&pat_id) && l.contains("action=token.revoke")));
    assert!(revocations.iter().any(|l| l.contains(&app_id) && l.contains("action=app.secret.revoke")));
    assert!(revocations.iter().all(|l| l.contains(URL)), "{revocations:#?}");
    for t in ["audit_events", "api_tokens", "apps", "outbox"] {
        let rows = s.rows(t).join("\n");
        for secret in [&pat, &app_secret, &random] {
            assert!(!rows.contains(secret.as_str()), "{t} holds a reported secret");
        }
    }

    // Two webhook events with reason leak_report, two emails with the URL.
    let p = s.deliver_all();
    assert_eq!((p.retried, p.failed), (0, 0), "{p:?}");
    let all: Vec<Value> = rx.requests().iter().map(|r| r.json()).collect();
    // The owner's own revocation of "old" before the report, then the report's two.
    let (events, earlier): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|e| e["data"]["reason"] == "leak_report");
    assert_eq!(earlier.len(), 1, "{earlier:#?}");
    assert_eq!(
        (earlier[0]["data"]["reason"].as_str(), earlier[0]["data"]["token"]["id"].as_str()),
        (Some("owner"), Some(old_id.as_str()))
    );
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events.iter().all(|e| e["type"] == "token.revoked"), "{events:#?}");
    assert!(events.iter().all(|e| e["data"]["leak"]["url"] == URL), "{events:#?}");
    assert!(events.iter().any(|e| e["data"]["token"]["id"] == json!(pat_id)));
    assert!(events.iter().any(|e| e["data"]["app"]["id"] == json!(app_id) && e["data"]["credential"] == "app_secret"));
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let to_dana = mails.iter().find(|m| m.to == ["<dana@example.test>"]).expect("the PAT's owner is told");
    let to_owner = mails.iter().find(|m| m.to == [format!("<{}>", s.owner_email)]).expect("the app's admin is told");
    for m in [to_dana, to_owner] {
        assert!(m.data.contains(URL), "the mail names where it was found: {}", m.data);
        assert!(!m.data.contains(&pat[8..]) && !m.data.contains(&app_secret[7..]), "never the secret");
    }
    assert!(to_owner.data.contains("billing-sync"), "{}", to_owner.data);

    // The same report again: nothing is live any more, nothing changes.
    let before = s.data_snapshot();
    let r = post(&s, KID, &rep.sign(batch.as_bytes()), batch.as_bytes());
    assert_eq!(r.status, 200);
    assert!(r.body.as_array().unwrap().iter().all(|l| l["label"] == "false_positive"), "{}", r.text);
    assert_eq!(s.data_snapshot(), before);
}

/// Bounds: a body over 256 KiB is refused before anything is read into a report; a body
/// that is not an array is 400; past the key's budget 429 with Retry-After. A new key added
/// to the key file is picked up without a restart.
fn bounds_budget_and_key_rotation(b: &Backend) {
    let rep = Reporter::new(KID);
    let (s, file, _, _dir) = start(b, &rep);
    let before = s.data_snapshot();
    let huge = vec![b' '; 300 * 1024];
    let r = post(&s, KID, &rep.sign(&huge), &huge);
    assert_eq!(r.status, 413, "{}", r.text);
    let r = post(&s, KID, &rep.sign(b"{\"token\":1}"), b"{\"token\":1}");
    assert_eq!(r.status, 400, "{}", r.text);

    // Rotation: a second key appears in the file; the server reads it again for the unknown id.
    let second = Reporter::new("rotated-key-2");
    let mut doc = rep.doc.clone();
    doc["public_keys"].as_array_mut().unwrap().push(second.doc["public_keys"][0].clone());
    std::fs::write(&file, doc.to_string()).unwrap();
    // The first unknown id right after start may fall inside the reload gap; the source is
    // read again at most every 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = post(&s, "rotated-key-2", &second.sign(b"[]"), b"[]");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(std::time::Instant::now() < deadline, "the rotated-in key was never read");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    // The budget is per key: the first key's runs out, the second's does not.
    let mut refused = None;
    for _ in 0..=tokend::reporters::REPORTS_PER_MINUTE {
        let r = post(&s, KID, &rep.sign(b"[]"), b"[]");
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let refused = refused.expect("the key's budget runs out");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(post(&s, "rotated-key-2", &second.sign(b"[]"), b"[]").status, 200);
    assert_eq!(s.data_snapshot(), before, "none of this changed any data");
}

/// `tokend leaks check`: the operator pipes a suspected secret in; a live service-account
/// token is revoked the same way (reason leak_report, URL in the audit row, event queued);
/// the same secret again, and a random one, answer exit 5 and change nothing.
fn operator_check_revokes_the_same_way(b: &Backend) {
    let rep = Reporter::new(KID);
    let (s, _, _, _dir) = start(b, &rep);
    let owner = s.owner_login();
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "nightly", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let (tid, secret) = s.sa_token(&owner, &sa, json!({"name": "ci", "ttl_days": 5}));
    let check = |input: &str| crate::common::helpers::leaks_check(&s, URL, input);
    let (code, out) = check(&format!("{secret}\n"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("revoked"), "{out}");
    assert!(!out.contains(&secret[8..]), "the output never repeats the secret");
    assert_eq!(s.exchange(&secret).status, 400, "revoked");
    let audit = s.rows("audit_events").join("\n");
    assert!(audit.lines().any(|l| l.contains(&tid) && l.contains("leak_report") && l.contains(URL)), "{audit}");
    let before = s.data_snapshot();
    for input in [secret.clone(), secrets::generate(SecretKind::Service).value, "not a secret".into()] {
        let (code, out) = check(&input);
        assert_eq!(code, Some(5), "{out}");
        assert!(out.contains("not a live tokend credential"), "{out}");
    }
    assert_eq!(s.data_snapshot(), before);
}

backend_tests!(
    a_signed_batch_revokes_exactly_the_live_credentials,
    bounds_budget_and_key_rotation,
    operator_check_revokes_the_same_way,
);
