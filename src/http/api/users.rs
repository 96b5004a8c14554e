//! `/users`: the people of the organization, and the reset codes an admin issues them.
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::principals::{sessions, users};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::principals::{
    sessions::IssuedCode,
    users::{CredentialsQuery, NewUser, UserFilter, UserPatch, UserView},
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            web::resource("/users/{id}")
                .route(web::get().to(get))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/users/{id}/password-reset").route(web::post().to(password_reset)));
}

super::sort_param!(UserSort, crate::service::principals::users::Sort::ALL, "created_at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, patch, delete, password_reset))]
pub struct Doc;

/// List users
///
/// Requires org:admin.
#[utoipa::path(get, path = "/users", tag = "Users", operation_id = "listUsers",
    params(UserFilter, PageQuery, UserSort),
    responses(
        (status = 200, description = "OK.", body = Paged<UserView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(
    c: Caller,
    f: web::Query<users::UserFilter>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::list(conn, &c.0, &f, &q)).await?)
}

/// Create a user
///
/// Requires org:admin. Granting org:owner needs an owner (403). Roles must be catalogued and held by
/// the caller (422). 409 if the email is taken.
#[utoipa::path(post, path = "/users", tag = "Users", operation_id = "createUser",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created.", body = UserView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
// Hashes a password being set on the blocking pool, holding no database connection.
pub async fn create(c: Caller, body: Obj<users::NewUser>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| users::create(conn, &c.0, &body, now)).await?)
}

/// Read a user
///
/// Requires org:admin.
#[utoipa::path(get, path = "/users/{id}", tag = "Users", operation_id = "getUser",
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "OK.", body = UserView),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::get(conn, &c.0, &id)).await?)
}

/// Change a user
///
/// Requires org:admin. A disabled user's tokens stop working at the next exchange; re-enabling needs an
/// access token from an interactive login (403). A change of roles, or disabling, voids the person's
/// pending reset codes. 409 when it would leave no enabled owner, or (without ?credentials=) when a
/// demotion leaves credentials they created or saw with roles they no longer hold.
#[utoipa::path(patch, path = "/users/{id}", tag = "Users", operation_id = "updateUser",
    params(("id" = String, Path, description = "User id."), CredentialsQuery),
    request_body = UserPatch,
    responses(
        (status = 200, description = "OK.", body = UserView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<users::CredentialsQuery>,
    body: Obj<users::UserPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let choice = q.choice()?;
    ok(write(&st, move |conn, s, now| users::patch(conn, &c.0, &s.notify.sealer, &id, &body, choice, now)).await?)
}

/// Delete a user
///
/// Requires org:admin. Soft delete; the user's live tokens and pending reset codes (theirs and those
/// they issued) are revoked. Only an owner deletes an owner (403); the last enabled owner cannot be
/// deleted (409); without ?credentials= the delete answers 409 when they created or saw the secret of
/// live credentials.
#[utoipa::path(delete, path = "/users/{id}", tag = "Users", operation_id = "deleteUser",
    params(("id" = String, Path, description = "User id."), CredentialsQuery),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 422),
    ))]
pub async fn delete(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<users::CredentialsQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let choice = q.choice()?;
    write(&st, move |conn, s, now| users::delete(conn, &c.0, &s.notify.sealer, &id, choice, now)).await?;
    no_content()
}

/// Issue a one-time password reset code
///
/// org:admin holding every role of the person, from an interactive login. Answers a code valid for one
/// hour, shown once; ends the person's logins and voids earlier codes.
#[utoipa::path(post, path = "/users/{id}/password-reset", tag = "Users", operation_id = "issueResetCode",
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "OK.", body = IssuedCode, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn password_reset(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let issued = write(&st, move |conn, _, now| sessions::issue_reset_code(conn, &c.0, &id, now)).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(issued))
}
