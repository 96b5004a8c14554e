//! The audit log (admins): filter by actor, action, object, outcome and time, newest
//! first, in pages (`service::events::audit::list`, as `GET /api/v1/audit`). Actor and object ids
//! link to the log filtered to them.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::admin::{Query, QueryPager};
use super::parts::when;
use crate::app::State;
use crate::console::{read, render, Chrome, Fail, FieldErrors, Ui};
use crate::service::list::PageQuery;
use crate::service::org::audit_log::{self as audit, AuditFilter};

const BASE: &str = "/console/audit";

/// The audit actions a person can pick in the filter, with the words the log shows.
pub const ACTIONS: [(&str, &str); 45] = [
    ("user.login", "signed in"),
    ("session.logout", "signed out"),
    ("session.revoke_all", "signed out everywhere"),
    ("user.password.change", "changed the password of"),
    ("user.password.reset", "issued a reset code for"),
    ("user.password.redeem", "set a password with a reset code:"),
    ("user.create", "added the person"),
    ("user.update", "changed the person"),
    ("user.delete", "removed the person"),
    ("token.create", "created the token"),
    ("token.update", "changed the token"),
    ("token.rotate", "rotated the token"),
    ("token.revoke", "revoked the token"),
    ("token.revoke_all", "revoked all tokens of"),
    ("token.admin_revoke", "revoked (as admin) the token"),
    ("token.exchange", "exchanged the token"),
    ("token.purge", "purged ended tokens"),
    ("access_token.revoke", "revoked an access token"),
    ("role.create", "created the role"),
    ("role.delete", "deleted the role"),
    ("role.update", "changed the role's description"),
    ("service_account.create", "created the service account"),
    ("service_account.update", "changed the service account"),
    ("service_account.delete", "deleted the service account"),
    ("service_account.disable", "disabled the service account"),
    ("service_account.transfer", "took over the service account"),
    ("app.create", "created the app"),
    ("app.update", "changed the app"),
    ("app.delete", "deleted the app"),
    ("app.disable", "disabled the app"),
    ("app.transfer", "took over the app"),
    ("app.secret.regenerate", "regenerated the secret of the app"),
    ("policy.update", "changed the policy"),
    ("saved_search.create", "saved the search"),
    ("saved_search.delete", "deleted the saved search"),
    ("webhook.create", "created the webhook"),
    ("webhook.update", "changed the webhook"),
    ("webhook.delete", "deleted the webhook"),
    ("webhook.disable", "disabled the webhook"),
    ("webhook.transfer", "took over the webhook"),
    ("webhook.secret.roll", "rolled the secret of the webhook"),
    ("webhook.test", "tested the webhook"),
    ("org.create", "created the organization"),
    ("audit.suppressed", "made refused calls, counted not listed:"),
    ("user.disable", "disabled the person"),
];

/// "token.revoke" → "revoked the token"; an action not listed as is.
pub fn action_words(action: &str) -> String {
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, w)| w.to_string()).unwrap_or_else(|| action.to_string())
}

/// A refused call's action ("DELETE /api/v1/roles/{name}", "POST
/// /console/service-accounts/{id}/delete") in words: "delete role", "delete service account".
pub fn refused_words(action: &str) -> Option<String> {
    let (method, path) = action.split_once(' ')?;
    let path = path.strip_prefix("/api/v1").or_else(|| path.strip_prefix("/console")).unwrap_or(path);
    const VERBS: [&str; 12] = [
        "rotate",
        "revoke",
        "revoke-all",
        "delete",
        "secret",
        "reset",
        "test",
        "regenerate",
        "edit",
        "details",
        "password",
        "disable",
    ];
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && !p.starts_with('{')).collect();
    let (verb, nouns): (String, &[&str]) = match parts.split_last() {
        Some((last, rest)) if VERBS.contains(last) => {
            let v = match *last {
                "secret" => "regenerate the secret of",
                "details" | "edit" => "rename",
                "reset" => "issue a reset code for",
                "password" => "change the password of",
                "revoke-all" => "revoke all",
                other => other,
            };
            (v.to_string(), rest)
        }
        _ => {
            let v = match method {
                "POST" => "create",
                "PUT" | "PATCH" => "change",
                "DELETE" => "delete",
                _ => "call",
            };
            (v.to_string(), &parts[..])
        }
    };
    let nouns: Vec<String> = nouns
        .iter()
        .map(|n| match *n {
            "me" => "my".to_string(),
            n => {
                let n = n.replace('-', " ");
                n.strip_suffix('s').map(str::to_string).unwrap_or(n)
            }
        })
        .collect();
    Some(if nouns.is_empty() { verb } else { format!("{verb} {}", nouns.join(" ")) })
}

/// Why a call was refused, from its HTTP status, in words.
pub fn reason_words(status: u64) -> String {
    match status {
        400 => "the request was malformed".into(),
        401 => "the password was wrong, or the sign-in had ended".into(),
        403 => "not allowed: a role or a fresh sign-in was missing".into(),
        404 => "no such object in this organization".into(),
        409 => "not possible in the object's current state".into(),
        410 => "already shown".into(),
        413 => "the request was too large".into(),
        422 => "a field was not accepted".into(),
        429 => "too many attempts".into(),
        s => format!("refused ({s})"),
    }
}

/// A detail object in a few words ("roles: org:member; name: ci"), the JSON whole on hover.
fn detail_words(d: &serde_json::Value) -> String {
    let Some(m) = d.as_object() else { return d.to_string() };
    let text = m
        .iter()
        .filter(|(k, v)| !v.is_null() && k.as_str() != "status")
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{}: {v}", k.replace('_', " "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    text
}

pub struct EventRow {
    pub at: String,
    pub at_rel: String,
    /// The actor's and object's email or name (the id when nothing is known of it).
    pub actor_label: String,
    pub object_label: String,
    /// The action in words ("revoked the token"), or "Refused: delete role" for a refused call.
    pub words: String,
    pub refused: bool,
    /// Why it was refused, in words ("" when not refused).
    pub reason: String,
    pub actor_kind: String,
    pub actor: String,
    pub actor_short: String,
    pub actor_href: Option<String>,
    pub action: String,
    pub action_href: String,
    pub object_kind: String,
    pub object: String,
    pub object_short: String,
    pub object_href: Option<String>,
    pub outcome: String,
    pub ip: String,
    pub detail: String,
    pub detail_words: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: Query,
    /// The action filter's choices (value, words).
    actions: &'static [(&'static str, &'static str)],
    /// The actor/object pickers' choices: labels (people's emails, names), matched back to ids.
    directory: Vec<(String, String)>,
    /// The pickers' text: the label of the filtered id, or what was typed.
    actor_text: String,
    object_text: String,
    rows: Vec<EventRow>,
    pager: QueryPager,
    from: String,
    to: String,
    errors: FieldErrors,
}

impl AuditPage {
    fn sel(&self, name: &str, value: &str) -> bool {
        self.q.get(name) == value
    }
}

/// A `datetime-local` value ("2026-11-28T16:30") as RFC 3339 UTC; anything else as is
/// (the service checks it and names the field).
fn time(v: Option<String>) -> Option<String> {
    v.map(|v| if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') { format!("{v}:00Z") } else { v })
}

/// A long id as "…" and its last 12 characters (ids share their time-ordered prefix); the
/// full id is in the link's title and its filter.
fn short(id: &str) -> String {
    let n = id.chars().count();
    if n <= 16 {
        id.to_string()
    } else {
        format!("…{}", id.chars().skip(n - 12).collect::<String>())
    }
}

/// RFC 3339 back to the `datetime-local` input's form.
fn local(v: &str) -> String {
    v.get(..16).unwrap_or(v).to_string()
}

pub async fn list(ui: Ui, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    // Admins only: `audit::directory`, the first call, refuses anyone else (the 403 page).
    let q = Query::from_raw(req.query_string());
    let p = ui.p.clone();
    let mut directory = read(&st, move |conn, _, _| audit::directory(conn, &p)).await?;
    // One choice per label: a rotated token's successor (listed first) keeps its name.
    let mut seen = std::collections::HashSet::new();
    directory.retain(|(_, l)| seen.insert(l.to_lowercase()));
    // A picker's text is a label (an email or a name) or an id.
    let pick = |v: Option<String>| {
        v.map(|v| {
            let t = v.trim();
            directory
                .iter()
                .find(|(_, l)| l.eq_ignore_ascii_case(t))
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| t.to_string())
        })
    };
    let (actor, object) = (pick(q.opt("actor")), pick(q.opt("object")));
    let text = |id: &Option<String>| {
        id.as_ref()
            .map(|id| directory.iter().find(|(i, _)| i == id).map(|(_, l)| l.clone()).unwrap_or_else(|| id.clone()))
            .unwrap_or_default()
    };
    let (actor_text, object_text) = (text(&actor), text(&object));
    let f = AuditFilter {
        actor,
        actor_kind: None,
        action: q.opt("action"),
        object,
        object_kind: None,
        outcome: q.opt("outcome"),
        from: time(q.opt("from")),
        to: time(q.opt("to")),
    };
    let pq = PageQuery {
        page: q.opt("page"),
        page_size: Some(super::parts::PAGE_SIZE.to_string()),
        sort: Some("at".into()),
        order: Some("desc".into()),
    };
    let p = ui.p.clone();
    let result = read(&st, move |conn, _, _| {
        let page = pq.validate()?;
        let events = audit::list(conn, &p, &f, &page)?;
        let ids: Vec<String> =
            events.items.iter().flat_map(|e| [e.actor_id.clone(), e.object_id.clone()]).flatten().collect();
        let labels = audit::labels(conn, &p, &ids)?;
        Ok((events, labels))
    })
    .await;
    let ((page, labels), errors) = match result {
        Ok(pg) => (pg, FieldErrors::default()),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            (
                (
                    crate::service::list::Paged { items: vec![], total_count: 0, page: 1, page_size: 1 },
                    Default::default(),
                ),
                errors,
            )
        }
    };
    let filter = |k: &str, v: &str| Query::default().with(k, v).href(BASE);
    let rows = page
        .items
        .iter()
        .map(|e| {
            let label = |id: &Option<String>| {
                id.as_deref().map(|i| labels.get(i).cloned().unwrap_or_else(|| short(i))).unwrap_or_default()
            };
            let refused = refused_words(&e.action).filter(|_| e.outcome != "success");
            let status = e.detail.as_ref().and_then(|d| d["status"].as_u64());
            EventRow {
                at_rel: super::parts::relative(&e.at, ui.now),
                actor_label: label(&e.actor_id),
                object_label: label(&e.object_id),
                words: match &refused {
                    Some(w) => format!("Refused: {w}"),
                    None => action_words(&e.action),
                },
                refused: refused.is_some(),
                reason: status.map(reason_words).unwrap_or_default(),
                detail_words: e.detail.as_ref().map(detail_words).unwrap_or_default(),
                at: when(&e.at),
                actor_kind: e.actor_kind.clone(),
                actor: e.actor_id.clone().unwrap_or_default(),
                actor_short: short(e.actor_id.as_deref().unwrap_or("")),
                actor_href: e.actor_id.as_deref().map(|a| filter("actor", a)),
                action: e.action.clone(),
                action_href: filter("action", &e.action),
                object_kind: e.object_kind.clone().unwrap_or_default(),
                object: e.object_id.clone().unwrap_or_default(),
                object_short: short(e.object_id.as_deref().unwrap_or("")),
                object_href: e.object_id.as_deref().map(|o| filter("object", o)),
                outcome: e.outcome.clone(),
                ip: e.ip.clone().unwrap_or_default(),
                detail: e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let v = AuditPage {
        chrome: ui.chrome("audit"),
        pager: QueryPager::new(BASE, &q, &page),
        from: local(q.get("from")),
        to: local(q.get("to")),
        q,
        actions: &ACTIONS,
        directory,
        actor_text,
        object_text,
        rows,
        errors,
    };
    Ok(render(status, &v))
}
