//! The revocation feed's rows, and the process-wide revocation generation that in-memory
//! credential caches (forward-auth, introspection) compare against.
//!
//! Every store function that revokes or weakens a credential calls [`record`] (feed row
//! and generation) or [`changed`] (generation only). The generation moves on twice: at
//! once, inside the writer's transaction, and again once the transaction is over
//! ([`settle`], called by the blocking runner after each closure). A cache fills an entry
//! only under the generation it read *before* its database read, so an entry read while a
//! revocation was being committed is stale from the second bump on.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::models::RevocationRow;
use super::schema::{api_tokens, revocation_feed};
use super::AnyConnection;

/// How long a feed row matters: no access token outlives its issue by more than the
/// longest TTL an app may ask for, plus the verifiers' clock leeway.
pub const KEEP_SECONDS: i64 = crate::config::MAX_ACCESS_TOKEN_TTL + crate::jwt::LEEWAY;

static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static PENDING: Cell<bool> = const { Cell::new(false) };
}

/// The current generation (read it before the database read whose result you cache).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Something that credential caches may hold was revoked or weakened on this thread.
pub fn changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    PENDING.with(|p| p.set(true));
}

/// The PostgreSQL channel on which instances tell each other to drop their credential caches.
pub const CHANNEL: &str = "tokend_credentials";

/// Something credential caches may hold changed, in the caller's transaction: this
/// process's caches drop everything ([`changed`]) and, on PostgreSQL, `NOTIFY
/// tokend_credentials` tells every instance's listener once the transaction commits.
pub fn invalidate(conn: &mut AnyConnection) -> QueryResult<()> {
    changed();
    if matches!(conn, AnyConnection::Postgresql(_)) {
        conn.batch_execute("NOTIFY tokend_credentials")?;
    }
    Ok(())
}

/// After a write transaction ended on this thread: the second bump (see the module doc).
pub fn settle() {
    if PENDING.with(|p| p.replace(false)) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
}

/// The kinds of feed rows.
pub const JTI: &str = "jti";
pub const TOKEN: &str = "token";
pub const PRINCIPAL: &str = "principal";

/// Appends a feed row (and moves the generation on). On PostgreSQL the writer first takes
/// a transaction-scoped advisory lock, so that sequence numbers commit in order and a
/// reader's cursor never skips a row committed late.
pub fn record(
    conn: &mut AnyConnection,
    org_id: &str,
    kind: &str,
    subject: &str,
    principal: Option<(&str, i64)>,
    at: i64,
    keep_until: i64,
) -> QueryResult<()> {
    invalidate(conn)?;
    if matches!(conn, AnyConnection::Postgresql(_)) {
        conn.batch_execute("SELECT pg_advisory_xact_lock(7320153)")?;
    }
    diesel::insert_into(revocation_feed::table)
        .values((
            revocation_feed::org_id.eq(org_id),
            revocation_feed::kind.eq(kind),
            revocation_feed::subject.eq(subject),
            revocation_feed::acct.eq(principal.map(|p| p.0)),
            revocation_feed::epoch.eq(principal.map(|p| p.1)),
            revocation_feed::at.eq(at),
            revocation_feed::keep_until.eq(keep_until),
        ))
        .execute(conn)?;
    Ok(())
}

/// Feed rows for revoked API tokens, by id (their org read from the token rows).
pub fn tokens_revoked(conn: &mut AnyConnection, ids: &[String], now: i64) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, String)> =
        api_tokens::table.filter(api_tokens::id.eq_any(ids)).select((api_tokens::id, api_tokens::org_id)).load(conn)?;
    for (id, org) in rows {
        record(conn, &org, TOKEN, &id, None, now, now + KEEP_SECONDS)?;
    }
    Ok(())
}

/// A feed row: access tokens of `sub` minted under an epoch below `epoch` are revoked.
pub fn principal(
    conn: &mut AnyConnection,
    org_id: &str,
    sub: &str,
    acct: &str,
    epoch: i64,
    now: i64,
) -> QueryResult<()> {
    record(conn, org_id, PRINCIPAL, sub, Some((acct, epoch)), now, now + KEEP_SECONDS)
}

/// The highest sequence number committed so far (0 when the feed is empty).
pub fn max_seq(conn: &mut AnyConnection) -> QueryResult<i64> {
    let m: Option<i64> = revocation_feed::table.select(diesel::dsl::max(revocation_feed::seq)).first(conn)?;
    Ok(m.unwrap_or(0))
}

/// The org's rows with `after < seq <= upto` that still matter at `now`, in order.
pub fn since(
    conn: &mut AnyConnection,
    org_id: &str,
    after: i64,
    upto: i64,
    now: i64,
) -> QueryResult<Vec<RevocationRow>> {
    revocation_feed::table
        .filter(revocation_feed::org_id.eq(org_id))
        .filter(revocation_feed::seq.gt(after))
        .filter(revocation_feed::seq.le(upto))
        .filter(revocation_feed::keep_until.gt(now))
        .order(revocation_feed::seq.asc())
        .select(RevocationRow::as_select())
        .load(conn)
}

/// Deletes rows that no longer matter; answers how many went.
pub fn purge(conn: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(revocation_feed::table.filter(revocation_feed::keep_until.le(now))).execute(conn)
}
