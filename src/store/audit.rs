//! The append-only audit log: insert and the filtered list.
use diesel::prelude::*;

use super::models::AuditEvent;
use super::page::{self, Page, Rows};
use super::schema::{api_tokens, apps, audit_events, service_accounts, users, webhooks};
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
        q.select((AuditEvent::as_select(), page::total()))
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

/// What the audit log shows for ids of the org: a person's email, a service account's or
/// app's name, a token's name and owner, a webhook's URL. Ids of nothing (deleted and
/// purged, or not an object id) are left out.
pub fn labels(
    conn: &mut AnyConnection,
    org_id: &str,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    out.extend(
        users::table
            .filter(users::org_id.eq(org_id))
            .filter(users::id.eq_any(ids))
            .select((users::id, users::email))
            .load::<(String, String)>(conn)?,
    );
    out.extend(
        service_accounts::table
            .filter(service_accounts::org_id.eq(org_id))
            .filter(service_accounts::id.eq_any(ids))
            .select((service_accounts::id, service_accounts::name))
            .load::<(String, String)>(conn)?,
    );
    out.extend(
        apps::table
            .filter(apps::org_id.eq(org_id))
            .filter(apps::id.eq_any(ids))
            .select((apps::id, apps::name))
            .load::<(String, String)>(conn)?,
    );
    for (id, name, owner) in api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::id.eq_any(ids))
        .select((api_tokens::id, api_tokens::name, api_tokens::owner_label))
        .load::<(String, String, String)>(conn)?
    {
        out.insert(id, format!("{name} ({owner})"));
    }
    out.extend(
        webhooks::table
            .filter(webhooks::org_id.eq(org_id))
            .filter(webhooks::id.eq_any(ids))
            .select((webhooks::id, webhooks::url))
            .load::<(String, String)>(conn)?,
    );
    Ok(out)
}

/// The org's people (email), service accounts and apps (name) and API tokens ("name
/// (owner)"), at most `limit` of each, for the audit log's pickers: (id, label).
pub fn directory(conn: &mut AnyConnection, org_id: &str, limit: i64) -> QueryResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = users::table
        .filter(users::org_id.eq(org_id))
        .order(users::email)
        .limit(limit)
        .select((users::id, users::email))
        .load(conn)?;
    out.extend(
        service_accounts::table
            .filter(service_accounts::org_id.eq(org_id))
            .order(service_accounts::name)
            .limit(limit)
            .select((service_accounts::id, service_accounts::name))
            .load::<(String, String)>(conn)?,
    );
    out.extend(
        apps::table
            .filter(apps::org_id.eq(org_id))
            .order(apps::name)
            .limit(limit)
            .select((apps::id, apps::name))
            .load::<(String, String)>(conn)?,
    );
    // Tokens as the log labels them, "name (owner)", newest first: a rotated token's
    // successor (same name and owner) is the one a typed label finds.
    out.extend(
        api_tokens::table
            .filter(api_tokens::org_id.eq(org_id))
            .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
            .limit(limit)
            .select((api_tokens::id, api_tokens::name, api_tokens::owner_label))
            .load::<(String, String, String)>(conn)?
            .into_iter()
            .map(|(id, name, owner)| (id, format!("{name} ({owner})"))),
    );
    Ok(out)
}
