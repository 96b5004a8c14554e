//! Privilege escalation through principals and leaked API tokens (review findings).
mod common;
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
    assert_eq!(r.status, 422, "admin mints an org:owner token: {}", r.text);
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
    let derived = s.exchange_ok(&s.owner_pat);
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "bot", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let (app, _, _) = s.app(&owner, json!({"name": "app", "roles": ["org:member"]}));
    let before = s.data_snapshot();
    let attempts = [
        ("POST", format!("/api/v1/service-accounts/{sa}/tokens"), Some(json!({"name": "x", "ttl_days": 1}))),
        ("POST", "/api/v1/apps".to_string(), Some(json!({"name": "x", "roles": ["org:member"]}))),
        ("POST", format!("/api/v1/apps/{app}/secret"), None),
        ("POST", "/api/v1/users".to_string(), Some(json!({"email": "x@example.test", "password": "password-123"}))),
        ("PATCH", format!("/api/v1/users/{}", s.owner_id), Some(json!({"password": "new-password-123"}))),
        ("POST", "/api/v1/me/tokens".to_string(), Some(json!({"name": "x", "ttl_days": 1}))),
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
    let (_, cid, secret) = s.app(&owner, json!({"name": "rs", "roles": ["org:member"]}));
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.form("/oauth/introspect", &[("token", &user)], Some((&cid, &secret)));
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_eq!(r.body["roles"], json!(["org:member"]), "{}", r.text);
    assert_eq!(r.body["scope"], "org:member", "{}", r.text);
}

backend_tests!(
    admin_cannot_borrow_owner_roles_from_a_service_account,
    leaked_api_token_cannot_mint_credentials,
    introspection_scope_follows_demotion,
);
