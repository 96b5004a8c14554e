//! The server keeps to its OpenAPI document where schemathesis found it did not (issue #11):
//! undeclared methods are 405 with Allow, unknown filter values and `null` for
//! non-nullable body fields are 422.
use crate::common;
use common::Backend;
use serde_json::json;

/// Every known path answers an undeclared method with 405 and an Allow header naming the
/// declared ones, in the error format of its scope.
fn undeclared_methods_are_405(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let cases = [
        ("POST", "/healthz", "GET"),
        ("DELETE", "/readyz", "GET"),
        ("PUT", "/metrics", "GET"),
        ("POST", "/openapi.json", "GET"),
        ("PATCH", "/.well-known/jwks.json", "GET"),
        ("DELETE", "/.well-known/oauth-authorization-server", "GET"),
        ("PUT", "/.well-known/openid-configuration", "GET"),
    ];
    for (method, path, allow) in cases {
        let r = s.raw(method, path, &[], b"");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // /api/v1: problem+json, also for an authenticated caller.
    for (method, path, allowed) in [
        ("DELETE", "/api/v1/me", vec!["GET"]),
        ("PUT", "/api/v1/users", vec!["GET", "POST"]),
        ("GET", "/api/v1/login", vec!["POST"]),
        ("PATCH", "/api/v1/audit", vec!["GET"]),
    ] {
        let r = s.call(method, path, Some(&at), None);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert!(r.header("content-type").unwrap().starts_with("application/problem+json"), "{method} {path}");
        assert_eq!(r.body["status"], 405);
        let mut got: Vec<String> = r.header("allow").unwrap().split(',').map(|m| m.trim().to_string()).collect();
        got.sort();
        assert_eq!(got, allowed, "{method} {path}");
    }
    // /oauth: the RFC 6749 body.
    let r = s.raw("GET", "/oauth/token", &[], b"");
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.body["error"], "invalid_request");
    // Unknown paths stay 404.
    assert_eq!(s.raw("GET", "/nowhere", &[], b"").status, 404);
    assert_eq!(s.get("/api/v1/nowhere", &at).status, 404);
}

/// An `outcome` filter outside the documented enum is refused, not silently matched.
fn audit_outcome_filter_is_validated(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    for ok in ["success", "failure", "denied"] {
        let r = s.get(&format!("/api/v1/audit?outcome={ok}"), &at);
        assert_eq!(r.status, 200, "{ok}: {}", r.body);
    }
    let r = s.get("/api/v1/audit?outcome=maybe", &at);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "outcome");
}

/// Optional body fields may be absent but not `null` (none of them is nullable in the
/// document): 422 and nothing changed.
fn null_for_non_nullable_fields_is_422(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (app_id, _, _) = s.app(&at, json!({"name": "nulls"}));
    let (tok_id, _) = s.pat(&at, json!({"name": "nulls"}));
    let sa = s.post("/api/v1/service-accounts", &at, json!({"name": "nulls"}));
    assert_eq!(sa.status, 201, "{}", sa.body);
    let sa_id = sa.body["id"].as_str().unwrap().to_string();
    let (user_id, _) = s.user(&at, "nulls@example.test", &["org:member"]);
    let hook = s.post("/api/v1/webhooks", &at, json!({"url": "https://nulls.example/", "events": ["token.created"]}));
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook_id = hook.body["id"].as_str().unwrap().to_string();
    let cases = [
        (format!("/api/v1/apps/{app_id}"), "disabled"),
        (format!("/api/v1/apps/{app_id}"), "introspect"),
        (format!("/api/v1/apps/{app_id}"), "name"),
        (format!("/api/v1/apps/{app_id}"), "access_token_ttl_seconds"),
        (format!("/api/v1/service-accounts/{sa_id}"), "disabled"),
        (format!("/api/v1/service-accounts/{sa_id}"), "roles"),
        (format!("/api/v1/users/{user_id}"), "disabled"),
        (format!("/api/v1/users/{user_id}"), "name"),
        (format!("/api/v1/me/tokens/{tok_id}"), "description"),
        (format!("/api/v1/webhooks/{hook_id}"), "url"),
        (format!("/api/v1/webhooks/{hook_id}"), "events"),
        (format!("/api/v1/webhooks/{hook_id}"), "enabled"),
        (format!("/api/v1/webhooks/{hook_id}"), "description"),
    ];
    for (path, field) in cases {
        let before = s.get(&path, &at);
        assert_eq!(before.status, 200, "{path}: {}", before.body);
        let r = s.patch(&path, &at, json!({ field: null }));
        assert_eq!(r.status, 422, "{path} {field}: null: {}", r.body);
        let after = s.get(&path, &at);
        assert_eq!(before.body, after.body, "{path}: a refused PATCH changed nothing");
        // Absent is still fine.
        assert_eq!(s.patch(&path, &at, json!({})).status, 200, "{path}: empty PATCH");
    }
    // Creation bodies too.
    let r = s.post("/api/v1/apps", &at, json!({"name": "n", "description": null}));
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s.post("/api/v1/users", &at, json!({"email": "n@example.test", "name": null}));
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s.post("/api/v1/me/tokens", &at, json!({"name": "n", "roles": ["org:member"], "ttl_days": null}));
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s.post(
        "/api/v1/webhooks",
        &at,
        json!({"url": "https://n.example/", "events": ["token.created"], "enabled": null}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    // The policy's idle_ttl_days is documented nullable and stays so.
    assert_eq!(s.put("/api/v1/policy", &at, json!({"idle_ttl_days": null})).status, 200);
}

/// JSON Schema's `integer` admits `30.0`: every integer body field takes a whole number
/// written with a zero fraction, and refuses real fractions, changing nothing.
fn integral_floats_are_integers(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let r = s.put("/api/v1/policy", &at, json!({"idle_ttl_days": 397.0, "personal_token_max_ttl_days": 90.0}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["idle_ttl_days"].as_i64(), r.body["personal_token_max_ttl_days"].as_i64()),
        (Some(397), Some(90))
    );
    let before = s.get("/api/v1/policy", &at).body;
    for bad in [json!({"idle_ttl_days": 397.5}), json!({"max_tokens_per_service_account": 1e300})] {
        let r = s.put("/api/v1/policy", &at, bad.clone());
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/api/v1/policy", &at).body, before, "refused updates changed nothing");

    let r = s.post("/api/v1/me/tokens", &at, json!({"name": "f", "roles": ["org:member"], "ttl_days": 30.0}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.post("/api/v1/me/tokens", &at, json!({"name": "g", "roles": ["org:member"], "ttl_days": 30.5}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "ttl_days", "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().starts_with("ttl_days: "), "{}", r.body);
    let r = s.post("/api/v1/me/tokens", &at, json!({"name": "h", "roles": ["org:member"], "ttl_days": 1.3e24}));
    crate::common::assert::invalid_field(&r, "ttl_days", "a whole number beyond i64");
    let r = s.post("/api/v1/apps", &at, json!({"name": "f", "access_token_ttl_seconds": 600.0}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["access_token_ttl_seconds"].as_i64(), Some(600), "{}", r.body);
    let r = s.post("/api/v1/apps", &at, json!({"name": "g", "access_token_ttl_seconds": 600.25}));
    assert_eq!(r.status, 422, "{}", r.body);
}

/// The document's `maxLength: 254` on a new user's email counts the characters as sent,
/// surrounding whitespace included (schemathesis found a 257-character value accepted
/// because the server measured it after trimming).
fn email_max_length_counts_what_was_sent(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    // Everything but the audit log (a refused call is audited).
    let data = || s.snapshot().into_iter().filter(|(t, _)| !t.starts_with("audit_events")).collect::<Vec<_>>();
    let before = data();
    let padded = format!("{}{}@x.test", " ".repeat(20), "a".repeat(230));
    assert_eq!(padded.chars().count(), 257);
    let r = s.post("/api/v1/users", &at, json!({"email": padded, "roles": ["org:member"]}));
    crate::common::assert::invalid_field(&r, "email", "257 characters as sent");
    assert_eq!(data(), before, "nothing created");
    let exact = format!("{}@x.test", "b".repeat(247));
    assert_eq!(exact.chars().count(), 254);
    let r = s.post("/api/v1/users", &at, json!({"email": exact, "name": "Long Mail", "roles": ["org:member"]}));
    assert_eq!(r.status, 201, "{}", r.body);
}

backend_tests!(
    undeclared_methods_are_405,
    audit_outcome_filter_is_validated,
    null_for_non_nullable_fields_is_422,
    integral_floats_are_integers,
    email_max_length_counts_what_was_sent,
);
