//! Trust policies (external OIDC issuers whose tokens are exchanged for a service account's
//! access tokens) and apps' delegation allowances (the audiences an app may obtain tokens
//! for on a user's behalf).
use diesel::prelude::*;

use super::page::{self, Page, Rows};
use super::schema::{app_delegations, trust_policies};
use super::AnyConnection;

#[derive(Queryable, Selectable, Insertable, AsChangeset, Clone, Debug)]
#[diesel(table_name = trust_policies)]
#[diesel(treat_none_as_null = true)]
pub struct TrustPolicy {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    /// The external issuer, exactly as its tokens' `iss`.
    pub issuer: String,
    /// The `aud` its tokens must carry.
    pub audience: String,
    /// A JSON object {claim: pattern}.
    pub conditions: String,
    pub service_account_id: String,
    /// Sorted JSON array.
    pub roles: String,
    pub max_age_seconds: i64,
    pub disabled: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = app_delegations)]
pub struct Delegation {
    pub app_id: String,
    pub audience: String,
    pub org_id: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

pub fn insert(conn: &mut AnyConnection, p: &TrustPolicy) -> QueryResult<()> {
    diesel::insert_into(trust_policies::table).values(p).execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut AnyConnection, p: &TrustPolicy) -> QueryResult<()> {
    diesel::update(trust_policies::table.find(&p.id)).set(p).execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::delete(trust_policies::table.find(id)).execute(conn)?;
    Ok(())
}

/// A policy of the org, by id.
pub fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<TrustPolicy>> {
    trust_policies::table
        .find(id)
        .filter(trust_policies::org_id.eq(org_id))
        .select(TrustPolicy::as_select())
        .first(conn)
        .optional()
}

/// Every enabled policy (of any org) trusting `issuer`, oldest first.
pub fn enabled_for_issuer(conn: &mut AnyConnection, issuer: &str) -> QueryResult<Vec<TrustPolicy>> {
    trust_policies::table
        .filter(trust_policies::issuer.eq(issuer))
        .filter(trust_policies::disabled.eq(false))
        .order((trust_policies::created_at.asc(), trust_policies::id.asc()))
        .limit(100)
        .select(TrustPolicy::as_select())
        .load(conn)
}

/// How many policies the org has (a bound on what one org may create).
pub fn count(conn: &mut AnyConnection, org_id: &str) -> QueryResult<i64> {
    trust_policies::table.filter(trust_policies::org_id.eq(org_id)).count().get_result(conn)
}

/// One page of the org's policies. Sorts: `name`, `issuer`, else `created_at`.
pub fn list(conn: &mut AnyConnection, org_id: &str, page: &Page) -> QueryResult<Rows<TrustPolicy>> {
    let query = || {
        trust_policies::table
            .filter(trust_policies::org_id.eq(org_id))
            .select((TrustPolicy::as_select(), page::total()))
            .into_boxed()
    };
    page.load(conn, query, |q| match page.key() {
        Some("name") => page.order(q, trust_policies::name, trust_policies::id),
        Some("issuer") => page.order(q, trust_policies::issuer, trust_policies::id),
        _ => page.order(q, trust_policies::created_at, trust_policies::id),
    })
}

/// The audiences app `app_id` may act for, sorted.
pub fn delegations(conn: &mut AnyConnection, app_id: &str) -> QueryResult<Vec<Delegation>> {
    app_delegations::table
        .filter(app_delegations::app_id.eq(app_id))
        .order(app_delegations::audience.asc())
        .select(Delegation::as_select())
        .load(conn)
}

/// Whether app `app_id` of `org_id` may act for `audience`.
pub fn delegation_allowed(conn: &mut AnyConnection, org_id: &str, app_id: &str, audience: &str) -> QueryResult<bool> {
    let n: i64 = app_delegations::table
        .filter(app_delegations::app_id.eq(app_id))
        .filter(app_delegations::org_id.eq(org_id))
        .filter(app_delegations::audience.eq(audience))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Replaces the audiences app `app_id` may act for.
pub fn replace_delegations(conn: &mut AnyConnection, app_id: &str, rows: &[Delegation]) -> QueryResult<()> {
    diesel::delete(app_delegations::table.filter(app_delegations::app_id.eq(app_id))).execute(conn)?;
    for r in rows {
        diesel::insert_into(app_delegations::table).values(r).execute(conn)?;
    }
    Ok(())
}
