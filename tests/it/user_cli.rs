//! The user's command line (issue #23), the real `tokend` binary against a real `tokend
//! serve` (SQLite, or a fresh PostgreSQL database): login → create → exchange → list →
//! rotate → revoke, service-account tokens and apps, wrong password, expired and ended
//! sessions, permission errors, the private config directory, and no secret ever in a
//! process's argv (read from /proc while it runs) or in the server's logs.
use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::Backend;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tokend");
const OWNER: &str = "admin@localhost";
const PASSWORD: &str = "owner-password-cli-1";
const AUDIENCE: &str = "https://metrics.example.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// A `tokend` command with only the environment given here.
fn tokend(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("TOKEND_") || k == "DATABASE_URL" || k == "RUST_LOG" || k.starts_with("XDG_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `tokend serve` in its own process, logging at debug; killed when dropped (PostgreSQL:
/// its database dropped too).
struct Serve {
    child: Child,
    port: u16,
    stderr: PathBuf,
    stdout: PathBuf,
    pg: Option<(String, String)>,
}

impl Serve {
    fn start(b: &Backend, dir: &Path) -> Serve {
        let port = free_port();
        let (db, pg) = match b {
            Backend::Sqlite => (format!("sqlite://{}/data/tokend.db", dir.display()), None),
            Backend::Postgres(base) => {
                let url = common::fresh_pg_database(base);
                (url.clone(), Some((base.clone(), url)))
            }
        };
        let env = vec![
            ("DATABASE_URL", db),
            ("TOKEND_KEYS_DIR", dir.join("keys").display().to_string()),
            ("TOKEND_BIND", format!("127.0.0.1:{port}")),
            ("TOKEND_ISSUER", format!("http://127.0.0.1:{port}")),
            ("TOKEND_AUDIENCES", AUDIENCE.to_string()),
            ("TOKEND_KEY_PUBLISH_DELAY", "0".to_string()),
            ("TOKEND_WORKERS", "1".to_string()),
            ("TOKEND_BOOTSTRAP_PASSWORD", PASSWORD.to_string()),
            ("RUST_LOG", "debug".to_string()),
        ];
        let (stdout, stderr) = (dir.join("serve.out"), dir.join("serve.err"));
        let child = tokend(&env)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serve { child, port, stderr, stdout, pg };
        let deadline = Instant::now() + Duration::from_secs(120);
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        loop {
            let listening = fs::read_to_string(&s.stderr).is_ok_and(|e| e.contains("tokend listening on"));
            if listening && agent.get(&s.url("/readyz")).call().is_ok_and(|r| r.status() == 200) {
                return s;
            }
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("tokend serve exited with {status}: {}", fs::read_to_string(&s.stderr).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "tokend serve not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server; answers everything it logged.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        fs::read_to_string(&self.stdout).unwrap() + &fs::read_to_string(&self.stderr).unwrap()
    }

    /// A JSON call with a bearer: (status, body).
    fn call(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::request(method, &self.url(path)).set("Authorization", &format!("Bearer {bearer}"));
        let r = match body {
            Some(v) => req.set("Content-Type", "application/json").send_string(&v.to_string()),
            None => req.call(),
        };
        let r = match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        (r.status(), serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or(Value::Null))
    }

    fn login(&self, email: &str, password: &str) -> String {
        let r = ureq::post(&self.url("/api/v1/login"))
            .send_json(json!({"email": email, "password": password}))
            .unwrap_or_else(|e| panic!("login: {e}"));
        r.into_json::<Value>().unwrap()["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((base, url)) = &self.pg {
            common::drop_pg_database(base, url);
        }
    }
}

/// Runs the client commands of one person (one private config directory) and remembers
/// every command line the processes had, as read from /proc while they ran.
struct User {
    config: PathBuf,
    server: String,
    argvs: Vec<String>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl User {
    fn new(dir: &Path, name: &str, server: &str) -> User {
        User { config: dir.join(name).join("tokend"), server: server.to_string(), argvs: vec![] }
    }

    fn run_env(&mut self, args: &[&str], stdin: &str, env: &[(&str, String)]) -> Out {
        let mut all = vec![("TOKEND_CONFIG_DIR", self.config.display().to_string())];
        all.extend(env.iter().cloned());
        let tmp = tempfile::tempdir().unwrap();
        let (out, err) = (tmp.path().join("out"), tmp.path().join("err"));
        let mut child = tokend(&all)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        // What `ps` shows for the process while it waits for its standard input. Under load
        // the first read can come back empty (the process not yet fully started): read again
        // while it lives, for at most a second.
        let mut argv = Vec::new();
        for _ in 0..100 {
            argv = fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
            if !argv.is_empty() || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.argvs.push(String::from_utf8_lossy(&argv).replace('\0', " "));
        {
            let mut input = child.stdin.take().unwrap();
            let _ = input.write_all(stdin.as_bytes());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "tokend {args:?} did not finish");
            std::thread::sleep(Duration::from_millis(20));
        };
        Out {
            code: status.code().unwrap_or(-1),
            stdout: fs::read_to_string(&out).unwrap(),
            stderr: fs::read_to_string(&err).unwrap(),
        }
    }

    fn run(&mut self, args: &[&str], stdin: &str) -> Out {
        self.run_env(args, stdin, &[])
    }

    #[track_caller]
    fn ok(&mut self, args: &[&str], stdin: &str) -> Out {
        let o = self.run(args, stdin);
        assert_eq!(o.code, 0, "tokend {args:?}: {}{}", o.stdout, o.stderr);
        o
    }

    fn login(&mut self, email: &str, password: &str) -> Out {
        let server = self.server.clone();
        self.run(&["login", "--server", &server, "--email", email, "--password-stdin"], &format!("{password}\n"))
    }

    fn session(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.config.join("session.json")).unwrap()).unwrap()
    }
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The whole walk of one person, then the checks that no secret leaked to argv or logs.
fn login_create_exchange_list_rotate_revoke(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Serve::start(b, dir.path());
    let server = srv.url("");
    let mut me = User::new(dir.path(), "owner", &server);
    let mut secrets: Vec<String> = vec![PASSWORD.to_string()];

    // Not signed in yet: exit 3, saying what to run.
    let o = me.run(&["token", "list"], "");
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("tokend login"), "{}", o.stderr);

    // A wrong password: the server's words, exit 3, no session stored.
    let o = me.login(OWNER, "not-the-password");
    assert_eq!(o.code, 3, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("tokend: error:"), "{}", o.stderr);
    assert!(!me.config.join("session.json").exists());

    // Login: the session in a private directory, without the password.
    let o = me.login(OWNER, PASSWORD);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let session_file = me.config.join("session.json");
    assert_eq!(mode(&me.config), 0o700);
    assert_eq!(mode(&session_file), 0o600);
    let text = fs::read_to_string(&session_file).unwrap();
    assert!(!text.contains(PASSWORD), "the password is never stored");
    let session = me.session();
    assert_eq!(session["server"], json!(server));
    secrets.push(session["access_token"].as_str().unwrap().to_string());
    let o = me.ok(&["whoami"], "");
    assert!(o.stdout.contains(OWNER) && o.stdout.contains("org:owner"), "{}", o.stdout);

    // Create: JSON output carries the record and the secret once; text prints the secret alone.
    let o =
        me.ok(&["token", "create", "--name", "ci", "--expires", "10d", "--role", "org:member", "--output", "json"], "");
    let created: Value = serde_json::from_str(&o.stdout).unwrap();
    let (ci_id, ci) = (created["id"].as_str().unwrap().to_string(), created["token"].as_str().unwrap().to_string());
    assert!(ci.starts_with("tkd_pat_"), "{ci}");
    assert_eq!(created["roles"], json!(["org:member"]));
    secrets.push(ci.clone());
    let o = me.ok(&["token", "create", "--name", "laptop", "--role", "org:member", "--role", "org:developer"], "");
    let laptop = o.stdout.trim().to_string();
    assert!(laptop.starts_with("tkd_pat_") && !laptop.contains(' '), "stdout is the secret alone: {:?}", o.stdout);
    assert!(o.stderr.contains("shown once"), "{}", o.stderr);
    secrets.push(laptop.clone());
    // Bad input: the server's message or a usage error, exit 1 or 2, nothing created.
    let o = me.run(&["token", "create", "--name", "x", "--expires", "5h", "--role", "org:member"], "");
    assert_eq!(o.code, 2, "{}", o.stderr);
    let o = me.run(&["token", "create", "--name", "x", "--expires", "9999d", "--role", "org:member"], "");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("ttl_days"), "the server's message names the field: {}", o.stderr);
    let o = me.run(&["token", "create", "--name", "x"], "");
    assert_eq!(o.code, 2, "{}", o.stderr);

    // Exchange: from TOKEND_TOKEN or stdin; cached privately until close to expiry.
    let env = [("TOKEND_TOKEN", ci.clone())];
    let o = me.run_env(&["token", "exchange"], "", &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let at = o.stdout.trim().to_string();
    let c = claims(&at);
    assert_eq!((c["aud"].as_str(), c["client_id"].as_str()), (Some(AUDIENCE), Some(ci_id.as_str())), "{c}");
    secrets.push(at.clone());
    let o = me.ok(&["token", "exchange"], &format!("{ci}\n"));
    assert_eq!(o.stdout.trim(), at, "the cached access token is reused");
    let cache = me.config.join("cache");
    assert_eq!(mode(&cache), 0o700);
    for f in fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        assert_eq!(mode(&f), 0o600, "{}", f.display());
        assert!(!f.display().to_string().contains(&ci[8..]), "cache file names reveal nothing");
    }
    let o = me.run_env(&["token", "exchange", "--no-cache"], "", &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_ne!(o.stdout.trim(), at, "--no-cache asks the server");
    secrets.push(o.stdout.trim().to_string());
    let o = me.run_env(&["token", "header"], "", &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("Authorization: Bearer ey"), "{}", o.stdout);
    let o = me.run_env(&["token", "helper"], "", &env);
    let h: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        h["access_token"].as_str().is_some_and(|t| t.starts_with("ey")) && h["expires_in"].as_i64() > Some(60),
        "{h}"
    );
    let o = me.run_env(&["token", "helper", "--format", "exec-credential"], "", &env);
    let h: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(h["kind"], json!("ExecCredential"));
    // Scope narrows; a bad token is refused before any network; argv is refused unrepeated.
    let o = me.run_env(
        &["token", "exchange", "--scope", "org:member", "--no-cache"],
        "",
        &[("TOKEND_TOKEN", laptop.clone())],
    );
    assert_eq!(claims(o.stdout.trim())["roles"], json!(["org:member"]), "{}", o.stderr);
    secrets.push(o.stdout.trim().to_string());
    let o = me.run(&["token", "exchange"], "tkd_pat_nope\n");
    assert_eq!(o.code, 2, "{}", o.stderr);
    let fake = "tkd_pat_0123456789012345678901234567890123456789012ABCDEF";
    let o = me.run(&["token", "exchange", fake], "");
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(!o.stderr.contains(fake), "the refusal never repeats an argument: {}", o.stderr);

    // List: a table; --expiring keeps the 10-day token, not the 30-day one; JSON.
    let o = me.ok(&["token", "list"], "");
    assert!(o.stdout.starts_with("ID "), "{}", o.stdout);
    assert!(o.stdout.contains(&ci_id) && o.stdout.contains("laptop") && o.stdout.contains("tkd_pat_"), "{}", o.stdout);
    assert!(!o.stdout.contains(&ci[8..]), "never a secret in a listing");
    let o = me.ok(&["token", "list", "--expiring", "--within", "15", "--output", "json"], "");
    let items: Vec<Value> = serde_json::from_str(&o.stdout).unwrap();
    let names: Vec<&str> = items.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["ci"], "{}", o.stdout);

    // Rotate: a new secret once; the old one stops working.
    let o = me.ok(&["token", "rotate", &ci_id, "--output", "json"], "");
    let rotated: Value = serde_json::from_str(&o.stdout).unwrap();
    let (new_id, new_secret) =
        (rotated["id"].as_str().unwrap().to_string(), rotated["token"].as_str().unwrap().to_string());
    secrets.push(new_secret.clone());
    let o = me.run_env(&["token", "exchange", "--no-cache"], "", &env);
    assert_eq!(o.code, 3, "the rotated-away secret is refused: {}", o.stderr);
    assert!(o.stderr.contains("invalid_grant"), "{}", o.stderr);
    let new_env = [("TOKEND_TOKEN", new_secret.clone())];
    let o = me.run_env(&["token", "exchange"], "", &new_env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    secrets.push(o.stdout.trim().to_string());

    // Revoke: it stops working at once; an unknown id is exit 5.
    me.ok(&["token", "revoke", &new_id], "");
    let o = me.run_env(&["token", "exchange", "--no-cache"], "", &new_env);
    assert_eq!(o.code, 3, "{}", o.stderr);
    let o = me.run(&["token", "revoke", "tok_does_not_exist"], "");
    assert_eq!(o.code, 5, "{}", o.stderr);

    // Service-account tokens and apps, as the owner.
    let owner_at = srv.login(OWNER, PASSWORD);
    secrets.push(owner_at.clone());
    let (st, sa) = srv.call(
        "POST",
        "/api/v1/service-accounts",
        &owner_at,
        Some(json!({"name": "nightly", "roles": ["org:member"]})),
    );
    assert_eq!(st, 201, "{sa}");
    let sa = sa["id"].as_str().unwrap().to_string();
    let o = me.ok(&["service-account", "list"], "");
    assert!(o.stdout.contains("nightly"), "{}", o.stdout);
    let o = me.ok(
        &["token", "create", "--service-account", &sa, "--name", "backup", "--expires", "5d", "--output", "json"],
        "",
    );
    let sat: Value = serde_json::from_str(&o.stdout).unwrap();
    let (sat_id, sat_secret) = (sat["id"].as_str().unwrap().to_string(), sat["token"].as_str().unwrap().to_string());
    assert!(sat_secret.starts_with("tkd_sat_"));
    secrets.push(sat_secret.clone());
    let o = me.ok(&["token", "list", "--service-account", &sa], "");
    assert!(o.stdout.contains("backup"), "{}", o.stdout);
    let o = me.ok(&["token", "rotate", &sat_id, "--service-account", &sa], "");
    secrets.push(o.stdout.trim().to_string());
    let o = me.ok(&["token", "list", "--service-account", &sa, "--output", "json"], "");
    let live: Vec<Value> = serde_json::from_str::<Vec<Value>>(&o.stdout)
        .unwrap()
        .into_iter()
        .filter(|t| t["status"] == "active")
        .collect();
    assert_eq!(live.len(), 1, "{}", o.stdout);
    me.ok(&["token", "revoke", live[0]["id"].as_str().unwrap(), "--service-account", &sa], "");
    let o = me.ok(&["app", "create", "--name", "billing-sync", "--role", "org:member", "--output", "json"], "");
    let app: Value = serde_json::from_str(&o.stdout).unwrap();
    let app_id = app["id"].as_str().unwrap().to_string();
    secrets.push(app["client_secret"].as_str().unwrap().to_string());
    let o = me.ok(&["app", "list"], "");
    assert!(o.stdout.contains("billing-sync"), "{}", o.stdout);
    let o = me.ok(&["app", "secret", &app_id], "");
    assert!(o.stdout.trim().starts_with("tkd_cs_"), "{}", o.stdout);
    secrets.push(o.stdout.trim().to_string());
    me.ok(&["app", "delete", &app_id], "");

    // A member may not list apps: exit 4 with the server's words.
    let (st, u) = srv.call(
        "POST",
        "/api/v1/users",
        &owner_at,
        Some(json!({"email": "mo@example.test", "roles": ["org:member"]})),
    );
    assert_eq!(st, 201, "{u}");
    let (st, code) =
        srv.call("POST", &format!("/api/v1/users/{}/password-reset", u["id"].as_str().unwrap()), &owner_at, None);
    assert_eq!(st, 200, "{code}");
    let r = ureq::post(&srv.url("/api/v1/password-reset"))
        .send_json(json!({"code": code["code"], "new_password": "member-password-1"}));
    assert!(r.is_ok());
    secrets.push("member-password-1".into());
    let mut mo = User::new(dir.path(), "member", &server);
    assert_eq!(mo.login("mo@example.test", "member-password-1").code, 0);
    let o = mo.run(&["app", "list"], "");
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("permission denied") && o.stderr.contains("org:"), "{}", o.stderr);
    secrets.push(mo.session()["access_token"].as_str().unwrap().to_string());

    // An expired session (its time passed): exit 3 before any request.
    let mut expired = me.session();
    let live_session = expired.clone();
    expired["expires_at"] = json!(common::now() - 10);
    fs::write(&session_file, expired.to_string()).unwrap();
    let o = me.run(&["token", "list"], "");
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("expired") && o.stderr.contains("tokend login"), "{}", o.stderr);
    // A session ended on the server (signed out elsewhere): the server's 401, exit 3.
    fs::write(&session_file, live_session.to_string()).unwrap();
    let (st, _) = srv.call("POST", "/api/v1/logout", live_session["access_token"].as_str().unwrap(), None);
    assert_eq!(st, 204);
    let o = me.run(&["token", "list"], "");
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("refused the session") && o.stderr.contains("tokend login"), "{}", o.stderr);
    // Logout forgets the session and the cache.
    me.ok(&["logout"], "");
    assert!(!session_file.exists() && !cache.exists());

    // Completions and help.
    let o = me.ok(&["completions", "bash"], "");
    assert!(o.stdout.contains("tokend") && o.stdout.contains("exchange"), "completions name the commands");
    for args in [
        &["token", "--help"][..],
        &["token", "create", "--help"],
        &["login", "--help"],
        &["app", "--help"],
        &["leaks", "check", "--help"],
    ] {
        let o = me.ok(args, "");
        assert!(o.stdout.contains("Usage:"), "{args:?}: {}", o.stdout);
    }

    // No secret in any process's argv, nor in the server's logs.
    let logs = srv.stop();
    assert!(logs.contains("POST /oauth/token") || logs.contains("/oauth/token"), "the server logged requests");
    let argvs = me.argvs.iter().chain(&mo.argvs).cloned().collect::<Vec<_>>().join("\n");
    assert!(argvs.contains("token exchange"), "the argv of the runs was read: {argvs}");
    for s in &secrets {
        assert!(!s.is_empty());
        let needle = if s.starts_with("ey") { s.rsplit('.').next().unwrap() } else { s.as_str() };
        assert!(!argvs.contains(needle), "a secret in a process's argv: {needle:.16}…");
        assert!(!logs.contains(needle), "a secret in the server's logs: {needle:.16}…");
    }
}

backend_tests!(login_create_exchange_list_rotate_revoke);
