//! What ends a login or an access token (logout, sign-out-everywhere, own password change,
//! one-time reset codes, app secret regeneration, disable, jti revocation), the separate
//! management audience, and the RFC 6749/7009 answers of the security review.
use crate::common;
use crate::common::helpers::{introspect, redeem, reset_code};

use common::{Backend, Resp, Server};
use serde_json::json;

/// An app allowed to introspect (created by the owner's interactive login).
fn introspector(s: &Server, owner: &str) -> (String, String) {
    let (_, cid, secret) = s.app(owner, json!({"name": "rs", "introspect": true}));
    (cid, secret)
}

fn me(s: &Server, token: &str) -> u16 {
    s.get("/api/v1/me", token).status
}

fn post_empty(s: &Server, path: &str, bearer: &str) -> Resp {
    s.call("POST", path, Some(bearer), None)
}

fn logout_and_sign_out_everywhere(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let rs = introspector(&s, &owner);
    let (_, alice) = s.user(&owner, "alice@example.test", &["org:member"]);
    let alice2 = s.login("alice@example.test", "user-password-123");
    let (_, pat) = s.pat(&alice, json!({"name": "cli", "ttl_days": 5, "roles": ["org:member"]}));
    let derived = s.exchange_api(&pat);
    assert_eq!(me(&s, &alice), 200);

    // Logout ends exactly the presented login.
    assert_eq!(post_empty(&s, "/api/v1/logout", &alice).status, 204);
    assert_eq!(me(&s, &alice), 401, "a logged-out token is refused");
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &alice), json!({"active": false}));
    assert_eq!(me(&s, &alice2), 200, "the other login lives on");
    assert_eq!(me(&s, &derived), 200, "a PAT-derived token lives on");

    // Sign out everywhere: every login and access token of the person, minted before now.
    assert_eq!(post_empty(&s, "/api/v1/me/sessions/revoke", &alice2).status, 204);
    assert_eq!(me(&s, &alice2), 401);
    assert_eq!(me(&s, &derived), 401);
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &derived), json!({"active": false}));
    // The PAT itself still exchanges, and a fresh login works.
    assert_eq!(me(&s, &s.exchange_api(&pat)), 200);
    assert_eq!(me(&s, &s.login("alice@example.test", "user-password-123")), 200);
    // Logout of a non-login token revokes that access token by jti.
    let d2 = s.exchange_api(&pat);
    assert_eq!(post_empty(&s, "/api/v1/logout", &d2).status, 204);
    assert_eq!(me(&s, &d2), 401);
}

fn own_password_change_ends_other_logins(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, a1) = s.user(&owner, "bob@example.test", &["org:member"]);
    let a2 = s.login("bob@example.test", "user-password-123");
    let before = s.data_snapshot();
    let bad = s.put(
        "/api/v1/me/password",
        &a1,
        json!({"current_password": "not-my-password", "new_password": "brand-new-password"}),
    );
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.body["errors"][0]["field"], json!("current_password"));
    assert_eq!(s.data_snapshot(), before, "a wrong current password changes nothing");
    let short =
        s.put("/api/v1/me/password", &a1, json!({"current_password": "user-password-123", "new_password": "short"}));
    assert_eq!(short.status, 422, "{}", short.text);
    assert_eq!(s.data_snapshot(), before);

    let r = s.put(
        "/api/v1/me/password",
        &a1,
        json!({"current_password": "user-password-123", "new_password": "brand-new-password"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(me(&s, &a1), 200, "the login that changed the password stays");
    assert_eq!(me(&s, &a2), 401, "other logins end");
    let old = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "bob@example.test", "password": "user-password-123"})),
    );
    assert_eq!(old.status, 401);
    assert_eq!(me(&s, &s.login("bob@example.test", "brand-new-password")), 200);

    // A PAT-derived token is not an interactive login: it cannot change the password.
    let (_, pat) = s.pat(&a1, json!({"name": "x", "ttl_days": 1, "roles": ["org:member"]}));
    let derived = s.exchange_api(&pat);
    let r = s.put(
        "/api/v1/me/password",
        &derived,
        json!({"current_password": "brand-new-password", "new_password": "another-password"}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
}

fn reset_codes_are_one_time(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let rs = introspector(&s, &owner);
    let (carol_id, carol) = s.user(&owner, "carol@example.test", &["org:member"]);
    let code = reset_code(&s, &owner, &carol_id);
    // Issuing a code ends the person's logins at once.
    assert_eq!(me(&s, &carol), 401);
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &carol), json!({"active": false}));

    // Bad input changes nothing.
    let before = s.data_snapshot();
    assert_eq!(redeem(&s, "not-a-code", "carol-password-2").status, 400);
    assert_eq!(redeem(&s, &code, "short").status, 422);
    assert_eq!(s.data_snapshot(), before);

    assert_eq!(redeem(&s, &code, "carol-password-2").status, 204);
    let again = redeem(&s, &code, "carol-password-3");
    assert_eq!(again.status, 400, "a used code: {}", again.text);
    assert_eq!(again.header("content-type"), Some("application/problem+json"));
    let carol = s.login("carol@example.test", "carol-password-2");

    // A newer code voids the older one; redeeming ends logins.
    let first = reset_code(&s, &owner, &carol_id);
    let second = reset_code(&s, &owner, &carol_id);
    assert_eq!(redeem(&s, &first, "carol-password-4").status, 400, "an older code is void");
    let carol = {
        let _ = carol;
        s.login("carol@example.test", "carol-password-2")
    };
    assert_eq!(me(&s, &carol), 200, "the failed redemption changed nothing");
    assert_eq!(redeem(&s, &second, "carol-password-4").status, 204);
    assert_eq!(me(&s, &carol), 401, "a redeemed code ends the person's logins");

    // Codes expire after an hour.
    let late = reset_code(&s, &owner, &carol_id);
    s.clock.advance(3601);
    assert_eq!(redeem(&s, &late, "carol-password-5").status, 400, "an expired code");
}

fn app_secret_regeneration_ends_its_tokens(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let rs = introspector(&s, &owner);
    let (app, cid, secret) = s.app(&owner, json!({"name": "robot", "roles": ["org:admin"]}));
    let old_api = s.app_api_token(&cid, &secret);
    let old_resource = {
        let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    };
    assert_eq!(s.get("/api/v1/users", &old_api).status, 200);
    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &owner, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let new_secret = r.body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/users", &old_api).status, 401, "the old secret's token ends at the API");
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &old_resource), json!({"active": false}));
    // Tokens from the new secret work at once, in the same second.
    let new_api = s.app_api_token(&cid, &new_secret);
    assert_eq!(s.get("/api/v1/users", &new_api).status, 200);
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &new_api)["active"], json!(true));
}

fn disable_ends_tokens_for_good(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let rs = introspector(&s, &owner);
    let (dan_id, dan) = s.user(&owner, "dan@example.test", &["org:member"]);
    let (_, pat) = s.pat(&dan, json!({"name": "x", "ttl_days": 3, "roles": ["org:member"]}));
    let derived = s.exchange_api(&pat);
    let (app, cid, secret) = s.app(&owner, json!({"name": "a", "roles": ["org:member"]}));
    let app_token = s.app_api_token(&cid, &secret);
    for (path, body) in [
        (format!("/api/v1/users/{dan_id}"), json!({"disabled": true})),
        (format!("/api/v1/apps/{app}"), json!({"disabled": true})),
    ] {
        assert_eq!(s.patch(&path, &owner, body).status, 200);
    }
    for (path, body) in [
        (format!("/api/v1/users/{dan_id}"), json!({"disabled": false})),
        (format!("/api/v1/apps/{app}"), json!({"disabled": false})),
    ] {
        assert_eq!(s.patch(&path, &owner, body).status, 200);
    }
    for (what, t) in [("login", &dan), ("PAT-derived", &derived), ("app", &app_token)] {
        assert_eq!(me_or_users(&s, t), 401, "{what} token minted before the disable stays dead after re-enable");
        assert_eq!(introspect(&s, (&rs.0, &rs.1), t), json!({"active": false}), "{what}");
    }
    // The credentials themselves work again.
    assert_eq!(me(&s, &s.exchange_api(&pat)), 200);
    assert_eq!(s.get("/api/v1/roles", &s.app_api_token(&cid, &secret)).status, 200);
}

fn me_or_users(s: &Server, t: &str) -> u16 {
    s.get("/api/v1/roles", t).status
}

fn oauth_revoke_access_token_by_jti(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let rs = introspector(&s, &owner);
    let access = s.exchange_api(&s.owner_pat);
    assert_eq!(me(&s, &access), 200);
    let r = s.form("/oauth/revoke", &[("token", &access)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(me(&s, &access), 401, "a revoked access token is refused by the API");
    assert_eq!(introspect(&s, (&rs.0, &rs.1), &access), json!({"active": false}));
    // Again, and garbage: still 200, nothing else changes.
    assert_eq!(s.form("/oauth/revoke", &[("token", &access)], None).status, 200);
    let before = s.data_snapshot();
    assert_eq!(s.form("/oauth/revoke", &[("token", "eyJhbGciOiJub25lIn0.e30.")], None).status, 200);
    assert_eq!(s.data_snapshot(), before);
    // Other tokens of the same PAT are untouched.
    assert_eq!(me(&s, &s.exchange_api(&s.owner_pat)), 200);
    // A client secret is not revoked here.
    let (_, _, secret) = s.app(&owner, json!({"name": "x"}));
    let r = s.form("/oauth/revoke", &[("token", &secret)], None);
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], json!("unsupported_token_type"));
}

fn management_audience_is_never_a_default(b: &Backend) {
    let s = b.start();
    let api = s.api_audience();
    // Login tokens are for the management audience only.
    let login = s.owner_login();
    assert_eq!(s.verify_api(&login)["aud"], json!(api));
    // An exchange names it explicitly to get it; the default is a resource audience.
    let default = s.exchange_ok(&s.owner_pat);
    assert_ne!(s.verify_resource(&default)["aud"], json!(api));
    assert_eq!(me(&s, &default), 401, "a resource token is not a management bearer");
    let r = s.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &s.owner_pat), ("resource", &api)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(me(&s, r.body["access_token"].as_str().unwrap()), 200);
    // The issuer itself is no audience unless configured.
    let other = b.start_with(|c| c.audiences = vec!["https://metrics.example".into()]);
    let r = other.form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &other.owner_pat), ("resource", &other.issuer())],
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], json!("invalid_target"));
}

fn no_audience_configured(b: &Backend) {
    let s = b.start_with(|c| c.audiences = vec![]);
    let r = s.exchange(&s.owner_pat);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_target"));
    assert!(r.body["error_description"].as_str().unwrap().contains("name one"), "{}", r.body);
    // Naming the management audience still works.
    assert_eq!(me(&s, &s.exchange_api(&s.owner_pat)), 200);
}

fn presented_client_credentials_are_checked(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, cid, secret) = s.app(&owner, json!({"name": "c"}));
    let grant = [("grant_type", "refresh_token"), ("refresh_token", s.owner_pat.as_str())];
    let r = s.form("/oauth/token", &grant, Some((&cid, "tkd_cs_wrong")));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_client"));
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"tokend\""));
    let mut post = grant.to_vec();
    post.extend([("client_id", cid.as_str()), ("client_secret", "tkd_cs_wrong")]);
    let r = s.form("/oauth/token", &post, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_client"));
    // Right credentials, or none: the grant proceeds.
    assert_eq!(s.form("/oauth/token", &grant, Some((&cid, &secret))).status, 200);
    assert_eq!(s.form("/oauth/token", &grant, None).status, 200);
    // Token exchange too.
    let te = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", s.owner_pat.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
    ];
    let r = s.form("/oauth/token", &te, Some(("tkd_app_nobody", "tkd_cs_wrong")));
    assert_eq!(r.body["error"], json!("invalid_client"), "{}", r.body);
}

fn unimplemented_grants_are_unsupported(b: &Backend) {
    let s = b.start();
    for grant in ["password", "authorization_code", "implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
        let r =
            s.form("/oauth/token", &[("grant_type", grant), ("username", "a"), ("password", "b"), ("code", "c")], None);
        assert_eq!(r.status, 400, "{grant}: {}", r.body);
        assert_eq!(r.body["error"], json!("unsupported_grant_type"), "{grant}");
    }
}

/// The sign-only benchmark route exists only in a `--features bench` build: a default
/// build answers 404 even with TOKEND_BENCH_SIGN_ROUTE set.
fn bench_route_only_with_the_feature(b: &Backend) {
    let s = b.start_with(|c| c.bench_sign_route = true);
    // The ceiling receives the client_credentials request (it skips only the credential check).
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", "Basic YmVuY2g6eA==")];
    let r = s.raw("POST", "/bench/sign", &form, b"grant_type=client_credentials");
    if cfg!(feature = "bench") {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["access_token"].is_string(), "{}", r.body);
    } else {
        assert!(matches!(r.status, 404 | 405), "a default build serves /bench/sign: {} {}", r.status, r.text);
        assert!(r.body.get("access_token").is_none(), "{}", r.body);
    }
    let off = b.start();
    assert_eq!(off.raw("POST", "/bench/sign", &[], b"").status, 404, "without TOKEND_BENCH_SIGN_ROUTE");
}

fn policy_round_trips(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"idle_ttl_days": 30})).status, 200);
    let got = s.get("/api/v1/policy", &owner);
    assert!(got.body["updated_at"].is_string(), "{}", got.body);
    let put = s.put("/api/v1/policy", &owner, got.body.clone());
    assert_eq!(put.status, 200, "a PUT of exactly what GET returned: {}", put.text);
    assert_eq!(put.body["idle_ttl_days"], json!(30));
    let before = s.data_snapshot();
    let r = s.put("/api/v1/policy", &owner, json!({"updated_at": 5}));
    assert_eq!(r.status, 422, "{}", r.text);
    let r = s.put("/api/v1/policy", &owner, json!({"owner": "me"}));
    assert_eq!(r.status, 422, "unknown fields are still refused: {}", r.text);
    assert_eq!(s.data_snapshot(), before);
}

fn demotion_and_deletion_settle_created_credentials(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (eve_id, eve) = s.user(&owner, "eve@example.test", &["org:admin"]);
    let (app, cid, secret) = s.app(&eve, json!({"name": "eve-bot", "roles": ["org:admin"]}));
    let (low_app, low_cid, low_secret) = s.app(&eve, json!({"name": "eve-low", "roles": ["org:member"]}));
    let bot = s.app_api_token(&cid, &secret);
    assert_eq!(s.post("/api/v1/users", &bot, json!({"email": "made-by-bot@example.test"})).status, 201);

    // Demoting Eve below her app's roles needs a decision; without one nothing changes.
    let before = s.data_snapshot();
    let r = s.patch(&format!("/api/v1/users/{eve_id}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("credentials=disable"), "{}", r.text);
    assert_eq!(s.data_snapshot(), before);
    let r = s.patch(&format!("/api/v1/users/{eve_id}?credentials=bogus"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 422, "{}", r.text);
    let r = s.patch(&format!("/api/v1/users/{eve_id}?credentials=disable"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let a = s.get(&format!("/api/v1/apps/{app}"), &owner);
    assert_eq!(a.body["disabled"], json!(true), "the org:admin app is disabled");
    assert_eq!(s.get(&format!("/api/v1/apps/{low_app}"), &owner).body["disabled"], json!(false), "org:member app kept");
    assert_eq!(s.get("/api/v1/users", &bot).status, 401, "its live token ends");

    // Deleting her: every live credential she created needs a decision; transfer to the owner.
    assert_eq!(s.delete(&format!("/api/v1/users/{eve_id}"), &owner).status, 409);
    let r = s.delete(&format!("/api/v1/users/{eve_id}?credentials=transfer"), &owner);
    assert_eq!(r.status, 204, "{}", r.text);
    let low = s.get(&format!("/api/v1/apps/{low_app}"), &owner);
    assert_eq!(low.body["created_by"], json!(s.owner_id), "{}", low.body);
    assert_eq!(low.body["disabled"], json!(false));
    // A transfer hands over no secret (issue #18): the leaver's stops, the owner regenerates.
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&low_cid, &low_secret)));
    assert_eq!(r.status, 401, "the leaver's secret of a transferred app: {}", r.text);
    let r = s.post(&format!("/api/v1/apps/{low_app}/secret"), &owner, json!({}));
    let t = s.app_api_token(&low_cid, r.body["client_secret"].as_str().unwrap());
    assert_eq!(s.get("/api/v1/roles", &t).status, 200, "a transferred app works with its new secret");
}

/// A leaver's disabled credentials stay dead: their secrets are voided, re-enabling needs an
/// interactive login, and a transfer goes to a person only.
fn settled_credentials_stay_settled(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (bea_id, bea) = s.user(&owner, "bea@example.test", &["org:admin"]);
    let (app, cid, secret) = s.app(&bea, json!({"name": "bea-bot", "roles": ["org:admin"]}));
    let r = s.post("/api/v1/service-accounts", &bea, json!({"name": "bea-sa", "roles": ["org:admin"]}));
    let sa = r.body["id"].as_str().unwrap().to_string();
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &bea, json!({"name": "t", "ttl_days": 5}));
    let sat = r.body["token"].as_str().unwrap().to_string();
    // An app cannot be the receiver of a transfer.
    let app_token = s.app_api_token(&cid, &secret);
    let before = s.data_snapshot();
    let r = s.delete(&format!("/api/v1/users/{bea_id}?credentials=transfer"), &app_token);
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(s.data_snapshot(), before);
    assert_eq!(s.delete(&format!("/api/v1/users/{bea_id}?credentials=disable"), &owner).status, 204);
    // Re-enabling from a non-interactive token is refused; from a login it works, but what the
    // leaver knew stays dead.
    let derived = s.exchange_api(&s.owner_pat);
    for path in [format!("/api/v1/apps/{app}"), format!("/api/v1/service-accounts/{sa}")] {
        let before = s.data_snapshot();
        assert_eq!(s.patch(&path, &derived, json!({"disabled": false})).status, 403, "{path}");
        assert_eq!(s.data_snapshot(), before);
        assert_eq!(s.patch(&path, &owner, json!({"disabled": false})).status, 200, "{path}");
    }
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
    assert_eq!(r.status, 401, "the leaver's app secret is void: {}", r.body);
    assert_eq!(s.exchange(&sat).status, 400, "the leaver's service-account token is revoked");
}

/// The people list shows only those the caller may act on.
fn user_list_hides_stronger_people(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "billing:write");
    let (_, admin) = s.user(&owner, "adm@example.test", &["org:admin"]);
    s.user(&owner, "payer@example.test", &["org:member", "billing:write"]);
    s.user(&owner, "plain@example.test", &["org:member"]);
    let emails = |bearer: &str| -> Vec<String> {
        let r = s.get("/api/v1/users?sort=email", bearer);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total_count"].as_u64().unwrap() as usize, r.body["items"].as_array().unwrap().len());
        r.body["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(emails(&admin), vec!["adm@example.test", "plain@example.test"], "no owner, no billing:write holder");
    assert_eq!(emails(&owner).len(), 4, "the owner sees everyone");
}

fn introspection_needs_the_flag(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, secret) = s.app(&owner, json!({"name": "plain"}));
    let subject = s.owner_login();
    let r = s.form("/oauth/introspect", &[("token", &subject)], Some((&cid, &secret)));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.get("active").is_none(), "a refused caller learns nothing: {}", r.body);
    // A developer may not grant the flag; an owner may.
    let (_, dev) = s.user(&owner, "dev@example.test", &["org:developer"]);
    let before = s.data_snapshot();
    let r = s.patch(&format!("/api/v1/apps/{app}"), &dev, json!({"introspect": true}));
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(s.data_snapshot(), before);
    let r = s.patch(&format!("/api/v1/apps/{app}"), &owner, json!({"introspect": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["introspect"], json!(true));
    let r = s.form("/oauth/introspect", &[("token", &subject)], Some((&cid, &secret)));
    assert_eq!(r.body["active"], json!(true), "{}", r.body);
}

backend_tests!(
    logout_and_sign_out_everywhere,
    own_password_change_ends_other_logins,
    reset_codes_are_one_time,
    app_secret_regeneration_ends_its_tokens,
    disable_ends_tokens_for_good,
    oauth_revoke_access_token_by_jti,
    management_audience_is_never_a_default,
    no_audience_configured,
    presented_client_credentials_are_checked,
    unimplemented_grants_are_unsupported,
    bench_route_only_with_the_feature,
    policy_round_trips,
    demotion_and_deletion_settle_created_credentials,
    introspection_needs_the_flag,
    settled_credentials_stay_settled,
    user_list_hides_stronger_people,
);
