//! Issue 4: server-to-server apps (client_credentials), service accounts and their tokens,
//! RFC 7662 introspection, and real third-party clients (the `oauth2` crate, and the Node
//! clients of ../shared/clients when Node and their modules are present). All through HTTP.
use crate::common;
use crate::common::assert::{
    invalid_field as assert_invalid_field, oauth_error as assert_oauth_error, problem as assert_problem,
};
use crate::common::helpers::form_bearer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Backend, Resp, Server};
use serde_json::{json, Value};
use tokend::clock::Clock;

// ---------------------------------------------------------------- local helpers

/// client_credentials with client_secret_basic (the harness percent-encodes id and secret).
fn cc_basic(s: &Server, id: &str, secret: &str, extra: &[(&str, &str)]) -> Resp {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    s.form("/oauth/token", &pairs, Some((id, secret)))
}

/// client_credentials with client_secret_post.
fn cc_post(s: &Server, id: &str, secret: &str, extra: &[(&str, &str)]) -> Resp {
    let mut pairs = vec![("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    pairs.extend_from_slice(extra);
    s.form("/oauth/token", &pairs, None)
}

fn cc_token(s: &Server, id: &str, secret: &str) -> String {
    let r = cc_basic(s, id, secret, &[]);
    assert_eq!(r.status, 200, "client_credentials: {}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

fn introspect_app(s: &Server, id: &str, secret: &str, token: &str) -> Resp {
    s.form("/oauth/introspect", &[("token", token)], Some((id, secret)))
}

fn introspect_bearer(s: &Server, bearer: &str, token: &str) -> Resp {
    form_bearer(s, "/oauth/introspect", &[("token", token)], bearer)
}

#[track_caller]
fn assert_active(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: introspection answered {}", r.body);
    assert_eq!(r.body["active"], json!(true), "{what} should be active: {}", r.body);
}

#[track_caller]
fn assert_inactive(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: introspection answered {}", r.body);
    assert_eq!(r.body, json!({"active": false}), "{what} should be exactly {{\"active\":false}}");
}

/// The roles array, sorted. A missing or non-array `roles` fails (it is not an empty list:
/// an inactive introspection answer has no roles at all).
fn roles_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("roles must be an array, got {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Creates a service account; answers its id.
fn service_account(s: &Server, admin: &str, body: Value) -> String {
    let r = s.post("/api/v1/service-accounts", admin, body);
    assert_eq!(r.status, 201, "create service account: {}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn basic_header(raw: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

// ---------------------------------------------------------------- apps: management

fn apps_crud(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");

    let r = s.post(
        "/api/v1/apps",
        &at,
        json!({"name": "billing", "description": "nightly export", "roles": ["metrics:read"], "access_token_ttl_seconds": 600}),
    );
    assert_eq!(r.status, 201, "create app: {}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"), "the secret is shown once: no-store");
    let id = r.body["id"].as_str().unwrap().to_string();
    let client_id = r.body["client_id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("tkd_app_"), "client_id prefix");
    assert!(secret.starts_with("tkd_cs_"), "client_secret prefix");
    assert_eq!(r.body["name"], "billing");
    assert_eq!(r.body["description"], "nightly export");
    assert_eq!(roles_of(&r.body["roles"]), strs(&["metrics:read"]));
    assert_eq!(r.body["access_token_ttl_seconds"], 600);
    assert_eq!(r.body["disabled"], false);
    let hint = r.body["secret_hint"].as_str().unwrap_or("");
    assert!(!hint.is_empty() && hint.len() < secret.len(), "a non-empty hint, shorter than the secret");

    // GET and list never show the secret.
    let g = s.get(&format!("/api/v1/apps/{id}"), &at);
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["client_id"], json!(client_id));
    assert_eq!(g.body["name"], "billing");
    assert!(g.body.get("client_secret").is_none(), "GET must not answer client_secret");
    assert!(!g.text.contains(&secret), "GET must not contain the secret");
    let l = s.get("/api/v1/apps", &at);
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(l.body["total_count"], 1);
    assert_eq!(l.body["items"][0]["id"], json!(id));
    assert!(l.body["items"][0].get("client_secret").is_none(), "list must not answer client_secret");
    assert!(!l.text.contains(&secret), "list must not contain the secret");

    // A second app with the default TTL (TOKEND_ACCESS_TOKEN_TTL).
    let (id2, client_id2, secret2) = s.app(&at, json!({"name": "default-ttl"}));
    assert!(client_id2 != client_id, "client ids are unique");
    let g2 = s.get(&format!("/api/v1/apps/{id2}"), &at);
    assert_eq!(g2.body["access_token_ttl_seconds"], json!(s.state.cfg.access_token_ttl));
    assert_eq!(roles_of(&g2.body["roles"]), Vec::<String>::new());
    let l = s.get("/api/v1/apps?sort=name", &at);
    assert_eq!(l.body["total_count"], 2);
    assert!(!l.text.contains(&secret) && !l.text.contains(&secret2), "list must not contain secrets");
    assert_eq!(l.body["items"][0]["name"], "billing");
    assert_eq!(l.body["items"][1]["name"], "default-ttl");

    // PATCH: every field; client_id is stable.
    let p = s.patch(
        &format!("/api/v1/apps/{id}"),
        &at,
        json!({"name": "billing-2", "description": "hourly", "roles": [], "access_token_ttl_seconds": 900}),
    );
    assert_eq!(p.status, 200, "patch app: {}", p.body);
    assert_eq!(p.body["name"], "billing-2");
    assert_eq!(p.body["client_id"], json!(client_id), "client_id is stable");
    assert!(p.body.get("client_secret").is_none());
    let g = s.get(&format!("/api/v1/apps/{id}"), &at);
    assert_eq!(g.body["name"], "billing-2");
    assert_eq!(g.body["description"], "hourly");
    assert_eq!(roles_of(&g.body["roles"]), Vec::<String>::new());
    assert_eq!(g.body["access_token_ttl_seconds"], 900);
    assert_eq!(g.body["client_id"], json!(client_id));
    // The secret still works after a PATCH.
    let r = cc_basic(&s, &client_id, &secret, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["expires_in"], 900);

    // Unknown ids are 404.
    assert_problem(&s.get("/api/v1/apps/00000000-0000-0000-0000-000000000000", &at), 404, "get unknown app");
    assert_problem(&s.patch("/api/v1/apps/nope", &at, json!({"name": "x"})), 404, "patch unknown app");
    assert_problem(&s.delete("/api/v1/apps/nope", &at), 404, "delete unknown app");

    // DELETE.
    let d = s.delete(&format!("/api/v1/apps/{id}"), &at);
    assert_eq!(d.status, 204, "{}", d.text);
    assert_problem(&s.get(&format!("/api/v1/apps/{id}"), &at), 404, "deleted app");
    assert_problem(&s.delete(&format!("/api/v1/apps/{id}"), &at), 404, "deleting twice");
    let l = s.get("/api/v1/apps", &at);
    assert_eq!(l.body["total_count"], 1);
    assert_eq!(l.body["items"][0]["id"], json!(id2));

    // No bearer: 401.
    let r = s.call("GET", "/api/v1/apps", None, None);
    assert_problem(&r, 401, "list apps without a bearer");
}

fn app_ttl_bounds(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    for bad in [0, 299, 86_401, -1] {
        let before = s.data_snapshot();
        let r = s.post("/api/v1/apps", &at, json!({"name": "x", "access_token_ttl_seconds": bad}));
        assert_invalid_field(&r, "access_token_ttl_seconds", &format!("ttl {bad}"));
        assert!(r.body["detail"].as_str().unwrap().starts_with("access_token_ttl_seconds: "), "{}", r.body);
        assert_eq!(s.data_snapshot(), before, "a refused create changes nothing");
    }
    let (lo, lo_cid, lo_secret) = s.app(&at, json!({"name": "lo", "access_token_ttl_seconds": 300}));
    let (_, hi_cid, hi_secret) = s.app(&at, json!({"name": "hi", "access_token_ttl_seconds": 86_400}));
    let r = cc_basic(&s, &lo_cid, &lo_secret, &[]);
    assert_eq!(r.body["expires_in"], 300, "{}", r.body);
    let r = cc_basic(&s, &hi_cid, &hi_secret, &[]);
    assert_eq!(r.body["expires_in"], 86_400, "{}", r.body);
    let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 86_400);

    for bad in [299, 86_401] {
        let r = s.patch(&format!("/api/v1/apps/{lo}"), &at, json!({"access_token_ttl_seconds": bad}));
        assert_invalid_field(&r, "access_token_ttl_seconds", &format!("patch ttl {bad}"));
    }
    let g = s.get(&format!("/api/v1/apps/{lo}"), &at);
    assert_eq!(g.body["access_token_ttl_seconds"], 300, "a refused patch changes nothing");
}

fn app_roles_and_who(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");
    let (_, dev) = s.user(&at, "dev@example.test", &["org:developer"]);
    let (_, member) = s.user(&at, "member@example.test", &["org:member"]);
    let (_, admin) = s.user(&at, "admin@example.test", &["org:admin"]);

    // org:member cannot manage apps.
    let before = s.data_snapshot();
    assert_problem(&s.post("/api/v1/apps", &member, json!({"name": "m"})), 403, "member creates an app");
    assert_eq!(s.data_snapshot(), before);
    assert_problem(&s.get("/api/v1/apps", &member), 403, "member lists apps");

    // org:developer can, with roles it holds.
    let (dev_app, dev_cid, dev_secret) = s.app(&dev, json!({"name": "d", "roles": ["org:developer", "org:member"]}));
    assert_eq!(s.get("/api/v1/apps", &dev).status, 200);
    assert_eq!(s.get(&format!("/api/v1/apps/{dev_app}"), &dev).status, 200);
    assert_problem(&s.get(&format!("/api/v1/apps/{dev_app}"), &member), 403, "member reads an app");
    let r = cc_basic(&s, &dev_cid, &dev_secret, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        roles_of(&s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"]),
        strs(&["org:developer", "org:member"])
    );

    // Roles the creator does not hold: 422, nothing stored.
    for roles in
        [json!(["metrics:read"]), json!(["org:admin"]), json!(["org:owner"]), json!(["org:member", "metrics:read"])]
    {
        let before = s.data_snapshot();
        let r = s.post("/api/v1/apps", &dev, json!({"name": "too-much", "roles": roles}));
        assert_invalid_field(&r, "roles", &format!("developer grants {roles}"));
        assert_eq!(s.data_snapshot(), before, "a refused create changes nothing");
    }
    let r = s.patch(&format!("/api/v1/apps/{dev_app}"), &dev, json!({"roles": ["metrics:read"]}));
    assert_invalid_field(&r, "roles", "developer patches in a role it lacks");
    let g = s.get(&format!("/api/v1/apps/{dev_app}"), &dev);
    assert_eq!(roles_of(&g.body["roles"]), strs(&["org:developer", "org:member"]), "refused patch changes nothing");
    // A role not in the catalogue: 422 even for the owner.
    let r = s.post("/api/v1/apps", &at, json!({"name": "x", "roles": ["nope:missing"]}));
    assert_invalid_field(&r, "roles", "uncatalogued role");

    // org:admin can manage apps, but still cannot grant a custom role it lacks.
    let (admin_app, _, _) = s.app(&admin, json!({"name": "a", "roles": ["org:admin"]}));
    assert_invalid_field(
        &s.post("/api/v1/apps", &admin, json!({"name": "a2", "roles": ["metrics:read"]})),
        "roles",
        "admin grants metrics:read",
    );
    // The owner holds every role.
    s.app(&at, json!({"name": "o", "roles": ["metrics:read", "org:owner"]}));
    // A developer may not act on an app holding roles the developer lacks: regenerating its
    // secret would hand the developer org:admin.
    for (method, path) in [
        ("DELETE", format!("/api/v1/apps/{admin_app}")),
        ("POST", format!("/api/v1/apps/{admin_app}/secret")),
        ("PATCH", format!("/api/v1/apps/{admin_app}")),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "renamed"}));
        let r = s.call(method, &path, Some(&dev), body.as_ref());
        assert_eq!(r.status, 403, "developer {method} {path}: {}", r.text);
    }
    // …but may manage one within its own roles, whoever created it.
    let (member_app, _, _) = s.app(&admin, json!({"name": "m", "roles": ["org:member"]}));
    assert_eq!(s.delete(&format!("/api/v1/apps/{member_app}"), &dev).status, 204);
    assert_eq!(s.delete(&format!("/api/v1/apps/{admin_app}"), &admin).status, 204);
}

// ---------------------------------------------------------------- client_credentials

fn client_credentials_basic_and_post(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");
    s.role(&at, "logs:write");
    let (_, cid, secret) = s.app(
        &at,
        json!({"name": "exporter", "roles": ["metrics:read", "logs:write"], "access_token_ttl_seconds": 600}),
    );

    for (how, r) in [("basic", cc_basic(&s, &cid, &secret, &[])), ("post", cc_post(&s, &cid, &secret, &[]))] {
        assert_eq!(r.status, 200, "{how}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{how}");
        assert_eq!(r.header("pragma"), Some("no-cache"), "{how}");
        assert_eq!(r.body["token_type"], "Bearer", "{how}");
        assert_eq!(r.body["expires_in"], 600, "{how}: the app's TTL");
        assert_eq!(r.body["scope"], "logs:write metrics:read", "{how}");
        assert!(r.body.get("refresh_token").is_none(), "{how}: no refresh token for client_credentials");
        let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], json!(cid), "{how}: sub is the client id");
        assert_eq!(c["client_id"], json!(cid), "{how}: client_id claim");
        assert_eq!(c["acct"], "app", "{how}");
        assert_eq!(c["org"], json!(s.org_id), "{how}");
        assert_eq!(c["iss"], json!(s.issuer()), "{how}");
        assert_eq!(c["aud"], json!(s.issuer()), "{how}: default audience");
        assert_eq!(roles_of(&c["roles"]), strs(&["logs:write", "metrics:read"]), "{how}");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600, "{how}: exp - iat");
        assert_eq!(c["iat"].as_i64().unwrap(), s.clock.now(), "{how}: iat is the server's now");
        assert!(c.get("amr").is_none(), "{how}: an app token is not interactive");
    }

    // scope narrows; asking for more is invalid_scope.
    let r = cc_basic(&s, &cid, &secret, &[("scope", "metrics:read")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "metrics:read");
    assert_eq!(
        roles_of(&s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"]),
        strs(&["metrics:read"])
    );
    let r = cc_post(&s, &cid, &secret, &[("scope", "logs:write")]);
    assert_eq!(roles_of(&s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"]), strs(&["logs:write"]));
    for scope in ["org:admin", "metrics:read org:owner", "other:role"] {
        let r = cc_basic(&s, &cid, &secret, &[("scope", scope)]);
        assert_oauth_error(&r, 400, "invalid_scope", &format!("scope {scope}"));
    }

    // A per-app TTL change applies to the next token.
    let apps = s.get("/api/v1/apps", &at);
    let id = apps.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.patch(&format!("/api/v1/apps/{id}"), &at, json!({"access_token_ttl_seconds": 3600})).status, 200);
    let r = cc_post(&s, &cid, &secret, &[]);
    assert_eq!(r.body["expires_in"], 3600, "{}", r.body);
    let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);

    // The app's access token works as a bearer for what its roles allow (not app management).
    let app_at = s.app_api_token(&cid, &secret);
    assert_problem(&s.get("/api/v1/apps", &app_at), 403, "app without org:developer lists apps");

    // A default-TTL app answers the configured TTL.
    let (_, cid2, secret2) = s.app(&at, json!({"name": "plain"}));
    let r = cc_basic(&s, &cid2, &secret2, &[]);
    assert_eq!(r.body["expires_in"], json!(s.state.cfg.access_token_ttl));
    assert_eq!(r.body["scope"], "");
}

fn client_auth_failures(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "a"}));
    let (_, other_cid, other_secret) = s.app(&at, json!({"name": "b"}));
    let before = s.data_snapshot();

    // Wrong secret, Basic: 401 invalid_client with the Basic challenge.
    let wrong_basic = cc_basic(&s, &cid, &other_secret, &[]);
    assert_oauth_error(&wrong_basic, 401, "invalid_client", "wrong secret (basic)");
    assert_eq!(wrong_basic.header("www-authenticate"), Some("Basic realm=\"tokend\""));
    assert_eq!(wrong_basic.header("cache-control"), Some("no-store"));
    // Wrong secret, post: 401 invalid_client without a Basic challenge.
    let wrong_post = cc_post(&s, &cid, &other_secret, &[]);
    assert_oauth_error(&wrong_post, 401, "invalid_client", "wrong secret (post)");
    assert!(
        !wrong_post.header("www-authenticate").unwrap_or("").to_ascii_lowercase().starts_with("basic"),
        "no Basic challenge when Basic was not used: {:?}",
        wrong_post.header("www-authenticate")
    );
    // A malformed secret is the same failure.
    assert_eq!(cc_basic(&s, &cid, "not-a-secret", &[]).text, wrong_basic.text);
    assert_eq!(cc_post(&s, &cid, "", &[]).status, 401);

    // Unknown client: byte-for-byte the same answer as a wrong secret.
    let unknown_basic = cc_basic(&s, "tkd_app_doesnotexist000000", &secret, &[]);
    assert_eq!(unknown_basic.status, 401);
    assert_eq!(unknown_basic.text, wrong_basic.text, "unknown client and wrong secret answer the same body");
    assert_eq!(unknown_basic.header("www-authenticate"), Some("Basic realm=\"tokend\""));
    let unknown_post = cc_post(&s, "tkd_app_doesnotexist000000", &secret, &[]);
    assert_eq!(unknown_post.status, 401);
    assert_eq!(unknown_post.text, wrong_post.text, "unknown client (post) answers as a wrong secret (post)");
    assert_eq!(unknown_post.header("www-authenticate"), wrong_post.header("www-authenticate"));
    // A client secret of one app with another's client id (both real): still the same answer.
    assert_eq!(cc_basic(&s, &other_cid, &secret, &[]).text, wrong_basic.text);

    // Both methods at once: invalid_request (even when both name the same, valid client).
    let both = s.form(
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", &cid), ("client_secret", &secret)],
        Some((&cid, &secret)),
    );
    assert_oauth_error(&both, 400, "invalid_request", "basic and post at once");
    // Basic plus a client_id parameter naming another client: invalid_request.
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", &other_cid)],
        Some((&cid, &secret)),
    );
    assert_oauth_error(&r, 400, "invalid_request", "client_id disagrees with Basic");
    // Basic plus the same client_id parameter is allowed (RFC 6749 clients send it).
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &cid)], Some((&cid, &secret)));
    assert_eq!(r.status, 200, "Basic plus the matching client_id: {}", r.body);

    // No client authentication: 401 invalid_client (no Basic challenge: Basic was not used).
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], None);
    assert_oauth_error(&r, 401, "invalid_client", "no client authentication");
    // client_id alone (no secret) is not authentication either.
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &cid)], None);
    assert_eq!(r.status, 401, "client_id without a secret: {}", r.body);

    // Malformed Basic credentials: invalid_client with the Basic challenge.
    let r = s.raw(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", "Basic %%%not-base64")],
        b"grant_type=client_credentials",
    );
    assert_oauth_error(&r, 401, "invalid_client", "malformed Basic");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"tokend\""));

    // A failed client authentication writes nothing.
    assert_eq!(s.data_snapshot(), before, "failed client authentication changes nothing");

    // The API-token grants do not take a client secret as a grant.
    let r = s.exchange(&secret);
    assert_oauth_error(&r, 400, "invalid_grant", "client secret as refresh_token");
}

fn basic_credentials_are_form_urlencoded(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "enc"}));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let send = |auth: String| {
        s.raw("POST", "/oauth/token", &[form[0], ("Authorization", auth.as_str())], b"grant_type=client_credentials")
    };

    // Every character percent-encoded (what the harness' form() does), upper and lower hex.
    assert_eq!(cc_basic(&s, &cid, &secret, &[]).status, 200, "fully percent-encoded Basic");
    let lower = |v: &str| v.bytes().map(|c| format!("%{c:02x}")).collect::<String>();
    assert_eq!(send(basic_header(&format!("{}:{}", lower(&cid), lower(&secret)))).status, 200, "lower-case hex");
    // Unencoded (identical here: ids and secrets are base62 plus '_').
    assert_eq!(send(basic_header(&format!("{cid}:{secret}"))).status, 200, "plain Basic");
    // '_' escaped only in the secret.
    let r = send(basic_header(&format!("{cid}:{}", secret.replace('_', "%5F"))));
    assert_eq!(r.status, 200, "partially encoded secret: {}", r.body);
    // Decoding is applied: a literal "%5F" where the secret has '_' would otherwise differ,
    // and a double-encoded secret must fail.
    let r = send(basic_header(&format!("{cid}:{}", secret.replace('_', "%255F"))));
    assert_oauth_error(&r, 401, "invalid_client", "double-encoded secret");
    // The scheme name is case-insensitive.
    let r = send(format!("basic {}", &basic_header(&format!("{cid}:{secret}"))[6..]));
    assert_eq!(r.status, 200, "lower-case scheme: {}", r.body);
    // '+' in a form-urlencoded credential is a space, so a '+'-carrying secret is wrong.
    let r = send(basic_header(&format!("{cid}:{secret}+")));
    assert_oauth_error(&r, 401, "invalid_client", "secret with a trailing +");
}

fn regenerated_secret(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (id, cid, old) = s.app(&at, json!({"name": "rot"}));
    assert_eq!(cc_basic(&s, &cid, &old, &[]).status, 200);
    let hint_before = s.get(&format!("/api/v1/apps/{id}"), &at).body["secret_hint"].clone();

    let r = s.post(&format!("/api/v1/apps/{id}/secret"), &at, json!({}));
    assert_eq!(r.status, 201, "regenerate: {}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let new = r.body["client_secret"].as_str().unwrap().to_string();
    assert!(new.starts_with("tkd_cs_"), "new secret prefix");
    assert!(new != old, "a new secret differs from the old one");
    assert_eq!(r.body["client_id"], json!(cid), "client_id is stable across regeneration");

    assert_oauth_error(&cc_basic(&s, &cid, &old, &[]), 401, "invalid_client", "old secret (basic)");
    assert_oauth_error(&cc_post(&s, &cid, &old, &[]), 401, "invalid_client", "old secret (post)");
    assert_eq!(cc_basic(&s, &cid, &new, &[]).status, 200, "new secret (basic)");
    assert_eq!(cc_post(&s, &cid, &new, &[]).status, 200, "new secret (post)");
    // The old secret cannot authenticate to introspection either.
    assert_eq!(introspect_app(&s, &cid, &old, "x").status, 401);

    let g = s.get(&format!("/api/v1/apps/{id}"), &at);
    assert!(g.body["secret_hint"] != hint_before, "the hint follows the new secret");
    assert!(!g.text.contains(&new) && !g.text.contains(&old), "GET shows neither secret");

    // Twice: the second secret replaces the first at once.
    let newer = s.post(&format!("/api/v1/apps/{id}/secret"), &at, json!({})).body["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cc_basic(&s, &cid, &new, &[]).status, 401);
    assert_eq!(cc_basic(&s, &cid, &newer, &[]).status, 200);

    // Who: a member cannot regenerate; unknown app is 404.
    let (_, member) = s.user(&at, "m@example.test", &["org:member"]);
    let before = s.data_snapshot();
    assert_problem(&s.post(&format!("/api/v1/apps/{id}/secret"), &member, json!({})), 403, "member regenerates");
    assert_eq!(s.data_snapshot(), before);
    assert_eq!(cc_basic(&s, &cid, &newer, &[]).status, 200, "a refused regeneration keeps the secret");
    assert_problem(&s.post("/api/v1/apps/nope/secret", &at, json!({})), 404, "regenerate unknown app");
}

fn deleted_and_disabled_apps(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (id, cid, secret) = s.app(&at, json!({"name": "d"}));
    assert_eq!(cc_basic(&s, &cid, &secret, &[]).status, 200);

    let p = s.patch(&format!("/api/v1/apps/{id}"), &at, json!({"disabled": true}));
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["disabled"], true);
    let r = cc_basic(&s, &cid, &secret, &[]);
    assert_oauth_error(&r, 401, "invalid_client", "disabled app (basic)");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"tokend\""));
    assert_oauth_error(&cc_post(&s, &cid, &secret, &[]), 401, "invalid_client", "disabled app (post)");
    // The same answer as any wrong secret: nothing says "disabled".
    assert_eq!(r.text, cc_basic(&s, &cid, "tkd_cs_wrong", &[]).text);

    assert_eq!(s.patch(&format!("/api/v1/apps/{id}"), &at, json!({"disabled": false})).status, 200);
    assert_eq!(cc_basic(&s, &cid, &secret, &[]).status, 200, "re-enabled app works again");

    assert_eq!(s.delete(&format!("/api/v1/apps/{id}"), &at).status, 204);
    assert_oauth_error(&cc_basic(&s, &cid, &secret, &[]), 401, "invalid_client", "deleted app (basic)");
    assert_oauth_error(&cc_post(&s, &cid, &secret, &[]), 401, "invalid_client", "deleted app (post)");
}

// ---------------------------------------------------------------- service accounts

fn service_accounts_crud(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "ingest:write");
    let (_, admin) = s.user(&at, "admin@example.test", &["org:admin"]);
    let (_, dev) = s.user(&at, "dev@example.test", &["org:developer"]);

    let r = s.post(
        "/api/v1/service-accounts",
        &at,
        json!({"name": "ingester", "description": "pushes events", "roles": ["ingest:write"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["name"], "ingester");
    assert_eq!(r.body["description"], "pushes events");
    assert_eq!(roles_of(&r.body["roles"]), strs(&["ingest:write"]));
    assert_eq!(r.body["disabled"], false);

    let g = s.get(&format!("/api/v1/service-accounts/{id}"), &at);
    assert_eq!(g.status, 200);
    assert_eq!(g.body["name"], "ingester");
    let l = s.get("/api/v1/service-accounts", &admin);
    assert_eq!(l.status, 200);
    assert_eq!(l.body["total_count"], 1);
    assert_eq!(l.body["items"][0]["id"], json!(id));

    // Who: org:admin (not developer).
    assert_problem(&s.get("/api/v1/service-accounts", &dev), 403, "developer lists service accounts");
    assert_problem(&s.post("/api/v1/service-accounts", &dev, json!({"name": "x"})), 403, "developer creates one");
    assert_problem(&s.get(&format!("/api/v1/service-accounts/{id}"), &dev), 403, "developer reads one");
    // An admin cannot grant a custom role it does not hold; may grant org roles it holds.
    assert_invalid_field(
        &s.post("/api/v1/service-accounts", &admin, json!({"name": "x", "roles": ["ingest:write"]})),
        "roles",
        "admin grants a role it lacks",
    );
    assert_invalid_field(
        &s.post("/api/v1/service-accounts", &admin, json!({"name": "x", "roles": ["org:owner"]})),
        "roles",
        "admin grants owner",
    );
    let admin_sa = service_account(&s, &admin, json!({"name": "by-admin", "roles": ["org:member"]}));
    assert_invalid_field(&s.post("/api/v1/service-accounts", &at, json!({"name": ""})), "name", "empty name");

    // PATCH.
    let p = s.patch(&format!("/api/v1/service-accounts/{id}"), &at, json!({"name": "ingester-2", "description": "d2"}));
    assert_eq!(p.status, 200, "{}", p.body);
    let g = s.get(&format!("/api/v1/service-accounts/{id}"), &at);
    assert_eq!(g.body["name"], "ingester-2");
    assert_eq!(g.body["description"], "d2");
    assert_eq!(roles_of(&g.body["roles"]), strs(&["ingest:write"]), "roles unchanged when not given");

    // DELETE.
    assert_eq!(s.delete(&format!("/api/v1/service-accounts/{id}"), &at).status, 204);
    assert_problem(&s.get(&format!("/api/v1/service-accounts/{id}"), &at), 404, "deleted service account");
    assert_problem(&s.delete(&format!("/api/v1/service-accounts/{id}"), &at), 404, "deleted twice");
    assert_problem(&s.get(&format!("/api/v1/service-accounts/{id}/tokens"), &at), 404, "tokens of a deleted account");
    let l = s.get("/api/v1/service-accounts", &at);
    assert_eq!(l.body["total_count"], 1);
    assert_eq!(l.body["items"][0]["id"], json!(admin_sa));
}

fn sa_token_limit(b: &Backend) {
    let s = b.start();
    let mut at = s.owner_login();
    let sa = service_account(&s, &at, json!({"name": "bulk", "roles": ["org:member"]}));
    let path = format!("/api/v1/service-accounts/{sa}/tokens");

    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..20 {
        let (id, secret) = s.sa_token(&at, &sa, json!({"name": format!("t{i}"), "ttl_days": 30}));
        ids.push(id);
        secrets.push(secret);
    }
    assert_eq!(s.get(&path, &at).body["total_count"], 20);

    // The 21st: 409, and nothing changes.
    let before = s.data_snapshot();
    let tokens_before = s.count("api_tokens");
    let r = s.post(&path, &at, json!({"name": "t20", "ttl_days": 30}));
    assert_problem(&r, 409, "21st token");
    assert!(r.body.get("token").is_none());
    assert_eq!(s.data_snapshot(), before, "the refused 21st token changes nothing");
    assert_eq!(s.count("api_tokens"), tokens_before);
    // The other tokens still work.
    assert_eq!(s.exchange(&secrets[0]).status, 200);

    // Revoking one frees its slot.
    assert_eq!(s.delete(&format!("{path}/{}", ids[3]), &at).status, 204);
    assert_oauth_error(&s.exchange(&secrets[3]), 400, "invalid_grant", "revoked sa token");
    let (_, _) = s.sa_token(&at, &sa, json!({"name": "after-revoke", "ttl_days": 30}));
    assert_problem(&s.post(&path, &at, json!({"name": "over", "ttl_days": 30})), 409, "full again");

    // An expired token frees its slot: revoke one more, fill with a 1-day token, let it expire.
    assert_eq!(s.delete(&format!("{path}/{}", ids[4]), &at).status, 204);
    let (short_id, short) = s.sa_token(&at, &sa, json!({"name": "short", "ttl_days": 1}));
    assert_problem(&s.post(&path, &at, json!({"name": "over", "ttl_days": 30})), 409, "full with the short token");
    s.clock.advance(86_400 + 1);
    at = s.owner_login();
    assert_oauth_error(&s.exchange(&short), 400, "invalid_grant", "expired sa token");
    let (_, _) = s.sa_token(&at, &sa, json!({"name": "after-expiry", "ttl_days": 30}));
    assert_problem(
        &s.post(&path, &at, json!({"name": "over", "ttl_days": 30})),
        409,
        "full after the expiry slot is used",
    );

    // The list shows each state; 20 live tokens.
    let l = s.get(&format!("{path}?page_size=200"), &at);
    assert_eq!(l.body["total_count"], 23);
    let items = l.body["items"].as_array().unwrap();
    let status_of = |id: &str| items.iter().find(|t| t["id"] == json!(id)).unwrap()["status"].clone();
    assert_eq!(status_of(&ids[3]), "revoked");
    assert_eq!(status_of(&short_id), "expired");
    assert_eq!(items.iter().filter(|t| t["status"] == "active").count(), 20);
    assert!(items.iter().all(|t| t.get("token").is_none()), "no secrets in lists");
    for sec in &secrets {
        assert!(!l.text.contains(sec.as_str()), "a token list never shows a secret");
    }
}

/// The live-token cap holds under concurrent creates too (no check-then-insert race).
fn sa_token_limit_under_concurrency(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &at, json!({"max_tokens_per_service_account": 4})).status, 200);
    for round in 0..3 {
        let sa = service_account(&s, &at, json!({"name": format!("race-{round}")}));
        let url = s.url(&format!("/api/v1/service-accounts/{sa}/tokens"));
        let barrier = std::sync::Barrier::new(12);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..12)
                .map(|i| {
                    let (url, at, barrier) = (&url, &at, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        let r = Resp::from(
                            ureq::post(url)
                                .set("Authorization", &format!("Bearer {at}"))
                                .send_json(json!({"name": format!("t{i}")})),
                        );
                        r.status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = statuses.iter().filter(|c| **c == 201).count();
        let refused = statuses.iter().filter(|c| **c == 409).count();
        let live = s.get(&format!("/api/v1/service-accounts/{sa}/tokens?page_size=200"), &at).body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "active")
            .count();
        assert_eq!(
            (created, refused, live),
            (4, 8, 4),
            "round {round}: 12 concurrent creates with a limit of 4: {statuses:?}"
        );
    }
}

fn sa_token_limit_follows_policy(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let sa = service_account(&s, &at, json!({"name": "p"}));
    let path = format!("/api/v1/service-accounts/{sa}/tokens");
    let r = s.put("/api/v1/policy", &at, json!({"max_tokens_per_service_account": 2}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["max_tokens_per_service_account"], 2);
    s.sa_token(&at, &sa, json!({"name": "a"}));
    s.sa_token(&at, &sa, json!({"name": "b"}));
    let before = s.data_snapshot();
    assert_problem(&s.post(&path, &at, json!({"name": "c"})), 409, "third with a limit of 2");
    assert_eq!(s.data_snapshot(), before);

    // Only the owner sets policy.
    let (_, admin) = s.user(&at, "admin@example.test", &["org:admin"]);
    assert_problem(
        &s.put("/api/v1/policy", &admin, json!({"max_tokens_per_service_account": 50})),
        403,
        "admin writes policy",
    );
    assert_problem(&s.post(&path, &admin, json!({"name": "c"})), 409, "still limited after a refused policy change");

    assert_eq!(s.put("/api/v1/policy", &at, json!({"max_tokens_per_service_account": 3})).status, 200);
    s.sa_token(&at, &sa, json!({"name": "c"}));
    assert_problem(&s.post(&path, &at, json!({"name": "d"})), 409, "fourth with a limit of 3");
    // The limit is per account: another account has its own slots.
    let sa2 = service_account(&s, &at, json!({"name": "p2"}));
    s.sa_token(&at, &sa2, json!({"name": "a"}));
}

fn sa_token_ttl_and_roles(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "ingest:write");
    s.role(&at, "metrics:read");
    let sa = service_account(&s, &at, json!({"name": "ttl", "roles": ["ingest:write"]}));
    let path = format!("/api/v1/service-accounts/{sa}/tokens");

    for bad in [366, 0, -5] {
        let before = s.data_snapshot();
        let r = s.post(&path, &at, json!({"name": "x", "ttl_days": bad}));
        assert_invalid_field(&r, "ttl_days", &format!("ttl_days {bad}"));
        assert_eq!(s.data_snapshot(), before);
    }
    let now = s.clock.now();
    let (tid, secret) = s.sa_token(&at, &sa, json!({"name": "year", "ttl_days": 365}));
    let r = introspect_bearer(&s, &at, &secret);
    assert_active(&r, "365-day sa token");
    assert_eq!(r.body["exp"], json!(now + 365 * 86_400), "expiry = created + ttl_days days");
    let _ = tid;

    // The policy maximum follows PUT /api/v1/policy.
    assert_eq!(s.put("/api/v1/policy", &at, json!({"service_token_max_ttl_days": 10})).status, 200);
    assert_invalid_field(&s.post(&path, &at, json!({"name": "x", "ttl_days": 11})), "ttl_days", "over the new maximum");
    s.sa_token(&at, &sa, json!({"name": "ten", "ttl_days": 10}));

    // Token roles must be held by the account.
    assert_invalid_field(
        &s.post(&path, &at, json!({"name": "x", "roles": ["metrics:read"]})),
        "roles",
        "role the account lacks",
    );
    let (_, sub) = s.sa_token(&at, &sa, json!({"name": "sub", "roles": ["ingest:write"]}));
    assert_eq!(roles_of(&s.verify_resource(&s.exchange_ok(&sub))["roles"]), strs(&["ingest:write"]));
    // Unknown account: 404.
    assert_problem(
        &s.post("/api/v1/service-accounts/nope/tokens", &at, json!({"name": "x"})),
        404,
        "tokens of unknown account",
    );
}

fn sa_token_rename_and_revoke(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let sa = service_account(&s, &at, json!({"name": "r", "roles": ["org:member"]}));
    let path = format!("/api/v1/service-accounts/{sa}/tokens");
    let (tid, secret) = s.sa_token(&at, &sa, json!({"name": "old-name", "description": "d"}));

    let r = s.patch(&format!("{path}/{tid}"), &at, json!({"name": "new-name", "description": "d2"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "new-name");
    assert_eq!(r.body["description"], "d2");
    assert!(r.body.get("token").is_none() && !r.text.contains(&secret), "rename never shows the secret");
    let l = s.get(&path, &at);
    assert_eq!(l.body["items"][0]["name"], "new-name");
    assert_eq!(l.body["items"][0]["description"], "d2");
    assert_eq!(s.exchange(&secret).status, 200, "a renamed token still works");
    assert_eq!(introspect_bearer(&s, &at, &secret).body["name"], "new-name");
    assert_invalid_field(&s.patch(&format!("{path}/{tid}"), &at, json!({"name": ""})), "name", "empty name");
    assert_problem(&s.patch(&format!("{path}/nope"), &at, json!({"name": "x"})), 404, "rename unknown token");

    // Revoke: irreversible, immediate.
    assert_eq!(s.delete(&format!("{path}/{tid}"), &at).status, 204);
    assert_oauth_error(&s.exchange(&secret), 400, "invalid_grant", "revoked sa token");
    assert_problem(&s.patch(&format!("{path}/{tid}"), &at, json!({"name": "again"})), 409, "rename a revoked token");
    assert_eq!(s.delete(&format!("{path}/{tid}"), &at).status, 204, "revoking twice is idempotent");
    assert_oauth_error(&s.exchange(&secret), 400, "invalid_grant", "still revoked");
    assert_eq!(s.get(&path, &at).body["items"][0]["status"], "revoked");

    // A token of another account is not reachable through this account's path.
    let sa2 = service_account(&s, &at, json!({"name": "r2"}));
    let (tid2, secret2) = s.sa_token(&at, &sa2, json!({"name": "x"}));
    assert_problem(&s.delete(&format!("{path}/{tid2}"), &at), 404, "revoke another account's token");
    assert_eq!(s.exchange(&secret2).status, 200);
}

fn sa_exchange_and_role_narrowing(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");
    s.role(&at, "logs:write");
    let sa = service_account(&s, &at, json!({"name": "collector", "roles": ["metrics:read", "logs:write"]}));
    let (tid, secret) = s.sa_token(&at, &sa, json!({"name": "t"}));

    let r = s.exchange(&secret);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["expires_in"], json!(s.state.cfg.access_token_ttl));
    let first = r.body["access_token"].as_str().unwrap().to_string();
    let c = s.verify_resource(&first);
    assert_eq!(c["acct"], "service_account");
    assert_eq!(c["sub"], json!(sa));
    assert_eq!(c["client_id"], json!(tid), "client_id is the API token's id");
    assert_eq!(c["org"], json!(s.org_id));
    assert_eq!(roles_of(&c["roles"]), strs(&["logs:write", "metrics:read"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), s.state.cfg.access_token_ttl);
    // Token exchange (RFC 8693) works the same.
    let r = s.form(
        "/oauth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &secret),
            ("subject_token_type", "urn:tokend:params:oauth:token-type:api_token"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.verify_resource(r.body["access_token"].as_str().unwrap())["acct"], "service_account");
    // scope narrows; more is invalid_scope.
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &secret), ("scope", "logs:write")],
        None,
    );
    assert_eq!(roles_of(&s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"]), strs(&["logs:write"]));
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &secret), ("scope", "org:admin")],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_scope", "sa scope beyond its roles");

    // Narrowing the account's roles narrows the token at the next exchange.
    assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &at, json!({"roles": ["metrics:read"]})).status, 200);
    assert_eq!(roles_of(&s.verify_resource(&s.exchange_ok(&secret))["roles"]), strs(&["metrics:read"]));
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &secret), ("scope", "logs:write")],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_scope", "scope for a role the account lost");
    // An access token issued before the narrowing is narrowed too when used.
    let r = introspect_bearer(&s, &at, &first);
    assert_active(&r, "pre-narrowing sa access token");
    assert_eq!(roles_of(&r.body["roles"]), strs(&["metrics:read"]), "introspection shows current roles");
    // Widening the account back restores what the token was created with (never more).
    assert_eq!(
        s.patch(
            &format!("/api/v1/service-accounts/{sa}"),
            &at,
            json!({"roles": ["metrics:read", "logs:write", "org:member"]})
        )
        .status,
        200
    );
    assert_eq!(roles_of(&s.verify_resource(&s.exchange_ok(&secret))["roles"]), strs(&["logs:write", "metrics:read"]));

    // Disabling the account stops its tokens; enabling restores them.
    assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &at, json!({"disabled": true})).status, 200);
    assert_oauth_error(&s.exchange(&secret), 400, "invalid_grant", "disabled account");
    assert_inactive(&introspect_bearer(&s, &at, &first), "access token of a disabled account");
    assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &at, json!({"disabled": false})).status, 200);
    assert_eq!(s.exchange(&secret).status, 200);

    // Deleting the account kills its tokens (and its outstanding access tokens).
    let (_, second) = s.sa_token(&at, &sa, json!({"name": "t2"}));
    let live_at = s.exchange_ok(&second);
    assert_eq!(s.delete(&format!("/api/v1/service-accounts/{sa}"), &at).status, 204);
    assert_oauth_error(&s.exchange(&secret), 400, "invalid_grant", "token of a deleted account");
    assert_oauth_error(&s.exchange(&second), 400, "invalid_grant", "second token of a deleted account");
    assert_inactive(&introspect_bearer(&s, &at, &live_at), "access token of a deleted account");
    assert_inactive(&introspect_bearer(&s, &at, &second), "API token of a deleted account");
    assert_problem(&s.get("/api/v1/apps", &live_at), 401, "bearer of a deleted account");
}

fn service_only_audiences(b: &Backend) {
    const INGEST: &str = "https://ingest.example";
    let s = b.start_with(|c| {
        c.audiences = vec![c.issuer.clone(), INGEST.into()];
        c.service_only_audiences = vec![INGEST.into()];
    });
    let at = s.owner_login();
    let sa = service_account(&s, &at, json!({"name": "ingest", "roles": ["org:member"]}));
    let (_, secret) = s.sa_token(&at, &sa, json!({"name": "t"}));

    // Service-account tokens are accepted by the service-only audience (resource or audience).
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &secret), ("resource", INGEST)],
        None,
    );
    assert_eq!(r.status, 200, "sa token for a service-only audience: {}", r.body);
    let c = s.verify(r.body["access_token"].as_str().unwrap(), INGEST);
    assert_eq!(c["aud"], INGEST);
    assert_eq!(c["acct"], "service_account");
    let r = s.form(
        "/oauth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &secret),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ("audience", INGEST),
        ],
        None,
    );
    assert_eq!(r.status, 200, "sa token exchange with audience: {}", r.body);
    assert_eq!(s.verify(r.body["access_token"].as_str().unwrap(), INGEST)["aud"], INGEST);

    // Personal tokens are refused there, but not at the default audience.
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &s.owner_pat), ("resource", INGEST)],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_target", "personal token for a service-only audience");
    let r = s.form(
        "/oauth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &s.owner_pat),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ("audience", INGEST),
        ],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_target", "personal token exchange for a service-only audience");
    assert_eq!(s.exchange(&s.owner_pat).status, 200, "personal token at the default audience");
    // An audience that is not configured is invalid_target for everyone.
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &secret), ("resource", "https://other.example")],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_target", "unconfigured audience");
}

// ---------------------------------------------------------------- introspection

fn introspection_caller_auth(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (rs_id, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true}));
    let (_, admin) = s.user(&at, "admin@example.test", &["org:admin"]);
    let (_, dev) = s.user(&at, "dev@example.test", &["org:developer"]);
    let (_, member) = s.user(&at, "member@example.test", &["org:member"]);
    let subject = s.exchange_ok(&s.owner_pat);

    // As an app: Basic and post.
    assert_active(&introspect_app(&s, &cid, &secret, &subject), "app (basic)");
    let r = s.form("/oauth/introspect", &[("token", &subject), ("client_id", &cid), ("client_secret", &secret)], None);
    assert_active(&r, "app (post)");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // As a bearer holding org:admin: owner, admin, and a service account holding org:admin.
    assert_active(&introspect_bearer(&s, &at, &subject), "owner bearer");
    assert_active(&introspect_bearer(&s, &admin, &subject), "admin bearer");
    let sa = service_account(&s, &at, json!({"name": "auditor", "roles": ["org:admin"]}));
    let (_, sat) = s.sa_token(&at, &sa, json!({"name": "t"}));
    assert_active(&introspect_bearer(&s, &s.exchange_api(&sat), &subject), "sa bearer with org:admin");
    // A PAT-derived management access token of the owner (org:owner ⊇ org:admin).
    assert_active(&introspect_bearer(&s, &s.exchange_api(&s.owner_pat), &subject), "owner's exchanged bearer");
    // A token minted for a resource server is no management bearer, whatever its roles.
    let r = introspect_bearer(&s, &subject, &subject);
    assert_eq!(r.status, 401, "a resource-audience bearer: {}", r.body);
    assert!(r.body.get("active").is_none(), "a resource-audience bearer learns nothing: {}", r.body);

    // Bearers without org:admin are rejected, and learn nothing.
    for (who, bearer) in [("developer", &dev), ("member", &member)] {
        let r = introspect_bearer(&s, bearer, &subject);
        assert_eq!(r.status, 403, "{who} bearer: {}", r.body);
        assert!(r.body.get("active").is_none(), "{who} bearer must not get an introspection answer: {}", r.body);
        assert!(r.body["error"].is_string(), "{who}: an OAuth error body: {}", r.body);
    }
    // An org:admin narrowed away by scope is not org:admin.
    let (_, admin_pat) = s.pat(&at, json!({"name": "two-roles", "roles": ["org:admin", "org:member"]}));
    assert_active(&introspect_bearer(&s, &s.exchange_api(&admin_pat), &subject), "bearer from an org:admin PAT");
    let api = s.api_audience();
    let narrowed = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &admin_pat), ("scope", "org:member"), ("audience", &api)],
        None,
    );
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    let r = introspect_bearer(&s, narrowed.body["access_token"].as_str().unwrap(), &subject);
    assert_eq!(r.status, 403, "scope-narrowed bearer: {}", r.body);
    // An app holding only org:member roles, used as a bearer, is no admin either.
    let (_, m_cid, m_secret) = s.app(&at, json!({"name": "m", "roles": ["org:member"]}));
    let r = introspect_bearer(&s, &s.app_api_token(&m_cid, &m_secret), &subject);
    assert_eq!(r.status, 403, "member app bearer: {}", r.body);

    // No authentication: 401.
    let r = s.form("/oauth/introspect", &[("token", &subject)], None);
    assert_oauth_error(&r, 401, "invalid_client", "no caller authentication");
    assert!(r.body.get("active").is_none());
    // Wrong app secret: 401 with the Basic challenge; unknown app the same.
    let r = introspect_app(&s, &cid, "tkd_cs_wrong", &subject);
    assert_oauth_error(&r, 401, "invalid_client", "wrong app secret");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"tokend\""));
    assert_eq!(introspect_app(&s, "tkd_app_unknown", &secret, &subject).text, r.text);
    // A garbage bearer: 401.
    let r = introspect_bearer(&s, "not.a.jwt", &subject);
    assert_eq!(r.status, 401, "garbage bearer: {}", r.body);
    assert!(r.body.get("active").is_none());
    // A disabled app cannot introspect.
    assert_eq!(s.patch(&format!("/api/v1/apps/{rs_id}"), &at, json!({"disabled": true})).status, 200);
    assert_eq!(introspect_app(&s, &cid, &secret, &subject).status, 401, "disabled app introspects");
    // Missing token parameter: invalid_request.
    let r = s.form("/oauth/introspect", &[], Some((&m_cid, &m_secret)));
    assert_oauth_error(&r, 400, "invalid_request", "no token parameter");
}

fn introspect_pat_access_token_after_revoke(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true}));
    let (uid, u_at) = s.user(&at, "u@example.test", &["org:developer"]);
    let (pat_id, pat) = s.pat(&u_at, json!({"name": "ci", "ttl_days": 7}));
    let access = s.exchange_ok(&pat);

    let r = introspect_app(&s, &cid, &secret, &access);
    assert_active(&r, "PAT-derived access token");
    assert_eq!(r.body["sub"], json!(uid));
    assert_eq!(r.body["client_id"], json!(pat_id));
    assert_eq!(r.body["acct"], "user");
    assert_eq!(r.body["org"], json!(s.org_id));
    assert_eq!(r.body["iss"], json!(s.issuer()));
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(roles_of(&r.body["roles"]), strs(&["org:developer"]));
    let c = s.verify_resource(&access);
    assert_eq!(r.body["exp"], c["exp"]);
    assert_eq!(r.body["iat"], c["iat"]);
    assert_eq!(r.body["jti"], c["jti"]);

    // Revoke the PAT behind it: the access token is inactive at once.
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{pat_id}"), &u_at).status, 204);
    assert_inactive(&introspect_app(&s, &cid, &secret, &access), "access token after its PAT was revoked");
    assert_inactive(&introspect_bearer(&s, &at, &access), "same, asked by an admin bearer");
    assert_inactive(&introspect_app(&s, &cid, &secret, &pat), "the revoked PAT itself");
    // The user's login token is unaffected.
    assert_active(&introspect_app(&s, &cid, &secret, &u_at), "the user's login token");

    // RFC 7009 revocation by the holder does the same.
    let (_, pat2) = s.pat(&u_at, json!({"name": "ci2", "ttl_days": 7}));
    let access2 = s.exchange_ok(&pat2);
    assert_active(&introspect_app(&s, &cid, &secret, &access2), "second PAT-derived token");
    assert_eq!(s.form("/oauth/revoke", &[("token", &pat2)], None).status, 200);
    assert_inactive(&introspect_app(&s, &cid, &secret, &access2), "after /oauth/revoke");

    // Expiry of the access token itself (server clock past exp + leeway).
    let (_, pat3) = s.pat(&u_at, json!({"name": "ci3", "ttl_days": 7}));
    let access3 = s.exchange_ok(&pat3);
    assert_active(&introspect_app(&s, &cid, &secret, &access3), "third PAT-derived token");
    s.clock.advance(s.state.cfg.access_token_ttl + 60);
    assert_inactive(&introspect_app(&s, &cid, &secret, &access3), "expired access token");
}

/// RFC 7662: active only within the token's validity window; the server judges by its own
/// clock, so no clock-skew leeway applies past `exp`.
fn introspect_expiry_is_exact(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true, "access_token_ttl_seconds": 300}));
    let t = cc_token(&s, &cid, &secret);
    let exp = s.verify_resource(&t)["exp"].as_i64().unwrap();
    let derived = s.exchange_ok(&s.owner_pat);
    let derived_exp = s.verify_resource(&derived)["exp"].as_i64().unwrap();

    s.clock.set(exp - 1);
    assert_active(&introspect_app(&s, &cid, &secret, &t), "one second before exp");
    s.clock.set(exp + 1);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t), "one second after exp");
    s.clock.set(derived_exp + 5);
    assert_inactive(&introspect_app(&s, &cid, &secret, &derived), "PAT-derived token five seconds after exp");
}

fn introspect_login_token_after_disable(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true}));
    let (uid, u_at) = s.user(&at, "u@example.test", &["org:member"]);
    let (_, pat) = s.pat(&u_at, json!({"name": "p", "ttl_days": 7}));
    let derived = s.exchange_ok(&pat);

    let r = introspect_app(&s, &cid, &secret, &u_at);
    assert_active(&r, "login access token");
    assert_eq!(r.body["sub"], json!(uid));
    assert_eq!(r.body["acct"], "user");
    assert_eq!(r.body["amr"], json!(["pwd"]));
    assert_active(&introspect_app(&s, &cid, &secret, &derived), "PAT-derived token");
    assert_active(&introspect_app(&s, &cid, &secret, &pat), "the PAT");

    let p = s.patch(&format!("/api/v1/users/{uid}"), &at, json!({"disabled": true}));
    assert_eq!(p.status, 200, "disable user: {}", p.body);
    assert_inactive(&introspect_app(&s, &cid, &secret, &u_at), "login token of a disabled user");
    assert_inactive(&introspect_app(&s, &cid, &secret, &derived), "PAT-derived token of a disabled user");
    assert_inactive(&introspect_app(&s, &cid, &secret, &pat), "PAT of a disabled user");

    // Re-enabled: the PAT works again, but what was minted before the disable stays dead.
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &at, json!({"disabled": false})).status, 200);
    assert_inactive(&introspect_app(&s, &cid, &secret, &u_at), "login token after re-enabling");
    assert_inactive(&introspect_app(&s, &cid, &secret, &derived), "PAT-derived token after re-enabling");
    assert_active(&introspect_app(&s, &cid, &secret, &pat), "the PAT after re-enabling");
    let u_at = s.login("u@example.test", "user-password-123");
    assert_active(&introspect_app(&s, &cid, &secret, &u_at), "a new login after re-enabling");

    // Deleted: inactive.
    assert_eq!(s.delete(&format!("/api/v1/users/{uid}"), &at).status, 204);
    assert_inactive(&introspect_app(&s, &cid, &secret, &u_at), "login token of a deleted user");
    assert_inactive(&introspect_app(&s, &cid, &secret, &pat), "PAT of a deleted user");
}

fn introspect_app_token_after_delete(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");
    let (_, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true}));
    let (id2, cid2, secret2) =
        s.app(&at, json!({"name": "worker", "roles": ["metrics:read"], "access_token_ttl_seconds": 600}));
    let t = cc_token(&s, &cid2, &secret2);

    let r = introspect_app(&s, &cid, &secret, &t);
    assert_active(&r, "app access token");
    assert_eq!(r.body["sub"], json!(cid2));
    assert_eq!(r.body["client_id"], json!(cid2));
    assert_eq!(r.body["acct"], "app");
    assert_eq!(roles_of(&r.body["roles"]), strs(&["metrics:read"]));
    assert_eq!(r.body["exp"].as_i64().unwrap() - r.body["iat"].as_i64().unwrap(), 600);
    // An app without the introspect flag may not introspect, not even its own token.
    let own = introspect_app(&s, &cid2, &secret2, &t);
    assert_eq!(own.status, 403, "own token without the flag: {}", own.body);
    assert!(own.body.get("active").is_none());

    // Narrowing the app's roles shows in introspection.
    assert_eq!(s.patch(&format!("/api/v1/apps/{id2}"), &at, json!({"roles": []})).status, 200);
    let r = introspect_app(&s, &cid, &secret, &t);
    assert_active(&r, "app access token after its app's roles were narrowed");
    assert_eq!(roles_of(&r.body["roles"]), Vec::<String>::new());

    // Disabled: inactive; re-enabled: still inactive (disabling ends the tokens it had).
    assert_eq!(s.patch(&format!("/api/v1/apps/{id2}"), &at, json!({"disabled": true})).status, 200);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t), "token of a disabled app");
    assert_eq!(s.patch(&format!("/api/v1/apps/{id2}"), &at, json!({"disabled": false})).status, 200);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t), "token minted before the app was disabled");
    let t = cc_token(&s, &cid2, &secret2);
    assert_active(&introspect_app(&s, &cid, &secret, &t), "token of the re-enabled app");
    // Regenerating the secret ends the access tokens minted with the old one.
    let r = s.post(&format!("/api/v1/apps/{id2}/secret"), &at, json!({}));
    assert_eq!(r.status, 201);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t), "token after the secret was regenerated");
    let t = cc_token(&s, &cid2, r.body["client_secret"].as_str().unwrap());
    assert_active(&introspect_app(&s, &cid, &secret, &t), "token of the new secret");

    // Deleted: inactive.
    assert_eq!(s.delete(&format!("/api/v1/apps/{id2}"), &at).status, 204);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t), "token of a deleted app");
    assert_inactive(&introspect_bearer(&s, &at, &t), "same, asked by the owner");
    assert_problem(&s.get("/api/v1/me", &t), 401, "bearer of a deleted app");

    // An app token past its expiry is inactive.
    let t1 = cc_token(&s, &cid, &secret);
    assert_active(&introspect_app(&s, &cid, &secret, &t1), "fresh token");
    s.clock.advance(s.state.cfg.access_token_ttl + 60);
    assert_inactive(&introspect_app(&s, &cid, &secret, &t1), "expired app token");
}

fn introspect_api_tokens_and_garbage(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "rs", "introspect": true}));
    let (uid, u_at) = s.user(&at, "u@example.test", &["org:developer"]);
    let created = s.clock.now();
    let (pat_id, pat) = s.pat(&u_at, json!({"name": "deploy", "ttl_days": 7, "roles": ["org:member"]}));

    let r = introspect_app(&s, &cid, &secret, &pat);
    assert_active(&r, "PAT itself");
    assert_eq!(r.body["sub"], json!(uid), "owner");
    assert_eq!(r.body["acct"], "user");
    assert_eq!(r.body["org"], json!(s.org_id));
    assert_eq!(roles_of(&r.body["roles"]), strs(&["org:member"]));
    assert_eq!(r.body["exp"], json!(created + 7 * 86_400), "expiry");
    assert_eq!(r.body["client_id"], json!(pat_id));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!r.text.contains(&pat), "introspection never answers the secret");
    assert!(r.body.get("token").is_none());
    // As an admin bearer too.
    assert_active(&introspect_bearer(&s, &at, &pat), "PAT via admin bearer");

    // Service-account token.
    let sa = service_account(&s, &at, json!({"name": "sa", "roles": ["org:member"]}));
    let (_, sat) = s.sa_token(&at, &sa, json!({"name": "t", "ttl_days": 3}));
    let r = introspect_app(&s, &cid, &secret, &sat);
    assert_active(&r, "sa token itself");
    assert_eq!(r.body["sub"], json!(sa));
    assert_eq!(r.body["acct"], "service_account");
    assert!(!r.text.contains(&sat));

    // Garbage and look-alikes: exactly {"active": false}.
    for (what, t) in [
        ("garbage", "garbage".to_string()),
        ("empty-ish", " ".to_string()),
        ("pat prefix, wrong checksum", {
            // Change the last character (to one it is not already).
            let last = if pat.ends_with('x') { 'y' } else { 'x' };
            format!("{}{last}", &pat[..pat.len() - 1])
        }),
        ("sat with a changed char", {
            let c = if &sat[10..11] == "A" { "B" } else { "A" };
            format!("{}{c}{}", &sat[..10], &sat[11..])
        }),
        ("client secret", secret.clone()),
        ("client id", cid.clone()),
        ("jwt-shaped", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_string()),
        ("tampered jwt", {
            let j = s.exchange_ok(&s.owner_pat);
            let parts: Vec<&str> = j.split('.').collect();
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut claims: Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
            claims["roles"] = json!(["org:owner", "extra:role"]);
            format!("{}.{}.{}", parts[0], e.encode(claims.to_string()), parts[2])
        }),
    ] {
        let r = introspect_app(&s, &cid, &secret, &t);
        if what == "empty-ish" {
            // A blank token is either invalid_request or inactive; never active.
            assert!(r.body["active"] != json!(true), "{what}: {}", r.body);
            continue;
        }
        assert_inactive(&r, what);
    }

    // Expired PAT: inactive.
    s.clock.advance(7 * 86_400 + 1);
    assert_inactive(&introspect_app(&s, &cid, &secret, &pat), "expired PAT");
    assert_active(&introspect_app(&s, &cid, &secret, &s.owner_pat), "a PAT that has not expired");
}

/// Creates org "other" with owner o@other.test through the CLI; answers (org_id, password, PAT).
fn other_org(s: &Server) -> (String, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["org", "create", "other", "--owner-email", "o@other.test"])
        .env("DATABASE_URL", &s.database_url)
        .env("TOKEND_KEYS_DIR", s.dir.path().join("keys"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tokend org create");
    assert!(out.status.success(), "tokend org create failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).expect("one JSON object on stdout");
    let v: Value = serde_json::from_str(line).expect("org create prints JSON");
    let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("org create output lacks {k}")).to_string();
    (field("org_id"), field("password"), field("token"))
}

fn introspect_cross_org(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let (id1, cid1, secret1) = s.app(&at, json!({"name": "one", "introspect": true}));
    let (org2, password2, pat2) = other_org(&s);
    assert!(org2 != s.org_id);
    let at2 = s.login("o@other.test", &password2);
    assert_eq!(s.verify_api(&at2)["org"], json!(org2));
    let (_, cid2, secret2) = s.app(&at2, json!({"name": "two", "introspect": true}));

    // Org 1's tokens of every kind.
    let org1 = [
        ("org1 login token", at.clone()),
        ("org1 PAT-derived token", s.exchange_ok(&s.owner_pat)),
        ("org1 app token", cc_token(&s, &cid1, &secret1)),
        ("org1 PAT", s.owner_pat.clone()),
    ];
    // Org 2's tokens of every kind.
    let org2_tokens = [
        ("org2 login token", at2.clone()),
        ("org2 PAT-derived token", s.exchange_ok(&pat2)),
        ("org2 app token", cc_token(&s, &cid2, &secret2)),
        ("org2 PAT", pat2.clone()),
    ];
    for (what, t) in &org1 {
        assert_active(&introspect_app(&s, &cid1, &secret1, t), &format!("{what}, asked by its own org's app"));
        assert_inactive(&introspect_app(&s, &cid2, &secret2, t), &format!("{what}, asked by org2's app"));
        assert_inactive(&introspect_bearer(&s, &at2, t), &format!("{what}, asked by org2's owner"));
    }
    for (what, t) in &org2_tokens {
        assert_active(&introspect_app(&s, &cid2, &secret2, t), &format!("{what}, asked by its own org's app"));
        assert_inactive(&introspect_app(&s, &cid1, &secret1, t), &format!("{what}, asked by org1's app"));
        assert_inactive(&introspect_bearer(&s, &at, t), &format!("{what}, asked by org1's owner"));
    }

    // Org 2 cannot see or touch org 1's app.
    assert_problem(&s.get(&format!("/api/v1/apps/{id1}"), &at2), 404, "other org's app");
    assert_problem(&s.post(&format!("/api/v1/apps/{id1}/secret"), &at2, json!({})), 404, "regenerate other org's app");
    assert_problem(&s.delete(&format!("/api/v1/apps/{id1}"), &at2), 404, "delete other org's app");
    assert_eq!(s.get("/api/v1/apps", &at2).body["total_count"], 1);
    assert_eq!(cc_basic(&s, &cid1, &secret1, &[]).status, 200, "org1's app untouched");
    // Org 2's app token carries org 2.
    assert_eq!(s.verify_resource(&cc_token(&s, &cid2, &secret2))["org"], json!(org2));
}

// ---------------------------------------------------------------- the oauth2 crate

#[derive(Debug)]
struct HttpErr(String);
impl std::fmt::Display for HttpErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HttpErr {}

/// A synchronous HTTP client for the `oauth2` crate over the project's own ureq (no TLS).
fn oauth2_http(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpErr> {
    let mut r = ureq::request(req.method().as_str(), &req.uri().to_string());
    for (name, value) in req.headers() {
        r = r.set(name.as_str(), value.to_str().map_err(|e| HttpErr(e.to_string()))?);
    }
    let resp = match r.send_bytes(req.body()) {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => return Err(HttpErr(e.to_string())),
    };
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for name in resp.headers_names() {
        if let Some(v) = resp.header(&name) {
            out = out.header(name.as_str(), v);
        }
    }
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).map_err(|e| HttpErr(e.to_string()))?;
    out.body(body).map_err(|e| HttpErr(e.to_string()))
}

fn oauth2_crate_client_credentials(b: &Backend) {
    use oauth2::basic::{BasicClient, BasicErrorResponseType};
    use oauth2::{
        AccessToken, AuthType, ClientId, ClientSecret, IntrospectionUrl, RequestTokenError, Scope,
        TokenIntrospectionResponse, TokenResponse, TokenUrl,
    };

    let s = b.start();
    let at = s.owner_login();
    s.role(&at, "metrics:read");
    let (_, cid, secret) =
        s.app(&at, json!({"name": "rust", "roles": ["metrics:read", "org:member"], "access_token_ttl_seconds": 600, "introspect": true}));
    let client = |secret: &str, auth: AuthType| {
        BasicClient::new(ClientId::new(cid.clone()))
            .set_client_secret(ClientSecret::new(secret.to_string()))
            .set_auth_type(auth)
            .set_token_uri(TokenUrl::new(s.url("/oauth/token")).unwrap())
            .set_introspection_url(IntrospectionUrl::new(s.url("/oauth/introspect")).unwrap())
    };

    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let how = format!("{auth:?}");
        let c = client(&secret, auth.clone());
        let tok = c
            .exchange_client_credentials()
            .request(&oauth2_http)
            .unwrap_or_else(|e| panic!("{how}: client_credentials failed: {e:?}"));
        assert_eq!(*tok.token_type(), oauth2::basic::BasicTokenType::Bearer, "{how}");
        assert_eq!(tok.expires_in(), Some(Duration::from_secs(600)), "{how}");
        let mut scopes: Vec<String> =
            tok.scopes().map(|v| v.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        scopes.sort();
        assert_eq!(scopes, strs(&["metrics:read", "org:member"]), "{how}");
        let claims = s.verify_resource(tok.access_token().secret());
        assert_eq!(claims["sub"], json!(cid), "{how}");
        assert_eq!(claims["client_id"], json!(cid), "{how}");
        assert_eq!(claims["acct"], "app", "{how}");

        // A narrowed scope.
        let tok = c
            .exchange_client_credentials()
            .add_scope(Scope::new("metrics:read".into()))
            .request(&oauth2_http)
            .unwrap_or_else(|e| panic!("{how}: scoped request failed: {e:?}"));
        assert_eq!(
            roles_of(&s.verify_resource(tok.access_token().secret())["roles"]),
            strs(&["metrics:read"]),
            "{how}"
        );
        // A scope beyond the app's roles.
        match c.exchange_client_credentials().add_scope(Scope::new("org:admin".into())).request(&oauth2_http) {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), BasicErrorResponseType::InvalidScope, "{how}")
            }
            other => panic!("{how}: expected invalid_scope, got {:?}", other.map(|_| "a token")),
        }
        // A wrong secret.
        match client("tkd_cs_wrong", auth.clone()).exchange_client_credentials().request(&oauth2_http) {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), BasicErrorResponseType::InvalidClient, "{how}")
            }
            other => panic!("{how}: expected invalid_client, got {:?}", other.map(|_| "a token")),
        }

        // Introspection through the crate: its own token is active, garbage is not.
        let tok = c.exchange_client_credentials().request(&oauth2_http).unwrap();
        let r = c
            .introspect(tok.access_token())
            .request(&oauth2_http)
            .unwrap_or_else(|e| panic!("{how}: introspect: {e:?}"));
        assert!(r.active(), "{how}: own token active");
        assert_eq!(r.sub(), Some(cid.as_str()), "{how}");
        assert_eq!(r.client_id().map(|c| c.to_string()), Some(cid.clone()), "{how}");
        assert!(r.exp().is_some(), "{how}");
        let r = c.introspect(&AccessToken::new("garbage".into())).request(&oauth2_http).unwrap();
        assert!(!r.active(), "{how}: garbage inactive");
    }
}

// ---------------------------------------------------------------- Node clients

/// A directory holding node_modules with openid-client and jose: $TOKEND_NODE_CLIENTS_DIR,
/// ../shared/clients, or target/tmp/node-clients (a copy of ../shared/clients with
/// `npm install --no-audit --no-fund` run in it).
fn node_clients_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("TOKEND_NODE_CLIENTS_DIR") {
        candidates.push(PathBuf::from(d));
    }
    candidates.push(manifest.join("../shared/clients"));
    candidates.push(Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-clients"));
    candidates
        .into_iter()
        .find(|d| d.join("node_modules/openid-client").is_dir() && d.join("node_modules/jose").is_dir())
}

/// A real-client check that cannot run. Locally build.rs has marked it ignored when node
/// or the modules are missing (`tokend_skip_node`), so reaching here means CI=true or a
/// tool that build.rs found but that does not work: a failure either way.
fn cannot_run(why: &str) {
    panic!("node_clients cannot run: {why}");
}

fn node_clients(b: &Backend) {
    if !std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return cannot_run("`node` is not installed");
    }
    let Some(dir) = node_clients_dir() else {
        return cannot_run(
            "no node_modules with openid-client and jose; run `npm install --no-audit --no-fund` in a copy of \
             ../shared/clients at target/tmp/node-clients (or set TOKEND_NODE_CLIENTS_DIR)",
        );
    };
    // Always run the current, unmodified script from ../shared/clients: in place when the
    // modules are there, otherwise as a per-run copy next to the modules (ESM resolves
    // imports from the script's own directory).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/clients/node-clients.mjs");
    let in_place = dir.join("node-clients.mjs");
    let (script, temp) =
        if shared.is_file() && shared.parent().and_then(|p| p.canonicalize().ok()) == dir.canonicalize().ok() {
            (shared, false)
        } else {
            let copy = dir.join(format!("node-clients-{}.mjs", uuid::Uuid::new_v4().simple()));
            std::fs::copy(if shared.is_file() { &shared } else { &in_place }, &copy)
                .expect("copy node-clients.mjs next to its node_modules");
            (copy, true)
        };

    let s = b.start();
    let at = s.owner_login();
    let (_, cid, secret) = s.app(&at, json!({"name": "node", "roles": ["org:member"]}));
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .args([&s.base, &cid, &secret])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start node");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    if temp {
        let _ = std::fs::remove_file(&script);
    }
    let status = status.expect("node-clients.mjs did not finish within 120 s");
    let last = stdout.lines().last().unwrap_or("").trim().to_string();
    assert!(last.ends_with("0 failed") && status.success(), "node-clients.mjs failed ({status}):\n{stdout}\n{stderr}");
    println!("node-clients.mjs ({}):\n{stdout}", script.display());
    assert!(stdout.contains("ok   client_credentials grant"), "{stdout}");
    assert!(stdout.contains("ok   verify with remote JWKS"), "{stdout}");
}

/// A token idle beyond the policy's idle TTL can never be exchanged again, so it frees its
/// slot under the per-account cap like a revoked or expired one.
fn idle_token_frees_its_slot(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let r = s.put("/api/v1/policy", &at, json!({"max_tokens_per_service_account": 1, "idle_ttl_days": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    let sa = s.post("/api/v1/service-accounts", &at, json!({"name": "bot", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/service-accounts/{sa}/tokens");
    assert_eq!(s.post(&path, &at, json!({"name": "a", "ttl_days": 30})).status, 201);
    assert_eq!(s.post(&path, &at, json!({"name": "b", "ttl_days": 30})).status, 409, "cap of 1");
    s.clock.advance(86_400 + 1);
    let at = s.owner_login();
    let r = s.post(&path, &at, json!({"name": "c", "ttl_days": 30}));
    assert_eq!(r.status, 201, "the idle token freed its slot: {}", r.text);
}

backend_tests!(
    idle_token_frees_its_slot,
    apps_crud,
    app_ttl_bounds,
    app_roles_and_who,
    client_credentials_basic_and_post,
    client_auth_failures,
    basic_credentials_are_form_urlencoded,
    regenerated_secret,
    deleted_and_disabled_apps,
    service_accounts_crud,
    sa_token_limit,
    sa_token_limit_follows_policy,
    sa_token_limit_under_concurrency,
    sa_token_ttl_and_roles,
    sa_token_rename_and_revoke,
    sa_exchange_and_role_narrowing,
    service_only_audiences,
    introspection_caller_auth,
    introspect_pat_access_token_after_revoke,
    introspect_expiry_is_exact,
    introspect_login_token_after_disable,
    introspect_app_token_after_delete,
    introspect_api_tokens_and_garbage,
    introspect_cross_org,
    oauth2_crate_client_credentials,
);

/// The real Node clients: ignored (visibly) when `node` or their modules are missing (see
/// build.rs, `tokend_skip_node`); under CI=true they run, and fail saying what is missing.
mod node {
    mod sqlite {
        #[test]
        #[cfg_attr(tokend_skip_node, ignore = "SKIPPED: node or the node clients' modules are missing")]
        fn node_clients() {
            super::super::node_clients(&crate::common::Backend::Sqlite)
        }
    }
    mod postgres {
        #[test]
        #[cfg_attr(tokend_skip_node, ignore = "SKIPPED: node or the node clients' modules are missing")]
        #[cfg_attr(all(tokend_skip_pg, not(tokend_skip_node)), ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
        fn node_clients() {
            super::super::node_clients(&crate::common::Backend::postgres())
        }
    }
}
