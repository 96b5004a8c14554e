//! What ends logins and access tokens: login sessions, revoked access-token ids (jti) and
//! one-time password reset codes.
use diesel::prelude::*;

use super::models::{ResetCode, Session};
use super::revocations;
use super::schema::{reset_codes, revoked_jtis, sessions};
use super::AnyConnection;

pub fn insert(conn: &mut AnyConnection, s: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(s).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Session>> {
    sessions::table.find(id).select(Session::as_select()).first(conn).optional()
}

/// A console session by the SHA-256 of its cookie secret, live or not.
pub fn find_by_secret(conn: &mut AnyConnection, secret_hash: &str) -> QueryResult<Option<Session>> {
    sessions::table.filter(sessions::secret_hash.eq(secret_hash)).select(Session::as_select()).first(conn).optional()
}

/// Ends a session unless it already ended.
pub fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(sessions::table.find(id).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(Some(now)))
        .execute(conn)?;
    revocations::invalidate(conn)?;
    Ok(())
}

/// Carries a live session over to the user's new epoch.
pub fn set_epoch(conn: &mut AnyConnection, id: &str, epoch: i64) -> QueryResult<()> {
    diesel::update(sessions::table.find(id).filter(sessions::revoked_at.is_null()))
        .set(sessions::epoch.eq(epoch))
        .execute(conn)?;
    Ok(())
}

pub fn jti_revoked(conn: &mut AnyConnection, jti: &str) -> QueryResult<bool> {
    let n: i64 = revoked_jtis::table.filter(revoked_jtis::jti.eq(jti)).count().get_result(conn)?;
    Ok(n > 0)
}

/// Refuses access tokens with this id until `expires_at` (and says so in the feed).
pub fn insert_revoked_jti(
    conn: &mut AnyConnection,
    jti: &str,
    org_id: &str,
    expires_at: i64,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(revoked_jtis::table)
        .values((revoked_jtis::jti.eq(jti), revoked_jtis::org_id.eq(org_id), revoked_jtis::expires_at.eq(expires_at)))
        .execute(conn)?;
    revocations::record(conn, org_id, revocations::JTI, jti, None, now, expires_at)
}

pub fn insert_reset_code(conn: &mut AnyConnection, c: &ResetCode) -> QueryResult<()> {
    diesel::insert_into(reset_codes::table).values(c).execute(conn)?;
    Ok(())
}

/// Marks the user's unused reset codes used.
pub fn void_reset_codes(conn: &mut AnyConnection, user_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(reset_codes::table.filter(reset_codes::user_id.eq(user_id)).filter(reset_codes::used_at.is_null()))
        .set(reset_codes::used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// Marks unused reset codes issued by `issuer` used.
pub fn void_reset_codes_issued_by(conn: &mut AnyConnection, issuer: &str, now: i64) -> QueryResult<()> {
    diesel::update(
        reset_codes::table.filter(reset_codes::created_by.eq(issuer)).filter(reset_codes::used_at.is_null()),
    )
    .set(reset_codes::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(())
}

/// Whether a code for the same person was issued after `code` (ids are time-ordered).
pub fn newer_reset_code(conn: &mut AnyConnection, code: &ResetCode) -> QueryResult<bool> {
    let n: i64 = reset_codes::table
        .filter(reset_codes::user_id.eq(&code.user_id))
        .filter(reset_codes::id.gt(&code.id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A reset code by the SHA-256 of its value, spent or not.
pub fn reset_code_by_hash(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<ResetCode>> {
    reset_codes::table.filter(reset_codes::code_hash.eq(hash)).select(ResetCode::as_select()).first(conn).optional()
}

/// Spends a code that is unused and unexpired at `now`; answers the rows changed (0 or 1).
pub fn spend_reset_code(conn: &mut AnyConnection, id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        reset_codes::table.find(id).filter(reset_codes::used_at.is_null()).filter(reset_codes::expires_at.gt(now)),
    )
    .set(reset_codes::used_at.eq(Some(now)))
    .execute(conn)
}

/// Deletes sessions and revoked jtis past their expiry (before `now`) and reset codes
/// that expired before `codes_before`; answers how many rows went.
pub fn purge(conn: &mut AnyConnection, now: i64, codes_before: i64) -> QueryResult<usize> {
    let a = diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
    let b = diesel::delete(revoked_jtis::table.filter(revoked_jtis::expires_at.lt(now))).execute(conn)?;
    let c = diesel::delete(reset_codes::table.filter(reset_codes::expires_at.lt(codes_before))).execute(conn)?;
    Ok(a + b + c)
}
