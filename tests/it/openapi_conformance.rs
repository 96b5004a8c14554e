//! The server keeps to its OpenAPI document where schemathesis found it did not (issue #11):
//! undeclared methods are 405 with Allow, unknown filter values and `null` for
//! non-nullable body fields are 422. And real answers of every kind validate against the
//! schemas the document (derived with utoipa) declares for their operation and status.
use crate::common;
use common::Backend;
use serde_json::{json, Value};

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

/// Validates `v` against `schema` (a schema of the OpenAPI document, typically a
/// `$ref` to `#/components/schemas/…`) with the `jsonschema` crate (JSON Schema 2020-12,
/// the dialect of OpenAPI 3.1): the schema is given the document's `components`, so its
/// references resolve where the document says. Answers the errors, each with the path of
/// the value at fault.
fn check(doc: &Value, schema: &Value, v: &Value) -> Vec<String> {
    let mut root = schema.clone();
    root.as_object_mut().expect("a schema object").insert("components".into(), doc["components"].clone());
    let validator =
        jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("a valid JSON Schema: {e}: {schema}"));
    validator.iter_errors(v).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// The schema the document declares for `status` of `method path` (a path template), for
/// the answer's content type.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16, content_type: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let r = &op["responses"][status.to_string()];
    assert!(r.is_object(), "{method} {path}: status {status} is not documented");
    let ct = content_type.split(';').next().unwrap().trim();
    let s = &r["content"][ct]["schema"];
    assert!(s.is_object(), "{method} {path} {status}: no schema for {ct}: {r}");
    s
}

#[track_caller]
fn conforms(doc: &Value, method: &str, template: &str, r: &common::Resp) {
    let ct = r.header("content-type").unwrap_or("");
    let schema = response_schema(doc, method, template, r.status, ct);
    let errors = check(doc, schema, &r.body);
    assert!(errors.is_empty(), "{method} {template} {}: {errors:?}\n{}", r.status, r.body);
}

/// Real answers of every kind (views, pages, created secrets, problems, the /oauth bodies,
/// discovery) validate against the document's schema for their operation and status; the
/// checker itself refuses a body that does not fit.
fn responses_match_the_generated_schemas(b: &Backend) {
    let s = b.start();
    let doc: Value =
        serde_json::from_str(&ureq::get(&s.url("/openapi.json")).call().unwrap().into_string().unwrap()).unwrap();
    let at = s.owner_login();
    let login =
        s.call("POST", "/api/v1/login", None, Some(&json!({"email": s.owner_email, "password": s.owner_password})));
    conforms(&doc, "POST", "/api/v1/login", &login);
    let bad_login =
        s.call("POST", "/api/v1/login", None, Some(&json!({"email": s.owner_email, "password": "nope-nope"})));
    conforms(&doc, "POST", "/api/v1/login", &bad_login);
    conforms(&doc, "GET", "/api/v1/me", &s.get("/api/v1/me", &at));

    let created = s.post("/api/v1/me/tokens", &at, json!({"name": "conf", "roles": ["org:member"], "ttl_days": 7}));
    conforms(&doc, "POST", "/api/v1/me/tokens", &created);
    let pat = created.body["token"].as_str().unwrap().to_string();
    let tok_id = created.body["id"].as_str().unwrap().to_string();
    s.exchange_ok(&pat);
    s.flush_usage();
    conforms(&doc, "GET", "/api/v1/me/tokens", &s.get("/api/v1/me/tokens?sort=name&order=desc", &at));
    conforms(&doc, "GET", "/api/v1/me/tokens/{id}", &s.get(&format!("/api/v1/me/tokens/{tok_id}"), &at));
    conforms(&doc, "GET", "/api/v1/me/tokens/{id}", &s.get("/api/v1/me/tokens/nope", &at));
    let bad = s.post("/api/v1/me/tokens", &at, json!({"name": "", "roles": ["org:member"]}));
    assert_eq!(bad.status, 422);
    conforms(&doc, "POST", "/api/v1/me/tokens", &bad);

    let app = s.post("/api/v1/apps", &at, json!({"name": "conf-app", "roles": ["org:member"], "introspect": true}));
    conforms(&doc, "POST", "/api/v1/apps", &app);
    let cid = app.body["client_id"].as_str().unwrap().to_string();
    conforms(&doc, "GET", "/api/v1/apps", &s.get("/api/v1/apps", &at));

    let (uid, _) = s.user(&at, "conf@example.test", &["org:member"]);
    conforms(&doc, "GET", "/api/v1/users", &s.get("/api/v1/users?disabled=false", &at));
    conforms(&doc, "GET", "/api/v1/users/{id}", &s.get(&format!("/api/v1/users/{uid}"), &at));
    let code = s.call("POST", &format!("/api/v1/users/{uid}/password-reset"), Some(&at), None);
    conforms(&doc, "POST", "/api/v1/users/{id}/password-reset", &code);

    let sa = s.post("/api/v1/service-accounts", &at, json!({"name": "conf-sa", "roles": ["org:member"]}));
    conforms(&doc, "POST", "/api/v1/service-accounts", &sa);
    let sa_id = sa.body["id"].as_str().unwrap().to_string();
    let sat = s.post(&format!("/api/v1/service-accounts/{sa_id}/tokens"), &at, json!({"name": "t"}));
    conforms(&doc, "POST", "/api/v1/service-accounts/{id}/tokens", &sat);
    conforms(
        &doc,
        "GET",
        "/api/v1/service-accounts/{id}/tokens",
        &s.get(&format!("/api/v1/service-accounts/{sa_id}/tokens"), &at),
    );
    conforms(&doc, "GET", "/api/v1/service-accounts", &s.get("/api/v1/service-accounts", &at));

    conforms(&doc, "GET", "/api/v1/roles", &s.get("/api/v1/roles", &at));
    conforms(&doc, "GET", "/api/v1/tokens", &s.get("/api/v1/tokens?sort=owner", &at));
    conforms(&doc, "GET", "/api/v1/tokens", &s.get("/api/v1/tokens?nope=1", &at));
    conforms(
        &doc,
        "POST",
        "/api/v1/tokens/{id}/revoke",
        &s.call("POST", &format!("/api/v1/tokens/{tok_id}/revoke"), Some(&at), None),
    );
    conforms(&doc, "GET", "/api/v1/policy", &s.get("/api/v1/policy", &at));
    conforms(&doc, "PUT", "/api/v1/policy", &s.put("/api/v1/policy", &at, json!({"idle_ttl_days": 90})));
    let saved = s.post("/api/v1/saved-searches", &at, json!({"name": "active", "query": "status=active"}));
    conforms(&doc, "POST", "/api/v1/saved-searches", &saved);
    conforms(&doc, "GET", "/api/v1/saved-searches", &s.get("/api/v1/saved-searches", &at));
    conforms(&doc, "GET", "/api/v1/audit", &s.get("/api/v1/audit?order=desc", &at));
    conforms(&doc, "DELETE", "/api/v1/me/tokens", &s.delete("/api/v1/me/tokens", &at));
    conforms(&doc, "GET", "/api/v1/me", &s.call("GET", "/api/v1/me", None, None));

    // Token lifecycle: one-token reads, rotations, filtered lists, the grace body, the
    // policy's new fields.
    let lc = s.post("/api/v1/me/tokens", &at, json!({"name": "lc", "roles": ["org:member"], "ttl_days": 3}));
    assert_eq!(lc.status, 201, "{}", lc.body);
    let (lc_id, lc_secret) =
        (lc.body["id"].as_str().unwrap().to_string(), lc.body["token"].as_str().unwrap().to_string());
    let one = s.get(&format!("/api/v1/tokens/{lc_id}"), &at);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["owner_email"], json!(s.owner_email));
    conforms(&doc, "GET", "/api/v1/tokens/{id}", &one);
    conforms(&doc, "GET", "/api/v1/tokens/{id}", &s.get("/api/v1/tokens/nope", &at));
    let soon = s.get("/api/v1/me/tokens?status=expiring_soon&sort=expires_at", &at);
    assert_eq!(soon.body["total_count"], 1, "{}", soon.body);
    conforms(&doc, "GET", "/api/v1/me/tokens", &soon);
    conforms(&doc, "GET", "/api/v1/me/tokens", &s.get("/api/v1/me/tokens?q=lc", &at));
    conforms(&doc, "GET", "/api/v1/tokens", &s.get("/api/v1/tokens?expires_within_days=7&status=active", &at));
    let sa_tok_id = sat.body["id"].as_str().unwrap().to_string();
    let sa_tok = format!("/api/v1/service-accounts/{sa_id}/tokens/{sa_tok_id}");
    conforms(&doc, "GET", "/api/v1/service-accounts/{id}/tokens/{tid}", &s.get(&sa_tok, &at));
    conforms(
        &doc,
        "GET",
        "/api/v1/service-accounts/{id}/tokens",
        &s.get(&format!("/api/v1/service-accounts/{sa_id}/tokens?expires_before=2999-01-01T00:00:00Z"), &at),
    );
    let sa_rotated = s.call("POST", &format!("{sa_tok}/rotate"), Some(&at), None);
    assert_eq!(sa_rotated.status, 201, "{}", sa_rotated.body);
    conforms(&doc, "POST", "/api/v1/service-accounts/{id}/tokens/{tid}/rotate", &sa_rotated);
    let at_expiry = s.post(
        "/api/v1/me/tokens",
        &at,
        json!({"name": "exact", "roles": ["org:member"], "expires_at": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(at_expiry.status, 422, "{}", at_expiry.body);
    conforms(&doc, "POST", "/api/v1/me/tokens", &at_expiry);
    let policy = s.put("/api/v1/policy", &at, json!({"allow_self_rotation": true, "retention_days": 30}));
    assert_eq!(policy.body["allow_self_rotation"], true, "{}", policy.body);
    assert_eq!(policy.body["retention_days"], 30, "{}", policy.body);
    conforms(&doc, "PUT", "/api/v1/policy", &policy);
    conforms(&doc, "GET", "/api/v1/policy", &s.get("/api/v1/policy", &at));
    let exchanged = s.form("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", &lc_secret)], None);
    assert!(exchanged.header("tokend-api-token-expires").is_some(), "{:?}", exchanged.body);
    conforms(&doc, "POST", "/oauth/token", &exchanged);
    let rotated = s.call("POST", "/api/v1/tokens/self/rotate", Some(&lc_secret), None);
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    conforms(&doc, "POST", "/api/v1/tokens/self/rotate", &rotated);
    let refused = s.call("POST", "/api/v1/tokens/self/rotate", Some(&at), None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    conforms(&doc, "POST", "/api/v1/tokens/self/rotate", &refused);
    let app_id = app.body["id"].as_str().unwrap().to_string();
    let graced = s.post(&format!("/api/v1/apps/{app_id}/secret"), &at, json!({"grace_period_seconds": 3600}));
    assert_eq!(graced.status, 201, "{}", graced.body);
    assert!(graced.body["previous_secret_expires_at"].is_string(), "{}", graced.body);
    conforms(&doc, "POST", "/api/v1/apps/{id}/secret", &graced);
    conforms(&doc, "GET", "/api/v1/apps/{id}", &s.get(&format!("/api/v1/apps/{app_id}"), &at));
    let too_long = s.post(&format!("/api/v1/apps/{app_id}/secret"), &at, json!({"grace_period_seconds": 604801}));
    assert_eq!(too_long.status, 422, "{}", too_long.body);
    conforms(&doc, "POST", "/api/v1/apps/{id}/secret", &too_long);
    // From here on the app authenticates with its new secret.
    let secret = graced.body["client_secret"].as_str().unwrap().to_string();

    // Webhooks: a view, a page, a rolled secret, a queued test and its (failed) delivery.
    let hook = s.post(
        "/api/v1/webhooks",
        &at,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["token.created", "token.revoked"], "description": "conf"}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    conforms(&doc, "POST", "/api/v1/webhooks", &hook);
    let hook_id = hook.body["id"].as_str().unwrap().to_string();
    let hook_path = format!("/api/v1/webhooks/{hook_id}");
    conforms(&doc, "GET", "/api/v1/webhooks", &s.get("/api/v1/webhooks?sort=url", &at));
    conforms(&doc, "GET", "/api/v1/webhooks/{id}", &s.get(&hook_path, &at));
    conforms(&doc, "GET", "/api/v1/webhooks/{id}", &s.get("/api/v1/webhooks/nope", &at));
    conforms(&doc, "PATCH", "/api/v1/webhooks/{id}", &s.patch(&hook_path, &at, json!({"events": ["policy.changed"]})));
    let bad_hook = s.patch(&hook_path, &at, json!({"events": ["nope"]}));
    assert_eq!(bad_hook.status, 422, "{}", bad_hook.body);
    conforms(&doc, "PATCH", "/api/v1/webhooks/{id}", &bad_hook);
    let rolled = s.call("POST", &format!("{hook_path}/secret"), Some(&at), None);
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    conforms(&doc, "POST", "/api/v1/webhooks/{id}/secret", &rolled);
    let queued = s.call("POST", &format!("{hook_path}/test"), Some(&at), None);
    assert_eq!(queued.status, 202, "{}", queued.body);
    conforms(&doc, "POST", "/api/v1/webhooks/{id}/test", &queued);
    s.deliver_all();
    let log = s.get(&format!("{hook_path}/deliveries?order=desc"), &at);
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(log.body["items"][0]["event_id"] == queued.body["event_id"], "{}", log.body);
    assert_eq!(log.body["items"][0]["outcome"], "failure", "{}", log.body);
    conforms(&doc, "GET", "/api/v1/webhooks/{id}/deliveries", &log);
    let deleted = s.delete(&hook_path, &at);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    // Every answer carries the request id the document names on every response.
    let documented = &doc["paths"]["/api/v1/webhooks/{id}"]["delete"]["responses"]["204"]["headers"];
    assert!(documented["X-Request-Id"].is_object(), "{documented}");
    assert!(deleted.header("x-request-id").is_some_and(|v| !v.is_empty()));

    // /oauth: token, error, introspection of both kinds, discovery.
    let tr = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
    conforms(&doc, "POST", "/oauth/token", &tr);
    let access = tr.body["access_token"].as_str().unwrap().to_string();
    conforms(&doc, "POST", "/oauth/token", &s.form("/oauth/token", &[("grant_type", "password")], None));
    let sat_secret = sat.body["token"].as_str().unwrap().to_string();
    for token in [access.as_str(), sat_secret.as_str(), "nothing"] {
        let r = s.form("/oauth/introspect", &[("token", token)], Some((&cid, &secret)));
        conforms(&doc, "POST", "/oauth/introspect", &r);
    }
    conforms(
        &doc,
        "GET",
        "/.well-known/oauth-authorization-server",
        &s.raw("GET", "/.well-known/oauth-authorization-server", &[], b""),
    );
    conforms(&doc, "GET", "/.well-known/jwks.json", &s.raw("GET", "/.well-known/jwks.json", &[], b""));
    conforms(&doc, "GET", "/healthz", &s.raw("GET", "/healthz", &[], b""));
    conforms(&doc, "GET", "/readyz", &s.raw("GET", "/readyz", &[], b""));

    // The checker is not vacuous: a token record without its status, or with an unknown
    // field under a closed schema, is refused.
    let mut record = s.get(&format!("/api/v1/me/tokens/{tok_id}"), &at).body;
    record.as_object_mut().unwrap().remove("status");
    let errors = check(&doc, &json!({"$ref": "#/components/schemas/TokenView"}), &record);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("status"), "{errors:?}");
    let errors = check(&doc, &json!({"$ref": "#/components/schemas/PatchToken"}), &json!({"name": "x", "extra": 1}));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("extra"), "{errors:?}");
}

backend_tests!(
    responses_match_the_generated_schemas,
    undeclared_methods_are_405,
    audit_outcome_filter_is_validated,
    null_for_non_nullable_fields_is_422,
    integral_floats_are_integers,
    email_max_length_counts_what_was_sent,
);
