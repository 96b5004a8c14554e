//! `/service-accounts`: non-human principals and their API tokens.
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::tokens::{OwnerTokenFilter, TokenSort};
use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::principals::accounts;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::principals::accounts::{AccountPatch, AccountView, NewAccount};
use crate::service::tokens::{self, table};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::tokens::{CreateToken, CreatedToken, PatchToken, TokenView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/service-accounts").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            web::resource("/service-accounts/{id}")
                .route(web::get().to(get))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(
            web::resource("/service-accounts/{id}/tokens")
                .route(web::get().to(tokens_list))
                .route(web::post().to(token_create)),
        )
        .service(
            web::resource("/service-accounts/{id}/tokens/{tid}")
                .route(web::get().to(token_get))
                .route(web::patch().to(token_patch))
                .route(web::delete().to(token_revoke)),
        )
        .service(web::resource("/service-accounts/{id}/tokens/{tid}/rotate").route(web::post().to(token_rotate)));
}

super::sort_param!(AccountSort, crate::service::principals::accounts::Sort::ALL, "created_at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    patch,
    delete,
    tokens_list,
    token_create,
    token_get,
    token_patch,
    token_revoke,
    token_rotate
))]
pub struct Doc;

/// List service accounts
///
/// Requires org:admin.
#[utoipa::path(get, path = "/service-accounts", tag = "Service accounts", operation_id = "listServiceAccounts",
    params(PageQuery, AccountSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AccountView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::list(conn, &c.0, &q)).await?)
}

/// Create a service account
///
/// Requires org:admin.
#[utoipa::path(post, path = "/service-accounts", tag = "Service accounts", operation_id = "createServiceAccount",
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created.", body = AccountView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn create(
    c: Caller,
    body: Obj<accounts::NewAccount>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| accounts::create(conn, &c.0, &body, now)).await?)
}

/// Read a service account
///
/// Requires org:admin.
#[utoipa::path(get, path = "/service-accounts/{id}", tag = "Service accounts", operation_id = "getServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    responses(
        (status = 200, description = "OK.", body = AccountView),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::get(conn, &c.0, &id)).await?)
}

/// Change a service account
///
/// Requires org:admin. The caller must hold every role the account holds (403). Enabling needs an
/// interactive login (403) and revokes the account's tokens minted by people who have since left
/// (deleted or disabled).
#[utoipa::path(patch, path = "/service-accounts/{id}", tag = "Service accounts", operation_id = "updateServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    request_body = AccountPatch,
    responses(
        (status = 200, description = "OK.", body = AccountView),
        (status = 403),
        (status = 404),
    ))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<accounts::AccountPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| accounts::patch(conn, &c.0, &id, &body, now)).await?)
}

/// Delete a service account
///
/// Requires org:admin. The caller must hold every role the account holds (403). Soft delete; every
/// token of the account is revoked.
#[utoipa::path(delete, path = "/service-accounts/{id}", tag = "Service accounts", operation_id = "deleteServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| accounts::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// List a service account's tokens
///
/// Requires org:admin. Unknown or repeated query parameters and invalid values are 422.
#[utoipa::path(get, path = "/service-accounts/{id}/tokens", tag = "Service accounts", operation_id = "listServiceAccountTokens",
    params(("id" = String, Path, description = "Service account id."), OwnerTokenFilter, PageQuery, TokenSort),
    responses(
        (status = 200, description = "OK.", body = Paged<TokenView>),
        (status = 403),
        (status = 404),
        (status = 422),
    ))]
pub async fn tokens_list(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| accounts::token_list(conn, &c.0, &id, &q, &s.usage, now)).await?)
}

/// Create a service-account token
///
/// Requires org:admin. The caller needs an access token from an interactive login (POST /api/v1/login;
/// amr has pwd), so a token derived from an API token or app cannot mint credentials (403). roles may
/// be left out (the token then carries the account's roles); if given, a non-empty subset of them.
/// ttl_days up to the policy's service_token_max_ttl_days. 409 when the account already has
/// max_tokens_per_service_account live tokens (policy, default 20; revoked, expired and idle tokens do
/// not count). The secret is in this response only.
#[utoipa::path(post, path = "/service-accounts/{id}/tokens", tag = "Service accounts", operation_id = "createServiceAccountToken",
    params(("id" = String, Path, description = "Service account id.")),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn token_create(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::CreateToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(
        write(&st, move |conn, s, now| accounts::token_create(conn, &s.cfg, &c.0, &id, &body, &s.usage, now)).await?,
    )
}

/// Read one service-account token
///
/// Requires org:admin.
#[utoipa::path(get, path = "/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "getServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn token_get(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(read(&st, move |conn, s, now| accounts::token_get(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}

/// Rename or re-describe a service-account token
///
/// Requires org:admin. 409 for a revoked token.
#[utoipa::path(patch, path = "/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "updateServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    request_body = PatchToken,
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn token_patch(
    c: Caller,
    path: web::Path<(String, String)>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(write(&st, move |conn, s, now| accounts::token_patch(conn, &s.cfg, &c.0, (&id, &tid), &body, &s.usage, now))
        .await?)
}

/// Revoke a service-account token
///
/// Requires org:admin. Irreversible and idempotent.
#[utoipa::path(delete, path = "/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "revokeServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn token_revoke(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    write(&st, move |conn, _, now| accounts::token_revoke(conn, &c.0, &id, &tid, now)).await?;
    no_content()
}

/// Rotate a service-account token
///
/// Requires org:admin, every role the account holds (403) and an access token from an interactive login
/// (POST /api/v1/login; amr has pwd): rotation mints. Revokes the token and creates a new one with the
/// same name, description, roles and lifetime (capped by the current policy) in one transaction; the new
/// secret is in this response only. The token limit does not count the token being replaced, so an
/// account at its limit rotates (409 only when the other live tokens alone reach the limit). 409 unless
/// the token is active. No body.
#[utoipa::path(post, path = "/service-accounts/{id}/tokens/{tid}/rotate", tag = "Service accounts", operation_id = "rotateServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn token_rotate(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    created(write(&st, move |conn, s, now| accounts::token_rotate(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}
