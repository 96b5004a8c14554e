//! Keeps each instance's credential cache (`service::oauth::credential_cache`) honest about
//! changes made elsewhere, on a thread of its own, every [`POLL`]:
//!
//! - PostgreSQL: the instance listens on `tokend_credentials` (`store::revocations::CHANNEL`)
//!   on a connection of its own and drops its cache on every notification. Every change that
//!   may weaken a credential sends one in its transaction (`store::revocations::invalidate`,
//!   called by `service::events::emit` and the store's credential writers), which PostgreSQL
//!   delivers when it commits. diesel offers no blocking wait on the socket, so the
//!   connection is polled (`PQconsumeInput`, no round trip) and checked with a `SELECT 1`
//!   every [`PING`].
//! - SQLite: changes made through this process drop the cache directly (the process-wide
//!   generation); a commit by another process on the same file (`tokend leaks check`, a
//!   second server) is seen through `PRAGMA data_version` (`store::CommitWatch`), which
//!   drops the cache. A hit on the token path therefore reads no database at all.
//!
//! The cache serves nothing until the watcher first looked, nor from the moment its
//! connection fails until it looks again (then it starts empty): a change made while
//! nobody watched can never be missed. The thread ends when the instance stops
//! ([`State::stop`] joins it: no connection is left mid-handshake at exit).
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use super::State;
use crate::store::revocations::CHANNEL;
use crate::store::CommitWatch;

/// How often the watcher looks (PostgreSQL: asks the listening connection for
/// notifications; SQLite: reads the commit counter).
pub const POLL: Duration = Duration::from_millis(5);
/// How often the listening connection is checked with a round trip.
/// Short: a cache hit touches no database, so until this check fails a vanished database
/// (or listening connection) would go unnoticed by the token path.
pub const PING: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to listen again.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Starts the watcher of this instance (when the cache is on); [`State::stop`] ends it.
pub fn spawn(state: &web::Data<State>) {
    if state.cfg.credential_cache == 0 {
        return;
    }
    let weak = Arc::downgrade(&state.clone().into_inner());
    let spawned = match state.db.commit_watch() {
        Ok(Some(watch)) => {
            std::thread::Builder::new().name("tokend-watch".into()).spawn(move || watch_file(watch, weak))
        }
        Ok(None) => {
            let url = state.cfg.database_url.clone();
            std::thread::Builder::new().name("tokend-listen".into()).spawn(move || run(&url, weak))
        }
        Err(e) => {
            log::error!("could not start the credential cache's watcher (the cache stays off): {e}");
            return;
        }
    };
    match spawned {
        Ok(handle) => *state.watcher.lock() = Some(handle),
        Err(e) => log::error!("could not start the credential cache's watcher (the cache stays off): {e}"),
    }
}

/// The instance, while it runs (not stopping, not dropped).
fn running(state: &Weak<State>) -> Option<Arc<State>> {
    state.upgrade().filter(|s| !s.stopping.load(Ordering::Relaxed))
}

/// SQLite: drops the cache whenever another connection committed to the file.
fn watch_file(mut watch: CommitWatch, state: Weak<State>) {
    let mut seen: Option<i64> = None;
    while let Some(s) = running(&state) {
        match watch.version() {
            Ok(v) if seen.is_none() => {
                s.credentials.set_listening(true);
                seen = Some(v);
            }
            Ok(v) if seen != Some(v) => {
                s.credentials.clear();
                seen = Some(v);
            }
            Ok(_) => {}
            Err(e) => {
                if seen.take().is_some() {
                    log::warn!("credential cache: cannot read the database's commit counter ({e}); the cache is off until it can");
                }
                s.credentials.set_listening(false);
            }
        }
        drop(s);
        std::thread::sleep(POLL);
    }
}

/// PostgreSQL: listens, and listens again after a lost connection.
fn run(url: &str, state: Weak<State>) {
    let mut wait = Duration::from_millis(50);
    let mut lost_logged = false;
    while running(&state).is_some() {
        let failure = match listen(url) {
            Ok(mut conn) => {
                let Some(s) = running(&state) else { return };
                // Everything held before this point may have missed a change: start empty.
                s.credentials.set_listening(true);
                if std::mem::take(&mut lost_logged) {
                    log::info!("credential cache: listening again on {CHANNEL}; the cache is back on");
                }
                wait = Duration::from_millis(50);
                drop(s);
                match serve(&mut conn, &state) {
                    Some(e) => {
                        format!("the listening connection failed ({e}); the cache is off until it listens again")
                    }
                    None => return,
                }
            }
            Err(e) => format!("cannot listen on {CHANNEL} ({e}); the cache is off until it can"),
        };
        let Some(s) = state.upgrade() else { return };
        s.credentials.set_listening(false);
        drop(s);
        if !lost_logged {
            log::warn!("credential cache: {failure}");
            lost_logged = true;
        }
        // Wait before the next attempt, in steps short enough to stop promptly.
        let until = Instant::now() + wait;
        while Instant::now() < until && running(&state).is_some() {
            std::thread::sleep(POLL);
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

fn listen(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| crate::store::redact(&e.to_string(), url))?;
    conn.batch_execute(&format!("SET application_name = 'tokend-listen'; LISTEN {CHANNEL}"))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Polls until the connection fails (`Some(reason)`) or the instance stops (`None`).
fn serve(conn: &mut PgConnection, state: &Weak<State>) -> Option<String> {
    let mut pinged = Instant::now();
    loop {
        let mut heard = false;
        for n in conn.notifications_iter() {
            match n {
                Ok(_) => heard = true,
                Err(e) => return Some(e.to_string()),
            }
        }
        let s = running(state)?;
        if heard {
            s.credentials.clear();
        }
        drop(s);
        if pinged.elapsed() >= PING {
            if let Err(e) = conn.batch_execute("SELECT 1") {
                return Some(e.to_string());
            }
            pinged = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
