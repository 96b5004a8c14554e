//! Credentials follow trust (issue #18, items 1–5): a reset code, a secret someone once saw
//! or a token someone minted dies when the trust it was issued under changes (the person
//! leaves, is demoted or disabled); reviving or widening power needs an interactive login.
use crate::common;
use crate::common::helpers::{new_sa, new_user, redeem, reset_code, str_of};

use common::assert::{invalid_grant, oauth_error, status};
use common::{Backend, Resp, Server};
use serde_json::json;

const PASSWORD: &str = "new-password-123";

/// A token of a service account (its roles); answers (id, secret).
fn sa_token(s: &Server, at: &str, sa: &str) -> (String, String) {
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), at, json!({"name": "t", "ttl_days": 1}));
    status(&r, 201, "mint a service-account token");
    (str_of(&r.body, "id"), str_of(&r.body, "token"))
}

fn client_credentials(s: &Server, cid: &str, secret: &str) -> Resp {
    s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((cid, secret)))
}

fn webhook(s: &Server, at: &str, n: u32) -> String {
    let body = json!({"url": format!("https://hooks{n}.example/"), "events": ["token.created"]});
    let r = s.post("/api/v1/webhooks", at, body);
    status(&r, 201, "create a webhook");
    str_of(&r.body, "id")
}

/// Sets a column through the store, as a path that forgets to void codes would.
fn set_roles_behind_the_back(s: &Server, user: &str, roles: &str) {
    use diesel::prelude::*;
    let mut conn = s.state.db.write().unwrap();
    let q = format!("UPDATE users SET roles = '{roles}' WHERE id = '{user}'");
    diesel::sql_query(q).execute(&mut *conn).unwrap();
}

/// Item 1: a reset code is void once the person's roles change, they are disabled, a newer
/// code is issued, or its issuer is demoted, deleted or disabled — and redemption checks
/// all of it again, even after a change that voided nothing.
fn reset_code_dies_with_the_trust_it_was_issued_under(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    // The issue's reproduction: the person is promoted to owner, the admin redeems.
    let p1 = new_user(&s, &admin, "p1@example.test", &["org:member"]);
    let code = reset_code(&s, &admin, &p1);
    status(&s.patch(&format!("/api/v1/users/{p1}"), &owner, json!({"roles": ["org:owner"]})), 200, "promote");
    status(&redeem(&s, &code, PASSWORD), 400, "a code issued before a promotion");
    // A newer code voids the older one.
    let p2 = new_user(&s, &admin, "p2@example.test", &["org:member"]);
    let (older, newer) = (reset_code(&s, &admin, &p2), reset_code(&s, &admin, &p2));
    status(&redeem(&s, &older, PASSWORD), 400, "an older code");
    // The person disabled.
    let p3 = new_user(&s, &admin, "p3@example.test", &["org:member"]);
    let code3 = reset_code(&s, &admin, &p3);
    status(&s.patch(&format!("/api/v1/users/{p3}"), &owner, json!({"disabled": true})), 200, "disable");
    status(&s.patch(&format!("/api/v1/users/{p3}"), &owner, json!({"disabled": false})), 200, "enable");
    status(&redeem(&s, &code3, PASSWORD), 400, "a code issued before the person was disabled");
    // Roles changed by a path that voids nothing: redemption still refuses.
    let p4 = new_user(&s, &admin, "p4@example.test", &["org:member"]);
    let code4 = reset_code(&s, &admin, &p4);
    set_roles_behind_the_back(&s, &p4, r#"["org:admin"]"#);
    status(&redeem(&s, &code4, PASSWORD), 400, "a code whose person's roles changed behind the scenes");
    // The issuer demoted (a path that voids nothing, then the API), then deleted.
    let p5 = new_user(&s, &admin, "p5@example.test", &["org:member"]);
    let code5 = reset_code(&s, &admin, &p5);
    set_roles_behind_the_back(&s, &admin_id, r#"["org:member"]"#);
    status(&redeem(&s, &code5, PASSWORD), 400, "a code whose issuer is no admin any more");
    set_roles_behind_the_back(&s, &admin_id, r#"["org:admin"]"#);
    let code5 = reset_code(&s, &owner, &p5);
    let p6 = new_user(&s, &owner, "p6@example.test", &["org:member"]);
    let (_, admin2) = s.user(&owner, "admin2@example.test", &["org:admin"]);
    let code6 = reset_code(&s, &admin2, &p6);
    let admin2_id = str_of(&s.get("/api/v1/me", &admin2).body, "id");
    status(&s.delete(&format!("/api/v1/users/{admin2_id}"), &owner), 204, "delete the issuer");
    status(&redeem(&s, &code6, PASSWORD), 400, "a code whose issuer was deleted");
    // What still stands redeems.
    status(&redeem(&s, &newer, PASSWORD), 204, "the newest code of an unchanged person");
    status(&redeem(&s, &code5, PASSWORD), 204, "the owner's code");
    s.login("p5@example.test", PASSWORD);
    let r = s.call("POST", "/api/v1/login", None, Some(&json!({"email": "p1@example.test", "password": PASSWORD})));
    status(&r, 401, "nobody set the promoted person's password");
}

/// Item 2(a): a transfer hands over no secret: the leaver's app secret and the tokens they
/// minted on a transferred service account stop working.
fn transfer_rolls_the_secrets_it_hands_over(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (dev_id, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let (app, cid, secret) = s.app(&dev, json!({"name": "ci", "roles": ["org:member"]}));
    status(&client_credentials(&s, &cid, &secret), 200, "the app works before");
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let sa = new_sa(&s, &admin, "bot", &["org:member"]);
    let (_, token) = sa_token(&s, &admin, &sa);
    s.exchange_ok(&token);
    status(&s.delete(&format!("/api/v1/users/{dev_id}?credentials=transfer"), &owner), 204, "delete dev");
    oauth_error(&client_credentials(&s, &cid, &secret), 401, "invalid_client", "the leaver's secret");
    let g = s.get(&format!("/api/v1/apps/{app}"), &owner);
    assert_eq!((g.body["created_by"].as_str(), g.body["disabled"].as_bool()), (Some(s.owner_id.as_str()), Some(false)));
    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &owner, json!({}));
    status(&r, 201, "the new owner regenerates");
    status(&client_credentials(&s, &cid, &str_of(&r.body, "client_secret")), 200, "the new secret");
    status(&s.delete(&format!("/api/v1/users/{admin_id}?credentials=transfer"), &owner), 204, "delete admin");
    let g = s.get(&format!("/api/v1/service-accounts/{sa}"), &owner);
    assert_eq!(g.body["created_by"], json!(s.owner_id), "{}", g.text);
    invalid_grant(&s.exchange(&token), "a token the leaver minted on a transferred account");
}

/// Item 2(b): whoever regenerated an app's secret holds it: their leaving is settled like
/// its creator's (409 without a choice; with one, the secret they saw dies).
fn whoever_saw_a_secret_is_settled_like_its_creator(b: &Backend) {
    seen_app_secret(b);
    seen_webhook_and_token_secrets(b);
}

fn seen_app_secret(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, _) = s.app(&owner, json!({"name": "ci", "roles": ["org:member"]}));
    let (dev_id, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &dev, json!({}));
    status(&r, 201, "the developer regenerates someone else's app");
    let seen = str_of(&r.body, "client_secret");
    status(&client_credentials(&s, &cid, &seen), 200, "the secret the developer saw");
    let path = format!("/api/v1/users/{dev_id}");
    status(&s.delete(&path, &owner), 409, "delete the developer without a choice");
    status(&client_credentials(&s, &cid, &seen), 200, "a refusal changes nothing");
    status(&s.delete(&format!("{path}?credentials=disable"), &owner), 204, "delete with disable");
    oauth_error(&client_credentials(&s, &cid, &seen), 401, "invalid_client", "the secret the leaver saw");
    let g = s.get(&format!("/api/v1/apps/{app}"), &owner);
    assert_eq!(g.body["disabled"], json!(true), "{}", g.text);
}

/// A rolled webhook secret and a token that rotated itself after a person minted it: the
/// person still holds both, and both are settled when they leave.
fn seen_webhook_and_token_secrets(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    status(&s.put("/api/v1/policy", &owner, json!({"allow_self_rotation": true})), 200, "self-rotation on");
    let hook = webhook(&s, &owner, 1);
    let sa = new_sa(&s, &owner, "bot", &["org:member"]);
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    status(&s.post(&format!("/api/v1/webhooks/{hook}/secret"), &admin, json!({})), 201, "the admin rolls");
    let (_, minted) = sa_token(&s, &admin, &sa);
    let r = s.call("POST", "/api/v1/tokens/self/rotate", Some(&minted), None);
    status(&r, 201, "the token rotates itself");
    let rotated = str_of(&r.body, "token");
    s.exchange_ok(&rotated);
    status(&s.delete(&format!("/api/v1/users/{admin_id}"), &owner), 409, "delete the holder without a choice");
    status(&s.delete(&format!("/api/v1/users/{admin_id}?credentials=disable"), &owner), 204, "delete with disable");
    invalid_grant(&s.exchange(&rotated), "a self-rotated token whose first secret the leaver saw");
    let w = s.get(&format!("/api/v1/webhooks/{hook}"), &owner).body;
    assert_eq!(w["enabled"], json!(false), "the webhook whose secret the leaver rolled: {w}");
}

/// Item 2(c): tokens a leaver minted on someone else's service account are revoked.
fn tokens_a_leaver_minted_are_revoked(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let sa = new_sa(&s, &owner, "owners-bot", &["org:member"]);
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (tid, token) = sa_token(&s, &admin, &sa);
    let (_, owners_token) = sa_token(&s, &owner, &sa);
    s.exchange_ok(&token);
    let path = format!("/api/v1/users/{admin_id}");
    status(&s.delete(&path, &owner), 409, "delete the minter without a choice");
    s.exchange_ok(&token);
    status(&s.delete(&format!("{path}?credentials=disable"), &owner), 204, "delete with disable");
    invalid_grant(&s.exchange(&token), "the leaver's token");
    let t = s.get(&format!("/api/v1/tokens/{tid}"), &owner);
    assert_eq!(t.body["status"], json!("revoked"), "{}", t.text);
    s.exchange_ok(&owners_token);
    let g = s.get(&format!("/api/v1/service-accounts/{sa}"), &owner);
    assert_eq!(g.body["disabled"], json!(false), "the account stays: {}", g.text);
}

/// Item 2(d): a demotion settles like a deletion: tokens the demoted person minted with
/// roles they no longer hold answer 409 without a choice and are revoked with one.
fn demotion_revokes_tokens_carrying_roles_the_person_lost(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let sa = new_sa(&s, &owner, "admin-bot", &["org:admin"]);
    let low = new_sa(&s, &owner, "member-bot", &["org:member"]);
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, token) = sa_token(&s, &admin, &sa);
    let (_, low_token) = sa_token(&s, &admin, &low);
    s.exchange_ok(&token);
    let path = format!("/api/v1/users/{admin_id}");
    let demote = json!({"roles": ["org:member"]});
    status(&s.patch(&path, &owner, demote.clone()), 409, "demote without a choice");
    let me = s.get(&path, &owner);
    assert_eq!(me.body["roles"], json!(["org:admin"]), "a refusal changes nothing: {}", me.text);
    status(&s.patch(&format!("{path}?credentials=disable"), &owner, demote), 200, "demote with disable");
    invalid_grant(&s.exchange(&token), "an org:admin token minted by the demoted admin");
    s.exchange_ok(&low_token);
}

/// Item 2(e): enabling an app whose secret holder has left answers 409 until the secret
/// is regenerated; enabling a service account revokes the tokens such people minted.
fn enabling_what_a_leaver_holds_the_secret_of_needs_a_new_secret(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, _) = s.app(&owner, json!({"name": "ci", "roles": ["org:member"]}));
    let (dev_id, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let seen = str_of(&s.post(&format!("/api/v1/apps/{app}/secret"), &dev, json!({})).body, "client_secret");
    let sa = new_sa(&s, &owner, "bot", &["org:member"]);
    let (admin_id, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, admins_token) = sa_token(&s, &admin, &sa);
    let (_, owners_token) = sa_token(&s, &owner, &sa);
    let (app_path, sa_path) = (format!("/api/v1/apps/{app}"), format!("/api/v1/service-accounts/{sa}"));
    status(&s.patch(&app_path, &owner, json!({"disabled": true})), 200, "disable the app");
    status(&s.patch(&sa_path, &owner, json!({"disabled": true})), 200, "disable the account");
    for id in [&dev_id, &admin_id] {
        status(&s.patch(&format!("/api/v1/users/{id}"), &owner, json!({"disabled": true})), 200, "disable holder");
    }
    status(&s.patch(&app_path, &owner, json!({"disabled": false})), 409, "enable the app");
    assert_eq!(s.get(&app_path, &owner).body["disabled"], json!(true));
    status(&s.post(&format!("{app_path}/secret"), &owner, json!({})), 201, "regenerate");
    status(&s.patch(&app_path, &owner, json!({"disabled": false})), 200, "enable after regenerating");
    oauth_error(&client_credentials(&s, &cid, &seen), 401, "invalid_client", "the leaver's secret");
    status(&s.patch(&sa_path, &owner, json!({"disabled": false})), 200, "enable the account");
    invalid_grant(&s.exchange(&admins_token), "a token minted by a disabled person");
    s.exchange_ok(&owners_token);
}

/// Item 2(f): webhooks a leaver created are disabled (`disable`) or pass to the caller
/// (`transfer`), with a secret nobody has seen either way.
fn a_leavers_webhooks_are_disabled_or_transferred_with_a_new_secret(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    for (n, choice) in [(1, "disable"), (2, "transfer")] {
        let (id, admin) = s.user(&owner, &format!("admin{n}@example.test"), &["org:admin"]);
        let hook = webhook(&s, &admin, n);
        let before = s.get(&format!("/api/v1/webhooks/{hook}"), &owner).body;
        status(&s.delete(&format!("/api/v1/users/{id}"), &owner), 409, "delete without a choice");
        status(&s.delete(&format!("/api/v1/users/{id}?credentials={choice}"), &owner), 204, choice);
        let after = s.get(&format!("/api/v1/webhooks/{hook}"), &owner).body;
        assert_ne!(after["secret_hint"], before["secret_hint"], "{choice}: the secret is rolled: {after}");
        let (enabled, creator) = if choice == "disable" { (false, id) } else { (true, s.owner_id.clone()) };
        assert_eq!((after["enabled"].clone(), after["created_by"].clone()), (json!(enabled), json!(creator)));
    }
}

/// Item 3: re-enabling a disabled person needs an interactive login.
fn reenabling_a_person_needs_an_interactive_login(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let pat = s.exchange_api(&s.owner_pat);
    let r = s.post("/api/v1/users", &owner, json!({"email": "x@example.test", "disabled": true}));
    let path = format!("/api/v1/users/{}", str_of(&r.body, "id"));
    status(&s.patch(&path, &pat, json!({"disabled": false})), 403, "a PAT-derived bearer re-enables");
    assert_eq!(s.get(&path, &owner).body["disabled"], json!(true));
    status(&s.patch(&path, &pat, json!({"name": "still fine"})), 200, "other changes stay open to it");
    status(&s.patch(&path, &owner, json!({"disabled": false})), 200, "an interactive login re-enables");
}

/// Item 4: a PAT-derived bearer only narrows the policy; widening needs an interactive login.
fn only_an_interactive_login_widens_the_policy(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let pat = s.exchange_api(&s.owner_pat);
    status(&s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 30})), 200, "the owner sets an idle limit");
    let before = s.get("/api/v1/policy", &owner).body;
    for widen in [
        json!({"allow_self_rotation": true}),
        json!({"personal_token_max_ttl_days": 31}),
        json!({"service_token_max_ttl_days": 366}),
        json!({"max_tokens_per_service_account": 21}),
        json!({"idle_ttl_days": 31}),
        json!({"idle_ttl_days": null}),
        json!({"personal_token_max_ttl_days": 10, "allow_self_rotation": true}),
    ] {
        status(&s.put("/api/v1/policy", &pat, widen.clone()), 403, &format!("PAT widens with {widen}"));
    }
    assert_eq!(s.get("/api/v1/policy", &owner).body, before, "refusals change nothing");
    let narrow = json!({"personal_token_max_ttl_days": 10, "idle_ttl_days": 7, "retention_days": 400});
    let r = s.put("/api/v1/policy", &pat, narrow);
    status(&r, 200, "PAT narrows (a longer retention is no power)");
    assert_eq!((r.body["personal_token_max_ttl_days"].as_i64(), r.body["idle_ttl_days"].as_i64()), (Some(10), Some(7)));
    status(&s.put("/api/v1/policy", &owner, json!({"allow_self_rotation": true})), 200, "the owner widens");
}

/// Item 5: regenerating, disabling or deleting an app that may introspect needs org:admin
/// and an interactive login, as granting it does.
fn an_introspecting_app_is_an_interactive_admins_to_change(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, _, _) = s.app(&owner, json!({"name": "gateway", "introspect": true}));
    let (_, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let pat = s.exchange_api(&s.owner_pat);
    let path = format!("/api/v1/apps/{app}");
    let before = s.get(&path, &owner).body;
    for who in [&dev, &pat] {
        status(&s.post(&format!("{path}/secret"), who, json!({})), 403, "regenerate");
        status(&s.patch(&path, who, json!({"disabled": true})), 403, "disable");
        status(&s.delete(&path, who), 403, "delete");
    }
    assert_eq!(s.get(&path, &owner).body, before, "refusals change nothing");
    status(&s.patch(&path, &dev, json!({"name": "renamed"})), 200, "other changes stay open to a developer");
    status(&s.post(&format!("{path}/secret"), &admin, json!({})), 201, "an admin regenerates");
    status(&s.patch(&path, &admin, json!({"disabled": true})), 200, "an admin disables");
    status(&s.delete(&path, &admin), 204, "an admin deletes");
}

backend_tests!(
    reset_code_dies_with_the_trust_it_was_issued_under,
    transfer_rolls_the_secrets_it_hands_over,
    whoever_saw_a_secret_is_settled_like_its_creator,
    tokens_a_leaver_minted_are_revoked,
    demotion_revokes_tokens_carrying_roles_the_person_lost,
    enabling_what_a_leaver_holds_the_secret_of_needs_a_new_secret,
    a_leavers_webhooks_are_disabled_or_transferred_with_a_new_secret,
    reenabling_a_person_needs_an_interactive_login,
    only_an_interactive_login_widens_the_policy,
    an_introspecting_app_is_an_interactive_admins_to_change,
);
