//! The console, second round (issue #20): secrets shown once from a slot (a reload creates
//! nothing), honest status, a message after every action, the sudo window, confirmation
//! dialogs that Enter does not confirm.
use serde_json::json;
use tokend::clock::Clock;

pub(crate) use crate::common::browser::confirm;
use crate::common::browser::{Browser, ConsoleHttp};
use crate::common::Backend;

browser_tests!(
    reload_of_a_secret_page_creates_nothing,
    every_secret_form_redirects_to_a_page_shown_once,
    disabled_owners_tokens_show_their_status,
    every_action_shows_its_message,
    sensitive_action_asks_for_the_password_then_succeeds,
    enter_does_not_confirm_a_destructive_dialog,
    expiry_presets_preview_and_relative_times,
    org_table_fits_the_fold_and_revokes_selected_rows,
    axe_finds_no_violations_on_any_page,
);

pub(crate) fn reload(br: &Browser) {
    br.mark();
    br.script("location.reload()", json!([]));
    br.wait_loaded();
}

/// Create a token in the dialog: the POST answers 303 to a secret page (a GET); reloading
/// it shows "shown once", no secret, and nothing in the database changed.
fn reload_of_a_secret_page_creates_nothing(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.find("#create-open").click();
    br.find("#name").send_keys("jupyter");
    // For the README: the dialog scrolled to where the token works.
    br.script("document.querySelector('#create-dialog fieldset.expiry').scrollIntoView()", json!([]));
    br.screenshot("round2-create-dialog-reach");
    br.click_and_load("#create-submit");
    assert!(br.path().starts_with("/console/secret/"), "a GET page after the POST: {}", br.path());
    assert!(br.find("h1").text().contains("jupyter"));
    let secret = br.find("#secret").text();
    assert!(secret.starts_with("tkd_"), "{secret}");
    let facts = br.find("#secret-facts").text();
    assert!(facts.contains("Expires") && facts.contains("org:member"), "{facts}");
    br.screenshot("round2-secret-page");
    let before = s.snapshot();
    reload(&br);
    assert_eq!(br.find("h1").text(), "This secret was shown once");
    assert!(!br.has("#secret"), "no secret on a reload");
    assert!(!br.source_has(&secret));
    assert_eq!(s.snapshot(), before, "a reload changes nothing");
    // Back to the list: exactly one token named jupyter.
    br.go(&s.url("/console/me/tokens"));
    let n = br.script(
        "return [...document.querySelectorAll('#tokens .token-name')].filter(e => e.textContent === 'jupyter').length",
        json!([]),
    );
    assert_eq!(n, json!(1));
    s.exchange_ok(&secret);
}

/// Every form that makes a secret (my token create/rotate, service-account token
/// create/rotate, app create/regenerate, reset codes) answers 303 to `/console/secret/…`,
/// which shows it once (200, no-store) and then answers 410 without it, changing nothing.
fn every_secret_form_redirects_to_a_page_shown_once(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "ci", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let (sat, _) = s.sa_token(&owner, &sa, json!({"name": "ci-1", "ttl_days": 7, "roles": ["org:member"]}));
    let (pat, _) = s.pat(&owner, json!({"name": "mine", "ttl_days": 7, "roles": ["org:member"]}));
    let (app, _, _) = s.app(&owner, json!({"name": "billing", "roles": ["org:member"]}));
    let (uid, _) = s.user(&owner, "erin@example.com", &["org:member"]);
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/console/me/tokens".into(), vec![("name", "a"), ("roles", "org:member"), ("ttl_days", "3")]),
        (format!("/console/me/tokens/{pat}/rotate"), vec![]),
        (format!("/console/service-accounts/{sa}/tokens"), vec![("name", "b"), ("roles", "org:member")]),
        (format!("/console/service-accounts/{sa}/tokens/{sat}/rotate"), vec![]),
        ("/console/apps".into(), vec![("name", "c"), ("roles", "org:member")]),
        (format!("/console/apps/{app}/secret"), vec![]),
        (format!("/console/people/{uid}/reset"), vec![]),
    ];
    for (path, pairs) in forms {
        let r = c.post(&path, &pairs);
        assert_eq!(r.status, 303, "{path}: {}", r.text);
        let to = r.header("location").unwrap().to_string();
        assert!(to.starts_with("/console/secret/"), "{path} → {to}");
        let shown = c.get(&to);
        assert_eq!(shown.status, 200, "{path}");
        assert_eq!(shown.header("cache-control"), Some("no-store"));
        let secret = shown.text.split("<code id=\"secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
        assert!(!secret.is_empty());
        let before = s.snapshot();
        let again = c.get(&to);
        assert_eq!(again.status, 410, "{path}: shown once");
        assert!(!again.text.contains(&secret) && again.text.contains("shown once"), "{path}");
        assert_eq!(s.snapshot(), before, "{path}: the reload changed nothing");
        // Another session cannot take someone's slot either.
        assert_eq!(ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password).get(&to).status, 410);
    }
}

/// After disabling a service account (confirmed) and a person, their tokens show
/// `owner disabled` in the console and `owner_disabled` in the API, with no Rotate,
/// Revoke or Create offered for the account.
fn disabled_owners_tokens_show_their_status(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "etl", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    let (sat, _) = s.sa_token(&owner, &sa, json!({"name": "etl-1", "ttl_days": 7, "roles": ["org:member"]}));
    let (uid, _) = s.user(&owner, "ada@example.com", &["org:member"]);
    s.set_password(&owner, &uid, "ada-password-123");
    let ada = s.login("ada@example.com", "ada-password-123");
    let (adat, _) = s.pat(&ada, json!({"name": "jupyter", "ttl_days": 7, "roles": ["org:member"]}));

    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url(&format!("/console/service-accounts/{sa}")));
    assert!(br.has(&format!("tr[data-id='{sat}'] button.rotate")));
    br.find("#roles-form input[name=disabled]").click();
    br.find("#roles-save").click();
    confirm(&br, "Disable “etl”");
    assert!(br.find("#flash").text().contains("disabled"), "{}", br.find("#flash").text());
    let row = br.find(&format!("tr[data-id='{sat}']"));
    assert!(row.text().contains("owner disabled"), "{}", row.text());
    assert!(!br.has(&format!("tr[data-id='{sat}'] button.rotate")), "no rotation (it would fail)");
    assert!(br.has(&format!("tr[data-id='{sat}'] button.revoke")), "revoking still works");
    assert!(!br.has("#token-open"), "no Create token for a disabled account");
    assert!(br.find("#limit").text().contains("disabled"));

    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true})).status, 200);
    br.go(&s.url("/console/tokens"));
    let row = br.find(&format!("tr[data-id='{adat}']"));
    assert!(row.text().contains("owner disabled"), "{}", row.text());
    assert!(br.has(&format!("tr[data-id='{adat}'] button.revoke")), "revoking it still works");
    for id in [&sat, &adat] {
        let r = s.get(&format!("/api/v1/tokens/{id}"), &owner);
        assert_eq!(r.body["status"], json!("owner_disabled"), "{}", r.body);
    }
    let r = s.get(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner);
    assert_eq!(r.body["items"][0]["status"], json!("owner_disabled"), "{}", r.body);
    // Enabled again: active again.
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": false})).status, 200);
    assert_eq!(s.get(&format!("/api/v1/tokens/{adat}"), &owner).body["status"], json!("active"));
}

pub(crate) fn flash(br: &Browser) -> String {
    br.find("#flash").text()
}

/// Revoke (my tokens, the org table), save a search, create a role, save the policy: each
/// page after the redirect names what happened, the affected row highlighted; the message
/// is shown once.
fn every_action_shows_its_message(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, _) = s.user(&owner, "ada@example.com", &["org:member"]);
    assert_eq!(s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"name": "Ada"})).status, 200);
    s.set_password(&owner, &uid, "ada-password-123");
    let ada = s.login("ada@example.com", "ada-password-123");
    let (jupyter, _) = s.pat(&ada, json!({"name": "jupyter", "ttl_days": 7, "roles": ["org:member"]}));
    let (mine, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 7, "roles": ["org:member"]}));

    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.find(&format!("tr[data-id='{mine}'] button.revoke")).click();
    confirm(&br, "laptop");
    assert_eq!(flash(&br), "Revoked “laptop”.");
    assert!(br.has(&format!("tr.flash-row[data-id='{mine}']")), "the row is highlighted");
    reload(&br);
    assert!(!br.has("#flash"), "shown once");

    br.go(&s.url("/console/tokens"));
    br.find(&format!("tr[data-id='{jupyter}'] summary")).click();
    br.find(&format!("tr[data-id='{jupyter}'] button.revoke")).click();
    confirm(&br, "jupyter");
    assert_eq!(flash(&br), "Revoked “jupyter” (Ada).");
    assert!(br.has(&format!("tr.flash-row[data-id='{jupyter}']")));
    br.screenshot("round2-flash-org-tokens");

    br.go(&s.url("/console/roles"));
    br.find("#role-name").send_keys("billing:read");
    br.click_and_load("#role-submit");
    assert_eq!(flash(&br), "Created the role billing:read.");

    br.go(&s.url("/console/policy"));
    br.click_and_load("#policy-submit");
    assert_eq!(flash(&br), "The policy is saved.");
}

/// Minutes after signing in, a reset code asks for the password: a wrong one is refused
/// (nothing made), the right one completes the action; then, within the window, creating
/// an org:admin token asks nothing. A token with low roles never asks.
fn sensitive_action_asks_for_the_password_then_succeeds(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, _) = s.user(&owner, "erin@example.com", &["org:member"]);
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    s.clock.advance(10 * 60);

    // Low roles: no prompt.
    br.find("#create-open").click();
    br.find("#name").send_keys("low");
    br.click_and_load("#create-submit");
    assert!(br.path().starts_with("/console/secret/"), "{}", br.find("main").text());

    br.go(&s.url(&format!("/console/people/{uid}")));
    br.find("#reset-password").click();
    let before = s.data_snapshot();
    confirm(&br, "reset link");
    assert_eq!(br.find("h1").text(), "Confirm your password");
    assert!(br.find("#sudo-what").text().contains("reset code"));
    br.find("#sudo_password").send_keys("not-my-password");
    br.click_and_load("#sudo-submit");
    assert_eq!(br.find("#sudo_password-error").text(), "That is not your password.");
    assert_eq!(s.data_snapshot(), before, "no code made without the password");
    br.find("#sudo_password").send_keys(&s.owner_password);
    br.click_and_load("#sudo-submit");
    assert!(br.find("h1").text().contains("reset code for erin@example.com"), "{}", br.find("main").text());
    let code = br.find("#secret").text();
    assert!(!code.is_empty());

    // Within the window: an admin token without a prompt.
    br.go(&s.url("/console/me/tokens"));
    br.find("#create-open").click();
    br.find("#name").send_keys("admin script");
    br.find("#create-dialog input[value='org:admin']").click();
    br.click_and_load("#create-submit");
    assert!(br.path().starts_with("/console/secret/"), "{}", br.find("main").text());

    // After the window: asks again, then creates.
    s.clock.advance(10 * 60);
    br.go(&s.url("/console/me/tokens"));
    br.find("#create-open").click();
    br.find("#name").send_keys("owner script");
    br.find("#create-dialog input[value='org:owner']").click();
    br.click_and_load("#create-submit");
    assert_eq!(br.find("h1").text(), "Confirm your password");
    br.find("#sudo_password").send_keys(&s.owner_password);
    br.click_and_load("#sudo-submit");
    assert!(br.find("h1").text().contains("owner script"), "{}", br.find("main").text());
    let r = s.get("/api/v1/me/tokens", &owner);
    let n = r.body["items"].as_array().unwrap().iter().filter(|t| t["name"] == json!("owner script")).count();
    assert_eq!(n, 1);
}

/// A destructive confirmation opens with Cancel focused: Enter closes it and nothing is
/// revoked.
fn enter_does_not_confirm_a_destructive_dialog(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (tid, _) = s.pat(&owner, json!({"name": "keep me", "ttl_days": 7, "roles": ["org:member"]}));
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.find(&format!("tr[data-id='{tid}'] button.revoke")).click();
    assert!(br.find("#confirm").displayed());
    let focused = br.script("return document.activeElement.textContent", json!([]));
    assert_eq!(focused, json!("Cancel"), "Cancel has the focus");
    let active = br.find("#confirm [data-close]");
    active.send_keys("\u{E007}");
    assert!(!br.find("#confirm").displayed(), "Enter closed it");
    assert_eq!(br.path(), "/console/me/tokens");
    assert_eq!(s.get(&format!("/api/v1/me/tokens/{tid}"), &owner).body["status"], json!("active"));
}

/// The create dialog offers the presets within the policy's maximum (30 days for personal
/// tokens by default), previews "expires on …", takes a date instead; lists show relative
/// times with the absolute one on hover and mark tokens expiring within 7 days.
fn expiry_presets_preview_and_relative_times(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (soon, _) = s.pat(&owner, json!({"name": "soon", "ttl_days": 3, "roles": ["org:member"]}));
    let (later, _) = s.pat(&owner, json!({"name": "later", "ttl_days": 20, "roles": ["org:member"]}));
    let now = s.clock.now();
    let day = |d: i64| tokend::clock::rfc3339(now + d * 86_400)[..10].to_string();
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    let cell = br.find(&format!("tr[data-id='{soon}'] .expires"));
    assert_eq!(cell.text(), "in 3 days");
    assert!(cell.attr("title").unwrap().starts_with(&day(3)), "{:?}", cell.attr("title"));
    assert!(br.has(&format!("tr[data-id='{soon}'] .badge.soon")), "marked: expires within 7 days");
    assert!(!br.has(&format!("tr[data-id='{later}'] .badge.soon")));
    assert_eq!(br.find(&format!("tr[data-id='{later}'] .expires")).text(), "in 20 days");

    br.find("#create-open").click();
    assert!(br.has("#preset-7") && br.has("#preset-30"));
    assert!(!br.has("#preset-60") && !br.has("#preset-90"), "beyond the policy's 30 days");
    assert!(br.find("#ttl-help").text().contains(&day(30)), "the maximum is shown");
    br.find("#preset-7").click();
    assert_eq!(br.script("return document.getElementById('ttl_days').value", json!([])), json!("7"));
    let preview = br.find("#expiry-preview").text();
    assert!(preview.contains(&day(7)) && preview.contains("in 7 days"), "{preview}");
    br.script(
        "var e = document.getElementById('expires_on'); e.value = arguments[0]; \
         e.dispatchEvent(new Event('input', {bubbles: true}))",
        json!([day(10)]),
    );
    let preview = br.find("#expiry-preview").text();
    assert!(preview.contains(&format!("{} 00:00 UTC", day(10))), "{preview}");
    br.find("#name").send_keys("dated");
    br.click_and_load("#create-submit");
    let facts = br.find("#secret-facts").text();
    assert!(facts.contains(&format!("{} 00:00 UTC", day(10))), "{facts}");
    let r = s.get("/api/v1/me/tokens", &owner);
    let t = r.body["items"].as_array().unwrap().iter().find(|t| t["name"] == json!("dated")).unwrap().clone();
    assert_eq!(t["expires_at"], json!(format!("{}T00:00:00Z", day(10))));
}

/// At 1280×800 the org table shows at least 5 rows above the fold (filters collapsed),
/// newest first; the page size is a choice; ticked rows are revoked together after a
/// confirmation that counts them; the current query exports as CSV.
fn org_table_fits_the_fold_and_revokes_selected_rows(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let mut ids = Vec::new();
    for i in 0..8 {
        s.clock.advance(1);
        let (id, _) = s.pat(&owner, json!({"name": format!("tok{i}"), "ttl_days": 7, "roles": ["org:member"]}));
        ids.push(id);
    }
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.set_size(1280, 800);
    br.go(&s.url("/console/tokens"));
    let first = br.find("#org-tokens tbody tr").attr("data-id").unwrap();
    assert_eq!(first, ids[7], "newest first");
    let visible = br.script(
        "return [...document.querySelectorAll('#org-tokens tbody tr')]\
         .filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length",
        json!([]),
    );
    br.screenshot("round2-org-tokens");
    br.set_size(1280, 800);
    let layout = br.script(
        "return [window.innerHeight, document.querySelector('#org-tokens tbody tr').getBoundingClientRect().top, \
         document.querySelector('#org-tokens tbody tr').getBoundingClientRect().height, \
         document.querySelector('header.top').getBoundingClientRect().height]",
        json!([]),
    );
    assert!(
        visible.as_u64().unwrap() >= 5,
        "{visible} rows above the fold (viewport, first row, row, header: {layout})"
    );

    br.click_and_load("#table-tools a.page-size[href*='page_size=20']");
    assert!(br.path().contains("page_size=20"), "{}", br.path());
    assert_eq!(br.find("#table-tools strong[aria-current]").text(), "20");

    for id in &ids[..3] {
        br.find(&format!("tr[data-id='{id}'] input[name=ids]")).click();
    }
    br.find("#revoke-selected").click();
    confirm(&br, "Revoke the 3 selected tokens?");
    assert_eq!(br.find("#flash").text(), "Revoked 3 tokens.");
    assert!(br.path().contains("page_size=20"), "back to the same query: {}", br.path());
    for (i, id) in ids.iter().enumerate() {
        let want = if i < 3 { "revoked" } else { "active" };
        assert_eq!(s.get(&format!("/api/v1/tokens/{id}"), &owner).body["status"], json!(want), "{i}");
    }

    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let href = br.find("#export-csv").attr("href").unwrap();
    assert!(href.starts_with("/console/tokens/export.csv"), "{href}");
    let csv = c.get("/console/tokens/export.csv?status=revoked");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("id,name,owner"), "{}", lines[0]);
    assert_eq!(lines.len(), 4, "a header and the 3 revoked tokens: {}", csv.text);
    assert!(lines[1].starts_with(&ids[2]), "newest first: {}", lines[1]);
}

/// axe-core's `axe.min.js`: `TOKEND_AXE`, or `target/tmp/axe` where `.ci/run` installs it
/// (`npm install axe-core`). None (and the test says so) when missing, except under
/// `CI=true`, where that fails.
pub(crate) fn axe_source() -> Option<String> {
    let path = std::env::var("TOKEND_AXE").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe/node_modules/axe-core/axe.min.js")
    });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => panic!("axe-core missing at {}", path.display()),
        Err(_) => {
            eprintln!("SKIPPED: axe-core not installed at {} (npm install axe-core there)", path.display());
            None
        }
    }
}

/// Runs axe-core in the current page (WCAG 2 A/AA rules and best practices) and answers
/// its violations, one line each.
pub(crate) fn axe(br: &Browser, axe_src: &str) -> Vec<String> {
    br.script(&format!("{axe_src}\n;window.axe = axe; return true"), json!([]));
    let v = br.script_async(
        "var done = arguments[arguments.length - 1]; \
         axe.run(document, {resultTypes: ['violations']}).then(function (r) { \
           done(r.violations.map(function (v) { return v.id + ': ' + v.help + ' @ ' + \
             v.nodes.map(function (n) { return n.target.join(' '); }).join(', '); })); \
         }, function (e) { done(['axe failed: ' + e]); });",
        json!([]),
    );
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap_or("").to_string()).collect()
}

/// Every console page, as the owner (and the signed-out ones), with its dialogs open where
/// it has them: axe-core reports no violation.
fn axe_finds_no_violations_on_any_page(b: &Backend) {
    let Some(src) = axe_source() else { return };
    let s = b.start();
    let owner = s.owner_login();
    let sa = s.post("/api/v1/service-accounts", &owner, json!({"name": "etl", "roles": ["org:member"]}));
    let sa = sa.body["id"].as_str().unwrap().to_string();
    s.sa_token(&owner, &sa, json!({"name": "etl-1", "ttl_days": 3, "roles": ["org:member"]}));
    let (app, _, _) = s.app(&owner, json!({"name": "billing", "roles": ["org:member"]}));
    let (uid, _) = s.user(&owner, "erin@example.com", &["org:member"]);
    let mut failures = Vec::new();
    let br = Browser::start();
    let mut check = |br: &Browser, what: &str| {
        let v = axe(br, &src);
        if !v.is_empty() {
            failures.push(format!("{what} ({}):\n  {}", br.path(), v.join("\n  ")));
        }
    };
    br.go(&s.url("/console/sign-in"));
    check(&br, "sign-in");
    br.go(&s.url("/console/reset"));
    check(&br, "reset");
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    check(&br, "my tokens");
    br.find("#create-open").click();
    check(&br, "my tokens, create dialog");
    br.find("#name").send_keys("axe");
    br.click_and_load("#create-submit");
    check(&br, "secret page");
    reload(&br);
    check(&br, "secret shown once");
    br.go(&s.url("/console/me/tokens"));
    br.find("#tokens button.revoke").click();
    check(&br, "confirmation dialog");
    for (what, path) in [
        ("service accounts", "/console/service-accounts".to_string()),
        ("service account", format!("/console/service-accounts/{sa}")),
        ("apps", "/console/apps".to_string()),
        ("app", format!("/console/apps/{app}")),
        ("org tokens", "/console/tokens".to_string()),
        ("org tokens, filtered", "/console/tokens?status=active&page_size=20".to_string()),
        ("people", "/console/people".to_string()),
        ("person", format!("/console/people/{uid}")),
        ("roles", "/console/roles".to_string()),
        ("policy", "/console/policy".to_string()),
        ("audit log", "/console/audit".to_string()),
        ("password", "/console/me/password".to_string()),
        ("not found", "/console/nothing".to_string()),
    ] {
        br.go(&s.url(&path));
        check(&br, what);
    }
    br.go(&s.url(&format!("/console/service-accounts/{sa}")));
    br.find("#token-open").click();
    check(&br, "service account, token dialog");
    // The sudo prompt.
    s.clock.advance(10 * 60);
    br.go(&s.url(&format!("/console/people/{uid}")));
    br.find("#reset-password").click();
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    assert_eq!(br.find("h1").text(), "Confirm your password");
    check(&br, "sudo prompt");
    assert!(failures.is_empty(), "axe-core violations:\n{}", failures.join("\n"));
    // The check can fail: an image without alternative text is reported.
    br.script("document.querySelector('main').appendChild(document.createElement('img'))", json!([]));
    let v = axe(&br, &src);
    assert!(v.iter().any(|l| l.starts_with("image-alt")), "{v:?}");
}
