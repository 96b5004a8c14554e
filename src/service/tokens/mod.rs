//! API tokens (personal and service-account): creation with policy limits, the record
//! shown in lists, rename, revoke and rotate.
pub mod leaks;
pub mod lifecycle;
pub mod saved;
pub mod table;
pub mod usage;
pub mod vocab;
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::{parse_rfc3339, rfc3339};
use crate::config::Config;
use crate::secrets::{self, SecretKind};
use crate::service::authz::principal::idle_expired;
use crate::service::authz::reach::{self, Reach, ReachPolicy};
use crate::service::events::{self, Action, Event, Notice};
use crate::service::tokens::usage::Usage;
use crate::service::tokens::vocab::TokenStatus;
use crate::service::{invalid, new_id, Acct, Error, Principal, Result};
use crate::store::models::ApiToken;
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};

pub struct NewToken<'a> {
    pub org_id: &'a str,
    pub owner_kind: Acct,
    pub owner_id: &'a str,
    /// The owner's email (user) or name (service account).
    pub owner_label: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub roles: &'a [String],
    /// Unix seconds.
    pub expires_at: i64,
    pub idle_ttl_days: Option<i64>,
    pub created_by: Option<&'a str>,
    pub reach: &'a Reach,
    /// Who is shown the secret (JSON list of user ids, `ApiToken::secret_seen_by`).
    pub seen_by: String,
}

/// Stores a new token; returns the row and the secret (to be shown once).
pub fn insert(conn: &mut AnyConnection, t: NewToken<'_>, now: i64) -> Result<(ApiToken, String)> {
    let kind = if t.owner_kind == Acct::User { SecretKind::Personal } else { SecretKind::Service };
    let secret = secrets::generate(kind);
    let row = ApiToken {
        id: new_id(),
        org_id: t.org_id.to_string(),
        owner_kind: t.owner_kind.as_str().to_string(),
        owner_id: t.owner_id.to_string(),
        name: t.name.to_string(),
        description: t.description.to_string(),
        hint: secret.hint.clone(),
        secret_hash: secret.hash,
        roles: roles_to_text(t.roles),
        created_at: now,
        expires_at: t.expires_at,
        idle_ttl_days: t.idle_ttl_days,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        revoked_by: None,
        created_by: t.created_by.map(str::to_string),
        search: ApiToken::search_text(t.name, t.description, &secret.hint, t.owner_label),
        owner_label: t.owner_label.to_string(),
        audiences: t.reach.audiences_text(),
        management: t.reach.management,
        secret_seen_by: t.seen_by,
    };
    store::tokens::insert(conn, &row)?;
    Ok((row, secret.value))
}

/// An API token record (never the secret).
#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct TokenView {
    /// UUIDv7.
    pub id: String,
    /// The id a tool sends as `client_id` with this token as its client secret
    /// (client_credentials grant); the same as `id`, and the `client_id` claim of the access
    /// tokens it is exchanged for. Tools may also send the fixed id `api-token`.
    pub client_id: String,
    pub name: String,
    pub description: String,
    /// Non-secret prefix for recognition, e.g. tkd_pat_Ab12... (ends with U+2026).
    pub hint: String,
    #[schema(schema_with = crate::service::tokens::vocab::OwnerKind::schema)]
    pub owner_kind: String,
    pub owner_id: String,
    /// Roles fixed at creation; an exchange grants those the owner still holds.
    #[schema(schema_with = crate::service::authz::role::schema::roles)]
    pub roles: Vec<String>,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub expires_at: crate::service::Timestamp,
    /// Last exchange (RFC 3339), null if never used.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<crate::service::Timestamp>,
    #[schema(required = true)]
    pub last_used_ip: Option<String>,
    /// Copied from the policy at creation: unusable after this many days without use (null:
    /// no idle limit).
    #[schema(required = true)]
    pub idle_ttl_days: Option<i64>,
    #[schema(schema_with = TokenStatus::schema)]
    pub status: TokenStatus,
    /// RFC 3339, null unless revoked.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<crate::service::Timestamp>,
    /// Id of the principal that revoked it (the token's own id when revoked by its holder at
    /// /oauth/revoke).
    #[schema(required = true)]
    pub revoked_by: Option<String>,
    /// The resource audiences it may be exchanged for (["*"]: every configured one).
    pub audiences: Vec<String>,
    /// Whether it may be exchanged for the management API's audience.
    pub management: bool,
}

pub fn status(t: &ApiToken, usage: &Usage, now: i64) -> TokenStatus {
    if t.revoked_at.is_some() {
        TokenStatus::Revoked
    } else if t.expires_at <= now {
        TokenStatus::Expired
    } else if idle_expired(t, usage, now) {
        TokenStatus::Idle
    } else {
        TokenStatus::Active
    }
}

/// The status a list shows, from the token and its owner: an otherwise active token of a
/// disabled person or service account is `owner_disabled` (the exchange refuses it).
pub fn owner_status(mut v: TokenView, owner_disabled: bool) -> TokenView {
    if owner_disabled && v.status == TokenStatus::Active {
        v.status = TokenStatus::OwnerDisabled;
    }
    v
}

pub fn view(t: &ApiToken, usage: &Usage, now: i64) -> TokenView {
    let (last, last_ip) = match usage.pending(&t.id) {
        Some((at, ip)) if t.last_used_at.is_none_or(|db| at > db) => (Some(at), Some(ip)),
        _ => (t.last_used_at, t.last_used_ip.clone()),
    };
    TokenView {
        id: t.id.clone(),
        client_id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        hint: t.hint.clone(),
        owner_kind: t.owner_kind.clone(),
        owner_id: t.owner_id.clone(),
        roles: roles_from_text(&t.roles),
        created_at: crate::service::Timestamp::at(t.created_at),
        expires_at: crate::service::Timestamp::at(t.expires_at),
        last_used_at: last.map(crate::service::Timestamp::at),
        last_used_ip: last_ip,
        idle_ttl_days: t.idle_ttl_days,
        status: status(t, usage, now),
        revoked_at: t.revoked_at.map(crate::service::Timestamp::at),
        revoked_by: t.revoked_by.clone(),
        audiences: roles_from_text(&t.audiences),
        management: t.management,
    }
}

/// A created token: the record plus its secret, which is never shown again.
/// A new API token: the record plus the secret, shown in this response only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The secret: tkd_pat_... (personal) or tkd_sat_... (service account).
    pub token: String,
    #[serde(flatten)]
    pub record: TokenView,
}

/// A new API token. For a personal token `roles` is required and non-empty (nothing is
/// granted implicitly); for a service-account token it may be left out: the token then
/// carries the account's roles.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: crate::service::text::Name,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    /// Lifetime in days, from 1 to the policy's maximum (personal_token_max_ttl_days or
    /// service_token_max_ttl_days). Default: 30, or the maximum if lower.
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    pub ttl_days: Option<i64>,
    /// RFC 3339: an exact expiry instead of ttl_days (not both: 422). Must be in the future and
    /// at most the policy's maximum days from now.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::of_token)]
    pub roles: Option<Vec<String>>,
    /// Resource audiences (from TOKEND_AUDIENCES) it may be exchanged for, or ["*"] for all.
    /// Default: the policy's default_audiences.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub audiences: Option<Vec<String>>,
    /// Whether it may be exchanged for the management API. Default false: a script that
    /// manages tokend asks for it by name.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub management: Option<bool>,
}

/// Absent fields are unchanged. A revoked token cannot be changed (409). Narrowing
/// `audiences` or turning `management` off is an edit; widening either is minting (an
/// interactive login, 403 otherwise).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchToken {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::Name>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub audiences: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub management: Option<bool>,
}

crate::service::words!(
    /// Sort keys of one owner's token list.
    pub Sort { CreatedAt = "created_at", Name = "name", ExpiresAt = "expires_at" }
);

pub fn check_ttl(ttl: Option<i64>, max: i64) -> Result<i64> {
    let ttl = ttl.unwrap_or(30.min(max));
    if ttl < 1 || ttl > max {
        return Err(invalid("ttl_days", format!("must be from 1 to {max} (the organization's limit)")));
    }
    Ok(ttl)
}

/// The expiry of a new token: `ttl_days` (default 30, within the policy's maximum) or
/// `expires_at` (RFC 3339, in the future and within the policy's maximum), not both.
pub fn check_expiry(input: &CreateToken, max: i64, now: i64) -> Result<i64> {
    expiry(input.expires_at.as_deref(), input.ttl_days, max, now)
}

/// [`check_expiry`] of the two fields.
fn expiry(expires_at: Option<&str>, ttl_days: Option<i64>, max: i64, now: i64) -> Result<i64> {
    match (expires_at, ttl_days) {
        (Some(_), Some(_)) => Err(invalid("expires_at", "give ttl_days or expires_at, not both")),
        (Some(text), None) => {
            let at = parse_rfc3339(text).ok_or_else(|| invalid("expires_at", "must be an RFC 3339 time"))?;
            if at <= now {
                Err(invalid("expires_at", "must be in the future"))
            } else if at > now + max * 86_400 {
                Err(invalid("expires_at", format!("must be at most {max} days from now (the organization's limit)")))
            } else {
                Ok(at)
            }
        }
        (None, ttl) => Ok(now + check_ttl(ttl, max)? * 86_400),
    }
}

/// Loads a token of `owner_id` in the org, or NotFound.
pub fn load_owned(conn: &mut AnyConnection, org_id: &str, owner_id: &str, id: &str) -> Result<ApiToken> {
    store::tokens::find_owned(conn, org_id, owner_id, id)?.ok_or(Error::NotFound)
}

/// Renames, re-describes or re-scopes (reach) a token; a revoked token is frozen.
pub fn update(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    t: ApiToken,
    input: &PatchToken,
    usage: &Usage,
    now: i64,
) -> Result<TokenView> {
    let name = input.name.as_deref().map(str::to_string);
    let description = input.description.as_deref().map(str::to_string);
    if t.revoked_at.is_some() {
        return Err(Error::Conflict("a revoked token cannot be changed".into()));
    }
    let mut t = t;
    if let Some(n) = name {
        t.name = n;
    }
    if let Some(d) = description {
        t.description = d;
    }
    let mut detail = serde_json::json!({"name": t.name});
    if input.audiences.is_some() || input.management.is_some() {
        let before = Reach::from_row(&t.audiences, t.management);
        let policy = ReachPolicy::of(&crate::service::org::policy::get(conn, &p.org_id)?);
        let roles = roles_from_text(&t.roles);
        let after = reach::for_change(cfg, p, &policy, &before, input.audiences.as_deref(), input.management, &roles)?;
        detail["reach"] = serde_json::json!({"before": before, "after": after});
        t.audiences = after.audiences_text();
        t.management = after.management;
    }
    t.search = ApiToken::search_text(&t.name, &t.description, &t.hint, &t.owner_label);
    store::tokens::set_editable(conn, &t)?;
    events::emit(conn, Event::by(p, Action::TokenUpdate, "api_token", &t.id).detail(detail), now)?;
    Ok(view(&t, usage, now))
}

/// Revokes one token (idempotent: the first revocation's time and author stay). Answers
/// whether this call revoked it (false when a concurrent call already had).
pub fn revoke(conn: &mut AnyConnection, p: &Principal, t: &ApiToken, action: Action, now: i64) -> Result<bool> {
    if t.revoked_at.is_some() {
        return Ok(false);
    }
    let n = store::tokens::revoke(conn, &t.id, &p.id, now)?;
    if n == 1 {
        let ev = Event::by(p, action, "api_token", &t.id).notice(Notice::TokenRevoked { token: t, mail: true });
        events::emit(conn, ev, now)?;
    }
    Ok(n == 1)
}

/// Revokes every live token of one owner (revoke-all, and deleting a user or service account).
pub fn revoke_owned(conn: &mut AnyConnection, p: &Principal, owner_id: &str, now: i64) -> Result<usize> {
    let live = store::webhooks::live_tokens_of(conn, &p.org_id, owner_id)?;
    let notices: Vec<Notice> = live.iter().map(|t| Notice::TokenRevoked { token: t, mail: false }).collect();
    events::notify(conn, &p.org_id, Some(events::Actor::of(p)), &notices, now)?;
    Ok(store::tokens::revoke_owned(conn, &p.org_id, owner_id, &p.id, now)?)
}

// ---- personal tokens (/api/v1/me/tokens) ----

pub fn my_get(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<TokenView> {
    Ok(view(&load_owned(conn, &p.org_id, p.user_id()?, id)?, usage, now))
}

pub fn my_create(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    input: &CreateToken,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    let user_id = p.user_id()?.to_string();
    p.require_interactive()?;
    let name = input.name.to_string();
    let description = input.description.as_deref().unwrap_or("").to_string();
    conn.transaction(|conn| {
        let policy = crate::service::org::policy::get(conn, &p.org_id)?;
        let expires_at = check_expiry(input, policy.personal_token_max_ttl_days, now)?;
        let email = store::principals::user_email(conn, &user_id)?;
        // Least privilege: a personal token carries only the roles named for it.
        let roles = match &input.roles {
            Some(r) if !r.is_empty() => {
                crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, r)?;
                r.clone()
            }
            Some(_) => return Err(invalid("roles", "must name at least one role")),
            None => return Err(invalid("roles", "is required: name the roles this token carries")),
        };
        let reach =
            reach::for_new(cfg, &ReachPolicy::of(&policy), input.audiences.as_deref(), input.management, &roles)?;
        let (row, secret) = insert(
            conn,
            NewToken {
                org_id: &p.org_id,
                owner_kind: Acct::User,
                owner_id: &user_id,
                owner_label: &email,
                name: &name,
                description: &description,
                roles: &roles,
                expires_at,
                idle_ttl_days: policy.idle_ttl_days,
                created_by: Some(&p.id),
                reach: &reach,
                seen_by: roles_to_text(std::slice::from_ref(&p.id)),
            },
            now,
        )?;
        let detail = serde_json::json!({"name": row.name, "roles": roles, "expires_at": rfc3339(expires_at),
            "audiences": reach.audiences, "management": reach.management});
        let ev = Event::by(p, Action::TokenCreate, "api_token", &row.id)
            .detail(detail)
            .notice(Notice::TokenCreated { token: &row, rotated_from: None });
        events::emit(conn, ev, now)?;
        Ok(CreatedToken { token: secret, record: view(&row, usage, now) })
    })
}

pub fn my_patch(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    id: &str,
    input: &PatchToken,
    usage: &Usage,
    now: i64,
) -> Result<TokenView> {
    conn.transaction(|conn| {
        let t = load_owned(conn, &p.org_id, p.user_id()?, id)?;
        update(conn, cfg, p, t, input, usage, now)
    })
}

pub fn my_revoke(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    conn.transaction(|conn| {
        let t = load_owned(conn, &p.org_id, p.user_id()?, id)?;
        revoke(conn, p, &t, Action::TokenRevoke, now).map(|_| ())
    })
}

/// How many of the caller's tokens `my_revoke_all` would revoke now (those not revoked).
pub fn my_unrevoked(conn: &mut AnyConnection, p: &Principal) -> Result<i64> {
    Ok(store::tokens::count_unrevoked(conn, &p.org_id, p.user_id()?)?)
}

/// The successors of the caller's rotated tokens among `ids` (old id → successor), from the
/// audit log's `token.rotate` events; only successors the caller owns.
pub fn my_successors(
    conn: &mut AnyConnection,
    p: &Principal,
    ids: &[String],
    usage: &Usage,
    now: i64,
) -> Result<std::collections::HashMap<String, TokenView>> {
    let user_id = p.user_id()?.to_string();
    let mut out = std::collections::HashMap::new();
    for (old, new) in store::audit::successors(conn, &p.org_id, ids)? {
        if let Some(t) = store::tokens::find_owned(conn, &p.org_id, &user_id, &new)? {
            out.insert(old, view(&t, usage, now));
        }
    }
    Ok(out)
}

pub fn my_revoke_all(conn: &mut AnyConnection, p: &Principal, now: i64) -> Result<usize> {
    let user_id = p.user_id()?.to_string();
    conn.transaction(|conn| {
        let n = revoke_owned(conn, p, &user_id, now)?;
        events::emit(
            conn,
            Event::by(p, Action::TokenRevokeAll, "user", &user_id).detail(serde_json::json!({"revoked": n})),
            now,
        )?;
        Ok(n)
    })
}

/// A new secret with the same settings; the old token is revoked in the same transaction.
pub fn my_rotate(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<CreatedToken> {
    p.require_interactive()?;
    conn.transaction(|conn| {
        let old = load_owned(conn, &p.org_id, p.user_id()?, id)?;
        let max_days = crate::service::org::policy::get(conn, &p.org_id)?.personal_token_max_ttl_days;
        rotate(conn, p, &old, &roles_from_text(&old.roles), max_days, usage, now)
    })
}

/// The new expiry of a regenerated personal token: `ttl_days` or `expires_at`, as at
/// creation (within the policy's maximum, not both); neither keeps the old lifetime (capped
/// by the policy), as a rotation does.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// Lifetime in days from now, from 1 to personal_token_max_ttl_days.
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    pub ttl_days: Option<i64>,
    /// RFC 3339: an exact expiry instead of ttl_days (not both: 422), in the future and within
    /// the policy's maximum.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
}

/// Rotation with a new expiry: a new secret with the same name, description, roles and
/// reach, expiring as `input` says; the old token is revoked in the same transaction.
pub fn my_regenerate(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    input: &Regenerate,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    p.require_interactive()?;
    conn.transaction(|conn| {
        let old = load_owned(conn, &p.org_id, p.user_id()?, id)?;
        let max_days = crate::service::org::policy::get(conn, &p.org_id)?.personal_token_max_ttl_days;
        let roles = roles_from_text(&old.roles);
        if input.ttl_days.is_none() && input.expires_at.is_none() {
            return rotate(conn, p, &old, &roles, max_days, usage, now);
        }
        let expires_at = expiry(input.expires_at.as_deref(), input.ttl_days, max_days, now)?;
        rotate_until(conn, p, &old, &roles, expires_at, usage, now)
    })
}

/// Replaces `old` by a successor carrying `roles`, with the same name, description, idle
/// TTL and lifetime (capped by `max_days`); `old` is revoked first, in the caller's
/// transaction, so the successor and the revocation commit together.
pub fn rotate(
    conn: &mut AnyConnection,
    p: &Principal,
    old: &ApiToken,
    roles: &[String],
    max_days: i64,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    let lifetime = (old.expires_at - old.created_at).clamp(1, max_days * 86_400);
    rotate_until(conn, p, old, roles, now + lifetime, usage, now)
}

/// [`rotate`] with the successor's expiry given.
pub fn rotate_until(
    conn: &mut AnyConnection,
    p: &Principal,
    old: &ApiToken,
    roles: &[String],
    expires_at: i64,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    if !crate::service::authz::principal::token_live(old, usage, now) {
        return Err(Error::Conflict(format!(
            "only an active token can be rotated; this one is {}",
            status(old, usage, now)
        )));
    }
    // Revoke first and insist on winning: a concurrent revoke or rotate of the same token
    // must not leave a live successor (PostgreSQL runs them in parallel).
    if !revoke(conn, p, old, Action::TokenRevoke, now)? {
        return Err(Error::Conflict("the token was revoked concurrently".into()));
    }
    // A person rotating sees the new secret; a token rotating itself hands it to whoever
    // held the old one, so they stay its holders.
    let seen_by =
        if p.acct == Acct::User { roles_to_text(std::slice::from_ref(&p.id)) } else { old.secret_seen_by.clone() };
    let (row, secret) = insert(
        conn,
        NewToken {
            org_id: &old.org_id,
            owner_kind: Acct::parse(&old.owner_kind).unwrap_or(Acct::User),
            owner_id: &old.owner_id,
            owner_label: &old.owner_label,
            name: &old.name,
            description: &old.description,
            roles,
            expires_at,
            idle_ttl_days: old.idle_ttl_days,
            created_by: Some(&p.id),
            // Rotation keeps where the token reaches.
            reach: &Reach::from_row(&old.audiences, old.management),
            seen_by,
        },
        now,
    )?;
    let ev = Event::by(p, Action::TokenRotate, "api_token", &old.id)
        .detail(serde_json::json!({"new_token": row.id}))
        .notice(Notice::TokenCreated { token: &row, rotated_from: Some(&old.id) });
    events::emit(conn, ev, now)?;
    Ok(CreatedToken { token: secret, record: view(&row, usage, now) })
}

/// `POST /api/v1/tokens/self/rotate` with the API token itself as the bearer: allowed only
/// when the org's policy says `allow_self_rotation`. The successor never widens anything:
/// its roles are the old token's roles ∩ the owner's current roles, its lifetime the old
/// one's capped by today's policy maximum; the old token is revoked in the same transaction.
pub fn self_rotate(conn: &mut AnyConnection, secret: &str, ip: &str, usage: &Usage, now: i64) -> Result<CreatedToken> {
    use crate::service::oauth::exchange::GrantError;
    conn.transaction(|conn| {
        let (grant, acct, owner_roles, _) = crate::service::oauth::exchange::check_token(conn, secret, usage, now)
            .map_err(|e| match e {
                // Never says which check failed (unknown, revoked, expired, idle, owner disabled).
                GrantError::InvalidGrant { .. } => Error::Unauthorized("the bearer is not a live API token".into()),
                GrantError::Store(s) => Error::Store(s),
                GrantError::Service(e) => e,
                other => Error::Internal(Box::new(other)),
            })?;
        let policy = crate::service::org::policy::get(conn, &grant.org_id)?;
        if !policy.allow_self_rotation {
            return Err(Error::Forbidden(
                "this organization does not allow API tokens to rotate themselves (policy allow_self_rotation)".into(),
            ));
        }
        let old = store::tokens::get(conn, &grant.id)?;
        let roles =
            crate::service::RoleSet::from_text(&old.roles).intersect(&owner_roles.as_slice().into()).to_strings();
        if roles.is_empty() {
            return Err(Error::Conflict("the owner no longer holds any of this token's roles".into()));
        }
        let max_days = match acct {
            Acct::ServiceAccount => {
                // Counted one after another with creations; the replaced token does not
                // count (as for an admin's rotation).
                store::principals::lock_account(conn, &old.owner_id)?;
                let others = store::tokens::count_live_except(conn, &old.owner_id, &old.id, now)?;
                if others >= policy.max_tokens_per_service_account {
                    return Err(Error::Conflict(format!(
                        "service account already has {others} other live tokens (limit {})",
                        policy.max_tokens_per_service_account
                    )));
                }
                policy.service_token_max_ttl_days
            }
            _ => policy.personal_token_max_ttl_days,
        };
        // The token acts for its owner, non-interactively.
        let p = Principal {
            org_id: old.org_id.clone(),
            acct,
            id: old.owner_id.clone(),
            roles: roles.clone().into(),
            interactive: false,
            token_id: Some(old.id.clone()),
            ip: Some(ip.to_string()),
            sid: None,
            jti: String::new(),
            exp: now,
        };
        rotate(conn, &p, &old, &roles, max_days, usage, now)
    })
}
