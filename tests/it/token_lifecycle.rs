//! Token lifecycle (issue #10, items 1, 3, 4, 5): expiry visible everywhere (list filters,
//! the `Tokend-Api-Token-Expires` header), rotation without downtime (app secret grace,
//! service-account token rotation at the limit, self-rotation), tidy lists (retention and
//! purge, reading one record, `expires_at` on creation) and the operators' view (gauges,
//! request ids). Real HTTP, both backends, the fixed clock.
use crate::common;
use crate::common::helpers::{cc, introspect_bearer, ts};

use common::assert::{invalid_field, invalid_grant, oauth_error, problem, status};
use common::{Backend, Resp, Server};
use serde_json::json;
use tokend::clock::{rfc3339, Clock};

const DAY: i64 = 86_400;

fn ids(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.text))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(v: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A service account with `roles`; answers its id.
fn sa(s: &Server, at: &str, name: &str, roles: &[&str]) -> String {
    let r = s.post("/api/v1/service-accounts", at, json!({"name": name, "roles": roles}));
    status(&r, 201, "create service account");
    r.body["id"].as_str().unwrap().to_string()
}

/// The bearer of a self-rotation is the API token itself.
fn self_rotate(s: &Server, api_token: &str) -> Resp {
    s.call("POST", "/api/v1/tokens/self/rotate", Some(api_token), None)
}

// ---------------------------------------------------------------------------------------
// 1. expiry is visible everywhere
// ---------------------------------------------------------------------------------------

/// An API-token exchange (both grants) answers `Tokend-Api-Token-Expires` with the token's
/// expiry; client_credentials (apps never expire) and failures do not.
fn expiry_header_on_api_token_exchanges(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.post("/api/v1/me/tokens", &owner, json!({"name": "script", "ttl_days": 3, "roles": ["org:member"]}));
    status(&r, 201, "create");
    let (pat, expires) = (r.body["token"].as_str().unwrap().to_string(), r.body["expires_at"].clone());
    assert_eq!(ts(&expires), s.clock.now() + 3 * DAY);
    let r = s.exchange(&pat);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("tokend-api-token-expires"), expires.as_str(), "refresh_token grant");
    assert!(r.body.get("api_token_expires_at").is_none(), "a header, not a body field: {}", r.text);
    let r = s.form(
        "/oauth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &pat),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("tokend-api-token-expires"), expires.as_str(), "token-exchange grant");
    // A service-account token too.
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    let r = s.post(&format!("/api/v1/service-accounts/{bot}/tokens"), &owner, json!({"name": "t", "ttl_days": 200}));
    status(&r, 201, "sa token");
    let r2 = s.exchange(r.body["token"].as_str().unwrap());
    assert_eq!(r2.header("tokend-api-token-expires"), r.body["expires_at"].as_str());
    // Apps: no header.
    let (_, cid, secret) = s.app(&owner, json!({"name": "app", "roles": ["org:member"]}));
    let r = cc(&s, &cid, &secret);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("tokend-api-token-expires"), None, "client_credentials carries no expiry");
    // A refused exchange says nothing about the token.
    s.clock.advance(3 * DAY);
    let r = s.exchange(&pat);
    invalid_grant(&r, "expired PAT");
    assert_eq!(r.header("tokend-api-token-expires"), None);
}

/// Status and expiry filters (and the expiring-soon preset) on /me/tokens, a service
/// account's tokens and the org table; unknown parameters are 422 everywhere.
fn lists_filter_by_expiry_and_status(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let now = s.clock.now();
    let mk =
        |days: i64| s.pat(&owner, json!({"name": format!("d{days}"), "ttl_days": days, "roles": ["org:member"]})).0;
    let (d1, d5, d20) = (mk(1), mk(5), mk(20));
    let revoked = mk(2);
    status(&s.delete(&format!("/api/v1/me/tokens/{revoked}"), &owner), 204, "revoke");
    let boot = s.get("/api/v1/me/tokens", &owner).body["items"][0]["id"].as_str().unwrap().to_string();
    let login = std::cell::RefCell::new(owner.clone());
    let get = |q: &str| {
        let r = s.get(&format!("/api/v1/me/tokens{q}"), &login.borrow());
        status(&r, 200, q);
        ids(&r)
    };
    assert_eq!(get("?status=expiring_soon"), sorted(&[&d1, &d5]), "live and expiring within 7 days");
    assert_eq!(get("?expires_within_days=2"), sorted(&[&d1]), "revoked tokens are not 'expiring'");
    assert_eq!(get("?expires_within_days=30"), sorted(&[&d1, &d5, &d20, &boot]));
    let before = rfc3339(now + 6 * DAY);
    assert_eq!(get(&format!("?expires_before={before}")), sorted(&[&d1, &d5, &revoked]));
    assert_eq!(get(&format!("?expires_before={before}&status=active")), sorted(&[&d1, &d5]));
    assert_eq!(get("?status=revoked"), sorted(&[&revoked]));
    assert_eq!(get("?status=active&sort=expires_at&order=desc").len(), 4);
    let r = s.get("/api/v1/me/tokens?status=active&sort=expires_at", &owner);
    assert_eq!(r.body["items"][0]["id"], json!(d1), "sorted by expiry: {}", r.text);
    s.clock.advance(2 * DAY);
    let owner = s.owner_login();
    *login.borrow_mut() = owner.clone();
    assert_eq!(get("?status=expired"), sorted(&[&d1]));
    assert_eq!(get("?status=expiring_soon"), sorted(&[&d5]));
    // Unknown parameters and bad values are refused, naming the parameter.
    for (q, field) in [
        ("?bogus=1", "bogus"),
        ("?owner_kind=user", "owner_kind"),
        ("?status=sleepy", "status"),
        ("?expires_before=tomorrow", "expires_before"),
        ("?expires_within_days=0", "expires_within_days"),
        ("?expires_within_days=x", "expires_within_days"),
        ("?sort=owner", "sort"),
        ("?status=active&status=revoked", "status"),
    ] {
        invalid_field(&s.get(&format!("/api/v1/me/tokens{q}"), &owner), field, q);
    }
    // A service account's list.
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    let (t3, _) = s.sa_token(&owner, &bot, json!({"name": "a", "ttl_days": 3}));
    let (_t90, _) = s.sa_token(&owner, &bot, json!({"name": "b", "ttl_days": 90}));
    let r = s.get(&format!("/api/v1/service-accounts/{bot}/tokens?status=expiring_soon"), &owner);
    status(&r, 200, "sa list");
    assert_eq!(ids(&r), vec![t3.clone()]);
    let r = s.get(&format!("/api/v1/service-accounts/{bot}/tokens?expires_within_days=100"), &owner);
    assert_eq!(r.body["total_count"], json!(2));
    invalid_field(&s.get(&format!("/api/v1/service-accounts/{bot}/tokens?q=a"), &owner), "q", "sa list q");
    // The org table.
    let r = s.get("/api/v1/tokens?status=expiring_soon&owner_kind=service_account", &owner);
    status(&r, 200, "org table");
    assert_eq!(ids(&r), vec![t3]);
    let r = s.get("/api/v1/tokens?status=expiring_soon", &owner);
    assert_eq!(
        ids(&r),
        sorted(&[&d5, &ids(&s.get(&format!("/api/v1/service-accounts/{bot}/tokens?status=expiring_soon"), &owner))[0]])
    );
    invalid_field(&s.get("/api/v1/tokens?expires_within_days=3651", &owner), "expires_within_days", "too far");
}

/// `expires_at` (RFC 3339) instead of `ttl_days`, bounded by the policy; not both.
fn creation_accepts_expires_at(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let now = s.clock.now();
    let at = rfc3339(now + 36 * 3600);
    let r = s.post("/api/v1/me/tokens", &owner, json!({"name": "x", "expires_at": at, "roles": ["org:member"]}));
    status(&r, 201, "expires_at");
    assert_eq!(r.body["expires_at"], json!(at));
    let pat = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(s.exchange(&pat).header("tokend-api-token-expires"), Some(at.as_str()));
    let before = s.data_snapshot();
    for (body, what) in [
        (json!({"name": "x", "expires_at": at, "ttl_days": 1, "roles": ["org:member"]}), "both"),
        (json!({"name": "x", "expires_at": rfc3339(now - 1), "roles": ["org:member"]}), "past"),
        (json!({"name": "x", "expires_at": rfc3339(now), "roles": ["org:member"]}), "now"),
        (json!({"name": "x", "expires_at": rfc3339(now + 30 * DAY + 1), "roles": ["org:member"]}), "beyond 30 days"),
        (json!({"name": "x", "expires_at": "next week", "roles": ["org:member"]}), "not a time"),
        (json!({"name": "x", "expires_at": null, "roles": ["org:member"]}), "null"),
    ] {
        invalid_field(&s.post("/api/v1/me/tokens", &owner, body), "expires_at", what);
    }
    assert_eq!(s.data_snapshot(), before, "refused creations changed nothing");
    let r = s.post(
        "/api/v1/me/tokens",
        &owner,
        json!({"name": "x", "expires_at": rfc3339(now + 30 * DAY), "roles": ["org:member"]}),
    );
    status(&r, 201, "exactly the maximum");
    // Service-account tokens: the service maximum (365 days).
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    let path = format!("/api/v1/service-accounts/{bot}/tokens");
    let r = s.post(&path, &owner, json!({"name": "y", "expires_at": rfc3339(now + 200 * DAY)}));
    status(&r, 201, "sa expires_at");
    assert_eq!(ts(&r.body["expires_at"]), now + 200 * DAY);
    invalid_field(
        &s.post(&path, &owner, json!({"name": "y", "expires_at": rfc3339(now + 366 * DAY)})),
        "expires_at",
        "sa beyond",
    );
}

/// GET /api/v1/tokens/{id} (the table's row) and GET …/service-accounts/{id}/tokens/{tid}:
/// org:admin, own org only.
fn read_one_token(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (pat_id, _) = s.pat(&owner, json!({"name": "mine", "ttl_days": 5}));
    let r = s.get(&format!("/api/v1/tokens/{pat_id}"), &owner);
    status(&r, 200, "one token");
    for f in common::RECORD_FIELDS {
        assert!(r.body.get(f).is_some(), "record field {f}: {}", r.text);
    }
    assert!(r.body.get("token").is_none(), "never the secret: {}", r.text);
    assert_eq!(r.body["owner_email"], json!(s.owner_email));
    assert_eq!(r.body["name"], json!("mine"));
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    let (tid, _) = s.sa_token(&owner, &bot, json!({"name": "t", "ttl_days": 9}));
    let r = s.get(&format!("/api/v1/service-accounts/{bot}/tokens/{tid}"), &owner);
    status(&r, 200, "sa token");
    assert_eq!((r.body["id"].clone(), r.body["owner_id"].clone()), (json!(tid), json!(bot)));
    // Not the account's token: 404; a member: 403; another org: 404.
    problem(&s.get(&format!("/api/v1/service-accounts/{bot}/tokens/{pat_id}"), &owner), 404, "another owner's token");
    problem(&s.get("/api/v1/tokens/nope", &owner), 404, "unknown");
    let (_, member) = s.user(&owner, "m@example.test", &["org:member"]);
    problem(&s.get(&format!("/api/v1/tokens/{pat_id}"), &member), 403, "member");
    problem(&s.get(&format!("/api/v1/service-accounts/{bot}/tokens/{tid}"), &member), 403, "member sa");
    {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::org::orgs::create(
            &mut conn,
            "other",
            "o@other.test",
            Some("other-password-1".into()),
            s.clock.now(),
        )
        .unwrap();
    }
    let other = s.login("o@other.test", "other-password-1");
    problem(&s.get(&format!("/api/v1/tokens/{pat_id}"), &other), 404, "another org");
    let obot = sa(&s, &other, "obot", &["org:member"]);
    problem(&s.get(&format!("/api/v1/service-accounts/{obot}/tokens/{tid}"), &other), 404, "another org's sa path");
    problem(&s.get(&format!("/api/v1/service-accounts/{bot}/tokens/{tid}"), &other), 404, "another org's account");
}

// ---------------------------------------------------------------------------------------
// 3. rotation without downtime
// ---------------------------------------------------------------------------------------

/// During a regeneration's grace both secrets work (and the old secret's access tokens stay
/// live); after it only the new one, and the old secret's access tokens end.
fn app_secret_grace(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (id, cid, old) =
        s.app(&owner, json!({"name": "sync", "roles": ["org:member"], "access_token_ttl_seconds": 7200}));
    let before_old = cc(&s, &cid, &old).body["access_token"].as_str().unwrap().to_string();
    let path = format!("/api/v1/apps/{id}/secret");
    // Beyond 7 days, negative, not a number, unknown fields: 422 naming the field, nothing changed.
    let snap = s.data_snapshot();
    for (body, field) in [
        (json!({"grace_period_seconds": 7 * DAY + 1}), "grace_period_seconds"),
        (json!({"grace_period_seconds": -1}), "grace_period_seconds"),
        (json!({"grace_period_seconds": "1h"}), "grace_period_seconds"),
        (json!({"grace_days": 1}), "grace_days"),
    ] {
        let r = s.post(&path, &owner, body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        invalid_field(&r, field, &body.to_string());
    }
    let r =
        s.raw("POST", &path, &[("authorization", &format!("Bearer {owner}")), ("content-type", "text/plain")], b"{}");
    problem(&r, 415, "a body that is not JSON");
    assert_eq!(s.data_snapshot(), snap, "refused regenerations changed nothing");
    // Regenerate with a 10-minute grace.
    let r = s.post(&path, &owner, json!({"grace_period_seconds": 600}));
    status(&r, 201, "regenerate with grace");
    let new = r.body["client_secret"].as_str().unwrap().to_string();
    let until = s.clock.now() + 600;
    assert_eq!(r.body["previous_secret_expires_at"], json!(rfc3339(until)));
    let get = s.get(&format!("/api/v1/apps/{id}"), &owner);
    assert_eq!(get.body["previous_secret_expires_at"], json!(rfc3339(until)));
    assert!(!get.text.contains(&old) && !get.text.contains(&new), "no secret in the record");
    // Inside the grace: both secrets work; tokens of either introspect active.
    s.clock.advance(599);
    let r = cc(&s, &cid, &old);
    assert_eq!(r.status, 200, "old secret inside the grace: {}", r.text);
    let during_old = r.body["access_token"].as_str().unwrap().to_string();
    let r = cc(&s, &cid, &new);
    assert_eq!(r.status, 200, "new secret: {}", r.text);
    let during_new = r.body["access_token"].as_str().unwrap().to_string();
    for (t, what) in
        [(&before_old, "minted with the old secret before"), (&during_old, "old, during"), (&during_new, "new")]
    {
        assert_eq!(introspect_bearer(&s, &owner, t)["active"], json!(true), "{what}");
    }
    // The grace ends: only the new secret; the old secret's tokens end, the new one's live.
    s.clock.advance(1);
    oauth_error(&cc(&s, &cid, &old), 401, "invalid_client", "old secret after the grace");
    assert_eq!(cc(&s, &cid, &new).status, 200, "new secret after the grace");
    for (t, active, what) in
        [(&before_old, false, "old, before"), (&during_old, false, "old, during"), (&during_new, true, "new")]
    {
        assert_eq!(introspect_bearer(&s, &owner, t)["active"], json!(active), "{what} after the grace");
    }
    // Maintenance forgets the old hash; the answer stays the same.
    let with_hash = s.rows("apps").join("\n");
    assert!(!with_hash.contains("previous_secret_hash=~"), "the hash is kept until maintenance runs");
    tokend::app::maintenance::end_secret_graces(&s.state);
    let rows = s.rows("apps").join("\n");
    assert!(rows.contains("previous_secret_hash=~") && rows.contains("previous_secret_expires_at=~"), "{rows}");
    oauth_error(&cc(&s, &cid, &old), 401, "invalid_client", "old secret after maintenance");
    // A regeneration without a body keeps today's behaviour: the previous secret dies at once.
    let r = s.post(&path, &owner, json!({"grace_period_seconds": 3600}));
    let second = r.body["client_secret"].as_str().unwrap().to_string();
    let r = s.call("POST", &path, Some(&owner), None);
    status(&r, 201, "empty body");
    assert_eq!(r.body["previous_secret_expires_at"], json!(null));
    let third = r.body["client_secret"].as_str().unwrap().to_string();
    oauth_error(&cc(&s, &cid, &new), 401, "invalid_client", "the secret before, no grace");
    oauth_error(&cc(&s, &cid, &second), 401, "invalid_client", "a secret replaced without grace");
    assert_eq!(cc(&s, &cid, &third).status, 200);
}

/// A service-account token at the 20-token limit rotates: the old one works up to the
/// rotation, the new one from its answer on, and the account stays at 20.
fn sa_token_rotation_at_the_limit(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let bot = sa(&s, &owner, "collector", &["org:member"]);
    let path = format!("/api/v1/service-accounts/{bot}/tokens");
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(s.sa_token(&owner, &bot, json!({"name": format!("t{i}"), "ttl_days": 30})));
    }
    problem(&s.post(&path, &owner, json!({"name": "21st", "ttl_days": 1})), 409, "the 21st");
    let (tid, old) = tokens[0].clone();
    let old_exchange = s.exchange(&old);
    assert_eq!(old_exchange.status, 200, "the old token works up to the rotation");
    // Refusals first: a non-interactive caller, an unknown token, another account's token.
    let pat_at = s.exchange_api(&s.owner_pat);
    let snap = s.data_snapshot();
    problem(&s.post(&format!("{path}/{tid}/rotate"), &pat_at, json!({})), 403, "PAT-derived admin");
    problem(&s.post(&format!("{path}/nope/rotate"), &owner, json!({})), 404, "unknown token");
    let other = sa(&s, &owner, "other", &["org:member"]);
    let snap2 = s.data_snapshot();
    problem(
        &s.post(&format!("/api/v1/service-accounts/{other}/tokens/{tid}/rotate"), &owner, json!({})),
        404,
        "not its token",
    );
    assert_eq!(s.data_snapshot(), snap2, "refused rotations changed nothing");
    let _ = snap;
    s.clock.advance(3 * DAY);
    let owner = s.owner_login();
    let r = s.call("POST", &format!("{path}/{tid}/rotate"), Some(&owner), None);
    status(&r, 201, "rotate at the limit");
    let new = r.body["token"].as_str().unwrap().to_string();
    assert!(new.starts_with("tkd_sat_"));
    assert_ne!(r.body["id"], json!(tid));
    assert_eq!(r.body["name"], json!("t0"));
    assert_eq!(r.body["roles"], json!(["org:member"]));
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 30 * DAY, "the same lifetime");
    assert_eq!(s.exchange(&new).status, 200, "the new token works at once");
    invalid_grant(&s.exchange(&old), "the old token is revoked");
    let r = s.get(&format!("{path}/{tid}"), &owner);
    assert_eq!(r.body["status"], json!("revoked"));
    let r = s.get(&format!("{path}?status=active"), &owner);
    assert_eq!(r.body["total_count"], json!(20), "still 20 live tokens");
    problem(&s.post(&path, &owner, json!({"name": "21st", "ttl_days": 1})), 409, "still full");
    problem(&s.post(&format!("{path}/{tid}/rotate"), &owner, json!({})), 409, "a revoked token does not rotate");
    // The audit trail links the two.
    let r = s.get("/api/v1/audit?action=token.rotate", &owner);
    let items = r.body["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["object_id"] == json!(tid) && e["detail"]["new_token"].is_string()), "{}", r.text);
    // The limit does not count the replaced token, but counts the others: with the policy
    // lowered below the live count, rotation is refused rather than exceeding it.
    status(&s.put("/api/v1/policy", &owner, json!({"max_tokens_per_service_account": 5})), 200, "lower the cap");
    let (tid1, _) = tokens[1].clone();
    problem(&s.post(&format!("{path}/{tid1}/rotate"), &owner, json!({})), 409, "over the lowered cap");
}

/// Concurrent rotations of one token, concurrent self-rotations and creations at the
/// limit: exactly one successor, never more live tokens than the limit.
fn concurrent_rotations_leave_one_successor(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    status(
        &s.put("/api/v1/policy", &owner, json!({"max_tokens_per_service_account": 3, "allow_self_rotation": true})),
        200,
        "policy",
    );
    let bot = sa(&s, &owner, "racer", &["org:member"]);
    let path = format!("/api/v1/service-accounts/{bot}/tokens");
    for round in 0..3 {
        let toks: Vec<(String, String)> = (0..3)
            .map(|i| s.sa_token(&owner, &bot, json!({"name": format!("r{round}-{i}"), "ttl_days": 30})))
            .collect();
        let (tid, secret) = toks[0].clone();
        let barrier = std::sync::Barrier::new(6);
        let statuses: Vec<(&str, u16)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let (s, owner, barrier, path, tid, secret) = (&s, &owner, &barrier, &path, &tid, &secret);
                    scope.spawn(move || {
                        barrier.wait();
                        match i % 3 {
                            0 => ("rotate", s.post(&format!("{path}/{tid}/rotate"), owner, json!({})).status),
                            1 => ("self", self_rotate(s, secret).status),
                            _ => {
                                ("create", s.post(path, owner, json!({"name": format!("c{i}"), "ttl_days": 1})).status)
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let rotated = statuses.iter().filter(|(k, c)| *k != "create" && *c == 201).count();
        let created = statuses.iter().filter(|(k, c)| *k == "create" && *c == 201).count();
        let live = s.get(&format!("{path}?status=active"), &owner).body["total_count"].as_i64().unwrap();
        assert_eq!(rotated, 1, "round {round}: exactly one rotation of the token wins: {statuses:?}");
        assert!(live <= 3, "round {round}: never beyond the limit: {live} live, {statuses:?}");
        assert_eq!(live, 3, "round {round}: the account is full: {statuses:?} ({created} created)");
        for (k, c) in &statuses {
            assert!([201, 401, 409].contains(c), "round {round}: {k} answered {c}: {statuses:?}");
        }
        invalid_grant(&s.exchange(&secret), "the rotated token");
        // Empty the account for the next round.
        let r = s.get(&format!("{path}?status=active"), &owner);
        for t in r.body["items"].as_array().unwrap() {
            status(&s.delete(&format!("{path}/{}", t["id"].as_str().unwrap()), &owner), 204, "empty");
        }
    }
}

/// Self-rotation: refused (403) while the policy is off; once on, the token alone rotates
/// itself, the successor never wider (roles ∩ the owner's current roles, lifetime capped by
/// today's maximum), shown once, the old one revoked, audited.
fn self_rotation(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let (old_id, old) = s.pat(&dev, json!({"name": "ci", "ttl_days": 20, "roles": ["org:developer"]}));
    let snap = s.snapshot();
    let r = self_rotate(&s, &old);
    problem(&r, 403, "policy off");
    assert!(r.body["detail"].as_str().unwrap().contains("allow_self_rotation"), "{}", r.text);
    assert_eq!(s.snapshot(), snap, "a refused self-rotation changes nothing");
    assert_eq!(s.exchange(&old).status, 200, "the token still works");
    let policy = s.get("/api/v1/policy", &owner).body;
    assert_eq!(policy["allow_self_rotation"], json!(false));
    status(
        &s.put("/api/v1/policy", &owner, json!({"allow_self_rotation": true, "personal_token_max_ttl_days": 7})),
        200,
        "on",
    );
    // Not an API token: 401, nothing changed.
    let snap = s.snapshot();
    // The old token with its last character changed (to one it is not: a fixed 'x' equals
    // the real token once in 62 runs).
    let last = if old.ends_with('x') { 'y' } else { 'x' };
    let altered = format!("{}{last}", &old[..old.len() - 1]);
    for bearer in [dev.as_str(), "tkd_pat_nope", &altered] {
        problem(&self_rotate(&s, bearer), 401, "not a live API token");
    }
    problem(&s.call("POST", "/api/v1/tokens/self/rotate", None, None), 401, "no bearer");
    assert_eq!(s.snapshot(), snap, "refused self-rotations change nothing");
    // The owner was demoted meanwhile: the successor carries only what both still hold.
    status(&s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member"]})), 200, "demote");
    s.clock.advance(DAY);
    let (owner, dev) = (s.owner_login(), s.login("dev@example.test", "user-password-123"));
    let r = self_rotate(&s, &old);
    status(&r, 201, "self-rotate");
    let new = r.body["token"].as_str().unwrap().to_string();
    assert!(new.starts_with("tkd_pat_") && new != old);
    assert_eq!(r.body["roles"], json!(["org:member"]), "never wider than the owner now holds");
    assert_eq!(r.body["owner_id"], json!(uid));
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 7 * DAY, "capped by today's maximum");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    invalid_grant(&s.exchange(&old), "the old token is revoked");
    let claims = s.verify_resource(&s.exchange_ok(&new));
    assert_eq!(claims["roles"], json!(["org:member"]));
    assert_eq!(s.get(&format!("/api/v1/me/tokens/{old_id}"), &dev).body["status"], json!("revoked"));
    // The secret is shown once: the records never carry it.
    let listed = s.get("/api/v1/me/tokens", &dev);
    assert!(!listed.text.contains(&new), "never listed");
    // Audited: rotated by the owner via the token itself.
    let r = s.get("/api/v1/audit?action=token.rotate", &owner);
    let e = r.body["items"].as_array().unwrap().iter().find(|e| e["object_id"] == json!(old_id)).cloned();
    let e = e.unwrap_or_else(|| panic!("audit row: {}", r.text));
    assert_eq!((e["actor_id"].clone(), e["detail"]["via_token"].clone()), (json!(uid), json!(old_id)));
    // A revoked token cannot rotate; neither can a token whose roles the owner lost entirely.
    problem(&self_rotate(&s, &old), 401, "revoked");
    // A service-account token rotates itself too (full account included).
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    status(&s.put("/api/v1/policy", &owner, json!({"max_tokens_per_service_account": 1})), 200, "cap 1");
    let (_, sat) = s.sa_token(&owner, &bot, json!({"name": "only", "ttl_days": 30}));
    let r = self_rotate(&s, &sat);
    status(&r, 201, "sa self-rotate at the limit");
    assert!(r.body["token"].as_str().unwrap().starts_with("tkd_sat_"));
    assert_eq!(ts(&r.body["expires_at"]) - ts(&r.body["created_at"]), 30 * DAY, "lifetime kept (within 365)");
    invalid_grant(&s.exchange(&sat), "old sat");
    // Switched off again: refused.
    status(&s.put("/api/v1/policy", &owner, json!({"allow_self_rotation": false})), 200, "off");
    problem(&self_rotate(&s, r.body["token"].as_str().unwrap()), 403, "off again");
}

/// Failed self-rotations count against the caller's address like every bearer failure.
fn self_rotation_failures_are_throttled(b: &Backend) {
    let s = b.start_with(|c| c.token_failures_per_minute = 3);
    let owner = s.owner_login();
    let (_, pat) = s.pat(&owner, json!({"name": "x", "ttl_days": 5}));
    for i in 0..3 {
        problem(&self_rotate(&s, "tkd_pat_wrong"), 401, &format!("failure {i}"));
    }
    let r = self_rotate(&s, "tkd_pat_wrong");
    problem(&r, 429, "over the limit");
    assert!(r.header("retry-after").is_some());
    // A valid token is still answered (403 here: the policy is off), never throttled.
    problem(&self_rotate(&s, &pat), 403, "valid credentials are evaluated");
}

// ---------------------------------------------------------------------------------------
// 4. tidy lists
// ---------------------------------------------------------------------------------------

/// Ended tokens leave the default lists after retention_days, even before the purge; the
/// purge deletes them and keeps their audit rows.
fn retention_and_purge(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let p = s.get("/api/v1/policy", &owner);
    assert_eq!((p.body["retention_days"].clone(), p.body["allow_self_rotation"].clone()), (json!(90), json!(false)));
    status(&s.put("/api/v1/policy", &owner, json!({"retention_days": 10})), 200, "retention 10");
    let (live, _) = s.pat(&owner, json!({"name": "live", "ttl_days": 30}));
    let (revoked, _) = s.pat(&owner, json!({"name": "revoked", "ttl_days": 30}));
    let (expiring, _) = s.pat(&owner, json!({"name": "short", "ttl_days": 1}));
    status(&s.delete(&format!("/api/v1/me/tokens/{revoked}"), &owner), 204, "revoke");
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    let (sat, _) = s.sa_token(&owner, &bot, json!({"name": "t", "ttl_days": 5}));
    status(&s.delete(&format!("/api/v1/service-accounts/{bot}/tokens/{sat}"), &owner), 204, "revoke sat");
    let login = std::cell::RefCell::new(owner.clone());
    let listed = |path: &str| ids(&s.get(path, &login.borrow()));
    assert!(listed("/api/v1/me/tokens").contains(&revoked), "inside the retention");
    // 10 days after the revocation, 9 after the expiry: the revoked ones leave the lists.
    s.clock.advance(10 * DAY);
    let owner = s.owner_login();
    *login.borrow_mut() = owner.clone();
    let me = listed("/api/v1/me/tokens");
    assert!(!me.contains(&revoked) && me.contains(&expiring) && me.contains(&live), "{me:?}");
    assert!(!listed("/api/v1/tokens").contains(&revoked) && !listed("/api/v1/tokens").contains(&sat));
    assert!(listed(&format!("/api/v1/service-accounts/{bot}/tokens")).is_empty());
    assert_eq!(listed("/api/v1/me/tokens?status=revoked"), vec![revoked.clone()], "a status filter still finds it");
    s.clock.advance(DAY);
    let owner = s.owner_login();
    *login.borrow_mut() = owner.clone();
    assert!(!listed("/api/v1/me/tokens").contains(&expiring), "expired 10 days ago");
    // The purge.
    let audit_before = s.count("audit_events");
    let rows_of = |id: &str| {
        let r = s.get(&format!("/api/v1/audit?object={id}"), &owner);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["total_count"].as_i64().unwrap()
    };
    let revoked_history = rows_of(&revoked);
    assert!(revoked_history >= 2, "created and revoked");
    let tokens_before = s.count("api_tokens");
    tokend::app::maintenance::purge_ended_tokens(&s.state);
    assert_eq!(s.count("api_tokens"), tokens_before - 3, "revoked, expired and the service-account token");
    for id in [&revoked, &expiring, &sat] {
        problem(&s.get(&format!("/api/v1/tokens/{id}"), &owner), 404, "purged");
    }
    status(&s.get(&format!("/api/v1/tokens/{live}"), &owner), 200, "the live token stays");
    assert_eq!(rows_of(&revoked), revoked_history, "its audit rows stay");
    assert_eq!(s.count("audit_events"), audit_before + 1, "one token.purge row");
    let r = s.get("/api/v1/audit?action=token.purge", &owner);
    assert_eq!(r.body["items"][0]["detail"]["purged"], json!(3), "{}", r.text);
    // A second run finds nothing.
    tokend::app::maintenance::purge_ended_tokens(&s.state);
    assert_eq!(s.count("audit_events"), audit_before + 1);
}

/// Policy GET/PUT carry retention_days and allow_self_rotation: a PUT of what GET returned
/// succeeds; bad values are 422 and change nothing.
fn policy_fields(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let got = s.get("/api/v1/policy", &owner).body;
    let r = s.put("/api/v1/policy", &owner, got.clone());
    status(&r, 200, "PUT of GET");
    let snap = s.data_snapshot();
    for (body, field) in [
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"retention_days": 3651}), "retention_days"),
        (json!({"retention_days": null}), "retention_days"),
        (json!({"allow_self_rotation": "yes"}), "allow_self_rotation"),
        (json!({"allow_self_rotation": null}), "allow_self_rotation"),
    ] {
        invalid_field(&s.put("/api/v1/policy", &owner, body.clone()), field, &body.to_string());
    }
    assert_eq!(s.data_snapshot(), snap);
    let r = s.put("/api/v1/policy", &owner, json!({"retention_days": 30, "allow_self_rotation": true}));
    status(&r, 200, "set both");
    assert_eq!((r.body["retention_days"].clone(), r.body["allow_self_rotation"].clone()), (json!(30), json!(true)));
    let (_, admin) = s.user(&owner, "a@example.test", &["org:admin"]);
    problem(&s.put("/api/v1/policy", &admin, json!({"allow_self_rotation": false})), 403, "admins read, owners write");
}

// ---------------------------------------------------------------------------------------
// 5. operators' view
// ---------------------------------------------------------------------------------------

/// Gauges computed by maintenance (not by the scrape), and request ids on every answer.
fn gauges_and_request_ids(b: &Backend) {
    let s = b.start_with(|c| c.access_token_ttl = 1800);
    let owner = s.owner_login();
    let (_, _) = s.pat(&owner, json!({"name": "soon", "ttl_days": 3}));
    let bot = sa(&s, &owner, "bot", &["org:member"]);
    s.sa_token(&owner, &bot, json!({"name": "a", "ttl_days": 100}));
    s.sa_token(&owner, &bot, json!({"name": "b", "ttl_days": 5}));
    status(&s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 1})), 200, "idle ttl");
    s.pat(&owner, json!({"name": "idle", "ttl_days": 30}));
    s.clock.advance(2 * DAY);
    let owner = s.owner_login();
    let metric = |text: &str, name: &str| -> Option<i64> {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
    };
    // Computed at boot: the bootstrap PAT alone.
    let text = ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap();
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"user\"}"), Some(1), "{text}");
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"service_account\"}"), Some(0));
    tokend::app::maintenance::refresh_gauges(&s.state);
    let text = ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap();
    // The bootstrap PAT (30 days) and "soon" are live; "idle" (created under idle_ttl 1) is idle.
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"user\"}"), Some(2), "{text}");
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"service_account\"}"), Some(2));
    assert_eq!(metric(&text, "tokend_api_tokens_expiring_7d"), Some(2), "soon (1 day left) and b (3 days)");
    assert_eq!(metric(&text, "tokend_api_tokens_idle"), Some(1));
    for kind in ["webhook", "email"] {
        assert_eq!(metric(&text, &format!("tokend_webhook_outbox_depth{{kind=\"{kind}\"}}")), Some(0), "{text}");
        assert_eq!(metric(&text, &format!("tokend_webhook_deliveries_failed{{kind=\"{kind}\"}}")), Some(0), "{text}");
    }
    assert_eq!(metric(&text, "tokend_gauges_computed_timestamp_seconds"), Some(s.clock.now()));
    // Scraping does not recompute: a new token shows only at the next computation.
    s.pat(&owner, json!({"name": "later", "ttl_days": 30}));
    let text = ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap();
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"user\"}"), Some(2));
    tokend::app::maintenance::refresh_gauges(&s.state);
    let text = ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap();
    assert_eq!(metric(&text, "tokend_api_tokens_live{owner_kind=\"user\"}"), Some(3));
    // Request ids: a sane one is echoed, anything else replaced by a generated one.
    let r = s.raw("GET", "/healthz", &[("x-request-id", "abc-123")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = s.raw("GET", "/healthz", &[("x-request-id", "bad id\"")], b"");
    let generated = r.header("x-request-id").unwrap().to_string();
    assert!(!generated.is_empty() && generated != "bad id\"");
    let r2 = s.raw("GET", "/healthz", &[], b"");
    assert_ne!(r2.header("x-request-id").unwrap(), generated, "unique");
    let r = s.exchange(&s.owner_pat);
    assert!(r.header("x-request-id").is_some(), "the token path too");
    let r = s.get("/api/v1/me", "nope");
    assert!(r.header("x-request-id").is_some(), "refusals too");
}

backend_tests!(
    expiry_header_on_api_token_exchanges,
    lists_filter_by_expiry_and_status,
    creation_accepts_expires_at,
    read_one_token,
    app_secret_grace,
    sa_token_rotation_at_the_limit,
    self_rotation,
    self_rotation_failures_are_throttled,
    concurrent_rotations_leave_one_successor,
    retention_and_purge,
    policy_fields,
    gauges_and_request_ids,
);
