//! Per-credential reach (issue #26): the resource audiences an API token or app may be
//! exchanged for, and separately whether it may reach the management API. Every grant
//! (refresh_token, token exchange, client_credentials with an API token or an app secret)
//! refuses an audience outside the list with `invalid_target`, naming nothing else.
use crate::common::{Backend, Resp, Server};
use serde_json::{json, Value};

const A: &str = "https://metrics.example.test";
const B: &str = "https://alerts.example.test";

fn start(b: &Backend) -> Server {
    b.start_with(|c| c.audiences = vec![A.into(), B.into()])
}

fn grant(s: &Server, secret: &str, aud: &str) -> Resp {
    s.form("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", secret), ("audience", aud)], None)
}

/// Every way an API token is presented, for one audience: refresh_token, token exchange,
/// and client_credentials with the token as the client secret.
fn every_grant(s: &Server, id: &str, secret: &str, aud: &str) -> Vec<Resp> {
    let te = "urn:ietf:params:oauth:grant-type:token-exchange";
    let st = "urn:ietf:params:oauth:token-type:refresh_token";
    vec![
        grant(s, secret, aud),
        s.form(
            "/oauth/token",
            &[("grant_type", te), ("subject_token", secret), ("subject_token_type", st), ("resource", aud)],
            None,
        ),
        s.form("/oauth/token", &[("grant_type", "client_credentials"), ("audience", aud)], Some((id, secret))),
    ]
}

#[track_caller]
fn refused(r: &Resp, what: &str) {
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_target")), "{what}: {}", r.text);
    let d = r.body["error_description"].as_str().unwrap_or("");
    assert!(!d.contains(A) && !d.contains(B) && !d.contains("/api"), "{what}: names no audience: {d}");
}

#[track_caller]
fn granted(s: &Server, r: &Resp, aud: &str, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    s.verify(r.body["access_token"].as_str().unwrap(), aud)
}

fn create_pat(s: &Server, at: &str, body: Value) -> (String, String, Value) {
    let r = s.post("/api/v1/me/tokens", at, body);
    assert_eq!(r.status, 201, "{}", r.text);
    (r.body["id"].as_str().unwrap().into(), r.body["token"].as_str().unwrap().into(), r.body.clone())
}

fn create_sa_token(s: &Server, at: &str, body: Value) -> (String, String, String) {
    let r = s.post("/api/v1/service-accounts", at, json!({"name": "bot", "roles": ["org:admin"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let sa = r.body["id"].as_str().unwrap().to_string();
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), at, body);
    assert_eq!(r.status, 201, "{}", r.text);
    (sa, r.body["id"].as_str().unwrap().into(), r.body["token"].as_str().unwrap().into())
}

/// A token limited to A gets A, and neither B nor the management API, by any grant; a
/// service-account token and an app likewise. Introspection, the record and the audit
/// log say where it reaches.
fn credential_limited_to_one_audience_gets_no_other(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (id, pat, record) =
        create_pat(&s, &owner, json!({"name": "push", "ttl_days": 1, "roles": ["org:member"], "audiences": [A]}));
    assert_eq!((&record["audiences"], &record["management"]), (&json!([A]), &json!(false)), "{record}");
    for (i, r) in every_grant(&s, &id, &pat, A).iter().enumerate() {
        granted(&s, r, A, &format!("grant {i} for A"));
    }
    let api = s.api_audience();
    for aud in [B, api.as_str()] {
        for (i, r) in every_grant(&s, &id, &pat, aud).iter().enumerate() {
            refused(r, &format!("grant {i} for {aud}"));
        }
    }
    // Without naming one, the first configured audience (A) is the default and allowed.
    let r = s.form("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", &pat)], None);
    granted(&s, &r, A, "the default audience");

    let (_, sat_id, sat) = create_sa_token(&s, &owner, json!({"name": "t", "ttl_days": 1, "audiences": [B]}));
    granted(&s, &grant(&s, &sat, B), B, "service token for B");
    refused(&grant(&s, &sat, A), "service token for A");
    refused(&every_grant(&s, &sat_id, &sat, &api)[2], "service token as client secret for the management API");

    let r = s.post("/api/v1/apps", &owner, json!({"name": "app", "roles": ["org:member"], "audiences": [B]}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((&r.body["audiences"], &r.body["management"]), (&json!([B]), &json!(false)));
    let (cid, cs) =
        (r.body["client_id"].as_str().unwrap().to_string(), r.body["client_secret"].as_str().unwrap().to_string());
    let cc = |aud: &str| {
        s.form("/oauth/token", &[("grant_type", "client_credentials"), ("audience", aud)], Some((&cid, &cs)))
    };
    granted(&s, &cc(B), B, "app for B");
    refused(&cc(A), "app for A");
    refused(&cc(&api), "app for the management API");

    // Introspection answers the list; the audit log records it at creation.
    let admin_app = s.app(&owner, json!({"name": "introspector", "roles": ["org:admin"], "introspect": true}));
    let r = s.form("/oauth/introspect", &[("token", &pat)], Some((&admin_app.1, &admin_app.2)));
    assert_eq!(
        (r.body["active"].as_bool(), &r.body["audiences"], &r.body["management"]),
        (Some(true), &json!([A]), &json!(false)),
        "{}",
        r.text
    );
    let audit = s.get(&format!("/api/v1/audit?object={id}&action=token.create"), &owner);
    assert_eq!(audit.body["items"][0]["detail"]["audiences"], json!([A]), "{}", audit.text);
    // The org table filters by reach.
    let t = s.get(&format!("/api/v1/tokens?audience={B}&owner_kind=user"), &owner);
    assert_eq!(t.status, 200, "{}", t.text);
    let ids: Vec<&str> = t.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&id.as_str()), "a token limited to A is not listed for B: {ids:?}");
    let t = s.get(&format!("/api/v1/tokens?audience={A}&owner_kind=user"), &owner);
    assert!(t.text.contains(&id), "listed for A");
    let bad = s.get("/api/v1/tokens?management=maybe", &owner);
    assert_eq!(bad.status, 422, "{}", bad.text);
}

/// A token created without naming the management API reaches every resource audience but
/// not /api/v1; one created for it does. The org table lists who still reaches it.
fn new_credentials_do_not_reach_the_management_api_unless_asked(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (id, pat, record) = create_pat(&s, &owner, json!({"name": "default", "ttl_days": 1, "roles": ["org:admin"]}));
    assert_eq!((&record["audiences"], &record["management"]), (&json!(["*"]), &json!(false)), "{record}");
    granted(&s, &grant(&s, &pat, A), A, "A");
    granted(&s, &grant(&s, &pat, B), B, "B");
    refused(&grant(&s, &pat, &s.api_audience()), "the management API");
    let (mid, mpat, _) = create_pat(
        &s,
        &owner,
        json!({"name": "admin-script", "ttl_days": 1, "roles": ["org:admin"], "management": true}),
    );
    let bearer = granted(&s, &grant(&s, &mpat, &s.api_audience()), &s.api_audience(), "management");
    assert_eq!(bearer["client_id"], mid.as_str());
    let at = grant(&s, &mpat, &s.api_audience()).body["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/me", &at).status, 200, "the management token works at /api/v1");
    let listed = s.get("/api/v1/tokens?management=true&owner_kind=user", &owner);
    let ids: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&mid.as_str()) && !ids.contains(&id.as_str()), "{ids:?}");
    // Unknown audiences and the management audience as a list entry are refused, naming the field.
    for bad in [json!(["https://nowhere.test"]), json!([s.api_audience()]), json!([])] {
        let r = s.post(
            "/api/v1/me/tokens",
            &owner,
            json!({"name": "x", "ttl_days": 1, "roles": ["org:member"], "audiences": bad}),
        );
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert!(r.text.contains("audiences"), "{}", r.text);
    }
    // Policy: management only for org:admin holders; defaults narrowed.
    let r = s.put(
        "/api/v1/policy",
        &owner,
        json!({"allow_management_audience_for": ["org:admin"], "default_audiences": [B]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.post(
        "/api/v1/me/tokens",
        &owner,
        json!({"name": "m", "ttl_days": 1, "roles": ["org:member"], "management": true}),
    );
    assert_eq!(r.status, 422, "a member token may not reach the management API under this policy: {}", r.text);
    let (_, _, rec) = create_pat(&s, &owner, json!({"name": "d", "ttl_days": 1, "roles": ["org:member"]}));
    assert_eq!(rec["audiences"], json!([B]), "the policy's default audiences");
    // The policy applies at the exchange too: an existing management token carrying only
    // org:member is refused there.
    let (_, member_mgmt, _) = {
        s.put("/api/v1/policy", &owner, json!({"allow_management_audience_for": null}));
        let t =
            create_pat(&s, &owner, json!({"name": "mm", "ttl_days": 1, "roles": ["org:member"], "management": true}));
        s.put("/api/v1/policy", &owner, json!({"allow_management_audience_for": ["org:admin"]}));
        t
    };
    refused(&grant(&s, &member_mgmt, &s.api_audience()), "a member's management token under a stricter policy");
}

/// Narrowing from a PAT-derived bearer works; widening from it is 403 and changes nothing;
/// an interactive login widens. Personal tokens, service-account tokens and apps alike.
fn narrowing_is_editing_widening_is_minting(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (mgmt_id, mgmt, _) =
        create_pat(&s, &owner, json!({"name": "script", "ttl_days": 1, "roles": ["org:owner"], "management": true}));
    let script = grant(&s, &mgmt, &s.api_audience()).body["access_token"].as_str().unwrap().to_string();
    let (pid, pat, _) = create_pat(&s, &owner, json!({"name": "p", "ttl_days": 1, "roles": ["org:member"]}));
    let (sa, tid, sat) = create_sa_token(&s, &owner, json!({"name": "t", "ttl_days": 1}));
    let (app_id, cid, cs) = s.app(&owner, json!({"name": "a", "roles": ["org:member"], "management": false}));
    let targets = [
        format!("/api/v1/me/tokens/{pid}"),
        format!("/api/v1/service-accounts/{sa}/tokens/{tid}"),
        format!("/api/v1/apps/{app_id}"),
    ];
    for path in &targets {
        let r = s.patch(path, &script, json!({"audiences": [A]}));
        assert_eq!(r.status, 200, "narrowing {path} from a PAT-derived bearer: {}", r.text);
        assert_eq!(r.body["audiences"], json!([A]));
        let before = s.get(path, &owner).text;
        for wider in [json!({"audiences": ["*"]}), json!({"audiences": [A, B]}), json!({"management": true})] {
            let r = s.patch(path, &script, wider.clone());
            assert_eq!(r.status, 403, "widening {path} with {wider} from a PAT-derived bearer: {}", r.text);
            assert_eq!(s.get(path, &owner).text, before, "{path}: a refused widening changes nothing");
        }
        let r = s.patch(path, &owner, json!({"audiences": [A, B]}));
        assert_eq!(
            (r.status, &r.body["audiences"]),
            (200, &json!([B, A])),
            "an interactive login widens {path}: {}",
            r.text
        );
        let r = s.patch(path, &owner, json!({"audiences": [A]}));
        assert_eq!(r.status, 200);
    }
    refused(&grant(&s, &pat, B), "the narrowed personal token");
    refused(&grant(&s, &sat, B), "the narrowed service token");
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials"), ("audience", B)], Some((&cid, &cs)));
    refused(&r, "the narrowed app");
    // The management token may narrow itself off the management API (and then is refused there).
    let r = s.patch(&format!("/api/v1/me/tokens/{mgmt_id}"), &script, json!({"management": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    refused(&grant(&s, &mgmt, &s.api_audience()), "after turning management off");
}

/// Rotation keeps where the token reaches.
fn rotation_keeps_reach(b: &Backend) {
    let s = start(b);
    let owner = s.owner_login();
    let (id, _, _) =
        create_pat(&s, &owner, json!({"name": "r", "ttl_days": 1, "roles": ["org:member"], "audiences": [B]}));
    let r = s.post(&format!("/api/v1/me/tokens/{id}/rotate"), &owner, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((&r.body["audiences"], &r.body["management"]), (&json!([B]), &json!(false)), "{}", r.text);
    let new = r.body["token"].as_str().unwrap().to_string();
    granted(&s, &grant(&s, &new, B), B, "the successor for B");
    refused(&grant(&s, &new, A), "the successor for A");
    let (sa, tid, _) =
        create_sa_token(&s, &owner, json!({"name": "t", "ttl_days": 1, "audiences": [A], "management": true}));
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens/{tid}/rotate"), &owner, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((&r.body["audiences"], &r.body["management"]), (&json!([A]), &json!(true)), "{}", r.text);
}

/// Credentials that existed before the reach migration keep their old reach: every
/// resource audience and the management API. The migration is reverted and applied again
/// on a database holding narrowed credentials (its down drops the columns; its up fills
/// existing rows with "all, management included").
fn existing_credentials_keep_their_reach_after_the_migration(b: &Backend) {
    use diesel::Connection;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    const PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
    const REACH: &str = "20261206000002";
    fn redo<C: MigrationHarness<diesel::sqlite::Sqlite>>(c: &mut C) {
        while c.revert_last_migration(SQLITE).expect("revert").to_string() != REACH {}
        c.run_pending_migrations(SQLITE).expect("migrate");
    }
    fn redo_pg<C: MigrationHarness<diesel::pg::Pg>>(c: &mut C) {
        while c.revert_last_migration(PG).expect("revert").to_string() != REACH {}
        c.run_pending_migrations(PG).expect("migrate");
    }

    let s = start(b);
    let owner = s.owner_login();
    let (_, pat, _) =
        create_pat(&s, &owner, json!({"name": "old", "ttl_days": 1, "roles": ["org:member"], "audiences": [A]}));
    let (_, cid, cs) = s.app(&owner, json!({"name": "old-app", "roles": ["org:member"], "management": false}));
    refused(&grant(&s, &pat, B), "before the upgrade replay");
    match s.database_url.strip_prefix("sqlite://") {
        Some(path) => redo(&mut diesel::SqliteConnection::establish(path).unwrap()),
        None => redo_pg(&mut diesel::PgConnection::establish(&s.database_url).unwrap()),
    }
    let s = s.restart();
    let api = s.api_audience();
    granted(&s, &grant(&s, &pat, B), B, "an existing token reaches every audience");
    granted(&s, &grant(&s, &pat, &api), &api, "and the management API, as before");
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials"), ("audience", &api)], Some((&cid, &cs)));
    granted(&s, &r, &api, "an existing app too");
}

backend_tests!(
    credential_limited_to_one_audience_gets_no_other,
    new_credentials_do_not_reach_the_management_api_unless_asked,
    narrowing_is_editing_widening_is_minting,
    rotation_keeps_reach,
    existing_credentials_keep_their_reach_after_the_migration,
);
