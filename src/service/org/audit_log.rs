//! The audit log as read back (`GET /api/v1/audit`, the console's audit page): the rows
//! `events::audit` wrote, for an org admin.
use serde::Serialize;

use crate::clock::parse_rfc3339;
use crate::service::events::audit::Outcome;
use crate::service::list::{Page, Paged};
use crate::service::{Principal, Result};
use crate::store::{self, AnyConnection};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: String,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub at: crate::service::Timestamp,
    /// user, service_account, app, or api_token (revocation by the holder, refused exchanges).
    pub actor_kind: String,
    #[schema(required = true)]
    pub actor_id: Option<String>,
    /// e.g. user.login, token.create, token.update, token.revoke, token.revoke_all,
    /// token.rotate, token.admin_revoke, token.exchange, user.create/update/delete,
    /// role.create/update/delete, service_account.create/update/delete, app.create/update/delete,
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

crate::service::param_schema!(OutcomeParam, audit_outcome);
fn audit_outcome() -> utoipa::openapi::Object {
    crate::service::one_of(&Outcome::ALL.map(Outcome::as_str))
}

crate::service::words!(
    /// Sort keys of the audit log.
    pub Sort { At = "at", CreatedAt = "created_at", Action = "action" }
);

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
    /// Outcome.
    #[param(value_type = Option<OutcomeParam>, inline)]
    pub outcome: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

pub fn list(conn: &mut AnyConnection, p: &Principal, f: &AuditFilter, page: &Page) -> Result<Paged<AuditView>> {
    p.require(crate::service::Role::OrgAdmin)?;
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
        if !Outcome::ALL.iter().any(|x| x.as_str() == o) {
            return Err(crate::service::invalid("outcome", "must be success, failure or denied"));
        }
    }
    page.check_sort::<Sort>()?;
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
        at: crate::service::Timestamp::at(r.at),
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

/// What to show for ids in the log (emails, names; see `store::audit::labels`). Admins.
pub fn labels(
    conn: &mut AnyConnection,
    p: &Principal,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    p.require(crate::service::authz::roles::Role::OrgAdmin)?;
    Ok(store::audit::labels(conn, &p.org_id, ids)?)
}

/// The people, service accounts, apps and API tokens an actor or object picker offers: (id, label),
/// at most 500 of each kind. Admins.
pub fn directory(conn: &mut AnyConnection, p: &Principal) -> Result<Vec<(String, String)>> {
    p.require(crate::service::authz::roles::Role::OrgAdmin)?;
    Ok(store::audit::directory(conn, &p.org_id, 500)?)
}
