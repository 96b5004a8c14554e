//! Per-org token policy: maximum TTLs, idle TTL, the service-account token cap, how long
//! ended tokens are kept (`retention_days`) and whether tokens may rotate themselves.
use diesel::Connection;
use serde::Serialize;

use crate::config::Config;
use crate::service::events::{self, Action, Event};
use crate::service::{invalid, Principal, Result};
use crate::store::models::Policy;
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};
use utoipa::ToSchema;

pub const MAX_DAYS: i64 = 3650;
/// Days revoked and expired tokens stay listed (and stored) by default.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

pub fn defaults(org_id: &str) -> Policy {
    Policy {
        org_id: org_id.to_string(),
        personal_token_max_ttl_days: 30,
        service_token_max_ttl_days: 365,
        idle_ttl_days: None,
        max_tokens_per_service_account: 20,
        updated_at: 0,
        retention_days: DEFAULT_RETENTION_DAYS,
        allow_self_rotation: false,
        default_audiences: crate::service::authz::reach::ALL_TEXT.to_string(),
        allow_management_audience_for: None,
    }
}

pub fn get(conn: &mut AnyConnection, org_id: &str) -> Result<Policy> {
    Ok(store::org::policy(conn, org_id)?.unwrap_or_else(|| defaults(org_id)))
}

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    #[schema(minimum = 1, maximum = 3650, default = 30)]
    pub personal_token_max_ttl_days: i64,
    #[schema(minimum = 1, maximum = 3650, default = 365)]
    pub service_token_max_ttl_days: i64,
    /// Days without use after which a token created under this policy is unusable (null:
    /// no idle limit).
    #[schema(required = true, minimum = 1, maximum = 3650)]
    pub idle_ttl_days: Option<i64>,
    #[schema(minimum = 1, maximum = 1000, default = 20)]
    pub max_tokens_per_service_account: i64,
    /// Days a revoked or expired token stays listed before it is purged (its audit rows stay).
    #[schema(minimum = 1, maximum = 3650)]
    pub retention_days: i64,
    /// Whether an API token may rotate itself (`POST /api/v1/tokens/self/rotate`).
    pub allow_self_rotation: bool,
    /// The audiences new API tokens and apps reach when their request names none
    /// (["*"]: every configured resource audience).
    pub default_audiences: Vec<String>,
    /// Roles of which a credential must carry one to reach the management API (null: any
    /// credential created for it).
    #[schema(required = true)]
    pub allow_management_audience_for: Option<Vec<String>>,
    /// RFC 3339; null while the org still has the default policy.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<crate::service::Timestamp>,
}

/// The body of `PUT /api/v1/policy` (read by `update` from JSON, field by field). Named
/// fields are replaced, absent ones keep their value. Unknown fields and out-of-range values
/// are 422. Applies to tokens created afterwards.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PolicyUpdate {
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    personal_token_max_ttl_days: Option<i64>,
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    service_token_max_ttl_days: Option<i64>,
    /// null removes the idle limit.
    #[schema(minimum = 1, maximum = 3650)]
    idle_ttl_days: Option<i64>,
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    max_tokens_per_service_account: Option<i64>,
    /// Days a revoked or expired token stays listed before it is purged.
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    retention_days: Option<i64>,
    /// Whether an API token may rotate itself.
    #[schema(nullable = false)]
    allow_self_rotation: Option<bool>,
    /// Resource audiences (or ["*"]) new credentials reach when their request names none.
    #[schema(nullable = false)]
    default_audiences: Option<Vec<String>>,
    /// Roles of which a credential must carry one to reach the management API; null lifts
    /// the restriction.
    allow_management_audience_for: Option<Vec<String>>,
    /// Read-only: accepted and ignored, so a PUT of exactly what GET returned succeeds.
    #[schema(read_only)]
    updated_at: Option<String>,
}

pub fn view(p: &Policy) -> PolicyView {
    PolicyView {
        personal_token_max_ttl_days: p.personal_token_max_ttl_days,
        service_token_max_ttl_days: p.service_token_max_ttl_days,
        idle_ttl_days: p.idle_ttl_days,
        max_tokens_per_service_account: p.max_tokens_per_service_account,
        retention_days: p.retention_days,
        allow_self_rotation: p.allow_self_rotation,
        default_audiences: roles_from_text(&p.default_audiences),
        allow_management_audience_for: p.allow_management_audience_for.as_deref().map(roles_from_text),
        updated_at: (p.updated_at > 0).then(|| crate::service::Timestamp::at(p.updated_at)),
    }
}

pub fn read(conn: &mut AnyConnection, p: &Principal) -> Result<PolicyView> {
    p.require(crate::service::Role::OrgAdmin)?;
    Ok(view(&get(conn, &p.org_id)?))
}

fn int_field(body: &serde_json::Value, field: &str, lo: i64, hi: i64) -> Result<Option<Option<i64>>> {
    match body.get(field) {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_number().and_then(crate::service::whole) {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(Some(n))),
            _ => Err(invalid(field, format!("must be an integer from {lo} to {hi}"))),
        },
    }
}

/// The fields `update` reads: `PolicyUpdate`'s (a unit test in http::openapi holds them equal).
pub const UPDATE_FIELDS: [&str; 8] = [
    "personal_token_max_ttl_days",
    "service_token_max_ttl_days",
    "idle_ttl_days",
    "max_tokens_per_service_account",
    "retention_days",
    "allow_self_rotation",
    "default_audiences",
    "allow_management_audience_for",
];

/// A list of strings from the body: absent → None, null → Some(None) (where allowed).
fn list_field(body: &serde_json::Value, field: &str) -> Result<Option<Option<Vec<String>>>> {
    match body.get(field) {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
            .map(|l| Some(Some(l)))
            .map_err(|_| invalid(field, "must be a list of strings")),
    }
}
/// Read-only fields of the GET body are accepted and ignored, so that a PUT of exactly what
/// GET returned succeeds (read-modify-write clients); unknown fields are refused.
pub const READ_ONLY_FIELDS: [&str; 1] = ["updated_at"];

/// Whether `after` lets tokens do more than `before`: self-rotation turned on, a longer
/// maximum TTL, a larger token cap, a longer or no idle limit (retention is not power).
/// Such a change needs an interactive login; a bearer derived from an API token only narrows.
pub fn widens(before: &Policy, after: &Policy) -> bool {
    let idle = |d: Option<i64>| d.unwrap_or(i64::MAX);
    (after.allow_self_rotation && !before.allow_self_rotation)
        || after.personal_token_max_ttl_days > before.personal_token_max_ttl_days
        || after.service_token_max_ttl_days > before.service_token_max_ttl_days
        || after.max_tokens_per_service_account > before.max_tokens_per_service_account
        || idle(after.idle_ttl_days) > idle(before.idle_ttl_days)
        || reaches_further(before, after)
}

/// Whether new credentials may reach further under `after`: wider default audiences, or
/// the management API open to more roles (or to any).
fn reaches_further(before: &Policy, after: &Policy) -> bool {
    use crate::service::authz::reach::{Reach, ReachPolicy};
    let (b, a) = (ReachPolicy::of(before), ReachPolicy::of(after));
    let defaults = |p: &ReachPolicy| Reach { audiences: p.default_audiences.clone(), management: false };
    let management = match (&b.management_roles, &a.management_roles) {
        (Some(_), None) => true,
        (Some(was), Some(now)) => now.iter().any(|r| !was.contains(r)),
        (None, _) => false,
    };
    !defaults(&b).covers(&defaults(&a)) || management
}

/// Replaces the named fields (absent fields keep their value); audited with before/after.
pub fn update(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    body: &serde_json::Value,
    now: i64,
) -> Result<PolicyView> {
    p.require(crate::service::Role::OrgOwner)?;
    let obj = body.as_object().ok_or_else(|| invalid("body", "expected a JSON object"))?;
    if let Some(k) =
        obj.keys().find(|k| !UPDATE_FIELDS.contains(&k.as_str()) && !READ_ONLY_FIELDS.contains(&k.as_str()))
    {
        return Err(invalid(k, "unknown field"));
    }
    match obj.get("updated_at") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => {}
        Some(_) => return Err(invalid("updated_at", "is read-only: a string or null, and ignored")),
    }
    let required = |field: &str, v: Option<Option<i64>>, cur: i64| -> Result<i64> {
        match v {
            None => Ok(cur),
            Some(Some(n)) => Ok(n),
            Some(None) => Err(invalid(field, "must not be null")),
        }
    };
    let self_rotation = match obj.get("allow_self_rotation") {
        None => None,
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("allow_self_rotation", "must be true or false")),
    };
    let default_audiences = match list_field(body, "default_audiences")? {
        None => None,
        Some(None) => return Err(invalid("default_audiences", "must not be null")),
        Some(Some(l)) => Some(crate::service::authz::reach::check_audiences(cfg, "default_audiences", &l)?),
    };
    let management_roles = list_field(body, "allow_management_audience_for")?;
    conn.transaction(|conn| {
        let before = get(conn, &p.org_id)?;
        if let Some(Some(roles)) = &management_roles {
            if roles.is_empty() {
                return Err(invalid("allow_management_audience_for", "name at least one role, or null for any"));
            }
            crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, roles)?;
        }
        let after = Policy {
            org_id: p.org_id.clone(),
            personal_token_max_ttl_days: required(
                "personal_token_max_ttl_days",
                int_field(body, "personal_token_max_ttl_days", 1, MAX_DAYS)?,
                before.personal_token_max_ttl_days,
            )?,
            service_token_max_ttl_days: required(
                "service_token_max_ttl_days",
                int_field(body, "service_token_max_ttl_days", 1, MAX_DAYS)?,
                before.service_token_max_ttl_days,
            )?,
            idle_ttl_days: int_field(body, "idle_ttl_days", 1, MAX_DAYS)?.unwrap_or(before.idle_ttl_days),
            max_tokens_per_service_account: required(
                "max_tokens_per_service_account",
                int_field(body, "max_tokens_per_service_account", 1, 1000)?,
                before.max_tokens_per_service_account,
            )?,
            updated_at: now,
            retention_days: required(
                "retention_days",
                int_field(body, "retention_days", 1, MAX_DAYS)?,
                before.retention_days,
            )?,
            allow_self_rotation: self_rotation.unwrap_or(before.allow_self_rotation),
            default_audiences: default_audiences.map(|l| roles_to_text(&l)).unwrap_or(before.default_audiences.clone()),
            allow_management_audience_for: match &management_roles {
                None => before.allow_management_audience_for.clone(),
                Some(l) => l.as_deref().map(roles_to_text),
            },
        };
        if widens(&before, &after) {
            p.require_interactive()?;
        }
        let exists = before.updated_at > 0;
        store::org::save_policy(conn, &after, exists)?;
        let json = |v| serde_json::to_value(v).map_err(|e| crate::service::Error::Internal(Box::new(e)));
        let (was, is) = (json(view(&before))?, json(view(&after))?);
        let ev = Event::by(p, Action::PolicyUpdate, "policy", &p.org_id)
            .detail(serde_json::json!({"before": was, "after": is}))
            .notice(events::Notice::PolicyChanged { before: was, after: is });
        events::emit(conn, ev, now)?;
        Ok(view(&after))
    })
}
