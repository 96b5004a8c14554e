//! Who may read token state (RFC 7662 introspection and the revocation feed): an app an
//! admin allowed to introspect, or a management bearer holding org:admin. A caller whose
//! credentials fail counts against its address and identity (`slow_down` over the limit);
//! a valid caller is always answered.
use super::exchange::{app_may_introspect, authenticate_app, bearer_may_introspect, Ctx, GrantError};
use crate::service::authz::{bearer, throttle};
use crate::store::AnyConnection;

/// The credentials an introspection caller presented.
pub enum Presented {
    /// Client credentials (HTTP Basic when `basic`, else the form).
    App {
        id: String,
        secret: String,
        basic: bool,
    },
    /// An `Authorization: Bearer` access token.
    Bearer(String),
    Nothing,
}

/// The org whose tokens the caller may read. On refusal, the error and whether the client
/// tried HTTP Basic (a 401 then carries the Basic challenge).
pub fn caller(conn: &mut AnyConnection, ctx: &Ctx<'_>, presented: Presented) -> Result<String, (GrantError, bool)> {
    let (r, identity, basic) = match presented {
        Presented::App { id, secret, basic } => {
            let r = authenticate_app(conn, &id, &secret, ctx.now).and_then(|app| {
                app_may_introspect(&app)?;
                Ok(app.org_id)
            });
            (r, Some(format!("client:{id}")), basic)
        }
        Presented::Bearer(token) => {
            let p = bearer::verify(ctx.keys, ctx.cfg, Some(&token), ctx.now)
                .and_then(|c| bearer::resolve(conn, &c, ctx.usage, ctx.ip, ctx.now));
            match p {
                Ok(p) => (bearer_may_introspect(&p).map(|()| p.org_id), None, false),
                Err(crate::service::Error::Unauthorized(_)) => {
                    (Err(GrantError::Unauthenticated("the bearer token is not valid")), Some(token), false)
                }
                Err(e) => return Err((e.into(), false)),
            }
        }
        Presented::Nothing => {
            return Err((GrantError::Unauthenticated("authenticate as an app or with an org:admin bearer"), false))
        }
    };
    match r {
        Ok(org) => Ok(org),
        Err(e @ (GrantError::InvalidClient | GrantError::Unauthenticated(_))) => {
            let per_minute = ctx.cfg.token_failures_per_minute;
            match throttle::credential_failure(ctx.throttle, per_minute, ctx.ip, identity.as_deref(), ctx.now) {
                Err(retry) => Err((GrantError::SlowDown(retry), basic)),
                Ok(()) => Err((e, basic)),
            }
        }
        Err(e) => Err((e, basic)),
    }
}
