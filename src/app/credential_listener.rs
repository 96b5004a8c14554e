//! PostgreSQL: each instance listens on `tokend_credentials` (`store::revocations::CHANNEL`)
//! on a connection of its own, on a thread of its own, and drops its credential cache
//! (`service::oauth::credential_cache`) on every notification. Every change that may weaken
//! a credential sends one in its transaction (`store::revocations::invalidate`, called by
//! `service::events::emit` and the store's credential writers), which PostgreSQL delivers
//! when it commits.
//!
//! The cache serves nothing until the first `LISTEN` succeeded, nor from the moment the
//! listening connection fails until it listens again (then it starts empty): a change made
//! while nobody listened can never be missed. diesel offers no blocking wait on the
//! socket, so the connection is polled (`PQconsumeInput`, no round trip) every
//! [`POLL`], and checked with a `SELECT 1` every [`PING`].
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use super::State;
use crate::service::oauth::exchange::Credentials;
use crate::store::revocations::CHANNEL;

/// How often the listening connection is asked for notifications.
pub const POLL: Duration = Duration::from_millis(5);
/// How often the listening connection is checked with a round trip.
/// Short: a cache hit touches no database, so until this check fails a vanished database
/// (or listening connection) would go unnoticed by the token path.
pub const PING: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to listen again.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Starts the listener of this instance (PostgreSQL with a cache only). The thread ends
/// once the state is dropped.
pub fn spawn(state: &web::Data<State>) {
    if state.db.is_sqlite() || state.cfg.credential_cache_entries(false) == 0 {
        return;
    }
    let url = state.cfg.database_url.clone();
    let cache = Arc::downgrade(&state.credentials);
    let spawned = std::thread::Builder::new().name("tokend-listen".into()).spawn(move || run(&url, cache));
    if let Err(e) = spawned {
        log::error!("could not start the credential cache's listener (the cache stays off): {e}");
    }
}

fn run(url: &str, cache: std::sync::Weak<Credentials>) {
    let mut wait = Duration::from_millis(50);
    let mut lost_logged = false;
    loop {
        let Some(c) = cache.upgrade() else { return };
        match listen(url) {
            Ok(mut conn) => {
                // Everything held before this point may have missed a change: start empty.
                c.set_listening(true);
                if lost_logged {
                    log::info!("credential cache: listening again on {CHANNEL}; the cache is back on");
                }
                wait = Duration::from_millis(50);
                drop(c);
                let e = serve(&mut conn, &cache);
                let Some(c) = cache.upgrade() else { return };
                c.set_listening(false);
                match e {
                    Some(e) => {
                        log::warn!("credential cache: the listening connection failed ({e}); the cache is off until it listens again");
                        lost_logged = true;
                    }
                    None => return,
                }
            }
            Err(e) => {
                c.set_listening(false);
                if !lost_logged {
                    log::warn!("credential cache: cannot listen on {CHANNEL} ({e}); the cache is off until it can");
                    lost_logged = true;
                }
                drop(c);
                std::thread::sleep(wait);
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

fn listen(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| crate::store::redact(&e.to_string(), url))?;
    conn.batch_execute(&format!("SET application_name = 'tokend-listen'; LISTEN {CHANNEL}"))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Polls until the connection fails (`Some(reason)`) or the state is gone (`None`).
fn serve(conn: &mut PgConnection, cache: &std::sync::Weak<Credentials>) -> Option<String> {
    let mut pinged = Instant::now();
    loop {
        let mut heard = false;
        for n in conn.notifications_iter() {
            match n {
                Ok(_) => heard = true,
                Err(e) => return Some(e.to_string()),
            }
        }
        let c = cache.upgrade()?;
        if heard {
            c.clear();
        }
        drop(c);
        if pinged.elapsed() >= PING {
            if let Err(e) = conn.batch_execute("SELECT 1") {
                return Some(e.to_string());
            }
            pinged = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
