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

pub struct EventRow {
    pub at: String,
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
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: Query,
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
    ui.p.require(crate::service::Role::OrgAdmin)?;
    let q = Query::from_raw(req.query_string());
    let f = AuditFilter {
        actor: q.opt("actor"),
        actor_kind: None,
        action: q.opt("action"),
        object: q.opt("object"),
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
        audit::list(conn, &p, &f, &page)
    })
    .await;
    let (page, errors) = match result {
        Ok(pg) => (pg, FieldErrors::default()),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            (crate::service::list::Paged { items: vec![], total_count: 0, page: 1, page_size: 1 }, errors)
        }
    };
    let filter = |k: &str, v: &str| Query::default().with(k, v).href(BASE);
    let rows = page
        .items
        .iter()
        .map(|e| EventRow {
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
        })
        .collect();
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let v = AuditPage {
        chrome: ui.chrome("audit"),
        pager: QueryPager::new(BASE, &q, &page),
        from: local(q.get("from")),
        to: local(q.get("to")),
        q,
        rows,
        errors,
    };
    Ok(render(status, &v))
}
