//! HTTP edge: routes and the actix app. Parses and authenticates; the shared state and
//! background work are in `app`, rules in `service`, storage in `store`.
pub mod api;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod discovery;
pub mod gateway;
pub mod health;
pub mod middleware;
pub mod oauth;
pub mod openapi;
pub mod pacing;
pub mod regenerate;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::app::State;

pub use middleware::method_label;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/oauth")
            .app_data(web::PayloadConfig::new(64 * 1024))
            .wrap(from_fn(middleware::oauth_errors))
            .configure(oauth::routes),
    )
    .service(
        web::scope("/api/v1")
            .app_data(api::json_config())
            .app_data(api::query_config())
            .app_data(api::path_config())
            .wrap(from_fn(middleware::api_errors))
            .configure(api::routes)
            .configure(regenerate::routes)
            .default_service(web::to(api::not_found)),
    )
    .configure(gateway::routes)
    .configure(discovery::routes)
    .configure(health::routes)
    .configure(crate::console::configure);
    #[cfg(feature = "bench")]
    cfg.configure(bench::routes);
}

pub fn server(state: web::Data<State>, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.cfg.workers;
    let timeout = std::time::Duration::from_secs(state.cfg.request_timeout_seconds);
    let s = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(pacing::pace))
            .wrap(from_fn(middleware::observe))
            .wrap(from_fn(middleware::body_deadline))
            .configure(configure)
    })
    // A client has `TOKEND_REQUEST_TIMEOUT_SECONDS` to send the request head, and as long
    // again for its body (`middleware::body_deadline`): a connection that stops mid-request
    // is not held indefinitely.
    .client_request_timeout(timeout)
    .client_disconnect_timeout(std::time::Duration::from_secs(5))
    .workers(workers)
    .backlog(2048)
    .listen(listener)?
    .run();
    Ok(s)
}
