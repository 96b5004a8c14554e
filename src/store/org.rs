//! Organizations, their token policy and their role catalogue.
use diesel::prelude::*;

use super::models::{Org, Policy, Role};
use super::schema::{orgs, policies, roles};
use super::AnyConnection;

// ---- orgs ----

/// An org known to exist, by id.
pub fn get(conn: &mut AnyConnection, id: &str) -> QueryResult<Org> {
    orgs::table.find(id).select(Org::as_select()).first(conn)
}

/// Orgs whose name or id is `name_or_id`.
pub fn named(conn: &mut AnyConnection, name_or_id: &str) -> QueryResult<Vec<Org>> {
    orgs::table.filter(orgs::name.eq(name_or_id).or(orgs::id.eq(name_or_id))).select(Org::as_select()).load(conn)
}

/// Serialises first-start bootstraps of several instances on one empty database: a
/// transaction-scoped advisory lock on PostgreSQL (released however the transaction
/// ends). A no-op on SQLite.
pub fn lock_bootstrap(conn: &mut AnyConnection) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    if matches!(conn, AnyConnection::Postgresql(_)) {
        conn.batch_execute("SELECT pg_advisory_xact_lock(7320152)")?;
    }
    Ok(())
}

/// Every org's id.
pub fn ids(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    orgs::table.select(orgs::id).order(orgs::id.asc()).load(conn)
}

pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    orgs::table.count().get_result(conn)
}

pub fn count_named(conn: &mut AnyConnection, name: &str) -> QueryResult<i64> {
    orgs::table.filter(orgs::name.eq(name)).count().get_result(conn)
}

pub fn insert(conn: &mut AnyConnection, org: &Org) -> QueryResult<()> {
    diesel::insert_into(orgs::table).values(org).execute(conn)?;
    Ok(())
}

/// Row lock on the org (a no-op write): serialises owner-affecting changes within an org
/// on PostgreSQL.
pub fn lock(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::update(orgs::table.find(id)).set(orgs::name.eq(orgs::name)).execute(conn)?;
    Ok(())
}

// ---- policy ----

/// The org's stored policy, if it ever set one.
pub fn policy(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Option<Policy>> {
    policies::table.find(org_id).select(Policy::as_select()).first(conn).optional()
}

/// Replaces the stored policy (`exists`) or stores the first one.
pub fn save_policy(conn: &mut AnyConnection, p: &Policy, exists: bool) -> QueryResult<()> {
    if exists {
        diesel::update(policies::table.find(&p.org_id)).set(p).execute(conn)?;
    } else {
        diesel::insert_into(policies::table).values(p).execute(conn)?;
    }
    super::revocations::invalidate(conn)
}

// ---- role catalogue ----

/// The org's catalogued roles, by name.
pub fn roles(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<Role>> {
    roles::table.filter(roles::org_id.eq(org_id)).order(roles::name.asc()).select(Role::as_select()).load(conn)
}

pub fn role_names(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<String>> {
    roles::table.filter(roles::org_id.eq(org_id)).select(roles::name).load(conn)
}

/// How many service and custom roles the org catalogues.
pub fn count_roles(conn: &mut AnyConnection, org_id: &str) -> QueryResult<i64> {
    roles::table.filter(roles::org_id.eq(org_id)).count().get_result(conn)
}

/// Whether the org catalogues `name` (0 or 1).
pub fn count_role(conn: &mut AnyConnection, org_id: &str, name: &str) -> QueryResult<i64> {
    roles::table.filter(roles::org_id.eq(org_id)).filter(roles::name.eq(name)).count().get_result(conn)
}

pub fn insert_role(conn: &mut AnyConnection, r: &Role) -> QueryResult<()> {
    diesel::insert_into(roles::table).values(r).execute(conn)?;
    Ok(())
}

pub fn set_role_description(conn: &mut AnyConnection, org_id: &str, name: &str, description: &str) -> QueryResult<()> {
    diesel::update(roles::table.filter(roles::org_id.eq(org_id)).filter(roles::name.eq(name)))
        .set(roles::description.eq(description))
        .execute(conn)?;
    Ok(())
}

pub fn delete_role(conn: &mut AnyConnection, org_id: &str, name: &str) -> QueryResult<()> {
    diesel::delete(roles::table.filter(roles::org_id.eq(org_id)).filter(roles::name.eq(name))).execute(conn)?;
    super::revocations::invalidate(conn)
}
