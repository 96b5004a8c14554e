//! `/trust-policies`: external issuers (CI systems, clusters) whose tokens are exchanged
//! at `/oauth/token` for a service account's access tokens. Rules in
//! `service::oauth::federation::policies`.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::oauth::federation::policies::TrustPolicyView;
use crate::service::oauth::federation::policies::{self, NewTrustPolicy, TrustPolicyPatch};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/trust-policies").route(web::get().to(list)).route(web::post().to(create))).service(
        web::resource("/trust-policies/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(patch))
            .route(web::delete().to(delete)),
    );
}

super::sort_param!(TrustPolicySort, crate::service::oauth::federation::policies::Sort::ALL, "created_at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, patch, delete))]
pub struct Doc;

/// List trust policies
///
/// Requires org:admin.
#[utoipa::path(get, path = "/trust-policies", tag = "Trust policies", operation_id = "listTrustPolicies",
    params(PageQuery, TrustPolicySort),
    responses(
        (status = 200, description = "OK.", body = Paged<TrustPolicyView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policies::list(conn, &c.0, &q)).await?)
}

/// Create a trust policy
///
/// Requires org:admin, every role of the service account, and an interactive login
/// (trusting an issuer mints credentials). At least one condition; roles ⊆ the service
/// account's; at most 100 policies per organization (409).
#[utoipa::path(post, path = "/trust-policies", tag = "Trust policies", operation_id = "createTrustPolicy",
    request_body = NewTrustPolicy,
    responses(
        (status = 201, description = "Created.", body = TrustPolicyView,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn create(c: Caller, body: Obj<NewTrustPolicy>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| policies::create(conn, &c.0, &body, now)).await?)
}

/// Read a trust policy
///
/// Requires org:admin.
#[utoipa::path(get, path = "/trust-policies/{id}", tag = "Trust policies", operation_id = "getTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    responses((status = 200, description = "OK.", body = TrustPolicyView), (status = 403), (status = 404)))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policies::get(conn, &c.0, &id)).await?)
}

/// Change a trust policy
///
/// Requires org:admin and every role of its service account. A change that could widen
/// what it lets through (issuer, audience, conditions, service account, more roles, a
/// longer max age, re-enabling) needs an interactive login; narrowing does not.
#[utoipa::path(patch, path = "/trust-policies/{id}", tag = "Trust policies", operation_id = "patchTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    request_body = TrustPolicyPatch,
    responses((status = 200, description = "OK.", body = TrustPolicyView), (status = 403), (status = 404)))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<TrustPolicyPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| policies::patch(conn, &c.0, &id, &body, now)).await?)
}

/// Delete a trust policy
///
/// Requires org:admin. Access tokens already issued through it live out their short TTL.
#[utoipa::path(delete, path = "/trust-policies/{id}", tag = "Trust policies", operation_id = "deleteTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    responses((status = 204, description = "Done."), (status = 403), (status = 404)))]
pub async fn delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| policies::delete(conn, &c.0, &id, now)).await?;
    no_content()
}
