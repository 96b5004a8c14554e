//! Token lifecycle work off the request path (run by `app::maintenance`): purging ended
//! tokens after the org's retention, ending app secrets' grace periods, and the operators'
//! gauges.
use serde_json::json;

use crate::service::events::{self, Action, Entry};
use crate::service::Result;
use crate::store::{self, AnyConnection};

/// Tokens deleted per statement, and statements per org per run: a run's cost is bounded
/// whatever has piled up (the rest goes at the next run).
const PURGE_BATCH: i64 = 500;
const PURGE_BATCHES_PER_RUN: usize = 20;

/// Deletes every org's revoked and expired API tokens that ended more than the org's
/// `retention_days` ago. Their audit rows stay (they name the token by id); each org that
/// lost tokens gets one `token.purge` audit row with the count. Answers how many.
pub fn purge_ended_tokens(conn: &mut AnyConnection, now: i64) -> Result<usize> {
    let mut total = 0;
    for org_id in store::org::ids(conn)? {
        let days = crate::service::org::policy::get(conn, &org_id)?.retention_days;
        let cutoff = now - days * 86_400;
        let mut purged = 0;
        for _ in 0..PURGE_BATCHES_PER_RUN {
            let n = store::tokens::purge_ended(conn, &org_id, cutoff, PURGE_BATCH)?;
            purged += n;
            if n < PURGE_BATCH as usize {
                break;
            }
        }
        if purged > 0 {
            let ev = Entry::system(&org_id, Action::TokenPurge)
                .on("api_token", None)
                .detail(json!({"purged": purged, "retention_days": days}));
            events::emit(conn, ev, now)?;
        }
        total += purged;
    }
    Ok(total)
}

/// Forgets previous app secrets whose grace period has ended (the client check already
/// refuses them by time; this removes the hash).
pub fn end_secret_graces(conn: &mut AnyConnection, now: i64) -> Result<usize> {
    Ok(store::principals::clear_ended_secret_graces(conn, now)?)
}

/// Days within which a live token counts as expiring, for the gauge.
pub const EXPIRING_DAYS: i64 = 7;

/// The operators' view of every org's tokens at `now`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    pub live_user: i64,
    pub live_service_account: i64,
    /// Live tokens expiring within `EXPIRING_DAYS`.
    pub expiring: i64,
    /// Not revoked, not expired, but past their idle TTL.
    pub idle: i64,
}

pub fn gauges(conn: &mut AnyConnection, now: i64) -> Result<Gauges> {
    let ((live_user, live_service_account), expiring, idle) = store::tokens::gauges(conn, now, EXPIRING_DAYS * 86_400)?;
    Ok(Gauges { live_user, live_service_account, expiring, idle })
}
