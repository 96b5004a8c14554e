//! Append-only audit log: who did what to which object, when, from where, with what outcome.
use diesel::prelude::*;
use serde::Serialize;

use super::list::{Page, Paged};
use super::{new_id, Principal, Result};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::store::models::AuditEvent;
use crate::store::schema::audit_events;
use crate::store::AnyConnection;

/// An event about to be written; `org_id` None only for system events.
pub struct Event<'a> {
    pub org_id: Option<&'a str>,
    pub actor_kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub action: &'a str,
    pub object_kind: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: Option<serde_json::Value>,
}

impl<'a> Event<'a> {
    /// A successful action of `p` on an object.
    pub fn by(p: &'a Principal, action: &'a str, kind: &'a str, id: &'a str) -> Event<'a> {
        Event {
            org_id: Some(&p.org_id),
            actor_kind: p.acct.as_str(),
            actor_id: Some(&p.id),
            action,
            object_kind: Some(kind),
            object_id: Some(id),
            ip: p.ip.as_deref(),
            outcome: "success",
            detail: p.token_id.as_ref().map(|t| serde_json::json!({ "via_token": t })),
        }
    }

    pub fn detail(mut self, d: serde_json::Value) -> Event<'a> {
        let mut merged = self.detail.take().unwrap_or_else(|| serde_json::json!({}));
        if let (Some(m), Some(extra)) = (merged.as_object_mut(), d.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        self.detail = Some(merged);
        self
    }

    pub fn outcome(mut self, outcome: &'a str) -> Event<'a> {
        self.outcome = outcome;
        self
    }
}

pub fn record(conn: &mut AnyConnection, e: Event<'_>, now: i64) -> Result<()> {
    let row = AuditEvent {
        id: new_id(),
        org_id: e.org_id.map(str::to_string),
        at: now,
        actor_kind: e.actor_kind.to_string(),
        actor_id: e.actor_id.map(str::to_string),
        action: e.action.to_string(),
        object_kind: e.object_kind.map(str::to_string),
        object_id: e.object_id.map(str::to_string),
        ip: e.ip.map(str::to_string),
        outcome: e.outcome.to_string(),
        detail: e.detail.map(|d| d.to_string()),
    };
    diesel::insert_into(audit_events::table).values(&row).execute(conn)?;
    Ok(())
}

#[derive(Serialize)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub detail: Option<serde_json::Value>,
}

#[derive(Default, serde::Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub actor_kind: Option<String>,
    pub action: Option<String>,
    pub object: Option<String>,
    pub object_kind: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub fn list(conn: &mut AnyConnection, p: &Principal, f: &AuditFilter, page: &Page) -> Result<Paged<AuditView>> {
    p.require("org:admin")?;
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(s) => parse_rfc3339(s).map(Some).ok_or_else(|| super::invalid(field, "expected an RFC 3339 time")),
        }
    };
    let from = time("from", &f.from)?;
    let to = time("to", &f.to)?;
    page.check_sort(&["at", "created_at", "action"])?;
    let build = || {
        let mut q = audit_events::table.filter(audit_events::org_id.eq(&p.org_id)).into_boxed();
        if let Some(v) = &f.actor {
            q = q.filter(audit_events::actor_id.eq(v.clone()));
        }
        if let Some(v) = &f.actor_kind {
            q = q.filter(audit_events::actor_kind.eq(v.clone()));
        }
        if let Some(v) = &f.action {
            q = q.filter(audit_events::action.eq(v.clone()));
        }
        if let Some(v) = &f.object {
            q = q.filter(audit_events::object_id.eq(v.clone()));
        }
        if let Some(v) = &f.object_kind {
            q = q.filter(audit_events::object_kind.eq(v.clone()));
        }
        if let Some(v) = &f.outcome {
            q = q.filter(audit_events::outcome.eq(v.clone()));
        }
        if let Some(v) = from {
            q = q.filter(audit_events::at.ge(v));
        }
        if let Some(v) = to {
            q = q.filter(audit_events::at.lt(v));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let mut q = build();
    q = match (page.sort.as_deref(), page.desc) {
        (Some("action"), false) => q.order((audit_events::action.asc(), audit_events::id.asc())),
        (Some("action"), true) => q.order((audit_events::action.desc(), audit_events::id.desc())),
        (_, false) => q.order((audit_events::at.asc(), audit_events::id.asc())),
        (_, true) => q.order((audit_events::at.desc(), audit_events::id.desc())),
    };
    let rows: Vec<AuditEvent> = q.limit(page.size).offset(page.offset()).select(AuditEvent::as_select()).load(conn)?;
    Ok(page.wrap(
        rows.into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: rfc3339(r.at),
                actor_kind: r.actor_kind,
                actor_id: r.actor_id,
                action: r.action,
                object_kind: r.object_kind,
                object_id: r.object_id,
                ip: r.ip,
                outcome: r.outcome,
                detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect(),
        total,
    ))
}
