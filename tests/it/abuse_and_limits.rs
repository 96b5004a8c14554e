//! Issue #11, reliability: bounded password hashing, throttles that cannot lock anyone
//! out, bounded metric cardinality, refused-call audit without amplification, robust
//! X-Forwarded-For, idempotent concurrent start-up, and 503 while the database is away.
//! Real HTTP through the harness; both backends where the database matters.
use crate::common;
use crate::common::helpers::{behind_proxy, cc, form_bearer, login_from, retry_after, unknown_pat};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use common::{Backend, Resp};
use serde_json::json;
use tokend::service::authz::throttle::IDENTITY_FAILURES_PER_MINUTE;
use tokend::service::principals::users::{LOGIN_BACKOFF_SECONDS, LOGIN_FREE_FAILURES};

fn statuses(v: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in v {
        *m.entry(*s).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------- raw HTTP

/// Reads one HTTP/1.1 response (status and body) from a keep-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<u8>) {
    let mut status_line = String::new();
    r.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let (mut len, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().unwrap();
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body).unwrap();
    }
    (status, body)
}

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn token(&mut self, min: usize, max: usize) -> String {
        let n = min + (self.next() as usize) % (max - min + 1);
        (0..n).map(|_| (b'A' + (self.next() % 26) as u8) as char).collect()
    }
}

fn metrics_text(s: &common::Server) -> String {
    ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap()
}

// ---------------------------------------------------------------- 4. metric cardinality

/// 10,000 requests with invented methods add no series: the method label is one of the
/// standard methods or "other".
#[test]
fn random_methods_do_not_grow_metrics() {
    let s = Backend::Sqlite.start();
    let addr = s.base.trim_start_matches("http://").to_string();
    let send = |methods: Vec<String>| {
        let stream = TcpStream::connect(&addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        for m in methods {
            // One write per request (several small ones meet Nagle and delayed ACKs).
            w.write_all(format!("{m} /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
            let (status, _) = read_response(&mut r);
            assert!((400..500).contains(&status) || status == 200, "{m}: {status}");
        }
    };
    // Warm-up: the "other" series and /metrics itself exist before the measurement.
    send(vec!["WARMUP".into(), "GET".into()]);
    metrics_text(&s);
    let before = metrics_text(&s);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let batches: Vec<Vec<String>> = (0..4).map(|_| (0..2500).map(|_| rng.token(3, 12)).collect()).collect();
    std::thread::scope(|sc| {
        for b in batches {
            sc.spawn(|| send(b));
        }
    });
    let after = metrics_text(&s);
    assert!(after.len() < before.len() + 1024, "metrics grew from {} to {} bytes", before.len(), after.len());
    assert!(after.contains("method=\"other\""), "invented methods are counted as other");
    assert!(!after.contains("WARMUP"), "no raw method name in the metrics");
}

// ---------------------------------------------------------------- refusal pacing

fn paced(s: &common::Server, action: &str) -> u64 {
    let needle = format!("tokend_refusals_paced_total{{action=\"{action}\"}} ");
    metrics_text(s).lines().find_map(|l| l.strip_prefix(needle.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

/// Refusals beyond TOKEND_REFUSALS_PER_SECOND wait their turn and, past a second of queue,
/// are answered at once with the connection closed; answers that are not refusals are never
/// paced, and every request still gets its own right answer.
fn refusals_are_paced_and_valid_requests_are_not(b: &Backend) {
    let s = b.start_with(|c| c.refusals_per_second = 20);
    let pat = s.owner_pat.clone();
    let bearer = s.exchange_api(&pat);
    // 60 concurrent refusals (unknown token: 401) next to 30 valid calls.
    let (refused, served): (Vec<Resp>, Vec<Resp>) = std::thread::scope(|sc| {
        let bad: Vec<_> = (0..60)
            .map(|_| {
                sc.spawn(|| {
                    s.raw(
                        "GET",
                        "/api/v1/me",
                        &[("Authorization", "Bearer not-a-token"), ("Connection", "keep-alive")],
                        b"",
                    )
                })
            })
            .collect();
        let good: Vec<_> = (0..30)
            .map(|_| sc.spawn(|| s.raw("GET", "/api/v1/me", &[("Authorization", &format!("Bearer {bearer}"))], b"")))
            .collect();
        (bad.into_iter().map(|h| h.join().unwrap()).collect(), good.into_iter().map(|h| h.join().unwrap()).collect())
    });
    assert!(
        refused.iter().all(|r| r.status == 401),
        "{:?}",
        statuses(&refused.iter().map(|r| r.status).collect::<Vec<_>>())
    );
    assert!(served.iter().all(|r| r.status == 200), "valid calls are never refused");
    assert!(served.iter().all(|r| r.header("connection").is_none_or(|v| !v.eq_ignore_ascii_case("close"))));
    let closed_seen =
        refused.iter().filter(|r| r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))).count()
            as u64;
    let (delayed, closed) = (paced(&s, "delayed"), paced(&s, "closed"));
    // At 20/s with at most 1 s of queue, 60 simultaneous refusals cannot all be answered at
    // once nor all wait: some waited, some were closed, and the counters saw only refusals.
    assert!(delayed >= 1, "delayed {delayed}");
    assert!(closed >= 1 && closed == closed_seen, "closed: counter {closed}, seen {closed_seen}");
    assert!(delayed + closed <= 60, "only refusals are paced: {delayed} + {closed}");
    // The pacing ends with the flood: a burst of refusals is answered at once again later.
    // The pacer runs on real time (sub-second slots), not the test clock: let the queue drain.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = paced(&s, "delayed") + paced(&s, "closed");
    for _ in 0..5 {
        assert_eq!(s.raw("GET", "/api/v1/me", &[("Authorization", "Bearer not-a-token")], b"").status, 401);
    }
    assert_eq!(paced(&s, "delayed") + paced(&s, "closed"), before, "an idle pacer answers a few refusals at once");
}

/// With pacing off (0), nothing is ever paced.
#[test]
fn pacing_off_paces_nothing() {
    let s = Backend::Sqlite.start_with(|c| c.refusals_per_second = 0);
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| {
                for _ in 0..25 {
                    assert_eq!(s.raw("GET", "/api/v1/nowhere", &[], b"").status, 404);
                }
            });
        }
    });
    assert_eq!(paced(&s, "delayed") + paced(&s, "closed"), 0);
}

// ---------------------------------------------------------------- 1. bounded hashing

/// Concurrent wrong passwords for one account from one address: each attempt holds its
/// throttle place before hashing, so exactly the free failures are checked and the rest
/// answer 429 at once, however the requests interleave.
fn concurrent_bad_logins_reserve_before_hashing(b: &Backend) {
    let s = behind_proxy(b);
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..16)
            .map(|_| sc.spawn(|| login_from(&s, &s.owner_email, "wrong-password-xyz", "203.0.113.10").status))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let m = statuses(&codes);
    assert_eq!(m.get(&401).copied(), Some(LOGIN_FREE_FAILURES as usize), "{m:?}");
    assert_eq!(m.get(&429).copied(), Some(16 - LOGIN_FREE_FAILURES as usize), "{m:?}");
    assert_eq!(login_from(&s, &s.owner_email, &s.owner_password, "198.51.100.20").status, 200);
}

/// Many logins at once (distinct accounts and addresses, so no throttle applies): never
/// more than `bound` hashes run together nor more than `queue` wait; everyone else is told
/// 503 with Retry-After at once, and nothing answers 500.
fn hashing_is_bounded(b: &Backend) {
    let s = behind_proxy(b);
    let n = 48;
    let rs: Vec<Resp> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let s = &s;
                sc.spawn(move || {
                    login_from(s, &format!("nobody{i}@example.test"), "wrong-password-xyz", &format!("192.0.2.{i}"))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let m = statuses(&rs.iter().map(|r| r.status).collect::<Vec<_>>());
    eprintln!("{n} concurrent logins: {m:?}, {:?}", s.state.hashing.stats());
    assert_eq!(m.keys().filter(|k| **k != 401 && **k != 503).count(), 0, "only 401 and 503: {m:?}");
    assert!(m.get(&401).copied().unwrap_or(0) >= 1, "some were checked: {m:?}");
    for r in rs.iter().filter(|r| r.status == 503) {
        assert!(retry_after(r) >= 1, "{}", r.text);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")));
    }
    let st = s.state.hashing.stats();
    assert!(st.peak_running <= st.bound, "{st:?}");
    assert!(st.peak_waiting <= st.queue, "{st:?}");
    assert_eq!(st.queue, 4 * st.bound);
    // Refused for load, not for failing: the addresses are not charged.
    let r = login_from(&s, &s.owner_email, &s.owner_password, "192.0.2.1");
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Setting a password hashes only for a caller allowed to set it, and before any
/// database connection is taken; a member's attempts cost no hashing at all.
fn only_admins_make_the_server_hash(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (member_id, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let (_, pat) = s.pat(&member, json!({"name": "p", "ttl_days": 1, "roles": ["org:member"]}));
    let derived = s.exchange_api(&pat);
    let before = s.state.hashing.stats().turns;
    for i in 0..20 {
        // No one sets another person's password; an unknown reset code is refused before
        // any hashing; a non-interactive token cannot change a password.
        let body = json!({"email": format!("u{i}@example.test"), "password": "user-password-123"});
        assert_eq!(s.post("/api/v1/users", &owner, body).status, 422);
        let r = s.patch(&format!("/api/v1/users/{member_id}"), &owner, json!({"password": "new-password-123"}));
        assert_eq!(r.status, 422);
        let r = s.call(
            "POST",
            "/api/v1/password-reset",
            None,
            Some(&json!({"code": format!("bogus-{i}"), "new_password": "new-password-123"})),
        );
        assert_eq!(r.status, 400);
        let r = s.put(
            "/api/v1/me/password",
            &derived,
            json!({"current_password": "user-password-123", "new_password": "new-password-123"}),
        );
        assert_eq!(r.status, 403);
    }
    assert_eq!(s.state.hashing.stats().turns, before, "refused callers cost no hashing");
    let r = s.post("/api/v1/users", &owner, json!({"email": "ok@example.test"}));
    assert_eq!(r.status, 201, "{}", r.text);
    s.set_password(&owner, r.body["id"].as_str().unwrap(), "user-password-123");
    assert_eq!(s.state.hashing.stats().turns, before + 1, "a redeemed reset code hashes once");
    assert_eq!(login_from(&s, "ok@example.test", "user-password-123", "127.0.0.1").status, 200);
}

// ---------------------------------------------------------------- 2. login throttle

/// Wrong passwords from one address slow that address down for that account (guesses
/// wait, the wait grows instead of locking); the right password is never refused, from
/// there or anywhere else.
fn login_failures_do_not_lock_out_other_addresses(b: &Backend) {
    let s = behind_proxy(b);
    let (attacker, owner) = ("203.0.113.9", "198.51.100.20");
    for i in 0..LOGIN_FREE_FAILURES {
        let r = login_from(&s, &s.owner_email, "wrong-password-xyz", attacker);
        assert_eq!(r.status, 401, "failure {i}: {}", r.text);
    }
    let r = login_from(&s, &s.owner_email, "wrong-password-xyz", attacker);
    assert_eq!(r.status, 429, "a further guess from that address waits: {}", r.text);
    assert_eq!(retry_after(&r), LOGIN_BACKOFF_SECONDS);
    assert!(r.body.get("access_token").is_none());
    // The owner, elsewhere, is not affected, in any spelling of the email.
    let r = login_from(&s, &s.owner_email, &s.owner_password, owner);
    assert_eq!(r.status, 200, "the right password from another address: {}", r.text);
    let r = login_from(&s, &format!(" {} ", s.owner_email.to_uppercase()), &s.owner_password, owner);
    assert_eq!(r.status, 200, "{}", r.text);
    // A wrong password from the owner's address counts there, not with the attacker's.
    assert_eq!(login_from(&s, &s.owner_email, "wrong-password-xyz", owner).status, 401);
    assert_eq!(login_from(&s, &s.owner_email, &s.owner_password, owner).status, 200);
    // The attacker's wait grows with each further failure instead of becoming a lockout.
    s.clock.advance(2 * LOGIN_BACKOFF_SECONDS);
    assert_eq!(login_from(&s, &s.owner_email, "wrong-password-xyz", attacker).status, 401);
    let r = login_from(&s, &s.owner_email, "wrong-password-xyz", attacker);
    assert_eq!(r.status, 429);
    assert!(retry_after(&r) > 2 * LOGIN_BACKOFF_SECONDS, "the wait grows: {}", retry_after(&r));
    // The right password from that very address is accepted while its guesses wait.
    let r = login_from(&s, &s.owner_email, &s.owner_password, attacker);
    assert_eq!(r.status, 200, "the right password is never throttled: {}", r.text);
}

// ---------------------------------------------------------------- 3. credential failures

#[track_caller]
fn assert_slow_down(r: &Resp, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", r.text);
    assert_eq!(r.body["error"], "slow_down", "{what}: {}", r.text);
    assert!(retry_after(r) >= 1, "{what}");
}

/// 125 bad token requests from one address put it over its limit (120 a minute): its
/// further failures answer 429, but valid credentials from that same address are still
/// answered 200 on every endpoint.
fn valid_credentials_pass_an_address_over_its_failure_limit(b: &Backend) {
    let s = b.start_with(|c| c.token_failures_per_minute = 120);
    let at = s.owner_login();
    let (_, client_id, secret) = s.app(&at, json!({"name": "svc", "introspect": true}));
    let (_, pat) = s.pat(&at, json!({"name": "p", "ttl_days": 1, "roles": ["org:member"]}));
    let mut codes = Vec::new();
    for i in 0..125 {
        // Distinct tokens: the address, not one guessed identity, goes over its limit.
        let r = s.exchange(&format!("tkd_pat_bogus{i}"));
        codes.push(r.status);
    }
    let m = statuses(&codes);
    assert_eq!(m.get(&400).copied(), Some(120), "{m:?}");
    assert_eq!(m.get(&429).copied(), Some(5), "{m:?}");
    assert_slow_down(&s.exchange("tkd_pat_bogus-again"), "another bad token");

    let r = s.exchange(&pat);
    assert_eq!(r.status, 200, "a valid PAT from the throttled address: {}", r.text);
    let r = cc(&s, &client_id, &secret);
    assert_eq!(r.status, 200, "valid app credentials from the throttled address: {}", r.text);
    assert_slow_down(&cc(&s, &client_id, "tkd_cs_wrong"), "a wrong client secret");

    // Introspection: a valid caller is answered, a failing one slowed down.
    let subject = s.exchange_ok(&pat);
    let r = s.form("/oauth/introspect", &[("token", &subject)], Some((&client_id, &secret)));
    assert_eq!((r.status, r.body["active"].clone()), (200, json!(true)), "{}", r.text);
    let r = form_bearer(&s, "/oauth/introspect", &[("token", &subject)], &at);
    assert_eq!((r.status, r.body["active"].clone()), (200, json!(true)), "{}", r.text);
    assert_slow_down(
        &s.form("/oauth/introspect", &[("token", &subject)], Some((&client_id, "tkd_cs_wrong"))),
        "introspection with a wrong secret",
    );
    assert_slow_down(&form_bearer(&s, "/oauth/introspect", &[("token", &subject)], "x.y.z"), "a bad bearer");

    // Revocation: the holder of a real token revokes it; unknown tokens are slowed down.
    let (_, doomed) = s.pat(&at, json!({"name": "doomed", "ttl_days": 1, "roles": ["org:member"]}));
    let r = s.form("/oauth/revoke", &[("token", &doomed)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.exchange(&doomed).status, 429, "revoked (and the address is over its limit)");
    assert_slow_down(&s.form("/oauth/revoke", &[("token", &unknown_pat())], None), "revoking an unknown token");

    // /api/v1: a valid bearer is served, invalid ones get 429 problem+json.
    let r = s.get("/api/v1/me", &at);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.get("/api/v1/me", "not-a-token");
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(retry_after(&r) >= 1);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")));

    // A minute later the address is served normally again.
    s.clock.advance(61);
    assert_eq!(s.exchange("tkd_pat_bogus-later").status, 400);
    assert_eq!(s.get("/api/v1/me", "not-a-token").status, 401);
}

/// One identity failing again and again from one address is slowed down on its own,
/// long before the address is; other identities from there are not, and neither is the
/// right secret for that identity. Refused exchanges of a known token stop adding audit
/// rows once they are throttled.
fn one_guessed_identity_is_throttled(b: &Backend) {
    let s = b.start_with(|c| c.token_failures_per_minute = 120);
    let at = s.owner_login();
    let (_, client_id, secret) = s.app(&at, json!({"name": "target"}));
    let (_, other_id, _) = s.app(&at, json!({"name": "other"}));
    let n = IDENTITY_FAILURES_PER_MINUTE as usize;
    for i in 0..n {
        let r = cc(&s, &client_id, "tkd_cs_guess");
        assert_eq!(r.status, 401, "guess {i}: {}", r.text);
    }
    assert_slow_down(&cc(&s, &client_id, "tkd_cs_guess"), "the guessed client");
    assert_eq!(cc(&s, &other_id, "tkd_cs_guess").status, 401, "another client is not throttled");
    assert_eq!(cc(&s, &client_id, &secret).status, 200, "the right secret still works");

    // A revoked token retried in a loop.
    let (id, pat) = s.pat(&at, json!({"name": "retry-loop", "ttl_days": 1, "roles": ["org:member"]}));
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{id}"), &at).status, 204);
    let audited = || {
        let r = s.get(&format!("/api/v1/audit?action=token.exchange&object={id}&page_size=200"), &at);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["total_count"].as_i64().unwrap()
    };
    for _ in 0..n {
        assert_eq!(s.exchange(&pat).status, 400);
    }
    // Issue #18 item 8: a few refusal rows a minute per credential (the rest summarised).
    let rows = tokend::service::events::audit::REFUSED_ROWS_PER_WINDOW as i64;
    assert_eq!(audited(), rows, "the first refusals are audited");
    for _ in 0..20 {
        assert_slow_down(&s.exchange(&pat), "the revoked token again");
    }
    assert_eq!(audited(), rows, "throttled refusals add no audit rows");
    assert_eq!(s.exchange(&s.owner_pat).status, 200, "others from that address are served");
}

// ---------------------------------------------------------------- 5. refused-call audit

/// Bytes held in the text columns of the audit log.
fn audit_bytes(s: &common::Server) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = s.state.db.read().unwrap();
    diesel::sql_query(
        "SELECT CAST(COALESCE(SUM(LENGTH(id) + LENGTH(COALESCE(org_id, '')) + LENGTH(actor_kind) \
         + LENGTH(COALESCE(actor_id, '')) + LENGTH(action) + LENGTH(COALESCE(object_kind, '')) \
         + LENGTH(COALESCE(object_id, '')) + LENGTH(COALESCE(ip, '')) + LENGTH(outcome) \
         + LENGTH(COALESCE(detail, ''))), 0) AS BIGINT) AS n FROM audit_events",
    )
    .get_result::<N>(&mut *conn)
    .unwrap()
    .n
}

/// 600 refused calls with 7,000-character ids from one member: the first few are audited
/// (ids cut to 64 characters), the rest become one summary row; the log grows < 64 KiB.
fn refused_call_flood_is_summarised(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (member_id, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let before = audit_bytes(&s);
    let long_id = "x".repeat(7000);
    for i in 0..600 {
        let r = s.delete(&format!("/api/v1/users/{long_id}{i}"), &member);
        assert_eq!(r.status, 403, "call {i}: {}", r.text);
    }
    let grown = audit_bytes(&s) - before;
    assert!(grown < 64 * 1024, "the audit log grew by {grown} bytes");

    let list = |q: &str| {
        let r = s.get(&format!("/api/v1/audit?actor={member_id}{q}&page_size=200"), &owner);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    let denied = list("&outcome=denied");
    assert_eq!(denied["total_count"], json!(5), "the first refused calls are audited: {denied}");
    for ev in denied["items"].as_array().unwrap() {
        let object = ev["object_id"].as_str().unwrap();
        assert_eq!(object.chars().count(), 65, "{object}");
        assert!(object.starts_with("xxxx") && object.ends_with('…'), "{object}");
        assert_eq!(ev["action"], "DELETE /api/v1/users/{id}");
    }
    assert_eq!(list("&action=audit.suppressed")["total_count"], json!(0), "the window is still open");

    // When the window has closed, the next refused call brings the summary (or the
    // maintenance pass writes it first; either way exactly once).
    s.clock.advance(61);
    assert_eq!(s.delete("/api/v1/users/after", &member).status, 403);
    let mut summary = json!(null);
    for _ in 0..100 {
        summary = list("&action=audit.suppressed");
        if summary["total_count"] == json!(1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(summary["total_count"], json!(1), "{summary}");
    let detail = &summary["items"][0]["detail"];
    assert_eq!(detail["suppressed"], json!(595), "{detail}");
    assert_eq!(detail["message"], "refused calls suppressed: 595");
    assert_eq!(list("&outcome=denied")["total_count"], json!(6), "the new window audits again");
}

// ---------------------------------------------------------------- 7. concurrent start-up

/// Drops a test database however the test ends.
struct DropDatabase<'a>(&'a str, &'a str);

impl Drop for DropDatabase<'_> {
    fn drop(&mut self) {
        common::drop_pg_database(self.0, self.1);
    }
}

/// Counts rows with a fresh connection of the test's own.
fn pg_count(url: &str, table: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<N>(&mut c).unwrap().n
}

/// Four instances starting at once on one empty PostgreSQL database and one key
/// directory all come up, with one org `default`, one owner and one signing key; only one
/// of them reports first-start credentials.
#[test]
#[cfg_attr(tokend_skip_pg, ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
fn concurrent_start_on_an_empty_postgres_database() {
    use std::sync::Arc;
    use tokend::clock::{Clock, FixedClock};
    let Backend::Postgres(base) = Backend::postgres() else { unreachable!("postgres() answers PostgreSQL") };
    let url = common::fresh_pg_database(&base);
    let _drop = DropDatabase(&base, &url);
    let dir = tempfile::tempdir().unwrap();
    let start = std::sync::Barrier::new(4);
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    let mut cfg = tokend::config::Config::for_test(&url, &dir.path().join("keys"));
                    cfg.bootstrap_password = Some("owner-password-123".into());
                    cfg.key_publish_delay = 0;
                    start.wait();
                    tokend::boot(cfg, Arc::new(FixedClock::new(common::now())) as Arc<dyn Clock>)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut states = Vec::new();
    let mut created = 0;
    for r in results {
        let (state, c) = r.unwrap_or_else(|e| panic!("an instance failed to start: {e}"));
        created += usize::from(c.is_some());
        states.push(state);
    }
    assert_eq!(created, 1, "exactly one instance reports first-start credentials");
    assert_eq!(pg_count(&url, "orgs"), 1);
    assert_eq!(pg_count(&url, "orgs WHERE name = 'default'"), 1);
    assert_eq!(pg_count(&url, "users"), 1);
    assert_eq!(pg_count(&url, "api_tokens"), 1);
    let kids: Vec<Vec<String>> =
        states.iter().map(|s| s.keys.set().keys.iter().map(|k| k.meta.kid.clone()).collect()).collect();
    assert_eq!(kids[0].len(), 1, "one signing key: {kids:?}");
    assert!(kids.iter().all(|k| *k == kids[0]), "every instance uses it: {kids:?}");
}

// ---------------------------------------------------------------- 8. database outage

/// Makes one test database unreachable (new connections refused, existing ones ended)
/// without touching the shared PostgreSQL server, or reachable again.
fn set_reachable(base: &str, database_url: &str, reachable: bool) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let name = database_url.rsplit_once('/').unwrap().1.split('?').next().unwrap();
    let mut admin = diesel::PgConnection::establish(base).unwrap();
    admin.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}")).unwrap();
    if !reachable {
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .unwrap();
    }
}

#[track_caller]
fn assert_unavailable(r: &Resp, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.text);
    assert!(retry_after(r) >= 1, "{what}: Retry-After");
}

/// With its database unreachable the server answers 503 with Retry-After (never 200,
/// never 500) on the token endpoint, the API and readiness, and serves again once the
/// database is back.
#[test]
#[cfg_attr(tokend_skip_pg, ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
fn database_outage_answers_503_then_recovers() {
    let b = Backend::postgres();
    let Backend::Postgres(base) = &b else { unreachable!("postgres() answers PostgreSQL") };
    let s = b.start();
    let at = s.owner_login();
    let (_, client_id, secret) = s.app(&at, json!({"name": "svc"}));
    assert_eq!(s.exchange(&s.owner_pat).status, 200);

    set_reachable(base, &s.database_url, false);
    // The credential cache answers without the database until its listener's next check
    // (every 100 ms) finds the connection gone; from then on it serves nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while s.state.credentials.enabled() {
        assert!(std::time::Instant::now() < deadline, "the cache still serves 3 s into the outage");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for round in 0..3 {
        let r = s.exchange(&s.owner_pat);
        assert_unavailable(&r, &format!("token exchange, round {round}"));
        assert_eq!(r.body["error"], "temporarily_unavailable", "{}", r.text);
        let r = cc(&s, &client_id, &secret);
        assert_unavailable(&r, "client_credentials");
        assert_eq!(r.body["error"], "temporarily_unavailable", "{}", r.text);
        let r = s.get("/api/v1/me", &at);
        assert_unavailable(&r, "GET /api/v1/me");
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")));
        assert_unavailable(&login_from(&s, &s.owner_email, &s.owner_password, "127.0.0.1"), "login");
        let r = s.form("/oauth/introspect", &[("token", &at)], Some((&client_id, &secret)));
        assert_unavailable(&r, "introspection");
        assert_unavailable(&s.form("/oauth/revoke", &[("token", &s.owner_pat)], None), "revocation");
        assert_eq!(s.call("GET", "/readyz", None, None).status, 503);
    }
    // What the log says: the database is unavailable, with the server's reason.
    let e = s.state.db.read().err().expect("no connection while the database is away");
    assert!(e.is_unavailable(), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("not currently accepting connections"), "the server's reason: {msg}");
    assert!(!msg.contains("invalid connection url"), "{msg}");
    // Refused for the database, not for a wrong password: these attempts do not count
    // towards the login throttle (a sixth counted failure would answer 429).
    for i in 0..(LOGIN_FREE_FAILURES + 1) {
        assert_unavailable(&login_from(&s, &s.owner_email, "wrong-password-xyz", "127.0.0.1"), &format!("login {i}"));
    }

    set_reachable(base, &s.database_url, true);
    let mut ready = 0;
    for _ in 0..100 {
        ready = s.call("GET", "/readyz", None, None).status;
        if ready == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ready, 200, "/readyz recovers");
    assert_eq!(s.exchange(&s.owner_pat).status, 200, "the token endpoint recovers");
    assert_eq!(cc(&s, &client_id, &secret).status, 200);
    let r = s.get("/api/v1/me", &at);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(login_from(&s, &s.owner_email, &s.owner_password, "127.0.0.1").status, 200);
}

backend_tests!(
    refusals_are_paced_and_valid_requests_are_not,
    refused_call_flood_is_summarised,
    valid_credentials_pass_an_address_over_its_failure_limit,
    one_guessed_identity_is_throttled,
    concurrent_bad_logins_reserve_before_hashing,
    hashing_is_bounded,
    only_admins_make_the_server_hash,
    login_failures_do_not_lock_out_other_addresses,
);
