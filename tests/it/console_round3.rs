//! The console, third round (issue #20, items 7, 9, 13 and the status filters): service
//! accounts and tokens can be corrected (renamed, deleted, a role required, a personal token
//! regenerated with a new expiry), every error of a form at once, My tokens in active and
//! inactive tabs with rotated tokens linked to their successors, and status filters that
//! agree with the status shown.
use serde_json::{json, Value};
use tokend::clock::Clock;

use crate::common::browser::{Browser, ConsoleHttp};
use crate::common::{Backend, Server};
use crate::console_round2::{axe, axe_source, confirm, flash, reload};

browser_tests!(
    service_accounts_and_their_tokens_can_be_corrected,
    my_tokens_tabs_successors_and_regenerate,
    audit_log_reads_in_words,
    invitation_link_keeps_its_code,
    header_menu_403_policy_and_roles,
    webhooks_pages,
    axe_finds_no_violations_on_the_new_pages,
);

/// The data, without the audit log (refused forms are audited).
fn data(s: &Server) -> crate::common::Snapshot {
    s.snapshot().into_iter().filter(|(k, _)| k != crate::common::AUDIT_COUNT).collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

/// The status of token `id` in the org table (API).
fn status(s: &Server, admin: &str, id: &str) -> String {
    let r = s.get(&format!("/api/v1/tokens/{id}"), admin);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["status"].as_str().unwrap().to_string()
}

/// Creating a service account with no name and no role shows both errors at once (and
/// creates nothing); with a role it is made. Its name and description are changed on its
/// page, its token renamed on the token's page, and deleting it (confirmed) revokes its
/// tokens and says how many.
fn service_accounts_and_their_tokens_can_be_corrected(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url("/console/service-accounts"));
    br.find("#create-open").click();
    let before = data(&s);
    br.click_and_load("#create-submit");
    assert!(br.find("#create-dialog").displayed(), "the dialog is shown again");
    let name_error = br.find("#name-error").text();
    let roles_error = br.find("#roles-error").text();
    assert!(name_error.contains("1 to 100 characters"), "{name_error}");
    assert!(roles_error.contains("Choose at least one role"), "{roles_error}");
    assert_eq!(data(&s), before, "a refused form creates nothing");
    br.find("#name").send_keys("etl");
    br.find("#create-dialog input[name=roles][value='org:member']").click();
    br.click_and_load("#create-submit");
    assert_eq!(flash(&br), "Created the service account “etl”.");
    let sa = br.path().rsplit('/').next().unwrap().to_string();
    let (tid, _) = s.sa_token(&owner, &sa, json!({"name": "etl-1", "ttl_days": 7, "roles": ["org:member"]}));
    s.sa_token(&owner, &sa, json!({"name": "etl-2", "ttl_days": 7, "roles": ["org:member"]}));

    // Rename the account.
    br.go(&s.url(&format!("/console/service-accounts/{sa}")));
    br.find("#account-name").clear();
    br.find("#account-name").send_keys("etl-nightly");
    br.find("#account-description").send_keys("Loads the warehouse at 02:00.");
    br.click_and_load("#details-save");
    assert_eq!(flash(&br), "Saved “etl-nightly”.");
    assert_eq!(br.find("h1").text(), "etl-nightly");
    let a = s.get(&format!("/api/v1/service-accounts/{sa}"), &owner).body;
    assert_eq!(
        (a["name"].as_str(), a["description"].as_str()),
        (Some("etl-nightly"), Some("Loads the warehouse at 02:00."))
    );

    // Rename one of its tokens on the token's page.
    br.click_and_load(&format!("tr[data-id='{tid}'] td[data-label=Name] a"));
    assert_eq!(br.path(), format!("/console/service-accounts/{sa}/tokens/{tid}"));
    br.find("#name").clear();
    br.find("#name").send_keys("etl-prod");
    br.click_and_load("#edit-save");
    assert_eq!(flash(&br), "Saved “etl-prod”.");
    assert_eq!(s.get(&format!("/api/v1/tokens/{tid}"), &owner).body["name"], json!("etl-prod"));

    // Every error of the form at once, the values kept.
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let long = "x".repeat(1001);
    let before = data(&s);
    let r =
        c.post(&format!("/console/service-accounts/{sa}/tokens/{tid}/edit"), &[("name", ""), ("description", &long)]);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("id=\"name-error\"") && r.text.contains("id=\"description-error\""), "both errors");
    assert!(r.text.contains(&long), "the description typed is kept");
    let r = c.post(&format!("/console/service-accounts/{sa}/details"), &[("name", ""), ("description", &long)]);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("id=\"name-error\"") && r.text.contains("id=\"description-error\""), "both errors");
    assert_eq!(data(&s), before, "refused forms change nothing");

    // Delete it, confirmed: both tokens revoked, and the message says so.
    br.go(&s.url(&format!("/console/service-accounts/{sa}")));
    br.find("#account-delete").click();
    confirm(&br, "Delete “etl-nightly”? Its 2 live tokens are revoked");
    assert_eq!(br.path(), "/console/service-accounts");
    assert_eq!(flash(&br), "Deleted the service account “etl-nightly”: its 2 live tokens were revoked.");
    assert_eq!(status(&s, &owner, &tid), "revoked");
    assert_eq!(s.get(&format!("/api/v1/service-accounts/{sa}"), &owner).status, 404);
}

/// My tokens: active and inactive tokens in two tabs (counted); a rotated token, under
/// Inactive, links to its successor; "Revoke all" says how many; a token's page renames it
/// and regenerates it with a new expiry (the old one revoked, the new secret shown once).
fn my_tokens_tabs_successors_and_regenerate(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (laptop, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 30, "roles": ["org:member"],
        "description": "Jupyter on my laptop: notebooks that read the metrics API every morning and write the report."}));
    let (ci, _) = s.pat(&owner, json!({"name": "ci", "ttl_days": 20, "roles": ["org:member"]}));
    let (old, _) = s.pat(&owner, json!({"name": "old-script", "ttl_days": 5, "roles": ["org:member"]}));
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{old}"), &owner).status, 204);
    let count = |q: &str| s.get(&format!("/api/v1/me/tokens?{q}"), &owner).body["total_count"].as_i64().unwrap();

    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    let active = count("status=active");
    assert_eq!(br.find("#tab-active").text(), format!("Active ({active})"));
    assert_eq!(br.find("#tab-active").attr("aria-current").as_deref(), Some("page"));
    assert!(!br.has(&format!("tr[data-id='{old}']")), "a revoked token is not among the active ones");
    let all = s.get("/api/v1/me/tokens?page_size=100", &owner).body;
    let unrevoked = all["items"].as_array().unwrap().iter().filter(|t| t["revoked_at"].is_null()).count();
    assert_eq!(br.find("#revoke-all").text(), format!("Revoke all my tokens ({unrevoked})"));

    // Rotate ci: under Inactive, it links to its successor.
    br.find(&format!("tr[data-id='{ci}'] button.rotate")).click();
    confirm(&br, "Rotate “ci”");
    assert!(br.path().starts_with("/console/secret/"));
    br.click_and_load("#done");
    br.screenshot("round3-my-tokens");
    br.click_and_load("#tab-inactive");
    assert_eq!(br.find("#tab-inactive").attr("aria-current").as_deref(), Some("page"));
    assert!(br.has(&format!("tr[data-id='{old}']")), "the revoked token is under Inactive");
    let link = br.find(&format!("tr[data-id='{ci}'] .successor a"));
    let href = link.attr("href").unwrap();
    assert!(link.text().starts_with("ci (tkd_pat_"), "{}", link.text());
    br.screenshot("round3-my-tokens-inactive");
    br.click_and_load(&format!("tr[data-id='{ci}'] .successor a"));
    assert_eq!(br.path(), href);
    assert_eq!(br.find("#token-title").text(), "ci");
    assert_eq!(br.find("#token-status").text(), "active");
    let new_ci = href.rsplit('/').next().unwrap().to_string();
    br.go(&s.url(&format!("/console/me/tokens/{ci}")));
    assert!(br.find("#successor").text().contains("replaced by"), "the old token's page names its successor");
    assert_eq!(
        br.find(&format!("#successor a[href='/console/me/tokens/{new_ci}']")).text().split(' ').next(),
        Some("“ci”")
    );

    // Regenerate laptop for 7 days.
    br.go(&s.url(&format!("/console/me/tokens/{laptop}")));
    br.find("#preset-7").click();
    br.find("#regen-submit").click();
    confirm(&br, "Regenerate “laptop”");
    assert!(br.path().starts_with("/console/secret/"), "{}", br.path());
    assert_eq!(br.find("h1").text(), "Token “laptop” regenerated");
    let secret = br.find("#secret").text();
    assert!(br.has("#snippet-exchange") && br.has("#snippet-prometheus"), "the usage snippets");
    br.screenshot("round3-secret-page");
    s.exchange_ok(&secret);
    assert_eq!(status(&s, &owner, &laptop), "revoked");
    let mine = s.get("/api/v1/me/tokens?status=active&page_size=100", &owner).body;
    let new = mine["items"].as_array().unwrap().iter().find(|t| t["name"] == json!("laptop")).unwrap().clone();
    let exp = tokend::clock::parse_rfc3339(new["expires_at"].as_str().unwrap()).unwrap();
    assert!((exp - (s.clock.now() + 7 * 86_400)).abs() < 120, "expires in 7 days: {}", new["expires_at"]);
    reload(&br);
    assert!(!br.source_has(&secret), "shown once");

    // Rename on the token's page; Revoke all counts.
    br.go(&s.url(&format!("/console/me/tokens/{}", id_of(&new))));
    br.find("#name").clear();
    br.find("#name").send_keys("laptop-2");
    br.click_and_load("#edit-save");
    assert_eq!(flash(&br), "Saved “laptop-2”.");
    br.go(&s.url("/console/me/tokens"));
    let all = s.get("/api/v1/me/tokens?page_size=100", &owner).body;
    let unrevoked = all["items"].as_array().unwrap().iter().filter(|t| t["revoked_at"].is_null()).count();
    br.find("#revoke-all").click();
    confirm(&br, &format!("Revoke all {unrevoked} of your tokens"));
    assert_eq!(flash(&br), format!("Revoked all your tokens: {unrevoked} tokens."));
    assert_eq!(count("status=active"), 0);
    assert!(br.find("#tab-active").text() == "Active (0)" && !br.has("#revoke-all"));
}

/// The audit log in words: emails and names instead of ids (ids on hover), one line per
/// event at 1280 px, the action filter a select of known actions, an actor picked by email,
/// and a refused call as "Refused: delete role — not allowed: …".
fn audit_log_reads_in_words(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (ada, _) = s.user(&owner, "ada@example.com", &["org:admin"]);
    s.set_password(&owner, &ada, "ada-password-123");
    let ada_at = s.login("ada@example.com", "ada-password-123");
    let sa = id_of(&s.post("/api/v1/service-accounts", &ada_at, json!({"name": "etl", "roles": ["org:member"]})).body);
    s.sa_token(&ada_at, &sa, json!({"name": "etl-1", "ttl_days": 3, "roles": ["org:member"],
        "description": "A long description of what this token is for, which goes on and on to see that the row stays one line."}));
    let (_, member) = s.user(&owner, "member@example.com", &["org:member"]);
    assert_eq!(s.delete("/api/v1/roles/org:developer", &member).status, 403);

    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url("/console/audit"));
    let rows = br.find("#audit tbody").text();
    assert!(rows.contains("created the service account") && rows.contains("etl"), "{rows}");
    assert!(rows.contains("ada@example.com"), "the actor by email: {rows}");
    assert!(rows.contains("Refused: delete role — not allowed: a role or a fresh sign-in was missing"), "{rows}");
    assert!(rows.contains("member@example.com"), "{rows}");
    let objects = br.script(
        "return [...document.querySelectorAll('#audit tbody td[data-label=Object], #audit tbody td[data-label=Who]')].map(e => e.textContent).join('|')",
        json!([]),
    );
    assert!(!objects.as_str().unwrap().contains(&sa[sa.len() - 12..]), "no id fragments: {objects}");
    let link = br.find(&format!("#audit a.id[href='/console/audit?object={sa}']"));
    assert_eq!(link.attr("title").as_deref(), Some(format!("service_account {sa}").as_str()), "the id on hover");
    let tall = br.script(
        "var h = [...document.querySelectorAll('#audit tbody tr')].map(r => r.getBoundingClientRect().height); \
         return Math.max(...h) / Math.min(...h)",
        json!([]),
    );
    assert!(tall.as_f64().unwrap() < 1.2, "one line per event at 1280 px: {tall}");
    br.screenshot("round3-audit");

    // The action filter is a select of known actions.
    br.script("document.querySelector('#a-action').value = 'service_account.create'", json!([]));
    br.click_and_load("#audit-apply");
    let rows = br.find("#audit tbody").text();
    assert!(rows.contains("created the service account") && !rows.contains("signed in"), "{rows}");
    // The actor picked by email: the filter uses the id, the field keeps the email.
    br.go(&s.url("/console/audit"));
    br.find("#a-actor").send_keys("ada@example.com");
    br.click_and_load("#audit-apply");
    assert_eq!(br.find("#a-actor").attr("value").as_deref(), Some("ada@example.com"));
    let who: Vec<Value> = br
        .script(
            "return [...document.querySelectorAll('#audit tbody td[data-label=Who]')].map(e => e.textContent)",
            json!([]),
        )
        .as_array()
        .unwrap()
        .clone();
    assert!(!who.is_empty() && who.iter().all(|w| w == "ada@example.com"), "{who:?}");
    assert!(br.has("datalist#directory option[value='etl']"), "the picker offers names");
}

/// Inviting someone new offers a one-time link carrying the code, valid 24 hours (a reset
/// of an existing password stays an hour); the reset page opened by the link has the code
/// filled in, shows every error of the form at once and keeps the code after a mismatch.
fn invitation_link_keeps_its_code(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    // Invited: no password yet.
    let r = s.post("/api/v1/users", &owner, json!({"email": "erin@example.com", "roles": ["org:member"]}));
    let uid = id_of(&r.body);
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url(&format!("/console/people/{uid}")));
    assert_eq!(br.find("#reset-password").text(), "Create an invitation link");
    br.find("#reset-password").click();
    confirm(&br, "Create an invitation link for erin@example.com? An earlier one stops working.");
    assert_eq!(br.find("h1").text(), "Invitation for erin@example.com");
    let code = br.find("#secret").text();
    let link = br.find("#extra").text();
    assert_eq!(link, format!("{}/console/reset?code={code}", s.base), "the link carries the code");
    let until = br.find("#secret-facts").text();
    let expected = tokend::clock::rfc3339(s.clock.now() + 24 * 3600);
    assert!(until.contains(&expected[..10]) && until.contains(&expected[11..16]), "valid 24 h: {until} vs {expected}");
    br.click_and_load("#sign-out");

    br.go(&link);
    assert_eq!(br.find("#code").attr("value").as_deref(), Some(code.as_str()), "the link fills the code in");
    br.find("#new_password").send_keys("short");
    br.find("#confirm_password").send_keys("different");
    br.click_and_load("#reset-submit");
    assert!(br.has("#new_password-error") && br.has("#confirm_password-error"), "both errors at once");
    assert_eq!(br.find("#code").attr("value").as_deref(), Some(code.as_str()), "the code is kept");
    br.find("#new_password").send_keys("erin-password-1");
    br.find("#confirm_password").send_keys("erin-password-1");
    br.click_and_load("#reset-submit");
    assert!(br.find(".notice").text().contains("Your new password is set"));
    s.login("erin@example.com", "erin-password-1");
    // Erin has a password now: a reset link lasts an hour.
    let r = s.post(&format!("/api/v1/users/{uid}/password-reset"), &owner, json!({}));
    assert_eq!(r.body["expires_at"], json!(tokend::clock::rfc3339(s.clock.now() + 3600)), "{}", r.text);
}

/// The small things: a favicon; the 403 page keeps the navigation; on a phone the
/// navigation folds behind Menu; the policy page edits retention and self-rotation (owners)
/// and looks read-only to admins (the note not a success); role checkboxes say what each
/// built-in role allows and warn on org:owner.
fn header_menu_403_policy_and_roles(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.user(&owner, "admin@example.com", &["org:admin"]);
    s.user(&owner, "member@example.com", &["org:member"]);
    let mut br = Browser::start();
    br.sign_in(&s, "member@example.com", "user-password-123");
    assert!(br.find("link[rel=icon]").attr("href").unwrap().starts_with("data:image/svg+xml"), "a favicon");
    br.go(&s.url("/console/tokens"));
    assert_eq!(br.find("h1").text(), "You need another role");
    assert!(br.has("nav.main-nav a[href='/console/me/tokens']"), "the 403 page keeps the navigation");
    br.go(&s.url("/console/nothing-here"));
    assert!(br.has("nav.main-nav"), "so does the 404 page");
    br.set_size(390, 800);
    br.go(&s.url("/console/me/tokens"));
    assert!(!br.find("#main-nav").displayed(), "folded on a phone");
    br.find("#menu-toggle").click();
    assert!(br.find("#main-nav").displayed(), "Menu opens it");
    assert_eq!(br.find("#menu-toggle").attr("aria-expanded").as_deref(), Some("true"));
    br.screenshot("round3-phone-menu");
    br.set_size(1280, 800);
    br.click_and_load("#sign-out");

    // A long email: the header stays one row at 1280 px, the email cut (whole on hover).
    let long = "grace.hopper.with-a-very-long-address@research-division.example.com";
    s.user(&owner, long, &["org:admin"]);
    br.sign_in(&s, long, "user-password-123");
    let h = br.script(
        "var n = document.querySelector('.who-name'); \
         return [document.querySelector('header.top').getBoundingClientRect().height, n.scrollWidth > n.clientWidth]",
        json!([]),
    );
    assert!(h[0].as_f64().unwrap() < 70.0 && h[1] == json!(true), "one row, the email truncated: {h}");
    assert!(br.find(".who-name").attr("title").unwrap().starts_with(long));
    br.click_and_load("#sign-out");
    br.sign_in(&s, "admin@example.com", "user-password-123");
    br.go(&s.url("/console/policy"));
    assert_eq!(br.find("#read-only").attr("class").as_deref(), Some("info readonly"), "not styled as a success");
    assert_eq!(br.find("#retention_days").attr("readonly").as_deref(), Some("true"));
    assert_eq!(br.find("#allow_self_rotation").attr("disabled").as_deref(), Some("true"));
    br.go(&s.url("/console/service-accounts"));
    br.find("#create-open").click();
    let roles = br.find("#create-dialog fieldset").text();
    assert!(roles.contains("Manages people, service accounts"), "{roles}");
    br.find("#create-dialog button[data-close]").click();
    br.click_and_load("#sign-out");

    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url("/console/people"));
    assert!(br.source_has("Full control, including other owners: give it with care."), "the org:owner warning");
    br.go(&s.url("/console/policy"));
    br.find("#retention_days").clear();
    br.find("#retention_days").send_keys("45");
    br.find("#allow_self_rotation").click();
    br.click_and_load("#policy-submit");
    assert_eq!(flash(&br), "The policy is saved.");
    let p = s.get("/api/v1/policy", &owner).body;
    assert_eq!((&p["retention_days"], &p["allow_self_rotation"]), (&json!(45), &json!(true)), "{p}");
    assert_eq!(br.find("#allow_self_rotation").attr("checked").as_deref(), Some("true"));
}

/// The org's webhooks in the console: create (every error at once, then for real: the
/// signing secret shown once, after the password when the sudo window is closed), send a
/// test event and see its delivery, disable, a new secret, delete (confirmed).
fn webhooks_pages(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.click_and_load("nav.main-nav a[href='/console/webhooks']");
    assert!(br.has(".empty"));
    br.find("#create-open").click();
    br.find("#url").send_keys("not a url");
    br.click_and_load("#create-submit");
    assert!(br.find("#create-dialog").displayed());
    assert!(br.find("#url-error").text().contains("not an absolute URL"), "{}", br.find("#url-error").text());
    br.find("#url").clear();
    br.find("#url").send_keys("http://127.0.0.1:9/hook");
    br.find("#create-dialog input[name=events][value='token.revoked']").click();
    br.click_and_load("#create-submit");
    assert!(br.path().starts_with("/console/secret/"), "{}", br.path());
    let secret = br.find("#secret").text();
    assert!(secret.starts_with("whsec_"), "{secret}");
    reload(&br);
    assert!(!br.source_has(&secret), "shown once");
    let hooks = s.get("/api/v1/webhooks", &owner).body;
    let id = hooks["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(hooks["items"][0]["events"], json!(["token.revoked"]));

    br.go(&s.url(&format!("/console/webhooks/{id}")));
    br.click_and_load("#hook-test");
    assert!(flash(&br).contains("test event is queued"), "{}", flash(&br));
    let d = s.get(&format!("/api/v1/webhooks/{id}/deliveries"), &owner);
    assert_eq!(d.status, 200);
    // The sudo window closes: a new secret asks for the password first.
    s.clock.advance(10 * 60);
    br.go(&s.url(&format!("/console/webhooks/{id}")));
    br.find("#hook-secret").click();
    confirm(&br, "new signing secret");
    assert_eq!(br.find("h1").text(), "Confirm your password");
    br.find("#sudo_password").send_keys(&s.owner_password);
    br.click_and_load("#sudo-submit");
    let second = br.find("#secret").text();
    assert!(second.starts_with("whsec_") && second != secret);
    br.go(&s.url(&format!("/console/webhooks/{id}")));
    br.find("#hook-toggle").click();
    confirm(&br, "Disable the webhook");
    assert_eq!(br.find("#hook-status").text(), "disabled");
    assert!(!br.has("#hook-test"), "no test for a disabled webhook");
    br.find("#hook-delete").click();
    confirm(&br, "Delete the webhook to http://127.0.0.1:9/hook");
    assert_eq!(br.path(), "/console/webhooks");
    assert_eq!(flash(&br), "Deleted the webhook to http://127.0.0.1:9/hook.");
    assert_eq!(s.get("/api/v1/webhooks", &owner).body["total_count"], json!(0));
}

/// axe-core on the pages this round added, with their errors shown.
fn axe_finds_no_violations_on_the_new_pages(b: &Backend) {
    let Some(src) = axe_source() else { return };
    let s = b.start();
    let owner = s.owner_login();
    let sa = id_of(&s.post("/api/v1/service-accounts", &owner, json!({"name": "etl", "roles": ["org:member"]})).body);
    let (sat, _) = s.sa_token(&owner, &sa, json!({"name": "etl-1", "ttl_days": 3, "roles": ["org:member"]}));
    let (pat, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 3, "roles": ["org:member"]}));
    let (gone, _) = s.pat(&owner, json!({"name": "gone", "ttl_days": 3, "roles": ["org:member"]}));
    assert_eq!(s.post(&format!("/api/v1/me/tokens/{gone}/rotate"), &owner, json!({})).status, 201);
    let br = Browser::start();
    let mut failures = Vec::new();
    let mut check = |br: &Browser, what: &str| {
        let v = axe(br, &src);
        if !v.is_empty() {
            failures.push(format!("{what} ({}):\n  {}", br.path(), v.join("\n  ")));
        }
    };
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    check(&br, "my tokens, active");
    br.go(&s.url("/console/me/tokens?tab=inactive"));
    check(&br, "my tokens, inactive");
    br.go(&s.url(&format!("/console/me/tokens/{pat}")));
    check(&br, "my token");
    br.go(&s.url(&format!("/console/me/tokens/{gone}")));
    check(&br, "my rotated token");
    br.go(&s.url(&format!("/console/service-accounts/{sa}/tokens/{sat}")));
    check(&br, "service-account token");
    br.go(&s.url("/console/audit"));
    check(&br, "audit log");
    br.go(&s.url("/console/audit?actor=admin%40localhost&action=token.rotate"));
    check(&br, "audit log, filtered");
    let uid = id_of(&s.post("/api/v1/users", &owner, json!({"email": "erin@example.com"})).body);
    br.go(&s.url(&format!("/console/people/{uid}")));
    check(&br, "person invited");
    br.go(&s.url("/console/reset?code=abc"));
    check(&br, "reset with a code");
    br.go(&s.url("/console/nothing-here"));
    check(&br, "404 with the navigation");
    br.go(&s.url("/console/webhooks"));
    check(&br, "webhooks, none");
    br.find("#create-open").click();
    check(&br, "webhooks, create dialog");
    let hook = s.post("/api/v1/webhooks", &owner, json!({"url": "http://127.0.0.1:9/x", "events": ["token.revoked"]}));
    let hook = id_of(&hook.body);
    assert_eq!(s.post(&format!("/api/v1/webhooks/{hook}/test"), &owner, json!({})).status, 202);
    br.go(&s.url("/console/webhooks"));
    check(&br, "webhooks");
    br.go(&s.url(&format!("/console/webhooks/{hook}")));
    check(&br, "webhook");
    // Forms with every error shown.
    br.go(&s.url(&format!("/console/me/tokens/{pat}")));
    br.find("#name").clear();
    br.click_and_load("#edit-save");
    assert!(br.has("#name-error"));
    check(&br, "my token, rename refused");
    br.go(&s.url(&format!("/console/service-accounts/{sa}")));
    br.find("#account-name").clear();
    br.click_and_load("#details-save");
    assert!(br.has("#name-error"));
    check(&br, "service account, rename refused");
    br.go(&s.url("/console/service-accounts"));
    br.find("#create-open").click();
    br.click_and_load("#create-submit");
    assert!(br.has("#roles-error"));
    check(&br, "service accounts, create refused");
    assert!(failures.is_empty(), "axe-core violations:\n{}", failures.join("\n"));
}

/// Status filters that agree with the status shown; the regenerate API.
mod http {
    use super::*;

    backend_tests!(status_filters_agree_with_the_status_shown, regenerate_takes_a_new_expiry);

    /// A disabled owner's active tokens are `owner_disabled` in every list: `status=active`
    /// leaves them out and `status=owner_disabled` finds them (org table, the account's
    /// list, the console's org table), and every listed row has the status filtered for.
    fn status_filters_agree_with_the_status_shown(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        let sa =
            id_of(&s.post("/api/v1/service-accounts", &owner, json!({"name": "etl", "roles": ["org:member"]})).body);
        let (sat, _) = s.sa_token(&owner, &sa, json!({"name": "etl-1", "ttl_days": 3, "roles": ["org:member"]}));
        let (pat, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 3, "roles": ["org:member"]}));
        assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &owner, json!({"disabled": true})).status, 200);
        let ids = |path: &str, want: &str| -> Vec<String> {
            let r = s.get(path, &owner);
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            let items = r.body["items"].as_array().unwrap();
            for t in items {
                assert_eq!(t["status"], json!(want), "{path}: every row has the status filtered for");
            }
            assert_eq!(r.body["total_count"].as_u64().unwrap() as usize, items.len(), "{path}: the count agrees");
            items.iter().map(id_of).collect()
        };
        let active = ids("/api/v1/tokens?status=active&page_size=100", "active");
        assert!(active.contains(&pat) && !active.contains(&sat), "{active:?}");
        assert_eq!(ids("/api/v1/tokens?status=owner_disabled", "owner_disabled"), vec![sat.clone()]);
        assert!(ids("/api/v1/tokens?status=expiring_soon&page_size=100", "active").contains(&pat));
        assert!(ids(&format!("/api/v1/service-accounts/{sa}/tokens?status=active"), "active").is_empty());
        assert_eq!(
            ids(&format!("/api/v1/service-accounts/{sa}/tokens?status=owner_disabled"), "owner_disabled"),
            vec![sat.clone()]
        );
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let page = c.get("/console/tokens?status=active&page_size=100");
        assert_eq!(page.status, 200);
        assert!(page.text.contains(&pat) && !page.text.contains(&sat), "the console's table agrees");
        let page = c.get("/console/tokens?status=owner_disabled");
        assert!(page.text.contains(&sat), "owner disabled is a filter of the console's table");
        // Enabled again: active again, in the filter too.
        assert_eq!(s.patch(&format!("/api/v1/service-accounts/{sa}"), &owner, json!({"disabled": false})).status, 200);
        assert!(ids("/api/v1/tokens?status=active&page_size=100", "active").contains(&sat));
        assert!(s.get("/api/v1/tokens?status=bogus", &owner).text.contains("owner_disabled"), "the 422 names it");
    }

    /// POST /api/v1/me/tokens/{id}/regenerate: a successor expiring as asked (or as before
    /// with `{}`), the old token revoked; both fields, or beyond the maximum, 422 changing
    /// nothing; the successor is linked in the audit log.
    fn regenerate_takes_a_new_expiry(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        let (pat, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 30, "roles": ["org:member"]}));
        let path = format!("/api/v1/me/tokens/{pat}/regenerate");
        for bad in [
            json!({"ttl_days": 3, "expires_at": "2099-01-01T00:00:00Z"}),
            json!({"ttl_days": 100000}),
            json!({"nope": 1}),
        ] {
            let before = data(&s);
            let r = s.post(&path, &owner, bad.clone());
            assert_eq!(r.status, 422, "{bad}: {}", r.text);
            assert_eq!(data(&s), before, "{bad}: nothing changed");
        }
        let r = s.post(&path, &owner, json!({"ttl_days": 3}));
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let exp = tokend::clock::parse_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(exp, s.clock.now() + 3 * 86_400);
        assert_eq!((r.body["name"].as_str(), &r.body["roles"]), (Some("laptop"), &json!(["org:member"])));
        s.exchange_ok(r.body["token"].as_str().unwrap());
        let new = id_of(&r.body);
        assert_eq!(s.get(&format!("/api/v1/me/tokens/{pat}"), &owner).body["status"], json!("revoked"));
        assert_eq!(s.post(&path, &owner, json!({})).status, 409, "the old one is revoked");
        let r = s.post(&format!("/api/v1/me/tokens/{new}/regenerate"), &owner, json!({}));
        assert_eq!(r.status, 201, "{}", r.text);
        let exp = tokend::clock::parse_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(exp, s.clock.now() + 3 * 86_400, "{{}} keeps the lifetime");
        let audit = s.get(&format!("/api/v1/audit?action=token.rotate&object={pat}"), &owner);
        assert_eq!(audit.body["items"][0]["detail"]["new_token"], json!(new), "{}", audit.text);
    }
}
