//! RFC 7009's pre-check: whether a revocation request is worth a write transaction. A token
//! nobody holds costs no write and counts as a failed credential of the caller's address; an
//! access token we signed costs a revoked-jti row and an audit row, at most
//! `throttle::REVOKES_PER_MINUTE` a minute per principal. The write itself is
//! `exchange::revoke_by_holder`.
use super::exchange::{token_known, Ctx, GrantError};
use crate::secrets::{self, SecretKind};
use crate::service::authz::throttle;
use crate::store::AnyConnection;

/// What to do with a revocation request.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to revoke: answer 200 without a write.
    Nothing,
    /// Revoke it (`exchange::revoke_by_holder` on the writer).
    Write,
}

/// The plan for revoking `token` (read-only). A client secret is `unsupported_token_type`;
/// over a limit the answer is `GrantError::SlowDown`.
pub fn plan(conn: &mut AnyConnection, ctx: &Ctx<'_>, token: &str) -> Result<Plan, GrantError> {
    let worth_a_write = if token.starts_with("tkd_") {
        match secrets::parse(token) {
            Ok(SecretKind::ClientSecret) => return Err(GrantError::UnsupportedTokenType),
            Ok(_) => token_known(conn, &secrets::hash(token))?,
            Err(_) => false,
        }
    } else {
        // An access token: only one we signed and that has not expired is worth a row.
        match crate::jwt::verify(&ctx.keys.set(), token, &ctx.cfg.issuer, None, ctx.now) {
            Ok(c) => {
                throttle::reserve_revoke(ctx.throttle, &c.org, &c.sub, ctx.now).map_err(GrantError::SlowDown)?;
                true
            }
            Err(_) => false,
        }
    };
    if worth_a_write {
        return Ok(Plan::Write);
    }
    throttle::credential_failure(ctx.throttle, ctx.cfg.token_failures_per_minute, ctx.ip, Some(token), ctx.now)
        .map_err(GrantError::SlowDown)?;
    Ok(Plan::Nothing)
}
