//! Privilege escalation through principals and leaked API tokens (review findings).
use crate::common;
use common::Backend;
use serde_json::json;

/// An admin cannot reach org:owner through a service account that holds it: not by minting
/// a token for it, nor by changing or deleting it.
fn admin_cannot_borrow_owner_roles_from_a_service_account(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "root-bot", "roles": ["org:owner"]}));
    assert_eq!(sa.status, 201, "{}", sa.text);
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let before = s.data_snapshot();
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &admin, json!({"name": "mine", "ttl_days": 1}));
    assert_eq!(r.status, 403, "admin mints a token of an org:owner account: {}", r.text);
    let r = s.patch(&format!("/api/v1/service-accounts/{sa}"), &admin, json!({"name": "renamed"}));
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s.delete(&format!("/api/v1/service-accounts/{sa}"), &admin);
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(s.data_snapshot(), before, "refusals change nothing");
    // The owner can.
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner, json!({"name": "ok", "ttl_days": 1}));
    assert_eq!(r.status, 201, "{}", r.text);
}

/// An access token exchanged from an API token (even one holding org:admin or org:owner)
/// cannot mint or reset credentials: service-account tokens, apps, app secrets, passwords.
fn leaked_api_token_cannot_mint_credentials(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let derived = s.exchange_api(&s.owner_pat);
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "bot", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let (app, _, _) = s.app(&owner, json!({"name": "app", "roles": ["org:member"]}));
    let before = s.data_snapshot();
    let attempts = [
        ("POST", format!("/api/v1/service-accounts/{sa}/tokens"), Some(json!({"name": "x", "ttl_days": 1}))),
        ("POST", "/api/v1/apps".to_string(), Some(json!({"name": "x", "roles": ["org:member"]}))),
        ("POST", format!("/api/v1/apps/{app}/secret"), None),
        ("POST", format!("/api/v1/users/{}/password-reset", s.owner_id), None),
        (
            "PUT",
            "/api/v1/me/password".to_string(),
            Some(json!({"current_password": "owner-password-123", "new_password": "new-password-123"})),
        ),
        ("POST", "/api/v1/me/tokens".to_string(), Some(json!({"name": "x", "ttl_days": 1, "roles": ["org:member"]}))),
    ];
    for (method, path, body) in &attempts {
        let r = s.call(method, path, Some(&derived), body.as_ref());
        assert_eq!(r.status, 403, "{method} {path} with a PAT-derived token: {}", r.text);
    }
    assert_eq!(s.data_snapshot(), before, "refusals change nothing");
    // Reading and non-credential changes still work with it.
    assert_eq!(s.get("/api/v1/users", &derived).status, 200);
    let r = s.post("/api/v1/users", &derived, json!({"email": "nopw@example.test"}));
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Introspection reports the roles and scope in effect now, not those at issue.
fn introspection_scope_follows_demotion(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, user) = s.user(&owner, "dev@example.test", &["org:admin"]);
    let (_, cid, secret) = s.app(&owner, json!({"name": "rs", "roles": ["org:member"], "introspect": true}));
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.form("/oauth/introspect", &[("token", &user)], Some((&cid, &secret)));
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_eq!(r.body["roles"], json!(["org:member"]), "{}", r.text);
    assert_eq!(r.body["scope"], "org:member", "{}", r.text);
}

/// Deleting a custom role also takes it out of API tokens that still carry it (an owner
/// holds every role without being granted it, so the delete sees no holder).
fn deleted_role_leaves_owner_tokens(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    let (_, pat) = s.pat(&owner, json!({"name": "m", "ttl_days": 1, "roles": ["metrics:read", "org:member"]}));
    let claims = s.verify_resource(&s.exchange_ok(&pat));
    assert_eq!(claims["roles"], json!(["metrics:read", "org:member"]));
    let r = s.delete("/api/v1/roles/metrics:read", &owner);
    assert_eq!(r.status, 204, "{}", r.text);
    let claims = s.verify_resource(&s.exchange_ok(&pat));
    assert_eq!(claims["roles"], json!(["org:member"]), "the deleted role is gone from the token");
}

fn exchange_from(s: &common::Server, pat: &str, xff: &str) {
    let body = format!("grant_type=refresh_token&refresh_token={pat}");
    let r = s.raw(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", xff)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn last_used_ip(s: &common::Server, at: &str, id: &str) -> serde_json::Value {
    s.flush_usage();
    s.get(&format!("/api/v1/me/tokens/{id}"), at).body["last_used_ip"].clone()
}

/// X-Forwarded-For counts only from a trusted proxy, and only its nearest untrusted hop.
fn forwarded_for_only_from_trusted_proxies(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (id, pat) = s.pat(&at, json!({"name": "p", "ttl_days": 1}));
    exchange_from(&s, &pat, "203.0.113.7");
    assert_eq!(last_used_ip(&s, &at, &id), "127.0.0.1", "untrusted peer: header ignored");

    let s = b.start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    let at = s.owner_login();
    let (id, pat) = s.pat(&at, json!({"name": "p", "ttl_days": 1}));
    exchange_from(&s, &pat, "198.51.100.1, 203.0.113.7");
    assert_eq!(last_used_ip(&s, &at, &id), "203.0.113.7", "the hop the proxy saw, not the client's claim");
}

backend_tests!(
    forwarded_for_only_from_trusted_proxies,
    deleted_role_leaves_owner_tokens,
    admin_cannot_borrow_owner_roles_from_a_service_account,
    leaked_api_token_cannot_mint_credentials,
    introspection_scope_follows_demotion,
);
