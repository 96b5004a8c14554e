//! Issue #18, items 6–14: throttles that never refuse the right password, bounded
//! amplification, capped catalogues and inputs, refused insecure configurations, and the
//! small hardening items. Real HTTP through the harness; both backends where storage is
//! involved.
use crate::common;

use common::{Backend, Resp};
use serde_json::json;
use tokend::service::users::{LOGIN_FAILURES_PER_IP, LOGIN_FREE_FAILURES};

/// A server that believes X-Forwarded-For from the test client, so tests speak from many
/// addresses.
fn behind_proxy(b: &Backend) -> common::Server {
    b.start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()])
}

fn login_from(s: &common::Server, email: &str, password: &str, addr: &str) -> Resp {
    let body = json!({"email": email, "password": password}).to_string();
    s.raw("POST", "/api/v1/login", &[("Content-Type", "application/json"), ("X-Forwarded-For", addr)], body.as_bytes())
}

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
            tokend::service::orgs::create(&mut conn, name, &email, Some("other-password-123".into()), common::now())
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

backend_tests!(
    login_throttle_never_refuses_the_right_password,
    concurrent_valid_logins_are_never_throttled,
    login_hashes_once_whatever_accounts_share_the_email,
);
