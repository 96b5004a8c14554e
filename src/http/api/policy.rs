//! `/policy`: the organization's token policy (lifetimes and limits).
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::service::org::policy;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::org::policy::{PolicyUpdate, PolicyView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/policy").route(web::get().to(get)).route(web::put().to(put)));
}

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(get, put))]
pub struct Doc;

/// Read the token policy
///
/// Requires org:admin.
#[utoipa::path(get, path = "/policy", tag = "Policy", operation_id = "getPolicy",
    responses(
        (status = 200, description = "OK.", body = PolicyView),
        (status = 403),
    ))]
pub async fn get(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policy::read(conn, &c.0)).await?)
}

/// Change the token policy
///
/// Requires org:owner. A change that widens what tokens can do (allow_self_rotation turned on, a longer
/// maximum TTL, a larger max_tokens_per_service_account, a longer or no idle_ttl_days) needs an access
/// token from an interactive login (403); one derived from an API token may only narrow.
#[utoipa::path(put, path = "/policy", tag = "Policy", operation_id = "updatePolicy",
    request_body = PolicyUpdate,
    responses(
        (status = 200, description = "OK.", body = PolicyView),
        (status = 403),
    ))]
pub async fn put(c: Caller, body: Obj<serde_json::Value>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| policy::update(conn, &s.cfg, &c.0, &body, now)).await?)
}
