//! Liveness, readiness (database round trip) and Prometheus metrics.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::app::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// The body of /healthz and /readyz.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    #[schema(schema_with = statuses)]
    pub status: &'static str,
}

fn statuses() -> utoipa::openapi::Object {
    crate::service::one_of(&["ok", "ready", "database unavailable"])
}

/// Liveness
///
/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz", security(()),
    responses((status = 200, description = "{\"status\":\"ok\"}", body = HealthStatus)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Readiness
///
/// A database round trip.
#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz", security(()),
    responses(
        (status = 200, description = "{\"status\":\"ready\"}", body = HealthStatus),
        (status = 503, description = "{\"status\":\"database unavailable\"}", body = HealthStatus),
    ))]
pub async fn readyz(state: web::Data<State>) -> HttpResponse {
    let st = state.clone();
    let ok = web::block(crate::logging::carry(move || st.db.ping())).await.map(|r| r.is_ok()).unwrap_or(false);
    if ok {
        HttpResponse::Ok().json(HealthStatus { status: "ready" })
    } else {
        HttpResponse::ServiceUnavailable().json(HealthStatus { status: "database unavailable" })
    }
}

/// Prometheus metrics
///
/// tokend_http_requests_total{route,method,status}, tokend_http_request_duration_seconds{route,method},
/// tokend_tokens_issued_total{grant,outcome}, tokend_refusals_paced_total{action}. Gauges computed off the
/// request path by the maintenance thread (at boot, then at most once a minute):
/// tokend_api_tokens_live{owner_kind}, tokend_api_tokens_expiring_7d, tokend_api_tokens_idle,
/// tokend_webhook_outbox_depth{kind} and tokend_webhook_deliveries_failed{kind} (kind webhook or email),
/// tokend_gauges_computed_timestamp_seconds.
/// With TOKEND_METRICS_TOKEN set, only `Authorization: Bearer <that token>` is answered (401
/// otherwise).
#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics", security(()),
    responses((status = 200, description = "Prometheus text exposition format.",
        content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "TOKEND_METRICS_TOKEN is set and the request does not present it.")))]
pub async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(token) = &state.cfg.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !token.matches(presented.trim()) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .content_type("text/plain")
                .body("a bearer token is required\n");
        }
    }
    state.metrics.credential_cache_entries.set(state.credentials.len() as i64);
    state.metrics.credential_cache_on.set(i64::from(state.credentials.enabled()));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
