//! Periodic work off the request path, one named task each, on one thread.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::web;

use super::State;
use crate::service;

/// A task run every `every` by the maintenance thread.
struct Task {
    name: &'static str,
    every: Duration,
    last: Instant,
    run: fn(&State),
}

/// Pool health: drops connections a lost database left behind.
fn sweep_pools(st: &State) {
    st.db.sweep();
}

/// Buffered last-used times to the database.
fn flush_usage(st: &State) {
    st.flush_usage();
}

/// Expired sessions and revocations.
fn purge_expired(st: &State) {
    let purged = st
        .db
        .write()
        .map_err(service::Error::from)
        .and_then(|mut c| service::principals::sessions::purge_expired(&mut c, st.now()));
    if let Err(e) = purged {
        log::warn!("purging expired sessions and revocations failed, will retry: {e}");
    }
}

/// Revoked and expired tokens past their org's retention (their audit rows stay).
pub fn purge_ended_tokens(st: &State) {
    let r = st
        .db
        .write()
        .map_err(service::Error::from)
        .and_then(|mut c| service::tokens::lifecycle::purge_ended_tokens(&mut c, st.now()));
    match r {
        Ok(0) => {}
        Ok(n) => log::info!("purged {n} ended API token(s) past their retention"),
        Err(e) => log::warn!("purging ended API tokens failed, will retry: {e}"),
    }
}

/// Previous app secrets whose grace period ended.
pub fn end_secret_graces(st: &State) {
    let r = st
        .db
        .write()
        .map_err(service::Error::from)
        .and_then(|mut c| service::tokens::lifecycle::end_secret_graces(&mut c, st.now()));
    if let Err(e) = r {
        log::warn!("clearing ended app secret graces failed, will retry: {e}");
    }
}

/// The operators' gauges (`/metrics`): tokens and the notification outbox, computed here
/// so that scraping costs no query.
pub fn refresh_gauges(st: &State) {
    if let Err(e) = super::outbox::refresh_gauges(st) {
        log::warn!("reading the outbox gauges failed, will retry: {e}");
    }
    let r = st
        .db
        .read()
        .map_err(service::Error::from)
        .and_then(|mut c| service::tokens::lifecycle::gauges(&mut c, st.now()));
    match r {
        Ok(g) => {
            let m = &st.metrics;
            m.tokens_live.with_label_values(&["user"]).set(g.live_user);
            m.tokens_live.with_label_values(&["service_account"]).set(g.live_service_account);
            m.tokens_expiring.set(g.expiring);
            m.tokens_idle.set(g.idle);
            m.gauges_computed_at.set(st.now());
        }
        Err(e) => log::warn!("computing the token gauges failed, will retry: {e}"),
    }
}

/// The login guard's expired failure counts and known-good pairs (memory handed back).
/// Password hashing's pooled memory (19 MiB a buffer) goes back once logins stop for a
/// minute: kept through a burst, not held by an idle server.
fn release_hash_memory(_: &State) {
    crate::service::principals::passwords::release_idle_memory(Duration::from_secs(60));
}

fn purge_login_guard(st: &State) {
    st.login.purge(st.now());
}

/// Summaries of suppressed refused calls whose window has closed.
fn flush_refused(st: &State) {
    st.flush_refused(false);
}

/// The key directory, re-read so that rotations by another instance or by hand show up.
fn reload_keys(st: &State) {
    match st.keys.reload() {
        Ok(true) => log::info!("signing keys reloaded"),
        Ok(false) => {}
        Err(e) => log::error!("key directory unreadable, keeping current keys: {e}"),
    }
}

/// Periodic work off the request path: usage flush every 0.5 s, key directory re-read,
/// expired sessions and revocations purged, ended tokens purged after their retention,
/// ended secret graces cleared, the token and outbox gauges computed every minute; the
/// notification worker on its own thread (`outbox::spawn_worker`) unless
/// `TOKEND_OUTBOX_INTERVAL_SECONDS` is 0. Stops once `state.stopping` is set.
pub fn spawn_maintenance(state: web::Data<State>) -> std::thread::JoinHandle<()> {
    let tick = Duration::from_millis(500);
    let start = Instant::now();
    if state.cfg.outbox_interval_seconds > 0 {
        super::outbox::spawn_worker(state.clone());
    }
    let mut tasks = [
        Task { name: "sweep_pools", every: tick, last: start, run: sweep_pools },
        Task { name: "flush_usage", every: tick, last: start, run: flush_usage },
        Task { name: "purge_expired", every: Duration::from_secs(60), last: start, run: purge_expired },
        Task { name: "purge_ended_tokens", every: Duration::from_secs(60), last: start, run: purge_ended_tokens },
        Task { name: "end_secret_graces", every: Duration::from_secs(60), last: start, run: end_secret_graces },
        // First computed by boot, then once a minute.
        Task { name: "refresh_gauges", every: Duration::from_secs(60), last: start, run: refresh_gauges },
        Task { name: "flush_refused", every: tick, last: start, run: flush_refused },
        Task { name: "purge_login_guard", every: Duration::from_secs(60), last: start, run: purge_login_guard },
        Task { name: "release_hash_memory", every: Duration::from_secs(10), last: start, run: release_hash_memory },
        Task {
            name: "reload_keys",
            every: Duration::from_secs(state.cfg.keys_reload_seconds),
            last: start,
            run: reload_keys,
        },
    ];
    std::thread::Builder::new()
        .name("tokend-maintenance".into())
        .spawn(move || {
            while !state.stopping.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                for t in tasks.iter_mut() {
                    if t.every <= tick || t.last.elapsed() >= t.every {
                        t.last = Instant::now();
                        log::trace!("maintenance: {}", t.name);
                        (t.run)(&state);
                        // A task that revoked something (a secret grace ended) ends its
                        // write here: the second bump of the revocation generation.
                        crate::store::revocations::settle();
                    }
                }
            }
        })
        .expect("spawning the maintenance thread")
}
