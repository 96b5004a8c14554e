//! HTTP edge: routes, shared state, middleware. Parses and authenticates; rules live in
//! `service`, storage in `store`.
pub mod api;
pub mod auth;
pub mod discovery;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod pacing;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, App, HttpServer};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{oauth_body, problem_body};
use crate::keys::KeyRing;
use crate::service::throttle::Throttle;
use crate::service::usage::Usage;
use crate::store::Db;

pub struct State {
    pub db: Db,
    pub keys: Arc<KeyRing>,
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub usage: Usage,
    /// Failed logins (15-minute window).
    pub throttle: Throttle,
    /// Failed token-endpoint calls per client IP (1-minute window).
    pub token_throttle: Throttle,
    pub metrics: metrics::Metrics,
    /// Flood control for the audit of refused calls.
    pub refused: crate::service::audit::RefusalFlood,
    /// The budget of 4xx answers a second (`TOKEND_REFUSALS_PER_SECOND`).
    pub pacer: pacing::Pacer,
    pub stopping: AtomicBool,
}

impl State {
    pub fn new(db: Db, keys: Arc<KeyRing>, cfg: Config, clock: Arc<dyn Clock>) -> State {
        let pacer = pacing::Pacer::new(cfg.refusals_per_second);
        State {
            db,
            keys,
            cfg,
            clock,
            usage: Usage::default(),
            throttle: Throttle::new(900),
            token_throttle: Throttle::new(60),
            metrics: metrics::Metrics::new(),
            refused: Default::default(),
            pacer,
            stopping: AtomicBool::new(false),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Writes buffered last-used times (also called at shutdown).
    pub fn flush_usage(&self) {
        match self.db.write() {
            Ok(mut conn) => {
                if let Err(e) = self.usage.flush(&mut conn) {
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
            .map_err(crate::service::Error::from)
            .and_then(|mut conn| due.iter().try_for_each(|s| s.record(&mut conn, self.now())));
        if let Err(e) = r {
            log::warn!("writing the summary of suppressed refused calls failed: {e}");
        }
    }
}

/// Periodic work off the request path: usage flush every 0.5 s, key directory re-read,
/// expired sessions and revocations purged every minute.
pub fn spawn_maintenance(state: web::Data<State>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("tokend-maintenance".into())
        .spawn(move || {
            let mut last_reload = Instant::now();
            let mut last_purge = Instant::now();
            let reload_every = Duration::from_secs(state.cfg.keys_reload_seconds);
            while !state.stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                state.db.sweep();
                state.flush_usage();
                if last_purge.elapsed() >= Duration::from_secs(60) {
                    last_purge = Instant::now();
                    let purged = state
                        .db
                        .write()
                        .map_err(crate::service::Error::from)
                        .and_then(|mut c| crate::service::sessions::purge_expired(&mut c, state.now()));
                    if let Err(e) = purged {
                        log::warn!("purging expired sessions and revocations failed, will retry: {e}");
                    }
                }
                state.flush_refused(false);
                if last_reload.elapsed() >= reload_every {
                    last_reload = Instant::now();
                    match state.keys.reload() {
                        Ok(true) => log::info!("signing keys reloaded"),
                        Ok(false) => {}
                        Err(e) => log::error!("key directory unreadable, keeping current keys: {e}"),
                    }
                }
            }
        })
        .expect("spawning the maintenance thread")
}

/// Runs a blocking closure (database work) on actix's blocking pool.
pub async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static + From<crate::service::Error>,
{
    match web::block(f).await {
        Ok(r) => r,
        Err(_) => Err(E::from(crate::service::Error::Internal("blocking task failed".into()))),
    }
}

/// Every refused mutating call of an authenticated caller becomes an audit event
/// (successful ones are recorded by the service in the same transaction as the change):
/// object ids and paths cut to 64 characters, and at most a few rows per caller a minute,
/// the rest counted into one summary row.
async fn audit_refused(res: &ServiceResponse<BoxBody>) {
    use crate::service::audit::truncate;
    use actix_web::HttpMessage;
    let status = res.status();
    let req = res.request();
    if !(status.is_client_error() || status.is_server_error()) || req.method() == actix_web::http::Method::GET {
        return;
    }
    let Some(p) = req.extensions().get::<crate::service::Principal>().cloned() else { return };
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else { return };
    let (write, summary) = state.refused.admit(&p, state.now());
    if !write && summary.is_none() {
        return;
    }
    let route = req.match_pattern();
    let action = format!("{} {}", audit_method(req.method()), truncate(route.as_deref().unwrap_or(req.path())));
    let object = req.match_info().iter().last().map(|(_, v)| truncate(v).into_owned());
    let outcome = if status == actix_web::http::StatusCode::FORBIDDEN { "denied" } else { "failure" };
    let code = status.as_u16();
    let result = blocking(move || -> Result<(), crate::service::Error> {
        let mut conn = state.db.write()?;
        let now = state.now();
        if let Some(s) = summary {
            s.record(&mut conn, now)?;
        }
        if !write {
            return Ok(());
        }
        let ev = crate::service::audit::Event {
            org_id: Some(&p.org_id),
            actor_kind: p.acct.as_str(),
            actor_id: Some(&p.id),
            action: &action,
            object_kind: None,
            object_id: object.as_deref(),
            ip: p.ip.as_deref(),
            outcome,
            detail: Some(serde_json::json!({ "status": code, "via_token": p.token_id })),
        };
        crate::service::audit::record(&mut conn, ev, now)
    })
    .await;
    if let Err(e) = result {
        log::warn!("auditing a refused call failed: {e}");
    }
}

/// The method as written in audit actions: a standard one, or "OTHER".
fn audit_method(m: &actix_web::http::Method) -> &'static str {
    match method_label(m) {
        "other" => "OTHER",
        l => l,
    }
}

/// Gives errors from actix itself (404, 405, 413: bodiless or plain text) the format of their scope.
fn shape_errors(res: ServiceResponse<BoxBody>, oauth: bool) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let want = if oauth { "application/json" } else { "application/problem+json" };
    let shaped =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(want));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return res;
    }
    let (req, mut resp) = res.into_parts();
    let (ct, body) = if oauth {
        ("application/json", oauth_body("invalid_request", status.canonical_reason().unwrap_or("error")))
    } else {
        (
            "application/problem+json",
            problem_body(status, status.canonical_reason().unwrap_or("error"), None).to_string(),
        )
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
    let resp = resp.set_body(BoxBody::new(body));
    ServiceResponse::new(req, resp)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/oauth")
            .app_data(web::PayloadConfig::new(64 * 1024))
            .wrap(actix_web::middleware::from_fn(|req, next: actix_web::middleware::Next<BoxBody>| async move {
                let res = next.call(req).await?;
                Ok::<_, actix_web::Error>(shape_errors(res.map_into_boxed_body(), true))
            }))
            .configure(oauth::routes),
    )
    .service(
        web::scope("/api/v1")
            .app_data(api::json_config())
            .app_data(api::query_config())
            .app_data(api::path_config())
            .wrap(actix_web::middleware::from_fn(|req, next: actix_web::middleware::Next<BoxBody>| async move {
                let res = next.call(req).await?;
                audit_refused(&res).await;
                Ok::<_, actix_web::Error>(shape_errors(res.map_into_boxed_body(), false))
            }))
            .configure(api::routes)
            .default_service(web::to(api::not_found)),
    )
    .configure(discovery::routes)
    .configure(health::routes)
    .service(web::resource("/bench/sign").route(web::post().to(bench_sign)));
}

/// The benchmark ceiling: HTTP + signing a fixed set of claims, no database, no parsing.
/// Answers 404 unless TOKEND_BENCH_SIGN_ROUTE is set.
async fn bench_sign(state: web::Data<State>) -> actix_web::HttpResponse {
    if !state.cfg.bench_sign_route {
        return actix_web::HttpResponse::NotFound().finish();
    }
    let ctx = crate::service::exchange::Ctx {
        keys: &state.keys,
        cfg: &state.cfg,
        usage: &state.usage,
        now: state.now(),
        ip: "",
    };
    let roles = vec!["org:member".to_string()];
    let subject = crate::service::exchange::Subject {
        sub: "bench",
        org: "bench",
        acct: crate::service::Acct::App,
        client_id: "bench",
        epoch: 0,
    };
    let c = crate::service::exchange::claims(&ctx, &subject, state.cfg.issuer.clone(), 1800, roles);
    match crate::jwt::issue(&state.keys, &c, ctx.now) {
        // The same response writer as the token endpoint, so the ceiling is comparable.
        Ok(t) => oauth::token_response(&oauth::TokenResponse {
            access_token: &t,
            token_type: "Bearer",
            expires_in: 1800,
            scope: &c.scope,
            issued_token_type: None,
        }),
        Err(_) => actix_web::HttpResponse::InternalServerError().finish(),
    }
}

/// The `method` label: the standard methods, everything else one value, so that clients
/// inventing methods cannot grow the metrics without bound.
pub fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by its route pattern (never the raw path) and a
/// bounded method label.
async fn observe(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let state = req.app_data::<web::Data<State>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let res = next.call(req).await?;
    if let Some(s) = state {
        let status = res.status().as_u16().to_string();
        s.metrics.requests.with_label_values(&[&route, method, &status]).inc();
        s.metrics.latency.with_label_values(&[&route, method]).observe(start.elapsed().as_secs_f64());
    }
    Ok(res)
}

pub fn server(state: web::Data<State>, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.cfg.workers;
    let s = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(pacing::pace))
            .wrap(actix_web::middleware::from_fn(observe))
            .configure(configure)
    })
    .workers(workers)
    .backlog(2048)
    .listen(listener)?
    .run();
    Ok(s)
}
