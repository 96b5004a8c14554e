//! `/saved-searches`: token-table queries saved for every admin of the org.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::tokens::saved;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::tokens::saved::{NewSearch, SearchView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/saved-searches").route(web::get().to(list)).route(web::post().to(create)))
        .service(web::resource("/saved-searches/{id}").route(web::delete().to(delete)));
}

super::sort_param!(SavedSort, crate::service::tokens::saved::Sort::ALL, "created_at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, delete))]
pub struct Doc;

/// List saved searches
///
/// Requires org:admin. Shared by every admin of the org.
#[utoipa::path(get, path = "/saved-searches", tag = "Token table", operation_id = "listSavedSearches",
    params(PageQuery, SavedSort),
    responses(
        (status = 200, description = "OK.", body = Paged<SearchView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| saved::list(conn, &c.0, &q)).await?)
}

/// Save a token-table query
///
/// Requires org:admin.
#[utoipa::path(post, path = "/saved-searches", tag = "Token table", operation_id = "createSavedSearch",
    request_body = NewSearch,
    responses(
        (status = 201, description = "Created.", body = SearchView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn create(c: Caller, body: Obj<saved::NewSearch>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| saved::create(conn, &c.0, &body, now)).await?)
}

/// Delete a saved search
///
/// Requires org:admin. Only its creator or an owner (403).
#[utoipa::path(delete, path = "/saved-searches/{id}", tag = "Token table", operation_id = "deleteSavedSearch",
    params(("id" = String, Path, description = "Saved search id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| saved::delete(conn, &c.0, &id, now)).await?;
    no_content()
}
