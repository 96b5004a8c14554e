//! Organization administration (issue 5) through HTTP: the role × endpoint matrix,
//! two-org isolation, the org-wide token table, policy, people, roles, saved searches
//! and the audit log. Every scenario runs on SQLite and (when configured) PostgreSQL.
use crate::common;
use crate::common::assert::{
    invalid_field as assert_422, invalid_grant as assert_invalid_grant, is_problem, status as assert_status,
};
use crate::common::helpers::{new_sa, new_user, str_of};

use std::collections::BTreeSet;

use common::{Backend, Resp, Server};
use serde_json::{json, Value};
use tokend::clock::{rfc3339, Clock};

const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

fn items(r: &Resp) -> Vec<Value> {
    r.body["items"].as_array().cloned().unwrap_or_default()
}

fn item_ids(r: &Resp) -> Vec<String> {
    items(r).iter().map(|i| str_of(i, "id")).collect()
}

fn qs(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// A user with a password and a name; answers (id, access token from login).
fn person(s: &Server, at: &str, email: &str, name: &str, roles: &[&str]) -> (String, String) {
    let r = s.post("/api/v1/users", at, json!({"email": email, "name": name, "roles": roles}));
    assert_eq!(r.status, 201, "create user {email}: {}", r.text);
    let id = str_of(&r.body, "id");
    s.set_password(at, &id, "user-password-123");
    (id, s.login(email, "user-password-123"))
}

fn new_role(s: &Server, at: &str, name: &str, kind: &str) {
    let r = s.post("/api/v1/roles", at, json!({"name": name, "kind": kind, "description": "test role"}));
    assert_eq!(r.status, 201, "create role {name}: {}", r.text);
}

fn new_saved(s: &Server, at: &str, name: &str, query: &str) -> String {
    let r = s.post("/api/v1/saved-searches", at, json!({"name": name, "query": query}));
    assert_eq!(r.status, 201, "create saved search {name}: {}", r.text);
    str_of(&r.body, "id")
}

/// GET /api/v1/tokens?query; must answer 200.
fn table(s: &Server, at: &str, query: &str) -> Resp {
    let r = s.get(&format!("/api/v1/tokens?{query}"), at);
    assert_eq!(r.status, 200, "GET /api/v1/tokens?{query}: {}", r.text);
    r
}

/// The ids of a filtered table query (one page of 200) with total_count checked exact.
fn table_ids(s: &Server, at: &str, query: &str) -> BTreeSet<String> {
    let q = if query.is_empty() { "page_size=200".to_string() } else { format!("{query}&page_size=200") };
    let r = table(s, at, &q);
    let ids: BTreeSet<String> = item_ids(&r).into_iter().collect();
    assert_eq!(r.body["total_count"], json!(ids.len()), "total_count of ?{query} must be exact: {}", r.text);
    ids
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Runs `tokend org create NAME --owner-email EMAIL` against the test database.
fn cli_org_create(s: &Server, name: &str, email: &str) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["org", "create", name, "--owner-email", email])
        .env("DATABASE_URL", &s.database_url)
        .env("TOKEND_KEYS_DIR", s.dir.path().join("keys"))
        .env("RUST_LOG", "error")
        .output()
        .expect("run tokend org create");
    assert!(out.status.success(), "tokend org create failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("org create prints one JSON object");
    for k in ["org_id", "owner_id", "password", "token"] {
        assert!(v[k].is_string(), "org create output lacks {k}");
    }
    v
}

/// Every page of an /api/v1 list (page_size 200).
fn all_items(s: &Server, at: &str, path: &str) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut text = String::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    for page in 1.. {
        let r = s.get(&format!("{path}{sep}page_size=200&page={page}"), at);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        text.push_str(&r.text);
        let it = items(&r);
        if it.is_empty() {
            break;
        }
        out.extend(it);
    }
    (out, text)
}

// ---------------------------------------------------------------------------------------
// role × endpoint matrix
// ---------------------------------------------------------------------------------------

const WHO: [&str; 6] = ["anonymous", "owner", "admin", "developer", "member", "pat(org:member)"];

/// [anonymous, owner, admin, developer, member, PAT narrowed to org:member]
fn admin_only(ok: u16) -> [u16; 6] {
    [401, ok, ok, 403, 403, 403]
}
fn apps_roles(ok: u16) -> [u16; 6] {
    [401, ok, ok, ok, 403, 403]
}
fn anyone(ok: u16) -> [u16; 6] {
    [401, ok, ok, ok, ok, ok]
}
fn owner_only(ok: u16) -> [u16; 6] {
    [401, ok, 403, 403, 403, 403]
}

struct Case {
    label: String,
    method: &'static str,
    calls: Vec<(String, Option<Value>)>,
    expect: [u16; 6],
}

fn case(method: &'static str, label: &str, f: impl Fn(usize) -> (String, Option<Value>), expect: [u16; 6]) -> Case {
    Case { label: format!("{method} {label}"), method, calls: (0..6).map(f).collect(), expect }
}

fn same(path: String) -> impl Fn(usize) -> (String, Option<Value>) {
    move |_| (path.clone(), None)
}

fn role_endpoint_matrix(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let (_, pat_secret) = s.pat(&owner, json!({"name": "narrow", "ttl_days": 7, "roles": ["org:member"]}));
    let pat = s.exchange_api(&pat_secret);
    let me = s.get("/api/v1/me", &pat);
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["token_roles"], json!(["org:member"]), "the PAT-derived token must carry only org:member");
    let bearers: [Option<&str>; 6] = [None, Some(&owner), Some(&admin), Some(&dev), Some(&member), Some(&pat)];

    // Shared fixtures, and one victim per principal for every destructive call.
    let target = new_user(&s, &owner, "target@example.test", &["org:member"]);
    let victims: Vec<String> =
        (0..6).map(|i| new_user(&s, &owner, &format!("victim{i}@example.test"), &["org:member"])).collect();
    for i in 0..6 {
        new_role(&s, &owner, &format!("matrix:del{i}"), "custom");
    }
    let sa = new_sa(&s, &owner, "shared", &[]);
    let sa_victims: Vec<String> = (0..6).map(|i| new_sa(&s, &owner, &format!("victim {i}"), &[])).collect();
    let (sat, _) = s.sa_token(&owner, &sa, json!({"name": "shared", "ttl_days": 5}));
    let sat_victims: Vec<String> =
        (0..6).map(|i| s.sa_token(&owner, &sa, json!({"name": format!("victim{i}"), "ttl_days": 5})).0).collect();
    let (app, _, _) = s.app(&owner, json!({"name": "shared"}));
    let app_victims: Vec<String> = (0..6).map(|i| s.app(&owner, json!({"name": format!("victim{i}")})).0).collect();
    let pat_victims: Vec<String> =
        (0..6).map(|i| s.pat(&owner, json!({"name": format!("victim{i}"), "ttl_days": 5})).0).collect();
    let saved_victims: Vec<String> =
        (0..6).map(|i| new_saved(&s, &owner, &format!("victim{i}"), "status=active")).collect();

    let cases = vec![
        case("GET", "/users", same("/api/v1/users".into()), admin_only(200)),
        case(
            "POST",
            "/users",
            |i| {
                (
                    "/api/v1/users".into(),
                    Some(json!({"email": format!("new{i}@example.test"), "roles": ["org:member"]})),
                )
            },
            admin_only(201),
        ),
        case("GET", "/users/{id}", same(format!("/api/v1/users/{target}")), admin_only(200)),
        case(
            "PATCH",
            "/users/{id}",
            |i| (format!("/api/v1/users/{target}"), Some(json!({"name": format!("name {i}")}))),
            admin_only(200),
        ),
        case("DELETE", "/users/{id}", |i| (format!("/api/v1/users/{}", victims[i]), None), admin_only(204)),
        case("GET", "/roles", same("/api/v1/roles".into()), anyone(200)),
        case(
            "POST",
            "/roles",
            |i| {
                (
                    "/api/v1/roles".into(),
                    Some(json!({"name": format!("matrix:new{i}"), "kind": "custom", "description": "x"})),
                )
            },
            admin_only(201),
        ),
        case("DELETE", "/roles/{name}", |i| (format!("/api/v1/roles/matrix:del{i}"), None), admin_only(204)),
        case("GET", "/service-accounts", same("/api/v1/service-accounts".into()), admin_only(200)),
        case(
            "POST",
            "/service-accounts",
            |i| ("/api/v1/service-accounts".into(), Some(json!({"name": format!("new {i}"), "roles": []}))),
            admin_only(201),
        ),
        case("GET", "/service-accounts/{id}", same(format!("/api/v1/service-accounts/{sa}")), admin_only(200)),
        case(
            "PATCH",
            "/service-accounts/{id}",
            |i| (format!("/api/v1/service-accounts/{sa}"), Some(json!({"description": format!("d{i}")}))),
            admin_only(200),
        ),
        case(
            "DELETE",
            "/service-accounts/{id}",
            |i| (format!("/api/v1/service-accounts/{}", sa_victims[i]), None),
            admin_only(204),
        ),
        case(
            "GET",
            "/service-accounts/{id}/tokens",
            same(format!("/api/v1/service-accounts/{sa}/tokens")),
            admin_only(200),
        ),
        case(
            "POST",
            "/service-accounts/{id}/tokens",
            |i| {
                (format!("/api/v1/service-accounts/{sa}/tokens"), Some(json!({"name": format!("t{i}"), "ttl_days": 5})))
            },
            admin_only(201),
        ),
        case(
            "PATCH",
            "/service-accounts/{id}/tokens/{tid}",
            |i| (format!("/api/v1/service-accounts/{sa}/tokens/{sat}"), Some(json!({"name": format!("renamed{i}")}))),
            admin_only(200),
        ),
        case(
            "DELETE",
            "/service-accounts/{id}/tokens/{tid}",
            |i| (format!("/api/v1/service-accounts/{sa}/tokens/{}", sat_victims[i]), None),
            admin_only(204),
        ),
        case("GET", "/apps", same("/api/v1/apps".into()), apps_roles(200)),
        case("POST", "/apps", |i| ("/api/v1/apps".into(), Some(json!({"name": format!("app{i}")}))), apps_roles(201)),
        case("GET", "/apps/{id}", same(format!("/api/v1/apps/{app}")), apps_roles(200)),
        case(
            "PATCH",
            "/apps/{id}",
            |i| (format!("/api/v1/apps/{app}"), Some(json!({"description": format!("d{i}")}))),
            apps_roles(200),
        ),
        case("DELETE", "/apps/{id}", |i| (format!("/api/v1/apps/{}", app_victims[i]), None), apps_roles(204)),
        case("POST", "/apps/{id}/secret", same(format!("/api/v1/apps/{app}/secret")), apps_roles(201)),
        case("GET", "/tokens", same("/api/v1/tokens".into()), admin_only(200)),
        case(
            "POST",
            "/tokens/{id}/revoke",
            |i| (format!("/api/v1/tokens/{}/revoke", pat_victims[i]), None),
            admin_only(200),
        ),
        case("GET", "/policy", same("/api/v1/policy".into()), admin_only(200)),
        case(
            "PUT",
            "/policy",
            |_| ("/api/v1/policy".into(), Some(json!({"personal_token_max_ttl_days": 30}))),
            owner_only(200),
        ),
        case("GET", "/saved-searches", same("/api/v1/saved-searches".into()), admin_only(200)),
        case(
            "POST",
            "/saved-searches",
            |i| ("/api/v1/saved-searches".into(), Some(json!({"name": format!("s{i}"), "query": "status=active"}))),
            admin_only(201),
        ),
        // The owner created these: an admin who is not the creator cannot delete them.
        case(
            "DELETE",
            "/saved-searches/{id}",
            |i| (format!("/api/v1/saved-searches/{}", saved_victims[i]), None),
            owner_only(204),
        ),
        case("GET", "/audit", same("/api/v1/audit".into()), admin_only(200)),
        case("GET", "/me", same("/api/v1/me".into()), anyone(200)),
        case("GET", "/me/tokens", same("/api/v1/me/tokens".into()), anyone(200)),
        // A token derived from an API token cannot mint more API tokens.
        case(
            "POST",
            "/me/tokens",
            |i| {
                (
                    "/api/v1/me/tokens".into(),
                    Some(json!({"name": format!("mine{i}"), "ttl_days": 1, "roles": ["org:member"]})),
                )
            },
            [401, 201, 201, 201, 201, 403],
        ),
    ];

    let mut failures = Vec::new();
    for c in &cases {
        for (i, (path, body)) in c.calls.iter().enumerate() {
            let r = s.call(c.method, path, bearers[i], body.as_ref());
            if r.status != c.expect[i] {
                failures
                    .push(format!("{} as {}: expected {}, got {} {}", c.label, WHO[i], c.expect[i], r.status, r.text));
            } else if r.status >= 400 && !is_problem(&r) {
                failures.push(format!("{} as {}: {} is not problem+json", c.label, WHO[i], r.status));
            }
        }
    }
    assert!(failures.is_empty(), "{} matrix mismatches:\n{}", failures.len(), failures.join("\n"));

    // Refused destructive calls left their objects alone.
    for i in [0, 3, 4, 5] {
        assert_eq!(s.get(&format!("/api/v1/users/{}", victims[i]), &owner).status, 200, "user victim of {}", WHO[i]);
        assert_eq!(
            s.get(&format!("/api/v1/service-accounts/{}", sa_victims[i]), &owner).status,
            200,
            "SA victim of {}",
            WHO[i]
        );
        let t = table(&s, &owner, &qs(&[("owner_id", s.owner_id.as_str()), ("status", "revoked")]));
        assert!(!item_ids(&t).contains(&pat_victims[i]), "token victim of {} must stay active", WHO[i]);
    }
    for i in [0, 4, 5] {
        assert_eq!(s.get(&format!("/api/v1/apps/{}", app_victims[i]), &owner).status, 200, "app victim of {}", WHO[i]);
    }
    let roles = s.get("/api/v1/roles", &owner);
    for i in [0, 3, 4, 5] {
        assert!(roles.text.contains(&format!("\"matrix:del{i}\"")), "role victim of {} must remain", WHO[i]);
    }
    for i in [1, 2] {
        assert!(!roles.text.contains(&format!("\"matrix:del{i}\"")), "role deleted by {} must be gone", WHO[i]);
    }
    let saved = s.get("/api/v1/saved-searches?page_size=200", &owner);
    for i in [0, 2, 3, 4, 5] {
        assert!(item_ids(&saved).contains(&saved_victims[i]), "saved search victim of {} must remain", WHO[i]);
    }
}

// ---------------------------------------------------------------------------------------
// two-org isolation
// ---------------------------------------------------------------------------------------

fn introspect_as(s: &Server, bearer: &str, token: &str) -> Resp {
    let body = qs(&[("token", token)]);
    s.raw(
        "POST",
        "/oauth/introspect",
        &[("Authorization", &format!("Bearer {bearer}")), ("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

/// A view of org A's objects as its owner sees them, to prove nothing changed.
fn org_a_view(s: &Server, at: &str, paths: &[String]) -> Vec<(String, u16, String)> {
    paths
        .iter()
        .map(|p| {
            let r = s.get(p, at);
            (p.clone(), r.status, r.text)
        })
        .collect()
}

/// Every record except the audit log (saved searches included: `common::SNAPSHOT_TABLES`).
fn snapshot_without_audit(s: &Server) -> common::Snapshot {
    s.data_snapshot()
}

fn two_org_isolation(b: &Backend) {
    let s = b.start();
    let a = s.owner_login();
    // Objects of org A.
    new_role(&s, &a, "metrics:read", "service");
    let a_user = new_user(&s, &a, "alice@a.test", &["org:member", "metrics:read"]);
    let a_sa = new_sa(&s, &a, "a-robot", &["metrics:read"]);
    let (a_sat, a_sat_secret) = s.sa_token(&a, &a_sa, json!({"name": "a-sa-token", "ttl_days": 5}));
    let (a_app, a_client, a_client_secret) = s.app(&a, json!({"name": "a-app", "roles": ["metrics:read"]}));
    let (a_pat, a_pat_secret) = s.pat(&a, json!({"name": "a-pat", "ttl_days": 5}));
    let a_saved = new_saved(&s, &a, "a-saved", "status=active");
    let r = s.put("/api/v1/policy", &a, json!({"personal_token_max_ttl_days": 10}));
    assert_eq!(r.status, 200, "{}", r.text);
    let a_access = s.exchange_ok(&a_pat_secret);

    // Org B, made with the CLI against the same database while the server runs.
    let out = cli_org_create(&s, "other", "o@other.test");
    let b_org = str_of(&out, "org_id");
    let b_owner_id = str_of(&out, "owner_id");
    assert_ne!(b_org, s.org_id);
    let bo = s.login("o@other.test", out["password"].as_str().unwrap());
    let me = s.get("/api/v1/me", &bo);
    assert_eq!(me.body["org"], json!(b_org), "{}", me.text);
    let b_sa = new_sa(&s, &bo, "b-robot", &[]);

    let a_views = vec![
        format!("/api/v1/users/{a_user}"),
        format!("/api/v1/users/{}", s.owner_id),
        "/api/v1/users?page_size=200".to_string(),
        format!("/api/v1/service-accounts/{a_sa}"),
        format!("/api/v1/service-accounts/{a_sa}/tokens"),
        format!("/api/v1/apps/{a_app}"),
        "/api/v1/apps".to_string(),
        "/api/v1/tokens?page_size=200".to_string(),
        format!("/api/v1/me/tokens/{a_pat}"),
        "/api/v1/saved-searches".to_string(),
        "/api/v1/roles".to_string(),
        "/api/v1/policy".to_string(),
    ];
    let view_before = org_a_view(&s, &a, &a_views);
    let snap_before = snapshot_without_audit(&s);
    let a_audit_before = s.get("/api/v1/audit?page_size=1", &a).body["total_count"].clone();

    let a_ids = [
        s.org_id.clone(),
        s.owner_id.clone(),
        a_user.clone(),
        a_sa.clone(),
        a_sat.clone(),
        a_app.clone(),
        a_client.clone(),
        a_pat.clone(),
        a_saved.clone(),
    ];
    let pwn = json!({"name": "pwned"});
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/users/{a_user}"), None),
        ("PATCH", format!("/api/v1/users/{a_user}"), Some(json!({"name": "pwned", "disabled": true}))),
        ("DELETE", format!("/api/v1/users/{a_user}"), None),
        ("GET", format!("/api/v1/users/{}", s.owner_id), None),
        ("PATCH", format!("/api/v1/users/{}", s.owner_id), Some(json!({"roles": ["org:member"]}))),
        ("DELETE", format!("/api/v1/users/{}", s.owner_id), None),
        ("GET", format!("/api/v1/service-accounts/{a_sa}"), None),
        ("PATCH", format!("/api/v1/service-accounts/{a_sa}"), Some(pwn.clone())),
        ("DELETE", format!("/api/v1/service-accounts/{a_sa}"), None),
        ("GET", format!("/api/v1/service-accounts/{a_sa}/tokens"), None),
        ("POST", format!("/api/v1/service-accounts/{a_sa}/tokens"), Some(json!({"name": "x", "ttl_days": 1}))),
        ("PATCH", format!("/api/v1/service-accounts/{a_sa}/tokens/{a_sat}"), Some(pwn.clone())),
        ("DELETE", format!("/api/v1/service-accounts/{a_sa}/tokens/{a_sat}"), None),
        ("PATCH", format!("/api/v1/service-accounts/{b_sa}/tokens/{a_sat}"), Some(pwn.clone())),
        ("DELETE", format!("/api/v1/service-accounts/{b_sa}/tokens/{a_sat}"), None),
        ("GET", format!("/api/v1/apps/{a_app}"), None),
        ("PATCH", format!("/api/v1/apps/{a_app}"), Some(json!({"name": "pwned", "disabled": true}))),
        ("DELETE", format!("/api/v1/apps/{a_app}"), None),
        ("POST", format!("/api/v1/apps/{a_app}/secret"), None),
        ("POST", format!("/api/v1/tokens/{a_pat}/revoke"), None),
        ("POST", format!("/api/v1/tokens/{a_sat}/revoke"), None),
        ("DELETE", format!("/api/v1/saved-searches/{a_saved}"), None),
        ("DELETE", "/api/v1/roles/metrics:read".to_string(), None),
        ("GET", format!("/api/v1/me/tokens/{a_pat}"), None),
        ("PATCH", format!("/api/v1/me/tokens/{a_pat}"), Some(pwn.clone())),
        ("DELETE", format!("/api/v1/me/tokens/{a_pat}"), None),
        ("POST", format!("/api/v1/me/tokens/{a_pat}/rotate"), None),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in &attempts {
        let r = s.call(method, path, Some(&bo), body.as_ref());
        if r.status != 404 || !is_problem(&r) {
            failures.push(format!("{method} {path}: expected 404 problem+json, got {} {}", r.status, r.text));
        }
        if let Some(id) = a_ids.iter().find(|id| r.text.contains(id.as_str())) {
            failures.push(format!("{method} {path}: the answer names org A's {id}"));
        }
    }
    assert!(failures.is_empty(), "org B reached org A:\n{}", failures.join("\n"));

    // Org B's lists hold nothing of org A.
    let leaks = |path: &str| {
        let (it, text) = all_items(&s, &bo, path);
        for id in &a_ids {
            assert!(!text.contains(id.as_str()), "B's {path} shows org A's {id}");
        }
        for email in ["alice@a.test", s.owner_email.as_str()] {
            assert!(!text.contains(email), "B's {path} shows org A's {email}");
        }
        it
    };
    let users = leaks("/api/v1/users");
    assert_eq!(users.iter().map(|u| str_of(u, "id")).collect::<Vec<_>>(), vec![b_owner_id.clone()], "B's users");
    let toks = leaks("/api/v1/tokens");
    assert_eq!(toks.len(), 1, "B's token table must hold only B's bootstrap token: {toks:?}");
    assert_eq!(toks[0]["owner_id"], json!(b_owner_id));
    assert!(leaks("/api/v1/apps").is_empty(), "B has no apps");
    let sas = leaks("/api/v1/service-accounts");
    assert_eq!(sas.iter().map(|x| str_of(x, "id")).collect::<Vec<_>>(), vec![b_sa.clone()]);
    assert!(leaks("/api/v1/saved-searches").is_empty(), "B has no saved searches");
    // B's refused probes are audited in B's own log with the ids B sent; only successful
    // events could carry A's data.
    let audit = leaks("/api/v1/audit?outcome=success");
    assert!(!audit.is_empty(), "B's audit log has B's own events");
    assert_eq!(leaks("/api/v1/me/tokens").len(), 1, "B's owner has one personal token");
    let roles = s.get("/api/v1/roles", &bo);
    assert!(!roles.text.contains("metrics:read"), "B's role catalogue shows A's role: {}", roles.text);
    let pol = s.get("/api/v1/policy", &bo);
    assert_eq!(pol.body["personal_token_max_ttl_days"], json!(30), "B's policy is its own: {}", pol.text);
    // Filters naming A's objects find nothing in B.
    for q in [format!("owner_id={a_user}"), format!("owner_id={a_sa}"), format!("owner_id={}", s.owner_id)] {
        let r = table(&s, &bo, &q);
        assert_eq!(r.body["total_count"], json!(0), "B's table ?{q}: {}", r.text);
    }
    for q in [format!("object={a_user}"), format!("actor={}", s.owner_id), format!("object={a_pat}")] {
        let r = s.get(&format!("/api/v1/audit?{q}&outcome=success"), &bo);
        assert_eq!(r.body["total_count"], json!(0), "B's audit ?{q}: {}", r.text);
    }
    // A's custom role is not in B's catalogue, so B cannot grant it.
    assert_422(
        &s.post("/api/v1/service-accounts", &bo, json!({"name": "x", "roles": ["metrics:read"]})),
        "roles",
        "B grants A's role",
    );

    // Introspection: B cannot see A's tokens.
    for t in [a_pat_secret.as_str(), a_sat_secret.as_str(), a_access.as_str()] {
        let r = introspect_as(&s, &bo, t);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"active": false}), "B introspecting A's token");
    }
    let r = introspect_as(&s, &a, &a_pat_secret);
    assert_eq!(r.body["active"], json!(true), "control: A introspects its own token: {}", r.text);

    // Nothing of A changed.
    assert_eq!(snapshot_without_audit(&s), snap_before, "B's attempts changed the database");
    assert_eq!(org_a_view(&s, &a, &a_views), view_before, "B's attempts changed org A");
    assert_eq!(s.get("/api/v1/audit?page_size=1", &a).body["total_count"], a_audit_before, "A's audit log changed");
    s.exchange_ok(&a_pat_secret);
    s.exchange_ok(&a_sat_secret);
    let cc = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&a_client, &a_client_secret)));
    assert_eq!(cc.status, 200, "A's app secret still works: {}", cc.text);

    // Emails are unique per org, not across orgs.
    let r = s.post("/api/v1/users", &bo, json!({"email": "alice@a.test"}));
    assert_eq!(r.status, 201, "B may have its own alice@a.test: {}", r.text);
    assert_eq!(s.get(&format!("/api/v1/users/{a_user}"), &a).status, 200);
}

// ---------------------------------------------------------------------------------------
// the org-wide token table
// ---------------------------------------------------------------------------------------

fn token_table_filters(b: &Backend) {
    let s = b.start();
    let t0 = s.clock.now();
    let owner = s.owner_login();
    let r = s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 3}));
    assert_eq!(r.status, 200, "{}", r.text);
    new_role(&s, &owner, "metrics:read", "service");
    let (carol, carol_at) = person(&s, &owner, "carol@example.test", "Carol Example", &["org:member"]);
    let robot = new_sa(&s, &owner, "robot", &["metrics:read"]);

    let boot = {
        let r = table(&s, &owner, "");
        assert_eq!(r.body["total_count"], json!(1), "only the bootstrap token at first: {}", r.text);
        str_of(&items(&r)[0], "id")
    };
    let (alpha, alpha_secret) = s.pat(&owner, json!({"name": "alpha", "description": "short lived", "ttl_days": 1}));
    let (beta, beta_secret) =
        s.pat(&owner, json!({"name": "beta", "description": "Nightly BACKUP job", "ttl_days": 30}));
    let (gamma, gamma_secret) = s.pat(&owner, json!({"name": "gamma", "ttl_days": 30}));
    let (delta, delta_secret) = s.pat(&owner, json!({"name": "delta", "ttl_days": 30}));
    let (deploy, _) = s.pat(&owner, json!({"name": "Deploy-Bot", "ttl_days": 30}));
    let (carol_tok, carol_secret) = s.pat(&carol_at, json!({"name": "carol-cli", "ttl_days": 30}));
    let (ingest, ingest_secret) = s.sa_token(&owner, &robot, json!({"name": "ingest", "ttl_days": 30}));
    let all = set(&[&boot, &alpha, &beta, &gamma, &delta, &deploy, &carol_tok, &ingest]);
    assert_eq!(table_ids(&s, &owner, ""), all);

    // Admin revoke of any token of the org.
    let r = s.post(&format!("/api/v1/tokens/{delta}/revoke"), &owner, json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(r.body["revoked_by"], json!(s.owner_id));
    assert!(r.body["revoked_at"].is_string());
    assert_invalid_grant(&s.exchange(&delta_secret), "revoked through the table");
    assert_status(&s.post("/api/v1/tokens/no-such-token/revoke", &owner, json!({})), 404, "revoke unknown");

    // Two days later gamma and ingest are used; two more days later beta/deploy/carol are idle.
    s.clock.advance(2 * DAY);
    s.exchange_ok(&gamma_secret);
    s.exchange_ok(&ingest_secret);
    s.flush_usage();
    s.clock.advance(2 * DAY);
    let owner = s.owner_login();

    let by_status = |st: &str| {
        let r = table(&s, &owner, &format!("status={st}&page_size=200"));
        for it in items(&r) {
            assert_eq!(it["status"], json!(st), "record status under status={st}: {it}");
        }
        table_ids(&s, &owner, &format!("status={st}"))
    };
    assert_eq!(by_status("active"), set(&[&boot, &gamma, &ingest]), "status=active");
    assert_eq!(by_status("idle"), set(&[&beta, &deploy, &carol_tok]), "status=idle");
    assert_eq!(by_status("expired"), set(&[&alpha]), "status=expired");
    assert_eq!(by_status("revoked"), set(&[&delta]), "status=revoked");

    assert_eq!(table_ids(&s, &owner, "usage=used"), set(&[&gamma, &ingest]), "usage=used");
    assert_eq!(
        table_ids(&s, &owner, "usage=never_used"),
        set(&[&boot, &alpha, &beta, &delta, &deploy, &carol_tok]),
        "usage=never_used"
    );
    let since = |t: i64| format!("unused_since={}", qs(&[("x", rfc3339(t).as_str())]).trim_start_matches("x="));
    assert_eq!(
        table_ids(&s, &owner, &since(t0 + DAY)),
        set(&[&boot, &alpha, &beta, &delta, &deploy, &carol_tok]),
        "unused_since before the uses"
    );
    assert_eq!(table_ids(&s, &owner, &since(t0 + 3 * DAY)), all, "unused_since after the uses");

    assert_eq!(table_ids(&s, &owner, "owner_kind=service_account"), set(&[&ingest]));
    assert_eq!(table_ids(&s, &owner, "owner_kind=user").len(), 7);
    assert_eq!(table_ids(&s, &owner, &format!("owner_id={carol}")), set(&[&carol_tok]));
    assert_eq!(table_ids(&s, &owner, &format!("owner_id={robot}")), set(&[&ingest]));
    assert_eq!(table_ids(&s, &owner, "role=metrics:read"), set(&[&ingest]), "role=metrics:read");
    assert_eq!(
        table_ids(&s, &owner, "owner_kind=user&status=idle"),
        set(&[&beta, &deploy, &carol_tok]),
        "combined filters"
    );

    // q: case-insensitive substring of name, description, hint, owner email.
    assert_eq!(table_ids(&s, &owner, "q=deploy-BOT"), set(&[&deploy]), "q on name");
    assert_eq!(table_ids(&s, &owner, "q=backup"), set(&[&beta]), "q on description");
    assert_eq!(table_ids(&s, &owner, &qs(&[("q", "CAROL@Example")])), set(&[&carol_tok]), "q on owner email");
    let gamma_hint = {
        let r = table(&s, &owner, &format!("owner_id={}&page_size=200", s.owner_id));
        let it = items(&r).into_iter().find(|i| i["id"] == json!(gamma)).unwrap();
        str_of(&it, "hint")
    };
    let hint_q: String = gamma_hint
        .trim_end_matches('…')
        .chars()
        .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect();
    let hits = table_ids(&s, &owner, &qs(&[("q", hint_q.as_str())]));
    assert!(hits.contains(&gamma), "q on hint {hint_q:?} must find gamma: {hits:?}");
    assert_eq!(table_ids(&s, &owner, "q=no-such-thing-anywhere"), BTreeSet::new());
    assert_eq!(table_ids(&s, &owner, &qs(&[("q", "%")])), BTreeSet::new(), "q is a literal substring, not a pattern");

    // Records carry the token fields plus owner name and email.
    let r = table(&s, &owner, "page_size=200");
    let rec = |id: &str| items(&r).into_iter().find(|i| i["id"] == json!(id)).unwrap();
    let c = rec(&carol_tok);
    assert_eq!(c["owner_email"], json!("carol@example.test"), "{c}");
    assert_eq!(c["owner_name"], json!("Carol Example"), "{c}");
    assert_eq!(c["owner_kind"], json!("user"));
    assert_eq!(c["owner_id"], json!(carol));
    assert_eq!(c["idle_ttl_days"], json!(3));
    for k in common::RECORD_FIELDS {
        assert!(c.get(k).is_some(), "record lacks {k}: {c}");
    }
    let i = rec(&ingest);
    assert_eq!(i["owner_name"], json!("robot"), "{i}");
    assert_eq!(i["owner_kind"], json!("service_account"));
    assert_eq!(i["roles"], json!(["metrics:read"]));
    let g = rec(&gamma);
    assert_eq!(g["owner_email"], json!(s.owner_email));
    assert_eq!(g["last_used_at"], json!(rfc3339(t0 + 2 * DAY)), "{g}");
    assert_eq!(g["last_used_ip"], json!("127.0.0.1"), "{g}");
    assert!(!r.text.contains(&gamma_secret) && !r.text.contains(&ingest_secret), "the table never shows secrets");

    // Idle and expired tokens really stop at the exchange (the clock stands at t0 + 4 days:
    // alpha's one-day TTL is over, beta and carol's token were never used within the
    // three-day idle TTL), and the refusal does not revive them.
    assert_eq!(s.exchange(&gamma_secret).status, 200, "gamma is active");
    assert_invalid_grant(&s.exchange(&beta_secret), "beta is idle");
    assert_invalid_grant(&s.exchange(&carol_secret), "carol's token is idle");
    assert_invalid_grant(&s.exchange(&alpha_secret), "alpha is expired");
    s.flush_usage();
    assert_eq!(by_status("idle"), set(&[&beta, &deploy, &carol_tok]), "refused exchanges leave idle tokens idle");
    assert_eq!(by_status("expired"), set(&[&alpha]), "a refused exchange leaves an expired token expired");

    // Validation: 422 naming the parameter.
    let bad = |q: &str, field: &str| {
        let r = s.get(&format!("/api/v1/tokens?{q}"), &owner);
        assert_422(&r, field, &format!("?{q}"));
    };
    bad("page_size=201", "page_size");
    bad("page_size=0", "page_size");
    bad("page=0", "page");
    bad("page=-1", "page");
    bad("page=abc", "page");
    bad("sort=colour", "sort");
    bad("order=sideways", "order");
    bad("colour=red", "colour");
    bad("status=bogus", "status");
    bad("status=ACTIVE", "status");
    bad("owner_kind=app", "owner_kind");
    bad("usage=sometimes", "usage");
    bad("unused_since=yesterday", "unused_since");
    let r = table(&s, &owner, "page_size=200");
    assert_eq!(r.body["page_size"], json!(200));
    // Only admins see the table.
    assert_status(&s.get("/api/v1/tokens", &carol_at), 401, "carol's login token expired on the server clock");
    let carol_at = s.login("carol@example.test", "user-password-123");
    assert_status(&s.get("/api/v1/tokens", &carol_at), 403, "member");
}

fn sort_key(sort: &str, it: &Value) -> String {
    match sort {
        "last_used_at" => it["last_used_at"].as_str().unwrap_or("").to_string(),
        "owner" => it["owner_email"].as_str().or(it["owner_name"].as_str()).unwrap_or("").to_string(),
        k => str_of(it, k),
    }
}

fn token_table_sorts_and_pages(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    // Owners sort the same by email and by name: admin, carol, robot, zed.
    let (_, carol) = person(&s, &owner, "carol@example.test", "carol", &["org:member"]);
    let (_, zed) = person(&s, &owner, "zed@example.test", "zed", &["org:developer"]);
    let robot = new_sa(&s, &owner, "robot", &[]);
    for _ in 0..3 {
        s.pat(&owner, json!({"name": "same", "ttl_days": 10}));
    }
    for _ in 0..2 {
        s.pat(&carol, json!({"name": "same", "ttl_days": 20}));
    }
    s.clock.advance(60);
    let (_, beta) = s.pat(&carol, json!({"name": "beta", "ttl_days": 5}));
    s.sa_token(&owner, &robot, json!({"name": "same", "ttl_days": 30}));
    let (_, alpha) = s.sa_token(&owner, &robot, json!({"name": "alpha", "ttl_days": 30}));
    s.clock.advance(60);
    let (_, gamma) = s.pat(&zed, json!({"name": "gamma", "ttl_days": 3}));
    s.pat(&owner, json!({"name": "same", "ttl_days": 10}));
    s.clock.advance(30);
    s.exchange_ok(&beta);
    s.exchange_ok(&alpha);
    s.clock.advance(30);
    s.exchange_ok(&gamma);
    s.flush_usage();

    let all = table_ids(&s, &owner, "");
    let n = all.len();
    assert_eq!(n, 11, "bootstrap + 10 tokens");

    for sort in ["created_at", "name", "expires_at", "last_used_at", "owner"] {
        for order in ["asc", "desc"] {
            let ctx = format!("sort={sort}&order={order}");
            let mut seen: Vec<Value> = Vec::new();
            let mut page = 1;
            loop {
                let r = table(&s, &owner, &format!("{ctx}&page_size=3&page={page}"));
                assert_eq!(r.body["total_count"], json!(n), "{ctx} page {page}: total_count");
                assert_eq!(r.body["page"], json!(page));
                assert_eq!(r.body["page_size"], json!(3));
                let it = items(&r);
                let expected_len = n.saturating_sub((page - 1) * 3).min(3);
                assert_eq!(it.len(), expected_len, "{ctx} page {page} length");
                if it.is_empty() {
                    break;
                }
                seen.extend(it);
                page += 1;
            }
            assert_eq!(page, 5, "{ctx}: 4 pages then an empty one");
            let ids: Vec<String> = seen.iter().map(|i| str_of(i, "id")).collect();
            let unique: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(unique.len(), ids.len(), "{ctx}: pages overlap: {ids:?}");
            assert_eq!(unique, all, "{ctx}: the pages' union must be every token");
            let mut tie_dirs = BTreeSet::new();
            for w in seen.windows(2) {
                let (ka, kb) = (sort_key(sort, &w[0]), sort_key(sort, &w[1]));
                let ok = if order == "asc" { ka <= kb } else { ka >= kb };
                assert!(ok, "{ctx}: {ka:?} then {kb:?} is out of order");
                if ka == kb {
                    let (ia, ib) = (str_of(&w[0], "id"), str_of(&w[1], "id"));
                    assert_ne!(ia, ib);
                    tie_dirs.insert(ia < ib);
                }
            }
            assert!(!tie_dirs.is_empty(), "{ctx}: the data must contain ties");
            if order == "asc" {
                assert_eq!(tie_dirs, BTreeSet::from([true]), "{ctx}: ties must be broken by ascending id");
            } else {
                assert_eq!(tie_dirs.len(), 1, "{ctx}: ties must be broken by id consistently");
            }
        }
    }
    // The default order is created_at ascending.
    let dflt: Vec<String> = item_ids(&table(&s, &owner, "page_size=200"));
    let explicit: Vec<String> = item_ids(&table(&s, &owner, "page_size=200&sort=created_at&order=asc"));
    assert_eq!(dflt, explicit, "default sort");
    // Beyond the end: an empty page with the exact total.
    let r = table(&s, &owner, "page=9&page_size=3");
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total_count"], json!(n));
    // The last page exactly.
    let r = table(&s, &owner, "page=2&page_size=10");
    assert_eq!(items(&r).len(), 1);
    assert_eq!(r.body["total_count"], json!(n));
    let r = table(&s, &owner, "page=1&page_size=11");
    assert_eq!(items(&r).len(), 11);
    assert_eq!(table(&s, &owner, "page=2&page_size=11").body["items"], json!([]));
}

// ---------------------------------------------------------------------------------------
// policy
// ---------------------------------------------------------------------------------------

fn policy_defaults_validation_and_limits(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let defaults = json!({
        "personal_token_max_ttl_days": 30, "service_token_max_ttl_days": 365,
        "idle_ttl_days": null, "max_tokens_per_service_account": 20,
    });
    let four = |v: &Value| -> Value {
        json!({
            "personal_token_max_ttl_days": v["personal_token_max_ttl_days"],
            "service_token_max_ttl_days": v["service_token_max_ttl_days"],
            "idle_ttl_days": v["idle_ttl_days"],
            "max_tokens_per_service_account": v["max_tokens_per_service_account"],
        })
    };
    let r = s.get("/api/v1/policy", &owner);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(four(&r.body), defaults);
    assert!(r.body.get("idle_ttl_days").is_some_and(Value::is_null), "idle_ttl_days is present and null: {}", r.text);
    let (_, before_secret) = s.pat(&owner, json!({"name": "before", "ttl_days": 30}));
    let snap = snapshot_without_audit(&s);

    let bad: Vec<(Value, &str)> = vec![
        (json!({"personal_token_max_ttl_days": 0}), "personal_token_max_ttl_days"),
        (json!({"personal_token_max_ttl_days": -1}), "personal_token_max_ttl_days"),
        (json!({"personal_token_max_ttl_days": "7"}), "personal_token_max_ttl_days"),
        (json!({"personal_token_max_ttl_days": 7.5}), "personal_token_max_ttl_days"),
        (json!({"personal_token_max_ttl_days": 3651}), "personal_token_max_ttl_days"),
        (json!({"personal_token_max_ttl_days": null}), "personal_token_max_ttl_days"),
        (json!({"service_token_max_ttl_days": 0}), "service_token_max_ttl_days"),
        (json!({"service_token_max_ttl_days": 3651}), "service_token_max_ttl_days"),
        (json!({"service_token_max_ttl_days": "365"}), "service_token_max_ttl_days"),
        (json!({"idle_ttl_days": 0}), "idle_ttl_days"),
        (json!({"idle_ttl_days": -3}), "idle_ttl_days"),
        (json!({"idle_ttl_days": 3651}), "idle_ttl_days"),
        (json!({"idle_ttl_days": "5"}), "idle_ttl_days"),
        (json!({"max_tokens_per_service_account": 0}), "max_tokens_per_service_account"),
        (json!({"max_tokens_per_service_account": -20}), "max_tokens_per_service_account"),
        (json!({"max_tokens_per_service_account": "20"}), "max_tokens_per_service_account"),
        (json!({"personal_token_max_ttl_days": 7, "idle_ttl_days": 0}), "idle_ttl_days"),
        (json!({"personal_token_max_ttl_days": 7, "bogus": 1}), "bogus"),
    ];
    for (body, field) in &bad {
        assert_422(&s.put("/api/v1/policy", &owner, body.clone()), field, &format!("PUT /policy {body}"));
    }
    let r = s.put("/api/v1/policy", &owner, json!([30]));
    assert_eq!(r.status, 422, "a non-object policy: {}", r.text);
    assert_eq!(four(&s.get("/api/v1/policy", &owner).body), defaults, "refused updates change nothing");
    assert_eq!(snapshot_without_audit(&s), snap, "refused updates write nothing");

    // Only the owner writes.
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    assert_status(&s.put("/api/v1/policy", &admin, json!({"personal_token_max_ttl_days": 7})), 403, "admin PUT");
    assert_eq!(s.get("/api/v1/policy", &admin).status, 200, "admin reads");

    let r = s.put("/api/v1/policy", &owner, json!({"personal_token_max_ttl_days": 7}));
    assert_eq!(r.status, 200, "{}", r.text);
    let expect = json!({"personal_token_max_ttl_days": 7, "service_token_max_ttl_days": 365, "idle_ttl_days": null, "max_tokens_per_service_account": 20});
    assert_eq!(four(&r.body), expect);
    assert_eq!(four(&s.get("/api/v1/policy", &owner).body), expect);

    // At and over the new limit.
    let r = s.post("/api/v1/me/tokens", &owner, json!({"roles": ["org:owner"], "name": "at-limit", "ttl_days": 7}));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = tokend::clock::parse_rfc3339(r.body["created_at"].as_str().unwrap()).unwrap();
    let expires = tokend::clock::parse_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, 7 * DAY);
    assert_422(
        &s.post("/api/v1/me/tokens", &owner, json!({"roles": ["org:owner"], "name": "over", "ttl_days": 8})),
        "ttl_days",
        "PAT over the limit",
    );
    // Tokens made before the change keep their settings.
    s.exchange_ok(&before_secret);
    let mine = s.get("/api/v1/me/tokens?page_size=200", &owner);
    let before = items(&mine).into_iter().find(|t| t["name"] == "before").unwrap();
    let (c, e) = (
        tokend::clock::parse_rfc3339(before["created_at"].as_str().unwrap()).unwrap(),
        tokend::clock::parse_rfc3339(before["expires_at"].as_str().unwrap()).unwrap(),
    );
    assert_eq!(e - c, 30 * DAY, "a token created before the change keeps its expiry");

    // Service-account limits.
    let r =
        s.put("/api/v1/policy", &owner, json!({"service_token_max_ttl_days": 10, "max_tokens_per_service_account": 2}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["personal_token_max_ttl_days"], json!(7), "absent fields keep their value");
    let sa = new_sa(&s, &owner, "robot", &[]);
    s.sa_token(&owner, &sa, json!({"name": "one", "ttl_days": 10}));
    assert_422(
        &s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner, json!({"name": "long", "ttl_days": 11})),
        "ttl_days",
        "SA token over the limit",
    );
    s.sa_token(&owner, &sa, json!({"name": "two", "ttl_days": 1}));
    assert_status(
        &s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner, json!({"name": "three", "ttl_days": 1})),
        409,
        "third live token with a cap of 2",
    );

    // Idle TTL applies to tokens created afterwards; null clears it.
    let r = s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 5}));
    assert_eq!(r.body["idle_ttl_days"], json!(5), "{}", r.text);
    let r = s.post("/api/v1/me/tokens", &owner, json!({"roles": ["org:owner"], "name": "idle5", "ttl_days": 7}));
    assert_eq!(r.body["idle_ttl_days"], json!(5), "{}", r.text);
    assert_eq!(before["idle_ttl_days"], Value::Null);
    let r = s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": null}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["idle_ttl_days"], Value::Null);
    let r = s.post("/api/v1/me/tokens", &owner, json!({"roles": ["org:owner"], "name": "no-idle", "ttl_days": 7}));
    assert_eq!(r.body["idle_ttl_days"], Value::Null, "{}", r.text);

    // Every change is audited with before and after.
    let r = s.get("/api/v1/audit?action=policy.update&page_size=200", &owner);
    assert_eq!(r.status, 200, "{}", r.text);
    let ev: Vec<Value> = items(&r).into_iter().filter(|e| e["outcome"] == json!("success")).collect();
    assert_eq!(ev.len(), 4, "four successful updates: {}", r.text);
    let first = &ev[0];
    assert_eq!(first["actor_id"], json!(s.owner_id));
    assert_eq!(first["outcome"], json!("success"));
    assert_eq!(first["detail"]["before"]["personal_token_max_ttl_days"], json!(30), "{first}");
    assert_eq!(first["detail"]["after"]["personal_token_max_ttl_days"], json!(7), "{first}");
    let last = &ev[3];
    assert_eq!(last["detail"]["before"]["idle_ttl_days"], json!(5), "{last}");
    assert_eq!(last["detail"]["after"]["idle_ttl_days"], Value::Null, "{last}");
}

// ---------------------------------------------------------------------------------------
// people
// ---------------------------------------------------------------------------------------

fn users_crud_and_filters(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.post(
        "/api/v1/users",
        &owner,
        json!({"email": "Dana@Example.TEST", "name": "Dana Q", "roles": ["org:developer"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["has_password"], json!(false), "a new person has no password until they redeem a code");
    let dana = str_of(&r.body, "id");
    s.set_password(&owner, &dana, "dana-password-1");
    assert_eq!(r.body["email"], json!("dana@example.test"));
    assert_eq!(r.body["name"], json!("Dana Q"));
    assert_eq!(r.body["roles"], json!(["org:developer"]));
    assert_eq!(r.body["disabled"], json!(false));
    assert_status(&s.post("/api/v1/users", &owner, json!({"email": "dana@example.test"})), 409, "duplicate email");
    assert_status(
        &s.post("/api/v1/users", &owner, json!({"email": " DANA@example.test "})),
        409,
        "duplicate email, other case",
    );
    for bad in ["not-an-email", "a@", "@b.test", "a b@c.test", "a@b@c.test", ""] {
        assert_422(&s.post("/api/v1/users", &owner, json!({"email": bad})), "email", &format!("email {bad:?}"));
    }
    let before = s.data_snapshot();
    let r = s.post("/api/v1/users", &owner, json!({"email": "pw@example.test", "password": "an-admin-set-one"}));
    assert_status(&r, 422, "an admin never sets a password");
    assert!(r.text.contains("password"), "the error names the field: {}", r.text);
    assert_eq!(s.data_snapshot(), before, "the refused create changed nothing");
    let ed = new_user(&s, &owner, "ed@example.test", &["org:admin"]);
    let r = s.post("/api/v1/users", &owner, json!({"email": "fay@example.test", "name": "Fay", "disabled": true}));
    assert_eq!(r.status, 201, "{}", r.text);
    let fay = str_of(&r.body, "id");

    // List, filters, sort.
    let list = |q: &str| -> Vec<String> {
        let r = s.get(&format!("/api/v1/users?{q}"), &owner);
        assert_eq!(r.status, 200, "?{q}: {}", r.text);
        if !q.contains("page=") {
            assert_eq!(r.body["total_count"], json!(items(&r).len()), "?{q} total");
        }
        items(&r).iter().map(|u| str_of(u, "email")).collect()
    };
    assert_eq!(list(""), vec!["admin@localhost", "dana@example.test", "ed@example.test", "fay@example.test"]);
    assert_eq!(list("q=DANA"), vec!["dana@example.test"], "q on email, case-insensitive");
    assert_eq!(list("q=dana%20q"), vec!["dana@example.test"], "q on name");
    assert_eq!(list("role=org:admin"), vec!["ed@example.test"], "role filter");
    assert_eq!(list("disabled=true"), vec!["fay@example.test"]);
    assert_eq!(list("disabled=false").len(), 3);
    assert_eq!(
        list("sort=email&order=desc"),
        vec!["fay@example.test", "ed@example.test", "dana@example.test", "admin@localhost"]
    );
    assert_eq!(list("sort=email&order=desc&page=2&page_size=3"), vec!["admin@localhost"]);
    let r = s.get("/api/v1/users?sort=email&order=desc&page=2&page_size=3", &owner);
    assert_eq!(r.body["total_count"], json!(4), "total_count is the whole count, not the page's");
    assert_422(&s.get("/api/v1/users?sort=password", &owner), "sort", "users sort");
    assert_422(&s.get("/api/v1/users?disabled=maybe", &owner), "disabled", "users disabled filter");
    assert_422(&s.get("/api/v1/users?page_size=201", &owner), "page_size", "users page_size");

    // Get, patch, delete.
    let r = s.get(&format!("/api/v1/users/{dana}"), &owner);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["email"], json!("dana@example.test"));
    assert_status(&s.get("/api/v1/users/nope", &owner), 404, "unknown user");
    let before = s.data_snapshot();
    let r = s.patch(&format!("/api/v1/users/{dana}"), &owner, json!({"password": "dana-password-2"}));
    assert_status(&r, 422, "no password through PATCH");
    assert_eq!(s.data_snapshot(), before, "the refused patch changed nothing");
    let r = s.patch(&format!("/api/v1/users/{dana}"), &owner, json!({"name": "Dana R", "roles": ["org:admin"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    s.set_password(&owner, &dana, "dana-password-2");
    assert_eq!(r.body["name"], json!("Dana R"));
    assert_eq!(r.body["roles"], json!(["org:admin"]));
    let bad_login = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "dana@example.test", "password": "dana-password-1"})),
    );
    assert_status(&bad_login, 401, "old password");
    let dana_at = s.login("dana@example.test", "dana-password-2");
    assert_eq!(s.get("/api/v1/me", &dana_at).body["roles"], json!(["org:admin"]));
    assert_422(&s.patch(&format!("/api/v1/users/{dana}"), &owner, json!({"name": ""})), "name", "empty name");
    let r = s.patch(&format!("/api/v1/users/{fay}"), &owner, json!({"disabled": false}));
    assert_eq!(r.body["disabled"], json!(false), "{}", r.text);
    assert_status(&s.delete(&format!("/api/v1/users/{ed}"), &owner), 204, "delete");
    assert_status(&s.get(&format!("/api/v1/users/{ed}"), &owner), 404, "deleted user");
    assert_status(&s.delete(&format!("/api/v1/users/{ed}"), &owner), 404, "delete twice");
    assert!(!list("").contains(&"ed@example.test".to_string()));
    assert_status(&s.patch(&format!("/api/v1/users/{ed}"), &owner, json!({"name": "x"})), 404, "patch deleted");
}

fn users_role_escalation(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    new_role(&s, &owner, "metrics:read", "service");
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let member = new_user(&s, &owner, "member@example.test", &["org:member"]);
    let snap = snapshot_without_audit(&s);

    // Only an owner grants org:owner, and only an owner changes an owner's account.
    assert_status(
        &s.post("/api/v1/users", &admin, json!({"email": "x@example.test", "roles": ["org:owner"]})),
        403,
        "admin creates an owner",
    );
    assert_status(
        &s.patch(&format!("/api/v1/users/{member}"), &admin, json!({"roles": ["org:owner"]})),
        403,
        "admin promotes to owner",
    );
    assert_status(
        &s.patch(&format!("/api/v1/users/{admin_id}"), &admin, json!({"roles": ["org:owner"]})),
        403,
        "admin promotes self",
    );
    assert_status(
        &s.patch(&format!("/api/v1/users/{}", s.owner_id), &admin, json!({"roles": ["org:member"]})),
        403,
        "admin demotes the owner",
    );
    assert_status(
        &s.patch(&format!("/api/v1/users/{}", s.owner_id), &admin, json!({"disabled": true})),
        403,
        "admin disables the owner",
    );
    assert_status(&s.delete(&format!("/api/v1/users/{}", s.owner_id), &admin), 403, "admin deletes the owner");
    // No one grants a role they do not hold.
    assert_422(
        &s.post("/api/v1/users", &admin, json!({"email": "y@example.test", "roles": ["metrics:read"]})),
        "roles",
        "admin grants metrics:read",
    );
    assert_422(
        &s.patch(&format!("/api/v1/users/{member}"), &admin, json!({"roles": ["org:member", "metrics:read"]})),
        "roles",
        "admin adds metrics:read",
    );
    assert_422(
        &s.post("/api/v1/service-accounts", &admin, json!({"name": "x", "roles": ["metrics:read"]})),
        "roles",
        "admin SA with metrics:read",
    );
    assert_422(
        &s.post("/api/v1/apps", &dev, json!({"name": "x", "roles": ["org:admin"]})),
        "roles",
        "developer app with org:admin",
    );
    // Not in the catalogue: refused even for the owner.
    assert_422(
        &s.post("/api/v1/users", &owner, json!({"email": "z@example.test", "roles": ["ghost:role"]})),
        "roles",
        "uncatalogued role",
    );
    // Developers do not manage people.
    assert_status(&s.get("/api/v1/users", &dev), 403, "developer lists users");
    assert_status(
        &s.post("/api/v1/users", &dev, json!({"email": "w@example.test", "roles": ["org:member"]})),
        403,
        "developer creates",
    );
    assert_status(&s.patch(&format!("/api/v1/users/{member}"), &dev, json!({"name": "x"})), 403, "developer patches");
    assert_status(&s.delete(&format!("/api/v1/users/{member}"), &dev), 403, "developer deletes");
    assert_eq!(snapshot_without_audit(&s), snap, "refused grants change nothing");
    let r = s.get(&format!("/api/v1/users/{member}"), &owner);
    assert_eq!(r.body["roles"], json!(["org:member"]));

    // What the admin holds, the admin grants.
    let r = s.post("/api/v1/users", &admin, json!({"email": "new-admin@example.test", "roles": ["org:admin"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.patch(&format!("/api/v1/users/{member}"), &admin, json!({"roles": ["org:developer"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    // The owner grants anything catalogued.
    let r = s.patch(&format!("/api/v1/users/{member}"), &owner, json!({"roles": ["org:developer", "metrics:read"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get(&format!("/api/v1/users/{member}"), &owner).body["roles"].as_array().map(Vec::len), Some(2));
}

fn last_owner_protection(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let me = format!("/api/v1/users/{}", s.owner_id);
    assert_status(&s.patch(&me, &owner, json!({"roles": ["org:admin"]})), 409, "only owner demotes self");
    assert_status(&s.patch(&me, &owner, json!({"disabled": true})), 409, "only owner disables self");
    assert_status(&s.delete(&me, &owner), 409, "only owner deletes self");
    assert_eq!(s.get("/api/v1/me", &owner).body["roles"], json!(["org:owner"]));

    // A second owner that is disabled does not count.
    let (second, second_at) = s.user(&owner, "second@example.test", &["org:owner"]);
    let r = s.patch(&format!("/api/v1/users/{second}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_status(&s.patch(&me, &owner, json!({"roles": ["org:admin"]})), 409, "the other owner is disabled");
    assert_status(&s.delete(&me, &owner), 409, "the other owner is disabled");
    let r = s.patch(&format!("/api/v1/users/{second}"), &owner, json!({"disabled": false}));
    assert_eq!(r.status, 200, "{}", r.text);

    // With a second enabled owner, the first may step down.
    let r = s.patch(&me, &owner, json!({"roles": ["org:admin"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["roles"], json!(["org:admin"]));
    // Now the second owner is the last one.
    let second_at = if s.get("/api/v1/me", &second_at).status == 200 {
        second_at
    } else {
        s.login("second@example.test", "user-password-123")
    };
    let sme = format!("/api/v1/users/{second}");
    assert_status(&s.patch(&sme, &second_at, json!({"roles": ["org:member"]})), 409, "second is the last owner");
    assert_status(&s.patch(&sme, &second_at, json!({"disabled": true})), 409, "second is the last owner");
    assert_status(&s.delete(&sme, &second_at), 409, "second is the last owner");
    // Promote the first back, then the second may leave entirely.
    let r = s.patch(&me, &second_at, json!({"roles": ["org:owner"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_status(&s.delete(&sme, &second_at), 204, "not the last owner any more");
    let owner = s.owner_login();
    assert_status(&s.delete(&me, &owner), 409, "the first is the last owner again");
}

fn disabled_and_deleted_users(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (uid, u_at) = s.user(&owner, "uma@example.test", &["org:developer"]);
    let (vid, v_at) = s.user(&owner, "vic@example.test", &["org:member"]);
    let (u_pat_id, u_pat) = s.pat(&u_at, json!({"name": "uma-cli", "ttl_days": 5}));
    let (v_pat_id, v_pat) = s.pat(&v_at, json!({"name": "vic-cli", "ttl_days": 5}));
    let u_access = s.exchange_ok(&u_pat);
    let v_access = s.exchange_ok(&v_pat);

    // Disable: no login, no exchange, live access tokens stop.
    let r = s.patch(&format!("/api/v1/users/{uid}"), &admin, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["disabled"], json!(true));
    let login = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "uma@example.test", "password": "user-password-123"})),
    );
    assert_status(&login, 401, "disabled user logs in");
    let unknown = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "nobody@example.test", "password": "user-password-123"})),
    );
    assert_eq!(login.body["detail"], unknown.body["detail"], "a disabled user looks like an unknown one");
    assert_invalid_grant(&s.exchange(&u_pat), "disabled user's PAT");
    assert_status(&s.get("/api/v1/me", &u_at), 401, "disabled user's login token");
    assert_status(&s.get("/api/v1/me", &u_access), 401, "disabled user's exchanged token");
    let r = s.get("/api/v1/users?disabled=true", &admin);
    assert_eq!(item_ids(&r), vec![uid.clone()]);
    let refusal = s.get(&format!("/api/v1/audit?object={u_pat_id}&action=token.exchange"), &admin);
    assert!(
        items(&refusal)
            .iter()
            .any(|e| e["outcome"] == json!("failure") && e["detail"]["reason"] == json!("owner disabled")),
        "refused exchange audited with its reason (owner disabled): {}",
        refusal.text
    );

    // Delete: same, and the user is gone from lists.
    assert_status(&s.delete(&format!("/api/v1/users/{vid}"), &admin), 204, "delete");
    let login = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "vic@example.test", "password": "user-password-123"})),
    );
    assert_status(&login, 401, "deleted user logs in");
    assert_invalid_grant(&s.exchange(&v_pat), "deleted user's PAT");
    assert_status(&s.get("/api/v1/me", &v_at), 401, "deleted user's login token");
    assert_status(&s.get("/api/v1/me", &v_access), 401, "deleted user's exchanged token");
    let r = s.get("/api/v1/users?page_size=200", &admin);
    assert!(!item_ids(&r).contains(&vid));
    let r = table(&s, &admin, &format!("owner_id={vid}"));
    assert_eq!(item_ids(&r), vec![v_pat_id.clone()], "the deleted user's token is still listed: {}", r.text);
    assert!(items(&r).iter().all(|t| t["status"] == json!("revoked")), "a deleted user's tokens are dead: {}", r.text);
}

// ---------------------------------------------------------------------------------------
// roles
// ---------------------------------------------------------------------------------------

fn role_catalogue(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.post(
        "/api/v1/roles",
        &owner,
        json!({"name": "metrics:read", "kind": "service", "description": "Read metrics"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], json!("metrics:read"));
    assert_eq!(r.body["kind"], json!("service"));
    assert_eq!(r.body["description"], json!("Read metrics"));
    let r = s.post(
        "/api/v1/roles",
        &owner,
        json!({"name": "team.alpha-1:deploy_*", "kind": "custom", "description": "deploys"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    new_role(&s, &owner, "logs:write", "custom");
    for bad in ["Metrics:read", "metrics", ":read", "metrics:", "1a:b", "a:B", "a b:c", "a:b c", "_a:b", "a:b:c"] {
        assert_422(
            &s.post("/api/v1/roles", &owner, json!({"name": bad, "kind": "custom"})),
            "name",
            &format!("role name {bad:?}"),
        );
    }
    assert_422(
        &s.post("/api/v1/roles", &owner, json!({"name": "x:y", "kind": "organization"})),
        "kind",
        "kind organization",
    );
    assert_422(&s.post("/api/v1/roles", &owner, json!({"name": "x:y", "kind": "weird"})), "kind", "kind weird");
    assert_status(
        &s.post("/api/v1/roles", &owner, json!({"name": "metrics:read", "kind": "custom"})),
        409,
        "duplicate role",
    );
    let r = s.post("/api/v1/roles", &owner, json!({"name": "org:admin", "kind": "custom"}));
    assert_422(&r, "name", "a built-in role cannot be created again (org: names are reserved)");

    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let r = s.get("/api/v1/roles", &member);
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<String> = items(&r).iter().map(|x| str_of(x, "name")).collect();
    for n in
        ["org:owner", "org:admin", "org:developer", "org:member", "metrics:read", "team.alpha-1:deploy_*", "logs:write"]
    {
        assert!(names.contains(&n.to_string()), "catalogue lacks {n}: {names:?}");
    }
    assert_eq!(r.body["total_count"], json!(names.len()));
    let kind_of = |n: &str| items(&r).into_iter().find(|x| x["name"] == json!(n)).unwrap()["kind"].clone();
    assert_eq!(kind_of("metrics:read"), json!("service"));
    assert_eq!(kind_of("logs:write"), json!("custom"));

    // Only catalogued roles can be granted, to anyone.
    assert_422(
        &s.post("/api/v1/users", &owner, json!({"email": "g@example.test", "roles": ["ghost:role"]})),
        "roles",
        "user with ghost",
    );
    assert_422(
        &s.post("/api/v1/service-accounts", &owner, json!({"name": "g", "roles": ["ghost:role"]})),
        "roles",
        "SA with ghost",
    );
    assert_422(
        &s.post("/api/v1/apps", &owner, json!({"name": "g", "roles": ["ghost:role"]})),
        "roles",
        "app with ghost",
    );
    assert_422(
        &s.post("/api/v1/me/tokens", &owner, json!({"name": "g", "ttl_days": 1, "roles": ["ghost:role"]})),
        "roles",
        "PAT with ghost",
    );

    // Deleting a role still granted: 409 with the number of holders and their names.
    let holder = new_user(&s, &owner, "holder@example.test", &["org:member", "metrics:read"]);
    let sa = new_sa(&s, &owner, "robot", &["metrics:read"]);
    let (app, _, _) = s.app(&owner, json!({"name": "reader", "roles": ["metrics:read"]}));
    let r = s.delete("/api/v1/roles/metrics:read", &owner);
    assert_status(&r, 409, "delete a granted role");
    let detail = r.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("still granted to 3 holders: holder@example.test, robot (service account), reader (app)"),
        "the conflict must say how many hold the role and name them (3, one of each kind): {detail}"
    );
    let r = s.patch(&format!("/api/v1/users/{holder}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.delete("/api/v1/roles/metrics:read", &owner);
    assert_status(&r, 409, "still held by the SA and the app");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("still granted to 2 holders: robot (service account), reader (app)"),
        "two holders left: {}",
        r.text
    );
    assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &owner, json!({"roles": []})).status, 200);
    assert_eq!(s.patch(&format!("/api/v1/apps/{app}"), &owner, json!({"roles": []})).status, 200);
    assert_status(&s.delete("/api/v1/roles/metrics:read", &owner), 204, "no holders left");

    // An unused role deletes at once; then it is gone from the catalogue and ungrantable.
    assert_status(&s.delete("/api/v1/roles/logs:write", &owner), 204, "unused role");
    assert_status(&s.delete("/api/v1/roles/logs:write", &owner), 404, "deleted twice");
    let r = s.get("/api/v1/roles", &owner);
    assert!(!r.text.contains("\"logs:write\"") && !r.text.contains("\"metrics:read\""), "{}", r.text);
    assert_422(
        &s.post("/api/v1/users", &owner, json!({"email": "h@example.test", "roles": ["logs:write"]})),
        "roles",
        "deleted role",
    );
    // Built-in roles stay.
    let r = s.delete("/api/v1/roles/org:member", &owner);
    assert_status(&r, 409, "built-in roles cannot be deleted");
    assert!(s.get("/api/v1/roles", &owner).text.contains("\"org:member\""));
}

// ---------------------------------------------------------------------------------------
// saved searches
// ---------------------------------------------------------------------------------------

fn saved_searches(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (a1_id, a1) = s.user(&owner, "a1@example.test", &["org:admin"]);
    let (_, a2) = s.user(&owner, "a2@example.test", &["org:admin"]);

    let r = s.post(
        "/api/v1/saved-searches",
        &a1,
        json!({"name": "Stale tokens", "query": "status=expired&sort=name&order=desc"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let stale = str_of(&r.body, "id");
    assert_eq!(r.body["name"], json!("Stale tokens"));
    assert_eq!(r.body["query"], json!("status=expired&sort=name&order=desc"));
    assert_eq!(r.body["created_by"], json!(a1_id));
    // The saved query runs against the table.
    table(&s, &a1, r.body["query"].as_str().unwrap());

    // Validated like the table.
    for (q, why) in [
        ("status=bogus", "bad status"),
        ("colour=red", "unknown parameter"),
        ("page_size=500", "page size"),
        ("sort=colour", "unknown sort"),
        ("page=0", "page 0"),
        ("unused_since=yesterday", "bad time"),
    ] {
        assert_422(&s.post("/api/v1/saved-searches", &a1, json!({"name": "bad", "query": q})), "query", why);
    }
    assert_422(
        &s.post("/api/v1/saved-searches", &a1, json!({"name": "", "query": "status=active"})),
        "name",
        "empty name",
    );
    assert_eq!(s.count("saved_searches"), 1, "invalid searches are not stored");

    // Shared with every admin.
    let r = s.get("/api/v1/saved-searches", &a2);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(item_ids(&r), vec![stale.clone()]);
    assert_eq!(r.body["total_count"], json!(1));
    assert_eq!(item_ids(&s.get("/api/v1/saved-searches", &owner)), vec![stale.clone()]);

    // Deleted by its creator or an owner only.
    assert_status(&s.delete(&format!("/api/v1/saved-searches/{stale}"), &a2), 403, "another admin deletes");
    assert_eq!(s.count("saved_searches"), 1);
    assert_status(&s.delete(&format!("/api/v1/saved-searches/{stale}"), &a1), 204, "creator deletes");
    assert_status(&s.delete(&format!("/api/v1/saved-searches/{stale}"), &a1), 404, "deleted twice");
    let other = new_saved(&s, &a1, "Never used", "usage=never_used");
    assert_status(&s.delete(&format!("/api/v1/saved-searches/{other}"), &owner), 204, "owner deletes");
    assert_eq!(s.count("saved_searches"), 0);
    assert!(items(&s.get("/api/v1/saved-searches", &a2)).is_empty());
}

// ---------------------------------------------------------------------------------------
// audit
// ---------------------------------------------------------------------------------------

fn audit_log(b: &Backend) {
    let s = b.start();
    let t0 = s.clock.now();
    let owner = s.owner_login();
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let mut secrets = vec![s.owner_pat.clone(), s.owner_password.clone(), "user-password-123".to_string()];

    let u = new_user(&s, &admin, "target@example.test", &["org:member"]);
    assert_eq!(s.patch(&format!("/api/v1/users/{u}"), &admin, json!({"name": "Target"})).status, 200);
    let r = s.post(&format!("/api/v1/users/{u}/password-reset"), &admin, json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let code = str_of(&r.body, "code");
    secrets.push(code.clone());
    let r = s.call(
        "POST",
        "/api/v1/password-reset",
        None,
        Some(&json!({"code": code, "new_password": "a-new-password-9"})),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    secrets.push("a-new-password-9".into());
    let sa = new_sa(&s, &admin, "robot", &[]);
    let (sat, sat_secret) = s.sa_token(&admin, &sa, json!({"name": "robot-token", "ttl_days": 5}));
    secrets.push(sat_secret.clone());
    let (app, _, cs) = s.app(&admin, json!({"name": "app"}));
    secrets.push(cs);
    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &admin, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    secrets.push(str_of(&r.body, "client_secret"));
    let (pat, pat_secret) = s.pat(&owner, json!({"name": "owner-cli", "ttl_days": 5}));
    secrets.push(pat_secret.clone());
    let r = s.post("/api/v1/me/tokens", &owner, json!({"roles": ["org:owner"], "name": "rot", "ttl_days": 5}));
    let rot = str_of(&r.body, "id");
    secrets.push(str_of(&r.body, "token"));
    let r = s.post(&format!("/api/v1/me/tokens/{rot}/rotate"), &owner, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    secrets.push(str_of(&r.body, "token"));
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 90})).status, 200);
    new_saved(&s, &admin, "active", "status=active");
    // A mutation through a PAT-derived access token names the token.
    let via = s.exchange_api(&pat_secret);
    let r = s.post("/api/v1/service-accounts", &via, json!({"name": "via-token"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let via_sa = str_of(&r.body, "id");
    // A mutation by an app names the app.
    let (robo_app, robo_client, robo_secret) = s.app(&admin, json!({"name": "automation", "roles": ["org:admin"]}));
    secrets.push(robo_secret.clone());
    let api = s.api_audience();
    let cc = s.form(
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("audience", &api)],
        Some((&robo_client, &robo_secret)),
    );
    assert_eq!(cc.status, 200, "{}", cc.text);
    let r = s.post("/api/v1/service-accounts", &str_of(&cc.body, "access_token"), json!({"name": "by-app"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let app_sa = str_of(&r.body, "id");

    // One hour later, more mutations.
    s.clock.advance(3600);
    let admin = s.login("admin@example.test", "user-password-123");
    let owner = s.owner_login();
    assert_status(&s.delete(&format!("/api/v1/users/{u}"), &admin), 204, "delete user");
    assert_eq!(s.post(&format!("/api/v1/tokens/{sat}/revoke"), &admin, json!({})).status, 200);
    assert_invalid_grant(&s.exchange(&sat_secret), "SA token revoked from the table");

    // Who, what, which object, when, from where, outcome.
    let find = |q: &str| -> Vec<Value> {
        let r = s.get(&format!("/api/v1/audit?{q}&page_size=200"), &owner);
        assert_eq!(r.status, 200, "?{q}: {}", r.text);
        assert_eq!(r.body["total_count"], json!(items(&r).len()), "?{q} total");
        items(&r)
    };
    let ev = find(&format!("action=user.create&object={u}"));
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0];
    assert_eq!(e["actor_id"], json!(admin_id));
    assert_eq!(e["actor_kind"], json!("user"));
    assert_eq!(e["object_kind"], json!("user"));
    assert_eq!(e["object_id"], json!(u));
    assert_eq!(e["ip"], json!("127.0.0.1"));
    assert_eq!(e["outcome"], json!("success"));
    assert_eq!(e["at"], json!(rfc3339(t0)));
    for (action, object) in [
        ("user.update", &u),
        ("user.delete", &u),
        ("service_account.create", &sa),
        ("token.create", &sat),
        ("token.admin_revoke", &sat),
        ("app.create", &app),
        ("app.secret.regenerate", &app),
        ("token.create", &pat),
        ("token.rotate", &rot),
        ("policy.update", &s.org_id),
    ] {
        let ev = find(&format!("object={object}"));
        assert!(
            ev.iter().any(|e| e["action"] == json!(action)
                && e["outcome"] == json!("success")
                && e["ip"] == json!("127.0.0.1")),
            "no {action} event for {object}: {ev:?}"
        );
    }
    assert!(
        find(&format!("object={rot}")).iter().any(|e| e["action"].as_str().unwrap().starts_with("token.")),
        "rotation audited"
    );
    let ev = find("action=saved_search.create");
    assert_eq!(ev.len(), 1);
    let ev = find(&format!("object={via_sa}"));
    assert_eq!(ev.len(), 1);
    assert!(ev[0].to_string().contains(&pat), "an action through an API token names the token: {}", ev[0]);
    let ev = find(&format!("object={app_sa}"));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["actor_kind"], json!("app"), "{}", ev[0]);
    assert!(
        ev[0]["actor_id"] == json!(robo_client) || ev[0]["actor_id"] == json!(robo_app),
        "the app is the actor: {}",
        ev[0]
    );

    // Filters.
    let by_admin = find(&format!("actor={admin_id}"));
    assert!(by_admin.len() >= 8, "{by_admin:?}");
    assert!(by_admin.iter().all(|e| e["actor_id"] == json!(admin_id)));
    let creates = find("action=app.create");
    assert_eq!(creates.len(), 2);
    assert!(find("action=no.such.action").is_empty());
    let about_u = find(&format!("object={u}"));
    assert!(about_u.iter().all(|e| e["object_id"] == json!(u)));
    let actions: BTreeSet<String> = about_u.iter().map(|e| str_of(e, "action")).collect();
    assert_eq!(
        actions,
        BTreeSet::from(
            ["user.create", "user.update", "user.password.reset", "user.password.redeem", "user.delete"]
                .map(String::from)
        )
    );
    let mid = rfc3339(t0 + 1800);
    let later = find(&qs(&[("from", mid.as_str())]));
    let earlier = find(&qs(&[("to", mid.as_str())]));
    let everything = find("page=1");
    assert_eq!(later.len() + earlier.len(), everything.len(), "from/to split the log");
    assert!(later.iter().all(|e| e["at"].as_str().unwrap() >= mid.as_str()));
    assert!(earlier.iter().all(|e| e["at"].as_str().unwrap() < mid.as_str()));
    let later_actions: BTreeSet<String> = later.iter().map(|e| str_of(e, "action")).collect();
    assert!(later_actions.contains("user.delete") && later_actions.contains("token.admin_revoke"), "{later_actions:?}");
    assert!(!later_actions.contains("user.create"), "{later_actions:?}");
    assert!(find(&qs(&[("from", mid.as_str()), ("actor", admin_id.as_str())]))
        .iter()
        .all(|e| e["actor_id"] == json!(admin_id)));
    assert_422(&s.get("/api/v1/audit?from=yesterday", &owner), "from", "bad from");
    assert_422(&s.get("/api/v1/audit?page_size=201", &owner), "page_size", "audit page_size");

    // Pagination: disjoint pages whose union is the whole log.
    let n = everything.len();
    let mut ids = Vec::new();
    for page in 1.. {
        let r = s.get(&format!("/api/v1/audit?page_size=4&page={page}"), &owner);
        assert_eq!(r.status, 200);
        assert_eq!(r.body["total_count"], json!(n));
        let it = item_ids(&r);
        if it.is_empty() {
            break;
        }
        assert!(it.len() == 4 || ids.len() + it.len() == n, "only the last page is short");
        ids.extend(it);
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), n, "pages overlap or miss events");
    assert_eq!(ids, everything.iter().map(|e| str_of(e, "id")).collect::<Vec<_>>(), "same order paged and unpaged");

    // No secret anywhere in the log.
    let (_, raw) = all_items(&s, &owner, "/api/v1/audit");
    for secret in &secrets {
        assert!(!raw.contains(secret.as_str()), "the audit log contains a secret (len {})", secret.len());
    }

    // Append-only: no API mutates it.
    let count = s.count("audit_events");
    let some_id = str_of(&everything[0], "id");
    for (method, path) in [
        ("POST", "/api/v1/audit".to_string()),
        ("PUT", "/api/v1/audit".to_string()),
        ("PATCH", "/api/v1/audit".to_string()),
        ("DELETE", "/api/v1/audit".to_string()),
        ("DELETE", format!("/api/v1/audit/{some_id}")),
        ("PATCH", format!("/api/v1/audit/{some_id}")),
    ] {
        let r = s.call(method, &path, Some(&owner), Some(&json!({"action": "forged"})));
        assert!(matches!(r.status, 404 | 405), "{method} {path}: {} {}", r.status, r.text);
        assert!(is_problem(&r), "{method} {path} answers problem+json: {:?}", r.header("content-type"));
    }
    assert_eq!(s.count("audit_events"), count, "the audit log is append-only");
}

/// Refused mutating calls are part of "every mutating call": they appear with their outcome.
fn audit_records_refused_mutations(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (dev_id, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let victim = new_user(&s, &owner, "victim@example.test", &["org:member"]);
    assert_status(&s.delete(&format!("/api/v1/users/{victim}"), &dev), 403, "developer deletes a user");
    let r = s.get(&format!("/api/v1/audit?actor={dev_id}&page_size=200"), &owner);
    assert_eq!(r.status, 200, "{}", r.text);
    let refused: Vec<Value> = items(&r).into_iter().filter(|e| e["outcome"] != json!("success")).collect();
    assert!(
        refused.iter().any(|e| e["object_id"] == json!(victim)
            && e["ip"] == json!("127.0.0.1")
            && e["outcome"] == json!("denied")
            && e["detail"]["status"] == json!(403)),
        "the refused DELETE /users/{{id}} must be audited as denied (403): {}",
        r.text
    );
}

backend_tests!(
    role_endpoint_matrix,
    two_org_isolation,
    token_table_filters,
    token_table_sorts_and_pages,
    policy_defaults_validation_and_limits,
    users_crud_and_filters,
    users_role_escalation,
    last_owner_protection,
    disabled_and_deleted_users,
    role_catalogue,
    saved_searches,
    audit_log,
    audit_records_refused_mutations,
);
