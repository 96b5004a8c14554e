//! Who can hold roles: people (`users`), service accounts and apps. Look-ups, lists,
//! inserts and updates of their rows; no role checks here (`service` decides who may).
use diesel::prelude::*;

use super::models::{App, AppAuth, ServiceAccount, User};
use super::page::{self, Page, Rows};
use super::revocations::{self, principal as feed_principal};
use super::schema::{apps, service_accounts, users};
use super::{like_escape, lower, AnyConnection};

/// A LIKE pattern matching roles text (a JSON array) that holds `role`.
pub fn role_pattern(role: &str) -> String {
    format!("%{}%", like_escape(&format!("\"{role}\"")))
}

// ---- people ----

/// A user by id, whatever its org or state.
pub fn user(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).optional()
}

/// An undeleted user of the org.
pub fn live_user(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .filter(users::org_id.eq(org_id))
        .filter(users::deleted_at.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Undeleted users with this email, in every org.
pub fn users_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Vec<User>> {
    users::table.filter(users::email.eq(email)).filter(users::deleted_at.is_null()).select(User::as_select()).load(conn)
}

pub fn user_email(conn: &mut AnyConnection, id: &str) -> QueryResult<String> {
    users::table.find(id).select(users::email).first(conn)
}

pub fn user_epoch(conn: &mut AnyConnection, id: &str) -> QueryResult<i64> {
    users::table.find(id).select(users::epoch).first(conn)
}

/// Undeleted users of the org with this email.
pub fn count_users_with_email(conn: &mut AnyConnection, org_id: &str, email: &str) -> QueryResult<i64> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::email.eq(email))
        .filter(users::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// Enabled, undeleted owners of the org other than `except`.
pub fn count_other_owners(conn: &mut AnyConnection, org_id: &str, except: &str) -> QueryResult<i64> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::deleted_at.is_null())
        .filter(users::disabled.eq(false))
        .filter(users::id.ne(except))
        .filter(users::roles.like(role_pattern("org:owner")).escape('\\'))
        .count()
        .get_result(conn)
}

pub fn insert_user(conn: &mut AnyConnection, u: &User) -> QueryResult<()> {
    diesel::insert_into(users::table).values(u).execute(conn)?;
    Ok(())
}

/// Filters of the people list, already validated.
#[derive(Default)]
pub struct UserFilter<'a> {
    /// When set, only people whose stored role set is one of these (one `IN` list, not
    /// one clause per role: SQLite refuses deep expression trees).
    pub role_sets: Option<&'a [String]>,
    /// Case-insensitive substring of the email or name.
    pub q: Option<&'a str>,
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
}

/// The distinct role sets (as stored, canonical) of the org's undeleted people.
pub fn user_role_sets(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<String>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::deleted_at.is_null())
        .select(users::roles)
        .distinct()
        .load(conn)
}

/// One page of the org's undeleted people. Sorts: `email`, `name`, else `created_at`.
pub fn list_users(conn: &mut AnyConnection, org_id: &str, f: &UserFilter<'_>, page: &Page) -> QueryResult<Rows<User>> {
    let query = || {
        let mut q = users::table.filter(users::org_id.eq(org_id)).filter(users::deleted_at.is_null()).into_boxed();
        if let Some(sets) = f.role_sets {
            q = q.filter(users::roles.eq_any(sets));
        }
        if let Some(s) = f.q {
            let pat = format!("%{}%", like_escape(&s.to_lowercase()));
            q = q.filter(
                lower(users::email).like(pat.clone()).escape('\\').or(lower(users::name).like(pat).escape('\\')),
            );
        }
        if let Some(r) = f.role {
            q = q.filter(users::roles.like(role_pattern(r)).escape('\\'));
        }
        if let Some(d) = f.disabled {
            q = q.filter(users::disabled.eq(d));
        }
        q.select((User::as_select(), page::total()))
    };
    page.load(conn, query, |q| match page.key() {
        Some("email") => page.order(q, users::email, users::id),
        Some("name") => page.order(q, users::name, users::id),
        _ => page.order(q, users::created_at, users::id),
    })
}

/// Stores a user's name, roles, disabled flag and update time.
pub fn update_user(conn: &mut AnyConnection, u: &User, now: i64) -> QueryResult<()> {
    diesel::update(users::table.find(&u.id))
        .set((
            users::name.eq(&u.name),
            users::roles.eq(&u.roles),
            users::disabled.eq(u.disabled),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    // Roles or the disabled flag may have narrowed: cached credentials are re-read.
    revocations::invalidate(conn)?;
    Ok(())
}

/// Soft delete: the row stays for the token table and audit.
pub fn delete_user(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::deleted_at.eq(Some(now)), users::updated_at.eq(now)))
        .execute(conn)?;
    revocations::invalidate(conn)
}

/// Moves the user's epoch on: access tokens and logins minted before end (and the
/// revocation feed says so).
pub fn bump_user_epoch(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id)).set(users::epoch.eq(users::epoch + 1)).execute(conn)?;
    let (org, epoch): (String, i64) = users::table.find(id).select((users::org_id, users::epoch)).first(conn)?;
    feed_principal(conn, &org, id, "user", epoch, now)
}

pub fn set_password(conn: &mut AnyConnection, id: &str, hash: &str, now: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(Some(hash)), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Sets the password of an undeleted user; answers the rows changed (0 or 1).
pub fn set_password_if_live(conn: &mut AnyConnection, id: &str, hash: &str, now: i64) -> QueryResult<usize> {
    diesel::update(users::table.find(id).filter(users::deleted_at.is_null()))
        .set((users::password_hash.eq(Some(hash)), users::updated_at.eq(now)))
        .execute(conn)
}

// ---- service accounts ----

/// A service account by id, whatever its org or state.
pub fn account(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ServiceAccount>> {
    service_accounts::table.find(id).select(ServiceAccount::as_select()).first(conn).optional()
}

/// An undeleted service account of the org.
pub fn live_account(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<ServiceAccount>> {
    service_accounts::table
        .find(id)
        .filter(service_accounts::org_id.eq(org_id))
        .filter(service_accounts::deleted_at.is_null())
        .select(ServiceAccount::as_select())
        .first(conn)
        .optional()
}

pub fn insert_account(conn: &mut AnyConnection, s: &ServiceAccount) -> QueryResult<()> {
    diesel::insert_into(service_accounts::table).values(s).execute(conn)?;
    Ok(())
}

/// One page of the org's undeleted service accounts. Sorts: `name`, else `created_at`.
pub fn list_accounts(conn: &mut AnyConnection, org_id: &str, page: &Page) -> QueryResult<Rows<ServiceAccount>> {
    let query = || {
        service_accounts::table
            .filter(service_accounts::org_id.eq(org_id))
            .filter(service_accounts::deleted_at.is_null())
            .select((ServiceAccount::as_select(), page::total()))
            .into_boxed()
    };
    page.load(conn, query, |q| match page.key() {
        Some("name") => page.order(q, service_accounts::name, service_accounts::id),
        _ => page.order(q, service_accounts::created_at, service_accounts::id),
    })
}

/// Stores an account's name, description, roles, disabled flag and update time; moves its
/// epoch on when `bump_epoch` (its access tokens end).
pub fn update_account(conn: &mut AnyConnection, s: &ServiceAccount, bump_epoch: bool, now: i64) -> QueryResult<()> {
    diesel::update(service_accounts::table.find(&s.id))
        .set((
            service_accounts::name.eq(&s.name),
            service_accounts::description.eq(&s.description),
            service_accounts::roles.eq(&s.roles),
            service_accounts::disabled.eq(s.disabled),
            service_accounts::updated_at.eq(now),
            service_accounts::epoch.eq(s.epoch + i64::from(bump_epoch)),
        ))
        .execute(conn)?;
    revocations::invalidate(conn)?;
    if bump_epoch {
        feed_principal(conn, &s.org_id, &s.id, "service_account", s.epoch + 1, now)?;
    }
    Ok(())
}

/// Soft delete.
pub fn delete_account(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(service_accounts::table.find(id))
        .set((service_accounts::deleted_at.eq(Some(now)), service_accounts::updated_at.eq(now)))
        .execute(conn)?;
    account_feed_row(conn, id, 1, now)
}

/// A feed row ending the account's access tokens up to its epoch (+ `ahead`).
fn account_feed_row(conn: &mut AnyConnection, id: &str, ahead: i64, now: i64) -> QueryResult<()> {
    let (org, epoch): (String, i64) =
        service_accounts::table.find(id).select((service_accounts::org_id, service_accounts::epoch)).first(conn)?;
    feed_principal(conn, &org, id, "service_account", epoch + ahead, now)
}

/// Row lock on the account (a no-op write): concurrent transactions touching it run one
/// after another on PostgreSQL; SQLite already has a single writer.
pub fn lock_account(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::update(service_accounts::table.find(id))
        .set(service_accounts::updated_at.eq(service_accounts::updated_at))
        .execute(conn)?;
    Ok(())
}

/// Enabled, undeleted service accounts of the org created by `creator`.
pub fn live_accounts_created_by(
    conn: &mut AnyConnection,
    org_id: &str,
    creator: &str,
) -> QueryResult<Vec<ServiceAccount>> {
    service_accounts::table
        .filter(service_accounts::org_id.eq(org_id))
        .filter(service_accounts::created_by.eq(creator))
        .filter(service_accounts::disabled.eq(false))
        .filter(service_accounts::deleted_at.is_null())
        .select(ServiceAccount::as_select())
        .load(conn)
}

/// Disables an account and moves its epoch on.
pub fn disable_account(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(service_accounts::table.find(id))
        .set((
            service_accounts::disabled.eq(true),
            service_accounts::epoch.eq(service_accounts::epoch + 1),
            service_accounts::updated_at.eq(now),
        ))
        .execute(conn)?;
    account_feed_row(conn, id, 0, now)
}

pub fn set_account_creator(conn: &mut AnyConnection, id: &str, creator: &str, now: i64) -> QueryResult<()> {
    diesel::update(service_accounts::table.find(id))
        .set((service_accounts::created_by.eq(Some(creator)), service_accounts::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

// ---- apps ----

/// An app of the org, by id.
pub fn app_in_org(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<App>> {
    apps::table.find(id).filter(apps::org_id.eq(org_id)).select(App::as_select()).first(conn).optional()
}

/// An app by client id, whatever its org or state.
pub fn app_by_client_id(conn: &mut AnyConnection, client_id: &str) -> QueryResult<Option<App>> {
    apps::table.filter(apps::client_id.eq(client_id)).select(App::as_select()).first(conn).optional()
}

/// The app a client authenticates as, on the hot path: the concrete connection and `load`
/// rather than `first` keep the prepared statement (see `tokens::find_grant`); client_id
/// is unique.
/// Only the columns `AppAuth` names are read. One function, so that a cache can wrap it.
pub fn app_for_client_auth(conn: &mut AnyConnection, client_id: &str) -> QueryResult<Option<AppAuth>> {
    Ok(crate::on_backend!(conn, c => apps::table
        .filter(apps::client_id.eq(client_id))
        .select(AppAuth::as_select())
        .load(c)?)
    .pop())
}

/// The app whose current secret, or previous secret still in its grace, has this hash
/// (leak reports): (the app, whether it was the previous secret).
pub fn app_by_secret_hash(conn: &mut AnyConnection, hash: &str, now: i64) -> QueryResult<Option<(App, bool)>> {
    if let Some(a) = apps::table.filter(apps::secret_hash.eq(hash)).select(App::as_select()).first(conn).optional()? {
        return Ok(Some((a, false)));
    }
    Ok(apps::table
        .filter(apps::previous_secret_hash.eq(hash))
        .filter(apps::previous_secret_expires_at.gt(now))
        .select(App::as_select())
        .first(conn)
        .optional()?
        .map(|a| (a, true)))
}

pub fn insert_app(conn: &mut AnyConnection, a: &App) -> QueryResult<()> {
    diesel::insert_into(apps::table).values(a).execute(conn)?;
    Ok(())
}

/// One page of the org's apps. Sorts: `name`, else `created_at`.
pub fn list_apps(conn: &mut AnyConnection, org_id: &str, page: &Page) -> QueryResult<Rows<App>> {
    let query = || apps::table.filter(apps::org_id.eq(org_id)).select((App::as_select(), page::total())).into_boxed();
    page.load(conn, query, |q| match page.key() {
        Some("name") => page.order(q, apps::name, apps::id),
        _ => page.order(q, apps::created_at, apps::id),
    })
}

/// Stores an app's settings (name, description, roles, TTL, disabled, introspect, epoch)
/// and update time.
pub fn update_app(conn: &mut AnyConnection, a: &App, now: i64) -> QueryResult<()> {
    diesel::update(apps::table.find(&a.id))
        .set((
            apps::name.eq(&a.name),
            apps::description.eq(&a.description),
            apps::roles.eq(&a.roles),
            apps::access_token_ttl_seconds.eq(a.access_token_ttl_seconds),
            apps::disabled.eq(a.disabled),
            apps::introspect.eq(a.introspect),
            apps::epoch.eq(a.epoch),
            apps::previous_secret_hash.eq(&a.previous_secret_hash),
            apps::previous_secret_expires_at.eq(a.previous_secret_expires_at),
            apps::audiences.eq(&a.audiences),
            apps::management.eq(a.management),
            apps::updated_at.eq(now),
        ))
        .execute(conn)?;
    revocations::invalidate(conn)?;
    if a.disabled {
        // Disabling moved the epoch on (the service did): tokens below it are refused.
        feed_principal(conn, &a.org_id, &a.client_id, "app", a.epoch, now)?;
    }
    Ok(())
}

/// Stores an app's secret hash and hint, previous secret and its grace, who has seen a
/// working secret, epoch and update time.
pub fn update_app_secret(conn: &mut AnyConnection, a: &App, now: i64) -> QueryResult<()> {
    diesel::update(apps::table.find(&a.id))
        .set((
            apps::secret_hash.eq(&a.secret_hash),
            apps::secret_hint.eq(&a.secret_hint),
            apps::previous_secret_hash.eq(&a.previous_secret_hash),
            apps::previous_secret_expires_at.eq(a.previous_secret_expires_at),
            apps::secret_seen_by.eq(&a.secret_seen_by),
            apps::epoch.eq(a.epoch),
            apps::updated_at.eq(now),
        ))
        .execute(conn)?;
    // With a grace, tokens of the previous epoch live on until it ends (a feed row then).
    let live_from = if a.previous_secret_expires_at.is_some() { a.epoch - 1 } else { a.epoch };
    feed_principal(conn, &a.org_id, &a.client_id, "app", live_from, now)
}

pub fn delete_app(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    let app: Option<(String, String, i64)> =
        apps::table.find(id).select((apps::org_id, apps::client_id, apps::epoch)).first(conn).optional()?;
    diesel::delete(apps::table.find(id)).execute(conn)?;
    if let Some((org, client_id, epoch)) = app {
        feed_principal(conn, &org, &client_id, "app", epoch + 1, now)?;
    }
    Ok(())
}

/// Enabled apps of the org that `person` created or saw the secret of.
pub fn live_apps_held_by(conn: &mut AnyConnection, org_id: &str, person: &str) -> QueryResult<Vec<App>> {
    apps::table
        .filter(apps::org_id.eq(org_id))
        .filter(apps::created_by.eq(person).or(apps::secret_seen_by.like(role_pattern(person)).escape('\\')))
        .filter(apps::disabled.eq(false))
        .select(App::as_select())
        .load(conn)
}

/// Disables an app, moves its epoch on and replaces its secret hash with `secret_hash`
/// (and its hint with `hint`).
pub fn disable_app(conn: &mut AnyConnection, id: &str, secret_hash: &str, hint: &str, now: i64) -> QueryResult<()> {
    diesel::update(apps::table.find(id))
        .set((
            apps::disabled.eq(true),
            apps::epoch.eq(apps::epoch + 1),
            apps::secret_hash.eq(secret_hash),
            apps::secret_hint.eq(hint),
            apps::previous_secret_hash.eq(None::<String>),
            apps::previous_secret_expires_at.eq(None::<i64>),
            apps::secret_seen_by.eq("[]"),
            apps::updated_at.eq(now),
        ))
        .execute(conn)?;
    let (org, client_id, epoch): (String, String, i64) =
        apps::table.find(id).select((apps::org_id, apps::client_id, apps::epoch)).first(conn)?;
    feed_principal(conn, &org, &client_id, "app", epoch, now)
}

/// Passes an app to `creator` with a new secret hash (one nobody was shown: nobody holds
/// a working secret), moving its epoch on (its access tokens end).
pub fn transfer_app(
    conn: &mut AnyConnection,
    id: &str,
    creator: &str,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::update(apps::table.find(id))
        .set((
            apps::created_by.eq(Some(creator)),
            apps::epoch.eq(apps::epoch + 1),
            apps::secret_hash.eq(secret_hash),
            apps::secret_hint.eq(hint),
            apps::previous_secret_hash.eq(None::<String>),
            apps::previous_secret_expires_at.eq(None::<i64>),
            apps::secret_seen_by.eq("[]"),
            apps::updated_at.eq(now),
        ))
        .execute(conn)?;
    revocations::invalidate(conn)
}

/// Clears previous app secrets whose grace period has ended; answers how many.
pub fn clear_ended_secret_graces(conn: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    let ended: Vec<(String, String, i64)> = apps::table
        .filter(apps::previous_secret_expires_at.le(now))
        .select((apps::org_id, apps::client_id, apps::epoch))
        .load(conn)?;
    // The previous epoch's access tokens end with the grace.
    for (org, client_id, epoch) in &ended {
        feed_principal(conn, org, client_id, "app", *epoch, now)?;
    }
    diesel::update(apps::table.filter(apps::previous_secret_expires_at.le(now)))
        .set((apps::previous_secret_hash.eq(None::<String>), apps::previous_secret_expires_at.eq(None::<i64>)))
        .execute(conn)
}

/// Holders in the org of roles text matching the LIKE `pattern`: (undeleted users,
/// undeleted service accounts, apps).
/// Every live holder of explicit roles in the org, for naming a role's holders: (kind —
/// "user", "service_account" or "app" —, label — an email or a name —, roles text), people
/// by email, then service accounts and apps by name.
pub fn role_holders(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<(&'static str, String, String)>> {
    let mut out: Vec<(&'static str, String, String)> = users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::deleted_at.is_null())
        .order(users::email)
        .select((users::email, users::roles))
        .load::<(String, String)>(conn)?
        .into_iter()
        .map(|(l, r)| ("user", l, r))
        .collect();
    out.extend(
        service_accounts::table
            .filter(service_accounts::org_id.eq(org_id))
            .filter(service_accounts::deleted_at.is_null())
            .order(service_accounts::name)
            .select((service_accounts::name, service_accounts::roles))
            .load::<(String, String)>(conn)?
            .into_iter()
            .map(|(l, r)| ("service_account", l, r)),
    );
    out.extend(
        apps::table
            .filter(apps::org_id.eq(org_id))
            .order(apps::name)
            .select((apps::name, apps::roles))
            .load::<(String, String)>(conn)?
            .into_iter()
            .map(|(l, r)| ("app", l, r)),
    );
    Ok(out)
}

pub fn count_with_roles_like(conn: &mut AnyConnection, org_id: &str, pattern: &str) -> QueryResult<(i64, i64, i64)> {
    let u: i64 = users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::deleted_at.is_null())
        .filter(users::roles.like(pattern).escape('\\'))
        .count()
        .get_result(conn)?;
    let s: i64 = service_accounts::table
        .filter(service_accounts::org_id.eq(org_id))
        .filter(service_accounts::deleted_at.is_null())
        .filter(service_accounts::roles.like(pattern).escape('\\'))
        .count()
        .get_result(conn)?;
    let a: i64 = apps::table
        .filter(apps::org_id.eq(org_id))
        .filter(apps::roles.like(pattern).escape('\\'))
        .count()
        .get_result(conn)?;
    Ok((u, s, a))
}
