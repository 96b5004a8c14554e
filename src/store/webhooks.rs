//! Webhooks, the notification outbox and the delivery log; the expiry scan's reads.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::models::{Delivery, OutboxRow, Webhook};
use super::page::{self, Page, Rows};
use super::schema::{api_tokens, outbox, users, webhook_deliveries, webhooks};
use super::AnyConnection;

// ---- webhooks ----

pub fn insert(conn: &mut AnyConnection, w: &Webhook) -> QueryResult<()> {
    diesel::insert_into(webhooks::table).values(w).execute(conn)?;
    Ok(())
}

/// A webhook of the org, by id.
pub fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<Webhook>> {
    webhooks::table.find(id).filter(webhooks::org_id.eq(org_id)).select(Webhook::as_select()).first(conn).optional()
}

/// A webhook by id, whatever its org (the delivery worker).
pub fn get(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Webhook>> {
    webhooks::table.find(id).select(Webhook::as_select()).first(conn).optional()
}

pub fn count(conn: &mut AnyConnection, org_id: &str) -> QueryResult<i64> {
    webhooks::table.filter(webhooks::org_id.eq(org_id)).count().get_result(conn)
}

/// One page of the org's webhooks. Sorts: `url`, else `created_at`.
pub fn list(conn: &mut AnyConnection, org_id: &str, page: &Page) -> QueryResult<Rows<Webhook>> {
    let query = || {
        webhooks::table.filter(webhooks::org_id.eq(org_id)).select((Webhook::as_select(), page::total())).into_boxed()
    };
    page.load(conn, query, |q| match page.key() {
        Some("url") => page.order(q, webhooks::url, webhooks::id),
        _ => page.order(q, webhooks::created_at, webhooks::id),
    })
}

/// The org's enabled webhooks (at most the per-org limit).
pub fn enabled(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<Webhook>> {
    webhooks::table
        .filter(webhooks::org_id.eq(org_id))
        .filter(webhooks::enabled.eq(true))
        .select(Webhook::as_select())
        .load(conn)
}

/// The org's webhooks (enabled or not) that `person` created or saw the secret of.
pub fn held_by(conn: &mut AnyConnection, org_id: &str, person: &str) -> QueryResult<Vec<Webhook>> {
    webhooks::table
        .filter(webhooks::org_id.eq(org_id))
        .filter(
            webhooks::created_by
                .eq(person)
                .or(webhooks::secret_seen_by.like(super::principals::role_pattern(person)).escape('\\')),
        )
        .select(Webhook::as_select())
        .load(conn)
}

pub fn update(conn: &mut AnyConnection, w: &Webhook) -> QueryResult<()> {
    diesel::update(webhooks::table.find(&w.id))
        .set((
            webhooks::url.eq(&w.url),
            webhooks::description.eq(&w.description),
            webhooks::events.eq(&w.events),
            webhooks::enabled.eq(w.enabled),
            webhooks::secret_sealed.eq(&w.secret_sealed),
            webhooks::secret_hint.eq(&w.secret_hint),
            webhooks::secret_seen_by.eq(&w.secret_seen_by),
            webhooks::created_by.eq(&w.created_by),
            webhooks::updated_at.eq(w.updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a webhook with its delivery log and its undelivered outbox rows.
pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::delete(outbox::table.filter(outbox::webhook_id.eq(id))).execute(conn)?;
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::webhook_id.eq(id))).execute(conn)?;
    diesel::delete(webhooks::table.find(id)).execute(conn)?;
    Ok(())
}

// ---- outbox ----

pub fn enqueue(conn: &mut AnyConnection, rows: &[OutboxRow]) -> QueryResult<()> {
    // One statement per row: SQLite's multi-row insert through MultiConnection is not
    // available, and an event fans out to a handful of rows at most.
    for r in rows {
        diesel::insert_into(outbox::table).values(r).execute(conn)?;
    }
    Ok(())
}

/// Leases up to `limit` due rows to `claim` until `lease_until`, and answers them. One
/// statement: on PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so
/// instances claiming at once take disjoint rows; on SQLite a writing statement holds the
/// database's write lock from its start, so claims are serialised. A row whose lease ran
/// out (its instance died mid-delivery) is due again: delivery is at least once.
pub fn claim(
    conn: &mut AnyConnection,
    now: i64,
    lease_until: i64,
    claim: &str,
    limit: i64,
    per_org: i64,
) -> QueryResult<Vec<OutboxRow>> {
    // Fair claiming: each org's oldest due rows are numbered (rn), and an org takes at most
    // `per_org` rows in flight at once, counting those other claims still hold (busy). The
    // rows go out round by round (every org's first, then every org's second), so one org's
    // backlog or slow receivers never hold back another org's delivery for more than a pass.
    // The outer condition re-checks the lease: two instances racing for a row (PostgreSQL
    // re-evaluates it on the updated row) cannot both claim it.
    const DUE: &str = "delivered_at IS NULL AND failed_at IS NULL";
    let sql = |p: [&str; 5]| {
        let [lease, by, now, per_org, limit] = p;
        format!(
            "UPDATE outbox SET locked_until = {lease}, locked_by = {by} WHERE {DUE} \
             AND (locked_until IS NULL OR locked_until <= {now}) AND id IN ( \
               SELECT id FROM ( \
                 SELECT o.id, o.next_attempt_at, \
                   ROW_NUMBER() OVER (PARTITION BY o.org_id ORDER BY o.next_attempt_at, o.id) AS rn, \
                   COALESCE(f.n, 0) AS busy \
                 FROM outbox o LEFT JOIN ( \
                   SELECT org_id, COUNT(*) AS n FROM outbox WHERE {DUE} AND locked_until > {now} GROUP BY org_id \
                 ) f ON f.org_id = o.org_id \
                 WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= {now} \
                   AND (o.locked_until IS NULL OR o.locked_until <= {now}) \
               ) r WHERE rn + busy <= {per_org} ORDER BY rn, next_attempt_at, id LIMIT {limit})"
        )
    };
    match conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(sql(["?1", "?2", "?3", "?4", "?5"]))
            .bind::<BigInt, _>(lease_until)
            .bind::<Text, _>(claim)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(per_org)
            .bind::<BigInt, _>(limit)
            .execute(c)?,
        AnyConnection::Postgresql(c) => diesel::sql_query(sql(["$1", "$2", "$3", "$4", "$5"]))
            .bind::<BigInt, _>(lease_until)
            .bind::<Text, _>(claim)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(per_org)
            .bind::<BigInt, _>(limit)
            .execute(c)?,
    };
    outbox::table
        .filter(outbox::locked_by.eq(claim))
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::failed_at.is_null())
        .order((outbox::next_attempt_at, outbox::id))
        .select(OutboxRow::as_select())
        .load(conn)
}

/// What became of one attempt.
pub enum Outcome<'a> {
    Delivered,
    Retry { next_attempt_at: i64, error: &'a str },
    Failed { error: &'a str },
}

/// Records an attempt of a row this claim still holds; answers false when the lease was
/// lost (another instance took the row over), in which case nothing is written.
pub fn finish(
    conn: &mut AnyConnection,
    id: &str,
    claim: &str,
    attempts: i64,
    now: i64,
    o: Outcome<'_>,
) -> QueryResult<bool> {
    let target = outbox::table.find(id).filter(outbox::locked_by.eq(claim));
    let unlock =
        (outbox::attempts.eq(attempts), outbox::locked_until.eq(None::<i64>), outbox::locked_by.eq(None::<String>));
    let n = match o {
        Outcome::Delivered => diesel::update(target)
            .set((unlock, outbox::delivered_at.eq(Some(now)), outbox::last_error.eq(None::<String>)))
            .execute(conn)?,
        Outcome::Retry { next_attempt_at, error } => diesel::update(target)
            .set((unlock, outbox::next_attempt_at.eq(next_attempt_at), outbox::last_error.eq(Some(error))))
            .execute(conn)?,
        Outcome::Failed { error } => diesel::update(target)
            .set((unlock, outbox::failed_at.eq(Some(now)), outbox::last_error.eq(Some(error))))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Replaces a row's payload (a delivered or failed email's sealed part dropped).
pub fn set_payload(conn: &mut AnyConnection, id: &str, payload: &str) -> QueryResult<()> {
    diesel::update(outbox::table.find(id)).set(outbox::payload.eq(payload)).execute(conn)?;
    Ok(())
}

/// Rows still to deliver, and rows given up on, by kind: (kind, pending, failed).
pub fn depth(conn: &mut AnyConnection) -> QueryResult<Vec<(String, i64, i64)>> {
    let pending: Vec<(String, i64)> = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::failed_at.is_null())
        .group_by(outbox::kind)
        .select((outbox::kind, diesel::dsl::count_star()))
        .load(conn)?;
    let failed: Vec<(String, i64)> = outbox::table
        .filter(outbox::failed_at.is_not_null())
        .group_by(outbox::kind)
        .select((outbox::kind, diesel::dsl::count_star()))
        .load(conn)?;
    let mut out: Vec<(String, i64, i64)> = Vec::new();
    for kind in ["webhook", "email"] {
        let p = pending.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
        let f = failed.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
        out.push((kind.to_string(), p, f));
    }
    Ok(out)
}

/// Drops delivered and failed rows created before `before`.
pub fn purge(conn: &mut AnyConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::created_at.lt(before))
            .filter(outbox::delivered_at.is_not_null().or(outbox::failed_at.is_not_null())),
    )
    .execute(conn)
}

// ---- delivery log ----

/// Records an attempt and keeps only the newest `keep` attempts of its webhook.
pub fn log_delivery(conn: &mut AnyConnection, d: &Delivery, keep: i64) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table).values(d).execute(conn)?;
    let old: Vec<String> = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(&d.webhook_id))
        .order((webhook_deliveries::at.desc(), webhook_deliveries::id.desc()))
        .select(webhook_deliveries::id)
        .offset(keep)
        .limit(1000)
        .load(conn)?;
    if !old.is_empty() {
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&old))).execute(conn)?;
    }
    Ok(())
}

/// One page of a webhook's delivery attempts. Sort: `at` (with the page's direction).
pub fn deliveries(conn: &mut AnyConnection, webhook_id: &str, page: &Page) -> QueryResult<Rows<Delivery>> {
    let query = || {
        webhook_deliveries::table
            .filter(webhook_deliveries::webhook_id.eq(webhook_id))
            .select((Delivery::as_select(), page::total()))
            .into_boxed()
    };
    page.load(conn, query, |q| page.order(q, webhook_deliveries::at, webhook_deliveries::id))
}

// ---- expiry scan ----

/// The smallest notice a token without one is taken to have had.
pub const NO_NOTICE: i64 = i64::MAX;

/// A token the expiry scan looks at.
#[derive(Queryable, Debug)]
pub struct DueToken {
    pub id: String,
    pub org_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Live tokens (not revoked) that have reached the milestone after their last notice,
/// soonest expiry first. `milestones` are days before expiry, descending, the last 0
/// ("expired"); a notice is always one of them, so the candidates are: no notice and within
/// the first, or notice `m[i]` and within `m[i+1]`. Each disjunct is a range of the index
/// (expiry_notice, expires_at) of live tokens: tokens far from expiry and tokens already
/// announced expired are never read.
pub fn expiry_due(conn: &mut AnyConnection, now: i64, milestones: [i64; 4], limit: i64) -> QueryResult<Vec<DueToken>> {
    let within = |m: i64| api_tokens::expires_at.le(now + m * 86_400);
    let notice = api_tokens::expiry_notice;
    let [a, b, c, d] = milestones;
    api_tokens::table
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            notice
                .is_null()
                .and(within(a))
                .or(notice.assume_not_null().eq(a).and(within(b)))
                .or(notice.assume_not_null().eq(b).and(within(c)))
                .or(notice.assume_not_null().eq(c).and(within(d))),
        )
        .order((api_tokens::expires_at, api_tokens::id))
        .limit(limit)
        .select((api_tokens::id, api_tokens::org_id, api_tokens::created_at, api_tokens::expires_at))
        .load(conn)
}

/// Records milestone `m` on a token unless it (or a later one) was recorded already;
/// answers whether this call recorded it (exactly one instance wins).
pub fn mark_notice(conn: &mut AnyConnection, id: &str, m: i64) -> QueryResult<bool> {
    let n = diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null())
            .filter(api_tokens::expiry_notice.is_null().or(api_tokens::expiry_notice.gt(m))),
    )
    .set(api_tokens::expiry_notice.eq(Some(m)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Emails of the org's enabled admins and owners (recipients for service-account tokens).
pub fn admin_emails(conn: &mut AnyConnection, org_id: &str) -> QueryResult<Vec<String>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::disabled.eq(false))
        .filter(users::deleted_at.is_null())
        .filter(users::roles.like("%\"org:admin\"%").or(users::roles.like("%\"org:owner\"%")))
        .order(users::email)
        .select(users::email)
        .load(conn)
}

/// The email of an enabled, undeleted user.
pub fn live_user_email(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<String>> {
    users::table
        .find(id)
        .filter(users::disabled.eq(false))
        .filter(users::deleted_at.is_null())
        .select(users::email)
        .first(conn)
        .optional()
}

/// The live (not revoked) tokens of one owner in the org.
pub fn live_tokens_of(
    conn: &mut AnyConnection,
    org_id: &str,
    owner_id: &str,
) -> QueryResult<Vec<super::models::ApiToken>> {
    api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::owner_id.eq(owner_id))
        .filter(api_tokens::revoked_at.is_null())
        .select(super::models::ApiToken::as_select())
        .load(conn)
}

/// Deletes a row this claim holds without delivering it (email while no SMTP server is
/// configured).
pub fn discard(conn: &mut AnyConnection, id: &str, claim: &str) -> QueryResult<()> {
    diesel::delete(outbox::table.find(id).filter(outbox::locked_by.eq(claim))).execute(conn)?;
    Ok(())
}
