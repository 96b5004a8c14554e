//! The revocation feed for offline verifiers (`GET /oauth/revocations?since=CURSOR`):
//! what was revoked in the caller's org since a cursor, and only what can still matter
//! (rows drop out once no access token they concern can be live).
//!
//! The cursor is opaque to clients: `SEQ.ISSUED_AT`, the last sequence number the answer
//! covered and when it was answered. A cursor answered longer ago than the window
//! (`store::revocations::KEEP_SECONDS`) may have missed rows that were purged since: the
//! answer then says `reset: true` and holds the whole window, which the client must take
//! instead of what it had.
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::oauth::exchange::GrantError;
use crate::store::revocations::{self as feed, KEEP_SECONDS};
use crate::store::AnyConnection;

/// Rows in one answer at most; `more: true` asks the client to call again at once.
pub const PAGE: usize = 5_000;

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct RevokedAccessToken {
    /// The `jti` claim of the revoked access token.
    pub jti: String,
    /// Until when it matters (its own `exp` plus leeway).
    pub exp: i64,
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct RevokedApiToken {
    /// The API token's id: the `client_id` claim of access tokens exchanged from it. Refuse
    /// every access token with this client_id.
    pub client_id: String,
    pub revoked_at: i64,
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct RevokedPrincipal {
    /// The `sub` claim (user id, service account id, or the app's client id).
    pub sub: String,
    /// user | service_account | app
    pub acct: String,
    /// Refuse access tokens of this subject whose `ep` claim is below this.
    pub epoch: i64,
    /// When that happened: access tokens of this subject issued before it may be affected.
    pub not_before: i64,
}

/// One answer of the feed.
#[derive(Serialize, ToSchema, Debug)]
pub struct Feed {
    /// Pass it as `since` next time.
    pub cursor: String,
    /// The cursor given was older than the window (or none was given): this answer holds
    /// every revocation that still matters; replace what you had with it.
    pub reset: bool,
    /// More rows are waiting: call again with `cursor` now.
    pub more: bool,
    /// How long a revocation stays in the feed (the longest access-token life + leeway).
    pub window_seconds: i64,
    pub access_tokens: Vec<RevokedAccessToken>,
    pub api_tokens: Vec<RevokedApiToken>,
    pub principals: Vec<RevokedPrincipal>,
}

/// A cursor's (sequence, answered at), or None when it is not one this server issues.
pub fn parse_cursor(s: &str, now: i64) -> Option<(i64, i64)> {
    let (seq, at) = s.split_once('.')?;
    let digits = |v: &str| !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit());
    if !digits(seq) || !digits(at) {
        return None;
    }
    let (seq, at) = (seq.parse().ok()?, at.parse().ok()?);
    // From the future (beyond clock skew) it cannot be ours.
    (at <= now + crate::jwt::LEEWAY).then_some((seq, at))
}

/// The org's revocations after `since` (a parsed cursor), at `now`.
pub fn read(conn: &mut AnyConnection, org_id: &str, since: Option<(i64, i64)>, now: i64) -> Result<Feed, GrantError> {
    let (after, reset) = match since {
        Some((seq, at)) if at >= now - KEEP_SECONDS => (seq, false),
        _ => (0, true),
    };
    let upto = feed::max_seq(conn)?;
    let mut rows = feed::since(conn, org_id, after, upto, now)?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let last = if more { rows.last().map_or(upto, |r| r.seq) } else { upto.max(after) };
    let mut out = Feed {
        cursor: format!("{last}.{now}"),
        reset,
        more,
        window_seconds: KEEP_SECONDS,
        access_tokens: vec![],
        api_tokens: vec![],
        principals: vec![],
    };
    for r in rows {
        match r.kind.as_str() {
            feed::JTI => out.access_tokens.push(RevokedAccessToken { jti: r.subject, exp: r.keep_until }),
            feed::TOKEN => out.api_tokens.push(RevokedApiToken { client_id: r.subject, revoked_at: r.at }),
            _ => {
                let p = RevokedPrincipal {
                    sub: r.subject,
                    acct: r.acct.unwrap_or_default(),
                    epoch: r.epoch.unwrap_or(i64::MAX),
                    not_before: r.at,
                };
                // Only the highest epoch of a subject matters: one entry each.
                match out.principals.iter_mut().find(|q| q.sub == p.sub) {
                    Some(q) if q.epoch >= p.epoch => {}
                    Some(q) => *q = p,
                    None => out.principals.push(p),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("12.1000", 1000), Some((12, 1000)));
        assert_eq!(parse_cursor("0.0", 1000), Some((0, 0)));
        for bad in ["", "12", "12.", ".5", "a.1", "1.b", "-1.5", "1.-5", "1.2.3", "1 .2", "99999999999999999999.1"] {
            assert_eq!(parse_cursor(bad, 1000), None, "{bad}");
        }
        assert_eq!(parse_cursor("1.2000", 1000), None, "from the future");
    }
}
