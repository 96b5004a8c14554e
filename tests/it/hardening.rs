//! Issue #18, items 6–14: throttles that never refuse the right password, bounded
//! amplification, capped catalogues and inputs, refused insecure configurations, and the
//! small hardening items. Real HTTP through the harness; both backends where storage is
//! involved.
use crate::common;
use crate::common::helpers::{behind_proxy, login_from};

use common::Backend;
use serde_json::json;
use tokend::app::outbox::PER_ORG_IN_FLIGHT;
use tokend::clock::Clock;
use tokend::service::authz::roles::MAX_CATALOGUED_ROLES;
use tokend::service::authz::throttle::REVOKES_PER_MINUTE;
use tokend::service::events::audit::{REFUSED_ROWS_PER_WINDOW, REFUSED_WINDOW_SECONDS};
use tokend::service::events::webhooks::TEST_EVENTS_PER_MINUTE;
use tokend::service::principals::users::{LOGIN_FAILURES_PER_IP, LOGIN_FREE_FAILURES};
use tokend::service::tokens::table::MAX_FILTER_CHARS;

/// Hashes verified so far, in both budgets.
fn hash_turns(s: &common::Server) -> usize {
    s.state.hashing.stats().turns + s.state.login.priority.stats().turns
}

// ---------------------------------------------------------------- 6. login throttle

/// Item 6: an address over its failure limit (wrong passwords for random emails) and an
/// account over its own limit from that address still accept the right password; the
/// wrong one answers 429 there.
fn login_throttle_never_refuses_the_right_password(b: &Backend) {
    let s = behind_proxy(b);
    let addr = "203.0.113.50";
    for i in 0..=LOGIN_FAILURES_PER_IP {
        let r = login_from(&s, &format!("nobody{i}@example.test"), "wrong-password-xyz", addr);
        assert!(r.status == 401 || r.status == 429, "{}", r.text);
    }
    assert_eq!(login_from(&s, "nobody@example.test", "wrong-password-xyz", addr).status, 429, "over its limit");
    let r = login_from(&s, &s.owner_email, &s.owner_password, addr);
    assert_eq!(r.status, 200, "the right password from an address over its limit: {}", r.text);

    // The owner's own account guessed from another address until it waits.
    let other = "203.0.113.51";
    for _ in 0..LOGIN_FREE_FAILURES {
        assert_eq!(login_from(&s, &s.owner_email, "wrong-password-xyz", other).status, 401);
    }
    assert_eq!(login_from(&s, &s.owner_email, "wrong-password-xyz", other).status, 429);
    let r = login_from(&s, &s.owner_email, &s.owner_password, other);
    assert_eq!(r.status, 200, "a locked account still accepts its password: {}", r.text);
}

/// Item 6: simultaneous valid logins of one account from one address all succeed: an
/// attempt never takes a failure place before it has failed.
fn concurrent_valid_logins_are_never_throttled(b: &Backend) {
    let s = behind_proxy(b);
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..12)
            .map(|_| sc.spawn(|| login_from(&s, &s.owner_email, &s.owner_password, "203.0.113.60").status))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
}

// ---------------------------------------------------------------- 11. login timing

/// Item 11: a login verifies exactly one password hash whatever the number of accounts
/// (in other organizations) sharing the email, so its work says nothing about them.
fn login_hashes_once_whatever_accounts_share_the_email(b: &Backend) {
    let s = b.start();
    let email = s.owner_email.clone();
    {
        let mut conn = s.state.db.write().unwrap();
        for name in ["second", "third", "fourth"] {
            tokend::service::org::orgs::create(
                &mut conn,
                name,
                &email,
                Some("other-password-123".into()),
                common::now(),
            )
            .unwrap();
        }
    }
    for (password, org, status) in [
        (s.owner_password.as_str(), None, 200),
        ("wrong-password-xyz", None, 401),
        ("other-password-123", Some("third"), 200),
        ("other-password-123", Some("nowhere"), 401),
    ] {
        let before = hash_turns(&s);
        let mut body = json!({"email": email, "password": password});
        if let Some(o) = org {
            body["org"] = json!(o);
        }
        let r = s.call("POST", "/api/v1/login", None, Some(&body));
        assert_eq!(r.status, status, "{org:?}: {}", r.text);
        assert_eq!(hash_turns(&s) - before, 1, "one hash for {org:?} / {status}");
    }
    let before = hash_turns(&s);
    let r = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "unknown@example.test", "password": "x-password-1"})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(hash_turns(&s) - before, 1, "an unknown email costs the same one hash");
}

// ---------------------------------------------------------------- 7. login floods

/// Item 7: with the common hashing budget full (every turn taken, the queue full), a login
/// is refused at once (503 + Retry-After) without hashing and the refusal counts as a
/// failure of its address (30 of them put the address over its limit); an (account,
/// network) pair that logged in before hashes in its own budget and is served.
fn a_full_hashing_budget_refuses_strangers_not_known_good_logins(b: &Backend) {
    let s = behind_proxy(b);
    let (home, stranger) = ("198.51.100.70", "203.0.113.70");
    assert_eq!(login_from(&s, &s.owner_email, &s.owner_password, home).status, 200, "known-good from now on");
    let bound = &s.state.hashing;
    std::thread::scope(|sc| {
        let held: Vec<_> = (0..bound.stats().bound).map(|_| bound.acquire().unwrap()).collect();
        let queue = bound.stats().queue;
        let waiters: Vec<_> = (0..queue).map(|_| sc.spawn(|| drop(bound.acquire()))).collect();
        while bound.stats().waiting < queue {
            std::thread::yield_now();
        }
        let turns = hash_turns(&s);
        for i in 0..LOGIN_FAILURES_PER_IP {
            let r = login_from(&s, &format!("x{i}@example.test"), "wrong-password-xyz", stranger);
            assert_eq!(r.status, 503, "{}", r.text);
            assert!(r.header("retry-after").is_some());
        }
        assert_eq!(hash_turns(&s), turns, "refused before any hashing");
        let r = login_from(&s, &s.owner_email, &s.owner_password, home);
        assert_eq!(r.status, 200, "a known-good pair has its own budget: {}", r.text);
        drop(held);
        for w in waiters {
            w.join().unwrap();
        }
    });
    // The busy refusals were charged to the stranger's address: it is over its limit now.
    let r = login_from(&s, "another@example.test", "wrong-password-xyz", stranger);
    assert_eq!(r.status, 429, "{}", r.text);
}

// ---------------------------------------------------------------- 8. audit amplification

fn count_where(s: &common::Server, table: &str, cond: &str) -> i64 {
    s.count(&format!("{table} WHERE {cond}"))
}

/// Item 8: a member exchanging and revoking access tokens in a loop writes at most
/// `REVOKES_PER_MINUTE` revoked-jti rows and revocation audit rows a minute; beyond it
/// `/oauth/revoke` answers 429 and writes nothing.
fn access_token_revocations_are_bounded_per_principal(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let (_, pat) = s.pat(&member, json!({"name": "p", "ttl_days": 1, "roles": ["org:member"]}));
    let limit = REVOKES_PER_MINUTE as usize;
    let mut codes = Vec::new();
    for _ in 0..(limit + 10) {
        let at = s.exchange_ok(&pat);
        codes.push(s.form("/oauth/revoke", &[("token", &at)], None).status);
    }
    assert!(codes[..limit].iter().all(|c| *c == 200), "{codes:?}");
    assert!(codes[limit..].iter().all(|c| *c == 429), "{codes:?}");
    assert_eq!(s.count("revoked_jtis"), limit as i64);
    assert_eq!(count_where(&s, "audit_events", "action = 'access_token.revoke'"), limit as i64);
    // A minute later the holder revokes again.
    s.clock.advance(61);
    let at = s.exchange_ok(&pat);
    assert_eq!(s.form("/oauth/revoke", &[("token", &at)], None).status, 200);
    assert_eq!(s.count("revoked_jtis"), limit as i64 + 1);
}

/// Item 8: a known revoked token presented from many addresses writes a few refusal rows
/// a minute, then one summary with the number left out.
fn refused_exchange_audit_is_bounded_per_credential(b: &Backend) {
    let s = behind_proxy(b);
    let owner = s.owner_login();
    let (id, pat) = s.pat(&owner, json!({"name": "doomed", "ttl_days": 1, "roles": ["org:member"]}));
    assert_eq!(s.post(&format!("/api/v1/tokens/{id}/revoke"), &owner, json!({})).status, 200);
    let refusals = || {
        count_where(
            &s,
            "audit_events",
            "action = 'token.exchange' AND outcome = 'failure' AND detail LIKE '%\"reason\":\"revoked\"%'",
        )
    };
    let before = refusals();
    for i in 0..40 {
        let r = s.raw(
            "POST",
            "/oauth/token",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", &format!("192.0.2.{i}"))],
            format!("grant_type=refresh_token&refresh_token={pat}").as_bytes(),
        );
        assert_eq!(r.status, 400, "{}", r.text);
    }
    assert_eq!(refusals() - before, REFUSED_ROWS_PER_WINDOW as i64);
    s.clock.advance(REFUSED_WINDOW_SECONDS + 1);
    s.state.flush_refused(false);
    let summary = count_where(&s, "audit_events", &format!("action = 'audit.suppressed' AND actor_id = '{id}'"));
    assert_eq!(summary, 1, "one summary row for the suppressed refusals");
}

/// Item 8: a revoked-jti row lives as long as the token it names, then maintenance purges it.
fn revoked_jti_rows_expire_with_their_token(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    assert_eq!(s.form("/oauth/revoke", &[("token", &at)], None).status, 200);
    assert_eq!(s.count("revoked_jtis"), 1);
    let purge = || {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::principals::sessions::purge_expired(&mut conn, s.clock.now()).unwrap();
    };
    purge();
    assert_eq!(s.count("revoked_jtis"), 1, "kept while the token could still be presented");
    s.clock.advance(s.state.cfg.access_token_ttl + tokend::jwt::LEEWAY + 1);
    purge();
    assert_eq!(s.count("revoked_jtis"), 0, "gone with the token it names");
}

// ---------------------------------------------------------------- 9. role catalogue

/// Catalogues `n` roles straight into the database (the API would take minutes).
fn catalogue_roles(s: &common::Server, prefix: &str, n: usize) {
    let mut conn = s.state.db.write().unwrap();
    for i in 0..n {
        let row = tokend::store::models::Role {
            org_id: s.org_id.clone(),
            name: format!("{prefix}:r{i}"),
            kind: "custom".into(),
            description: String::new(),
            created_at: common::now(),
        };
        tokend::store::org::insert_role(&mut conn, &row).unwrap();
    }
}

/// Item 9: the catalogue holds at most `MAX_CATALOGUED_ROLES` service and custom roles;
/// one more answers 409 and adds nothing, and a deletion makes room again.
fn role_catalogue_is_capped(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    catalogue_roles(&s, "bulk", MAX_CATALOGUED_ROLES as usize - 1);
    s.role(&owner, "last:one");
    let before = s.data_snapshot();
    let r = s.post("/api/v1/roles", &owner, json!({"name": "one:more", "kind": "custom"}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(s.data_snapshot(), before, "a refused role adds nothing");
    assert_eq!(s.delete("/api/v1/roles/last:one", &owner).status, 204);
    s.role(&owner, "one:more");
}

/// Item 9: with a catalogue far beyond SQLite's expression depth, a non-owner admin's
/// people list answers 200 and shows exactly the people whose roles the admin holds.
fn people_list_does_not_grow_with_the_catalogue(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    catalogue_roles(&s, "many", 1100);
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin", "many:r1"]);
    let (member_id, _) = s.user(&owner, "member@example.test", &["org:member", "many:r1"]);
    let (_, _) = s.user(&owner, "stronger@example.test", &["org:member", "many:r2"]);
    let r = s.get("/api/v1/users?page_size=200", &admin);
    assert_eq!(r.status, 200, "{}", r.text);
    let mut ids: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![admin_id.as_str(), member_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected, "the admin sees whom they may act on, no owner, no stronger person");
    assert_eq!(r.body["total_count"], json!(2));
    assert_eq!(s.get("/api/v1/users", &owner).body["total_count"], json!(4), "the owner sees everyone");
}

// ---------------------------------------------------------------- 12. SMTP credentials

/// `tokend` with only the environment given (none inherited).
fn tokend_cmd(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TOKEND_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied()).args(args).stdin(std::process::Stdio::null());
    cmd.output().unwrap()
}

/// Item 12: SMTP credentials over plain smtp:// to a non-loopback host are refused at
/// start (exit 2, naming TOKEND_SMTP_URL, never repeating the password).
#[test]
fn smtp_credentials_without_tls_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let keys = dir.path().join("keys").display().to_string();
    let url = "smtp://mailer:s3cret-pw@mail.example.test:587";
    let out = tokend_cmd(
        &[("DATABASE_URL", &db), ("TOKEND_KEYS_DIR", &keys), ("TOKEND_SMTP_URL", url), ("TOKEND_BIND", "127.0.0.1:0")],
        &["serve"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TOKEND_SMTP_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(!dir.path().join("t.db").exists(), "refused before touching the database");
}

/// Item 14: `tokend serve --help` names the variables but never prints their values.
#[test]
fn serve_help_prints_no_env_values() {
    let secret = "postgres://tokend:db-s3cret@db.example.test/tokend";
    let out =
        tokend_cmd(&[("DATABASE_URL", secret), ("TOKEND_BOOTSTRAP_PASSWORD", "boot-s3cret")], &["serve", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(!text.contains("db-s3cret") && !text.contains("boot-s3cret"), "{text}");
}

// ---------------------------------------------------------------- 14. small hardening

/// Item 14: `q` (and `role`) on the token table are capped: 201 characters answer 422 naming
/// the parameter, never 500; 200 are served.
fn token_table_search_terms_are_capped(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let long = "x".repeat(MAX_FILTER_CHARS + 1);
    for param in ["q", "role"] {
        let r = s.get(&format!("/api/v1/tokens?{param}={long}"), &owner);
        assert_eq!(r.status, 422, "{param}: {}", r.text);
        assert!(r.text.contains(param), "{}", r.text);
    }
    let r = s.get(&format!("/api/v1/tokens?q={}", "x".repeat(60_000)), &owner);
    assert_eq!(r.status, 422, "{}", r.text);
    let r = s.get(&format!("/api/v1/tokens?q={}", "x".repeat(MAX_FILTER_CHARS)), &owner);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Item 14: discovery advertises only what is implemented: no response type (there is no
/// authorization endpoint), no JWT client authentication or ID-token algorithms.
fn discovery_lists_only_what_is_implemented(b: &Backend) {
    let s = b.start();
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m = s.call("GET", path, None, None).body;
        assert_eq!(m["response_types_supported"], json!([]), "{path}: {m}");
        for absent in ["token_endpoint_auth_signing_alg_values_supported", "id_token_signing_alg_values_supported"] {
            assert!(m.get(absent).is_none(), "{path} advertises {absent}: {m}");
        }
        let grants = m["grant_types_supported"].as_array().unwrap();
        assert!(!grants.contains(&json!("implicit")) && !grants.contains(&json!("authorization_code")));
    }
}

/// Item 14: with TOKEND_METRICS_TOKEN set, `/metrics` answers only that bearer (401 with
/// WWW-Authenticate otherwise); without it, anyone (the default).
fn metrics_can_require_a_bearer_token(b: &Backend) {
    let token = "metrics-token-0123456789";
    let s = b.start_with(|c| c.metrics_token = Some(tokend::config::MetricsToken::new(token)));
    let get = |h: &[(&str, &str)]| s.raw("GET", "/metrics", h, b"");
    for h in [vec![], vec![("Authorization", "Bearer wrong-token-0123456789")], vec![("Authorization", token)]] {
        let r = get(&h);
        assert_eq!(r.status, 401, "{h:?}: {}", r.text);
        assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        assert!(!r.text.contains("tokend_"), "no metric leaks");
    }
    let auth = format!("Bearer {token}");
    let r = get(&[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("tokend_http_requests_total"));
    let open = b.start();
    assert_eq!(open.raw("GET", "/metrics", &[], b"").status, 200, "unset: open as before");
}

// ---------------------------------------------------------------- 13. request timeouts

/// Sends `bytes` on a fresh connection and reads until the server closes it (a generous
/// safety bound only, not a timing assertion). Answers what the server sent.
fn send_and_wait_for_close(s: &common::Server, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    c.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let r = c.read_to_end(&mut out);
    assert!(r.is_ok(), "the server closed the connection: {r:?} after {:?}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

/// Item 13: a request whose body stops arriving is answered and its connection closed
/// (TOKEND_REQUEST_TIMEOUT_SECONDS), as is a request head that never completes.
fn stalled_requests_are_answered_and_closed(b: &Backend) {
    let s = b.start_with(|c| c.request_timeout_seconds = 1);
    let head = "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 100\r\n\r\ngrant_type=";
    let answer = send_and_wait_for_close(&s, head.as_bytes());
    let status: u16 = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!(status == 400 || status == 408, "a stalled body: {answer}");
    let answer = send_and_wait_for_close(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "a stalled head: {answer}");
    // The server still serves.
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
}

// ---------------------------------------------------------------- 10. webhook fairness

/// A receiver on 127.0.0.1 answering 200 to everything; counts what it got.
fn counting_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hook", l.local_addr().unwrap().port());
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, n)
}

/// Item 10: one org's backlog (many webhooks, a burst of events, test events up to their
/// limit) does not hold back another org's delivery: each pass takes at most
/// `PER_ORG_IN_FLIGHT` rows of an org, counting those other instances hold, so the other
/// org's event goes out in the first pass; test events are limited per org.
fn one_orgs_backlog_does_not_hold_back_another_org(b: &Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    let s = b.start();
    let owner = s.owner_login();
    let (busy_url, busy_got) = counting_receiver();
    let mut hooks = Vec::new();
    for _ in 0..10 {
        let r = s.post("/api/v1/webhooks", &owner, json!({"url": busy_url, "events": ["token.created"]}));
        assert_eq!(r.status, 201, "{}", r.text);
        hooks.push(r.body["id"].as_str().unwrap().to_string());
    }
    for i in 0..TEST_EVENTS_PER_MINUTE as usize {
        let r = s.post(&format!("/api/v1/webhooks/{}/test", hooks[i % hooks.len()]), &owner, json!({}));
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let r = s.post(&format!("/api/v1/webhooks/{}/test", hooks[0]), &owner, json!({}));
    assert_eq!(r.status, 429, "test events are limited per org: {}", r.text);
    s.pat(&owner, json!({"name": "burst", "ttl_days": 1, "roles": ["org:member"]}));
    let busy_rows = TEST_EVENTS_PER_MINUTE as i64 + hooks.len() as i64;
    assert_eq!(s.count("outbox"), busy_rows);

    // Another instance holds two of the busy org's rows (as a tarpit would).
    let now = s.clock.now();
    {
        let mut conn = s.state.db.write().unwrap();
        let held =
            tokend::store::webhooks::claim(&mut conn, now, now + 300, "elsewhere", 32, PER_ORG_IN_FLIGHT).unwrap();
        assert_eq!(held.len() as i64, PER_ORG_IN_FLIGHT, "one org's share of a pass");
    }
    // Another org, its event queued after all of that.
    {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::org::orgs::create(
            &mut conn,
            "calm",
            "calm@example.test",
            Some("calm-password-123".into()),
            s.clock.now(),
        )
        .unwrap();
    }
    let r = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "calm@example.test", "password": "calm-password-123", "org": "calm"})),
    );
    let calm = r.body["access_token"].as_str().unwrap().to_string();
    let (calm_url, calm_got) = counting_receiver();
    let r = s.post("/api/v1/webhooks", &calm, json!({"url": calm_url, "events": ["token.created"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.post(&format!("/api/v1/webhooks/{}/test", r.body["id"].as_str().unwrap()), &calm, json!({}));
    assert_eq!(r.status, 202, "the other org has its own test budget: {}", r.text);

    let pass = s.deliver();
    assert_eq!(calm_got.load(SeqCst), 1, "the calm org's event went out in the first pass: {pass:?}");
    assert_eq!(busy_got.load(SeqCst), 0, "the busy org is at its in-flight cap");
    // Once the other instance's lease ends, the backlog drains, a few rows a pass.
    s.clock.advance(301);
    let p = s.deliver();
    assert!(p.claimed as i64 <= PER_ORG_IN_FLIGHT, "{p:?}");
    s.deliver_all();
    assert_eq!(busy_got.load(SeqCst) as i64, busy_rows);
}

backend_tests!(
    login_throttle_never_refuses_the_right_password,
    concurrent_valid_logins_are_never_throttled,
    login_hashes_once_whatever_accounts_share_the_email,
    a_full_hashing_budget_refuses_strangers_not_known_good_logins,
    access_token_revocations_are_bounded_per_principal,
    refused_exchange_audit_is_bounded_per_credential,
    revoked_jti_rows_expire_with_their_token,
    role_catalogue_is_capped,
    people_list_does_not_grow_with_the_catalogue,
    token_table_search_terms_are_capped,
    discovery_lists_only_what_is_implemented,
    metrics_can_require_a_bearer_token,
    stalled_requests_are_answered_and_closed,
    one_orgs_backlog_does_not_hold_back_another_org,
);
