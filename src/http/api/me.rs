//! `/me/tokens`: the caller's own API tokens (list, create, read, rename, revoke,
//! rotate, regenerate with a new expiry).
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::tokens::{OwnerTokenFilter, TokenSort};
use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::tokens::{self, table, Regenerate};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::tokens::{CreateToken, CreatedToken, PatchToken, TokenView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/me/tokens")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .route(web::delete().to(revoke_all)),
    )
    .service(
        web::resource("/me/tokens/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(patch))
            .route(web::delete().to(revoke)),
    )
    .service(web::resource("/me/tokens/{id}/rotate").route(web::post().to(rotate)))
    .service(web::resource("/me/tokens/{id}/regenerate").route(web::post().to(regenerate)));
}

/// How many tokens were revoked.
#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    #[schema(minimum = 0)]
    revoked: usize,
}

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, revoke_all, get, patch, revoke, rotate, regenerate))]
pub struct Doc;

/// List own API tokens
///
/// 403 for callers that are not users. Unknown or repeated query parameters and invalid values are 422.
#[utoipa::path(get, path = "/me/tokens", tag = "Personal tokens", operation_id = "listMyTokens",
    params(OwnerTokenFilter, PageQuery, TokenSort),
    responses(
        (status = 200, description = "OK.", body = Paged<TokenView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| tokens::table::my_list(conn, &c.0, &q, &s.usage, now)).await?)
}

/// Create a personal access token
///
/// The caller needs an access token from an interactive login (POST /api/v1/login; amr has pwd), so a
/// token derived from an API token or app cannot mint credentials (403). roles is required and non-
/// empty. The secret is in this response only.
#[utoipa::path(post, path = "/me/tokens", tag = "Personal tokens", operation_id = "createMyToken",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn create(c: Caller, body: Obj<tokens::CreateToken>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_create(conn, &s.cfg, &c.0, &body, &s.usage, now)).await?)
}

/// Revoke all own tokens
///
/// Revokes every unrevoked token of the caller; answers how many.
#[utoipa::path(delete, path = "/me/tokens", tag = "Personal tokens", operation_id = "revokeAllMyTokens",
    responses(
        (status = 200, description = "OK.", body = RevokedCount),
        (status = 403),
    ))]
pub async fn revoke_all(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let n = write(&st, move |conn, _, now| tokens::my_revoke_all(conn, &c.0, now)).await?;
    ok(RevokedCount { revoked: n })
}

/// Read an own token
#[utoipa::path(get, path = "/me/tokens/{id}", tag = "Personal tokens", operation_id = "getMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| tokens::my_get(conn, &c.0, &id, &s.usage, now)).await?)
}

/// Rename or re-describe an own token
///
/// 409 for a revoked token.
#[utoipa::path(patch, path = "/me/tokens/{id}", tag = "Personal tokens", operation_id = "updateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    request_body = PatchToken,
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| tokens::my_patch(conn, &s.cfg, &c.0, &id, &body, &s.usage, now)).await?)
}

/// Revoke an own token
///
/// Immediate and idempotent (204 also when already revoked).
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "Personal tokens", operation_id = "revokeMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| tokens::my_revoke(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Rotate an own token
///
/// Revokes the token and creates a new one with the same name, description, roles and lifetime (capped
/// by the current policy); the new secret is in this response only. The caller needs an access token
/// from an interactive login (POST /api/v1/login; amr has pwd), so a token derived from an API token or
/// app cannot mint credentials (403). 409 unless the token is active.
#[utoipa::path(post, path = "/me/tokens/{id}/rotate", tag = "Personal tokens", operation_id = "rotateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn rotate(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_rotate(conn, &c.0, &id, &s.usage, now)).await?)
}

/// Regenerate an own token with a new expiry
///
/// Like rotate (revokes the token and creates a successor with the same name, description, roles and
/// reach; the new secret is in this response only), but the successor expires as the body says:
/// `ttl_days` or `expires_at`, within personal_token_max_ttl_days (422 beyond, or when both are
/// given). An empty object keeps the old lifetime, as rotate does. Needs an access token from an
/// interactive login (403 otherwise); 404 for a token that is not the caller's; 409 unless it is
/// active. Audited as token.rotate, whose detail names the successor (`new_token`).
#[utoipa::path(post, path = "/me/tokens/{id}/regenerate", tag = "Personal tokens", operation_id = "regenerateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    request_body = Regenerate,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 422),
    ))]
pub async fn regenerate(
    c: Caller,
    id: web::Path<String>,
    body: Obj<Regenerate>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_regenerate(conn, &c.0, &id, &body, &s.usage, now)).await?)
}
