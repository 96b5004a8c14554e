//! Gateways and offline verifiers (issue #19): forward-auth at `/gateway/auth` (directly,
//! and behind a real nginx with `auth_request`), the revocation feed at
//! `/oauth/revocations`, introspection served from memory yet revocation-aware, and the
//! example resource server refusing a revoked token once it polled the feed.
use crate::common;
use crate::common::helpers::{basic, free_port, introspect, spawn_announcing};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Resp, Server};
use serde_json::json;

const METRICS: &str = "https://metrics.test";
const OPS: &str = "https://ops.test";

fn start(b: &Backend) -> Server {
    b.start_with(|c| {
        c.audiences.extend([METRICS.to_string(), OPS.to_string()]);
        c.service_only_audiences = vec![OPS.to_string()];
    })
}

/// GET `path` with these headers; answers the response and every WWW-Authenticate value.
fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> (Resp, Vec<String>) {
    let mut req = ureq::get(&s.url(path));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let challenges = r.all("www-authenticate").into_iter().map(str::to_string).collect();
    (Resp::from(Ok::<_, ureq::Error>(r)), challenges)
}

/// Forward-auth with `Authorization: auth` for `query`.
fn gw(s: &Server, query: &str, auth: &str) -> (Resp, Vec<String>) {
    get(s, &format!("/gateway/auth{query}"), &[("Authorization", auth)])
}

fn bearer_of(r: &Resp) -> String {
    r.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).expect("Authorization: Bearer …").to_string()
}

/// A person with roles, and a personal token of theirs with `token_roles`: (user id,
/// login access token, token id, token secret).
fn person(
    s: &Server,
    owner: &str,
    email: &str,
    roles: &[&str],
    token_roles: &[&str],
) -> (String, String, String, String) {
    let (id, at) = s.user(owner, email, roles);
    let (tid, secret) = s.pat(&at, json!({"name": "gw", "ttl_days": 1, "roles": token_roles}));
    (id, at, tid, secret)
}

fn audit_count(s: &Server, action: &str, outcome: &str) -> usize {
    s.rows("audit_events").iter().filter(|r| r.contains(action) && r.contains(outcome)).count()
}

/// Forward-auth follows the token endpoint's rules: API tokens as Bearer or as the Basic
/// password are exchanged for the route's audience (verified independently), cached (the
/// same access token again: no signing), refused with the right challenge, and a
/// revocation through this instance is effective at once.
fn forward_auth_rules(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    s.role(&owner, "metrics:write");
    let (uid, _, tid, pat) =
        person(&s, &owner, "writer@example.test", &["org:member", "metrics:write"], &["metrics:write"]);
    let (_, _, _, member_pat) = person(&s, &owner, "member@example.test", &["org:member"], &["org:member"]);

    // Nothing presented: both challenges, no error code (RFC 6750 §3.1).
    let (r, ch) = get(&s, "/gateway/auth", &[]);
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(ch.iter().any(|c| c == "Bearer realm=\"tokend\"") && ch.iter().any(|c| c.starts_with("Basic ")), "{ch:?}");

    // A PAT as Bearer: a fresh access token for the audience, and the headers.
    let q = format!("?audience={METRICS}&role=metrics:write");
    let (r, _) = gw(&s, &q, &format!("Bearer {pat}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let at = bearer_of(&r);
    let c = s.verify(&at, METRICS);
    assert_eq!((c["sub"].as_str(), c["client_id"].as_str()), (Some(uid.as_str()), Some(tid.as_str())));
    assert_eq!(c["roles"], json!(["metrics:write"]));
    assert_eq!(r.header("x-tokend-subject"), Some(uid.as_str()));
    assert_eq!(r.header("x-tokend-org"), Some(s.org_id.as_str()));
    assert_eq!(r.header("x-scope-orgid"), Some(s.org_id.as_str()));
    assert_eq!(r.header("x-tokend-roles"), Some("metrics:write"));
    assert_eq!(r.header("x-tokend-acct"), Some("user"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!r.headers.iter().any(|(_, v)| v.contains(&pat)), "the API token is never echoed");

    // Again, and as the Basic password (any user name): the cached token, not a new one.
    // (The tests share one process, whose caches any audited change in it drops: when another
    // test's write falls between two requests, the pair is asked again.)
    let mut hit = false;
    for _ in 0..20 {
        let (r, _) = gw(&s, &q, &format!("Bearer {pat}"));
        assert_eq!(r.status, 200, "{}", r.text);
        let held = bearer_of(&r);
        let (again, _) = gw(&s, &q, &format!("Bearer {pat}"));
        let (as_basic, _) = gw(&s, &q, &basic("prometheus", &pat));
        assert_eq!((again.status, as_basic.status), (200, 200));
        if bearer_of(&again) == held && bearer_of(&as_basic) == held {
            hit = true;
            break;
        }
    }
    assert!(hit, "a cache hit signs nothing");
    // The audience from a header a gateway sets per route.
    let (r, _) =
        get(&s, "/gateway/auth", &[("Authorization", &format!("Bearer {pat}")), ("X-Tokend-Audience", METRICS)]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.verify(&bearer_of(&r), METRICS)["aud"], json!(METRICS));
    // No audience: the default resource audience, as at /oauth/token.
    let (r, _) = gw(&s, "", &format!("Bearer {pat}"));
    assert_eq!(r.status, 200, "{}", r.text);
    s.verify(&bearer_of(&r), &s.resource_audience());

    // Roles: the route's role must be held; one that implies it counts.
    let (r, ch) = gw(&s, &format!("?audience={METRICS}&role=org:admin"), &format!("Bearer {pat}"));
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(ch, vec!["Bearer realm=\"tokend\", error=\"insufficient_scope\", scope=\"org:admin\"".to_string()]);
    let (r, _) = gw(&s, &q, &format!("Bearer {member_pat}"));
    assert_eq!(r.status, 403, "a token without the role: {}", r.text);
    let (r, _) = gw(&s, &format!("?audience={METRICS}&role=org:member"), &format!("Bearer {}", s.owner_pat));
    assert_eq!(r.status, 200, "org:owner holds org:member: {}", r.text);

    // Audiences refuse: not configured, or service accounts only (as /oauth/token does).
    assert_eq!(gw(&s, "?audience=https://nope.test", &format!("Bearer {pat}")).0.status, 403);
    assert_eq!(gw(&s, &format!("?audience={OPS}"), &format!("Bearer {pat}")).0.status, 403);
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "bot", "roles": ["org:member"]}));
    let sa_id = sa.body["id"].as_str().unwrap().to_string();
    let r = s.post(&format!("/api/v1/service-accounts/{sa_id}/tokens"), &owner, json!({"name": "t", "ttl_days": 1}));
    let sat = r.body["token"].as_str().unwrap().to_string();
    let (r, _) = gw(&s, &format!("?audience={OPS}"), &basic("x", &sat));
    assert_eq!(r.status, 200, "a service token for a service-only audience: {}", r.text);
    assert_eq!(r.header("x-tokend-acct"), Some("service_account"));

    // An access token is passed through for its own audience, never re-targeted.
    let exchanged = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &pat), ("audience", METRICS)],
        None,
    );
    let resource = exchanged.body["access_token"].as_str().unwrap().to_string();
    let (r, _) = gw(&s, &q, &format!("Bearer {resource}"));
    assert_eq!((r.status, bearer_of(&r)), (200, resource.clone()));
    let (r, ch) = gw(&s, "", &format!("Bearer {resource}"));
    assert_eq!(r.status, 401, "another audience: {}", r.text);
    assert!(ch[0].contains("error=\"invalid_token\""), "{ch:?}");

    // Unknown credentials: 401 invalid_token; Basic clients get the Basic challenge too.
    let (r, ch) = gw(&s, &q, "Bearer tkd_pat_notavalidtoken");
    assert_eq!((r.status, ch.len()), (401, 1), "{ch:?}");
    assert!(ch[0].starts_with("Bearer realm=\"tokend\", error=\"invalid_token\""), "{ch:?}");
    let (r, ch) = gw(&s, &q, &basic("x", "not-a-token"));
    assert_eq!((r.status, ch.len()), (401, 2), "{ch:?}");

    // Revoked through this instance: refused at once, though the answer was cached; the
    // refusal of a known token is audited like one at /oauth/token.
    let refusals = audit_count(&s, "token.exchange", "failure");
    assert_eq!(
        s.delete(&format!("/api/v1/me/tokens/{tid}"), &s.login("writer@example.test", "user-password-123")).status,
        204
    );
    let (r, _) = gw(&s, &q, &format!("Bearer {pat}"));
    assert_eq!(r.status, 401, "revoked: {}", r.text);
    assert_eq!(gw(&s, &q, &basic("prometheus", &pat)).0.status, 401);
    assert_eq!(gw(&s, &q, &format!("Bearer {resource}")).0.status, 401, "its access tokens end with it");
    assert_eq!(audit_count(&s, "token.exchange", "failure"), refusals + 2);
    let revoked = s
        .rows("audit_events")
        .iter()
        .filter(|r| r.contains("token.exchange") && r.contains("\"reason\":\"revoked\""))
        .count();
    assert_eq!(revoked, 2, "both refusals say why: the token was revoked");
}

/// The feed: who may read it, what it says, cursors, resets, ETag, and one org only.
fn revocation_feed(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (_, cid, secret) = s.app(&owner, json!({"name": "verifier", "introspect": true}));
    let (_, plain_cid, plain_secret) = s.app(&owner, json!({"name": "plain"}));
    let app = basic(&cid, &secret);
    let feed = |since: Option<&str>| {
        let path = since.map_or("/oauth/revocations".to_string(), |c| format!("/oauth/revocations?since={c}"));
        get(&s, &path, &[("Authorization", &app)]).0
    };

    // Who may read it.
    assert_eq!(get(&s, "/oauth/revocations", &[]).0.status, 401);
    assert_eq!(get(&s, "/oauth/revocations", &[("Authorization", &basic(&cid, "wrong"))]).0.status, 401);
    assert_eq!(get(&s, "/oauth/revocations", &[("Authorization", &basic(&plain_cid, &plain_secret))]).0.status, 403);
    let (_, member_at) = s.user(&owner, "member@example.test", &["org:member"]);
    // (Setting a person's password ends their earlier logins: in the feed before c0.)
    let (uid, user_at, tid, pat) = person(&s, &owner, "leaver@example.test", &["org:member"], &["org:member"]);
    assert_eq!(s.get("/oauth/revocations", &member_at).status, 403);
    assert_eq!(s.get("/oauth/revocations", &owner).status, 200);
    for bad in ["x", "1", "1.x", "-1.5", "1.99999999999"] {
        let r = feed(Some(bad));
        assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")), "{bad}: {}", r.text);
    }

    // The first answer: the whole window (here empty), and a cursor.
    let r = feed(None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reset"], json!(true));
    assert_eq!(r.body["window_seconds"], json!(86_400 + 30));
    assert_eq!(r.header("cache-control"), Some("private, no-cache"));
    let c0 = r.body["cursor"].as_str().unwrap().to_string();
    let etag = r.header("etag").unwrap().to_string();
    let (r304, _) =
        get(&s, &format!("/oauth/revocations?since={c0}"), &[("Authorization", &app), ("If-None-Match", &etag)]);
    assert_eq!(r304.status, 200, "another URL (since) is another answer");
    let (r304, _) = get(&s, "/oauth/revocations", &[("Authorization", &app), ("If-None-Match", &etag)]);
    assert_eq!((r304.status, r304.text.as_str()), (304, ""), "unchanged: 304");

    // Three kinds of revocation.
    let access = s.exchange_ok(&pat);
    let jti = s.verify_resource(&access)["jti"].as_str().unwrap().to_string();
    let ep = s.verify_api(&user_at)["ep"].as_i64().unwrap();
    assert_eq!(s.form("/oauth/revoke", &[("token", &access)], None).status, 200);
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{tid}"), &user_at).status, 204);
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true})).status, 200);

    let r = feed(Some(&c0));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reset"], json!(false));
    assert_eq!(r.body["access_tokens"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["access_tokens"][0]["jti"], json!(jti));
    assert_eq!(r.body["api_tokens"], json!([{"client_id": tid, "revoked_at": s.state.now()}]));
    let principals = r.body["principals"].as_array().unwrap();
    assert_eq!(principals.len(), 1, "{}", r.body);
    assert_eq!((principals[0]["sub"].as_str(), principals[0]["acct"].as_str()), (Some(uid.as_str()), Some("user")));
    assert!(principals[0]["epoch"].as_i64().unwrap() > ep, "the disabled person's tokens are below it");
    let c1 = r.body["cursor"].as_str().unwrap().to_string();
    let r = feed(Some(&c1));
    assert_eq!((r.body["access_tokens"].clone(), r.body["api_tokens"].clone()), (json!([]), json!([])));
    assert_eq!(r.body["principals"], json!([]));
    // Without a cursor: everything in the window again.
    assert_eq!(feed(None).body["api_tokens"].as_array().unwrap().len(), 1);

    // An app disabled, then re-enabled: its new tokens are not below the feed's epoch.
    let (pid, pcid, psecret) = s.app(&owner, json!({"name": "cycled"}));
    for disabled in [true, false] {
        assert_eq!(s.patch(&format!("/api/v1/apps/{pid}"), &owner, json!({"disabled": disabled})).status, 200);
    }
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&pcid, &psecret)));
    let ep = s.verify_resource(r.body["access_token"].as_str().unwrap())["ep"].as_i64().unwrap();
    let r = feed(Some(&c1));
    let row = r.body["principals"].as_array().unwrap().iter().find(|p| p["sub"] == json!(pcid)).cloned();
    let row = row.unwrap_or_else(|| panic!("the disabled app is in the feed: {}", r.body));
    assert_eq!((row["acct"].as_str(), row["epoch"].as_i64()), (Some("app"), Some(ep)), "refuses below, not at, {ep}");

    // Another org's revocations are its own.
    let other_password = "other-password-123";
    {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::org::orgs::create(
            &mut conn,
            "other",
            "owner@other.test",
            Some(other_password.into()),
            s.state.now(),
        )
        .expect("a second org");
    }
    let other = s.login("owner@other.test", other_password);
    let (other_tid, _) = s.pat(&other, json!({"name": "x", "ttl_days": 1}));
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{other_tid}"), &other).status, 204);
    let r = feed(Some(&c1));
    assert_eq!(r.body["api_tokens"], json!([]), "not ours: {}", r.body);
    let r = s.get("/oauth/revocations", &other);
    assert_eq!(r.body["api_tokens"][0]["client_id"], json!(other_tid), "{}", r.body);

    // Past the window: the cursor is too old (reset) and what it held no longer matters.
    s.clock.advance(86_400 + 31);
    let r = feed(Some(&c1));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reset"], json!(true));
    assert_eq!(r.body["api_tokens"], json!([]), "{}", r.body);
    assert_eq!(r.body["principals"], json!([]), "{}", r.body);
}

/// Introspection of access tokens is served from memory, yet every kind of revocation
/// through this instance shows at once.
fn introspection_cache_follows_revocations(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (_, cid, secret) = s.app(&owner, json!({"name": "verifier", "introspect": true}));
    let app = (cid.as_str(), secret.as_str());
    let (uid, user_at, tid, pat) = person(&s, &owner, "p@example.test", &["org:member"], &["org:member"]);

    // An API token revoked by its holder.
    let a1 = s.exchange_ok(&pat);
    for _ in 0..3 {
        let v = introspect(&s, app, &a1);
        assert_eq!((v["active"].clone(), v["client_id"].clone()), (json!(true), json!(tid)), "{v}");
    }
    assert_eq!(s.form("/oauth/revoke", &[("token", &pat)], None).status, 200);
    assert_eq!(introspect(&s, app, &a1), json!({"active": false}));

    // An access token revoked by jti.
    let (_, pat2) = s.pat(&user_at, json!({"name": "two", "ttl_days": 1, "roles": ["org:member"]}));
    let a2 = s.exchange_ok(&pat2);
    assert_eq!(introspect(&s, app, &a2)["active"], json!(true));
    assert_eq!(s.form("/oauth/revoke", &[("token", &a2)], None).status, 200);
    assert_eq!(introspect(&s, app, &a2), json!({"active": false}));

    // The person disabled.
    let a3 = s.exchange_ok(&pat2);
    assert_eq!(introspect(&s, app, &a3)["active"], json!(true));
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true})).status, 200);
    assert_eq!(introspect(&s, app, &a3), json!({"active": false}));
    // Narrowed roles show too (the cache holds the resolved roles, and is dropped).
    let (_, dev_at) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let dev = s.get("/api/v1/me", &dev_at).body["id"].as_str().unwrap().to_string();
    let (_, dev_pat) = s.pat(&dev_at, json!({"name": "d", "ttl_days": 1, "roles": ["org:developer"]}));
    let a4 = s.exchange_ok(&dev_pat);
    assert_eq!(introspect(&s, app, &a4)["roles"], json!(["org:developer"]));
    let r = s.patch(&format!("/api/v1/users/{dev}?credentials=disable"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let v = introspect(&s, app, &a4);
    assert!(v["active"] == json!(false) || v["roles"] == json!(["org:member"]), "{v}");
}

/// `examples/resource_server.rs` (built by `cargo test`; before a filtered run, `cargo
/// build --examples`) polls the feed and refuses an access token revoked at tokend within
/// its poll interval (here 1 s; the test waits for it without a timing threshold).
fn example_refuses_revoked_tokens(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (_, cid, secret) = s.app(&owner, json!({"name": "rs", "introspect": true}));
    let (tid, pat) = s.pat(&owner, json!({"name": "rs", "ttl_days": 1, "roles": ["org:owner"]}));
    let exchanged = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &pat), ("audience", METRICS)],
        None,
    );
    let access = exchanged.body["access_token"].as_str().unwrap().to_string();
    let example = Path::new(env!("CARGO_BIN_EXE_tokend")).parent().unwrap().join("examples").join("resource_server");
    assert!(example.exists(), "cargo test builds the examples: {}", example.display());
    let (child, base) = spawn_announcing(
        Command::new(&example)
            .args([s.issuer(), METRICS.into(), "127.0.0.1:0".into()])
            .env("TOKEND_FEED_CLIENT_ID", &cid)
            .env("TOKEND_FEED_CLIENT_SECRET", &secret)
            .env("TOKEND_FEED_POLL_SECONDS", "1")
            .stderr(Stdio::null()),
        "resource server on",
        Duration::from_secs(60),
    );
    let _guard = Kill(child);
    let url = format!("{base}/metrics/query");
    let status = || match ureq::get(&url).set("Authorization", &format!("Bearer {access}")).call() {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(code),
        Err(_) => None,
    };
    assert_eq!(wait_for(|| status().filter(|c| *c != 0)), 200, "accepted before the revocation");
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{tid}"), &owner).status, 204);
    assert_eq!(wait_for(|| status().filter(|c| *c == 401)), 401, "refused once the feed said so");
}

/// Polls `f` until it answers, for at most 60 s.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a child process on drop.
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

backend_tests!(
    forward_auth_rules,
    revocation_feed,
    introspection_cache_follows_revocations,
    example_refuses_revoked_tokens
);

// ---------------------------------------------------------------------------------------
// a real nginx in front
// ---------------------------------------------------------------------------------------

/// nginx as build.rs found it (TOKEND_NGINX, PATH, /usr/sbin/nginx).
fn nginx_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TOKEND_NGINX") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
        .expect("nginx is not installed (apt-get install nginx): under CI=true this test must run")
}

/// What the upstream saw: per request, its (lower-cased) headers, the request line and body.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A tiny upstream: answers 200 to everything and records each request's headers.
fn upstream() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let mut length = 0usize;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                    if k == "content-length" {
                        length = v.parse().unwrap_or(0);
                    }
                    headers.push((k, v));
                } else {
                    headers.push(("request-line".into(), line.trim_end().to_string()));
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            headers.push(("body".into(), String::from_utf8_lossy(&body).into_owned()));
            log.lock().unwrap().push(headers);
            let mut out = stream;
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream");
        }
    });
    (port, seen)
}

/// nginx.conf: `/metrics/` needs metrics:write for the metrics audience, `/ops/` the
/// default audience and no role; tokend's answer replaces the client's Authorization.
fn nginx_conf(dir: &Path, port: u16, tokend: &str, upstream: u16) -> String {
    let d = dir.display();
    let location = |path: &str, auth: &str| {
        format!(
            "    location {path} {{
      auth_request {auth};
      auth_request_set $tokend_authorization $upstream_http_authorization;
      auth_request_set $tokend_tenant $upstream_http_x_scope_orgid;
      auth_request_set $tokend_subject $upstream_http_x_tokend_subject;
      proxy_set_header Authorization $tokend_authorization;
      proxy_set_header X-Scope-OrgID $tokend_tenant;
      proxy_set_header X-Tokend-Subject $tokend_subject;
      proxy_pass http://127.0.0.1:{upstream};
    }}
"
        )
    };
    let auth = |name: &str, query: &str| {
        format!(
            "    location = {name} {{
      internal;
      proxy_pass {tokend}/gateway/auth{query};
      proxy_pass_request_body off;
      proxy_set_header Content-Length \"\";
      proxy_set_header X-Original-URI $request_uri;
    }}
"
        )
    };
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
{}{}{}{}  }}
}}
",
        location("/metrics/", "/_tokend_metrics"),
        location("/ops/", "/_tokend_ops"),
        auth("/_tokend_metrics", &format!("?audience={METRICS}&role=metrics:write")),
        auth("/_tokend_ops", ""),
    )
}

/// Through a real nginx (`auth_request`): a PAT as Bearer and as the Basic password reach
/// the upstream as a valid access token for the route's audience with the tenant header;
/// a token without the route's role gets 403; a revoked one 401 at once (revoked through
/// this instance); no API token ever reaches the upstream.
fn forward_auth_through_nginx(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    s.role(&owner, "metrics:write");
    let (uid, user_at, tid, pat) =
        person(&s, &owner, "writer@example.test", &["org:member", "metrics:write"], &["metrics:write"]);
    let (_, member_pat) = s.pat(&user_at, json!({"name": "narrow", "ttl_days": 1, "roles": ["org:member"]}));
    let (up_port, seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("nginx.conf"), nginx_conf(dir.path(), port, &s.base, up_port)).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let mut nginx = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(|| {
        if let Ok(Some(status)) = nginx.0.try_wait() {
            let mut err = String::new();
            let _ = nginx.0.stderr.take().map(|mut e| e.read_to_string(&mut err));
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}): {err}\n{log}");
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let call = |path: &str, auth: Option<&str>| {
        let mut req = ureq::post(&format!("{base}{path}")).timeout(Duration::from_secs(10));
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        match req.send_string("series 1") {
            Ok(r) => (r.status(), r.header("www-authenticate").map(str::to_string)),
            Err(ureq::Error::Status(code, r)) => (code, r.header("www-authenticate").map(str::to_string)),
            Err(e) => panic!("nginx: {e}"),
        }
    };

    assert_eq!(call("/metrics/push", Some(&format!("Bearer {pat}"))).0, 200);
    assert_eq!(call("/metrics/push", Some(&basic("prometheus", &pat))).0, 200);
    assert_eq!(call("/ops/status", Some(&basic("grafana", &pat))).0, 200, "the default audience, no role");
    let upstream_saw = seen.lock().unwrap().clone();
    assert_eq!(upstream_saw.len(), 3, "{upstream_saw:?}");
    for (i, req) in upstream_saw.iter().enumerate() {
        let h = |k: &str| req.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let aud = if i < 2 { METRICS.to_string() } else { s.resource_audience() };
        let token = h("authorization").strip_prefix("Bearer ").expect("a bearer upstream").to_string();
        let c = s.verify(&token, &aud);
        assert_eq!((c["sub"].as_str(), c["client_id"].as_str()), (Some(uid.as_str()), Some(tid.as_str())));
        assert_eq!(h("x-scope-orgid"), s.org_id, "the tenant header");
        assert_eq!(h("x-tokend-subject"), uid);
        assert_eq!(h("body"), "series 1", "the client's body reaches the upstream");
    }

    // No role: 403. Nothing presented, garbage: 401 with the challenge nginx copies.
    assert_eq!(call("/metrics/push", Some(&format!("Bearer {member_pat}"))).0, 403);
    let (status, challenge) = call("/metrics/push", None);
    assert_eq!(status, 401);
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer realm=\"tokend\"")));
    assert_eq!(call("/metrics/push", Some("Bearer tkd_pat_garbage")).0, 401);

    // Revoked through this instance: 401 through nginx at once (the cached answer dropped).
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{tid}"), &user_at).status, 204);
    assert_eq!(call("/metrics/push", Some(&format!("Bearer {pat}"))).0, 401);
    assert_eq!(call("/metrics/push", Some(&basic("prometheus", &pat))).0, 401);

    let everything = seen.lock().unwrap().clone();
    assert_eq!(everything.len(), 3, "refused requests never reach the upstream");
    for req in &everything {
        for (k, v) in req {
            assert!(!v.contains("tkd_"), "an API token reached the upstream in {k}: {v}");
        }
    }
}

mod nginx {
    mod sqlite {
        #[test]
        #[cfg_attr(tokend_skip_nginx, ignore = "SKIPPED: nginx is not installed (apt-get install nginx)")]
        fn forward_auth_through_nginx() {
            super::super::forward_auth_through_nginx(&crate::common::Backend::Sqlite)
        }
    }
    mod postgres {
        #[test]
        #[cfg_attr(tokend_skip_nginx, ignore = "SKIPPED: nginx is not installed (apt-get install nginx)")]
        #[cfg_attr(
            all(tokend_skip_pg, not(tokend_skip_nginx)),
            ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set"
        )]
        fn forward_auth_through_nginx() {
            super::super::forward_auth_through_nginx(&crate::common::Backend::postgres())
        }
    }
}
