//! `/roles`: the organization's role catalogue.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::service::authz::roles;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::authz::roles::{NewRole, RolePatch, RoleView};
use crate::service::list::Paged;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/roles").route(web::get().to(list)).route(web::post().to(create)))
        .service(web::resource("/roles/{name}").route(web::patch().to(patch)).route(web::delete().to(delete)));
}

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, patch, delete))]
pub struct Doc;

/// The org's role catalogue
///
/// Any authenticated caller. The whole catalogue in one page: the four built-in roles (strongest
/// first), then the org's roles by name; page is 1 and page_size equals total_count. Not paginated (no
/// query parameters).
#[utoipa::path(get, path = "/roles", tag = "Roles", operation_id = "listRoles",
    responses(
        (status = 200, description = "OK.", body = Paged<RoleView>),
    ))]
pub async fn list(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let items = read(&st, move |conn, _, _| roles::list(conn, &c.0)).await?;
    let n = items.len() as i64;
    ok(Paged { items, total_count: n, page: 1, page_size: n })
}

/// Add a service or custom role
///
/// Requires org:admin. 409 if the role exists, or when the org already catalogues 500 service and
/// custom roles (the cap).
#[utoipa::path(post, path = "/roles", tag = "Roles", operation_id = "createRole",
    request_body = NewRole,
    responses(
        (status = 201, description = "Created.", body = RoleView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn create(c: Caller, body: Obj<roles::NewRole>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| roles::create(conn, &c.0, &body, now)).await?)
}

/// Change a role's description
///
/// Requires org:admin. A service or custom role's description (at most 1000 characters); its name
/// stays. 409 for a built-in role, 404 for a role the org does not catalogue.
#[utoipa::path(patch, path = "/roles/{name}", tag = "Roles", operation_id = "updateRole",
    params(("name" = String, Path, description = "Role name, e.g. metrics:read.")),
    request_body = RolePatch,
    responses(
        (status = 200, description = "OK.", body = RoleView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn patch(
    c: Caller,
    name: web::Path<String>,
    body: Obj<roles::RolePatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| roles::describe(conn, &c.0, &name, &body, now)).await?)
}

/// Delete a role
///
/// Requires org:admin. 409 for a built-in role or one still granted to a user, service account or app.
/// The role is also removed from API tokens that carry it.
#[utoipa::path(delete, path = "/roles/{name}", tag = "Roles", operation_id = "deleteRole",
    params(("name" = String, Path, description = "Role name, e.g. metrics:read.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn delete(c: Caller, name: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| roles::delete(conn, &c.0, &name, now)).await?;
    no_content()
}
