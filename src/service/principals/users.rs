//! People: passwords, login with throttling, and administration with the role-grant
//! rules (no one grants what they do not hold; the last enabled owner is protected).
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::service::events::{self, Action, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::{check_text, invalid, new_id, Error, Principal, Result};
use crate::store::models::User;
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};
use crate::whsec::Sealer;

/// A new user's email as sent (`normalize_email`), for the OpenAPI document.
fn email_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .max_length(Some(254))
        .pattern(Some(r"^\s*[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+\s*$"))
        .description(Some(
            "At most 254 characters as sent; then trimmed and lower-cased: one @ with text on both sides, no \
             whitespace or control characters inside, at most 254 bytes. Unique among the org's undeleted users (409).",
        ))
        .build()
}

pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    // The document's maxLength counts the characters as sent (surrounding whitespace too).
    let ok = email.chars().count() <= 254
        && e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(invalid("email", "must be an email address"))
    }
}

pub fn check_password(p: &str) -> Result<()> {
    let n = p.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(invalid("password", "must be 8 to 1024 characters"));
    }
    Ok(())
}

pub use crate::service::principals::login::{
    check_current_password, login, LoginOk, PasswordGate, LOGIN_BACKOFF_SECONDS, LOGIN_FAILURES_PER_IP,
    LOGIN_FREE_FAILURES,
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    /// Organization id.
    pub org: String,
    pub email: String,
    pub name: String,
    #[schema(schema_with = crate::service::authz::role::schema::roles)]
    pub roles: Vec<String>,
    pub disabled: bool,
    /// False for a user who cannot log in with a password.
    pub has_password: bool,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub updated_at: crate::service::Timestamp,
}

pub fn view(u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        org: u.org_id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        roles: roles_from_text(&u.roles),
        disabled: u.disabled,
        has_password: u.password_hash.is_some(),
        created_at: crate::service::Timestamp::at(u.created_at),
        updated_at: crate::service::Timestamp::at(u.updated_at),
    }
}

pub fn load(conn: &mut AnyConnection, org_id: &str, id: &str) -> Result<User> {
    store::principals::live_user(conn, org_id, id)?.ok_or(Error::NotFound)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    pub org_name: String,
    /// Roles in effect for this access token.
    pub token_roles: Vec<String>,
}

pub fn me(conn: &mut AnyConnection, p: &Principal) -> Result<MeView> {
    let u = load(conn, &p.org_id, p.user_id()?)?;
    let org = store::org::get(conn, &p.org_id)?;
    Ok(MeView { user: view(&u), org_name: org.name, token_roles: p.roles.to_strings() })
}

/// A person. No password: an admin issues a one-time reset code (POST
/// /api/v1/users/{id}/password-reset) and the person sets a password by redeeming it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = email_schema)]
    pub email: String,
    /// Default: the part of the email before @.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::PersonName>,
    // Default ["org:member"].
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::granted)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub disabled: bool,
}

/// Absent fields are unchanged. Only an owner changes an owner's account; the last enabled
/// owner cannot be demoted or disabled (409).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::PersonName>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::replaced)]
    pub roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

pub use crate::service::principals::credentials::CredentialsChoice;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CredentialsQuery {
    /// What happens to the credentials the person created or saw the secret of: live apps,
    /// service accounts they created, webhooks, and API tokens of others they minted (all of
    /// them on delete; those holding roles the person loses on a demotion): disable them, or
    /// transfer them to the caller (who must hold their roles). Either way app and webhook
    /// secrets are replaced by ones nobody is shown (regenerate to get one) and the API tokens
    /// are revoked. Required when there are any (409 otherwise).
    #[serde(default)]
    #[param(value_type = Option<CredentialsParam>, inline)]
    pub credentials: Option<String>,
}

crate::service::param_schema!(CredentialsParam, credentials_choice);
fn credentials_choice() -> utoipa::openapi::Object {
    crate::service::one_of(&["disable", "transfer"])
}

impl CredentialsQuery {
    pub fn choice(&self) -> Result<CredentialsChoice> {
        match self.credentials.as_deref() {
            None => Ok(CredentialsChoice::Ask),
            Some("disable") => Ok(CredentialsChoice::Disable),
            Some("transfer") => Ok(CredentialsChoice::Transfer),
            Some(_) => Err(invalid("credentials", "must be disable or transfer")),
        }
    }
}

fn is_owner_roles(roles: &[String]) -> bool {
    roles.iter().any(|r| r == crate::service::Role::OrgOwner.as_str())
}

/// Enabled, undeleted owners of the org other than `except`.
fn other_owners(conn: &mut AnyConnection, org_id: &str, except: &str) -> Result<i64> {
    Ok(store::principals::count_other_owners(conn, org_id, except)?)
}

/// Serialises owner-affecting changes within an org (last-owner checks) on PostgreSQL.
fn lock_org(conn: &mut AnyConnection, org_id: &str) -> Result<()> {
    Ok(store::org::lock(conn, org_id)?)
}

/// Roles changed in either direction must be grantable by the caller.
fn check_role_change(conn: &mut AnyConnection, p: &Principal, before: &[String], after: &[String]) -> Result<()> {
    let changed: Vec<String> = before
        .iter()
        .filter(|r| !after.contains(r))
        .chain(after.iter().filter(|r| !before.contains(r)))
        .cloned()
        .collect();
    if changed.iter().any(|r| r == crate::service::Role::OrgOwner.as_str()) && !p.is_owner() {
        return Err(Error::Forbidden("only an owner grants or removes org:owner".into()));
    }
    crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, &changed)
}

/// A new person. No password: they set one by redeeming a reset code (see `resets`).
pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewUser, now: i64) -> Result<UserView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let email = normalize_email(&input.email)?;
    let name = check_text("name", input.name.as_deref().unwrap_or(email.split('@').next().unwrap_or("")), 1, 200)?;
    let roles = input.roles.clone().unwrap_or_else(|| vec![crate::service::Role::OrgMember.as_str().into()]);
    conn.transaction(|conn| {
        lock_org(conn, &p.org_id)?;
        check_role_change(conn, p, &[], &roles)?;
        let taken = store::principals::count_users_with_email(conn, &p.org_id, &email)?;
        if taken > 0 {
            return Err(Error::Conflict(format!("a user with email {email} already exists")));
        }
        let u = User {
            id: new_id(),
            org_id: p.org_id.clone(),
            email: email.clone(),
            name: name.clone(),
            password_hash: None,
            roles: roles_to_text(&roles),
            disabled: input.disabled,
            deleted_at: None,
            created_at: now,
            updated_at: now,
            epoch: 0,
        };
        store::principals::insert_user(conn, &u)?;
        events::emit(
            conn,
            Event::by(p, Action::UserCreate, "user", &u.id).detail(serde_json::json!({"roles": roles})),
            now,
        )?;
        Ok(view(&u))
    })
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Case-insensitive substring of email or name.
    pub q: Option<String>,
    /// Only users holding exactly this role.
    pub role: Option<String>,
    /// true or false.
    #[param(value_type = Option<bool>)]
    pub disabled: Option<String>,
}

crate::service::words!(
    /// Sort keys of the people list.
    pub Sort { CreatedAt = "created_at", Email = "email", Name = "name" }
);

pub fn list(conn: &mut AnyConnection, p: &Principal, f: &UserFilter, pq: &PageQuery) -> Result<Paged<UserView>> {
    p.require(crate::service::Role::OrgAdmin)?;
    let page = pq.validate_sorted::<Sort>()?;
    let disabled = match f.disabled.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(invalid("disabled", "must be true or false")),
    };
    // Only people the caller may act on (who hold no role the caller lacks) are listed.
    let all_sets = store::principals::user_role_sets(conn, &p.org_id)?;
    let n = all_sets.len();
    let sets: Vec<String> =
        all_sets.into_iter().filter(|t| roles_from_text(t).iter().all(|r| p.roles.holds(r))).collect();
    let filter = store::principals::UserFilter {
        role_sets: (sets.len() < n).then_some(sets.as_slice()),
        q: f.q.as_deref(),
        role: f.role.as_deref(),
        disabled,
    };
    let rows = store::principals::list_users(conn, &p.org_id, &filter, &page)?;
    Ok(page.view(rows, |u| view(&u)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<UserView> {
    Ok(view(&load_target(conn, p, id)?))
}

/// A person the caller may act on: an `org:admin` holding every role the person holds
/// (so no one reaches a role they lack by taking over an account), in the caller's org.
pub fn load_target(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<User> {
    p.require(crate::service::Role::OrgAdmin)?;
    let u = load(conn, &p.org_id, id)?;
    if is_owner_roles(&roles_from_text(&u.roles)) && !p.is_owner() {
        return Err(Error::Forbidden("only an owner acts on an owner's account".into()));
    }
    p.require_holds_all(&roles_from_text(&u.roles), "user")?;
    Ok(u)
}

/// Ends every access token and login of the user minted before now.
pub fn bump_epoch(conn: &mut AnyConnection, user_id: &str, now: i64) -> Result<()> {
    Ok(store::principals::bump_user_epoch(conn, user_id, now)?)
}

pub fn patch(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    id: &str,
    input: &UserPatch,
    choice: CredentialsChoice,
    now: i64,
) -> Result<UserView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let name = input.name.as_deref().map(str::to_string);
    conn.transaction(|conn| {
        lock_org(conn, &p.org_id)?;
        let mut u = load_target(conn, p, id)?;
        let before = roles_from_text(&u.roles);
        let after = input.roles.clone().unwrap_or_else(|| before.clone());
        check_role_change(conn, p, &before, &after)?;
        p.require_interactive_if_raising(&before, &after)?;
        let disabled = input.disabled.unwrap_or(u.disabled);
        // Re-enabling brings a person's power back: like minting, an interactive act.
        if !disabled && u.disabled {
            p.require_interactive()?;
        }
        let loses_owner = is_owner_roles(&before) && !u.disabled && (!is_owner_roles(&after) || disabled);
        if loses_owner && other_owners(conn, &p.org_id, &u.id)? == 0 {
            return Err(Error::Conflict("the last enabled owner cannot be demoted or disabled".into()));
        }
        // Demoted below what their apps or service accounts hold: those are settled too.
        let after_set = crate::service::RoleSet::from(after.as_slice());
        let demoted = before.iter().any(|r| !after_set.holds(r));
        let settled = if demoted {
            crate::service::principals::credentials::settle(conn, p, sealer, &u.id, Some(&after), choice, now)?
        } else {
            crate::service::principals::credentials::Settled::default()
        };
        // A reset code is issued under the person's roles and the issuer's: a change to
        // either voids it.
        if roles_to_text(&before) != roles_to_text(&after) || (disabled && !u.disabled) {
            store::sessions::void_reset_codes(conn, &u.id, now)?;
        }
        if demoted || (disabled && !u.disabled) {
            store::sessions::void_reset_codes_issued_by(conn, &u.id, now)?;
        }
        if let Some(n) = name.clone() {
            u.name = n;
        }
        u.roles = roles_to_text(&after);
        let newly_disabled = disabled && !u.disabled;
        u.disabled = disabled;
        u.updated_at = now;
        store::principals::update_user(conn, &u, now)?;
        if newly_disabled {
            // A re-enabled account must not bring old logins and access tokens back.
            bump_epoch(conn, &u.id, now)?;
        }
        let mut changes = serde_json::Map::new();
        if input.roles.is_some() {
            changes.insert("roles".into(), serde_json::json!({"before": before, "after": after}));
        }
        if input.disabled.is_some() {
            changes.insert("disabled".into(), serde_json::json!(disabled));
        }
        if input.name.is_some() {
            changes.insert("name".into(), serde_json::json!(u.name));
        }
        if !settled.is_empty() {
            changes.insert("credentials".into(), settled.to_json());
        }
        let mut ev = Event::by(p, Action::UserUpdate, "user", &u.id).detail(serde_json::Value::Object(changes));
        if newly_disabled {
            ev = ev.notice(events::Notice::UserDisabled { user_id: &u.id, email: &u.email });
        }
        events::emit(conn, ev, now)?;
        Ok(view(&u))
    })
}

/// Soft delete: the row stays for the token table and audit; live tokens and pending reset
/// codes are revoked, and the credentials the person created or saw the secret of are
/// disabled or transferred (`choice`, `service::principals::credentials::settle`).
pub fn delete(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    id: &str,
    choice: CredentialsChoice,
    now: i64,
) -> Result<()> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        lock_org(conn, &p.org_id)?;
        let u = load_target(conn, p, id)?;
        if is_owner_roles(&roles_from_text(&u.roles)) && !u.disabled && other_owners(conn, &p.org_id, &u.id)? == 0 {
            return Err(Error::Conflict("the last enabled owner cannot be deleted".into()));
        }
        // A deleted person holds no role: every live credential they created is settled.
        let settled = crate::service::principals::credentials::settle(conn, p, sealer, &u.id, None, choice, now)?;
        store::principals::delete_user(conn, &u.id, now)?;
        store::sessions::void_reset_codes(conn, &u.id, now)?;
        store::sessions::void_reset_codes_issued_by(conn, &u.id, now)?;
        bump_epoch(conn, &u.id, now)?;
        let revoked = crate::service::tokens::revoke_owned(conn, p, &u.id, now)?;
        events::emit(
            conn,
            Event::by(p, Action::UserDelete, "user", &u.id)
                .detail(serde_json::json!({"revoked_tokens": revoked, "credentials": settled.to_json()})),
            now,
        )?;
        Ok(())
    })
}
