//! The console's admin pages: the org token table (presets, saved searches, revoke from a
//! row menu), people, roles, policy and the audit log, in a real headless Chromium; plus
//! plain-HTTP checks that the table's URL is the API's query, of the reset-code page and
//! of errors shown at their fields. Screenshots of every page at 1280 and 390 px go to
//! `target/console-screenshots/`.
use serde_json::json;

use crate::common::browser::{Browser, ConsoleHttp};
use crate::common::Backend;

browser_tests!(admin_filters_saves_and_revokes, admin_pages_walk, member_gets_no_admin_pages);

/// The walk: an admin filters the org table to "Never used", saves the search,
/// applies it after a reload, and revokes a row from its menu (opened with the keyboard).
fn admin_filters_saves_and_revokes(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, member) = s.user(&owner, "dana@example.com", &["org:member"]);
    s.user(&owner, "admin@example.com", &["org:admin"]);
    let (used_id, used) = s.pat(&member, json!({"name": "used-token", "ttl_days": 7, "roles": ["org:member"]}));
    let (idle_id, idle) = s.pat(&member, json!({"name": "never-used-token", "ttl_days": 7, "roles": ["org:member"]}));
    s.exchange_ok(&used);
    s.flush_usage();

    let mut br = Browser::start();
    br.sign_in(&s, "admin@example.com", "user-password-123");
    br.click_and_load("nav.main-nav a[href='/console/tokens']");
    assert!(br.find("#org-tokens").text().contains("used-token"));
    assert!(br.find("#saved-empty").text().contains("None yet"), "the empty panel says what to do");
    br.screenshot("org-tokens");

    // The "Never used" preset: the URL holds the API's query.
    br.click_and_load("nav.presets a[href='/console/tokens?usage=never_used']");
    assert_eq!(br.path(), "/console/tokens?usage=never_used");
    let preset = br.find("nav.presets a[href='/console/tokens?usage=never_used']");
    assert_eq!(preset.attr("aria-current").as_deref(), Some("page"));
    let table = br.find("#org-tokens").text();
    assert!(table.contains("never-used-token") && !table.contains("used-token\n"), "{table}");
    assert!(!br.has(&format!("tr[data-id='{used_id}']")), "the used token is filtered out");
    assert!(br.has(&format!("tr[data-id='{idle_id}']")));
    // The page shows what the API answers to the same query.
    let api = s.get("/api/v1/tokens?usage=never_used", &owner);
    let n = api.body["total_count"].as_i64().unwrap();
    assert!(br.find("#total").text().starts_with(&format!("{n} token")), "{}", br.find("#total").text());

    // Save it, reload, apply it.
    br.find("#save-name").send_keys("Unused tokens");
    br.click_and_load("#save-submit");
    assert_eq!(br.path(), "/console/tokens?usage=never_used");
    let saved = br.find("#saved .apply-saved");
    assert_eq!(saved.text(), "Unused tokens");
    assert_eq!(saved.attr("aria-current").as_deref(), Some("page"), "the saved search is the current view");
    br.go(&s.url("/console/tokens"));
    assert!(br.has(&format!("tr[data-id='{used_id}']")), "unfiltered again");
    assert_eq!(br.find("#saved .apply-saved").attr("aria-current").as_deref(), Some("false"));
    br.click_and_load("#saved .apply-saved");
    assert_eq!(br.path(), "/console/tokens?usage=never_used");
    assert!(!br.has(&format!("tr[data-id='{used_id}']")));

    // Revoke from the row menu, reached and opened with the keyboard.
    let row = format!("tr[data-id='{idle_id}']");
    let summary = br.find(&format!("{row} summary"));
    assert_eq!(summary.attr("aria-label").as_deref(), Some("Actions for never-used-token"));
    br.script("document.querySelector(arguments[0]).focus()", json!([format!("{row} summary")]));
    assert_eq!(
        br.script(
            "return document.activeElement === document.querySelector(arguments[0])",
            json!([format!("{row} summary")])
        ),
        json!(true),
        "the menu button takes the keyboard focus"
    );
    let open = || br.script("return document.querySelector(arguments[0]).open", json!([format!("{row} details")]));
    summary.send_keys("\u{E007}"); // Enter opens it
    assert_eq!(open(), json!(true));
    summary.send_keys("\u{E00C}"); // Escape closes it
    assert_eq!(open(), json!(false));
    summary.send_keys("\u{E007}");
    assert_eq!(open(), json!(true));
    assert!(br.find(&format!("{row} button.revoke")).displayed(), "the menu shows Revoke");
    br.screenshot("org-tokens-row-menu");
    br.find(&format!("{row} button.revoke")).click();
    assert!(br.find("#confirm").displayed(), "revoking asks first");
    assert!(br.find("#confirm-text").text().contains("never-used-token"));
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    assert_eq!(br.path(), "/console/tokens?usage=never_used", "back to the same view");
    assert!(br.find(&row).text().contains("revoked"), "{}", br.find(&row).text());
    assert_eq!(s.exchange(&idle).status, 400, "the revoked token no longer exchanges");
    let audit = s.get(&format!("/api/v1/audit?action=token.admin_revoke&object={idle_id}"), &owner);
    assert_eq!(audit.body["total_count"], json!(1), "{}", audit.text);

    // A bookmarked address with a bad value: the error in words at its field.
    br.go(&s.url("/console/tokens?status=gone"));
    assert_eq!(br.find("#f-status").attr("aria-invalid").as_deref(), Some("true"));
    assert!(br
        .find("#status-error")
        .text()
        .contains("Must be active, owner_disabled, expired, revoked, idle or expiring_soon"));
    br.screenshot("org-tokens-bad-filter");
}

/// People (invite with an error at its field, then for real; reset code shown once;
/// disable), roles, policy (owner edits, errors at fields; an admin only reads) and the
/// audit log, with a screenshot of each.
fn admin_pages_walk(b: &Backend) {
    let s = b.start();
    let mut br = Browser::start();
    br.sign_in(&s, &s.owner_email, &s.owner_password);

    br.click_and_load("nav.main-nav a[href='/console/people']");
    br.screenshot("people");
    br.find("#invite-open").click();
    assert!(br.find("#invite-dialog").displayed());
    br.find("#email").send_keys("not-an-email");
    // The browser's own check would stop the form; the server's answer is what is tested.
    br.script("document.getElementById('email').type = 'text'", json!([]));
    br.click_and_load("#invite-submit");
    assert!(br.find("#invite-dialog").displayed(), "the dialog reopens with the error");
    assert_eq!(br.find("#email").attr("aria-invalid").as_deref(), Some("true"));
    assert!(!br.find("#email-error").text().is_empty());
    br.screenshot("people-invite-error");
    let email = br.find("#email");
    email.clear();
    email.send_keys("erin@example.com");
    br.find("#name").send_keys("Erin");
    br.click_and_load("#invite-submit");
    assert!(br.path().starts_with("/console/people/"), "{}", br.path());
    assert!(br.find(".notice").text().contains("no password yet"));
    br.screenshot("person");

    // Reset code: shown once, not cached; Erin sets her password with it.
    br.find("#reset-password").click();
    assert!(br.find("#confirm").displayed());
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    let code = br.find("#secret").text();
    assert!(!code.is_empty());
    br.screenshot("reset-code");
    let r =
        s.call("POST", "/api/v1/password-reset", None, Some(&json!({"code": code, "new_password": "erin-password-1"})));
    assert_eq!(r.status, 204, "{}", r.text);
    s.login("erin@example.com", "erin-password-1");
    br.click_and_load("#done");
    br.find("#disable-person").click();
    br.mark();
    br.find("#confirm-ok").click();
    br.wait_loaded();
    assert_eq!(br.find("#person-status").text(), "disabled");
    let r = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "erin@example.com", "password": "erin-password-1"})),
    );
    assert_eq!(r.status, 401, "a disabled person cannot sign in");

    // Roles: a bad name is refused at its field; a good one is listed.
    br.click_and_load("nav.main-nav a[href='/console/roles']");
    assert!(br.find("#roles-empty").text().contains("Create one"));
    br.find("#role-name").send_keys("Billing");
    br.click_and_load("#role-submit");
    assert_eq!(br.find("#role-name").attr("aria-invalid").as_deref(), Some("true"));
    assert!(br.find("#name-error").text().contains("Must match"));
    let name = br.find("#role-name");
    name.clear();
    name.send_keys("billing:read");
    br.click_and_load("#role-submit");
    assert!(br.find("#own-roles").text().contains("billing:read"));
    br.screenshot("roles");

    // Policy: the owner edits; a value out of range is shown at its field.
    br.click_and_load("nav.main-nav a[href='/console/policy']");
    let f = br.find("#personal_token_max_ttl_days");
    f.clear();
    f.send_keys("0");
    br.click_and_load("#policy-submit");
    assert_eq!(br.find("#personal_token_max_ttl_days").attr("aria-invalid").as_deref(), Some("true"));
    assert!(br.find("#personal_token_max_ttl_days-error").text().contains("1 to 3650"));
    br.screenshot("policy-error");
    let f = br.find("#personal_token_max_ttl_days");
    f.clear();
    f.send_keys("60");
    br.click_and_load("#policy-submit");
    assert!(br.find(".notice").text().contains("saved"));
    assert_eq!(s.get("/api/v1/policy", &s.owner_login()).body["personal_token_max_ttl_days"], json!(60));
    br.screenshot("policy");

    // The audit log, filtered by clicking an action.
    br.click_and_load("nav.main-nav a[href='/console/audit']");
    br.screenshot("audit");
    br.click_and_load("#audit a.action[href='/console/audit?action=policy.update']");
    let rows = br.find("#audit tbody").text();
    assert!(rows.contains("changed the policy") && !rows.contains("added the person"), "{rows}");
    assert_eq!(br.script("return document.querySelector('#a-action').value", json!([])), json!("policy.update"));

    // Every admin page fits a 360 px phone: nothing wider than the screen.
    br.set_width(360);
    for page in ["/console/tokens", "/console/people", "/console/roles", "/console/policy", "/console/audit"] {
        br.go(&s.url(page));
        br.find("h1");
        let fits = br.script(
            "var d = document.documentElement; return [d.scrollWidth, d.clientWidth, window.innerWidth]",
            json!([]),
        );
        assert!(fits[2].as_u64() <= Some(360), "the window is a phone's: {fits}");
        assert!(
            fits[0].as_u64() <= fits[1].as_u64(),
            "{page} at 360 px: [scrollWidth, clientWidth, innerWidth] = {fits}"
        );
    }
    br.set_width(1280);

    // An admin reads the policy and cannot change it.
    let owner = s.owner_login();
    s.user(&owner, "admin@example.com", &["org:admin"]);
    let mut br2 = Browser::start();
    br2.sign_in(&s, "admin@example.com", "user-password-123");
    br2.go(&s.url("/console/policy"));
    assert!(br2.find("#read-only").text().contains("only an owner"));
    assert!(br2.find("#personal_token_max_ttl_days").attr("readonly").is_some());
    assert!(!br2.has("#policy-submit"));
    br2.screenshot("policy-read-only");
}

/// A member: no admin links, and every admin page answers its 403 page.
fn member_gets_no_admin_pages(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.user(&owner, "member@example.com", &["org:member"]);
    let mut br = Browser::start();
    br.sign_in(&s, "member@example.com", "user-password-123");
    let nav = br.find("nav.main-nav").text();
    for absent in ["Org tokens", "People", "Roles", "Policy", "Audit log"] {
        assert!(!nav.contains(absent), "a member sees no {absent} link: {nav}");
    }
    assert!(!br.has(".admin-link"));
    for page in ["/console/tokens", "/console/people", "/console/roles", "/console/policy", "/console/audit"] {
        br.go(&s.url(page));
        assert_eq!(br.find("h1").text(), "You need another role", "{page}");
    }
    br.screenshot("admin-page-forbidden");
}

/// Plain HTTP: the table's URL is the API's query; the reset-code page; field errors.
mod http {
    use super::*;
    use crate::common::browser::csrf_in;

    backend_tests!(
        table_url_is_the_api_query,
        reset_code_page_is_not_stored,
        forms_show_errors_at_fields,
        people_and_audit_paginate_with_their_filters
    );

    /// People and the audit log page by 20 and keep their filters in the page links.
    fn people_and_audit_paginate_with_their_filters(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        for i in 0..22 {
            let r = s.post("/api/v1/users", &owner, json!({"email": format!("bulk{i:02}@example.com")}));
            assert_eq!(r.status, 201);
        }
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let page = c.get("/console/people?q=bulk");
        assert!(page.text.contains("Page 1 of 2 (22 in all)"), "{}", page.text);
        assert!(page.text.contains("href=\"/console/people?q=bulk&#38;page=2\""));
        let page2 = c.get("/console/people?q=bulk&page=2");
        assert_eq!(page2.text.matches("class=\"person-link\"").count(), 2);
        assert!(page2.text.contains("bulk21@example.com") && !page2.text.contains("bulk00@example.com"));
        // 22 user.create events by the owner, and the bootstrap's own.
        let audit = c.get("/console/audit?action=user.create");
        assert!(audit.text.contains("Page 1 of 2 (23 in all)"), "{}", audit.text);
        assert!(audit.text.contains("href=\"/console/audit?action=user.create&#38;page=2\""));
        let last = c.get("/console/audit?action=user.create&page=2");
        assert_eq!(last.text.matches("class=\"action\"").count(), 3);
        assert!(!last.text.contains(">user.login<"), "the filter holds on page 2");
    }

    fn ids_on_page(html: &str) -> Vec<String> {
        html.split("<tr data-id=\"").skip(1).map(|r| r[..r.find('"').unwrap()].to_string()).collect()
    }

    /// Empty fields and a date-only `unused_since` are normalised by one redirect; the
    /// page lists what `GET /api/v1/tokens` answers to the same query, page by page.
    fn table_url_is_the_api_query(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        for i in 0..25 {
            s.pat(&owner, json!({"name": format!("t{i:02}"), "ttl_days": 7, "roles": ["org:member"]}));
        }
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let r = c.get("/console/tokens?q=&owner_kind=&status=active&usage=&unused_since=2026-01-02&role=");
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/console/tokens?status=active&unused_since=2026-01-02T00%3A00%3A00Z"));
        for query in ["sort=name&order=desc&page_size=10&page=2", "q=t1&sort=name", "usage=never_used&status=active"] {
            let page = c.get(&format!("/console/tokens?{query}"));
            assert_eq!(page.status, 200, "{query}: {}", page.text);
            // Without a sort in the address the page runs newest first (the API's own
            // default is unchanged): the same query with that sort named.
            let api_query =
                if query.contains("sort=") { query.to_string() } else { format!("{query}&sort=created_at&order=desc") };
            let api = s.get(&format!("/api/v1/tokens?{api_query}"), &owner);
            assert_eq!(api.status, 200);
            let want: Vec<String> =
                api.body["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
            assert!(!want.is_empty());
            assert_eq!(ids_on_page(&page.text), want, "{query}: the same rows in the same order");
            let total = api.body["total_count"].as_i64().unwrap();
            assert!(page.text.contains(&format!("{total} tokens match")), "{query}");
        }
        // Pagination keeps the filters.
        let page = c.get("/console/tokens?sort=name&page_size=10");
        let pager = &page.text[page.text.find("class=\"pager\"").expect("a pager")..];
        assert!(
            pager.contains("href=\"/console/tokens?sort=name&#38;page_size=10&#38;page=2\""),
            "next page link: {pager}"
        );
        assert!(page.text.contains("Page 1 of 3"), "the total");
        // Sortable headers: the current column says so, and its link reverses the order.
        let page = c.get("/console/tokens?status=active&sort=name");
        assert!(
            page.text.contains(
                "aria-sort=\"ascending\"><a href=\"/console/tokens?status=active&#38;sort=name&#38;order=desc\""
            ),
            "the Name header"
        );
        assert!(page.text.contains("<th scope=\"col\" aria-sort=\"none\"><a href=\"/console/tokens?status=active&#38;sort=expires_at&#38;order=asc\""));
        // Saved searches: every admin sees them; only the creator (or an owner) gets Delete.
        let r = s.post("/api/v1/saved-searches", &owner, json!({"name": "owner's view", "query": "status=idle"}));
        assert_eq!(r.status, 201);
        s.user(&owner, "admin@example.com", &["org:admin"]);
        let admin = ConsoleHttp::sign_in(&s, "admin@example.com", "user-password-123");
        let page = admin.get("/console/tokens");
        assert!(page.text.contains("owner&#39;s view") || page.text.contains("owner's view"), "listed for the admin");
        assert!(!page.text.contains("delete-saved"), "no Delete on another admin's search");
        assert!(c.get("/console/tokens").text.contains("delete-saved"), "the owner may delete it");
        // A bad value: 422, the error at its field, no rows.
        let bad = c.get("/console/tokens?usage=sometimes");
        assert_eq!(bad.status, 422);
        assert!(bad.text.contains("id=\"usage-error\""), "{}", bad.text);
        assert!(ids_on_page(&bad.text).is_empty());
        // The revoke form goes back to the query it came from (and nowhere else).
        let (tid, _) = s.pat(&owner, json!({"name": "x", "ttl_days": 7, "roles": ["org:member"]}));
        let r = c.post(&format!("/console/tokens/{tid}/revoke"), &[("back", "status=revoked&sort=name")]);
        assert_eq!((r.status, r.header("location")), (303, Some("/console/tokens?status=revoked&sort=name")));
        let (tid, _) = s.pat(&owner, json!({"name": "y", "ttl_days": 7, "roles": ["org:member"]}));
        let r = c.post(&format!("/console/tokens/{tid}/revoke"), &[("back", "//evil.example/\r\nX: y")]);
        assert_eq!(r.status, 303);
        assert!(r.header("location").unwrap().starts_with("/console/tokens"), "{:?}", r.header("location"));
    }

    /// The reset code is shown by the page the POST redirects to (no-store), once, and
    /// works once.
    fn reset_code_page_is_not_stored(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        let (id, _) = s.user(&owner, "erin@example.com", &["org:member"]);
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let r = c.post(&format!("/console/people/{id}/reset"), &[]);
        assert_eq!(r.status, 303);
        let r = c.get(r.header("location").unwrap());
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let code = r.text.split("<code id=\"secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
        assert!(s.rows("reset_codes").iter().all(|row| !row.contains(&code)), "only its hash is stored");
        let redeem = |pw: &str| {
            s.call("POST", "/api/v1/password-reset", None, Some(&json!({"code": code, "new_password": pw}))).status
        };
        assert_eq!(redeem("erin-password-2"), 204);
        assert_eq!(redeem("erin-password-3"), 400, "once");
        s.login("erin@example.com", "erin-password-2");
        // The person page never shows a code again.
        let page = c.get(&format!("/console/people/{id}"));
        assert!(!page.text.contains(&code));
    }

    /// Every refused form answers 422 with the message at its field (aria-invalid and the
    /// message's id), and changes nothing.
    fn forms_show_errors_at_fields(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        let (id, _) = s.user(&owner, "erin@example.com", &["org:member"]);
        let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
        let before = s.data_snapshot();
        type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            ("/console/people".into(), vec![("email", "nope"), ("roles", "org:member")], "email"),
            ("/console/people".into(), vec![("email", "x@example.com"), ("roles", "no:such")], "roles"),
            (format!("/console/people/{id}"), vec![("name", ""), ("roles", "org:member")], "name"),
            (format!("/console/people/{id}"), vec![("name", "E"), ("credentials", "keep")], "credentials"),
            ("/console/roles".into(), vec![("name", "org:thing"), ("kind", "service")], "name"),
            ("/console/roles".into(), vec![("name", "a:b"), ("kind", "other")], "kind"),
            (
                "/console/policy".into(),
                vec![
                    ("personal_token_max_ttl_days", "ten"),
                    ("service_token_max_ttl_days", "365"),
                    ("max_tokens_per_service_account", "20"),
                ],
                "personal_token_max_ttl_days",
            ),
            (
                "/console/policy".into(),
                vec![
                    ("personal_token_max_ttl_days", "30"),
                    ("service_token_max_ttl_days", "365"),
                    ("max_tokens_per_service_account", "5000"),
                ],
                "max_tokens_per_service_account",
            ),
            ("/console/tokens/saved".into(), vec![("name", ""), ("query", "status=idle")], "name"),
        ];
        for (path, form, field) in &cases {
            let r = c.post(path, form);
            assert_eq!(r.status, 422, "{path} {form:?}: {}", r.text);
            assert!(r.text.contains(&format!("id=\"{field}-error\"")), "{path}: the error at {field}");
            assert!(
                r.text.contains(&format!("aria-describedby=\"{field}-error\""))
                    || r.text.contains(&format!(" {field}-error\"")),
                "{path}: {field} points at its error"
            );
            assert_eq!(csrf_in(&r.text), c.csrf, "the re-rendered form can be sent again");
        }
        // A conflict is shown above the form.
        let r = c.post("/console/people", &[("email", "erin@example.com"), ("roles", "org:member")]);
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.text.contains("class=\"form-error\"") && r.text.contains("already exists"));
        assert_eq!(s.data_snapshot(), before, "refused forms change nothing");
        // The audit filters: a bad time at its field; the datetime-local form is accepted.
        let r = c.get("/console/audit?from=yesterday");
        assert_eq!(r.status, 422);
        assert!(r.text.contains("id=\"from-error\""), "{}", r.text);
        let r = c.get(&format!("/console/audit?object={id}&from=2000-01-01T00:00"));
        assert_eq!(r.status, 200);
        assert!(
            r.text.contains(">added the person<") && !r.text.contains(">created the organization<"),
            "only the person's events"
        );
    }
}
