//! The web console, driven through a real headless Chromium (`common::browser`), plus
//! plain-HTTP checks of its headers, sessions and CSRF refusals.
use serde_json::json;

use crate::common::browser::Browser;
use crate::common::Backend;

browser_tests!(walk_personal_token);

/// Sign in → create a token in the dialog → copy its secret → exchange it at
/// `/oauth/token` → revoke it in the page (confirmed) → the exchange now fails.
fn walk_personal_token(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.screenshot("my-tokens");

    br.find("#create-open").click();
    let dialog = br.find("#create-dialog");
    assert!(dialog.displayed(), "the create dialog opens");
    br.find("#name").send_keys("ci deploy");
    br.find("#description").send_keys("used by the deploy job");
    br.screenshot("create-token-dialog");
    br.click_and_load("#create-submit");

    assert!(br.find("h1").text().contains("ci deploy"), "{}", br.find("main").text());
    assert!(br.find(".warning").text().contains("shown only once"));
    br.find("#copy").click();
    let status = br.find("#copy-status");
    let secret = br.find("#secret").text();
    assert!(secret.starts_with("tkd_"), "the secret is on the page: {secret:?}");
    // The copy button answered (clipboard, or the text selected for Ctrl+C).
    assert!(!status.text().is_empty() || br.find("#copy").text() == "Copied");
    br.screenshot("token-secret");

    let access = s.exchange_ok(&secret);
    assert!(!access.is_empty());

    br.click_and_load("#done");
    assert_eq!(br.path(), "/console/me/tokens");
    let row = br.find("#tokens tbody tr");
    assert!(row.text().contains("ci deploy"), "{}", row.text());
    assert!(row.text().contains("active"));
    row.find("button.revoke").click();
    let confirm = br.find("#confirm");
    assert!(confirm.displayed(), "revoking asks first");
    assert!(br.find("#confirm-text").text().contains("ci deploy"));
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    let row = br.find("#tokens tbody tr");
    assert!(row.text().contains("revoked"), "{}", row.text());

    let r = s.exchange(&secret);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_grant"));
}
