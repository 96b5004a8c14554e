//! Issue 3: personal access tokens and the token exchange at POST /oauth/token, through HTTP.
//! Every scenario runs on SQLite and (when TOKEND_TEST_DATABASE_URL is set) PostgreSQL.
use crate::common;
use crate::common::assert::{
    invalid_field as assert_invalid_field, invalid_grant as assert_invalid_grant, oauth_error as assert_oauth_error,
    redact,
};
use crate::common::helpers::{basic, refresh, ts, unknown_pat};

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Backend, Resp, Server};
use serde_json::{json, Value};
use tokend::clock::Clock;

const FORM: &str = "application/x-www-form-urlencoded";
const GRANT_TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TYPE_RT: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const TYPE_API: &str = "urn:tokend:params:oauth:token-type:api_token";
const TYPE_AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const DAY: i64 = 86_400;

// ---- helpers ----

fn clock_now(s: &Server) -> i64 {
    s.clock.now()
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

fn scope_set(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_str()
        .unwrap_or_else(|| panic!("scope is not a string: {v}"))
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

fn aud_of(c: &Value) -> Vec<String> {
    match &c["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        other => panic!("aud missing or malformed: {other}"),
    }
}

/// RFC 8693 token-exchange grant with extra parameters.
fn token_exchange(s: &Server, token: &str, subject_type: &str, extra: &[(&str, &str)]) -> Resp {
    let mut p = vec![("grant_type", GRANT_TE), ("subject_token", token), ("subject_token_type", subject_type)];
    p.extend_from_slice(extra);
    s.form("/oauth/token", &p, None)
}

fn my_tokens(s: &Server, at: &str) -> Vec<Value> {
    let r = s.get("/api/v1/me/tokens?page_size=200", at);
    assert_eq!(r.status, 200, "list tokens: {}", redact(&r.text));
    r.body["items"].as_array().unwrap().clone()
}

fn my_token(s: &Server, at: &str, id: &str) -> Value {
    let r = s.get(&format!("/api/v1/me/tokens/{id}"), at);
    assert_eq!(r.status, 200, "get token: {}", redact(&r.text));
    r.body
}

fn item<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items.iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("token {id} is not listed"))
}

/// The secret, and any long piece of its random part, is absent from `text`.
#[track_caller]
fn assert_no_secret(text: &str, secret: &str, what: &str) {
    assert!(!text.contains(secret), "{what} contains a secret");
    let body = &secret[secret.rfind('_').unwrap() + 1..];
    for start in (0..body.len().saturating_sub(12)).step_by(6) {
        assert!(!text.contains(&body[start..start + 12]), "{what} contains part of a secret");
    }
}

/// Snapshot minus the audit row; and the audit row count.
fn split_audit(snap: &[(String, String)]) -> (Vec<(String, String)>, i64) {
    let audit = snap
        .iter()
        .find(|(q, _)| q == common::AUDIT_COUNT)
        .map(|(_, n)| n.parse::<i64>().unwrap())
        .expect("audit_events in the snapshot");
    (snap.iter().filter(|(q, _)| q != common::AUDIT_COUNT).cloned().collect(), audit)
}

/// A refused /api/v1 call changed no row (it may add one audit event: refused mutating
/// calls are audited).
#[track_caller]
fn assert_refused_unchanged(s: &Server, before: &[(String, String)], what: &str) {
    let (rows, audit) = split_audit(before);
    let (rows2, audit2) = split_audit(&s.snapshot());
    assert_eq!(rows2, rows, "{what}: a refused call changed the database");
    assert!((audit..=audit + 1).contains(&audit2), "{what}: {} audit events for one refused call", audit2 - audit);
}

// ---- creation ----

fn create_shows_secret_once_and_record(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let now = clock_now(&s);
    let r = s.post(
        "/api/v1/me/tokens",
        &at,
        json!({"roles": ["org:owner"], "name": "ci deploy", "description": "for CI", "ttl_days": 7}),
    );
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    let secret = r.body["token"].as_str().expect("the secret is in the 201 body").to_string();
    assert!(secret.starts_with("tkd_pat_"), "personal token prefix");
    assert!(
        secret.len() >= "tkd_pat_".len() + 43 + 6,
        "at least 32 random bytes in base62 plus a 6-character checksum"
    );
    for f in common::RECORD_FIELDS {
        assert!(r.body.get(f).is_some(), "created record lacks {f}: {}", redact(&r.body.to_string()));
    }
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(!id.is_empty());
    assert_eq!(r.body["name"], "ci deploy");
    assert_eq!(r.body["description"], "for CI");
    assert_eq!(r.body["owner_kind"], "user");
    assert_eq!(r.body["owner_id"], s.owner_id.as_str());
    assert_eq!(strings(&r.body["roles"]), vec!["org:owner"], "roles default to the caller's roles");
    assert_eq!(ts(&r.body["created_at"]), now);
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 7 * DAY);
    assert_eq!(r.body["status"], "active");
    for f in ["last_used_at", "last_used_ip", "idle_ttl_days", "revoked_at", "revoked_by"] {
        assert!(r.body[f].is_null(), "{f} should be null on a new token: {}", redact(&r.body.to_string()));
    }
    let hint = r.body["hint"].as_str().unwrap();
    let shown = hint.trim_end_matches('…').trim_end_matches("...");
    assert!(
        shown.starts_with("tkd_pat_") && shown.len() > "tkd_pat_".len(),
        "hint shows the prefix and a few characters: {hint}"
    );
    assert!(secret.starts_with(shown), "the hint is the start of the secret");
    assert!(shown.len() <= "tkd_pat_".len() + 8, "the hint shows only a few characters");

    // Never again: list, one, and an unrelated second token's creation.
    let list = s.get("/api/v1/me/tokens", &at);
    assert_eq!(list.status, 200);
    assert_no_secret(&list.text, &secret, "GET /api/v1/me/tokens");
    assert_no_secret(&list.text, &s.owner_pat, "GET /api/v1/me/tokens");
    let listed = item(list.body["items"].as_array().unwrap(), &id).clone();
    assert!(listed.get("token").is_none(), "a listed record has no token field");
    for f in common::RECORD_FIELDS {
        assert_eq!(listed[f], r.body[f], "listed {f} differs from the created record");
    }
    assert_eq!(list.body["total_count"], 2, "the bootstrap token and the new one");
    assert_eq!(list.body["page"], 1);
    assert_eq!(list.body["page_size"], 50);
    let one = s.get(&format!("/api/v1/me/tokens/{id}"), &at);
    assert_eq!(one.status, 200);
    assert_no_secret(&one.text, &secret, "GET /api/v1/me/tokens/{id}");
    assert!(one.body.get("token").is_none());
    assert_eq!(one.body["hint"], hint);
    let other = s.post("/api/v1/me/tokens", &at, json!({"roles": ["org:owner"], "name": "second", "ttl_days": 1}));
    assert_eq!(other.status, 201);
    assert_no_secret(&other.text, &secret, "another token's creation");

    // The secret works.
    let access = s.exchange_ok(&secret);
    assert_eq!(s.verify_resource(&access)["client_id"], id.as_str());
}

fn create_validation(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "", "ttl_days": 1}), "name"),
        (json!({"name": "   ", "ttl_days": 1}), "name"),
        (json!({"name": "x".repeat(101), "ttl_days": 1}), "name"),
        (json!({"name": "ok", "description": "d".repeat(1001), "ttl_days": 1}), "description"),
        (json!({"name": "ok", "ttl_days": 0}), "ttl_days"),
        (json!({"name": "ok", "ttl_days": -1}), "ttl_days"),
        (json!({"name": "ok", "ttl_days": 31}), "ttl_days"),
        (json!({"name": "ok", "ttl_days": 100000}), "ttl_days"),
        (json!({"name": "ok", "ttl_days": 1, "roles": []}), "roles"),
        // Least privilege: nothing is granted implicitly.
        (json!({"name": "ok", "ttl_days": 1}), "roles"),
        (json!({"name": "ok", "ttl_days": 1, "roles": ["nope:unknown"]}), "roles"),
    ];
    for (body, field) in cases {
        let before = s.snapshot();
        let r = s.post("/api/v1/me/tokens", &at, body.clone());
        assert_invalid_field(&r, field, "");
        assert_refused_unchanged(&s, &before, &format!("create {body}"));
    }
    // Unknown fields are refused (4xx), nothing stored.
    for body in [
        json!({"name": "ok", "ttl_days": 1, "scopes": ["x"]}),
        json!({"name": "ok", "ttl_days": 1, "token": "tkd_pat_x"}),
    ] {
        let before = s.snapshot();
        let r = s.post("/api/v1/me/tokens", &at, body.clone());
        assert_eq!(r.status, 422, "unknown field accepted: {body} → {}", redact(&r.text));
        assert_refused_unchanged(&s, &before, "refused call");
    }
    // The limits themselves are accepted.
    for body in [
        json!({"name": "x".repeat(100), "ttl_days": 1, "roles": ["org:member"]}),
        json!({"name": "n", "description": "d".repeat(1000), "ttl_days": 30, "roles": ["org:member"]}),
        json!({"name": "n", "description": "", "ttl_days": 1, "roles": ["org:member"]}),
    ] {
        let r = s.post("/api/v1/me/tokens", &at, body.clone());
        assert_eq!(r.status, 201, "{body}: {}", redact(&r.text));
        assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), body["ttl_days"].as_i64().unwrap() * DAY);
    }
}

fn create_ttl_follows_policy(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let r = s.put("/api/v1/policy", &at, json!({"personal_token_max_ttl_days": 10}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert_invalid_field(
        &s.post("/api/v1/me/tokens", &at, json!({"roles": ["org:owner"], "name": "n", "ttl_days": 11})),
        "ttl_days",
        "",
    );
    let r = s.post("/api/v1/me/tokens", &at, json!({"roles": ["org:owner"], "name": "n", "ttl_days": 10}));
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 10 * DAY);
    let r = s.put("/api/v1/policy", &at, json!({"personal_token_max_ttl_days": 90}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let r = s.post("/api/v1/me/tokens", &at, json!({"roles": ["org:owner"], "name": "n", "ttl_days": 90}));
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    assert_invalid_field(
        &s.post("/api/v1/me/tokens", &at, json!({"roles": ["org:owner"], "name": "n", "ttl_days": 91})),
        "ttl_days",
        "",
    );
}

fn roles_default_and_must_be_held(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    s.role(&owner, "alerts:write");
    let (_, dev) = s.user(&owner, "dev@example.com", &["org:developer", "metrics:read"]);

    // No implicit roles: a token without `roles` is refused and nothing is stored.
    let before = s.snapshot();
    let r = s.post("/api/v1/me/tokens", &dev, json!({"name": "default roles", "ttl_days": 3}));
    assert_invalid_field(&r, "roles", "");
    assert_refused_unchanged(&s, &before, "create without roles");
    let r = s.post(
        "/api/v1/me/tokens",
        &dev,
        json!({"name": "all my roles", "ttl_days": 3, "roles": ["org:developer", "metrics:read"]}),
    );
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    assert_eq!(strings(&r.body["roles"]), sorted(&["org:developer", "metrics:read"]));
    let c = s.verify_resource(&s.exchange_ok(r.body["token"].as_str().unwrap()));
    assert_eq!(strings(&c["roles"]), sorted(&["org:developer", "metrics:read"]));

    // A subset, including a role implied by the ladder.
    let r = s.post("/api/v1/me/tokens", &dev, json!({"name": "member", "ttl_days": 3, "roles": ["org:member"]}));
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    assert_eq!(strings(&r.body["roles"]), vec!["org:member"]);

    for role in ["alerts:write", "org:admin", "org:owner"] {
        let before = s.snapshot();
        let r =
            s.post("/api/v1/me/tokens", &dev, json!({"name": "more", "ttl_days": 3, "roles": ["metrics:read", role]}));
        assert_invalid_field(&r, "roles", "");
        assert!(
            r.body["detail"].as_str().unwrap().contains(role),
            "the error names the role {role}: {}",
            redact(&r.text)
        );
        assert_refused_unchanged(&s, &before, "refused call");
    }
}

fn pat_derived_access_token_cannot_mint(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "script", "ttl_days": 5}));
    let derived = s.exchange_api(&secret);
    // The bearer itself is valid...
    let me = s.get("/api/v1/me", &derived);
    assert_eq!(me.status, 200, "{}", redact(&me.text));
    // ...but cannot mint or rotate.
    let before = split_audit(&s.snapshot()).0;
    let r = s.post("/api/v1/me/tokens", &derived, json!({"roles": ["org:owner"], "name": "minted", "ttl_days": 1}));
    assert_eq!(r.status, 403, "{}", redact(&r.text));
    assert!(r.body.get("token").is_none());
    let r = s.post(&format!("/api/v1/me/tokens/{id}/rotate"), &derived, json!({}));
    assert_eq!(r.status, 403, "{}", redact(&r.text));
    assert!(r.body.get("token").is_none());
    assert_eq!(split_audit(&s.snapshot()).0, before, "a refused mint changed the database");
    // Same for the bootstrap token, and for another user's PAT.
    let derived_boot = s.exchange_api(&s.owner_pat);
    assert_eq!(
        s.post("/api/v1/me/tokens", &derived_boot, json!({"roles": ["org:owner"], "name": "m", "ttl_days": 1})).status,
        403
    );
    let (_, user_at) = s.user(&owner, "u@example.com", &["org:member"]);
    let (_, user_pat) = s.pat(&user_at, json!({"name": "u", "ttl_days": 1}));
    let user_derived = s.exchange_api(&user_pat);
    assert_eq!(
        s.post("/api/v1/me/tokens", &user_derived, json!({"roles": ["org:owner"], "name": "m", "ttl_days": 1})).status,
        403
    );
    // The original token is untouched.
    assert_eq!(s.exchange(&secret).status, 200);
    assert_eq!(my_token(&s, &owner, &id)["status"], "active");
}

// ---- exchange ----

fn check_exchanged(s: &Server, r: &Resp, token_id: &str, roles: &[&str]) -> Value {
    assert_eq!(r.status, 200, "exchange: {}", redact(&r.text));
    assert!(
        r.header("Cache-Control").unwrap_or("").contains("no-store"),
        "Cache-Control: {:?}",
        r.header("Cache-Control")
    );
    assert_eq!(r.header("Pragma"), Some("no-cache"));
    assert!(r.body["token_type"].as_str().unwrap().eq_ignore_ascii_case("bearer"));
    assert_eq!(r.body["expires_in"], 1800);
    let at = r.body["access_token"].as_str().unwrap();
    let c = s.verify_resource(at);
    assert_eq!(c["iss"], s.issuer().as_str());
    assert_eq!(c["sub"], s.owner_id.as_str());
    assert_eq!(c["client_id"], token_id);
    assert_eq!(c["acct"], "user");
    assert_eq!(c["org"], s.org_id.as_str());
    assert_eq!(strings(&c["roles"]), sorted(roles));
    assert_eq!(scope_set(&c["scope"]), sorted(roles));
    assert_eq!(scope_set(&r.body["scope"]), sorted(roles), "response scope matches the token");
    assert_eq!(aud_of(&c), vec![s.issuer()], "default audience is the first configured one");
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(iat, clock_now(s));
    assert_eq!(c["exp"].as_i64().unwrap() - iat, 1800);
    assert!(c["nbf"].as_i64().unwrap() <= iat);
    assert!(!c["jti"].as_str().unwrap().is_empty());
    // Not usable at the management API (a resource audience), as API.md requires.
    assert_eq!(s.get("/api/v1/me", at).status, 401);
    c
}

fn exchange_refresh_token_grant(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    let (id, secret) = s.pat(&owner, json!({"name": "rt", "ttl_days": 2, "roles": ["metrics:read", "org:member"]}));
    let roles = ["metrics:read", "org:member"];
    let c1 = check_exchanged(&s, &refresh(&s, &secret, &[]), &id, &roles);
    let c2 = check_exchanged(&s, &refresh(&s, &secret, &[]), &id, &roles);
    assert_ne!(c1["jti"], c2["jti"], "jti is unique per access token");
    // The bootstrap token too.
    let r = s.exchange(&s.owner_pat);
    assert_eq!(r.status, 200);
    assert_eq!(strings(&s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"]), vec!["org:owner"]);
}

fn exchange_token_exchange_grant(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    let (id, secret) = s.pat(&owner, json!({"name": "te", "ttl_days": 2, "roles": ["metrics:read"]}));
    let mut jtis = HashSet::new();
    for ty in [TYPE_RT, TYPE_API, TYPE_RT, TYPE_API] {
        let r = token_exchange(&s, &secret, ty, &[]);
        let c = check_exchanged(&s, &r, &id, &["metrics:read"]);
        assert_eq!(r.body["issued_token_type"], TYPE_AT, "{}", redact(&r.text));
        assert!(jtis.insert(c["jti"].as_str().unwrap().to_string()), "jti repeated");
    }
    // requested_token_type = access_token is fine.
    let r = token_exchange(&s, &secret, TYPE_API, &[("requested_token_type", TYPE_AT)]);
    let c = check_exchanged(&s, &r, &id, &["metrics:read"]);
    assert!(jtis.insert(c["jti"].as_str().unwrap().to_string()));
    // The refresh_token grant and the exchange grant share the jti space.
    let c = check_exchanged(&s, &refresh(&s, &secret, &[]), &id, &["metrics:read"]);
    assert!(jtis.insert(c["jti"].as_str().unwrap().to_string()));
}

fn scope_narrowing(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    s.role(&owner, "alerts:write");
    let (_, secret) =
        s.pat(&owner, json!({"name": "n", "ttl_days": 2, "roles": ["metrics:read", "alerts:write", "org:member"]}));
    let granted = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", redact(&r.text));
        let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
        assert_eq!(scope_set(&c["scope"]), strings(&c["roles"]), "scope claim = roles");
        assert_eq!(scope_set(&r.body["scope"]), strings(&c["roles"]), "response scope = roles");
        strings(&c["roles"])
    };
    assert_eq!(granted(&refresh(&s, &secret, &[])), sorted(&["metrics:read", "alerts:write", "org:member"]));
    assert_eq!(granted(&refresh(&s, &secret, &[("scope", "metrics:read")])), vec!["metrics:read"]);
    assert_eq!(
        granted(&refresh(&s, &secret, &[("scope", "org:member metrics:read")])),
        sorted(&["org:member", "metrics:read"])
    );
    assert_eq!(granted(&token_exchange(&s, &secret, TYPE_API, &[("scope", "alerts:write")])), vec!["alerts:write"]);
    // Asking for more than the token holds — even roles the owner holds.
    for scope in ["logs:read", "metrics:read logs:read", "org:admin", "org:owner"] {
        let before = s.snapshot();
        assert_oauth_error(&refresh(&s, &secret, &[("scope", scope)]), 400, "invalid_scope", "");
        assert_oauth_error(&token_exchange(&s, &secret, TYPE_RT, &[("scope", scope)]), 400, "invalid_scope", "");
        assert_eq!(s.snapshot(), before);
    }
}

fn owner_demoted_gets_fewer_roles(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    let (uid, uat) = s.user(&owner, "admin2@example.com", &["org:admin", "metrics:read"]);
    let (_, secret) = s.pat(&uat, json!({"name": "admin script", "ttl_days": 5}));
    let first = s.verify_resource(&s.exchange_ok(&secret));
    assert_eq!(strings(&first["roles"]), sorted(&["org:admin", "metrics:read"]));
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let r = s.exchange(&secret);
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let after = s.verify_resource(r.body["access_token"].as_str().unwrap());
    let roles = strings(&after["roles"]);
    // Exactly what the owner still holds of what the token carries: org:member, which the
    // token's org:admin implies down the ladder (service::intersect). Not empty, not more.
    assert_eq!(roles, vec!["org:member".to_string()], "only what the owner still holds: {roles:?}");
    assert_eq!(scope_set(&after["scope"]), roles);
    // Restoring one role restores exactly that role at the next exchange.
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member", "metrics:read"]}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let again = s.verify_resource(&s.exchange_ok(&secret));
    assert!(strings(&again["roles"]).contains(&"metrics:read".to_string()));
    assert!(!strings(&again["roles"]).contains(&"org:admin".to_string()));
}

fn owner_disabled_or_deleted(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    // Disabled.
    let (did, dat) = s.user(&owner, "disabled@example.com", &["org:developer"]);
    let (_, dsecret) = s.pat(&dat, json!({"name": "d", "ttl_days": 5}));
    let derived = s.exchange_ok(&dsecret);
    let r = s.patch(&format!("/api/v1/users/{did}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let (rows, audit) = split_audit(&s.snapshot());
    assert_invalid_grant(&s.exchange(&dsecret), "");
    assert_invalid_grant(&token_exchange(&s, &dsecret, TYPE_API, &[]), "");
    let (rows2, audit2) = split_audit(&s.snapshot());
    assert_eq!(rows2, rows);
    assert_eq!(audit2, audit + 2, "each refused exchange of a known token is one audit event");
    assert_eq!(s.get("/api/v1/me", &derived).status, 401, "a disabled user's access token stops at once");
    // Deleted.
    let (eid, eat) = s.user(&owner, "deleted@example.com", &["org:member"]);
    let (_, esecret) = s.pat(&eat, json!({"name": "e", "ttl_days": 5}));
    s.exchange_ok(&esecret);
    let r = s.delete(&format!("/api/v1/users/{eid}"), &owner);
    assert_eq!(r.status, 204, "{}", redact(&r.text));
    assert_invalid_grant(&s.exchange(&esecret), "");
    assert_invalid_grant(&token_exchange(&s, &esecret, TYPE_RT, &[]), "");
    // Other people's tokens are unaffected.
    s.exchange_ok(&s.owner_pat);
}

// ---- time ----

fn expiry_with_fixed_clock(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let ttl_days = 2;
    let (id, secret) = s.pat(&owner, json!({"name": "short", "ttl_days": ttl_days}));
    s.clock.advance(ttl_days * DAY - 1);
    let c = s.verify_resource(&s.exchange_ok(&secret));
    assert_eq!(c["iat"].as_i64().unwrap(), clock_now(&s), "iat follows the server clock");
    s.clock.advance(1);
    let (rows, audit) = split_audit(&s.snapshot());
    assert_invalid_grant(&s.exchange(&secret), "");
    assert_invalid_grant(&token_exchange(&s, &secret, TYPE_API, &[]), "");
    let (rows2, audit2) = split_audit(&s.snapshot());
    assert_eq!(rows2, rows);
    assert_eq!(audit2, audit + 2);
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "expired");
    s.clock.advance(30 * DAY);
    assert_invalid_grant(&s.exchange(&secret), "");
}

fn idle_ttl_without_use(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 1}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert_eq!(r.body["idle_ttl_days"], 1);
    let (id, secret) = s.pat(&owner, json!({"name": "idle", "ttl_days": 10}));
    assert_eq!(my_token(&s, &owner, &id)["idle_ttl_days"], 1);
    s.clock.advance(DAY - 1);
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "active");
    s.clock.advance(2);
    assert_invalid_grant(&s.exchange(&secret), "");
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "idle");
    // The bootstrap token predates the policy change: no idle TTL, still works.
    s.exchange_ok(&s.owner_pat);
}

fn idle_ttl_with_use(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 1})).status, 200);
    let (id, secret) = s.pat(&owner, json!({"name": "idle", "ttl_days": 10}));
    let t0 = clock_now(&s);
    s.clock.set(t0 + 12 * 3600);
    s.exchange_ok(&secret);
    // +30 h: beyond created + 24 h, but within last use + 24 h. Checked without using it.
    s.clock.set(t0 + 30 * 3600);
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "active", "a use at +12h keeps the token alive at +30h");
    s.flush_usage();
    s.clock.set(t0 + 12 * 3600 + DAY - 1);
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "active");
    s.clock.set(t0 + 12 * 3600 + DAY);
    assert_invalid_grant(&s.exchange(&secret), "");
    let owner = s.owner_login();
    assert_eq!(my_token(&s, &owner, &id)["status"], "idle");
}

/// Same as above but the use is flushed to the database before the idle check (fresh
/// value from memory vs database must agree), then exchanged right before the deadline.
fn idle_ttl_use_extends(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 1})).status, 200);
    let (_, secret) = s.pat(&owner, json!({"name": "idle", "ttl_days": 10}));
    let t0 = clock_now(&s);
    s.clock.set(t0 + 12 * 3600);
    s.exchange_ok(&secret);
    s.flush_usage();
    s.flush_usage();
    s.clock.set(t0 + 30 * 3600);
    s.exchange_ok(&secret); // a use at +30h: now alive until +54h
    s.clock.set(t0 + 54 * 3600 - 1);
    s.exchange_ok(&secret);
    s.clock.set(t0 + 54 * 3600 - 1 + DAY);
    assert_invalid_grant(&s.exchange(&secret), "");
}

/// "Idle-TTL checks use the freshest value" (issue 3): a use must stay visible at every
/// moment, also while the in-memory usage buffer is being written to the database. Tokens
/// used at +12h (idle TTL one day) are read continuously at +30h across a usage flush
/// (every ~0.5 s): every read must say `active`.
fn idle_check_sees_use_during_flush(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 1})).status, 200);
    let t0 = clock_now(&s);
    let mut wrong = Vec::new();
    let mut reads = 0;
    for round in 0..6 {
        let base = t0 + round * 3 * DAY;
        s.clock.set(base);
        let owner = s.owner_login();
        let tokens: Vec<(String, String)> =
            (0..5).map(|i| s.pat(&owner, json!({"name": format!("r{round}-{i}"), "ttl_days": 30}))).collect();
        // A bearer valid at +30h, obtained first so that reading starts right after the uses.
        s.clock.set(base + 30 * 3600);
        let reader = s.owner_login();
        s.clock.set(base + 12 * 3600);
        for (_, secret) in &tokens {
            s.exchange_ok(secret);
        }
        s.clock.set(base + 30 * 3600);
        // Read continuously until the server's own flush has written the uses to the
        // database (seen straight in the table), then a few reads more: the reads span the
        // flush however slow the machine is. A generous deadline only bounds a hang.
        let ids = tokens.iter().map(|(id, _)| format!("'{id}'")).collect::<Vec<_>>().join(", ");
        let flushed = || s.count(&format!("api_tokens WHERE last_used_at IS NOT NULL AND id IN ({ids})")) == 5;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut reads_after_flush = 0;
        while reads_after_flush < 3 {
            assert!(Instant::now() < deadline, "round {round}: the usage flush did not happen within 60 s");
            let was_flushed = flushed();
            let items = my_tokens(&s, &reader);
            reads += 1;
            for (id, _) in &tokens {
                let status = item(&items, id)["status"].as_str().unwrap().to_string();
                if status != "active" {
                    wrong.push(format!("round {round}, read {reads}: token {id} is {status}"));
                }
            }
            if was_flushed {
                reads_after_flush += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a token used 18 h ago (idle TTL 1 day) read as not active {} times in {reads} reads; first: {:?}",
        wrong.len(),
        wrong.first()
    );
}

// ---- revoke, rotate, rename ----

fn revoke_one(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "victim", "ttl_days": 5}));
    let (_, keep) = s.pat(&owner, json!({"name": "keep", "ttl_days": 5}));
    let derived = s.exchange_ok(&secret);
    // Someone else cannot revoke it.
    let (_, mat) = s.user(&owner, "m@example.com", &["org:admin"]);
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{id}"), &mat).status, 404);
    assert_eq!(s.get(&format!("/api/v1/me/tokens/{id}"), &mat).status, 404);
    s.exchange_ok(&secret);

    let now = clock_now(&s);
    let r = s.delete(&format!("/api/v1/me/tokens/{id}"), &owner);
    assert_eq!(r.status, 204, "{}", redact(&r.text));
    assert!(r.text.is_empty());
    assert_invalid_grant(&s.exchange(&secret), "");
    assert_invalid_grant(&token_exchange(&s, &secret, TYPE_API, &[]), "");
    assert_eq!(s.get("/api/v1/me", &derived).status, 401, "access tokens from a revoked token stop working");
    let list = my_tokens(&s, &owner);
    let t = item(&list, &id);
    assert_eq!(t["status"], "revoked");
    assert_eq!(ts(&t["revoked_at"]), now);
    assert_eq!(t["revoked_by"], s.owner_id.as_str());
    // Irreversible: a second DELETE changes nothing.
    s.clock.advance(60);
    let r = s.delete(&format!("/api/v1/me/tokens/{id}"), &owner);
    assert_eq!(r.status, 204, "a second revoke is idempotent (204): {}", redact(&r.text));
    let t = my_token(&s, &owner, &id);
    assert_eq!(t["status"], "revoked");
    assert_eq!(ts(&t["revoked_at"]), now, "the first revocation's time stays");
    assert_invalid_grant(&s.exchange(&secret), "");
    // Others unaffected.
    s.exchange_ok(&keep);
    s.exchange_ok(&s.owner_pat);
}

fn revoke_all(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let secrets: Vec<(String, String)> =
        (0..3).map(|i| s.pat(&owner, json!({"name": format!("t{i}"), "ttl_days": 5}))).collect();
    let (_, old) = s.pat(&owner, json!({"name": "already", "ttl_days": 5}));
    let old_id =
        my_tokens(&s, &owner).iter().find(|t| t["name"] == "already").unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{old_id}"), &owner).status, 204);
    // Another user's token must survive.
    let (_, uat) = s.user(&owner, "other@example.com", &["org:member"]);
    let (_, other) = s.pat(&uat, json!({"name": "other", "ttl_days": 5}));

    let r = s.delete("/api/v1/me/tokens", &owner);
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert_eq!(r.body, json!({"revoked": 4}), "three new tokens plus the bootstrap token");
    for (_, secret) in &secrets {
        assert_invalid_grant(&s.exchange(secret), "");
    }
    assert_invalid_grant(&s.exchange(&s.owner_pat), "");
    assert_invalid_grant(&s.exchange(&old), "");
    for t in my_tokens(&s, &owner) {
        assert_eq!(t["status"], "revoked", "{t}");
        assert!(!t["revoked_at"].is_null());
        assert_eq!(t["revoked_by"], s.owner_id.as_str());
    }
    s.exchange_ok(&other);
    let r = s.delete("/api/v1/me/tokens", &owner);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"revoked": 0}));
}

fn rotate(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    let (id, secret) =
        s.pat(&owner, json!({"name": "rot", "description": "rotating", "ttl_days": 9, "roles": ["metrics:read"]}));
    s.exchange_ok(&secret);
    let r = s.post(&format!("/api/v1/me/tokens/{id}/rotate"), &owner, json!({}));
    assert_eq!(r.status, 201, "{}", redact(&r.text));
    let new_secret = r.body["token"].as_str().expect("the new secret, once").to_string();
    let new_id = r.body["id"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_ne!(new_id, id);
    assert!(new_secret.starts_with("tkd_pat_"));
    assert_eq!(r.body["name"], "rot");
    assert_eq!(r.body["description"], "rotating");
    assert_eq!(strings(&r.body["roles"]), vec!["metrics:read"]);
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 9 * DAY);
    assert_eq!(r.body["status"], "active");

    assert_invalid_grant(&s.exchange(&secret), "");
    let c = s.verify_resource(&s.exchange_ok(&new_secret));
    assert_eq!(c["client_id"], new_id.as_str());
    assert_eq!(strings(&c["roles"]), vec!["metrics:read"]);

    let list = s.get("/api/v1/me/tokens?page_size=200", &owner);
    assert_no_secret(&list.text, &new_secret, "list after rotate");
    assert_no_secret(&list.text, &secret, "list after rotate");
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(item(items, &id)["status"], "revoked");
    assert_eq!(item(items, &id)["revoked_by"], s.owner_id.as_str());
    assert_eq!(item(items, &new_id)["status"], "active");
    assert_eq!(item(items, &new_id)["name"], "rot");
    // A revoked token cannot be rotated again into a working one.
    let r = s.post(&format!("/api/v1/me/tokens/{id}/rotate"), &owner, json!({}));
    assert_eq!(r.status, 409, "rotating a revoked token is a conflict: {}", redact(&r.text));
    assert!(r.body.get("token").is_none());
}

fn patch_rename(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "before", "description": "d1", "ttl_days": 5}));
    let before = my_token(&s, &owner, &id);
    let r = s.patch(&format!("/api/v1/me/tokens/{id}"), &owner, json!({"name": "after"}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert_eq!(r.body["name"], "after");
    assert_eq!(r.body["description"], "d1");
    assert!(r.body.get("token").is_none());
    let r = s.patch(&format!("/api/v1/me/tokens/{id}"), &owner, json!({"description": "d2"}));
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    let got = my_token(&s, &owner, &id);
    assert_eq!(got["name"], "after");
    assert_eq!(got["description"], "d2");
    for f in ["id", "hint", "roles", "created_at", "expires_at", "status"] {
        assert_eq!(got[f], before[f], "rename changed {f}");
    }
    assert_eq!(item(&my_tokens(&s, &owner), &id)["name"], "after");
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"description": "d".repeat(1001)}), "description"),
    ] {
        let snap = s.snapshot();
        assert_invalid_field(&s.patch(&format!("/api/v1/me/tokens/{id}"), &owner, body), field, "");
        assert_refused_unchanged(&s, &snap, "refused call");
    }
    for body in [json!({"roles": ["org:member"]}), json!({"expires_at": "2099-01-01T00:00:00Z"})] {
        let r = s.patch(&format!("/api/v1/me/tokens/{id}"), &owner, body.clone());
        assert_eq!(r.status, 422, "a read-only field is an invalid value: {body}: {}", redact(&r.text));
    }
    assert_eq!(my_token(&s, &owner, &id)["name"], "after");
    let (_, uat) = s.user(&owner, "x@example.com", &["org:admin"]);
    assert_eq!(s.patch(&format!("/api/v1/me/tokens/{id}"), &uat, json!({"name": "hijack"})).status, 404);
    s.exchange_ok(&secret);
}

fn rfc7009_revoke(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "7009", "ttl_days": 5}));
    s.exchange_ok(&secret);
    let r = s.form("/oauth/revoke", &[("token", &secret)], None);
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert!(r.text.is_empty(), "RFC 7009 answers an empty body: {}", redact(&r.text));
    assert_invalid_grant(&s.exchange(&secret), "");
    let t = my_token(&s, &owner, &id);
    assert_eq!(t["status"], "revoked");
    assert!(!t["revoked_at"].is_null());
    // Again: still 200.
    assert_eq!(s.form("/oauth/revoke", &[("token", &secret)], None).status, 200);
    // With a token_type_hint.
    let (_, secret2) = s.pat(&owner, json!({"name": "hinted", "ttl_days": 5}));
    let r = s.form("/oauth/revoke", &[("token", &secret2), ("token_type_hint", "refresh_token")], None);
    assert_eq!(r.status, 200, "{}", redact(&r.text));
    assert_invalid_grant(&s.exchange(&secret2), "");

    // Unknown tokens: 200, nothing changes.
    // The owner's PAT with its last character changed (to one it is not: 1 in 62 PATs end in x).
    let (head, last) = s.owner_pat.split_at(s.owner_pat.len() - 1);
    let altered = format!("{head}{}", if last == "x" { "y" } else { "x" });
    for unknown in [unknown_pat(), "not-a-token".to_string(), altered] {
        let before = s.snapshot();
        let r = s.form("/oauth/revoke", &[("token", &unknown)], None);
        assert_eq!(r.status, 200, "{}", redact(&r.text));
        assert!(r.text.is_empty());
        assert_eq!(s.snapshot(), before);
    }
    s.exchange_ok(&s.owner_pat);

    // A client secret: unsupported_token_type (API.md), and nothing is revoked.
    let (app_id, client_id, client_secret) = s.app(&owner, json!({"name": "svc", "roles": ["org:member"]}));
    let before = s.snapshot();
    let r = s.form("/oauth/revoke", &[("token", &client_secret)], None);
    assert_oauth_error(&r, 400, "unsupported_token_type", "");
    assert!(!r.text.contains(&client_secret), "the secret is not echoed");
    assert_eq!(s.snapshot(), before, "revoking a client secret via RFC 7009 changes nothing");
    let cc = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&client_id, &client_secret)));
    assert_eq!(cc.status, 200, "the client secret still works: {}", redact(&cc.text));
    let app = s.get(&format!("/api/v1/apps/{app_id}"), &owner);
    assert_eq!(app.status, 200);
    assert_ne!(app.body["disabled"], true);
    // An access token is revoked by its jti (tests/security.rs follows it to the API and
    // introspection); the API token it came from is untouched.
    let at = s.exchange_ok(&s.owner_pat);
    let api_before = s.count("api_tokens WHERE revoked_at IS NOT NULL");
    assert_eq!(s.form("/oauth/revoke", &[("token", &at)], None).status, 200);
    assert_eq!(s.count("revoked_jtis"), 1, "one jti recorded");
    assert_eq!(s.count("api_tokens WHERE revoked_at IS NOT NULL"), api_before);
    s.exchange_ok(&s.owner_pat);
    // No token parameter: invalid_request.
    assert_oauth_error(
        &s.form("/oauth/revoke", &[("token_type_hint", "refresh_token")], None),
        400,
        "invalid_request",
        "",
    );
}

// ---- audience ----

fn audience_rules(b: &Backend) {
    let s = b.start_with(|c| {
        c.audiences = vec![c.issuer.clone(), "https://metrics.example".into(), "https://ingest.example".into()];
        c.service_only_audiences = vec!["https://ingest.example".into()];
    });
    let owner = s.owner_login();
    let (_, secret) = s.pat(&owner, json!({"name": "aud", "ttl_days": 5}));
    // Verified independently for the audience asked for; answers the token's `aud`.
    let aud_for = |r: &Resp, want: &str| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", redact(&r.text));
        aud_of(&s.verify(r.body["access_token"].as_str().unwrap(), want))
    };
    let aud = |r: &Resp| aud_for(r, "https://metrics.example");
    assert_eq!(aud_for(&s.exchange(&secret), &s.issuer()), vec![s.issuer()]);
    let metrics = refresh(&s, &secret, &[("resource", "https://metrics.example")]);
    assert_eq!(aud(&metrics), vec!["https://metrics.example"]);
    assert_eq!(aud(&refresh(&s, &secret, &[("audience", "https://metrics.example")])), vec!["https://metrics.example"]);
    assert_eq!(
        aud(&token_exchange(&s, &secret, TYPE_API, &[("audience", "https://metrics.example")])),
        vec!["https://metrics.example"]
    );
    assert_eq!(
        aud(&token_exchange(&s, &secret, TYPE_RT, &[("resource", "https://metrics.example")])),
        vec!["https://metrics.example"]
    );
    // A token for another audience is not a management API bearer.
    assert_eq!(s.get("/api/v1/me", metrics.body["access_token"].as_str().unwrap()).status, 401);

    let before = s.snapshot();
    for r in [
        refresh(&s, &secret, &[("resource", "https://unknown.example")]),
        refresh(&s, &secret, &[("audience", "https://unknown.example")]),
        token_exchange(&s, &secret, TYPE_API, &[("audience", "https://unknown.example")]),
        refresh(&s, &secret, &[("resource", "https://metrics.example"), ("audience", "https://ingest.example")]),
        // Personal tokens are refused for the service-only audience.
        refresh(&s, &secret, &[("resource", "https://ingest.example")]),
        refresh(&s, &secret, &[("audience", "https://ingest.example")]),
        token_exchange(&s, &secret, TYPE_API, &[("audience", "https://ingest.example")]),
        token_exchange(&s, &secret, TYPE_RT, &[("resource", "https://ingest.example")]),
    ] {
        assert_oauth_error(&r, 400, "invalid_target", "");
    }
    assert_eq!(s.snapshot(), before);

    // A service-account token may use the service-only audience.
    let sa = s.post(
        "/api/v1/service-accounts",
        &owner,
        json!({"name": "ingester", "description": "", "roles": ["org:member"]}),
    );
    assert_eq!(sa.status, 201, "{}", redact(&sa.text));
    let sa_id = sa.body["id"].as_str().unwrap();
    let t =
        s.post(&format!("/api/v1/service-accounts/{sa_id}/tokens"), &owner, json!({"name": "ingest", "ttl_days": 30}));
    assert_eq!(t.status, 201, "{}", redact(&t.text));
    let sat = t.body["token"].as_str().unwrap();
    let r = refresh(&s, sat, &[("resource", "https://ingest.example")]);
    assert_eq!(aud_for(&r, "https://ingest.example"), vec!["https://ingest.example"]);
    assert_eq!(s.verify(r.body["access_token"].as_str().unwrap(), "https://ingest.example")["acct"], "service_account");
}

// ---- usage ----

fn usage_recorded(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "used", "ttl_days": 5}));
    let (unused_id, _) = s.pat(&owner, json!({"name": "unused", "ttl_days": 5}));
    s.clock.advance(120);
    let used_at = clock_now(&s);
    s.exchange_ok(&secret);
    s.flush_usage();
    let owner = s.owner_login();
    let t = my_token(&s, &owner, &id);
    assert_eq!(ts(&t["last_used_at"]), used_at, "{t}");
    assert_eq!(t["last_used_ip"], "127.0.0.1", "{t}");
    let listed = my_tokens(&s, &owner);
    assert_eq!(ts(&item(&listed, &id)["last_used_at"]), used_at);
    assert_eq!(item(&listed, &id)["last_used_ip"], "127.0.0.1");
    assert!(item(&listed, &unused_id)["last_used_at"].is_null());
    assert!(item(&listed, &unused_id)["last_used_ip"].is_null());
    // A later use moves it forward.
    s.clock.advance(600);
    s.exchange_ok(&secret);
    s.flush_usage();
    let owner = s.owner_login();
    assert_eq!(ts(&my_token(&s, &owner, &id)["last_used_at"]), used_at + 600);
    // A refused exchange is not a use.
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{id}"), &owner).status, 204);
    s.clock.advance(600);
    assert_invalid_grant(&s.exchange(&secret), "");
    s.flush_usage();
    let owner = s.owner_login();
    assert_eq!(ts(&my_token(&s, &owner, &id)["last_used_at"]), used_at + 600);
}

// ---- the SQLite file ----

#[test]
fn sqlite_file_never_contains_secrets() {
    let s = Backend::Sqlite.start();
    let owner = s.owner_login();
    let mut secrets = vec![s.owner_pat.clone()];
    let mut ids = vec![];
    for i in 0..3 {
        let (id, secret) = s.pat(&owner, json!({"name": format!("file-{i}"), "ttl_days": 5}));
        s.exchange_ok(&secret);
        secrets.push(secret);
        ids.push(id);
    }
    let r = s.post(&format!("/api/v1/me/tokens/{}/rotate", ids[0]), &owner, json!({}));
    assert_eq!(r.status, 201);
    secrets.push(r.body["token"].as_str().unwrap().to_string());
    ids.push(r.body["id"].as_str().unwrap().to_string());
    s.exchange_ok(secrets.last().unwrap());
    let revoked = secrets[2].clone();
    assert_eq!(s.form("/oauth/revoke", &[("token", &revoked)], None).status, 200);
    let (_, _, cs) = s.app(&owner, json!({"name": "file-app", "roles": []}));
    secrets.push(cs);
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "file-sa", "roles": ["org:member"]}));
    assert_eq!(sa.status, 201);
    let t = s.post(
        &format!("/api/v1/service-accounts/{}/tokens", sa.body["id"].as_str().unwrap()),
        &owner,
        json!({"name": "f", "ttl_days": 5}),
    );
    assert_eq!(t.status, 201);
    secrets.push(t.body["token"].as_str().unwrap().to_string());
    s.flush_usage();

    let mut bytes = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("tokend.db") {
            bytes.extend(std::fs::read(&p).unwrap());
            files += 1;
        }
    }
    assert!(files >= 1, "the SQLite file exists");
    let text = String::from_utf8_lossy(&bytes);
    // We read the right files: the token rows are there.
    for id in &ids {
        assert!(text.contains(id.as_str()), "token {id} not found in the database files");
    }
    for secret in &secrets {
        assert_no_secret(&text, secret, "the SQLite database file");
    }
}

// ---- bad input at /oauth/token ----

struct Case {
    name: &'static str,
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
    /// Audit events the refusal writes (a known token's failed exchange writes one).
    audit: i64,
    basic_challenge: bool,
}

fn enc(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs).unwrap().into_bytes()
}

fn form_case(name: &'static str, pairs: &[(&str, &str)], status: u16, error: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        headers: vec![("Content-Type", FORM.to_string())],
        body: enc(pairs),
        status,
        error,
        audit: 0,
        basic_challenge: false,
    }
}

fn token_endpoint_bad_input(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, live) = s.pat(&owner, json!({"name": "live", "ttl_days": 5, "roles": ["org:member"]}));
    let (revoked_id, revoked) = s.pat(&owner, json!({"name": "revoked", "ttl_days": 5}));
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{revoked_id}"), &owner).status, 204);
    let (_, client_id, client_secret) = s.app(&owner, json!({"name": "cc", "roles": ["org:member"]}));
    let unknown = unknown_pat();
    let wrong_prefix = live.replacen("tkd_pat_", "tkd_xyz_", 1);
    let flipped = {
        let last = live.chars().last().unwrap();
        format!("{}{}", &live[..live.len() - 1], if last == 'a' { 'b' } else { 'a' })
    };
    let truncated = live[..live.len() - 1].to_string();
    let issuer = s.issuer();
    let rt = "refresh_token";

    let cases = vec![
        Case { name: "empty body", ..form_case("", &[], 400, "invalid_request") },
        form_case("missing grant_type", &[("refresh_token", &live)], 400, "invalid_request"),
        form_case("empty grant_type", &[("grant_type", ""), ("refresh_token", &live)], 400, "invalid_request"),
        form_case(
            "unknown grant_type",
            &[("grant_type", "magic"), ("refresh_token", &live)],
            400,
            "unsupported_grant_type",
        ),
        form_case(
            "grant_type in other case",
            &[("grant_type", "REFRESH_TOKEN"), ("refresh_token", &live)],
            400,
            "unsupported_grant_type",
        ),
        form_case(
            "authorization_code",
            &[("grant_type", "authorization_code"), ("code", "abc"), ("redirect_uri", "https://x.example/cb")],
            400,
            "unsupported_grant_type",
        ),
        Case {
            body: format!("grant_type=refresh_token&grant_type=refresh_token&refresh_token={live}").into_bytes(),
            ..form_case("duplicated grant_type", &[], 400, "invalid_request")
        },
        Case {
            body: format!("grant_type=refresh_token&refresh_token={live}&refresh_token={live}").into_bytes(),
            ..form_case("duplicated refresh_token", &[], 400, "invalid_request")
        },
        Case {
            body: format!("grant_type=refresh_token&refresh_token={live}&refresh_token=").into_bytes(),
            ..form_case("duplicated refresh_token, second empty", &[], 400, "invalid_request")
        },
        Case {
            body: format!("grant_type=refresh_token&refresh_token={live}%FF").into_bytes(),
            ..form_case("non-UTF-8 percent-escape", &[], 400, "invalid_request")
        },
        Case {
            body: [b"grant_type=refresh_token&refresh_token=".as_slice(), live.as_bytes(), &[0xff, 0xfe]].concat(),
            ..form_case("non-UTF-8 raw bytes", &[], 400, "invalid_request")
        },
        Case {
            headers: vec![("Content-Type", "application/json".into())],
            body: json!({"grant_type": "refresh_token", "refresh_token": live}).to_string().into_bytes(),
            ..form_case("JSON body", &[], 400, "invalid_request")
        },
        Case {
            headers: vec![],
            ..form_case("no content type", &[("grant_type", rt), ("refresh_token", &live)], 400, "invalid_request")
        },
        Case {
            headers: vec![("Content-Type", "text/plain".into())],
            ..form_case(
                "text/plain content type",
                &[("grant_type", rt), ("refresh_token", &live)],
                400,
                "invalid_request",
            )
        },
        Case {
            body: format!("grant_type=refresh_token&refresh_token={live}&pad={}", "a".repeat(70 * 1024)).into_bytes(),
            ..form_case("body over 64 KiB", &[], 413, "invalid_request")
        },
        Case { method: "GET", headers: vec![], body: vec![], ..form_case("GET", &[], 405, "invalid_request") },
        Case {
            method: "GET",
            headers: vec![],
            body: vec![],
            ..form_case("GET with query parameters", &[], 405, "invalid_request")
        },
        Case {
            method: "PUT",
            ..form_case("PUT", &[("grant_type", rt), ("refresh_token", &live)], 405, "invalid_request")
        },
        form_case("refresh_token missing", &[("grant_type", rt)], 400, "invalid_request"),
        form_case("refresh_token empty", &[("grant_type", rt), ("refresh_token", "")], 400, "invalid_request"),
        form_case("malformed secret", &[("grant_type", rt), ("refresh_token", "hello")], 400, "invalid_grant"),
        form_case("wrong prefix", &[("grant_type", rt), ("refresh_token", &wrong_prefix)], 400, "invalid_grant"),
        form_case("wrong checksum", &[("grant_type", rt), ("refresh_token", &flipped)], 400, "invalid_grant"),
        form_case("truncated secret", &[("grant_type", rt), ("refresh_token", &truncated)], 400, "invalid_grant"),
        form_case(
            "client secret as refresh_token",
            &[("grant_type", rt), ("refresh_token", &client_secret)],
            400,
            "invalid_grant",
        ),
        form_case(
            "unknown well-formed secret",
            &[("grant_type", rt), ("refresh_token", &unknown)],
            400,
            "invalid_grant",
        ),
        Case {
            audit: 1,
            ..form_case("revoked token", &[("grant_type", rt), ("refresh_token", &revoked)], 400, "invalid_grant")
        },
        form_case(
            "subject_token missing",
            &[("grant_type", GRANT_TE), ("subject_token_type", TYPE_API)],
            400,
            "invalid_request",
        ),
        form_case(
            "subject_token_type missing",
            &[("grant_type", GRANT_TE), ("subject_token", &live)],
            400,
            "invalid_request",
        ),
        form_case(
            "bad subject_token_type",
            &[("grant_type", GRANT_TE), ("subject_token", &live), ("subject_token_type", TYPE_AT)],
            400,
            "invalid_request",
        ),
        form_case(
            "requested_token_type unsupported",
            &[
                ("grant_type", GRANT_TE),
                ("subject_token", &live),
                ("subject_token_type", TYPE_API),
                ("requested_token_type", TYPE_RT),
            ],
            400,
            "invalid_request",
        ),
        form_case(
            "actor_token present",
            &[
                ("grant_type", GRANT_TE),
                ("subject_token", &live),
                ("subject_token_type", TYPE_API),
                ("actor_token", &live),
                ("actor_token_type", TYPE_API),
            ],
            400,
            "invalid_request",
        ),
        form_case(
            "token exchange: malformed subject_token",
            &[("grant_type", GRANT_TE), ("subject_token", "tkd_pat_short"), ("subject_token_type", TYPE_RT)],
            400,
            "invalid_grant",
        ),
        Case {
            audit: 1,
            ..form_case(
                "token exchange: revoked subject_token",
                &[("grant_type", GRANT_TE), ("subject_token", &revoked), ("subject_token_type", TYPE_RT)],
                400,
                "invalid_grant",
            )
        },
        form_case(
            "invalid scope",
            &[("grant_type", rt), ("refresh_token", &live), ("scope", "org:admin")],
            400,
            "invalid_scope",
        ),
        form_case(
            "invalid resource",
            &[("grant_type", rt), ("refresh_token", &live), ("resource", "https://evil.example")],
            400,
            "invalid_target",
        ),
        form_case(
            "resource and audience disagree",
            &[
                ("grant_type", rt),
                ("refresh_token", &live),
                ("resource", &issuer),
                ("audience", "https://other.example"),
            ],
            400,
            "invalid_target",
        ),
        form_case(
            "token exchange: invalid audience",
            &[
                ("grant_type", GRANT_TE),
                ("subject_token", &live),
                ("subject_token_type", TYPE_API),
                ("audience", "https://evil.example"),
            ],
            400,
            "invalid_target",
        ),
        form_case(
            "client_credentials without credentials",
            &[("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        form_case(
            "client_credentials with client_id only",
            &[("grant_type", "client_credentials"), ("client_id", &client_id)],
            401,
            "invalid_client",
        ),
        Case {
            headers: vec![("Content-Type", FORM.into()), ("Authorization", basic(&client_id, &client_secret))],
            ..form_case(
                "client_credentials: Basic and client_secret in body",
                &[("grant_type", "client_credentials"), ("client_secret", &client_secret)],
                400,
                "invalid_request",
            )
        },
        Case {
            headers: vec![("Content-Type", FORM.into()), ("Authorization", basic(&client_id, &client_secret))],
            ..form_case(
                "client_credentials: Basic and client_id+client_secret in body",
                &[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &client_secret)],
                400,
                "invalid_request",
            )
        },
        Case {
            headers: vec![("Content-Type", FORM.into()), ("Authorization", "Basic %%%not-base64%%%".into())],
            basic_challenge: true,
            ..form_case(
                "client_credentials: bad Basic base64",
                &[("grant_type", "client_credentials")],
                401,
                "invalid_client",
            )
        },
        Case {
            headers: vec![
                ("Content-Type", FORM.into()),
                ("Authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("no-colon"))),
            ],
            basic_challenge: true,
            ..form_case(
                "client_credentials: Basic without colon",
                &[("grant_type", "client_credentials")],
                401,
                "invalid_client",
            )
        },
        Case {
            headers: vec![("Content-Type", FORM.into()), ("Authorization", basic(&client_id, &unknown))],
            basic_challenge: true,
            ..form_case(
                "client_credentials: wrong secret via Basic",
                &[("grant_type", "client_credentials")],
                401,
                "invalid_client",
            )
        },
        form_case(
            "client_credentials: wrong secret via post",
            &[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", "tkd_cs_nope")],
            401,
            "invalid_client",
        ),
        // A live PAT as the client secret is a credential (tests/it/api_tokens_as_client.rs:
        // with another id it is refused and audited by token); one whose checksum fails is
        // refused before any database work.
        form_case(
            "client_credentials: a PAT with a bad checksum as client_secret",
            &[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &flipped)],
            401,
            "invalid_client",
        ),
    ];
    // Each case is distinct (a copy-pasted case would test one thing twice under two names),
    // and between them they cover every error the token endpoint answers for bad input.
    let names: HashSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let errors: HashSet<&str> = cases.iter().map(|c| c.error).collect();
    for e in ["invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type"] {
        assert!(errors.contains(e), "no case expects {e}: {errors:?}");
    }

    let mut grant_bodies = HashSet::new();
    let mut problems = Vec::new();
    for c in &cases {
        let path = if c.name == "GET with query parameters" {
            format!("/oauth/token?grant_type=refresh_token&refresh_token={live}")
        } else {
            "/oauth/token".to_string()
        };
        let before = s.snapshot();
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = s.raw(c.method, &path, &headers, &c.body);
        let mut bad = |what: String| problems.push(format!("case {:?}: {what}", c.name));
        if r.status != c.status {
            bad(format!("status {} (expected {})", r.status, c.status));
        }
        if r.body["error"] != c.error || !r.body["error_description"].is_string() {
            bad(format!(
                "body is not the RFC 6749 error {:?} (Content-Type {:?}): {}",
                c.error,
                r.header("Content-Type"),
                redact(&r.text)
            ));
        }
        if r.body.get("access_token").is_some() {
            bad("an access token was issued".into());
        }
        if c.basic_challenge && r.header("WWW-Authenticate") != Some("Basic realm=\"tokend\"") {
            bad(format!("WWW-Authenticate is {:?}", r.header("WWW-Authenticate")));
        }
        let (rows, audit) = split_audit(&before);
        let (rows2, audit2) = split_audit(&s.snapshot());
        if rows2 != rows {
            bad(format!("the database changed: {rows:?} → {rows2:?}"));
        }
        if audit2 != audit + c.audit {
            bad(format!("{} audit events written (expected {})", audit2 - audit, c.audit));
        }
        if c.error == "invalid_grant" {
            grant_bodies.insert(r.text.clone());
        }
    }
    assert!(problems.is_empty(), "{} of {} cases failed:\n{}", problems.len(), cases.len(), problems.join("\n"));
    assert_eq!(grant_bodies.len(), 1, "invalid_grant never says which check failed: {grant_bodies:?}");
    // Nothing was revoked or broken along the way.
    s.exchange_ok(&live);
    let cc = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&client_id, &client_secret)));
    assert_eq!(cc.status, 200, "{}", redact(&cc.text));
}

// ---- concurrency ----

fn concurrent_exchange_during_revoke(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, secret) = s.pat(&owner, json!({"name": "hot", "ttl_days": 5}));
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(Instant, Instant, u16, String)>> = Mutex::new(Vec::new());
    // Synchronisation by condition, not by sleeping: the revoke waits until exchanges have
    // completed, and the stop waits until exchanges started after the revoke's answer have
    // completed. The deadlines only bound a hang.
    let completed = AtomicUsize::new(0);
    let revoked_at: OnceLock<Instant> = OnceLock::new();
    let completed_after = AtomicUsize::new(0);
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "{what} within 60 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let (revoke_start, revoke_done) = std::thread::scope(|scope| {
        for _ in 0..50 {
            scope.spawn(|| {
                let mut local = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let t0 = Instant::now();
                    let r = s.exchange(&secret);
                    let t1 = Instant::now();
                    local.push((t0, t1, r.status, r.body["error"].as_str().unwrap_or("").to_string()));
                    completed.fetch_add(1, Ordering::SeqCst);
                    if revoked_at.get().is_some_and(|done| t0 > *done) {
                        completed_after.fetch_add(1, Ordering::SeqCst);
                    }
                }
                results.lock().unwrap().extend(local);
            });
        }
        // Let exchanges run, then revoke.
        wait_for("100 exchanges completed before the revoke", &|| completed.load(Ordering::SeqCst) >= 100);
        let start = Instant::now();
        let r = s.delete(&format!("/api/v1/me/tokens/{id}"), &owner);
        let done = Instant::now();
        assert_eq!(r.status, 204, "{}", redact(&r.text));
        revoked_at.set(done).unwrap();
        wait_for("100 exchanges started after the revoke completed", &|| completed_after.load(Ordering::SeqCst) >= 100);
        stop.store(true, Ordering::SeqCst);
        (start, done)
    });
    let results = results.into_inner().unwrap();
    let mut ok_before = 0;
    let mut after = 0;
    for (t0, t1, status, error) in &results {
        assert!(
            *status == 200 || (*status == 400 && error == "invalid_grant"),
            "an exchange answered {status} {error:?} (expected success or invalid_grant)"
        );
        if *t1 < revoke_start {
            assert_eq!(*status, 200, "an exchange that ended before the revoke started failed");
            ok_before += 1;
        }
        if *t0 > revoke_done {
            assert_eq!(
                (*status, error.as_str()),
                (400, "invalid_grant"),
                "an exchange started after the revoke's 204 succeeded"
            );
            after += 1;
        }
    }
    assert!(ok_before > 0, "no exchange completed before the revoke ({} total)", results.len());
    assert!(after > 0, "no exchange started after the revoke ({} total)", results.len());
    assert_invalid_grant(&s.exchange(&secret), "");
    assert_eq!(my_token(&s, &owner, &id)["status"], "revoked");
}

/// Many failed exchanges from one address: further failures answer 429 with Retry-After,
/// and a minute later 400 again. A live token is never refused because others failed
/// (API.md): it is exchanged while the address is throttled.
fn token_endpoint_throttles_failures(b: &Backend) {
    let s = b.start_with(|c| c.token_failures_per_minute = 5);
    let bogus = "tkd_pat_not-a-real-token";
    for i in 0..5 {
        let r = s.exchange(bogus);
        assert_eq!(r.status, 400, "attempt {i}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_grant");
    }
    let r = s.exchange(bogus);
    assert_eq!(r.status, 429, "{}", r.text);
    let retry: u64 = r.header("Retry-After").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.body["error"], "slow_down", "{}", r.text);
    let r = s.exchange(&s.owner_pat);
    assert_eq!(r.status, 200, "valid credentials while the address is throttled: {}", r.text);
    s.clock.advance(61);
    let r = s.exchange(bogus);
    assert_eq!(r.status, 400, "after the window: {}", r.text);
}

backend_tests!(
    token_endpoint_throttles_failures,
    create_shows_secret_once_and_record,
    create_validation,
    create_ttl_follows_policy,
    roles_default_and_must_be_held,
    pat_derived_access_token_cannot_mint,
    exchange_refresh_token_grant,
    exchange_token_exchange_grant,
    scope_narrowing,
    owner_demoted_gets_fewer_roles,
    owner_disabled_or_deleted,
    expiry_with_fixed_clock,
    idle_ttl_without_use,
    idle_ttl_with_use,
    idle_ttl_use_extends,
    idle_check_sees_use_during_flush,
    revoke_one,
    revoke_all,
    rotate,
    patch_rename,
    rfc7009_revoke,
    audience_rules,
    usage_recorded,
    token_endpoint_bad_input,
    concurrent_exchange_during_revoke,
);
