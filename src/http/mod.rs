//! HTTP edge: routes and the actix app. Parses and authenticates; the shared state and
//! background work are in `app`, rules in `service`, storage in `store`.
pub mod api;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod discovery;
pub mod gateway;
pub mod health;
pub mod leaks;
pub mod middleware;
pub mod oauth;
pub mod openapi;
pub mod pacing;

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
            .default_service(web::to(api::not_found)),
    )
    .configure(gateway::routes)
    .configure(discovery::routes)
    .configure(health::routes)
    .configure(leaks::routes)
    .configure(crate::console::configure);
    #[cfg(feature = "bench")]
    cfg.configure(bench::routes);
}

pub fn server(state: web::Data<State>, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.cfg.workers;
    let timeout = std::time::Duration::from_secs(state.cfg.request_timeout_seconds);
    // The console's one-time secrets, flash messages and sudo windows: one store for the
    // process (every worker), kept by the front end that uses it.
    let slots = web::Data::new(crate::console::slots::Slots::default());
    let s = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(slots.clone())
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

/// Every path the app routes (`/api/v1/me/tokens/{id}`, …), as actix itself registered
/// them: an app is configured with `configure` (what `server` serves) and its resource map
/// is read back (scopes joined with their resources, in registration order). The route
/// inventory test compares this with /openapi.json, so a route added without
/// documentation fails there whatever file registers it.
pub fn routes() -> Vec<String> {
    use actix_web::{test, HttpRequest, HttpResponse};
    let dump = actix_web::rt::System::new().block_on(async {
        let app = test::init_service(App::new().configure(configure).default_service(web::to(
            |req: HttpRequest| async move { HttpResponse::Ok().body(format!("{:?}", req.resource_map())) },
        )))
        .await;
        let req = test::TestRequest::get().uri("/.tokend-routes").to_request();
        String::from_utf8_lossy(&test::call_and_read_body(&app, req).await).into_owned()
    });
    leaf_paths(&dump)
}

/// The full paths of the leaves of a `ResourceMap`'s `Debug` text: each `ResourceMap {`
/// opens a node whose first `patterns: Single("…")` is its own pattern; a node with
/// `nodes: None` is a resource. (`ResourceMap` has no public iterator; its `Debug` is the
/// one view of its tree actix offers.)
fn leaf_paths(dump: &str) -> Vec<String> {
    // (depth at which the node opened, its pattern, whether it is a leaf)
    let mut stack: Vec<(usize, Option<String>, bool)> = Vec::new();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let b = dump.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &dump[i..];
        if rest.starts_with("ResourceMap {") {
            stack.push((depth, None, false));
            depth += 1;
            i += "ResourceMap {".len();
            continue;
        }
        if let Some(after) = rest.strip_prefix("patterns: Single(\"") {
            let end = after.find('"').unwrap_or(after.len());
            if let Some(top) = stack.last_mut().filter(|t| t.1.is_none()) {
                top.1 = Some(after[..end].to_string());
            }
            // Past the string; the `(` it opened is closed by the `)` that follows.
            depth += 1;
            i += "patterns: Single(\"".len() + end + 1;
            continue;
        }
        if rest.starts_with("nodes: None") {
            if let Some(top) = stack.last_mut() {
                top.2 = true;
            }
            i += "nodes: None".len();
            continue;
        }
        match b[i] {
            b'"' => {
                // Skip a string literal (patterns hold braces).
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                if stack.last().is_some_and(|t| t.0 == depth) {
                    let leaf = stack.last().is_some_and(|t| t.2);
                    if leaf {
                        out.push(stack.iter().filter_map(|t| t.1.as_deref()).collect::<String>());
                    }
                    stack.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}
