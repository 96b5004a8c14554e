//! Trust policies (`/api/v1/trust-policies`) and apps' delegation allowances
//! (`/api/v1/apps/{id}/delegation`): the rules an admin sets, validated here.
//!
//! Creating a policy, and any change that could widen what it lets through (issuer,
//! audience, conditions, service account, more roles, a longer max age, re-enabling), is
//! minting a credential: org:admin, every role of the mapped service account, and an
//! interactive login. Narrowing (fewer roles, shorter max age, disabling, renaming) and
//! deleting need org:admin only.
use std::collections::BTreeMap;

use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::service::authz::roles::{Role, RoleSet};
use crate::service::events::{self, Action, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::{check_text, invalid, new_id, Error, Principal, Result};
use crate::store::trust_policies::{Delegation, TrustPolicy};
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};

use super::conditions;

/// Policies one org may hold.
pub const MAX_POLICIES: i64 = 100;
/// Conditions one policy may hold.
pub const MAX_CONDITIONS: usize = 20;
/// Default and bounds of `max_age_seconds`.
pub const DEFAULT_MAX_AGE: i64 = 3600;
pub const MIN_MAX_AGE: i64 = 60;
pub const MAX_MAX_AGE: i64 = 86_400;

crate::service::words!(
    /// Sort keys of the trust-policy list.
    pub Sort { CreatedAt = "created_at", Name = "name", Issuer = "issuer" }
);

fn conditions_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Object)
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(500)),
        ))
        .min_properties(Some(1))
        .max_properties(Some(MAX_CONDITIONS))
        .description(Some(
            "Claim → pattern. Every condition must hold. A claim name is looked up at the top level of the \
             external token's claims, then as a path with / between levels (kubernetes.io/namespace). A string, \
             number or boolean claim is compared as text; an array claim matches when one element does. Patterns: \
             exact text, or * (any run of characters, / included) and ? (one character). At least one condition \
             must not be only wildcards.",
        ))
        .build()
}

fn max_age_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Integer)
        .minimum(Some(MIN_MAX_AGE))
        .maximum(Some(MAX_MAX_AGE))
        .default(Some(DEFAULT_MAX_AGE.into()))
        .description(Some(
            "How old (by its iat claim) an external token may be when it is exchanged, in seconds. Replays within \
             the external token's life are allowed; tokens older than this are not.",
        ))
        .build()
}

fn issuer_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into())))
        .max_length(Some(500))
        .description(Some(
            "The external issuer, exactly as its tokens' iss (e.g. https://token.actions.githubusercontent.com). \
             https only (http only for loopback addresses, for tests). Its keys are found through \
             {issuer}/.well-known/openid-configuration.",
        ))
        .build()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustPolicy {
    pub name: crate::service::text::Name,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[schema(schema_with = issuer_schema)]
    pub issuer: String,
    /// The aud the external tokens must carry (one of theirs, exactly).
    #[schema(min_length = 1, max_length = 500)]
    pub audience: String,
    #[schema(schema_with = conditions_schema)]
    pub conditions: BTreeMap<String, String>,
    /// The service account the external identity becomes (sub of the issued tokens). The
    /// caller must hold every role it holds.
    pub service_account_id: String,
    /// The roles an exchange may grant: a non-empty subset of the service account's roles.
    #[schema(schema_with = crate::service::authz::role::schema::granted)]
    pub roles: Vec<String>,
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(schema_with = max_age_schema)]
    pub max_age_seconds: Option<i64>,
}

/// Absent fields are unchanged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicyPatch {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::Name>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = issuer_schema)]
    pub issuer: Option<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(min_length = 1, max_length = 500, nullable = false)]
    pub audience: Option<String>,
    /// Replaces every condition.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = conditions_schema)]
    pub conditions: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub service_account_id: Option<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::replaced)]
    pub roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(schema_with = max_age_schema)]
    pub max_age_seconds: Option<i64>,
    /// A disabled policy lets nothing through; re-enabling needs an interactive login.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct TrustPolicyView {
    pub id: String,
    pub name: String,
    pub description: String,
    #[schema(format = "uri")]
    pub issuer: String,
    pub audience: String,
    #[schema(schema_with = conditions_schema)]
    pub conditions: BTreeMap<String, String>,
    pub service_account_id: String,
    #[schema(schema_with = crate::service::authz::role::schema::roles)]
    pub roles: Vec<String>,
    pub max_age_seconds: i64,
    pub disabled: bool,
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: String,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub updated_at: String,
}

pub fn view(p: &TrustPolicy) -> TrustPolicyView {
    TrustPolicyView {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        issuer: p.issuer.clone(),
        audience: p.audience.clone(),
        conditions: conditions_of(p),
        service_account_id: p.service_account_id.clone(),
        roles: roles_from_text(&p.roles),
        max_age_seconds: p.max_age_seconds,
        disabled: p.disabled,
        created_by: p.created_by.clone(),
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    }
}

/// The stored conditions (an object of strings; anything else reads as no conditions,
/// which `conditions::all_hold` refuses).
pub fn conditions_of(p: &TrustPolicy) -> BTreeMap<String, String> {
    serde_json::from_str(&p.conditions).unwrap_or_default()
}

/// An issuer URL tokend may fetch keys from: https, or http to a loopback address; no
/// user info, query or fragment.
pub fn check_issuer(value: &str) -> Result<String> {
    let v = check_text("issuer", value, 1, 500)?;
    let url = url::Url::parse(&v).map_err(|_| invalid("issuer", "must be an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("issuer", "must not carry user info, a query or a fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(v),
        "http" if super::jwks::loopback(&url) => Ok(v),
        _ => Err(invalid("issuer", "must be an https URL (http only for loopback addresses)")),
    }
}

fn check_conditions(c: &BTreeMap<String, String>) -> Result<String> {
    if c.is_empty() || c.len() > MAX_CONDITIONS {
        return Err(invalid(
            "conditions",
            format!("must hold 1 to {MAX_CONDITIONS} conditions: an issuer such as GitHub Actions signs tokens for everyone"),
        ));
    }
    for (claim, pattern) in c {
        let n = claim.chars().count();
        if n == 0 || n > 100 || claim.chars().any(char::is_control) {
            return Err(invalid("conditions", "a claim name must be 1 to 100 characters without control characters"));
        }
        let n = pattern.chars().count();
        if n == 0 || n > 500 || pattern.chars().any(char::is_control) {
            return Err(invalid("conditions", format!("{claim}: a pattern must be 1 to 500 characters")));
        }
    }
    if c.values().all(|p| conditions::only_wildcards(p)) {
        return Err(invalid("conditions", "at least one condition must name something (not only * and ?)"));
    }
    Ok(serde_json::to_string(c).unwrap_or_else(|_| "{}".into()))
}

fn check_max_age(v: Option<i64>) -> Result<Option<i64>> {
    match v {
        Some(s) if !(MIN_MAX_AGE..=MAX_MAX_AGE).contains(&s) => {
            Err(invalid("max_age_seconds", format!("must be from {MIN_MAX_AGE} to {MAX_MAX_AGE}")))
        }
        v => Ok(v),
    }
}

/// The service account a policy maps to: live, of the caller's org, and held entirely by
/// the caller; the policy's roles must be a non-empty subset of its roles that the caller
/// may grant.
fn check_mapping(
    conn: &mut AnyConnection,
    p: &Principal,
    sa_id: &str,
    roles: &[String],
) -> Result<crate::store::models::ServiceAccount> {
    let sa = store::principals::live_account(conn, &p.org_id, sa_id)?
        .ok_or_else(|| invalid("service_account_id", "no such service account in this organization"))?;
    let sa_roles = roles_from_text(&sa.roles);
    p.require_holds_all(&sa_roles, "service account")?;
    if roles.is_empty() {
        return Err(invalid("roles", "must name at least one role (nothing is granted implicitly)"));
    }
    if let Some(r) = roles.iter().find(|r| !RoleSet::from(sa_roles.as_slice()).holds(r)) {
        return Err(invalid("roles", format!("role {r:?} is not held by the service account")));
    }
    crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, roles)?;
    Ok(sa)
}

fn sorted(roles: &[String]) -> Vec<String> {
    let mut v = roles.to_vec();
    v.sort();
    v.dedup();
    v
}

pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewTrustPolicy, now: i64) -> Result<TrustPolicyView> {
    p.require(Role::OrgAdmin)?;
    let name = input.name.to_string();
    let description = input.description.as_deref().unwrap_or("").to_string();
    let issuer = check_issuer(&input.issuer)?;
    let audience = check_text("audience", &input.audience, 1, 500)?;
    let conditions = check_conditions(&input.conditions)?;
    let max_age = check_max_age(input.max_age_seconds)?.unwrap_or(DEFAULT_MAX_AGE);
    let roles = sorted(&input.roles);
    conn.transaction(|conn| {
        check_mapping(conn, p, &input.service_account_id, &roles)?;
        // Minting: only after every check that could answer 403/422 for other reasons.
        p.require_interactive()?;
        if store::trust_policies::count(conn, &p.org_id)? >= MAX_POLICIES {
            return Err(Error::Conflict(format!("an organization holds at most {MAX_POLICIES} trust policies")));
        }
        let row = TrustPolicy {
            id: new_id(),
            org_id: p.org_id.clone(),
            name,
            description,
            issuer,
            audience,
            conditions,
            service_account_id: input.service_account_id.clone(),
            roles: roles_to_text(&roles),
            max_age_seconds: max_age,
            disabled: false,
            created_by: Some(p.id.clone()),
            created_at: now,
            updated_at: now,
        };
        store::trust_policies::insert(conn, &row)?;
        let detail = json!({"issuer": row.issuer, "service_account_id": row.service_account_id, "roles": roles});
        events::emit(conn, Event::by(p, Action::TrustPolicyCreate, "trust_policy", &row.id).detail(detail), now)?;
        Ok(view(&row))
    })
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<TrustPolicyView>> {
    p.require(Role::OrgAdmin)?;
    let page = pq.validate_sorted::<Sort>()?;
    let rows = store::trust_policies::list(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |r| view(&r)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<TrustPolicyView> {
    p.require(Role::OrgAdmin)?;
    Ok(view(&store::trust_policies::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)?))
}

pub fn patch(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    input: &TrustPolicyPatch,
    now: i64,
) -> Result<TrustPolicyView> {
    p.require(Role::OrgAdmin)?;
    let name = input.name.as_deref().map(str::to_string);
    let description = input.description.as_deref().map(str::to_string);
    let issuer = input.issuer.as_deref().map(check_issuer).transpose()?;
    let audience = input.audience.as_deref().map(|v| check_text("audience", v, 1, 500)).transpose()?;
    let conditions = input.conditions.as_ref().map(check_conditions).transpose()?;
    let max_age = check_max_age(input.max_age_seconds)?;
    conn.transaction(|conn| {
        let mut row = store::trust_policies::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
        let before = row.clone();
        // Acting on the policy is acting on its service account (as it stands).
        if let Some(sa) = store::principals::live_account(conn, &p.org_id, &row.service_account_id)? {
            p.require_holds_all(&roles_from_text(&sa.roles), "service account")?;
        }
        if let Some(v) = name {
            row.name = v;
        }
        if let Some(v) = description {
            row.description = v;
        }
        if let Some(v) = issuer {
            row.issuer = v;
        }
        if let Some(v) = audience {
            row.audience = v;
        }
        if let Some(v) = conditions {
            row.conditions = v;
        }
        if let Some(v) = &input.service_account_id {
            row.service_account_id = v.clone();
        }
        if let Some(v) = &input.roles {
            row.roles = roles_to_text(&sorted(v));
        }
        if let Some(v) = max_age {
            row.max_age_seconds = v;
        }
        if let Some(v) = input.disabled {
            row.disabled = v;
        }
        let roles = roles_from_text(&row.roles);
        if input.roles.is_some() || input.service_account_id.is_some() {
            check_mapping(conn, p, &row.service_account_id, &roles)?;
        }
        let before_roles = roles_from_text(&before.roles);
        let widens = row.issuer != before.issuer
            || row.audience != before.audience
            || row.conditions != before.conditions
            || row.service_account_id != before.service_account_id
            || roles.iter().any(|r| !RoleSet::from(before_roles.as_slice()).holds(r))
            || row.max_age_seconds > before.max_age_seconds
            || (before.disabled && !row.disabled);
        if widens {
            p.require_interactive()?;
        }
        row.updated_at = now;
        store::trust_policies::update(conn, &row)?;
        let detail = json!({"widened": widens, "disabled": row.disabled, "roles": roles});
        events::emit(conn, Event::by(p, Action::TrustPolicyUpdate, "trust_policy", &row.id).detail(detail), now)?;
        Ok(view(&row))
    })
}

pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require(Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let row = store::trust_policies::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
        store::trust_policies::delete(conn, &row.id)?;
        let detail = json!({"issuer": row.issuer, "service_account_id": row.service_account_id});
        events::emit(conn, Event::by(p, Action::TrustPolicyDelete, "trust_policy", &row.id).detail(detail), now)
    })
}

// ---- delegation allowances ----

/// The resource audiences an app may obtain tokens for on behalf of a user (RFC 8693
/// delegation with `actor_token` or the app's own client authentication).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationView {
    /// Configured resource audiences (never the management audience); empty: the app may
    /// act for no one. Adding one needs an interactive login.
    #[schema(max_items = 50)]
    pub audiences: Vec<String>,
}

fn load_app(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<crate::store::models::App> {
    store::principals::app_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)
}

pub fn get_delegation(conn: &mut AnyConnection, p: &Principal, app_id: &str) -> Result<DelegationView> {
    p.require(Role::OrgAdmin)?;
    let app = load_app(conn, p, app_id)?;
    let rows = store::trust_policies::delegations(conn, &app.id)?;
    Ok(DelegationView { audiences: rows.into_iter().map(|d| d.audience).collect() })
}

pub fn set_delegation(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    app_id: &str,
    input: &DelegationView,
    now: i64,
) -> Result<DelegationView> {
    p.require(Role::OrgAdmin)?;
    let mut wanted: Vec<String> = input.audiences.iter().map(|a| a.trim().trim_end_matches('/').to_string()).collect();
    wanted.sort();
    wanted.dedup();
    if wanted.len() > 50 {
        return Err(invalid("audiences", "at most 50 audiences"));
    }
    if let Some(a) = wanted.iter().find(|a| !cfg.audiences.iter().any(|c| c == *a)) {
        return Err(invalid(
            "audiences",
            format!("{a:?} is not a configured resource audience (the management audience is never delegated)"),
        ));
    }
    conn.transaction(|conn| {
        let app = load_app(conn, p, app_id)?;
        p.require_holds_all(&roles_from_text(&app.roles), "app")?;
        let before: Vec<String> =
            store::trust_policies::delegations(conn, &app.id)?.into_iter().map(|d| d.audience).collect();
        let widens = wanted.iter().any(|a| !before.contains(a));
        if widens {
            p.require_interactive()?;
        }
        let rows: Vec<Delegation> = wanted
            .iter()
            .map(|a| Delegation {
                app_id: app.id.clone(),
                audience: a.clone(),
                org_id: app.org_id.clone(),
                created_by: Some(p.id.clone()),
                created_at: now,
            })
            .collect();
        store::trust_policies::replace_delegations(conn, &app.id, &rows)?;
        let detail = json!({"audiences": wanted, "before": before});
        events::emit(conn, Event::by(p, Action::AppDelegation, "app", &app.id).detail(detail), now)?;
        Ok(DelegationView { audiences: wanted.clone() })
    })
}
