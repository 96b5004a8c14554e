//! The web console, driven through a real headless Chromium (`common::browser`), plus
//! plain-HTTP checks of its headers, sessions and CSRF refusals.
use serde_json::json;

use crate::common::browser::confirm;
use crate::common::browser::{csrf_in, no_redirects, Browser, ConsoleHttp};
use crate::common::Backend;

browser_tests!(
    walk_personal_token,
    walk_service_account,
    walk_app,
    walk_password_and_reset,
    member_sees_no_admin_pages,
    cross_site_form_is_refused
);

/// Sign in → create a token in the dialog → copy its secret → exchange it at
/// `/oauth/token` → revoke it in the page (confirmed) → the exchange now fails.
fn walk_personal_token(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);

    // A refused create shows the service's error at its field, the dialog open again.
    br.find("#create-open").click();
    assert!(br.find("#create-dialog").displayed(), "the create dialog opens");
    br.find("#name").send_keys("no roles");
    br.find("#create-dialog input[value='org:member']").click();
    br.click_and_load("#create-submit");
    assert!(br.find("#create-dialog").displayed(), "the dialog is open again");
    assert_eq!(br.find("#roles-error").text(), "Must name at least one role.");
    assert_eq!(br.find("#name").attr("value").as_deref(), Some("no roles"), "the values are kept");
    br.screenshot("create-token-error");
    br.go(&s.url("/console/me/tokens"));

    br.find("#create-open").click();
    let dialog = br.find("#create-dialog");
    assert!(dialog.displayed(), "the create dialog opens");
    br.find("#name").send_keys("ci deploy");
    br.find("#description").send_keys("used by the deploy job");
    let ttl = br.find("#ttl_days");
    ttl.clear();
    ttl.send_keys("7");
    br.screenshot("create-token-dialog");
    br.click_and_load("#create-submit");

    assert!(br.find("h1").text().contains("ci deploy"), "{}", br.find("main").text());
    assert!(br.find(".warning").text().contains("shown only once"));
    let secret = br.find("#secret").text();
    assert!(secret.starts_with("tkd_"), "the secret is on the page: {secret:?}");
    // The copy button answers: copied to the clipboard, or (when the headless browser
    // does not grant it) the secret selected for Ctrl+C.
    br.find("#copy").click();
    let status = br.wait_text("#copy-status");
    if status.starts_with("Copied") {
        assert_eq!(br.find("#copy").text(), "Copied");
    } else {
        assert!(status.contains("selected"), "{status}");
        let selected = br.script("return String(window.getSelection())", json!([]));
        assert_eq!(selected, json!(secret), "the secret is selected");
    }
    br.screenshot("token-secret");

    let access = s.exchange_ok(&secret);
    assert!(!access.is_empty());

    br.click_and_load("#done");
    assert_eq!(br.path(), "/console/me/tokens");
    let row = br.find("#tokens tbody tr");
    assert!(row.text().contains("ci deploy"), "{}", row.text());
    assert!(row.text().contains("active"));
    row.find("button.revoke").click();
    let dialog = br.find("#confirm");
    assert!(dialog.displayed(), "revoking asks first");
    assert!(br.find("#confirm-text").text().contains("ci deploy"));
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    let row = br.find("#tokens tbody tr");
    assert!(row.text().contains("revoked"), "{}", row.text());
    br.screenshot("my-tokens");

    let r = s.exchange(&secret);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_grant"));

    // Rotate the bootstrap token (on the Active tab): a new secret once, the old one dead.
    br.click_and_load("#tab-active");
    let bootstrap = br.find("#tokens tbody tr");
    assert!(bootstrap.text().contains("bootstrap"), "{}", bootstrap.text());
    bootstrap.find("button.rotate").click();
    confirm(&br, "bootstrap");
    assert!(br.find("h1").text().contains("rotated"));
    let rotated = br.find("#secret").text();
    assert_eq!(s.exchange(&s.owner_pat).body["error"], json!("invalid_grant"));
    s.exchange_ok(&rotated);
    // Revoke all: every token of the person ends.
    br.click_and_load("#done");
    br.find("#revoke-all").click();
    confirm(&br, "of your tokens that are not revoked yet");
    assert!(!br.source_has("status-active"), "no active token is left");
    assert_eq!(s.exchange(&rotated).body["error"], json!("invalid_grant"));
}

/// Create a service account, its token (the limit shown), exchange it, rotate it,
/// reach the limit, revoke.
fn walk_service_account(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.click_and_load("nav.main-nav a[href='/console/service-accounts']");
    assert!(br.find(".empty").text().contains("No service accounts yet"));
    br.screenshot("service-accounts-empty");
    br.find("#create-open").click();
    br.find("#name").send_keys("deployer");
    br.find("#description").send_keys("the deploy pipeline");
    br.find("#create-dialog input[value='org:developer']").click();
    br.click_and_load("#create-submit");
    assert_eq!(br.find("h1").text(), "deployer");
    assert!(br.find("#limit").text().starts_with("0 of 20 live tokens"), "{}", br.find("#limit").text());
    assert!(br.find(".empty").text().contains("No tokens yet"));

    br.find("#token-open").click();
    br.find("#token-dialog #name").send_keys("pipeline");
    br.click_and_load("#token-submit");
    let first = br.find("#secret").text();
    assert!(first.starts_with("tkd_"), "{first}");
    let claims = s.verify_resource(&s.exchange_ok(&first));
    assert_eq!(claims["acct"], json!("service_account"));
    br.click_and_load("#done");
    assert!(br.find("#limit").text().starts_with("1 of 20 live tokens"));

    br.find("#tokens button.rotate").click();
    confirm(&br, "pipeline");
    let second = br.find("#secret").text();
    assert_ne!(first, second);
    assert_eq!(s.exchange(&first).body["error"], json!("invalid_grant"), "the rotated secret is dead");
    s.exchange_ok(&second);
    br.click_and_load("#done");

    // The limit: at 1, the page says so and the create button is disabled.
    let owner = s.owner_login();
    assert_eq!(s.put("/api/v1/policy", &owner, json!({"max_tokens_per_service_account": 1})).status, 200);
    br.go(&br.url());
    let limit = br.find("#limit").text();
    assert!(limit.starts_with("1 of 1 live tokens: the limit is reached"), "{limit}");
    assert!(br.find("#token-open").attr("disabled").is_some());
    br.screenshot("service-account");

    br.find("#tokens button.revoke").click();
    confirm(&br, "pipeline");
    assert!(br.find("#limit").text().starts_with("0 of 1 live tokens"));
    assert_eq!(s.exchange(&second).body["error"], json!("invalid_grant"));
    br.click_and_load("a[href='/console/service-accounts']");
    assert!(br.find("#accounts").text().contains("deployer"));
    br.screenshot("service-accounts");
}

/// Create an app (client id and secret shown once), use it, regenerate the secret, edit,
/// delete.
fn walk_app(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.click_and_load("nav.main-nav a[href='/console/apps']");
    assert!(br.find(".empty").text().contains("No apps yet"));
    br.find("#create-open").click();
    br.find("#name").send_keys("billing");
    br.find("#create-dialog input[value='org:member']").click();
    br.click_and_load("#create-submit");
    assert!(br.find(".warning").text().contains("shown only once"));
    let client_id = br.find("#extra").text();
    let secret = br.find("#secret").text();
    br.screenshot("app-secret");
    let cc = |secret: &str| {
        s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((client_id.as_str(), secret)))
    };
    assert_eq!(cc(&secret).status, 200);
    br.click_and_load("#done");
    assert_eq!(br.find("#client-id").text(), client_id);

    // "It leaked": the old secret stops now (the default keeps it for an hour).
    br.find("#grace option[value='0']").click();
    br.find("#regenerate").click();
    confirm(&br, "billing");
    let new_secret = br.find("#secret").text();
    assert_ne!(new_secret, secret);
    assert_eq!(cc(&secret).status, 401, "the old secret is dead");
    assert_eq!(cc(&new_secret).status, 200);
    br.click_and_load("#done");

    let name = br.find("#edit-form #name");
    name.clear();
    name.send_keys("billing v2");
    br.click_and_load("#edit-save");
    assert_eq!(br.find("h1").text(), "billing v2");
    br.screenshot("app");
    br.click_and_load("a[href='/console/apps']");
    assert!(br.find("#apps").text().contains("billing v2"));
    br.screenshot("apps");
    br.go(&s.url(&format!("/console/apps/{}", br.find("#apps a").attr("href").unwrap().rsplit('/').next().unwrap())));
    br.find("#delete").click();
    confirm(&br, "billing v2");
    assert_eq!(br.path(), "/console/apps");
    assert!(br.find(".empty").text().contains("No apps yet"));
    assert_eq!(cc(&new_secret).status, 401, "a deleted app gets no tokens");
}

/// Own password change (errors at their fields), then a reset code redeemed signed out.
fn walk_password_and_reset(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, _) = s.user(&owner, "pat@example.com", &["org:member"]);
    let mut br = Browser::start();
    br.sign_in(&s, "pat@example.com", "user-password-123");
    br.click_and_load("nav.main-nav a[href='/console/me/password']");
    br.find("#current_password").send_keys("wrong-password");
    br.find("#new_password").send_keys("new-password-456");
    br.find("#confirm_password").send_keys("new-password-456");
    br.click_and_load("#password-submit");
    assert_eq!(br.find("#current_password-error").text(), "That is not your current password.");
    br.find("#current_password").send_keys("user-password-123");
    br.find("#new_password").send_keys("new-password-456");
    br.find("#confirm_password").send_keys("new-password-789");
    br.click_and_load("#password-submit");
    assert_eq!(br.find("#confirm_password-error").text(), "Does not match the new password.");
    br.screenshot("password-error");
    br.find("#current_password").send_keys("user-password-123");
    br.find("#new_password").send_keys("new-password-456");
    br.find("#confirm_password").send_keys("new-password-456");
    br.click_and_load("#password-submit");
    assert!(br.find(".notice").text().contains("Your password is changed"));
    // This session goes on; the new password is the one that works.
    br.click_and_load("nav.main-nav a[href='/console/me/tokens']");
    s.login("pat@example.com", "new-password-456");

    br.click_and_load("#sign-out");
    assert!(br.find(".notice").text().contains("You are signed out"));
    let r = s.post(&format!("/api/v1/users/{uid}/password-reset"), &owner, json!({}));
    let code = r.body["code"].as_str().unwrap().to_string();
    br.go(&s.url("/console/reset"));
    br.find("#code").send_keys("not-a-code");
    br.find("#new_password").send_keys("reset-password-789");
    br.find("#confirm_password").send_keys("reset-password-789");
    br.click_and_load("#reset-submit");
    assert!(br.find("#code-error").text().contains("unknown, expired or already used"));
    br.screenshot("reset");
    assert_eq!(br.find("#code").attr("value").as_deref(), Some("not-a-code"), "the code typed is kept");
    br.find("#code").clear();
    br.find("#code").send_keys(&code);
    br.find("#new_password").send_keys("reset-password-789");
    br.find("#confirm_password").send_keys("reset-password-789");
    br.click_and_load("#reset-submit");
    assert!(br.find(".notice").text().contains("Your new password is set"));
    br.screenshot("sign-in");
    br.sign_in(&s, "pat@example.com", "reset-password-789");
}

/// A member signs in: no admin links, and the admin page answers its 403 page.
fn member_sees_no_admin_pages(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.user(&owner, "member@example.com", &["org:member"]);
    let mut br = Browser::start();
    br.sign_in(&s, "member@example.com", "user-password-123");
    let empty = br.find(".empty").text();
    assert!(empty.contains("No tokens yet") && empty.contains("Create"), "an empty state says what to do: {empty}");
    let nav = br.find("nav.main-nav").text();
    assert_eq!(br.find("nav.main-nav a[href='/console/me/tokens']").attr("aria-current").as_deref(), Some("page"));
    assert!(nav.contains("My tokens"), "{nav}");
    for absent in ["Org tokens", "Service accounts", "Apps"] {
        assert!(!nav.contains(absent), "a member sees no {absent} link: {nav}");
    }
    assert!(!br.has(".admin-link"));
    br.go(&s.url("/console/tokens"));
    assert_eq!(br.find("h1").text(), "You need another role");
    br.screenshot("forbidden");
    assert!(br.find("main").text().contains("org:admin"), "{}", br.find("main").text());
    let http = ConsoleHttp::sign_in(&s, "member@example.com", "user-password-123");
    for path in ["/console/tokens", "/console/service-accounts", "/console/apps"] {
        assert_eq!(http.get(path).status, 403, "{path}");
    }
    // A refused form is audited like a refused API call.
    let audited = s.count("audit_events");
    let r = http.post("/console/service-accounts", &[("name", "sneaky"), ("roles", "org:member")]);
    assert_eq!(r.status, 403);
    assert_eq!(s.count("audit_events"), audited + 1, "the refusal is in the audit log");
}

/// Serves `html` to every request on a free port of 127.0.0.1 (another origin than the
/// server's: same host, other port). Answers its base URL.
fn foreign_site(html: String) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let mut buf = [0u8; 8192];
            let _ = c.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = c.write_all(resp.as_bytes());
        }
    });
    base
}

/// A page on another origin posts a form to a console action without the CSRF token:
/// refused (403), and nothing changed. Also from a `data:` page (Origin: null).
fn cross_site_form_is_refused(b: &Backend) {
    let s = b.start();
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    let before = s.data_snapshot();
    let html = format!(
        "<!doctype html><title>evil</title><form method=post action=\"{}\">\
         <input name=name value=x><button id=go>win a prize</button></form>",
        s.url("/console/me/tokens/revoke-all")
    );
    let evil = foreign_site(html.clone());
    br.go(&evil);
    br.click_and_load("#go");
    assert_eq!(br.path(), "/console/me/tokens/revoke-all");
    assert_eq!(br.find("h1").text(), "Form refused");
    assert_eq!(s.data_snapshot(), before, "a cross-site form changes nothing");

    use base64::Engine;
    let data = format!("data:text/html;base64,{}", base64::engine::general_purpose::STANDARD.encode(&html));
    br.go(&data);
    br.click_and_load("#go");
    assert_eq!(br.find("h1").text(), "Form refused");
    assert_eq!(s.data_snapshot(), before);
    // The session itself still works: the page was refused, not the person.
    br.go(&s.url("/console/me/tokens"));
    assert!(br.find("#tokens").text().contains("active"));
}

/// Plain HTTP (no browser): redirects, headers, cookies, CSRF, how sessions end.
mod http {
    use super::*;

    backend_tests!(headers_and_redirects, csrf_token_is_required, console_sessions_end_with_logins, lists_paginate);

    /// `/` → `/console` → sign-in; security headers on every console answer; hashed assets
    /// cached for a year; the session cookie's attributes.
    fn headers_and_redirects(b: &Backend) {
        let s = b.start();
        let agent = no_redirects();
        let get = |p: &str| crate::common::Resp::from(agent.get(&s.url(p)).call());
        let r = get("/");
        assert_eq!((r.status, r.header("location")), (303, Some("/console")));
        let r = get("/console");
        assert_eq!((r.status, r.header("location")), (303, Some("/console/sign-in")));
        let r = get("/console/me/tokens");
        assert_eq!((r.status, r.header("location")), (303, Some("/console/sign-in")), "no session → sign in");
        let page = get("/console/sign-in");
        assert_eq!(page.status, 200);
        let csp = page.header("content-security-policy").expect("a CSP");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{part} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("same-origin"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(!page.text.contains("<script>") && !page.text.contains("style="), "no inline script or style");
        // Assets: hashed names, long caching; any other name is 404.
        let css = page.text.split("href=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        assert!(css.starts_with("/console/static/console.") && css.ends_with(".css"), "{css}");
        let r = get(&css);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert!(r.header("content-type").unwrap().starts_with("text/css"));
        assert_eq!(get("/console/static/console.css").status, 404);
        assert_eq!(get("/console/no-such-page").status, 404);
        // The session cookie: HttpOnly, SameSite=Strict, not Secure on an http issuer.
        let form = get("/console/sign-in");
        let pre = form.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
        let r = crate::common::Resp::from(
            agent.post(&s.url("/console/sign-in")).set("Cookie", &pre).set("Origin", &s.base).send_form(&[
                ("csrf", &csrf_in(&form.text)),
                ("email", &s.owner_email),
                ("password", &s.owner_password),
            ]),
        );
        assert_eq!(r.status, 303);
        let cookies: Vec<&str> =
            r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect();
        let session = cookies.iter().find(|c| c.starts_with("tokend_console=")).expect("the session cookie");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(session.contains(attr), "{attr} in {session}");
        }
        assert!(!session.contains("Secure"), "not Secure on http: {session}");
        // Only the hash is stored: the cookie's secret is in no column of sessions.
        let secret = session.split(';').next().unwrap().trim_start_matches("tokend_console=");
        assert!(s.rows("sessions").iter().all(|r| !r.contains(secret)));
        assert!(s.rows("sessions").iter().any(|r| r.contains(&tokend::secrets::hash(secret))));
        // A wrong password: the same answer for an unknown email.
        let wrong = |email: &str| {
            let form = get("/console/sign-in");
            let pre = form.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
            crate::common::Resp::from(agent.post(&s.url("/console/sign-in")).set("Cookie", &pre).send_form(&[
                ("csrf", &csrf_in(&form.text)),
                ("email", email),
                ("password", "not-the-password"),
            ]))
        };
        let (a, b2) = (wrong(&s.owner_email), wrong("nobody@example.com"));
        assert_eq!((a.status, b2.status), (401, 401));
        assert!(a.text.contains("The email or password is not correct."));
        assert!(b2.text.contains("The email or password is not correct."));
    }

    /// State-changing console requests need the session's CSRF token and a same-origin
    /// request; refused ones change nothing.
    fn csrf_token_is_required(b: &Backend) {
        let s = b.start();
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let other = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        assert_ne!(c.csrf, other.csrf, "a token per session");
        let before = s.data_snapshot();
        let path = "/console/me/tokens/revoke-all";
        let refused = [
            c.post_raw(path, &[], &[]),
            c.post_raw(path, &[("csrf", "")], &[]),
            c.post_raw(path, &[("csrf", &other.csrf)], &[]),
            c.post_raw(path, &[("csrf", &c.csrf)], &[("Origin", "http://evil.example")]),
            c.post_raw(path, &[("csrf", &c.csrf)], &[("Origin", "null")]),
            c.post_raw(path, &[("csrf", &c.csrf)], &[("Sec-Fetch-Site", "cross-site")]),
            c.post_raw(path, &[("csrf", &c.csrf)], &[("Sec-Fetch-Site", "same-site")]),
        ];
        for (i, r) in refused.iter().enumerate() {
            assert_eq!(r.status, 403, "case {i}: {}", r.text);
            assert!(r.text.contains("Form refused"), "case {i}");
        }
        assert_eq!(s.data_snapshot(), before, "refused forms change nothing");
        // The sign-in form needs its pre-session token too.
        let r = crate::common::Resp::from(
            no_redirects()
                .post(&s.url("/console/sign-in"))
                .send_form(&[("email", &s.owner_email), ("password", &s.owner_password)]),
        );
        assert_eq!(r.status, 403);
        assert!(r.header("set-cookie").is_none_or(|c| !c.starts_with("tokend_console=")));
        // With the token and same origin it works.
        let r = c.post(path, &[]);
        assert_eq!((r.status, r.header("location")), (303, Some("/console/me/tokens")));
        assert_ne!(s.data_snapshot(), before);
    }

    /// A console session is a login: sign-out ends it (its row revoked), and so do
    /// sign-out-everywhere, a password change elsewhere and disabling the person.
    fn console_sessions_end_with_logins(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        let (uid, _) = s.user(&owner, "dev@example.com", &["org:developer"]);
        let signed_out = |c: &ConsoleHttp| {
            let r = c.get("/console/me/tokens");
            r.status == 303 && r.header("location") == Some("/console/sign-in")
        };
        // Sign-out.
        let c = ConsoleHttp::sign_in(&s, "dev@example.com", "user-password-123");
        let r = c.post("/console/sign-out", &[]);
        assert_eq!(r.status, 303);
        assert!(signed_out(&c));
        // Sign-out-everywhere from the API.
        let c = ConsoleHttp::sign_in(&s, "dev@example.com", "user-password-123");
        let api = s.login("dev@example.com", "user-password-123");
        assert_eq!(s.post("/api/v1/me/sessions/revoke", &api, json!({})).status, 204);
        assert!(signed_out(&c), "sign-out-everywhere ends console sessions");
        // A password reset by an admin.
        let c = ConsoleHttp::sign_in(&s, "dev@example.com", "user-password-123");
        s.set_password(&owner, &uid, "another-password-456");
        assert!(signed_out(&c), "a password reset ends console sessions");
        // Disabling the person.
        let c = ConsoleHttp::sign_in(&s, "dev@example.com", "another-password-456");
        assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true})).status, 200);
        assert!(signed_out(&c), "disabling ends console sessions");
        // The console acts with the person's roles as an interactive login: it may mint.
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let r =
            c.post("/console/me/tokens", &[("name", "from the console"), ("roles", "org:member"), ("ttl_days", "5")]);
        assert_eq!(r.status, 303, "{}", r.text);
        let r = c.get(r.header("location").unwrap());
        assert!(r.text.contains("shown only once"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let secret = r.text.split("id=\"secret\">").nth(1).unwrap().split('<').next().unwrap();
        s.exchange_ok(secret);
        // "Sign out everywhere" from the console ends the API logins and the console
        // sessions of the person, its own included.
        let api = s.owner_login();
        let other = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let own = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let r = own.post("/console/me/sessions/revoke", &[]);
        assert_eq!((r.status, r.header("location")), (303, Some("/console/sign-in?done=signed-out")));
        assert!(signed_out(&own) && signed_out(&other));
        assert_eq!(s.get("/api/v1/me", &api).status, 401, "the API login ended too");
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        // Signing in again in the same browser replaces its session.
        let before = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let agent = no_redirects();
        let form = crate::common::Resp::from(agent.get(&s.url("/console/sign-in")).call());
        let pre = form.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
        let r =
            crate::common::Resp::from(
                agent.post(&s.url("/console/sign-in")).set("Cookie", &format!("{pre}; {}", before.cookie)).send_form(
                    &[("csrf", &csrf_in(&form.text)), ("email", &s.owner_email), ("password", &s.owner_password)],
                ),
            );
        assert_eq!(r.status, 303);
        assert!(signed_out(&before), "the browser's previous session ended");
        // Signing out ends only that session; another one of the same person goes on.
        let other = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        assert_eq!(c.post("/console/sign-out", &[]).status, 303);
        assert!(signed_out(&c));
        assert!(!signed_out(&other));
        // A console session lasts 12 hours (the fixed clock moves past it).
        s.clock.advance(tokend::console::session::TTL - 1);
        assert!(!signed_out(&other));
        s.clock.advance(2);
        assert!(signed_out(&other), "an expired session signs out");
    }

    /// Long lists paginate (20 a page), newest first; a bad page number is refused in words.
    fn lists_paginate(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        for i in 0..24 {
            s.pat(&owner, json!({"name": format!("token {i:02}"), "roles": ["org:member"]}));
        }
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let first = c.get("/console/me/tokens");
        assert_eq!(first.text.matches("<tr data-id=").count(), 20);
        assert!(first.text.contains("Page 1 of 2 (25 in all)"), "{}", first.text);
        assert!(first.text.contains("href=\"/console/me/tokens?page=2\""));
        assert!(first.text.contains("token 23"), "newest first");
        let second = c.get("/console/me/tokens?page=2");
        assert_eq!(second.text.matches("<tr data-id=").count(), 5);
        assert!(second.text.contains("bootstrap") && second.text.contains("href=\"/console/me/tokens?page=1\""));
        let bad = c.get("/console/me/tokens?page=0");
        assert_eq!(bad.status, 422);
        assert!(bad.text.contains("page: Must be an integer from 1 to"), "{}", bad.text);
    }
}
