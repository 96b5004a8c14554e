//! `/tokens`: every API token of the organization (the token table), and self-rotation of
//! the API token presented as the bearer. The query parameters of the token lists (this
//! one, `/me/tokens`, a service account's tokens) are documented here beside the table's.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::{created, ok, read, write};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::{client_ip, Caller};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::{PageQuery, Paged};
use crate::service::oauth::exchange;
use crate::service::tokens::{self, table};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::tokens::{table::Row, CreatedToken, TokenView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tokens").route(web::get().to(list)))
        .service(web::resource("/tokens/self/rotate").route(web::post().to(self_rotate)))
        .service(web::resource("/tokens/{id}").route(web::get().to(get)))
        .service(web::resource("/tokens/{id}/revoke").route(web::post().to(revoke)));
}

super::sort_param!(TokenSort, crate::service::tokens::Sort::ALL, "created_at");
super::sort_param!(TableSort, crate::service::tokens::table::TableSort::ALL, "created_at");

fn status_filter() -> utoipa::openapi::Object {
    crate::service::tokens::vocab::StatusFilter::schema()
}
fn within_days() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Integer)
        .minimum(Some(1))
        .maximum(Some(crate::service::org::policy::MAX_DAYS))
        .build()
}
fn owner_kind() -> utoipa::openapi::Object {
    crate::service::tokens::vocab::OwnerKind::schema()
}
fn usage() -> utoipa::openapi::Object {
    crate::service::one_of(&["never_used", "used"])
}
crate::service::param_schema!(StatusParam, status_filter);
crate::service::param_schema!(WithinDaysParam, within_days);
crate::service::param_schema!(OwnerKindParam, owner_kind);
crate::service::param_schema!(UsageParam, usage);

/// The filters `service::tokens::table::parse` reads from the query string of `GET /api/v1/tokens`
/// (with `PageQuery`'s and `TableSort`'s). Unknown or repeated parameters are 422. (The
/// parser's result, `TableQuery`, is not the wire form, so this type documents the wire.)
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TableFilter {
    /// Owner kind.
    #[param(value_type = Option<OwnerKindParam>, inline)]
    owner_kind: Option<String>,
    /// Owner id.
    owner_id: Option<String>,
    /// Token status: active, owner_disabled (active but its owner is disabled), expired,
    /// revoked, idle, or expiring_soon (active and expiring within 7 days), as the token's
    /// status field says. Without a status filter, tokens that ended (revoked or expired) more
    /// than the organization's retention_days ago are left out.
    #[param(value_type = Option<StatusParam>, inline)]
    status: Option<String>,
    /// RFC 3339: tokens expiring before then (live or not).
    #[param(format = DateTime)]
    expires_before: Option<String>,
    /// Tokens neither revoked nor expired that expire within this many days.
    #[param(value_type = Option<WithinDaysParam>, inline)]
    expires_within_days: Option<String>,
    /// Whether the token was ever used.
    #[param(value_type = Option<UsageParam>, inline)]
    usage: Option<String>,
    /// RFC 3339: tokens not used since then (including never used).
    #[param(format = DateTime)]
    unused_since: Option<String>,
    /// Tokens carrying exactly this role.
    #[param(max_length = 200)]
    role: Option<String>,
    /// Case-insensitive substring of name, description, hint or owner (email or service
    /// account name); at most 200 characters (422 beyond).
    #[param(max_length = 200)]
    q: Option<String>,
    /// true: tokens that may reach the management API; false: those that may not.
    management: Option<bool>,
    /// Tokens that may be exchanged for this resource audience (listed, or "*").
    audience: Option<String>,
}

/// The filters of one owner's token list (`/me/tokens`, a service account's tokens):
/// `service::tokens::table::parse_in` with `Scope::Owner` reads these, `PageQuery`'s and
/// `TokenSort`'s, and refuses any other or repeated parameter (422).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OwnerTokenFilter {
    /// Token status: active, owner_disabled (active but its owner is disabled), expired,
    /// revoked, idle, or expiring_soon (active and expiring within 7 days), as the token's
    /// status field says. Without a status filter, tokens that ended (revoked or expired) more
    /// than the organization's retention_days ago are left out.
    #[param(value_type = Option<StatusParam>, inline)]
    status: Option<String>,
    /// RFC 3339: tokens expiring before then (live or not).
    #[param(format = DateTime)]
    expires_before: Option<String>,
    /// Tokens neither revoked nor expired that expire within this many days.
    #[param(value_type = Option<WithinDaysParam>, inline)]
    expires_within_days: Option<String>,
}

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list, self_rotate, get, revoke))]
pub struct Doc;

/// Every API token of the organization
///
/// Requires org:admin. Unknown or repeated query parameters and invalid values are 422 (checked before
/// the role).
#[utoipa::path(get, path = "/tokens", tag = "Token table", operation_id = "listOrgTokens",
    params(TableFilter, PageQuery, TableSort),
    responses(
        (status = 200, description = "OK.", body = Paged<Row>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse(req.query_string())?;
    ok(read(&st, move |conn, s, now| table::list(conn, &c.0, &q, &s.usage, now)).await?)
}

/// Rotate the API token presented as the bearer
///
/// The bearer is the API token itself (tkd_pat_... or tkd_sat_...), not an access token. Allowed only when
/// the organization's policy has allow_self_rotation (403 otherwise). The successor never widens
/// anything: its roles are the old token's roles that the owner still holds, its lifetime the old token's
/// capped by today's policy maximum; the old token is revoked in the same transaction and the new secret
/// is in this response only. Audited as token.rotate by the owner via the token. A bearer that is not a
/// live API token is 401 and counts as a failed credential of the caller's address (429 with Retry-After
/// over the limit), like every bearer. No body.
#[utoipa::path(post, path = "/tokens/self/rotate", tag = "Personal tokens", operation_id = "rotateSelf",
    security(("apiToken" = [])),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "The bearer is missing or not a live API token (an access token is refused too)."),
        (status = 403, description = "The organization's policy does not allow self-rotation."),
        (status = 409),
    ))]
pub async fn self_rotate(req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let secret = crate::http::auth::bearer(&req).map(str::to_string);
    let fail = |secret: Option<&str>, e: ApiError| -> ApiError {
        let per_minute = st.cfg.token_failures_per_minute;
        match crate::service::authz::throttle::credential_failure(&st.token_throttle, per_minute, &ip, secret, st.now())
        {
            Err(retry) => ApiError {
                retry_after: Some(retry),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many failed requests; retry later")
            },
            Ok(()) => e,
        }
    };
    let Some(secret) = secret.filter(|s| exchange::revocable(s)) else {
        let e = ApiError::new(StatusCode::UNAUTHORIZED, "the bearer must be the API token to rotate");
        return Err(fail(crate::http::auth::bearer(&req), e));
    };
    let (s2, ip2) = (secret.clone(), ip.clone());
    match write(&st, move |conn, s, now| tokens::self_rotate(conn, &s2, &ip2, &s.usage, now)).await {
        Ok(v) => created(v),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(fail(Some(&secret), e)),
        Err(e) => Err(e),
    }
}

/// Read one API token of the organization
///
/// Requires org:admin. The token table's row: the record plus the owner's name and email. Another
/// organization's token is 404.
#[utoipa::path(get, path = "/tokens/{id}", tag = "Token table", operation_id = "getOrgToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = Row),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| table::get(conn, &c.0, &id, &s.usage, now)).await?)
}

/// Revoke any token of the organization
///
/// Requires org:admin. Idempotent; answers the (revoked) token record.
#[utoipa::path(post, path = "/tokens/{id}/revoke", tag = "Token table", operation_id = "adminRevokeToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| table::revoke(conn, &c.0, &id, &s.usage, now)).await?)
}
