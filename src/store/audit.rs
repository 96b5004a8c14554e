//! The append-only audit log: insert and the filtered list.
use diesel::prelude::*;

use super::models::AuditEvent;
use super::page::{Page, Rows};
use super::schema::audit_events;
use super::AnyConnection;

pub fn insert(conn: &mut AnyConnection, row: &AuditEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    Ok(())
}

/// Filters of the audit list, already validated; `from` inclusive, `to` exclusive.
#[derive(Default)]
pub struct Filter<'a> {
    pub actor: Option<&'a str>,
    pub actor_kind: Option<&'a str>,
    pub action: Option<&'a str>,
    pub object: Option<&'a str>,
    pub object_kind: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One page of the org's audit events. Sorts: `action`, else `at`.
pub fn list(conn: &mut AnyConnection, org_id: &str, f: &Filter<'_>, page: &Page) -> QueryResult<Rows<AuditEvent>> {
    let query = || {
        let mut q = audit_events::table.filter(audit_events::org_id.eq(org_id)).into_boxed();
        if let Some(v) = f.actor {
            q = q.filter(audit_events::actor_id.eq(v));
        }
        if let Some(v) = f.actor_kind {
            q = q.filter(audit_events::actor_kind.eq(v));
        }
        if let Some(v) = f.action {
            q = q.filter(audit_events::action.eq(v));
        }
        if let Some(v) = f.object {
            q = q.filter(audit_events::object_id.eq(v));
        }
        if let Some(v) = f.object_kind {
            q = q.filter(audit_events::object_kind.eq(v));
        }
        if let Some(v) = f.outcome {
            q = q.filter(audit_events::outcome.eq(v));
        }
        if let Some(v) = f.from {
            q = q.filter(audit_events::at.ge(v));
        }
        if let Some(v) = f.to {
            q = q.filter(audit_events::at.lt(v));
        }
        q.select(AuditEvent::as_select())
    };
    page.load(conn, query, |q| match page.key() {
        Some("action") => page.order(q, audit_events::action, audit_events::id),
        _ => page.order(q, audit_events::at, audit_events::id),
    })
}

/// The successors of rotated tokens among `ids` (old id → new id), from the `token.rotate`
/// events of the org (their detail names `new_token`).
pub fn successors(
    conn: &mut AnyConnection,
    org_id: &str,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Option<String>, Option<String>)> = audit_events::table
        .filter(audit_events::org_id.eq(org_id))
        .filter(audit_events::action.eq("token.rotate"))
        .filter(audit_events::object_id.eq_any(ids))
        .select((audit_events::object_id, audit_events::detail))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(old, detail)| {
            let d: serde_json::Value = serde_json::from_str(detail.as_deref()?).ok()?;
            Some((old?, d["new_token"].as_str()?.to_string()))
        })
        .collect())
}
