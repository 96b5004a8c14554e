//! Service accounts: persistent non-human identities holding up to N live API tokens.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::service::events::{self, Action, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::tokens::table::TableQuery;
use crate::service::tokens::usage::Usage;
use crate::service::tokens::{self, CreateToken, CreatedToken, NewToken, PatchToken, TokenView};
use crate::service::{invalid, new_id, Acct, Error, Principal, Result};
use crate::store::models::ServiceAccount;
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub description: String,
    #[schema(schema_with = crate::service::authz::role::schema::roles)]
    pub roles: Vec<String>,
    pub disabled: bool,
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub updated_at: crate::service::Timestamp,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub name: crate::service::text::Name,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default)]
    #[schema(schema_with = crate::service::authz::role::schema::granted)]
    pub roles: Vec<String>,
}

/// Absent fields are unchanged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::Name>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::replaced)]
    pub roles: Option<Vec<String>>,
    /// A disabled account's tokens stop working at the next exchange.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

fn view(s: &ServiceAccount) -> AccountView {
    AccountView {
        id: s.id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        roles: roles_from_text(&s.roles),
        disabled: s.disabled,
        created_by: s.created_by.clone(),
        created_at: crate::service::Timestamp::at(s.created_at),
        updated_at: crate::service::Timestamp::at(s.updated_at),
    }
}

fn load(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<ServiceAccount> {
    store::principals::live_account(conn, &p.org_id, id)?.ok_or(Error::NotFound)
}

/// An account the caller may act on: acting on it needs every role it holds. (Revoking its
/// tokens does not: containment is never refused to an admin, as on the org token table.)
fn load_held(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<ServiceAccount> {
    let s = load(conn, p, id)?;
    p.require_holds_all(&roles_from_text(&s.roles), "service account")?;
    Ok(s)
}

pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewAccount, now: i64) -> Result<AccountView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let name = input.name.to_string();
    let description = input.description.as_deref().unwrap_or("").to_string();
    conn.transaction(|conn| {
        crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, &input.roles)?;
        let s = ServiceAccount {
            id: new_id(),
            org_id: p.org_id.clone(),
            name,
            description,
            roles: roles_to_text(&input.roles),
            disabled: false,
            deleted_at: None,
            created_by: Some(p.id.clone()),
            created_at: now,
            updated_at: now,
            epoch: 0,
        };
        store::principals::insert_account(conn, &s)?;
        events::emit(
            conn,
            Event::by(p, Action::ServiceAccountCreate, "service_account", &s.id)
                .detail(serde_json::json!({"roles": input.roles})),
            now,
        )?;
        Ok(view(&s))
    })
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<AccountView>> {
    p.require(crate::service::Role::OrgAdmin)?;
    let page = pq.validate_sorted::<Sort>()?;
    let rows = store::principals::list_accounts(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |s| view(&s)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<AccountView> {
    p.require(crate::service::Role::OrgAdmin)?;
    Ok(view(&load(conn, p, id)?))
}

pub fn patch(conn: &mut AnyConnection, p: &Principal, id: &str, input: &AccountPatch, now: i64) -> Result<AccountView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let name = input.name.as_deref().map(str::to_string);
    let description = input.description.as_deref().map(str::to_string);
    conn.transaction(|conn| {
        let mut s = load(conn, p, id)?;
        let before = roles_from_text(&s.roles);
        p.require_holds_all(&before, "service account")?;
        if let Some(r) = &input.roles {
            let changed: Vec<String> = before
                .iter()
                .filter(|x| !r.contains(x))
                .chain(r.iter().filter(|x| !before.contains(x)))
                .cloned()
                .collect();
            crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, &changed)?;
            p.require_interactive_if_raising(&before, r)?;
            s.roles = roles_to_text(r);
        }
        // Disabling ends the account's access tokens for good (re-enabling does not revive them).
        let newly_disabled = input.disabled == Some(true) && !s.disabled;
        // Re-enabling restores a credential's power, so it is minting.
        if input.disabled == Some(false) && s.disabled {
            p.require_interactive()?;
            revoke_left_holders(conn, p, &s, now)?;
        }
        if let Some(v) = name {
            s.name = v;
        }
        if let Some(v) = description {
            s.description = v;
        }
        if let Some(v) = input.disabled {
            s.disabled = v;
        }
        s.updated_at = now;
        store::principals::update_account(conn, &s, newly_disabled, now)?;
        if input.name.is_some() {
            // Keeps the tokens' owner label and search text in step with a renamed account.
            store::tokens::relabel_owner(conn, &s.id, &s.name)?;
        }
        let detail = serde_json::json!({"roles": {"before": before, "after": roles_from_text(&s.roles)}});
        events::emit(conn, Event::by(p, Action::ServiceAccountUpdate, "service_account", &s.id).detail(detail), now)?;
        Ok(view(&s))
    })
}

/// Enabling an account revives its live tokens: those whose secret was seen by someone
/// who has since left (deleted or disabled) are revoked first.
fn revoke_left_holders(conn: &mut AnyConnection, p: &Principal, s: &ServiceAccount, now: i64) -> Result<()> {
    for t in store::webhooks::live_tokens_of(conn, &p.org_id, &s.id)? {
        if !crate::service::principals::credentials::holders_left(conn, &p.org_id, &t.secret_seen_by)?.is_empty() {
            tokens::revoke(conn, p, &t, Action::TokenRevoke, now)?;
        }
    }
    Ok(())
}

/// Soft delete; every token of the account is revoked with it.
pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let s = load(conn, p, id)?;
        p.require_holds_all(&roles_from_text(&s.roles), "service account")?;
        store::principals::delete_account(conn, &s.id, now)?;
        let n = tokens::revoke_owned(conn, p, &s.id, now)?;
        events::emit(
            conn,
            Event::by(p, Action::ServiceAccountDelete, "service_account", &s.id)
                .detail(serde_json::json!({"revoked_tokens": n})),
            now,
        )?;
        Ok(())
    })
}

pub fn token_list(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    q: &TableQuery,
    usage: &Usage,
    now: i64,
) -> Result<Paged<TokenView>> {
    p.require(crate::service::Role::OrgAdmin)?;
    let s = load(conn, p, id)?;
    tokens::table::list_owned(conn, &p.org_id, &s.id, q, usage, now)
}

/// One token of a service account (reading, like the list, needs org:admin only).
pub fn token_get(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    tid: &str,
    usage: &Usage,
    now: i64,
) -> Result<TokenView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let s = load(conn, p, id)?;
    Ok(tokens::owner_status(tokens::view(&tokens::load_owned(conn, &p.org_id, &s.id, tid)?, usage, now), s.disabled))
}

/// A new secret for a service-account token, like `POST /me/tokens/{id}/rotate`: minting,
/// so an interactive login holding every role of the account; the successor (same roles,
/// lifetime capped by today's policy) and the old token's revocation commit together. The
/// token limit does not count the token being replaced, so a full account rotates too.
pub fn token_rotate(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    tid: &str,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    p.require(crate::service::Role::OrgAdmin)?;
    p.require_interactive()?;
    conn.transaction(|conn| {
        let s = load_held(conn, p, id)?;
        store::principals::lock_account(conn, &s.id)?;
        let old = tokens::load_owned(conn, &p.org_id, &s.id, tid)?;
        let policy = crate::service::org::policy::get(conn, &p.org_id)?;
        let others = store::tokens::count_live_except(conn, &s.id, &old.id, now)?;
        if others >= policy.max_tokens_per_service_account {
            return Err(Error::Conflict(format!(
                "service account already has {others} other live tokens (limit {}); revoke one first",
                policy.max_tokens_per_service_account
            )));
        }
        let roles = roles_from_text(&old.roles);
        tokens::rotate(conn, p, &old, &roles, policy.service_token_max_ttl_days, usage, now)
    })
}

pub fn token_create(
    conn: &mut AnyConnection,
    cfg: &crate::config::Config,
    p: &Principal,
    id: &str,
    input: &CreateToken,
    usage: &Usage,
    now: i64,
) -> Result<CreatedToken> {
    p.require(crate::service::Role::OrgAdmin)?;
    p.require_interactive()?;
    let name = input.name.to_string();
    let description = input.description.as_deref().unwrap_or("").to_string();
    conn.transaction(|conn| {
        let s = load_held(conn, p, id)?;
        // Row lock on the account: concurrent creates count live tokens one after another
        // (PostgreSQL runs them in parallel; SQLite already has a single writer).
        store::principals::lock_account(conn, &s.id)?;
        let policy = crate::service::org::policy::get(conn, &p.org_id)?;
        let expires_at = tokens::check_expiry(input, policy.service_token_max_ttl_days, now)?;
        let account_roles = roles_from_text(&s.roles);
        let roles = match &input.roles {
            Some(r) if r.is_empty() => return Err(invalid("roles", "must name at least one role")),
            Some(r) => {
                let held = crate::service::RoleSet::from(account_roles.as_slice());
                if let Some(x) = r.iter().find(|x| !held.holds(x)) {
                    return Err(invalid("roles", format!("role {x:?} is not held by the service account")));
                }
                r.clone()
            }
            None => account_roles,
        };
        // The caller must be able to grant what the token will carry.
        crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, &roles)?;
        let reach = crate::service::authz::reach::for_new(
            cfg,
            &crate::service::authz::reach::ReachPolicy::of(&policy),
            input.audiences.as_deref(),
            input.management,
            &roles,
        )?;
        // Idle-expired tokens can never be exchanged again: they free their slot too.
        let live = store::tokens::count_live(conn, &s.id, now)?;
        if live >= policy.max_tokens_per_service_account {
            return Err(Error::Conflict(format!(
                "service account already has {live} live tokens (limit {}); revoke one first",
                policy.max_tokens_per_service_account
            )));
        }
        let (row, secret) = tokens::insert(
            conn,
            NewToken {
                org_id: &p.org_id,
                owner_kind: Acct::ServiceAccount,
                owner_id: &s.id,
                owner_label: &s.name,
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
        events::emit(
            conn,
            Event::by(p, Action::TokenCreate, "api_token", &row.id)
                .detail(serde_json::json!({
                "service_account": s.id, "expires_at": rfc3339(expires_at),
                "audiences": reach.audiences, "management": reach.management}))
                .notice(events::Notice::TokenCreated { token: &row, rotated_from: None }),
            now,
        )?;
        Ok(CreatedToken { token: secret, record: tokens::view(&row, usage, now) })
    })
}

/// Renames or re-scopes token `tid` of service account `id`.
pub fn token_patch(
    conn: &mut AnyConnection,
    cfg: &crate::config::Config,
    p: &Principal,
    (id, tid): (&str, &str),
    input: &PatchToken,
    usage: &Usage,
    now: i64,
) -> Result<TokenView> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let s = load_held(conn, p, id)?;
        let t = tokens::load_owned(conn, &p.org_id, &s.id, tid)?;
        tokens::update(conn, cfg, p, t, input, usage, now)
    })
}

pub fn token_revoke(conn: &mut AnyConnection, p: &Principal, id: &str, tid: &str, now: i64) -> Result<()> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let s = load(conn, p, id)?;
        let t = tokens::load_owned(conn, &p.org_id, &s.id, tid)?;
        tokens::revoke(conn, p, &t, Action::TokenRevoke, now).map(|_| ())
    })
}

crate::service::words!(
    /// Sort keys of the service-account list.
    pub Sort { CreatedAt = "created_at", Name = "name" }
);

/// A service account's live tokens and the org's limit on them (the console shows both).
pub fn token_limit(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<(i64, i64)> {
    p.require(crate::service::Role::OrgAdmin)?;
    let s = load(conn, p, id)?;
    let live = store::tokens::count_live(conn, &s.id, now)?;
    Ok((live, crate::service::org::policy::get(conn, &p.org_id)?.max_tokens_per_service_account))
}
