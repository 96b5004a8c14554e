//! `/api/v1/trust-policies` (external issuers whose tokens are exchanged for a service
//! account's access tokens) and `/api/v1/apps/{id}/delegation` (the audiences an app may
//! act for on a user's behalf). Rules in `service::oauth::federation::policies`.
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::api::Obj;
use super::auth::Caller;
use crate::app::{blocking, State};
use crate::error::ApiError;
use crate::service::list::{PageQuery, Paged};
use crate::service::oauth::federation::policies::{
    self, DelegationView, NewTrustPolicy, TrustPolicyPatch, TrustPolicyView,
};
use crate::store::AnyConnection;

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put, resource};
    cfg.service(resource("/trust-policies").route(get().to(list)).route(post().to(create)))
        .service(
            resource("/trust-policies/{id}").route(get().to(read)).route(patch().to(update)).route(delete().to(remove)),
        )
        .service(resource("/apps/{id}/delegation").route(get().to(delegation_get)).route(put().to(delegation_put)));
}

/// Sort keys of the trust-policy list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TrustPolicySort {
    /// Sort key; ties are broken by id.
    #[param(schema_with = sort_keys)]
    sort: Option<String>,
}

fn sort_keys() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(policies::Sort::ALL.iter().map(|s| s.as_str())))
        .default(Some("created_at".into()))
        .build()
}

async fn run<T, F>(st: &web::Data<State>, write: bool, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> crate::service::Result<T> + Send + 'static,
{
    let st = st.clone();
    blocking(move || -> Result<T, ApiError> {
        let mut conn = if write { st.db.write() } else { st.db.read() }.map_err(crate::service::Error::from)?;
        Ok(f(&mut conn, &st, st.now())?)
    })
    .await
}

fn ok<T: Serialize>(v: T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(v))
}

/// List trust policies
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/trust-policies", tag = "Trust policies", operation_id = "listTrustPolicies",
    params(PageQuery, TrustPolicySort),
    responses(
        (status = 200, description = "OK.", body = Paged<TrustPolicyView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(run(&st, false, move |conn, _, _| policies::list(conn, &c.0, &q)).await?)
}

/// Create a trust policy
///
/// Requires org:admin, every role of the service account, and an interactive login
/// (trusting an issuer mints credentials). At least one condition; roles ⊆ the service
/// account's; at most 100 policies per organization (409).
#[utoipa::path(post, path = "/api/v1/trust-policies", tag = "Trust policies", operation_id = "createTrustPolicy",
    request_body = NewTrustPolicy,
    responses(
        (status = 201, description = "Created.", body = TrustPolicyView,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn create(c: Caller, body: Obj<NewTrustPolicy>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let v = run(&st, true, move |conn, _, now| policies::create(conn, &c.0, &body, now)).await?;
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(v))
}

/// Read a trust policy
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/trust-policies/{id}", tag = "Trust policies", operation_id = "getTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    responses((status = 200, description = "OK.", body = TrustPolicyView), (status = 403), (status = 404)))]
pub async fn read(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(run(&st, false, move |conn, _, _| policies::get(conn, &c.0, &id)).await?)
}

/// Change a trust policy
///
/// Requires org:admin and every role of its service account. A change that could widen
/// what it lets through (issuer, audience, conditions, service account, more roles, a
/// longer max age, re-enabling) needs an interactive login; narrowing does not.
#[utoipa::path(patch, path = "/api/v1/trust-policies/{id}", tag = "Trust policies", operation_id = "patchTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    request_body = TrustPolicyPatch,
    responses((status = 200, description = "OK.", body = TrustPolicyView), (status = 403), (status = 404)))]
pub async fn update(
    c: Caller,
    id: web::Path<String>,
    body: Obj<TrustPolicyPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(run(&st, true, move |conn, _, now| policies::patch(conn, &c.0, &id, &body, now)).await?)
}

/// Delete a trust policy
///
/// Requires org:admin. Access tokens already issued through it live out their short TTL.
#[utoipa::path(delete, path = "/api/v1/trust-policies/{id}", tag = "Trust policies", operation_id = "deleteTrustPolicy",
    params(("id" = String, Path, description = "Trust policy id.")),
    responses((status = 204, description = "Done."), (status = 403), (status = 404)))]
pub async fn remove(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    run(&st, true, move |conn, _, now| policies::delete(conn, &c.0, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The audiences an app may act for
///
/// Requires org:admin. The resource audiences for which the app may exchange a user's
/// access token (RFC 8693 delegation) for one carrying act: {sub: its client_id}.
#[utoipa::path(get, path = "/api/v1/apps/{id}/delegation", tag = "Apps", operation_id = "getAppDelegation",
    params(("id" = String, Path, description = "App id.")),
    responses((status = 200, description = "OK.", body = DelegationView), (status = 403), (status = 404)))]
pub async fn delegation_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(run(&st, false, move |conn, _, _| policies::get_delegation(conn, &c.0, &id)).await?)
}

/// Set the audiences an app may act for
///
/// Requires org:admin and every role of the app; adding an audience needs an interactive
/// login (removing does not). Only configured resource audiences, never the management one.
#[utoipa::path(put, path = "/api/v1/apps/{id}/delegation", tag = "Apps", operation_id = "setAppDelegation",
    params(("id" = String, Path, description = "App id.")),
    request_body = DelegationView,
    responses((status = 200, description = "OK.", body = DelegationView), (status = 403), (status = 404)))]
pub async fn delegation_put(
    c: Caller,
    id: web::Path<String>,
    body: Obj<DelegationView>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(run(&st, true, move |conn, s, now| policies::set_delegation(conn, &s.cfg, &c.0, &id, &body, now)).await?)
}
