//! Issue 2 (Foundation), through the real interfaces: discovery and JWKS, health and
//! metrics, password login, the bearer extractor against forged tokens, key rotation (API
//! and CLI), refusal to start on bad key files / config / database, `tokend org create`,
//! and that the database never holds a secret.
use crate::common;
use crate::common::assert::is_problem;
use crate::common::helpers::{jwks_kids, kid_of};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{now, Backend, Resp, Server};
use serde_json::{json, Value};
use tokend::clock::Clock;

// ---------------------------------------------------------------- helpers: JWTs

fn b64_json(v: &Value) -> String {
    B64.encode(v.to_string())
}

fn segments(token: &str) -> Vec<String> {
    let parts: Vec<String> = token.split('.').map(str::to_string).collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three segments");
    parts
}

fn decode_segment(seg: &str) -> Value {
    serde_json::from_slice(&B64.decode(seg).expect("base64url segment")).expect("JSON segment")
}

fn header_of(token: &str) -> Value {
    decode_segment(&segments(token)[0])
}

fn claims_of(token: &str) -> Value {
    decode_segment(&segments(token)[1])
}

/// Signs `claims` with an ES256 key (PKCS#8) under the given header fields.
fn sign_es256(key: &jsonwebtoken::EncodingKey, kid: Option<&str>, typ: Option<&str>, claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = kid.map(str::to_string);
    h.typ = typ.map(str::to_string);
    let t = jsonwebtoken::encode(&h, claims, key).expect("signing a test token");
    // In low-S form, as tokend signs (the server refuses high-S twins, issue #18).
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut sig = B64.decode(sig).unwrap();
    tokend::jwt::es256_low_s(&mut sig);
    format!("{head}.{}", B64.encode(sig))
}

/// A fresh ES256 key the server has never seen.
fn foreign_key() -> jsonwebtoken::EncodingKey {
    let rng = ring::rand::SystemRandom::new();
    let der =
        ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    jsonwebtoken::EncodingKey::from_ec_der(der.as_ref())
}

fn keys_dir(s: &Server) -> PathBuf {
    s.dir.path().join("keys")
}

/// The server's own signing key, read from its key directory: (kid from the .json status
/// file, encoding key from the PKCS#8 PEM).
fn server_key(s: &Server) -> (String, jsonwebtoken::EncodingKey) {
    let dir = keys_dir(s);
    let pems: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    assert_eq!(pems.len(), 1, "a fresh server has exactly one key file: {pems:?}");
    let pem = &pems[0];
    let meta: Value = serde_json::from_slice(&std::fs::read(pem.with_extension("json")).unwrap()).unwrap();
    let kid = meta["kid"].as_str().expect("kid in the key status file").to_string();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(pem).unwrap()).expect("PKCS#8 EC PEM");
    (kid, key)
}

/// Claims a legitimate token of the owner would carry, with a fresh jti.
fn owner_claims(s: &Server) -> Value {
    let mut c = claims_of(&s.owner_login());
    c["jti"] = json!(uuid::Uuid::new_v4().to_string());
    c
}

/// GET /api/v1/me with a bearer must be refused with a 401 problem.
#[track_caller]
fn assert_rejected(s: &Server, token: &str, what: &str) {
    let r = s.get("/api/v1/me", token);
    assert_eq!(r.status, 401, "{what}: expected 401, got {} {}", r.status, r.text);
    assert!(is_problem(&r), "{what}: 401 must be problem+json: {:?} {}", r.header("content-type"), r.text);
}

#[track_caller]
fn assert_accepted(s: &Server, token: &str, what: &str) {
    let r = s.get("/api/v1/me", token);
    assert_eq!(r.status, 200, "{what}: expected 200, got {} {}", r.status, r.text);
}

fn login_raw(s: &Server, email: &str, password: &str) -> Resp {
    s.call("POST", "/api/v1/login", None, Some(&json!({"email": email, "password": password})))
}

// ---------------------------------------------------------------- helpers: the CLI

struct Out {
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // stdout may carry credentials: never print it.
        write!(f, "exit={:?} timed_out={} stderr={:?}", self.code, self.timed_out, self.stderr)
    }
}

/// The `tokend` binary with a clean environment of its own variables.
fn tokend(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokend"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TOKEND_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.args(args).envs(envs.iter().copied()).current_dir(cwd);
    c
}

/// Runs a command with optional stdin; kills it (by its own handle) after `timeout`.
fn run(mut c: Command, stdin: Option<&str>, timeout: Duration) -> Out {
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawning tokend");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(input.as_bytes()).unwrap();
    }
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Out {
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn cli(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
    run(tokend(cwd, args, envs), None, Duration::from_secs(60))
}

/// `tokend verify` for the default issuer's audience, the token on stdin (never argv).
fn cli_verify(cwd: &Path, token: &str, envs: &[(&str, &str)]) -> Out {
    let args = ["verify", "--audience", "http://127.0.0.1:8080"];
    run(tokend(cwd, &args, envs), Some(token), Duration::from_secs(60))
}

/// `tokend serve` that is expected to refuse to start.
fn serve_fails(cwd: &Path, envs: &[(&str, &str)]) -> Out {
    let mut all = vec![("TOKEND_BIND", "127.0.0.1:0")];
    all.extend_from_slice(envs);
    let out = run(tokend(cwd, &["serve"], &all), None, Duration::from_secs(30));
    assert!(!out.timed_out, "tokend serve should have refused to start but kept running: {out:?}");
    assert!(!out.ok(), "tokend serve should exit non-zero: {out:?}");
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"), "no panic: {out:?}");
    out
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn keys(&self) -> String {
        self.path().join("keys").display().to_string()
    }
    fn db(&self) -> String {
        format!("sqlite://{}/tokend.db", self.path().display())
    }
}

fn rfc3339(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339 time").timestamp()
}

// ================================================================= 1. discovery, health, metrics

fn discovery_documents(b: &Backend) {
    let s = b.start();
    let iss = s.issuer();
    let a = s.call("GET", "/.well-known/oauth-authorization-server", None, None);
    let o = s.call("GET", "/.well-known/openid-configuration", None, None);
    for r in [&a, &o] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
        let m = &r.body;
        assert_eq!(m["issuer"], json!(iss));
        assert_eq!(m["token_endpoint"], json!(format!("{iss}/oauth/token")));
        assert_eq!(m["jwks_uri"], json!(format!("{iss}/.well-known/jwks.json")));
        assert_eq!(m["revocation_endpoint"], json!(format!("{iss}/oauth/revoke")));
        assert_eq!(m["introspection_endpoint"], json!(format!("{iss}/oauth/introspect")));
        let grants = m["grant_types_supported"].as_array().expect("grant_types_supported");
        for g in ["client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"] {
            assert!(grants.contains(&json!(g)), "grant {g} advertised: {grants:?}");
        }
        let auth = m["token_endpoint_auth_methods_supported"].as_array().expect("auth methods");
        for meth in ["client_secret_basic", "client_secret_post"] {
            assert!(auth.contains(&json!(meth)), "{meth} advertised: {auth:?}");
        }
        assert!(!auth.contains(&json!("none")), "the token endpoint does not accept unauthenticated clients");
    }
    assert_eq!(a.body, o.body, "both discovery paths serve the same document");
    // The advertised URLs work.
    let j = ureq::get(a.body["jwks_uri"].as_str().unwrap()).call().unwrap();
    assert_eq!(j.status(), 200);
}

fn jwks_is_public_only_and_cacheable(b: &Backend) {
    let s = b.start();
    let r = s.call("GET", "/.well-known/jwks.json", None, None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    let keys = r.body["keys"].as_array().expect("keys array");
    assert!(!keys.is_empty(), "at least one published key");
    for k in keys {
        assert!(k["kid"].as_str().is_some_and(|v| !v.is_empty()), "kid: {k}");
        assert!(k["kty"].is_string(), "kty: {k}");
        assert_eq!(k["alg"], json!("ES256"), "alg: {k}");
        assert_eq!(k["use"], json!("sig"), "use: {k}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(k.get(private).is_none(), "JWKS must not carry private member {private:?}: {k}");
        }
    }
    // The login token's kid is published.
    let at = s.owner_login();
    assert!(keys.iter().any(|k| k["kid"] == json!(kid_of(&at))));

    let cc = r.header("cache-control").expect("Cache-Control on the JWKS").to_ascii_lowercase();
    let max_age: i64 = cc
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age=").map(|v| v.trim().parse().expect("numeric max-age")))
        .unwrap_or_else(|| panic!("Cache-Control has max-age: {cc}"));
    assert_eq!(max_age, 300, "the JWKS is cached for 300 s (README: key publish delay vs max-age): {cc}");
    assert!(cc.contains("public"), "{cc}");

    let etag = r.header("etag").expect("ETag on the JWKS").to_string();
    let nm = s.raw("GET", "/.well-known/jwks.json", &[("If-None-Match", &etag)], b"");
    assert_eq!(nm.status, 304, "If-None-Match with the current ETag");
    assert!(nm.text.is_empty(), "304 has an empty body: {:?}", nm.text);
    assert_eq!(nm.header("etag"), Some(etag.as_str()), "304 repeats the ETag");
    let list = format!("\"something-else\", {etag}");
    assert_eq!(s.raw("GET", "/.well-known/jwks.json", &[("If-None-Match", &list)], b"").status, 304);
    let other = s.raw("GET", "/.well-known/jwks.json", &[("If-None-Match", "\"not-the-etag\"")], b"");
    assert_eq!(other.status, 200);
    assert_eq!(other.text, r.text, "same bytes while the keys do not change");
    assert_eq!(other.header("etag"), Some(etag.as_str()));
}

fn health_readiness_and_metrics(b: &Backend) {
    let s = b.start();
    let h = s.call("GET", "/healthz", None, None);
    assert_eq!(h.status, 200, "{}", h.text);
    let r = s.call("GET", "/readyz", None, None);
    assert_eq!(r.status, 200, "{}", r.text);

    let at = s.owner_login();
    assert_eq!(s.get(&format!("/api/v1/users/{}", s.owner_id), &at).status, 200);
    assert_eq!(s.get("/api/v1/me", &at).status, 200);
    s.exchange_ok(&s.owner_pat);
    s.exchange_ok(&s.owner_pat);
    let bad = s.exchange("tkd_pat_notarealtoken");
    assert_eq!(bad.status, 400, "{}", bad.text);

    let m = s.call("GET", "/metrics", None, None);
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", m.header("content-type"));
    let text = &m.text;
    assert!(text.contains("tokend_http_requests_total"), "request counter present");
    assert!(text.contains("tokend_tokens_issued_total"), "issuance counter present");
    let sample = |name: &str, labels: &[&str]| -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        sample("tokend_tokens_issued_total", &["grant=\"refresh_token\"", "outcome=\"success\""]),
        Some(2.0),
        "two successful exchanges counted:\n{text}"
    );
    assert!(
        sample("tokend_tokens_issued_total", &["grant=\"refresh_token\"", "outcome=\"invalid_grant\""])
            .is_some_and(|v| v >= 1.0),
        "failed exchange counted by outcome:\n{text}"
    );
    assert!(
        sample("tokend_http_requests_total", &["route=\"/api/v1/me\"", "status=\"200\""]).is_some_and(|v| v >= 1.0),
        "requests counted by route and status:\n{text}"
    );
    assert!(text.contains("tokend_http_request_duration_seconds"), "latency histogram present");
    assert!(!text.contains(&s.owner_id), "metrics label routes by pattern, never the raw path with ids");
}

// ================================================================= 2. login

fn login_issues_verifiable_token(b: &Backend) {
    let s = b.start();
    let r = login_raw(&s, &s.owner_email, &s.owner_password);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["expires_in"], json!(1800));
    assert!(r.header("cache-control").is_some_and(|c| c.contains("no-store")), "a token response is not cached");
    let at = r.body["access_token"].as_str().unwrap();

    // Independent verification against the JWKS fetched over HTTP.
    let c = s.verify_api(at);
    let h = header_of(at);
    assert_eq!(h["typ"], json!("at+jwt"));
    assert_eq!(h["alg"], json!("ES256"));
    assert_eq!(c["iss"], json!(s.issuer()));
    assert_eq!(c["aud"], json!(s.api_audience()), "logins are for the management audience");
    assert_eq!(c["sub"], json!(s.owner_id));
    assert_eq!(c["org"], json!(s.org_id));
    assert_eq!(c["acct"], json!("user"));
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["roles"], json!(["org:owner"]));
    assert_eq!(c["iat"], json!(s.clock.now()), "iat is the server's now");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 1800);
    assert!(c["nbf"].as_i64().unwrap() <= c["iat"].as_i64().unwrap());
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_ne!(claims_of(&s.owner_login())["jti"], c["jti"], "jti is unique per token");

    let me = s.get("/api/v1/me", at);
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], json!(s.owner_id));
    assert_eq!(me.body["email"], json!(s.owner_email));
    assert_eq!(me.body["org"], json!(s.org_id));
    assert_eq!(me.body["roles"], json!(["org:owner"]));

    // All the user's roles, not only the org role.
    s.role(at, "metrics:read");
    let (uid, uat) = s.user(at, "dev@example.test", &["org:developer", "metrics:read"]);
    let uc = s.verify_api(&uat);
    assert_eq!(uc["sub"], json!(uid));
    let mut roles: Vec<String> = serde_json::from_value(uc["roles"].clone()).unwrap();
    roles.sort();
    assert_eq!(roles, vec!["metrics:read".to_string(), "org:developer".to_string()]);
    assert_eq!(uc["amr"], json!(["pwd"]));

    // No bearer at all.
    let none = s.call("GET", "/api/v1/me", None, None);
    assert_eq!(none.status, 401);
    assert!(is_problem(&none), "{}", none.text);
    assert!(none.header("www-authenticate").is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer")));
}

fn login_failures_look_alike(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (uid, _) = s.user(&at, "quiet@example.test", &["org:member"]);
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &at, json!({"disabled": true})).status, 200);

    let wrong_pw = login_raw(&s, &s.owner_email, "not-the-password-1");
    let unknown = login_raw(&s, "nobody@example.test", "not-the-password-1");
    let disabled = login_raw(&s, "quiet@example.test", "user-password-123");
    assert_eq!(wrong_pw.status, 401, "{}", wrong_pw.text);
    assert!(is_problem(&wrong_pw), "{}", wrong_pw.text);
    assert_eq!(unknown.status, wrong_pw.status);
    assert_eq!(unknown.text, wrong_pw.text, "unknown email and wrong password answer the same body");
    assert_eq!(unknown.header("content-type"), wrong_pw.header("content-type"));
    assert_eq!(disabled.status, wrong_pw.status);
    assert_eq!(disabled.text, wrong_pw.text, "a disabled user's login looks like any other failure");
    for r in [&wrong_pw, &unknown, &disabled] {
        assert!(!r.text.contains("not-the-password-1") && !r.text.contains("user-password-123"), "no password echoed");
        assert!(r.body.get("access_token").is_none());
    }
}

fn login_malformed_bodies_are_problems(b: &Backend) {
    let s = b.start();
    let json_ct = [("Content-Type", "application/json")];
    let (j, form, text) = ("application/json", "application/x-www-form-urlencoded", "text/plain");
    // (what, content type, body)
    let cases: [(&str, &str, &[u8]); 11] = [
        ("bad JSON", j, br#"{"email": "admin@localhost", "password": "#),
        ("empty body", j, b""),
        ("not JSON at all", j, b"email=admin@localhost&password=x"),
        ("wrong content type", form, b"email=admin%40localhost&password=owner-password-123"),
        ("text/plain", text, br#"{"email":"admin@localhost","password":"owner-password-123"}"#),
        ("missing password", j, br#"{"email":"admin@localhost"}"#),
        ("missing email", j, br#"{"password":"owner-password-123"}"#),
        ("wrong type", j, br#"{"email":42,"password":"owner-password-123"}"#),
        ("empty array", j, b"[]"),
        ("JSON string", j, br#""admin@localhost""#),
        ("null", j, b"null"),
    ];
    // Malformed JSON 400, a wrong content type 415, well-formed JSON of the wrong shape 422.
    let expect = [400, 400, 400, 415, 415, 422, 422, 422, 422, 422, 422];
    for ((what, ct, body), expected) in cases.into_iter().zip(expect) {
        let r = s.raw("POST", "/api/v1/login", &[("Content-Type", ct)], body);
        let shown = if r.status < 300 { "(body withheld: may hold a token)" } else { r.text.as_str() };
        assert_eq!(r.status, expected, "{what}: expected {expected}, got {} {shown}", r.status);
        assert!(is_problem(&r), "{what}: expected problem+json, got {:?} {}", r.header("content-type"), r.text);
        assert!(!r.text.contains("owner-password-123"), "{what}: the password is not echoed");
    }
    let bad = s.raw("POST", "/api/v1/login", &json_ct, b"{\"email\":");
    assert_eq!(bad.status, 400, "malformed JSON is 400");
    let ct = s.raw(
        "POST",
        "/api/v1/login",
        &[("Content-Type", "text/plain")],
        br#"{"email":"a@b.c","password":"12345678"}"#,
    );
    assert_eq!(ct.status, 415, "wrong content type is 415");

    // The contract's body is an object: the same credentials as a JSON array are malformed.
    let arr = json!([s.owner_email, s.owner_password]);
    let r = s.raw("POST", "/api/v1/login", &json_ct, arr.to_string().as_bytes());
    assert_eq!(r.status, 422, "array body: expected 422, got {} (body withheld: may hold a token)", r.status);
    assert!(is_problem(&r), "array body: problem+json expected");

    // Unknown routes and methods under /api/v1.
    let at = s.owner_login();
    for (m, p) in [("GET", "/api/v1/nosuch"), ("POST", "/api/v1/nosuch/deeper"), ("GET", "/api/v1/")] {
        let r = s.call(m, p, Some(&at), None);
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text);
        assert!(is_problem(&r), "{m} {p}: {:?} {}", r.header("content-type"), r.text);
    }
    let unauth = s.call("GET", "/api/v1/nosuch", None, None);
    assert_eq!(unauth.status, 404);
    assert!(is_problem(&unauth));
    let wrong_method = s.call("GET", "/api/v1/login", None, None);
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);
    assert!(is_problem(&wrong_method), "wrong method: {:?} {}", wrong_method.header("content-type"), wrong_method.text);
}

fn login_throttled_per_account(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, _) = s.user(&at, "other@example.test", &["org:member"]);
    // src/service/users.rs Throttle: 5 failures per account in a 900 s window.
    for i in 0..5 {
        let r = login_raw(&s, &s.owner_email, "wrong-password-xyz");
        assert_eq!(r.status, 401, "failure {i}: {}", r.text);
    }
    let r = login_raw(&s, &s.owner_email, "wrong-password-xyz");
    assert_eq!(r.status, 429, "the 6th wrong password is throttled: {}", r.status);
    assert!(is_problem(&r), "{}", r.text);
    assert!(r.body.get("access_token").is_none());
    let retry: i64 = r.header("retry-after").expect("Retry-After").trim().parse().expect("Retry-After in seconds");
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    // Case and whitespace do not escape the per-account counter.
    let upper = login_raw(&s, &format!("  {}  ", s.owner_email.to_uppercase()), "wrong-password-xyz");
    assert_eq!(upper.status, 429, "the same account spelled differently is throttled too");
    // Other accounts are not locked out by one account's failures.
    assert_eq!(login_raw(&s, "other@example.test", "user-password-123").status, 200);
    // Issue #18 item 6: the right password is never throttled, not even now.
    let ok = login_raw(&s, &s.owner_email, &s.owner_password);
    assert_eq!(ok.status, 200, "the right password while guesses wait: {}", ok.text);
}

fn login_throttled_per_ip(b: &Backend) {
    let s = b.start();
    // src/service/users.rs Throttle: 30 failures per client IP in the window, spread over
    // many accounts so that no per-account limit is reached.
    for i in 0..30 {
        let r = login_raw(&s, &format!("probe{i}@example.test"), "wrong-password-xyz");
        assert_eq!(r.status, 401, "failure {i}: {}", r.text);
    }
    let r = login_raw(&s, "fresh@example.test", "wrong-password-xyz");
    assert_eq!(r.status, 429, "an IP spraying many accounts is throttled");
    assert!(r.header("retry-after").is_some_and(|v| v.trim().parse::<u64>().is_ok_and(|n| n >= 1)));
    assert!(is_problem(&r));
}

// ================================================================= 3. forged bearers

fn forged_alg_none(b: &Backend) {
    let s = b.start();
    let (kid, _) = server_key(&s);
    let claims = owner_claims(&s);
    for alg in ["none", "None", "NONE"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let t = format!("{}.{}.", b64_json(&h), b64_json(&claims));
        assert_rejected(&s, &t, &format!("alg {alg} with empty signature"));
        // And with a leftover signature from a real token.
        let real = s.owner_login();
        let t2 = format!("{}.{}.{}", b64_json(&h), b64_json(&claims), segments(&real)[2]);
        assert_rejected(&s, &t2, &format!("alg {alg} with some signature"));
    }
    let h = json!({"alg": "none", "typ": "at+jwt"});
    assert_rejected(&s, &format!("{}.{}.", b64_json(&h), b64_json(&claims)), "alg none without kid");
}

fn hmac_token(alg: ring::hmac::Algorithm, secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let key = ring::hmac::Key::new(alg, secret);
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

fn forged_hs256_with_public_key(b: &Backend) {
    let s = b.start();
    let claims = owner_claims(&s);
    let set_text = s.call("GET", "/.well-known/jwks.json", None, None).text;
    let set: Value = serde_json::from_str(&set_text).unwrap();
    let jwk = set["keys"][0].clone();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let x = jwk["x"].as_str().unwrap().to_string();
    let y = jwk["y"].as_str().unwrap().to_string();
    let mut raw_point = vec![4u8];
    raw_point.extend(B64.decode(&x).unwrap());
    raw_point.extend(B64.decode(&y).unwrap());
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the JWK as JSON", jwk.to_string().into_bytes()),
        ("the JWKS document bytes", set_text.clone().into_bytes()),
        ("the x coordinate (base64url)", x.clone().into_bytes()),
        ("the x coordinate (raw)", B64.decode(&x).unwrap()),
        ("the uncompressed EC point", raw_point),
        ("the kid", kid.clone().into_bytes()),
    ];
    let algs =
        [("HS256", ring::hmac::HMAC_SHA256), ("HS384", ring::hmac::HMAC_SHA384), ("HS512", ring::hmac::HMAC_SHA512)];
    for (alg, mac) in algs {
        for (what, secret) in &secrets {
            let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
            assert_rejected(&s, &hmac_token(mac, secret, &h, &claims), &format!("{alg} signed with {what}"));
        }
    }
}

fn forged_altered_payload(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, member) = s.user(&at, "member@example.test", &["org:member"]);
    assert_accepted(&s, &member, "the untouched member token");
    assert_eq!(s.get("/api/v1/users", &member).status, 403, "a member may not list users");
    let seg = segments(&member);
    let mut c = claims_of(&member);

    let alter = |f: &dyn Fn(&mut Value)| -> String {
        let mut c2 = c.clone();
        f(&mut c2);
        format!("{}.{}.{}", seg[0], b64_json(&c2), seg[2])
    };
    let cases: Vec<(&str, String)> = vec![
        ("roles raised to org:owner", alter(&|c| c["roles"] = json!(["org:owner"]))),
        ("roles extended", alter(&|c| c["roles"] = json!(["org:member", "org:admin"]))),
        ("scope raised", alter(&|c| c["scope"] = json!("org:owner"))),
        ("sub switched to the owner", alter(&|c| c["sub"] = json!(s.owner_id))),
        ("exp extended", alter(&|c| c["exp"] = json!(c["exp"].as_i64().unwrap() + 86_400))),
    ];
    for (what, t) in &cases {
        assert_rejected(&s, t, what);
        let r = s.get("/api/v1/users", t);
        assert_eq!(r.status, 401, "{what}: an altered token gains nothing: {}", r.status);
    }
    // A flipped bit in the signature, and a truncated signature.
    let mut sig = B64.decode(&seg[2]).unwrap();
    sig[10] ^= 1;
    assert_rejected(&s, &format!("{}.{}.{}", seg[0], seg[1], B64.encode(&sig)), "signature bit flipped");
    assert_rejected(&s, &format!("{}.{}.{}", seg[0], seg[1], &seg[2][..20]), "signature truncated");
    assert_rejected(&s, &format!("{}.{}", seg[0], seg[1]), "no signature segment");
    // Re-encoding the same claims with different JSON whitespace also breaks the signature.
    c["roles"] = json!(["org:member"]);
    let pretty = B64.encode(serde_json::to_string_pretty(&c).unwrap());
    assert_rejected(&s, &format!("{}.{}.{}", seg[0], pretty, seg[2]), "payload re-serialised");
}

fn forged_expired(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let c = claims_of(&at);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 1800);
    s.clock.advance(1799);
    assert_accepted(&s, &at, "one second before exp");
    s.clock.advance(1 + 30 + 1);
    assert_rejected(&s, &at, "expired beyond the 30 s leeway");
    s.clock.advance(86_400);
    assert_rejected(&s, &at, "long expired");

    // A token signed by the server's own key with exp in the past (the server's clock).
    let (kid, key) = server_key(&s);
    let now = s.clock.now();
    let mut old = owner_claims(&s);
    assert_accepted(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &old), "control: hand-signed valid token");
    old["iat"] = json!(now - 4000);
    old["nbf"] = json!(now - 4000);
    old["exp"] = json!(now - 2200);
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &old), "hand-signed, expired");
    // Not yet valid (nbf well in the future).
    let mut future = owner_claims(&s);
    future["iat"] = json!(now + 3600);
    future["nbf"] = json!(now + 3600);
    future["exp"] = json!(now + 5400);
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &future), "nbf an hour ahead");
    // Without exp at all.
    let mut no_exp = owner_claims(&s);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &no_exp), "no exp claim");
}

fn forged_wrong_issuer(b: &Backend) {
    let s = b.start();
    let (kid, key) = server_key(&s);
    let good = owner_claims(&s);
    // Control: the hand-signing itself is accepted, so rejections below are about the claim.
    assert_accepted(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &good), "control: hand-signed valid token");
    for iss in ["https://evil.example", "http://127.0.0.1:1", "", "HTTP://EVIL"] {
        let mut c = good.clone();
        c["iss"] = json!(iss);
        assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), &format!("server key, iss {iss:?}"));
    }
    let mut c = good.clone();
    c["iss"] = json!(format!("{}/", s.issuer()));
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), "server key, issuer with a trailing slash");
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("iss");
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), "server key, no iss");
    // A key the server does not know, claiming the real issuer or another one.
    let evil = foreign_key();
    let mut c = good.clone();
    c["iss"] = json!("https://evil.example");
    assert_rejected(&s, &sign_es256(&evil, Some("evil-kid"), Some("at+jwt"), &c), "foreign key, foreign issuer");
    assert_rejected(&s, &sign_es256(&evil, Some("evil-kid"), Some("at+jwt"), &good), "foreign key, real issuer");
}

fn forged_wrong_audience(b: &Backend) {
    let other = "https://metrics.example.test";
    let s = b.start_with(|cfg| cfg.audiences.push(other.to_string()));
    let (kid, key) = server_key(&s);
    let good = owner_claims(&s);
    assert_accepted(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &good), "control: hand-signed valid token");
    for aud in [json!("https://api.other.example"), json!(other), json!(""), json!(format!("{}/", s.issuer()))] {
        let mut c = good.clone();
        c["aud"] = aud.clone();
        assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), &format!("server key, aud {aud}"));
    }
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("aud");
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), "server key, no aud");
    let evil = foreign_key();
    let mut c = good.clone();
    c["aud"] = json!("https://api.other.example");
    assert_rejected(&s, &sign_es256(&evil, Some("evil-kid"), Some("at+jwt"), &c), "foreign key, foreign audience");

    // A genuine token the server itself issued for another audience (a resource server)
    // is not a management credential.
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &s.owner_pat), ("resource", other)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let for_rs = r.body["access_token"].as_str().unwrap();
    assert_eq!(s.verify(for_rs, other)["aud"], json!(other));
    assert_rejected(&s, for_rs, "a real token whose aud is another resource server");
    // Nor is one for the default (resource) audience: the management audience is never a default.
    assert_rejected(&s, &s.exchange_ok(&s.owner_pat), "an exchanged token for the default audience");
    // The same exchange naming the management audience works on /api/v1.
    assert_accepted(&s, &s.exchange_api(&s.owner_pat), "an exchanged token for the management audience");
}

fn forged_unknown_kid(b: &Backend) {
    let s = b.start();
    let (kid, key) = server_key(&s);
    let good = owner_claims(&s);
    assert_accepted(&s, &sign_es256(&key, Some(&kid), Some("at+jwt"), &good), "control: hand-signed valid token");
    assert_rejected(&s, &sign_es256(&key, Some("no-such-kid"), Some("at+jwt"), &good), "server key, unknown kid");
    assert_rejected(&s, &sign_es256(&key, None, Some("at+jwt"), &good), "server key, no kid");
    let evil = foreign_key();
    assert_rejected(&s, &sign_es256(&evil, Some("evil-kid"), Some("at+jwt"), &good), "foreign key, its own kid");
    assert_rejected(&s, &sign_es256(&evil, Some(&kid), Some("at+jwt"), &good), "foreign key under the server's kid");
    assert_rejected(&s, &sign_es256(&evil, None, Some("at+jwt"), &good), "foreign key, no kid");
    // A JWT that is not an access token (RFC 9068 typ), even with the right key.
    assert_rejected(&s, &sign_es256(&key, Some(&kid), Some("JWT"), &good), "server key, typ JWT");
    assert_rejected(&s, &sign_es256(&key, Some(&kid), None, &good), "server key, no typ");
    // Garbage.
    for junk in ["", "x", "a.b.c", "eyJhbGciOiJFUzI1NiJ9..", s.owner_pat.as_str()] {
        let r = s.get("/api/v1/me", junk);
        assert_eq!(r.status, 401, "junk bearer {:?}", junk.get(..12));
    }
}

fn bearer_of_disabled_or_deleted_user_rejected(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (a, a_at) = s.user(&at, "alice@example.test", &["org:member"]);
    let (d, d_at) = s.user(&at, "dave@example.test", &["org:member"]);
    assert_accepted(&s, &a_at, "alice before");
    assert_accepted(&s, &d_at, "dave before");
    assert_eq!(s.patch(&format!("/api/v1/users/{a}"), &at, json!({"disabled": true})).status, 200);
    assert_rejected(&s, &a_at, "a disabled user's still-unexpired token");
    assert_eq!(s.delete(&format!("/api/v1/users/{d}"), &at).status, 204);
    assert_rejected(&s, &d_at, "a deleted user's still-unexpired token");
}

// ================================================================= 4. key rotation

fn key_rotation_keeps_old_tokens_until_retired(b: &Backend) {
    let s = b.start();
    let before = s.owner_login();
    let old_kid = kid_of(&before);
    assert_eq!(jwks_kids(&s), vec![old_kid.clone()]);
    let etag_before = s.call("GET", "/.well-known/jwks.json", None, None).header("etag").unwrap().to_string();

    s.clock.advance(1);
    let new = s.state.keys.rotate(s.clock.now()).expect("rotate");
    assert_ne!(new.kid, old_kid);
    let kids = jwks_kids(&s);
    assert!(kids.contains(&old_kid) && kids.contains(&new.kid), "both kids published: {kids:?}");
    assert_eq!(kids.len(), 2);
    let r = s.raw("GET", "/.well-known/jwks.json", &[("If-None-Match", &etag_before)], b"");
    assert_eq!(r.status, 200, "the old ETag no longer matches after a key change");
    assert_ne!(r.header("etag"), Some(etag_before.as_str()));

    // The token from before still verifies, independently and at the server.
    assert_eq!(s.verify_api(&before)["sub"], json!(s.owner_id));
    assert_accepted(&s, &before, "token signed by the old key");

    // New tokens use the new key (login and exchange).
    s.clock.advance(1);
    let after = s.owner_login();
    assert_eq!(kid_of(&after), new.kid, "login tokens are signed by the new key");
    let exchanged = s.exchange_ok(&s.owner_pat);
    assert_eq!(kid_of(&exchanged), new.kid, "exchanged tokens are signed by the new key");
    s.verify_api(&after);
    assert_accepted(&s, &after, "token signed by the new key");

    // Retiring without force is refused while old tokens may live; with force it goes.
    assert!(s.state.keys.retire(&old_kid, s.clock.now(), 86_400, false).is_err(), "retire refuses while tokens live");
    assert!(s.state.keys.retire(&new.kid, s.clock.now(), 86_400, true).is_err(), "the signing key cannot be retired");
    s.state.keys.retire(&old_kid, s.clock.now(), 86_400, true).expect("forced retire");
    assert_eq!(jwks_kids(&s), vec![new.kid.clone()], "the retired kid is no longer published");
    assert_rejected(&s, &before, "token of a retired key");
    assert_accepted(&s, &after, "token of the remaining key");
}

/// With publish delay 0 a rotated-in key signs at once, even in the same second as the
/// previous key was created (e.g. `tokend keys rotate` right after the first start).
fn key_rotation_same_second_new_key_signs(b: &Backend) {
    let s = b.start();
    let t = s.clock.now();
    let first = kid_of(&s.owner_login());
    let mut published = vec![first];
    for i in 0..5 {
        let new = s.state.keys.rotate(t).expect("rotate");
        published.push(new.kid.clone());
        let kids = jwks_kids(&s);
        for k in &published {
            assert!(kids.contains(k), "rotation {i}: {k} still published");
        }
        let at = s.owner_login();
        assert_eq!(kid_of(&at), new.kid, "rotation {i}: new tokens must use the newest key (publish delay 0)");
    }
}

fn cli_keys_rotate_list_retire() {
    let w = Scratch::new();
    let keys = w.keys();
    let db = w.db();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];

    let l = cli(w.path(), &["keys", "list"], &env);
    assert!(l.ok(), "{l:?}");
    let rows: Vec<Vec<String>> = l.stdout.lines().map(|x| x.split('\t').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 1, "a first key is generated: {:?}", l.stdout);
    let k1 = rows[0][0].clone();
    assert_eq!(rows[0][1], "ES256");
    assert_eq!(rows[0][2], "signing");
    let pem = w.path().join("keys").join(format!("{k1}.pem"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777, 0o600, "private key file mode 0600");
    assert!(std::fs::read_to_string(&pem).unwrap().contains("BEGIN PRIVATE KEY"), "PKCS#8 PEM");
    assert!(!l.stdout.contains("PRIVATE"), "list never prints key material");

    // Default publish delay: published now, signs 600 s later.
    let r = cli(w.path(), &["keys", "rotate"], &env);
    assert!(r.ok(), "{r:?}");
    let j: Value = serde_json::from_str(r.stdout.trim()).expect("rotate prints JSON");
    let k2 = j["kid"].as_str().unwrap().to_string();
    assert_ne!(k2, k1);
    assert_eq!(j["alg"], json!("ES256"));
    let k2_published = rfc3339(j["published_at"].as_str().unwrap());
    assert_eq!(rfc3339(j["signs_from"].as_str().unwrap()) - k2_published, 600);
    let l = cli(w.path(), &["keys", "list"], &env);
    assert!(l.ok(), "{l:?}");
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{k1}\t")) && x.contains("\tsigning")), "{}", l.stdout);
    assert!(
        l.stdout.lines().any(|x| x.starts_with(&format!("{k2}\t")) && x.contains("not yet signing")),
        "{}",
        l.stdout
    );

    // The signing key cannot be retired, even with --force.
    // Kids are base64url and may start with '-': `--` keeps this test independent of that
    // (cli_retire_accepts_kid_starting_with_hyphen checks the plain form).
    let r = cli(w.path(), &["keys", "retire", "--force", "--", &k1], &env);
    assert!(!r.ok(), "retiring the signing key is refused: {r:?}");
    assert!(r.stderr.contains(&k1), "{r:?}");
    let r = cli(w.path(), &["keys", "retire", "no-such-kid", "--force"], &env);
    assert!(!r.ok() && r.stderr.contains("no-such-kid"), "{r:?}");

    // A rotation with publish delay 0 signs at once. (A second apart from k1's creation so
    // that this test does not depend on the same-second ordering checked elsewhere: the CLI
    // is another process on the wall clock, so wait until the wall clock has left the second
    // k2 was published in, which is no earlier than k1's.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::now() <= k2_published {
        assert!(Instant::now() < deadline, "the wall clock passes {k2_published}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let env0 = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str()), ("TOKEND_KEY_PUBLISH_DELAY", "0")];
    let r = cli(w.path(), &["keys", "rotate"], &env0);
    assert!(r.ok(), "{r:?}");
    let j: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let k3 = j["kid"].as_str().unwrap().to_string();
    assert_eq!(j["signs_from"], j["published_at"]);
    let l = cli(w.path(), &["keys", "list"], &env0);
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{k3}\t")) && x.contains("\tsigning")), "{}", l.stdout);
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{k1}\t")) && !x.contains("\tsigning")), "{}", l.stdout);

    // k1 signed until just now: retiring it needs --force.
    let r = cli(w.path(), &["keys", "retire", "--", &k1], &env0);
    assert!(!r.ok(), "{r:?}");
    assert!(r.stderr.contains("--force"), "the refusal says how to override: {r:?}");
    let r = cli(w.path(), &["keys", "retire", "--force", "--", &k1], &env0);
    assert!(r.ok(), "{r:?}");
    let l = cli(w.path(), &["keys", "list"], &env0);
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{k1}\t")) && x.contains("retired")), "{}", l.stdout);

    // The retired key is no longer published: `tokend verify` against the directory
    // rejects a token signed by k1 and accepts one signed by k3.
    let dir = w.path().join("keys");
    let sign_with = |kid: &str| {
        let key =
            jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(dir.join(format!("{kid}.pem"))).unwrap()).unwrap();
        let t = now();
        let c = json!({"iss": "http://127.0.0.1:8080", "sub": "u", "aud": "http://127.0.0.1:8080", "exp": t + 600,
            "iat": t, "nbf": t, "jti": "j", "client_id": "c", "scope": "", "roles": [], "org": "o", "acct": "user"});
        sign_es256(&key, Some(kid), Some("at+jwt"), &c)
    };
    let v3 = cli_verify(w.path(), &sign_with(&k3), &env0);
    assert!(v3.ok(), "a token of the live key verifies: {v3:?}");
    let v1 = cli_verify(w.path(), &sign_with(&k1), &env0);
    assert!(!v1.ok(), "a token of the retired key does not: {v1:?}");
}

/// An ES256 key pair (PKCS#8 DER) and its RFC 7638 thumbprint, the way tokend names kids.
fn es256_with_thumbprint() -> (Vec<u8>, String) {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let der = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap().as_ref().to_vec();
    use ring::signature::KeyPair;
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, &der, &rng).unwrap();
    let p = pair.public_key().as_ref();
    let canonical =
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, B64.encode(&p[1..33]), B64.encode(&p[33..65]));
    (der, B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes())))
}

fn write_0600(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// About one kid in 64 starts with '-' (base64url); `tokend keys retire KID`, as API.md
/// writes it, must work for it too.
fn cli_retire_accepts_kid_starting_with_hyphen() {
    let w = Scratch::new();
    let (keys, db) = (w.keys(), w.db());
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
    assert!(cli(w.path(), &["keys", "list"], &env).ok());
    let (der, kid) = (0..100_000).map(|_| es256_with_thumbprint()).find(|(_, k)| k.starts_with('-')).unwrap();
    let dir = w.path().join("keys");
    // An older key in tokend's own layout (PEM + status file), no longer signing.
    let t = now() - 100;
    let meta = json!({"kid": kid, "alg": "ES256", "created_at": t, "activates_at": t, "retired_at": null});
    write_0600(&dir.join(format!("{kid}.json")), meta.to_string().as_bytes());
    write_0600(&dir.join(format!("{kid}.pem")), pem::encode(&pem::Pem::new("PRIVATE KEY", der)).as_bytes());
    let l = cli(w.path(), &["keys", "list"], &env);
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{kid}\t")) && x.contains("verify only")), "{}", l.stdout);

    let r = cli(w.path(), &["keys", "retire", &kid, "--force"], &env);
    assert!(r.ok(), "`tokend keys retire {kid} --force` (kid as printed by keys list): {r:?}");
    let l = cli(w.path(), &["keys", "list"], &env);
    assert!(l.stdout.lines().any(|x| x.starts_with(&format!("{kid}\t")) && x.contains("retired")), "{}", l.stdout);
}

/// A PEM dropped into the directory by hand is published (and may sign); `keys list`,
/// the operator's view of the key ring, must show it.
fn cli_keys_list_shows_hand_dropped_key() {
    let w = Scratch::new();
    let (keys, db) = (w.keys(), w.db());
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
    assert!(cli(w.path(), &["keys", "list"], &env).ok());
    let (der, kid) = es256_with_thumbprint();
    write_0600(
        &w.path().join("keys").join("imported.pem"),
        pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone())).as_bytes(),
    );
    // It is live: `tokend verify` against the directory accepts a token it signed.
    let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
    let t = now();
    let c = json!({"iss": "http://127.0.0.1:8080", "sub": "u", "aud": "http://127.0.0.1:8080", "exp": t + 600,
        "iat": t, "nbf": t, "jti": "j", "client_id": "c", "scope": "", "roles": [], "org": "o", "acct": "user"});
    let v = cli_verify(w.path(), &sign_es256(&key, Some(&kid), Some("at+jwt"), &c), &env);
    assert!(v.ok(), "the hand-dropped key is published: {v:?}");
    let l = cli(w.path(), &["keys", "list"], &env);
    assert!(l.ok(), "{l:?}");
    assert!(
        l.stdout.lines().any(|x| x.starts_with(&format!("{kid}\t"))),
        "keys list shows every published key:\n{}",
        l.stdout
    );
}

fn cli_rotation_is_picked_up_by_a_running_server() {
    let s = Backend::Sqlite.start_with(|cfg| cfg.keys_reload_seconds = 1);
    let old = kid_of(&s.owner_login());
    let keys = keys_dir(&s).display().to_string();
    let w = Scratch::new();
    let db = s.database_url.clone();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str()), ("TOKEND_KEY_PUBLISH_DELAY", "5")];
    let r = cli(w.path(), &["keys", "rotate"], &env);
    assert!(r.ok(), "{r:?}");
    let j: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let new = j["kid"].as_str().unwrap().to_string();
    let signs_from = rfc3339(j["signs_from"].as_str().unwrap());
    // Polled: the reload runs every second; the deadline is generous for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !jwks_kids(&s).contains(&new) {
        assert!(
            Instant::now() < deadline,
            "the running server publishes the CLI's new key (reload every 1 s) within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(jwks_kids(&s).contains(&old));
    // Published before it signs.
    s.clock.set(signs_from - 1);
    assert_eq!(kid_of(&s.owner_login()), old, "before signs_from the old key still signs");
    s.clock.set(signs_from);
    let at = s.owner_login();
    assert_eq!(kid_of(&at), new, "from signs_from the new key signs");
    s.verify_api(&at);
    assert_accepted(&s, &at, "token of the CLI-rotated key");
}

// ================================================================= 5. refusing to start

fn serve_refuses_group_or_world_readable_key() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o644, 0o640, 0o604] {
        let w = Scratch::new();
        let (keys, db) = (w.keys(), w.db());
        let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
        let l = cli(w.path(), &["keys", "list"], &env);
        assert!(l.ok(), "{l:?}");
        let kid = l.stdout.split('\t').next().unwrap().to_string();
        let pem = w.path().join("keys").join(format!("{kid}.pem"));
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = serve_fails(w.path(), &env);
        assert!(out.stderr.contains(&pem.display().to_string()), "mode {mode:o}: stderr names the file: {out:?}");
        assert!(out.stderr.contains("chmod 600"), "mode {mode:o}: stderr says how to fix it: {out:?}");
        let body = std::fs::read_to_string(&pem).unwrap();
        let b64_line = body.lines().nth(1).unwrap();
        assert!(!out.stderr.contains(b64_line) && !out.stdout.contains(b64_line), "no key material printed");
        assert!(!out.stdout.contains("password"), "no first-start credentials printed when refusing to start");
    }
}

fn serve_refuses_malformed_key() {
    let cases: [(&str, &[u8]); 3] = [
        ("junk.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ("notpem.pem", b"this is not a PEM file at all\n"),
        ("cert.pem", b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----\n"),
    ];
    for (name, bytes) in cases {
        let w = Scratch::new();
        let (keys, db) = (w.keys(), w.db());
        let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
        assert!(cli(w.path(), &["keys", "list"], &env).ok());
        let path = w.path().join("keys").join(name);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
            f.write_all(bytes).unwrap();
        }
        let out = serve_fails(w.path(), &env);
        assert!(out.stderr.contains(name), "{name}: stderr names the malformed file: {out:?}");
    }
}

fn serve_refuses_invalid_config() {
    let cases = [
        ("TOKEND_SIGNING_ALG", "HS256"),
        ("TOKEND_SIGNING_ALG", "none"),
        ("TOKEND_ACCESS_TOKEN_TTL", "abc"),
        ("TOKEND_ACCESS_TOKEN_TTL", "-5"),
        ("TOKEND_KEY_PUBLISH_DELAY", "soon"),
        ("TOKEND_KEYS_RELOAD_SECONDS", "0"),
        ("TOKEND_ISSUER", "not a url"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("TOKEND_BOOTSTRAP_PASSWORD", "short"),
    ];
    for (var, value) in cases {
        let w = Scratch::new();
        let (keys, db) = (w.keys(), w.db());
        let mut env = vec![("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
        let out = serve_fails(w.path(), &env);
        assert!(out.stderr.contains(var), "{var}={value:?}: the message names the variable: {out:?}");
        if var == "TOKEND_BOOTSTRAP_PASSWORD" {
            assert!(!out.stderr.contains(value), "the password is not echoed");
        }
    }
    // The same checks apply to flags of `tokend serve`.
    let w = Scratch::new();
    let (keys, db) = (w.keys(), w.db());
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str()), ("TOKEND_BIND", "127.0.0.1:0")];
    let out = run(tokend(w.path(), &["serve", "--access-token-ttl", "abc"], &env), None, Duration::from_secs(30));
    assert!(!out.timed_out && !out.ok(), "{out:?}");
    assert!(out.stderr.contains("TOKEND_ACCESS_TOKEN_TTL") && !out.stderr.contains("panicked"), "{out:?}");
}

fn serve_refuses_unreachable_database_without_leaking_password() {
    let w = Scratch::new();
    let keys = w.keys();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", "postgres://u:secretpw@127.0.0.1:1/x")];
    let out = serve_fails(w.path(), &env);
    assert!(out.stderr.contains("127.0.0.1"), "the message names the host: {out:?}");
    assert!(out.stderr.contains("postgres"), "the message names the scheme: {out:?}");
    assert!(!out.stderr.contains("secretpw") && !out.stdout.contains("secretpw"), "the password never appears");
    let m = run(tokend(w.path(), &["migrate"], &env), None, Duration::from_secs(30));
    assert!(!m.timed_out && !m.ok(), "{m:?}");
    assert!(
        m.stderr.contains("127.0.0.1") && !m.stderr.contains("secretpw") && !m.stdout.contains("secretpw"),
        "{m:?}"
    );
}

// ================================================================= 6. tokend org create

fn cli_org_create_credentials_work(b: &Backend) {
    let s = b.start();
    let keys = keys_dir(&s).display().to_string();
    let w = Scratch::new();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", s.database_url.as_str())];

    let out = cli(w.path(), &["org", "create", "acme", "--owner-email", "a@acme.test"], &env);
    assert!(out.ok(), "{out:?}");
    let j: Value = serde_json::from_str(out.stdout.trim()).expect("stdout is one JSON object");
    for k in ["org_id", "owner_id", "password", "token"] {
        assert!(j[k].as_str().is_some_and(|v| !v.is_empty()), "{k} present");
    }
    let (org_id, owner_id) = (j["org_id"].as_str().unwrap(), j["owner_id"].as_str().unwrap());
    let password = j["password"].as_str().unwrap();
    let token = j["token"].as_str().unwrap();
    assert_ne!(org_id, s.org_id, "a new org");
    assert!(token.starts_with("tkd_pat_"), "a personal API token");
    assert!(password.chars().count() >= 12, "a generated password is long");
    assert!(!out.stderr.contains(password) && !out.stderr.contains(token), "secrets only on stdout");

    let at = s.login("a@acme.test", password);
    let c = s.verify_api(&at);
    assert_eq!(c["org"], json!(org_id));
    assert_eq!(c["sub"], json!(owner_id));
    assert_eq!(c["roles"], json!(["org:owner"]));
    let me = s.get("/api/v1/me", &at);
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], json!("a@acme.test"));
    assert_eq!(me.body["org"], json!(org_id));

    let ex = s.exchange_api(token);
    let ec = s.verify_api(&ex);
    assert_eq!(ec["org"], json!(org_id));
    assert_eq!(ec["sub"], json!(owner_id));
    assert_accepted(&s, &ex, "the exchanged org-create token");
    // The two orgs do not see each other.
    assert_eq!(s.get(&format!("/api/v1/users/{}", s.owner_id), &at).status, 404);

    // The same name again is refused cleanly.
    let dup = cli(w.path(), &["org", "create", "acme", "--owner-email", "a2@acme.test"], &env);
    assert!(!dup.ok() && !dup.stderr.contains("panicked"), "{dup:?}");
    assert!(dup.stdout.trim().is_empty(), "no credentials printed on failure");

    // --owner-password-stdin: no password in the output, and the given one works.
    let c =
        tokend(w.path(), &["org", "create", "beta", "--owner-email", "b@beta.test", "--owner-password-stdin"], &env);
    let out = run(c, Some("beta-password-123\n"), Duration::from_secs(60));
    assert!(out.ok(), "{out:?}");
    let j: Value = serde_json::from_str(out.stdout.trim()).expect("stdout is one JSON object");
    assert!(j.get("password").is_none(), "no password field when it was given on stdin");
    assert!(!out.stdout.contains("beta-password-123") && !out.stderr.contains("beta-password-123"));
    assert!(j["token"].as_str().is_some_and(|t| t.starts_with("tkd_pat_")));
    let at = s.login("b@beta.test", "beta-password-123");
    assert_eq!(s.verify_api(&at)["org"], j["org_id"]);
    s.exchange_ok(j["token"].as_str().unwrap());

    // A too-short password on stdin is refused and creates nothing.
    let orgs = s.count("orgs");
    let c =
        tokend(w.path(), &["org", "create", "gamma", "--owner-email", "g@gamma.test", "--owner-password-stdin"], &env);
    let out = run(c, Some("short\n"), Duration::from_secs(60));
    assert!(!out.ok() && !out.stderr.contains("panicked"), "{out:?}");
    assert!(out.stderr.contains("password"), "the message names the field: {out:?}");
    assert_eq!(s.count("orgs"), orgs);
}

fn cli_bad_flags_print_usage() {
    let w = Scratch::new();
    let db = w.db();
    let keys = w.keys();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", db.as_str())];
    // clap prints "Usage: …" for a missing required flag, an unknown flag or subcommand.
    let cases: [&[&str]; 6] = [
        &["org", "create"],
        &["org", "create", "acme"],
        &["org", "create", "acme", "--owner-email", "a@acme.test", "--bogus"],
        &["nosuch"],
        &["keys", "retire"],
        &["keys"],
    ];
    for args in cases {
        let out = cli(w.path(), args, &env);
        assert!(!out.ok() && !out.timed_out, "{args:?}: {out:?}");
        assert!(out.stderr.to_lowercase().contains("usage"), "{args:?}: usage on stderr: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {out:?}");
        assert!(out.stdout.trim().is_empty(), "{args:?}: nothing on stdout");
    }
    // A flag without its value: non-zero, and the message names the flag.
    let out = cli(w.path(), &["org", "create", "acme", "--owner-email"], &env);
    assert!(!out.ok() && !out.timed_out, "{out:?}");
    assert!(out.stderr.contains("--owner-email") && !out.stderr.contains("panicked"), "{out:?}");
    let out = cli(w.path(), &["org", "create", "acme"], &env);
    assert!(out.stderr.contains("--owner-email"), "the missing flag is named: {out:?}");
    assert!(!w.path().join("tokend.db").exists(), "a usage error touches no database");
}

// ================================================================= 7. storage never holds secrets

fn database_never_holds_secrets(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, pat) = s.pat(&at, json!({"name": "ci", "ttl_days": 7}));
    let (_, _, client_secret) = s.app(&at, json!({"name": "ingest", "roles": []}));
    s.user(&at, "carol@example.test", &["org:member"]);
    s.exchange_ok(&pat);
    s.exchange_ok(&s.owner_pat);
    let keys = keys_dir(&s).display().to_string();
    let w = Scratch::new();
    let env = [("TOKEND_KEYS_DIR", keys.as_str()), ("DATABASE_URL", s.database_url.as_str())];
    let c =
        tokend(w.path(), &["org", "create", "delta", "--owner-email", "d@delta.test", "--owner-password-stdin"], &env);
    let out = run(c, Some("delta-password-456\n"), Duration::from_secs(60));
    assert!(out.ok(), "{out:?}");
    let cli_token = serde_json::from_str::<Value>(out.stdout.trim()).unwrap()["token"].as_str().unwrap().to_string();
    s.flush_usage();

    // Each secret in full and its random part without the prefix.
    let mut needles: Vec<(String, String)> = Vec::new();
    for (what, secret) in [
        ("owner bootstrap PAT", &s.owner_pat),
        ("PAT", &pat),
        ("client secret", &client_secret),
        ("CLI org token", &cli_token),
    ] {
        needles.push((what.to_string(), secret.clone()));
        let body = secret.trim_start_matches("tkd_pat_").trim_start_matches("tkd_cs_");
        needles.push((format!("{what} (random part)"), body[..24].to_string()));
    }
    for (what, p) in [
        ("owner password", s.owner_password.as_str()),
        ("user password", "user-password-123"),
        ("CLI password", "delta-password-456"),
    ] {
        needles.push((what.to_string(), p.to_string()));
    }

    match b {
        Backend::Sqlite => {
            let path = s.database_url.strip_prefix("sqlite://").unwrap().to_string();
            let mut bytes = std::fs::read(&path).unwrap();
            let wal = format!("{path}-wal");
            if Path::new(&wal).exists() {
                bytes.extend(std::fs::read(&wal).unwrap());
            }
            assert!(bytes.len() > 4096, "the database file was read");
            for (what, n) in &needles {
                assert!(!bytes.windows(n.len()).any(|w| w == n.as_bytes()), "the SQLite files contain the {what}");
            }
        }
        Backend::Postgres(_) => {
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                v: String,
            }
            let mut conn = s.state.db.read().unwrap();
            let tables: Vec<Row> = diesel::sql_query(
                "SELECT table_name::text AS v FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .load(&mut *conn)
            .unwrap();
            assert!(tables.iter().any(|t| t.v == "api_tokens"), "tables listed");
            let mut dump = String::new();
            for t in &tables {
                let rows: Vec<Row> =
                    diesel::sql_query(format!("SELECT t::text AS v FROM \"{}\" t", t.v)).load(&mut *conn).unwrap();
                for r in rows {
                    dump.push_str(&r.v);
                    dump.push('\n');
                }
            }
            assert!(dump.contains("d@delta.test"), "the dump holds the data");
            for (what, n) in &needles {
                assert!(!dump.contains(n.as_str()), "the PostgreSQL tables contain the {what}");
            }
        }
    }
}

/// The harness' "nothing changed" snapshot sees changed fields, not only row counts: a
/// rename and a secret regeneration (which change no count) each change it.
fn harness_snapshot_sees_changed_fields(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (id, _) = s.pat(&at, json!({"name": "before", "ttl_days": 5, "roles": ["org:owner"]}));
    let (app, _, _) = s.app(&at, json!({"name": "app"}));
    let before = s.data_snapshot();
    let r = s.patch(&format!("/api/v1/me/tokens/{id}"), &at, json!({"name": "after"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let renamed = s.data_snapshot();
    assert_ne!(renamed, before, "a rename changes the snapshot");
    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &at, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(s.data_snapshot(), renamed, "a secret regeneration changes the snapshot");
}

/// The harness' own verifier (common::Server::verify) is strict: the wrong audience, a
/// header naming another algorithm than the key's, and exp/nbf on the server's fixed clock
/// (not the wall clock) all make it fail.
fn harness_verifier_is_strict(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let fails = |what: &str, f: &dyn Fn()| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert!(r.is_err(), "the harness verifier accepted {what}");
    };
    s.verify_api(&at);
    fails("a management token for the resource audience", &|| {
        s.verify_resource(&at);
    });
    let resource = s.exchange_ok(&s.owner_pat);
    fails("a resource token for the management audience", &|| {
        s.verify_api(&resource);
    });
    // Same signature, header claiming another algorithm.
    let parts = segments(&at);
    let mut h = header_of(&at);
    h["alg"] = json!("ES384");
    let relabelled = format!("{}.{}.{}", B64.encode(h.to_string()), parts[1], parts[2]);
    fails("a header alg other than the key's", &|| {
        s.verify_api(&relabelled);
    });
    // Time is the server's clock.
    let c = claims_of(&at);
    let (nbf, exp) = (c["nbf"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    s.clock.set(exp);
    fails("a token at its exp on the server clock", &|| {
        s.verify_api(&at);
    });
    s.clock.set(nbf - 1);
    fails("a token before its nbf on the server clock", &|| {
        s.verify_api(&at);
    });
    s.clock.set(nbf);
    s.verify_api(&at);
}

/// TOKEND_SIGNING_ALG (the configuration it sets) with EdDSA and RS256: the harness obtains
/// login, management and resource tokens, each verified independently with the algorithm
/// pinned from the published key (common::Server::verify), and they work at the server.
fn other_signing_algorithms_verify(b: &Backend) {
    for (alg, name, kty) in [(tokend::keys::Alg::EdDSA, "EdDSA", "OKP"), (tokend::keys::Alg::RS256, "RS256", "RSA")] {
        // RS256: tokend generates no RSA key; the operator's (openssl) is in the directory.
        let s = b.start_with(|c| {
            c.signing_alg = alg;
            if alg == tokend::keys::Alg::RS256 {
                common::helpers::put_rsa_key(&c.keys_dir);
            }
        });
        let at = s.owner_login();
        assert_eq!(header_of(&at)["alg"], json!(name), "login token signed with {name}");
        let jwks = s.call("GET", "/.well-known/jwks.json", None, None);
        let kid = header_of(&at)["kid"].clone();
        let key = jwks.body["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).cloned().unwrap();
        assert_eq!(key["kty"], json!(kty), "{key}");
        assert_eq!(s.get("/api/v1/me", &at).status, 200, "{name} login token at the server");
        let api = s.exchange_api(&s.owner_pat);
        assert_eq!(s.get("/api/v1/me", &api).status, 200, "{name} management token at the server");
        let resource = s.exchange_ok(&s.owner_pat);
        assert_eq!(header_of(&resource)["alg"], json!(name));
        assert_eq!(s.verify_resource(&resource)["sub"], json!(s.owner_id));
    }
}

backend_tests!(
    harness_snapshot_sees_changed_fields,
    harness_verifier_is_strict,
    other_signing_algorithms_verify,
    discovery_documents,
    jwks_is_public_only_and_cacheable,
    health_readiness_and_metrics,
    login_issues_verifiable_token,
    login_failures_look_alike,
    login_malformed_bodies_are_problems,
    login_throttled_per_account,
    login_throttled_per_ip,
    forged_alg_none,
    forged_hs256_with_public_key,
    forged_altered_payload,
    forged_expired,
    forged_wrong_issuer,
    forged_wrong_audience,
    forged_unknown_kid,
    bearer_of_disabled_or_deleted_user_rejected,
    key_rotation_keeps_old_tokens_until_retired,
    key_rotation_same_second_new_key_signs,
    cli_org_create_credentials_work,
    database_never_holds_secrets,
);

/// CLI and process-level tests: they need no second backend.
mod cli {
    #[test]
    fn keys_rotate_list_retire() {
        super::cli_keys_rotate_list_retire()
    }
    #[test]
    fn retire_accepts_kid_starting_with_hyphen() {
        super::cli_retire_accepts_kid_starting_with_hyphen()
    }
    #[test]
    fn keys_list_shows_hand_dropped_key() {
        super::cli_keys_list_shows_hand_dropped_key()
    }
    #[test]
    fn rotation_is_picked_up_by_a_running_server() {
        super::cli_rotation_is_picked_up_by_a_running_server()
    }
    #[test]
    fn serve_refuses_group_or_world_readable_key() {
        super::serve_refuses_group_or_world_readable_key()
    }
    #[test]
    fn serve_refuses_malformed_key() {
        super::serve_refuses_malformed_key()
    }
    #[test]
    fn serve_refuses_invalid_config() {
        super::serve_refuses_invalid_config()
    }
    #[test]
    fn serve_refuses_unreachable_database_without_leaking_password() {
        super::serve_refuses_unreachable_database_without_leaking_password()
    }
    #[test]
    fn bad_flags_print_usage() {
        super::cli_bad_flags_print_usage()
    }
}
