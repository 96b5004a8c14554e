//! RFC 7009's pre-check: whether a revocation request is worth a write transaction. A token
//! nobody holds costs no write and counts as a failed credential of the caller's address; an
//! access token we signed costs a revoked-jti row and an audit row, at most
//! `throttle::REVOKES_PER_MINUTE` a minute per principal. The write itself is
//! [`revoke_by_holder`].
use super::exchange::{token_known, Ctx, GrantError};
use crate::secrets::{self, SecretKind};
use crate::service::authz::throttle;
use diesel::Connection;
use serde_json::json;

use crate::jwt;
use crate::service::events::{self, Action, ActorKind, Entry, Event, Notice};
use crate::service::Acct;
use crate::store::{self, AnyConnection};

/// What to do with a revocation request.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to revoke: answer 200 without a write.
    Nothing,
    /// Revoke it ([`revoke_by_holder`] on the writer).
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

/// RFC 7009: the holder of an API token revokes it; the holder of an access token revokes
/// that token (its jti is refused by introspection and the management API until it
/// expires). Unknown tokens are not an error; a client secret is `unsupported_token_type`.
pub fn revoke_by_holder(conn: &mut AnyConnection, ctx: &Ctx<'_>, token: &str) -> Result<(), GrantError> {
    if !token.starts_with("tkd_") {
        let set = ctx.keys.set();
        // Only tokens we signed and that have not expired are worth a row.
        let Ok(c) = jwt::verify(&set, token, &ctx.cfg.issuer, None, ctx.now) else { return Ok(()) };
        return conn.transaction(|conn| {
            let recorded =
                crate::service::principals::sessions::record_revoked_jti(conn, &c.jti, &c.org, c.exp, ctx.now)?;
            if !recorded {
                return Ok(());
            }
            // Only tokens this server signed get here: their acct is one it wrote.
            let actor = Acct::parse(&c.acct).map_or(ActorKind::User, ActorKind::from);
            let ev = Entry::new(&c.org, actor, &c.sub, Action::AccessTokenRevoke)
                .on("access_token", Some(&c.jti))
                .from_ip(Some(ctx.ip))
                .detail(json!({"via": "oauth/revoke"}));
            Ok(events::emit(conn, ev, ctx.now)?)
        });
    }
    match secrets::parse(token) {
        Ok(SecretKind::Personal) | Ok(SecretKind::Service) => {}
        Ok(SecretKind::ClientSecret) => return Err(GrantError::UnsupportedTokenType),
        Err(_) => return Ok(()),
    }
    let (hash, ip, now) = (secrets::hash(token), ctx.ip, ctx.now);
    conn.transaction(|conn| {
        let t = store::tokens::find_by_hash(conn, &hash)?;
        if let Some(t) = t.filter(|t| t.revoked_at.is_none()) {
            store::tokens::mark_revoked(conn, &t.id, &t.id, now)?;
            let entry = Entry::new(&t.org_id, ActorKind::ApiToken, &t.id, Action::TokenRevoke)
                .on("api_token", Some(&t.id))
                .from_ip(Some(ip))
                .detail(json!({"via": "oauth/revoke"}));
            events::emit(conn, Event::from(entry).notice(Notice::TokenRevoked { token: &t, mail: true }), now)?;
        }
        Ok(())
    })
}
