//! Append-only audit log: who did what to which object, when, from where, with what outcome.
use serde::Serialize;

use crate::clock::{parse_rfc3339, rfc3339};
use crate::service::list::{Page, Paged};
use crate::service::{new_id, Principal, Result};
use crate::store::models::AuditEvent;
use crate::store::{self, AnyConnection};

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
    crate::service::events::webhooks::on_audit(conn, &e, now)?;
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
    Ok(store::audit::insert(conn, &row)?)
}

/// Longest object id or path kept in an audit row, in characters.
pub const MAX_FIELD_CHARS: usize = 64;

/// `s` cut to [`MAX_FIELD_CHARS`] characters, with `…` marking a cut.
pub fn truncate(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some((i, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..i])),
    }
}

/// Refused calls written individually per principal per window; beyond that they are
/// counted and written as one summary row.
pub const REFUSED_ROWS_PER_WINDOW: u32 = 5;
pub const REFUSED_WINDOW_SECONDS: i64 = 60;
/// Principals tracked at once; beyond that refused calls are written individually.
const MAX_TRACKED: usize = 10_000;

struct Window {
    start: i64,
    written: u32,
    suppressed: u64,
    org_id: String,
    actor_kind: &'static str,
    ip: Option<String>,
}

/// Refused calls left out of the log in one window of one principal.
pub struct Suppressed {
    pub org_id: String,
    pub actor_kind: &'static str,
    pub actor_id: String,
    pub ip: Option<String>,
    pub count: u64,
    pub from: i64,
    pub to: i64,
}

impl Suppressed {
    pub fn record(&self, conn: &mut AnyConnection, now: i64) -> Result<()> {
        let ev = Event {
            org_id: Some(&self.org_id),
            actor_kind: self.actor_kind,
            actor_id: Some(&self.actor_id),
            action: "audit.suppressed",
            object_kind: None,
            object_id: None,
            ip: self.ip.as_deref(),
            outcome: "failure",
            detail: Some(serde_json::json!({
                "message": format!("refused calls suppressed: {}", self.count),
                "suppressed": self.count,
                "from": rfc3339(self.from),
                "to": rfc3339(self.to),
            })),
        };
        record(conn, ev, now)
    }
}

/// Per-principal flood control for the audit of refused calls: a caller repeating refused
/// calls cannot make the log grow faster than a few rows a minute.
#[derive(Default)]
pub struct RefusalFlood {
    map: std::sync::Mutex<std::collections::HashMap<String, Window>>,
}

impl RefusalFlood {
    /// Whether to write this refused call, and a summary of an earlier window of the same
    /// principal that is due now.
    pub fn admit(&self, p: &Principal, now: i64) -> (bool, Option<Suppressed>) {
        self.admit_for(&p.id, &p.org_id, p.acct.as_str(), p.ip.as_deref(), now)
    }

    /// [`RefusalFlood::admit`] for any actor: a principal, or a credential refused again
    /// and again (a known revoked token presented from many addresses).
    pub fn admit_for(
        &self,
        id: &str,
        org_id: &str,
        actor_kind: &'static str,
        ip: Option<&str>,
        now: i64,
    ) -> (bool, Option<Suppressed>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(id) && map.len() >= MAX_TRACKED {
            return (true, None);
        }
        let fresh = || Window {
            start: now,
            written: 1,
            suppressed: 0,
            org_id: org_id.to_string(),
            actor_kind,
            ip: ip.map(str::to_string),
        };
        match map.get_mut(id) {
            None => {
                map.insert(id.to_string(), fresh());
                (true, None)
            }
            Some(w) if now >= w.start + REFUSED_WINDOW_SECONDS => {
                let old = std::mem::replace(w, fresh());
                (true, summary(id, old, now))
            }
            Some(w) if w.written < REFUSED_ROWS_PER_WINDOW => {
                w.written += 1;
                (true, None)
            }
            Some(w) => {
                w.suppressed += 1;
                w.ip = ip.map(str::to_string);
                (false, None)
            }
        }
    }

    /// Summaries of windows that have closed (all windows with `all`, at shutdown); closed
    /// windows are forgotten.
    pub fn take_closed(&self, now: i64, all: bool) -> Vec<Suppressed> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let closed: Vec<String> = map
            .iter()
            .filter(|(_, w)| all || now >= w.start + REFUSED_WINDOW_SECONDS)
            .map(|(k, _)| k.clone())
            .collect();
        closed.into_iter().filter_map(|k| map.remove(&k).and_then(|w| summary(&k, w, now))).collect()
    }
}

fn summary(actor_id: &str, w: Window, now: i64) -> Option<Suppressed> {
    (w.suppressed > 0).then(|| Suppressed {
        org_id: w.org_id,
        actor_kind: w.actor_kind,
        actor_id: actor_id.to_string(),
        ip: w.ip,
        count: w.suppressed,
        from: w.start,
        to: now.min(w.start + REFUSED_WINDOW_SECONDS),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: String,
    #[schema(schema_with = crate::service::doc::time)]
    pub at: String,
    /// user, service_account, app, or api_token (revocation by the holder, refused exchanges).
    pub actor_kind: String,
    #[schema(required = true)]
    pub actor_id: Option<String>,
    /// e.g. user.login, token.create, token.update, token.revoke, token.revoke_all,
    /// token.rotate, token.admin_revoke, token.exchange, user.create/update/delete,
    /// role.create/delete, service_account.create/update/delete, app.create/update/delete,
    /// app.secret.regenerate, policy.update, saved_search.create/delete; a refused mutating
    /// call is recorded as "METHOD /api/v1/route-pattern".
    pub action: String,
    #[schema(required = true)]
    pub object_kind: Option<String>,
    #[schema(required = true)]
    pub object_id: Option<String>,
    #[schema(required = true)]
    pub ip: Option<String>,
    #[schema(schema_with = audit_outcome)]
    pub outcome: String,
    /// Action-specific JSON (e.g. via_token, before/after).
    #[schema(required = true, value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

fn audit_outcome() -> utoipa::openapi::Object {
    crate::service::doc::one_of(&OUTCOMES)
}

/// The outcomes an audit event records (and the `outcome` filter accepts).
pub const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

/// Sort keys of the audit log.
pub const SORTS: [&str; 3] = ["at", "created_at", "action"];

/// The audit log's filters.
#[derive(Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Actor id.
    pub actor: Option<String>,
    /// user, service_account, app or api_token.
    pub actor_kind: Option<String>,
    /// Exact action, e.g. token.revoke.
    pub action: Option<String>,
    /// Object id.
    pub object: Option<String>,
    /// e.g. api_token, user, service_account, app, role, policy, saved_search.
    pub object_kind: Option<String>,
    // Documented in http::openapi (a schema_with parameter drops its doc comment).
    #[param(schema_with = audit_outcome)]
    pub outcome: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

/// What to show for ids in the log (emails, names; see `store::audit::labels`). Admins.
pub fn labels(
    conn: &mut AnyConnection,
    p: &Principal,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    p.require("org:admin")?;
    Ok(store::audit::labels(conn, &p.org_id, ids)?)
}

/// The people, service accounts and apps an actor or object picker offers: (id, label),
/// at most 500 of each kind. Admins.
pub fn directory(conn: &mut AnyConnection, p: &Principal) -> Result<Vec<(String, String)>> {
    p.require("org:admin")?;
    Ok(store::audit::directory(conn, &p.org_id, 500)?)
}

pub fn list(conn: &mut AnyConnection, p: &Principal, f: &AuditFilter, page: &Page) -> Result<Paged<AuditView>> {
    p.require("org:admin")?;
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(s) => {
                parse_rfc3339(s).map(Some).ok_or_else(|| crate::service::invalid(field, "expected an RFC 3339 time"))
            }
        }
    };
    let from = time("from", &f.from)?;
    let to = time("to", &f.to)?;
    if let Some(o) = &f.outcome {
        if !OUTCOMES.contains(&o.as_str()) {
            return Err(crate::service::invalid("outcome", "must be success, failure or denied"));
        }
    }
    page.check_sort(&SORTS)?;
    let filter = store::audit::Filter {
        actor: f.actor.as_deref(),
        actor_kind: f.actor_kind.as_deref(),
        action: f.action.as_deref(),
        object: f.object.as_deref(),
        object_kind: f.object_kind.as_deref(),
        outcome: f.outcome.as_deref(),
        from,
        to,
    };
    let rows = store::audit::list(conn, &p.org_id, &filter, page)?;
    Ok(page.view(rows, |r| AuditView {
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
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Acct;

    fn p(id: &str) -> Principal {
        Principal {
            org_id: "o".into(),
            acct: Acct::User,
            id: id.into(),
            roles: vec![],
            interactive: false,
            token_id: None,
            ip: Some("192.0.2.1".into()),
            sid: None,
            jti: "j".into(),
            exp: 0,
        }
    }

    #[test]
    fn truncates_with_a_marker() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(100);
        let t = truncate(&long);
        assert_eq!(t.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(t.ends_with('…'));
        assert_eq!(truncate(&"x".repeat(MAX_FIELD_CHARS)).len(), MAX_FIELD_CHARS);
    }

    #[test]
    fn floods_are_summarised() {
        let f = RefusalFlood::default();
        let (a, b) = (p("a"), p("b"));
        let writes = (0..100).filter(|_| f.admit(&a, 1000).0).count();
        assert_eq!(writes, REFUSED_ROWS_PER_WINDOW as usize);
        assert!(f.admit(&b, 1000).0, "another principal has its own budget");
        assert!(f.take_closed(1059, false).is_empty(), "the window is still open");
        // The next allowed write carries the summary of the closed window.
        let (write, sum) = f.admit(&a, 1060);
        assert!(write);
        let sum = sum.expect("a summary");
        assert_eq!((sum.count, sum.from, sum.to), (95, 1000, 1060));
        // Or the maintenance pass writes it once the window has closed.
        for _ in 0..10 {
            f.admit(&a, 1061);
        }
        assert!(f.take_closed(1100, false).is_empty());
        let closed = f.take_closed(1121, false);
        assert_eq!(closed.len(), 1, "only a's window had anything suppressed");
        assert_eq!(closed[0].count, 10 - (REFUSED_ROWS_PER_WINDOW as u64 - 1));
        assert!(f.take_closed(1200, true).is_empty(), "each summary is handed out once");
    }
}
