//! App wiring: the shared state, boot (database, migrations, keys, first org), the
//! maintenance thread, the notification worker (`outbox`) and the blocking runner. The HTTP edge (`http`) reads this state; it
//! does not build it.
pub mod credential_listener;
pub mod maintenance;
pub mod outbox;
pub mod pacer;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::web;
use diesel::Connection;

use crate::bootstrap;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::service;
use crate::service::authz::throttle::Throttle;
use crate::service::org::orgs::CreatedOrg;
use crate::service::tokens::usage::Usage;
use crate::store::{AnyConnection, Db};

pub use crate::error::BootError;
pub use maintenance::spawn_maintenance;

pub struct State {
    pub db: Db,
    pub keys: Arc<KeyRing>,
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub usage: Usage,
    /// The login guard: failed logins (15-minute window), attempts in flight, known-good pairs.
    pub login: service::principals::login::Guard,
    /// Failed token-endpoint calls per client IP (1-minute window).
    pub token_throttle: Throttle,
    pub metrics: Metrics,
    /// Flood control for the audit of refused calls.
    pub refused: service::events::audit::RefusalFlood,
    /// The budget of 4xx answers a second (`TOKEND_REFUSALS_PER_SECOND`).
    pub pacer: pacer::Pacer,
    /// The bound on password hashing (one hash per core at a time).
    pub hashing: service::principals::passwords::Bound,
    /// Notifications: the webhook secret key, the SMTP transport, the SSRF rule.
    pub notify: outbox::Notifier,
    /// Forward-auth and introspection answers served from memory (`service::oauth::gateway`).
    pub caches: service::oauth::gateway::Caches,
    /// The token path's verified-credential cache (`service::oauth::credential_cache`),
    /// kept honest across instances and processes by `credential_listener`.
    pub credentials: Arc<service::oauth::exchange::Credentials>,
    /// Secret-scanning reporters' keys and request budgets (`POST /leaks/report`).
    pub reporters: Arc<crate::reporters::ReporterKeys>,
    /// External issuers' signing keys (trust policies), cached per issuer.
    pub issuer_keys: service::oauth::federation::jwks::IssuerKeys,
    pub stopping: AtomicBool,
    /// The credential cache's watcher thread (`credential_listener`), joined by [`State::stop`].
    pub watcher: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl State {
    pub fn new(db: Db, keys: Arc<KeyRing>, cfg: Config, clock: Arc<dyn Clock>, notify: outbox::Notifier) -> State {
        let pacer = pacer::Pacer::new(cfg.refusals_per_second);
        let caches = service::oauth::gateway::Caches::new(cfg.gateway_cache_seconds);
        let credentials = Arc::new(service::oauth::exchange::Credentials::new(cfg.credential_cache));
        let reporters = Arc::new(crate::reporters::ReporterKeys::new(cfg.leak_reporter_keys.clone()));
        State {
            db,
            keys,
            cfg,
            clock,
            usage: Usage::default(),
            login: Default::default(),
            token_throttle: Throttle::new(60),
            metrics: Metrics::new(),
            refused: Default::default(),
            pacer,
            hashing: service::principals::passwords::Bound::per_core(),
            notify,
            caches,
            credentials,
            reporters,
            issuer_keys: Default::default(),
            stopping: AtomicBool::new(false),
            watcher: parking_lot::Mutex::new(None),
        }
    }

    /// Tells the background threads to end (`stopping`) and waits for the credential
    /// cache's watcher, so that the process never exits (nor a test drops its database)
    /// under a connection it is using.
    pub fn stop(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.watcher.lock().take() {
            let _ = handle.join();
        }
        // Nobody watches any more: nothing may be served from memory.
        self.credentials.set_listening(false);
    }

    /// The login throttle and hashing bound every password check passes through.
    pub fn password_gate(&self) -> service::principals::users::PasswordGate<'_> {
        service::principals::users::PasswordGate { guard: &self.login, hashing: &self.hashing }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The token services' context for one request from `ip`, at the current time.
    pub fn ctx<'a>(&'a self, ip: &'a str) -> service::oauth::exchange::Ctx<'a> {
        service::oauth::exchange::Ctx {
            keys: &self.keys,
            cfg: &self.cfg,
            usage: &self.usage,
            throttle: &self.token_throttle,
            credentials: &self.credentials,
            now: self.now(),
            ip,
        }
    }

    /// What `service::oauth::federation::token` needs of the state.
    pub fn federation(&self) -> service::oauth::federation::Env<'_> {
        service::oauth::federation::Env {
            db: &self.db,
            keys: &self.issuer_keys,
            fetch: &service::oauth::federation::jwks::Http,
            refused: &self.refused,
        }
    }

    /// Writes buffered last-used times (also called at shutdown).
    pub fn flush_usage(&self) {
        match self.db.write() {
            Ok(mut conn) => {
                if let Err(e) = self.usage.flush(&mut conn) {
                    // A lost connection must not go back to the pool.
                    crate::store::mark_if_lost(&e);
                    log::warn!("flushing token usage failed, will retry: {e}");
                }
            }
            Err(e) => log::warn!("flushing token usage: {e}"),
        }
    }

    /// Writes the summaries of suppressed refused calls whose window has closed (`all`:
    /// every window, at shutdown).
    pub fn flush_refused(&self, all: bool) {
        let due = self.refused.take_closed(self.now(), all);
        if due.is_empty() {
            return;
        }
        let r = self
            .db
            .write()
            .map_err(service::Error::from)
            .and_then(|mut conn| due.iter().try_for_each(|s| s.record(&mut conn, self.now())));
        if let Err(e) = r {
            log::warn!("writing the summary of suppressed refused calls failed: {e}");
        }
    }
}

/// Runs a blocking closure (database work) on actix's blocking pool.
pub async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static + From<service::Error>,
{
    // The second bump of the revocation generation once a write is over (see
    // `store::revocations`), on the thread that ran it.
    let f = move || {
        let r = f();
        crate::store::revocations::settle();
        r
    };
    match web::block(crate::logging::carry(f)).await {
        Ok(r) => r,
        Err(e) => Err(E::from(service::Error::Internal(Box::new(e)))),
    }
}

/// Everything `serve` does before listening: database, migrations, keys, first org.
/// Returns the shared state and, on a fresh database, the owner's first credentials, which
/// are also written to `bootstrap::CREDENTIALS_FILE` beside the database (only its path is
/// logged). The org is committed only once that file is written, so a failed write leaves
/// the database empty for the next start instead of losing the credentials.
pub fn boot(cfg: Config, clock: Arc<dyn Clock>) -> Result<(web::Data<State>, Option<CreatedOrg>), BootError> {
    let now = clock.now();
    // Keys first: a key directory tokend cannot use (RS256 without an RSA key, say) stops
    // the start before the database is touched.
    let keys = Arc::new(KeyRing::open(&cfg.keys_dir, cfg.signing_alg, cfg.key_publish_delay, now)?);
    let db = Db::connect(&cfg.database_url, (cfg.workers as u32) * 2)?;
    db.migrate()?;
    let created = {
        let mut pooled = db.write()?;
        let conn: &mut AnyConnection = &mut pooled;
        let created = conn.transaction::<_, BootError, _>(|c| {
            let Some(org) =
                service::org::orgs::bootstrap(c, &cfg.bootstrap_email, cfg.bootstrap_password.clone(), now)?
            else {
                return Ok(None);
            };
            let path = bootstrap::write_credentials(&bootstrap::credentials_dir(&cfg), &org, &cfg.bootstrap_email)?;
            Ok(Some((org, path)))
        })?;
        created.map(|(org, path)| {
            log::warn!(
                "first start: the owner's credentials were written to {} (mode 0600). Read that file, store them safely, then delete it.",
                path.display()
            );
            org
        })
    };
    let notify = outbox::Notifier::from_config(&cfg)?;
    let state = web::Data::new(State::new(db, keys, cfg, clock, notify));
    credential_listener::spawn(&state);
    // The gauges hold real values from the first scrape on (then maintenance, once a minute).
    maintenance::refresh_gauges(&state);
    // The first start hashed the bootstrap password: its 19 MiB are not kept for a login
    // that may not come (idle RSS).
    service::principals::passwords::release_idle_memory(std::time::Duration::ZERO);
    Ok((state, created))
}
