//! Organizations and their first owner (bootstrap and `tokend org create`).
use diesel::Connection;
use serde::Serialize;

use crate::service::events::{self, Action, Entry, Event, Notice};
use crate::service::tokens::{self, NewToken};
use crate::service::{new_id, Acct, Error, Result};
use crate::store::models::{Org, User};
use crate::store::{self, roles_to_text, AnyConnection};

#[derive(Serialize)]
pub struct CreatedOrg {
    pub org_id: String,
    pub owner_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A personal API token of the owner, shown once.
    pub token: String,
}

/// A random password for a generated owner: 24 base62 characters (~142 bits).
pub fn random_password() -> String {
    let s = crate::secrets::random_id("", 24);
    s.chars().take(24).collect()
}

pub fn create(
    conn: &mut AnyConnection,
    name: &str,
    owner_email: &str,
    password: Option<String>,
    now: i64,
) -> Result<CreatedOrg> {
    let name = crate::service::check_text("name", name, 1, 100)?;
    let email = crate::service::principals::users::normalize_email(owner_email)?;
    let generated = password.is_none();
    let password = password.unwrap_or_else(random_password);
    crate::service::principals::users::check_password(&password)?;
    let hash = crate::service::principals::passwords::hash_once(&password)?;
    conn.transaction(|conn| {
        let exists = store::org::count_named(conn, &name)?;
        if exists > 0 {
            return Err(Error::Conflict(format!("an organization named {name:?} already exists")));
        }
        let org = Org { id: new_id(), name: name.clone(), created_at: now };
        store::org::insert(conn, &org)?;
        let owner_roles = vec![crate::service::Role::OrgOwner.as_str().to_string()];
        let user = User {
            id: new_id(),
            org_id: org.id.clone(),
            name: email.split('@').next().unwrap_or("owner").to_string(),
            email: email.clone(),
            password_hash: Some(hash.clone()),
            roles: roles_to_text(&owner_roles),
            disabled: false,
            deleted_at: None,
            created_at: now,
            updated_at: now,
            epoch: 0,
        };
        store::principals::insert_user(conn, &user)?;
        let policy = crate::service::org::policy::get(conn, &org.id)?;
        let (token, secret) = tokens::insert(
            conn,
            NewToken {
                org_id: &org.id,
                owner_kind: Acct::User,
                owner_id: &user.id,
                owner_label: &user.email,
                name: "bootstrap",
                description: "created with the organization",
                roles: &owner_roles,
                expires_at: now + policy.personal_token_max_ttl_days * 86_400,
                idle_ttl_days: policy.idle_ttl_days,
                created_by: None,
                // The first token of an org is for the scripts that set the org up: it
                // reaches the management API (and every resource audience).
                reach: &crate::service::authz::reach::Reach {
                    audiences: vec![crate::service::authz::reach::ALL.into()],
                    management: true,
                },
                seen_by: roles_to_text(std::slice::from_ref(&user.id)),
            },
            now,
        )?;
        let ev = |action, kind, id| Entry::system(&org.id, action).on(kind, Some(id));
        events::emit(conn, ev(Action::OrgCreate, "org", &org.id), now)?;
        events::emit(conn, ev(Action::UserCreate, "user", &user.id), now)?;
        let created = Notice::TokenCreated { token: &token, rotated_from: None };
        events::emit(conn, Event::from(ev(Action::TokenCreate, "api_token", &token.id)).notice(created), now)?;
        Ok(CreatedOrg {
            org_id: org.id,
            owner_id: user.id,
            password: generated.then_some(password.clone()),
            token: secret,
        })
    })
}

/// On an empty database: org `default` and its owner. Returns None when orgs exist.
///
/// Idempotent when several instances start together on one empty database: on
/// PostgreSQL the check and the creation run under a transaction-scoped advisory lock
/// (released however the transaction ends), and an instance that loses a race anyway
/// (SQLite files shared between processes) sees "already exists" and returns None, so
/// only the winner prints credentials.
pub fn bootstrap(
    conn: &mut AnyConnection,
    email: &str,
    password: Option<String>,
    now: i64,
) -> Result<Option<CreatedOrg>> {
    let result = conn.transaction(|conn| {
        store::org::lock_bootstrap(conn)?;
        let count = store::org::count(conn)?;
        if count > 0 {
            return Ok(None);
        }
        create(conn, "default", email, password, now).map(Some)
    });
    match result {
        Err(Error::Conflict(_)) if store::org::count(conn)? > 0 => Ok(None),
        r => r,
    }
}
