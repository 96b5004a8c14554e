//! The real `tokend` binary: the first start (credentials in a private file, never on
//! stdout or stderr; private database files) and `tokend verify` (token on stdin only,
//! required audience, local keys read-only, JWKS over HTTP).
use crate::common::helpers::spawn_announcing;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tokend");
const OWNER: &str = "admin@localhost";
const START_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// A `tokend` command with only the environment given here (none inherited from the
/// test's own environment).
fn tokend(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("TOKEND_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs to completion within RUN_TIMEOUT: (exit code, stdout, stderr).
fn run(mut cmd: Command, stdin: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        // The process may exit before reading (a clap error): a broken pipe is fine.
        let _ = input.write_all(stdin.as_bytes());
    }
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tokend did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), fs::read_to_string(&out).unwrap(), fs::read_to_string(&err).unwrap())
}

/// `tokend serve` on a fresh SQLite database under `dir/data`, keys under `dir/keys`.
/// Killed when dropped.
struct Serve {
    child: Child,
    port: u16,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Serve {
    fn start(dir: &Path, password: Option<&str>) -> Serve {
        Self::start_env(dir, password, &[])
    }

    /// `start` with more environment variables.
    /// The server binds port 0 and says on stdout which port it got (`tokend listening on
    /// http://ADDR`); its issuer names port 0, which the server reads as that port.
    fn start_env(dir: &Path, password: Option<&str>, extra: &[(&str, &str)]) -> Serve {
        let mut env = vec![
            ("DATABASE_URL", format!("sqlite://{}/data/tokend.db", dir.display())),
            ("TOKEND_KEYS_DIR", dir.join("keys").display().to_string()),
            ("TOKEND_BIND", "127.0.0.1:0".to_string()),
            ("TOKEND_ISSUER", "http://127.0.0.1:0".to_string()),
            ("TOKEND_WORKERS", "1".to_string()),
            ("RUST_LOG", "info".to_string()),
        ];
        if let Some(p) = password {
            env.push(("TOKEND_BOOTSTRAP_PASSWORD", p.to_string()));
        }
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let n = fs::read_dir(dir).unwrap().count();
        let (stdout, stderr) = (dir.join(format!("serve{n}.out")), dir.join(format!("serve{n}.err")));
        let child = tokend(&env)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serve { child, port: 0, stdout, stderr };
        let deadline = Instant::now() + START_TIMEOUT;
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        loop {
            if s.port == 0 {
                s.port = fs::read_to_string(&s.stdout).ok().as_deref().and_then(listening_port).unwrap_or(0);
            }
            if s.port != 0 && agent.get(&s.url("/readyz")).call().is_ok_and(|r| r.status() == 200) {
                // The log names the same address.
                let log = fs::read_to_string(&s.stderr).unwrap_or_default();
                assert!(log.contains(&format!("tokend listening on {}", s.issuer())), "{log}");
                return s;
            }
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("tokend serve exited with {status}: {}", fs::read_to_string(&s.stderr).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "tokend serve not ready within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// Stops the server; everything it wrote is then in the files.
    fn stop(&mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (fs::read_to_string(&self.stdout).unwrap(), fs::read_to_string(&self.stderr).unwrap())
    }

    fn login(&self, password: &str) -> String {
        let body = json!({"email": OWNER, "password": password}).to_string();
        let r = ureq::post(&self.url("/api/v1/login"))
            .timeout(Duration::from_secs(30))
            .set("Content-Type", "application/json")
            .send_string(&body)
            .unwrap_or_else(|e| panic!("login: {e}"));
        let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        v["access_token"].as_str().expect("access_token").to_string()
    }
}

/// A JSON call to a `tokend serve`: (status, body).
fn call(s: &Serve, method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = ureq::request(method, &s.url(path)).timeout(Duration::from_secs(30));
    if let Some(b) = bearer {
        req = req.set("Authorization", &format!("Bearer {b}"));
    }
    let r = match body {
        Some(v) => req.set("Content-Type", "application/json").send_string(&v.to_string()),
        None => req.call(),
    };
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = r.status();
    (status, serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or(Value::Null))
}

/// The refresh_token grant at a `tokend serve`: (status, body).
fn exchange(s: &Serve, api_token: &str) -> (u16, Value) {
    let r = ureq::post(&s.url("/oauth/token"))
        .timeout(Duration::from_secs(30))
        .send_form(&[("grant_type", "refresh_token"), ("refresh_token", api_token)]);
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("exchange: {e}"),
    };
    let status = r.status();
    (status, serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or(Value::Null))
}

/// The port of the `tokend listening on http://127.0.0.1:PORT` line of `tokend serve`'s stdout.
fn listening_port(stdout: &str) -> Option<u16> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("tokend listening on http://"))?;
    line.trim().rsplit_once(':')?.1.parse().ok().filter(|p| *p != 0)
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `key: value` lines.
fn fields(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

fn field<'a>(f: &'a [(String, String)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn first_start_credentials_go_to_a_private_file_and_database_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let mut server = Serve::start(dir, None);

    // The credentials file, beside the database, created 0600.
    let creds_path = data.join("first-start-credentials.txt");
    assert_eq!(mode(&creds_path), 0o600);
    let text = fs::read_to_string(&creds_path).unwrap();
    let f = fields(&text);
    assert_eq!(field(&f, "owner_email"), Some(OWNER), "{text}");
    assert!(field(&f, "org_id").is_some_and(|v| !v.is_empty()), "{text}");
    let token = field(&f, "api_token").unwrap_or_default().to_string();
    assert!(token.starts_with("tkd_pat_"), "api_token line missing");
    let password = field(&f, "password").expect("a generated password").to_string();
    assert!(password.len() >= 8);
    // The generated password is the real one.
    let at = server.login(&password);
    assert!(!at.is_empty());

    // Data directory 0700 (tokend created it), database files 0600.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tokend.db")), 0o600);
    for companion in ["tokend.db-wal", "tokend.db-shm"] {
        let p = data.join(companion);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{companion}");
        }
    }

    // Nothing secret on stdout or stderr; the log names the file.
    let (stdout, stderr) = server.stop();
    for (name, out) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!out.contains("tkd_"), "{name} holds an API token");
        assert!(!out.contains(&password), "{name} holds the generated password");
    }
    assert!(stderr.contains(&creds_path.display().to_string()), "the log names the credentials file: {stderr}");

    // A later start on the same database creates nothing and writes no file.
    fs::remove_file(&creds_path).unwrap();
    let mut again = Serve::start(dir, None);
    let (stdout, stderr) = again.stop();
    assert!(!creds_path.exists());
    assert!(!stdout.contains("tkd_") && !stderr.contains("tkd_"));
}

#[test]
fn verify_reads_the_token_from_stdin_and_checks_it_strictly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let password = "cli-owner-password-123";
    let server = Serve::start(dir, Some(password));
    let token = server.login(password);
    // Another change moves login tokens to `{issuer}/api`: take the audience from the token.
    let aud = payload(&token)["aud"].as_str().expect("aud").to_string();
    let keys = dir.join("keys").display().to_string();
    let env = |keys_dir: &str, issuer: &str| {
        vec![("TOKEND_KEYS_DIR", keys_dir.to_string()), ("TOKEND_ISSUER", issuer.to_string())]
    };
    let issuer = server.issuer();
    let verify = |env: &[(&str, String)], args: &[&str], stdin: &str| {
        let mut cmd = tokend(env);
        cmd.arg("verify").args(args);
        let (code, out, err) = run(cmd, stdin);
        assert!(!out.contains(&token) && !err.contains(&token), "the token was echoed");
        (code, out, err)
    };

    // Right audience, from stdin (surrounding whitespace trimmed): exit 0, claims printed.
    let (code, out, err) = verify(&env(&keys, &issuer), &["--audience", &aud], &format!("\n  {token}  \n"));
    assert_eq!(code, 0, "{err}");
    let claims: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claims["aud"], json!(aud));
    assert_eq!(claims["iss"], json!(issuer));
    assert_eq!(claims, payload(&token));

    // Wrong audience.
    let (code, _, err) = verify(&env(&keys, &issuer), &["--audience", "https://other.example"], &token);
    assert_eq!(code, 1);
    assert!(err.starts_with("tokend: error: token rejected: "), "{err}");

    // Wrong issuer.
    let (code, _, err) = verify(&env(&keys, "http://127.0.0.1:1"), &["--audience", &aud], &token);
    assert_eq!(code, 1);
    assert!(err.starts_with("tokend: error: token rejected: "), "{err}");

    // Not a token; no token at all.
    let (code, _, err) = verify(&env(&keys, &issuer), &["--audience", &aud], "not-a-jwt");
    assert_eq!(code, 1);
    assert!(err.starts_with("tokend: error: token rejected: "), "{err}");
    let (code, _, err) = verify(&env(&keys, &issuer), &["--audience", &aud], "");
    assert_eq!(code, 1, "{err}");

    // --audience is required.
    let (code, _, err) = verify(&env(&keys, &issuer), &[], &token);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--audience"), "{err}");

    // A token on the command line is refused (and not repeated).
    let (code, _, err) = verify(&env(&keys, &issuer), &["--audience", &aud, &token], "");
    assert_eq!(code, 2, "{err}");

    // Against the server's JWKS over HTTP, with no local keys at all.
    let nowhere = dir.join("no-keys-here").display().to_string();
    let jwks = server.url("/.well-known/jwks.json");
    let (code, out, err) = verify(&env(&nowhere, &issuer), &["--audience", &aud, "--jwks", &jwks], &token);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), payload(&token));
    assert!(!Path::new(&nowhere).exists());

    // https is supported (TLS is compiled in): talking TLS to this plain-HTTP server fails
    // in the handshake, not for want of a TLS backend.
    let https = format!("https://127.0.0.1:{}/.well-known/jwks.json", server.port);
    let (code, _, err) = verify(&env(&nowhere, &issuer), &["--audience", &aud, "--jwks", &https], &token);
    assert_eq!(code, 1);
    assert!(!err.contains("no TLS backend") && !err.to_lowercase().contains("unknown scheme"), "{err}");

    // An empty key directory: refused, and still empty afterwards (no key generated).
    let empty = dir.join("empty-keys");
    fs::create_dir(&empty).unwrap();
    let (code, _, err) = verify(&env(&empty.display().to_string(), &issuer), &["--audience", &aud], &token);
    assert_eq!(code, 1);
    assert!(err.contains("no signing keys in"), "{err}");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    // A missing one: refused, and not created.
    let (code, _, err) = verify(&env(&nowhere, &issuer), &["--audience", &aud], &token);
    assert_eq!(code, 1);
    assert!(err.contains("no signing keys in"), "{err}");
    assert!(!Path::new(&nowhere).exists());
}

/// README: `TOKEND_SIGNING_ALG` picks the algorithm of new keys. A fresh `tokend serve` with
/// it set signs with that algorithm; its JWKS publishes the key; an independent verifier
/// (jsonwebtoken, the algorithm pinned from the JWK's key type, exact audience and issuer)
/// accepts the token and refuses it for another audience.
fn signs_end_to_end_with(alg: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let password = "alg-owner-password-123";
    if alg == "RS256" {
        // tokend generates no RSA key: the operator's, made with openssl, is in place.
        crate::common::helpers::put_rsa_key(&tmp.path().join("keys"));
    }
    let server = Serve::start_env(
        tmp.path(),
        Some(password),
        &[("TOKEND_SIGNING_ALG", alg), ("TOKEND_AUDIENCES", "https://metrics.example")],
    );
    let token = server.login(password);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(format!("{:?}", header.alg), alg, "the token is signed with TOKEND_SIGNING_ALG");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");

    let text = ureq::get(&server.url("/.well-known/jwks.json")).call().unwrap().into_string().unwrap();
    let jwks: Value = serde_json::from_str(&text).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .unwrap_or_else(|| panic!("kid {kid} in the JWKS: {jwks}"))
        .clone();
    let (pinned, kty, crv) = match alg {
        "EdDSA" => (jsonwebtoken::Algorithm::EdDSA, "OKP", Some("Ed25519")),
        "RS256" => (jsonwebtoken::Algorithm::RS256, "RSA", None),
        other => panic!("no case for {other}"),
    };
    assert_eq!(key["kty"], json!(kty), "{key}");
    assert_eq!(key["crv"].as_str(), crv, "{key}");
    if let Some(a) = key.get("alg") {
        assert_eq!(a, &json!(alg), "the JWK's alg: {key}");
    }
    assert!(key.get("d").is_none() && key.get("p").is_none(), "no private parts published: {key}");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let api_aud = format!("{}/api", server.issuer());
    let validation = |aud: &str| {
        let mut v = jsonwebtoken::Validation::new(pinned);
        v.algorithms = vec![pinned];
        v.set_issuer(&[server.issuer()]);
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        v.validate_nbf = true;
        v
    };
    let claims = jsonwebtoken::decode::<Value>(&token, &decoding, &validation(&api_aud))
        .unwrap_or_else(|e| panic!("the {alg} token verifies against the published key: {e}"))
        .claims;
    assert_eq!(claims["aud"], json!(api_aud));
    assert_eq!(claims["iss"], json!(server.issuer()));
    assert!(
        jsonwebtoken::decode::<Value>(&token, &decoding, &validation("https://other.example")).is_err(),
        "another audience is refused"
    );
    // The key is used for what the server signs next, too: an exchanged resource token.
    let (status, body) = call(
        &server,
        "POST",
        "/api/v1/me/tokens",
        Some(&token),
        Some(json!({"name": "n", "ttl_days": 1, "roles": ["org:owner"]})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = exchange(&server, body["token"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(access).unwrap().kid.as_deref(), Some(kid.as_str()));
    jsonwebtoken::decode::<Value>(access, &decoding, &validation("https://metrics.example"))
        .unwrap_or_else(|e| panic!("the exchanged {alg} token verifies for the resource audience: {e}"));
}

#[test]
fn eddsa_signs_end_to_end() {
    signs_end_to_end_with("EdDSA");
}

#[test]
fn rs256_signs_end_to_end() {
    signs_end_to_end_with("RS256");
}

/// Crash durability on SQLite: a PAT revoked through the API stays revoked after `tokend
/// serve` is killed with SIGKILL (no shutdown, no flush) and restarted on the same
/// database; a PAT that was not revoked still works (the database came back, not just a
/// refusal of everything).
#[test]
fn revocation_survives_kill_9_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let password = "crash-owner-password-123";
    let env = [("TOKEND_AUDIENCES", "https://metrics.example")];
    let mut server = Serve::start_env(tmp.path(), Some(password), &env);
    let at = server.login(password);
    let create = |name: &str| {
        let (status, body) = call(
            &server,
            "POST",
            "/api/v1/me/tokens",
            Some(&at),
            Some(json!({"name": name, "ttl_days": 5, "roles": ["org:owner"]})),
        );
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string())
    };
    let (victim_id, victim) = create("victim");
    let (_, keep) = create("keep");
    assert_eq!(exchange(&server, &victim).0, 200);
    let (status, body) = call(&server, "DELETE", &format!("/api/v1/me/tokens/{victim_id}"), Some(&at), None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = exchange(&server, &victim);
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

    // Child::kill is SIGKILL on Unix: kill -9.
    server.child.kill().unwrap();
    let status = server.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");

    let again = Serve::start_env(tmp.path(), None, &env);
    let (status, body) = exchange(&again, &victim);
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the revocation held: {body}");
    let (status, body) = exchange(&again, &keep);
    assert_eq!(status, 200, "the other PAT still works after the crash: {body}");
    let at = again.login(password);
    let (status, body) = call(&again, "GET", &format!("/api/v1/me/tokens/{victim_id}"), Some(&at), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], json!("revoked"), "{body}");
}

/// `tokend serve` takes every setting from the environment or the same-named flag: a bad
/// value exits with status 2 naming the variable, before anything is created; and
/// TOKEND_BOOTSTRAP_EMAIL names the first owner.
#[test]
fn serve_is_configured_by_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let base = |d: &Path| {
        vec![
            ("DATABASE_URL", format!("sqlite://{}/data/tokend.db", d.display())),
            ("TOKEND_KEYS_DIR", d.join("keys").display().to_string()),
            ("TOKEND_BIND", "127.0.0.1:0".to_string()),
        ]
    };
    let bad_env = [
        ("TOKEND_ACCESS_TOKEN_TTL", "thirty minutes"),
        ("TOKEND_BIND", "nowhere"),
        ("TOKEND_SIGNING_ALG", "HS256"),
        ("TOKEND_REFUSALS_PER_SECOND", "-1"),
        ("TOKEND_TRUSTED_PROXIES", "10.0.0.1,proxy.example"),
        ("TOKEND_ISSUER", "ftp://x"),
        ("TOKEND_LOG_FORMAT", "yaml"),
        // README: the management audience is never in TOKEND_AUDIENCES (default issuer
        // http://127.0.0.1:8080, so the management audience is http://127.0.0.1:8080/api).
        ("TOKEND_AUDIENCES", "https://metrics.example,http://127.0.0.1:8080/api"),
        // README: a service-only audience must be one of TOKEND_AUDIENCES.
        ("TOKEND_SERVICE_ONLY_AUDIENCES", "https://ingest.example"),
    ];
    for (var, value) in bad_env {
        let mut env = base(dir.path());
        env.push((var, value.to_string()));
        let mut cmd = tokend(&env);
        cmd.arg("serve");
        let (code, _, err) = run(cmd, "");
        assert_eq!(code, 2, "{var}={value:?}: {err}");
        assert!(err.contains(var), "{var}={value:?}: the message names the variable: {err}");
        if var == "TOKEND_AUDIENCES" {
            assert!(err.contains("management audience must be separate"), "{err}");
        }
        if var == "TOKEND_SERVICE_ONLY_AUDIENCES" {
            assert!(err.contains("is not one of TOKEND_AUDIENCES"), "{err}");
        }
    }
    // The same settings as flags.
    for (flag, value, var) in [
        ("--access-token-ttl", "0", "TOKEND_ACCESS_TOKEN_TTL"),
        ("--refusals-per-second", "lots", "TOKEND_REFUSALS_PER_SECOND"),
        ("--log-format", "xml", "TOKEND_LOG_FORMAT"),
    ] {
        let mut cmd = tokend(&base(dir.path()));
        cmd.args(["serve", flag, value]);
        let (code, _, err) = run(cmd, "");
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(var), "{flag} {value}: {err}");
    }
    assert!(!dir.path().join("data").exists() && !dir.path().join("keys").exists(), "a refused start creates nothing");

    let s =
        Serve::start_env(dir.path(), Some("process-password-123"), &[("TOKEND_BOOTSTRAP_EMAIL", "Ops@Example.test")]);
    let login = |email: &str| {
        let body = json!({"email": email, "password": "process-password-123"}).to_string();
        match ureq::post(&s.url("/api/v1/login")).set("Content-Type", "application/json").send_string(&body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(login("ops@example.test"), 200, "the owner is TOKEND_BOOTSTRAP_EMAIL (lower-cased)");
    assert_eq!(login(OWNER), 401, "no admin@localhost when another email is configured");
}

/// `TOKEND_LOG_FORMAT=json`: every line the server writes to stderr is one JSON object with
/// timestamp, level, target and message; the access log's lines carry the request id (a
/// client's sane `X-Request-Id`, echoed in the response).
#[test]
fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Serve::start_env(
        dir.path(),
        Some("process-password-123"),
        &[("TOKEND_LOG_FORMAT", "json"), ("RUST_LOG", "info,tokend::access=debug")],
    );
    let r = ureq::get(&s.url("/healthz")).set("X-Request-Id", "cli-req-42").call().unwrap();
    assert_eq!(r.header("x-request-id"), Some("cli-req-42"));
    let r = ureq::get(&s.url("/healthz")).call().unwrap();
    let generated = r.header("x-request-id").expect("a generated request id").to_string();
    // The access line is written after the response; give the logger a moment to flush.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&s.stderr).unwrap_or_default().contains(&generated) {
        assert!(Instant::now() < deadline, "the access log line for {generated} was not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, stderr) = s.stop();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l:?}")))
        .collect();
    assert!(lines.len() >= 3, "{stderr}");
    for v in &lines {
        for k in ["timestamp", "level", "target", "message"] {
            assert!(v[k].is_string(), "{k} in {v}");
        }
        assert!(tokend::clock::parse_rfc3339(v["timestamp"].as_str().unwrap()).is_some(), "RFC 3339: {v}");
    }
    let access: Vec<&Value> = lines.iter().filter(|v| v["target"] == "tokend::access").collect();
    assert!(
        access
            .iter()
            .any(|v| v["request_id"] == "cli-req-42" && v["message"].as_str().unwrap().contains("/healthz 200")),
        "{stderr}"
    );
    assert!(access.iter().any(|v| v["request_id"] == json!(generated)), "{stderr}");
    assert!(lines.iter().any(|v| v["level"] == "INFO" && v.get("request_id").is_none()), "start-up lines have none");
}

/// `examples/resource_server.rs` (built by a plain `cargo test`; before a filtered
/// `cargo test --test it …`, run `cargo build --examples`) accepts a token tokend exchanged for
/// its audience and refuses a management-audience token and a missing one.
#[test]
fn example_resource_server_verifies_tokend_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        Serve::start_env(dir.path(), Some("process-password-123"), &[("TOKEND_AUDIENCES", "https://metrics.example")]);
    let login = s.login("process-password-123");
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/me/tokens",
        Some(&login),
        Some(json!({"name": "rs", "ttl_days": 1, "roles": ["org:owner"]})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = exchange(&s, body["token"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    let resource = body["access_token"].as_str().unwrap().to_string();

    let example = Path::new(BIN).parent().unwrap().join("examples").join("resource_server");
    assert!(example.exists(), "cargo test builds the examples: {}", example.display());
    let (mut child, base) = spawn_announcing(
        Command::new(&example)
            .args([s.issuer(), "https://metrics.example".into(), "127.0.0.1:0".into()])
            .stderr(Stdio::null()),
        "resource server on",
        START_TIMEOUT,
    );
    let url = format!("{base}/metrics/query");
    let get = |bearer: Option<&str>| {
        let mut req = ureq::get(&url).timeout(Duration::from_secs(10));
        if let Some(b) = bearer {
            req = req.set("Authorization", &format!("Bearer {b}"));
        }
        match req.call() {
            Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap_or_default())),
            Err(_) => None,
        }
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let first = loop {
        if let Some(r) = get(Some(&resource)) {
            break r;
        }
        assert!(child.try_wait().unwrap().is_none(), "the example exited");
        assert!(Instant::now() < deadline, "the example did not listen within {START_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let results = (first, get(Some(&login)), get(None));
    let _ = child.kill();
    let _ = child.wait();
    let (ok, api, none) = results;
    assert_eq!(ok.0, 200, "a resource token for its audience: {}", ok.1);
    let v: Value = serde_json::from_str(&ok.1).unwrap();
    assert!(v["series"].is_array() && v["roles"] == json!(["org:owner"]), "{v}");
    assert_eq!(api.map(|r| r.0), Some(401), "a management-audience token is refused");
    assert_eq!(none.map(|r| r.0), Some(401), "no token, no data");
}

/// README: last-used times are buffered in memory and flushed at graceful shutdown. A PAT
/// is exchanged and SIGTERM is sent right after the answer (well inside the ~0.5 s flush
/// tick); the process exits 0, and after a restart the token's `last_used_at` is set.
#[test]
fn last_used_is_flushed_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let password = "sigterm-owner-password-123";
    let env = [("TOKEND_AUDIENCES", "https://metrics.example")];
    let mut server = Serve::start_env(dir.path(), Some(password), &env);
    let at = server.login(password);
    let (status, body) = call(
        &server,
        "POST",
        "/api/v1/me/tokens",
        Some(&at),
        Some(json!({"name": "used", "ttl_days": 1, "roles": ["org:member"]})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["last_used_at"], Value::Null, "a new token was never used: {body}");
    let (id, pat) = (body["id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string());
    let (status, body) = exchange(&server, &pat);
    assert_eq!(status, 200, "{body}");
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(killed.success());
    let deadline = Instant::now() + RUN_TIMEOUT;
    let exit = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "tokend did not stop within {RUN_TIMEOUT:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "a graceful stop exits 0: {exit}");

    let again = Serve::start_env(dir.path(), None, &env);
    let at = again.login(password);
    let (status, body) = call(&again, "GET", &format!("/api/v1/me/tokens/{id}"), Some(&at), None);
    assert_eq!(status, 200, "{body}");
    assert!(body["last_used_at"].is_string(), "the use before SIGTERM was flushed: {body}");
    assert_eq!(body["last_used_ip"], json!("127.0.0.1"), "{body}");
}
