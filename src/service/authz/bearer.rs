//! Bearer authentication of the management API: verify the access token (signature with
//! the key's own algorithm, typ, iss, aud = the management audience, exp/nbf with a small
//! leeway), then check that the user, service account, app, API token or login session
//! behind it is still live. A presented bearer that fails counts as a failed credential of
//! the caller's address and of the token (429 over the limit).
//!
//! Two steps so that a garbage bearer never takes a database connection: [`verify`] is pure
//! (the front end runs it on its worker), [`resolve`] reads. [`refused`] applies the
//! failure rule to whichever step refused.
use super::principal::{self, Principal};
use super::throttle::{self, Throttle};
use crate::config::Config;
use crate::jwt::AccessClaims;
use crate::keys::KeyRing;
use crate::service::tokens::usage::Usage;
use crate::service::{Error, Result};
use crate::store::AnyConnection;

/// The claims of a bearer minted for the management audience (a token a resource server
/// received must not be replayable here).
pub fn verify(keys: &KeyRing, cfg: &Config, bearer: Option<&str>, now: i64) -> Result<AccessClaims> {
    let token = bearer.ok_or_else(|| Error::Unauthorized("a bearer access token is required".into()))?;
    crate::jwt::verify(&keys.set(), token, &cfg.issuer, Some(&cfg.api_audience), now)
        .map_err(|e| Error::Unauthorized(format!("invalid access token: {e}")))
}

/// The live principal behind verified claims, seen from `ip`.
pub fn resolve(
    conn: &mut AnyConnection,
    claims: &AccessClaims,
    usage: &Usage,
    ip: &str,
    now: i64,
) -> Result<Principal> {
    let mut p = principal::resolve(conn, claims, usage, now)?
        .ok_or_else(|| Error::Unauthorized("the access token's subject is no longer active".into()))?;
    p.ip = Some(ip.to_string());
    Ok(p)
}

/// The answer to a refused bearer: a 401 counts against the address and the presented
/// token, and becomes 429 once either is over the limit; other errors pass unchanged.
pub fn refused(e: Error, t: &Throttle, cfg: &Config, ip: &str, bearer: Option<&str>, now: i64) -> Error {
    match (&e, bearer) {
        (Error::Unauthorized(_), Some(token)) => {
            match throttle::credential_failure(t, cfg.token_failures_per_minute, ip, Some(token), now) {
                Err(retry_after) => Error::TooMany { retry_after },
                Ok(()) => e,
            }
        }
        _ => e,
    }
}
