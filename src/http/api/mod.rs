//! `/api/v1`, the management API: one file per resource, each declaring its routes
//! (`routes`) and its OpenAPI operations (`Doc`, paths relative to `/api/v1`). Adding a
//! route to a resource edits its file; adding a resource adds a file and one line to
//! [`routes`] and [`Doc`].
//!
//! - `session`: login, logout, own password and sessions, reset-code redemption, `/me`
//! - `me`: `/me/tokens`, the caller's own API tokens
//! - `users`, `roles`, `accounts` (`/service-accounts` and their tokens), `apps` (and their
//!   delegation), `tokens` (the org's token table, self-rotation, the token lists' query
//!   parameters), `policy`, `saved` (`/saved-searches`), `audit`, `webhooks`,
//!   `trust_policies`
//!
//! This file holds what they share: the body, query and path extractors with their
//! problem+json errors, and the handler shape (extract, authenticate, call one service
//! function on the blocking pool with a read connection or the writer, answer JSON).
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::OpenApi;

use crate::app::{blocking, State};
use crate::error::ApiError;
use crate::service;
use crate::store::AnyConnection;

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod me;
pub mod policy;
pub mod roles;
pub mod saved;
pub mod session;
pub mod tokens;
pub mod trust_policies;
pub mod users;
pub mod webhooks;

/// Every `/api/v1` route, registered inside the `/api/v1` scope (its error handlers and
/// body limits apply).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(session::routes)
        .configure(me::routes)
        .configure(users::routes)
        .configure(roles::routes)
        .configure(accounts::routes)
        .configure(apps::routes)
        .configure(tokens::routes)
        .configure(policy::routes)
        .configure(saved::routes)
        .configure(audit::routes)
        .configure(webhooks::routes)
        .configure(trust_policies::routes);
}

/// The `/api/v1` part of the OpenAPI document: each file's `Doc` nested under `/api/v1`
/// (`http::openapi` merges it into the whole document and finishes it).
#[derive(OpenApi)]
#[openapi(nest(
    (path = "/api/v1", api = session::Doc),
    (path = "/api/v1", api = me::Doc),
    (path = "/api/v1", api = users::Doc),
    (path = "/api/v1", api = roles::Doc),
    (path = "/api/v1", api = accounts::Doc),
    (path = "/api/v1", api = apps::Doc),
    (path = "/api/v1", api = tokens::Doc),
    (path = "/api/v1", api = policy::Doc),
    (path = "/api/v1", api = saved::Doc),
    (path = "/api/v1", api = audit::Doc),
    (path = "/api/v1", api = webhooks::Doc),
    (path = "/api/v1", api = trust_policies::Doc),
))]
pub struct Doc;

/// The `sort` parameter of a list, with that list's keys (the service's sort enum) and
/// default: `sort_param!(UserSort, users::Sort::ALL, "created_at")` declares `UserSort`
/// for `params(...)`. (`IntoParams` by hand: the derive drops the description of a
/// parameter whose schema comes from a function.)
macro_rules! sort_param {
    ($name:ident, $sorts:expr, $default:literal) => {
        pub struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                let schema = utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some($sorts.iter().map(|s| s.as_str())))
                    .default(Some($default.into()))
                    .build();
                vec![utoipa::openapi::path::ParameterBuilder::new()
                    .name("sort")
                    .parameter_in(utoipa::openapi::path::ParameterIn::Query)
                    .required(utoipa::openapi::Required::False)
                    .description(Some("Sort key; ties are broken by id."))
                    .schema(Some(schema))
                    .build()]
            }
        }
    };
}
pub(crate) use sort_param;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(64 * 1024).error_handler(|err, _req| {
        let e = match &err {
            JsonPayloadError::ContentType => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {e}"))
            }
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB")
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, "the body is not valid JSON"),
        };
        e.into()
    })
}

/// A JSON object body. serde's derived structs also accept arrays (fields by position),
/// which would bypass `deny_unknown_fields`; this insists on an object.
pub struct Obj<T>(pub T);

impl<T> std::ops::Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Obj<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the body must be a JSON object").into());
            }
            // The path of the value that did not fit names the field, as in every other 422.
            serde_path_to_error::deserialize(value).map(Obj).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                if field.is_empty() || field == "." {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {inner}")).into()
                } else {
                    ApiError::from(service::invalid(&field, inner.to_string())).into()
                }
            })
        })
    }
}

/// An optional JSON object body: `None` when the body is empty; otherwise what `Obj`
/// accepts (application/json, an object, fields named on 422), within the same 64 KiB.
fn optional_obj<T: serde::de::DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if body.len() > 64 * 1024 {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB"));
    }
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")) {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not valid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map(Some).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field.is_empty() || field == "." {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {inner}"))
        } else {
            ApiError::from(service::invalid(&field, inner.to_string()))
        }
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid query string: {err}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_err: PathError, _req| ApiError::new(StatusCode::NOT_FOUND, "no such object").into())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "no such route"))
}

/// Runs `f` on the blocking pool with a pooled read connection, or with the writer
/// (`write = true`; one transaction inside `f`).
async fn run<T, F>(st: &web::Data<State>, write: bool, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    let st = st.clone();
    blocking(move || -> Result<T, ApiError> {
        let mut conn = if write { st.db.write() } else { st.db.read() }.map_err(service::Error::from)?;
        Ok(f(&mut conn, &st, st.now())?)
    })
    .await
}

async fn read<T, F>(st: &web::Data<State>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, false, f).await
}

async fn write<T, F>(st: &web::Data<State>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, true, f).await
}

fn ok<T: Serialize>(v: T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(v))
}

fn created<T: Serialize>(v: T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(v))
}

fn no_content() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::NoContent().finish())
}
