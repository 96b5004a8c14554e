//! Small flows and readers that several test modules use (each was written two or three
//! times before). Every one that asserts names its call site (`#[track_caller]`) and
//! prints the (redacted) body when the status is not the expected one.
use base64::Engine;
use serde_json::{json, Value};

use super::assert::{redact, status};
use super::{Backend, Resp, Server};

/// A string field of a JSON body, or a failure naming the field and showing the body.
#[track_caller]
pub fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {}", redact(&v.to_string()))).to_string()
}

/// An RFC 3339 UTC time (`…Z`) as Unix seconds.
#[track_caller]
pub fn ts(v: &Value) -> i64 {
    let t = v.as_str().unwrap_or_else(|| panic!("expected an RFC 3339 string, got {v}"));
    assert!(t.ends_with('Z'), "time is not UTC: {t}");
    chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("not RFC 3339: {t}: {e}")).timestamp()
}

/// `Retry-After` in seconds (required).
#[track_caller]
pub fn retry_after(r: &Resp) -> i64 {
    let v = r.header("retry-after").unwrap_or_else(|| panic!("Retry-After missing ({}): {}", r.status, r.text));
    v.trim().parse().unwrap_or_else(|_| panic!("Retry-After in seconds: {v:?}"))
}

/// A well-formed personal token that was never issued.
pub fn unknown_pat() -> String {
    tokend::secrets::generate(tokend::secrets::SecretKind::Personal).value
}

/// An `Authorization: Basic` value (not percent-encoded: RFC 7617 as most clients send it).
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The `kid` of a JWT's header.
#[track_caller]
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap_or_else(|e| panic!("a JWS header: {e}"))
        .kid
        .expect("kid in the JWS header")
}

/// The `kid`s the JWKS publishes, in its order.
#[track_caller]
pub fn jwks_kids(s: &Server) -> Vec<String> {
    let r = s.raw("GET", "/.well-known/jwks.json", &[], b"");
    status(&r, 200, "GET /.well-known/jwks.json");
    r.body["keys"].as_array().expect("keys[]").iter().map(|k| str_of(k, "kid")).collect()
}

/// A server that trusts 127.0.0.1 as a proxy (so `X-Forwarded-For` names the client).
pub fn behind_proxy(b: &Backend) -> Server {
    b.start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()])
}

/// POST /api/v1/login as if from `addr` (through a trusted proxy: see `behind_proxy`).
pub fn login_from(s: &Server, email: &str, password: &str, addr: &str) -> Resp {
    let body = json!({"email": email, "password": password}).to_string();
    s.raw("POST", "/api/v1/login", &[("Content-Type", "application/json"), ("X-Forwarded-For", addr)], body.as_bytes())
}

/// A form POST with a bearer token.
pub fn form_bearer(s: &Server, path: &str, pairs: &[(&str, &str)], bearer: &str) -> Resp {
    Resp::from(ureq::post(&s.url(path)).set("Authorization", &format!("Bearer {bearer}")).send_form(pairs))
}

/// `client_credentials` with HTTP Basic, no other parameter.
pub fn cc(s: &Server, id: &str, secret: &str) -> Resp {
    s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((id, secret)))
}

/// POST /oauth/introspect as an app (HTTP Basic); must answer 200.
#[track_caller]
pub fn introspect(s: &Server, client: (&str, &str), token: &str) -> Value {
    let r = s.form("/oauth/introspect", &[("token", token)], Some(client));
    status(&r, 200, "introspection");
    r.body
}

/// POST /oauth/introspect with a bearer (an admin's access token); must answer 200.
#[track_caller]
pub fn introspect_bearer(s: &Server, bearer: &str, token: &str) -> Value {
    let r = form_bearer(s, "/oauth/introspect", &[("token", token)], bearer);
    status(&r, 200, "introspection");
    r.body
}

/// Creates a person (no password); answers the id.
#[track_caller]
pub fn new_user(s: &Server, at: &str, email: &str, roles: &[&str]) -> String {
    let r = s.post("/api/v1/users", at, json!({"email": email, "roles": roles}));
    status(&r, 201, &format!("create user {email}"));
    str_of(&r.body, "id")
}

/// Creates a service account; answers the id.
#[track_caller]
pub fn new_sa(s: &Server, at: &str, name: &str, roles: &[&str]) -> String {
    let r =
        s.post("/api/v1/service-accounts", at, json!({"name": name, "description": "test account", "roles": roles}));
    status(&r, 201, &format!("create service account {name}"));
    str_of(&r.body, "id")
}

/// An admin's one-time reset code for `user` (200, `Cache-Control: no-store`).
#[track_caller]
pub fn reset_code(s: &Server, admin: &str, user: &str) -> String {
    let r = s.post(&format!("/api/v1/users/{user}/password-reset"), admin, json!({}));
    status(&r, 200, "issue a reset code");
    assert_eq!(r.header("cache-control"), Some("no-store"), "a reset code is not cached");
    assert!(r.body["expires_at"].is_string(), "a reset code has expires_at: {}", redact(&r.text));
    str_of(&r.body, "code")
}

/// Redeems a reset code (unauthenticated), answers the response.
pub fn redeem(s: &Server, code: &str, password: &str) -> Resp {
    s.call("POST", "/api/v1/password-reset", None, Some(&json!({"code": code, "new_password": password})))
}

/// A free TCP port on 127.0.0.1 (for programs that cannot be told to bind port 0 and
/// report it, like nginx's own listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `refresh_token` grant with an API token and extra parameters.
pub fn refresh(s: &Server, token: &str, extra: &[(&str, &str)]) -> Resp {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    pairs.extend_from_slice(extra);
    s.form("/oauth/token", &pairs, None)
}

/// `tokend leaks check --url URL --source paste` as its own process on `s`'s database and
/// key directory, `input` on its stdin: (exit code, stdout and stderr).
pub fn leaks_check(s: &Server, url: &str, input: &str) -> (Option<i32>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["leaks", "check", "--url", url, "--source", "paste"])
        .env("DATABASE_URL", &s.database_url)
        .env("TOKEND_KEYS_DIR", &s.state.cfg.keys_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// Starts `cmd` with stdout piped and waits up to `timeout` for the line starting with
/// `marker` that names the address it bound (`… http://127.0.0.1:PORT…`): how a program
/// started on port 0 says which port it got (no free-port race). Answers the child and
/// `http://127.0.0.1:PORT`; the rest of stdout is drained in the background.
#[track_caller]
pub fn spawn_announcing(
    cmd: &mut std::process::Command,
    marker: &str,
    timeout: std::time::Duration,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_string();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with(&wanted) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line);
                }
            }
        }
    });
    let line = match rx.recv_timeout(timeout) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("{cmd:?} did not print {marker:?} within {timeout:?} (exit: {status:?})");
        }
    };
    let at = line.find("http://").unwrap_or_else(|| panic!("no http:// address in {line:?}"));
    let addr: String = line[at..].chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    (child, addr)
}

/// Runs the openssl command line with `input` on stdin; its stdout. tokend generates no RSA
/// keys (the `rsa` crate has RUSTSEC-2023-0071; ring only loads them), so tests make them
/// as operators do. `.ci/run` installs openssl when missing.
#[track_caller]
pub fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl {args:?}: {e} (apt-get install openssl)"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A fresh 2048-bit RSA private key, PKCS#8 PEM, made with the command the README gives
/// operators (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`).
#[track_caller]
pub fn rsa_private_pem() -> String {
    String::from_utf8(openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], b"")).unwrap()
}

/// Writes an RSA key made with openssl into `keys_dir` (created 0700, file 0600), as an
/// operator does before the first start with `TOKEND_SIGNING_ALG=RS256`.
#[track_caller]
pub fn put_rsa_key(keys_dir: &std::path::Path) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(keys_dir).unwrap();
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(keys_dir.join("rsa.pem")).unwrap();
    f.write_all(rsa_private_pem().as_bytes()).unwrap();
}
