//! `/apps`: server-to-server OAuth clients, their secrets, and the audiences each may act
//! for on a user's behalf (`/apps/{id}/delegation`, rules in
//! `service::oauth::federation::policies`).
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, optional_obj, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::oauth::federation::policies::{self, DelegationView};
use crate::service::principals::apps;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::principals::apps::{AppPatch, AppView, AppWithSecret, NewApp, SecretRotation};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/apps").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            web::resource("/apps/{id}")
                .route(web::get().to(get))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/apps/{id}/secret").route(web::post().to(secret)))
        .service(
            web::resource("/apps/{id}/delegation")
                .route(web::get().to(delegation_get))
                .route(web::put().to(delegation_put)),
        );
}

super::sort_param!(AppSort, crate::service::principals::apps::Sort::ALL, "created_at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, patch, delete, secret, delegation_get, delegation_put))]
pub struct Doc;

/// List apps
///
/// Requires org:admin or org:developer.
#[utoipa::path(get, path = "/apps", tag = "Apps", operation_id = "listApps",
    params(PageQuery, AppSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AppView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::list(conn, &c.0, &q)).await?)
}

/// Create an app (OAuth client)
///
/// Requires org:admin or org:developer. The caller needs an access token from an interactive login
/// (POST /api/v1/login; amr has pwd), so a token derived from an API token or app cannot mint
/// credentials (403). The client secret is in this response only.
#[utoipa::path(post, path = "/apps", tag = "Apps", operation_id = "createApp",
    request_body = NewApp,
    responses(
        (status = 201, description = "Created.", body = AppWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn create(c: Caller, body: Obj<apps::NewApp>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    // Apps live 300 s to 86400 s; a shorter server default still gives apps a valid one.
    created(write(&st, move |conn, s, now| apps::create(conn, &s.cfg, &c.0, &body, now)).await?)
}

/// Read an app
///
/// Requires org:admin or org:developer.
#[utoipa::path(get, path = "/apps/{id}", tag = "Apps", operation_id = "getApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    responses(
        (status = 200, description = "OK.", body = AppView),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::get(conn, &c.0, &id)).await?)
}

/// Change an app
///
/// Requires org:admin or org:developer. The caller must hold every role the app holds (403). Disabling
/// an app with introspect needs org:admin and an interactive login (403). Enabling needs an interactive
/// login (403), and answers 409 while a person who saw its secret has left (deleted or disabled):
/// regenerate the secret first.
#[utoipa::path(patch, path = "/apps/{id}", tag = "Apps", operation_id = "updateApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    request_body = AppPatch,
    responses(
        (status = 200, description = "OK.", body = AppView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<apps::AppPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| apps::patch(conn, &s.cfg, &c.0, &id, &body, now)).await?)
}

/// Delete an app
///
/// Requires org:admin or org:developer. The caller must hold every role the app holds (403); an app with
/// introspect needs org:admin and an interactive login (403). Its credentials stop working at once; its access tokens are refused by /api/v1 and introspect inactive
/// (offline verification still accepts them until exp).
#[utoipa::path(delete, path = "/apps/{id}", tag = "Apps", operation_id = "deleteApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| apps::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Regenerate an app's client secret
///
/// Requires org:admin or org:developer (org:admin for an app with introspect). The caller must hold every
/// role the app holds (403). The caller needs an access token from an interactive login (POST /api/v1/login; amr has pwd), so a token
/// derived from an API token or app cannot mint credentials (403). Without a body (or with
/// grace_period_seconds 0) the old secret, and every access token minted with it, stops working when this
/// commits. With grace_period_seconds (at most 604800, 7 days) the old secret and its access tokens keep
/// working until previous_secret_expires_at, then die; a previous secret still in its grace dies at once.
/// The new secret is in this response only.
#[utoipa::path(post, path = "/apps/{id}/secret", tag = "Apps", operation_id = "regenerateAppSecret",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    request_body(content = Option<SecretRotation>, description = "Optional.", content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = AppWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn secret(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let input: apps::SecretRotation = optional_obj(&req, &body)?.unwrap_or_default();
    created(write(&st, move |conn, _, now| apps::regenerate_secret(conn, &c.0, &id, &input, now)).await?)
}

/// The audiences an app may act for
///
/// Requires org:admin. The resource audiences for which the app may exchange a user's
/// access token (RFC 8693 delegation) for one carrying act: {sub: its client_id}.
#[utoipa::path(get, path = "/apps/{id}/delegation", tag = "Apps", operation_id = "getAppDelegation",
    params(("id" = String, Path, description = "App id.")),
    responses((status = 200, description = "OK.", body = DelegationView), (status = 403), (status = 404)))]
pub async fn delegation_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policies::get_delegation(conn, &c.0, &id)).await?)
}

/// Set the audiences an app may act for
///
/// Requires org:admin and every role of the app; adding an audience needs an interactive
/// login (removing does not). Only configured resource audiences, never the management one.
#[utoipa::path(put, path = "/apps/{id}/delegation", tag = "Apps", operation_id = "setAppDelegation",
    params(("id" = String, Path, description = "App id.")),
    request_body = DelegationView,
    responses((status = 200, description = "OK.", body = DelegationView), (status = 403), (status = 404)))]
pub async fn delegation_put(
    c: Caller,
    id: web::Path<String>,
    body: Obj<DelegationView>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| policies::set_delegation(conn, &s.cfg, &c.0, &id, &body, now)).await?)
}
