//! The console, fourth round (issue #20's last items): the invitation link emailed when
//! SMTP is configured — sealed in the outbox, opened only to send, blanked once sent, never
//! logged —, role holders named on the roles page and in the delete conflict, custom
//! roles' descriptions (changed in the API and the console, shown beside role checkboxes),
//! and API tokens in the audit log's object picker.
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::common::browser::{Browser, ConsoleHttp};
use crate::common::helpers::{new_sa, new_user, redeem};
use crate::common::{Backend, Server};
use crate::console_round2::{axe, axe_source, flash};
use crate::webhooks::{smtp_sink, Mail};

backend_tests!(
    invitation_link_is_emailed_sealed_and_never_logged,
    no_email_without_smtp,
    roles_name_their_holders,
    role_descriptions_change_and_show_beside_checkboxes,
    audit_object_picker_finds_tokens,
);

mod browser {
    use super::*;
    browser_tests!(round4_pages_have_no_axe_violations);
}

// ---- a log that keeps every line, for "no log line contains the code" ----

struct Keep;

static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let line = format!("{} {} {}", r.level(), r.target(), r.args());
        if let Some(l) = LINES.get() {
            l.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
    fn flush(&self) {}
}

/// Installs (once) a logger keeping every line at every level, for this test binary (no
/// other test installs one); answers how many lines were kept so far.
fn keep_logs() -> usize {
    let lines = LINES.get_or_init(|| Mutex::new(Vec::new()));
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        static KEEP: Keep = Keep;
        log::set_logger(&KEEP).expect("no other logger in the test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    lines.lock().unwrap().len()
}

/// The lines kept since `from` that contain `needle`.
fn logged_with(from: usize, needle: &str) -> Vec<String> {
    let lines = LINES.get().unwrap().lock().unwrap();
    lines[from..].iter().filter(|l| l.contains(needle)).cloned().collect()
}

// ---- helpers ----

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

/// The text of the element with `id` in a page (up to its first tag).
#[track_caller]
fn element_text(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].to_string()
}

/// A mail's body as a reader sees it: quoted-printable soft breaks joined, escapes decoded.
fn mail_text(m: &Mail) -> String {
    if !m.data.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable") {
        return m.data.clone();
    }
    let joined = m.data.replace("=\r\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn smtp_server(b: &Backend) -> (Server, std::sync::Arc<Mutex<Vec<Mail>>>) {
    let (port, mails) = smtp_sink();
    let s = b.start_with(|c| c.smtp_url = Some(tokend::config::SmtpUrl(format!("smtp://127.0.0.1:{port}"))));
    (s, mails)
}

// ---- tests ----

/// With SMTP configured, the person's page offers "Also email the link" (ticked); the
/// invitation is created (sudo: signing in counts), the secret page says where it was
/// emailed; the outbox row holds the link sealed, never the code; the worker sends it (the
/// link in the mail works: it fills the code in and sets the password) and blanks the seal;
/// no log line, at any level, contains the code.
fn invitation_link_is_emailed_sealed_and_never_logged(b: &Backend) {
    let from = keep_logs();
    let (s, mails) = smtp_server(b);
    let owner = s.owner_login();
    let r = s.post("/api/v1/users", &owner, json!({"email": "erin@example.com", "roles": ["org:member"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let uid = id_of(&r.body);
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let page = c.get(&format!("/console/people/{uid}"));
    assert!(page.text.contains("id=\"email-link\" name=\"email\" value=\"1\" checked"), "offered, ticked");
    assert!(page.text.contains("Also email the link to erin@example.com"));
    let r = c.post(&format!("/console/people/{uid}/reset"), &[("email", "1")]);
    assert_eq!(r.status, 303, "{}", r.text);
    let secret_page = c.get(r.header("location").unwrap());
    assert_eq!(secret_page.status, 200);
    let code = element_text(&secret_page.text, "secret");
    assert!(code.len() >= 20, "a code: {code}");
    let facts = element_text(&secret_page.text.replace("<dt>Emailed to</dt><dd>", "<dd id=\"emailed\">"), "emailed");
    assert_eq!(facts, "erin@example.com", "the secret page says where the link went");

    // In the outbox: one email row, the link sealed, the code nowhere.
    let rows = s.rows("outbox");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(rows[0].contains("event_type=user.invitation") && rows[0].contains("\"sealed\""), "{}", rows[0]);
    assert!(rows[0].contains("recipient=erin@example.com"), "{}", rows[0]);
    for table in ["outbox", "audit_events", "reset_codes"] {
        for row in s.rows(table) {
            assert!(!row.contains(&code), "{table} holds the code in clear: {row}");
        }
    }

    // Delivered: the mail carries the working link; the seal is gone from the row.
    let p = s.deliver_all();
    assert_eq!((p.delivered, p.failed), (1, 0), "{p:?}");
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, ["<erin@example.com>"]);
    let text = mail_text(&mails[0]);
    let link = format!("{}/console/reset?code={code}", s.base);
    assert!(text.contains(&link), "the mail carries the link: {text}");
    assert!(text.contains("You are invited to tokend"), "{text}");
    assert!(text.contains(&s.owner_email), "it says who invited: {text}");
    let rows = s.rows("outbox");
    assert!(rows[0].contains("delivered_at=") && !rows[0].contains("delivered_at=~"), "{}", rows[0]);
    assert!(!rows[0].contains("sealed") && !rows[0].contains(&code), "blanked once sent: {}", rows[0]);
    assert!(rows[0].contains("erin@example.com"), "the rest of the payload stays: {}", rows[0]);

    // The link works: it fills the code in, and the code sets the password.
    let anon = ConsoleHttp::anonymous(&s);
    let reset = anon.get(&link.replace(&s.base, ""));
    assert_eq!(reset.status, 200);
    assert!(reset.text.contains(&format!("value=\"{code}\"")), "the link fills the code in");
    assert_eq!(redeem(&s, &code, "erin-password-1").status, 204);
    s.login("erin@example.com", "erin-password-1");

    // The test's own HTTP client (ureq, in this process) logs the URL it opens — the link,
    // as a person's browser would; every other line is the server's.
    let leaked: Vec<String> = logged_with(from, &code)
        .into_iter()
        .filter(|l| !(l.starts_with("DEBUG ureq::") && l.contains("/console/reset?code=")))
        .collect();
    assert!(leaked.is_empty(), "log lines with the code: {leaked:#?}");
}

/// Without SMTP the box is not offered, and asking anyway queues nothing.
fn no_email_without_smtp(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let uid = id_of(&s.post("/api/v1/users", &owner, json!({"email": "erin@example.com"})).body);
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    assert!(!c.get(&format!("/console/people/{uid}")).text.contains("email-link"));
    let r = c.post(&format!("/console/people/{uid}/reset"), &[("email", "1")]);
    assert_eq!(r.status, 303, "{}", r.text);
    let page = c.get(r.header("location").unwrap());
    assert!(!page.text.contains("Emailed to"));
    assert_eq!(s.count("outbox"), 0);
}

/// The roles page names who holds each role (people by email, then service accounts and
/// apps, the first five, "and N more"), "Nobody" for a role nobody holds; deleting a held
/// role names them too.
fn roles_name_their_holders(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    for (name, d) in [("billing:read", "Reads invoices"), ("spare:read", "")] {
        let r = s.post("/api/v1/roles", &owner, json!({"name": name, "kind": "custom", "description": d}));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let people: Vec<String> =
        (1..=5).map(|i| new_user(&s, &owner, &format!("p{i}@example.test"), &["org:member", "billing:read"])).collect();
    new_sa(&s, &owner, "etl", &["billing:read"]);
    s.app(&owner, json!({"name": "ledger", "roles": ["billing:read"]}));
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let page = c.get("/console/roles");
    assert_eq!(page.status, 200);
    let row = |name: &str| -> String {
        let at = page.text.find(&format!("<tr id=\"role-{name}\">")).unwrap_or_else(|| panic!("a row for {name}"));
        let rest = &page.text[at..];
        rest[..rest.find("</tr>").unwrap()].to_string()
    };
    let billing = row("billing:read");
    assert!(
        billing.contains(
            "<strong>7</strong>: p1@example.test, p2@example.test, p3@example.test, p4@example.test, p5@example.test \
             and 2 more"
        ),
        "{billing}"
    );
    assert!(row("spare:read").contains("Nobody"));
    let r = s.delete("/api/v1/roles/billing:read", &owner);
    assert_eq!(r.status, 409);
    assert!(
        r.body["detail"].as_str().unwrap().contains("still granted to 7 holders: p1@example.test, p2@example.test"),
        "{}",
        r.text
    );
    for id in &people {
        assert_eq!(s.patch(&format!("/api/v1/users/{id}"), &owner, json!({"roles": ["org:member"]})).status, 200);
    }
    let r = s.delete("/api/v1/roles/billing:read", &owner);
    assert!(
        r.body["detail"].as_str().unwrap().contains("2 holders: etl (service account), ledger (app);"),
        "{}",
        r.text
    );
}

/// PATCH /api/v1/roles/{name} changes a custom role's description (audited); bad input is
/// refused with the field named and changes nothing; the console's row form does the same
/// (the error in that row) and the description shows beside the role's checkbox.
fn role_descriptions_change_and_show_beside_checkboxes(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.post("/api/v1/roles", &owner, json!({"name": "billing:read", "kind": "custom"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.patch("/api/v1/roles/billing:read", &owner, json!({"description": "  Reads invoices  "}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"name": "billing:read", "kind": "custom", "description": "Reads invoices"}));
    let listed = s.get("/api/v1/roles", &owner);
    assert!(listed.body["items"].as_array().unwrap().iter().any(|r| r["description"] == "Reads invoices"));
    let audit = s.get("/api/v1/audit?action=role.update", &owner);
    assert_eq!(audit.body["items"][0]["object_id"], json!("billing:read"), "{}", audit.text);
    for (bad, field) in [
        (json!({"description": "x".repeat(1001)}), "description"),
        (json!({"description": "a\u{7}b"}), "description"),
        (json!({"description": "ok", "name": "other:x"}), ""),
        (json!({}), ""),
    ] {
        let before = s.data_snapshot();
        let r = s.patch("/api/v1/roles/billing:read", &owner, bad.clone());
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert!(r.text.contains(field), "{bad}: names the field: {}", r.text);
        assert_eq!(s.data_snapshot(), before, "{bad}: nothing changed");
    }
    assert_eq!(s.patch("/api/v1/roles/org:member", &owner, json!({"description": "x"})).status, 409);
    assert_eq!(s.patch("/api/v1/roles/none:here", &owner, json!({"description": "x"})).status, 404);
    let (_, member) = s.user(&owner, "m@example.test", &["org:member"]);
    assert_eq!(s.patch("/api/v1/roles/billing:read", &member, json!({"description": "x"})).status, 403);

    // The console: the row form, its error in the row, the flash.
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let before = s.data_snapshot();
    let r = c.post("/console/roles/billing:read/description", &[("description", &"y".repeat(1001))]);
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"description-error\""), "the error is shown");
    assert!(r.text.contains("<details class=\"edit-description\" open>"), "in the row, open");
    assert_eq!(s.data_snapshot(), before);
    let r = c.post("/console/roles/billing:read/description", &[("description", "Reads and exports invoices")]);
    assert_eq!(r.status, 303, "{}", r.text);
    let page = c.get("/console/roles");
    assert!(page.text.contains("Saved the description of billing:read."), "the flash");
    assert!(page.text.contains("Reads and exports invoices"));
    // Beside the role's checkbox wherever roles are picked.
    let uid = id_of(&s.post("/api/v1/users", &owner, json!({"email": "erin@example.com"})).body);
    let sa = new_sa(&s, &owner, "etl", &["org:member"]);
    for path in [
        format!("/console/people/{uid}"),
        "/console/people".to_string(),
        "/console/me/tokens".to_string(),
        "/console/service-accounts".to_string(),
        format!("/console/service-accounts/{sa}"),
        "/console/apps".to_string(),
    ] {
        let page = c.get(&path);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.text.contains("billing:read <span class=\"muted role-desc\">— Reads and exports invoices</span>"),
            "{path}: the description beside the checkbox"
        );
    }
}

/// The audit log's object picker offers API tokens ("name (owner)") and filters by them.
fn audit_object_picker_finds_tokens(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (pat, _) = s.pat(&owner, json!({"name": "laptop", "ttl_days": 3, "roles": ["org:member"]}));
    let (other, _) = s.pat(&owner, json!({"name": "desktop", "ttl_days": 3, "roles": ["org:member"]}));
    for id in [&pat, &other] {
        let r = s.delete(&format!("/api/v1/me/tokens/{id}"), &owner);
        assert!((200..300).contains(&r.status), "{}", r.text);
    }
    let c = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    let page = c.get("/console/audit");
    let label = format!("laptop ({})", s.owner_email);
    assert!(page.text.contains(&format!("<option value=\"{label}\">")), "the picker offers the token");
    let q = format!(
        "/console/audit?object={}",
        label.replace(' ', "+").replace('(', "%28").replace(')', "%29").replace('@', "%40")
    );
    let page = c.get(&q);
    assert_eq!(page.status, 200);
    assert!(page.text.contains(&format!("value=\"{label}\"")), "the picker shows the label");
    assert!(page.text.contains(&pat) && !page.text.contains(&other), "only the laptop token's events");
}

/// axe-core on this round's pages: the roles page with holders and an open description
/// form (and its error), the person page with the email box, the secret page that says
/// where the link went.
fn round4_pages_have_no_axe_violations(b: &Backend) {
    let Some(src) = axe_source() else { return };
    let (s, _mails) = smtp_server(b);
    let owner = s.owner_login();
    s.post("/api/v1/roles", &owner, json!({"name": "billing:read", "kind": "custom", "description": "Reads"}));
    new_user(&s, &owner, "p1@example.test", &["org:member", "billing:read"]);
    let uid = id_of(&s.post("/api/v1/users", &owner, json!({"email": "erin@example.com"})).body);
    let br = Browser::start();
    let mut failures = Vec::new();
    let mut check = |br: &Browser, what: &str| {
        let v = axe(br, &src);
        if !v.is_empty() {
            failures.push(format!("{what} ({}):\n  {}", br.path(), v.join("\n  ")));
        }
    };
    br.sign_in(&s, &s.owner_email, &s.owner_password);
    br.go(&s.url("/console/roles"));
    check(&br, "roles with holders");
    br.find("details.edit-description summary").click();
    br.find("#desc-billing\\:read").clear();
    br.find("#desc-billing\\:read").send_keys(&"z".repeat(1000));
    br.script("document.getElementById('desc-billing:read').value += 'zz'", json!([]));
    br.click_and_load("details.edit-description button[type=submit]");
    assert!(br.has("#description-error"), "the error in the row");
    check(&br, "roles, description refused");
    br.find("#desc-billing\\:read").clear();
    br.find("#desc-billing\\:read").send_keys("Reads invoices");
    br.click_and_load("details.edit-description button[type=submit]");
    assert_eq!(flash(&br), "Saved the description of billing:read.");
    br.go(&s.url(&format!("/console/people/{uid}")));
    assert!(br.has("#email-link"));
    check(&br, "person with the email box");
    br.find("#reset-password").click();
    crate::common::browser::confirm(&br, "Create an invitation link for erin@example.com?");
    assert!(br.find("#secret-facts").text().contains("Emailed to"));
    check(&br, "invitation emailed");
    assert!(failures.is_empty(), "axe-core violations:\n{}", failures.join("\n"));
}
