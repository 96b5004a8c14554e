//! `/webhooks`: the org's webhook subscriptions, their secrets, test events and delivery
//! log.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{created, no_content, ok, read, write, Obj};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::service::events::webhooks;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::events::webhooks::{
    CreateWebhook, DeliveryView, PatchWebhook, TestQueued, WebhookView, WebhookWithSecret,
};
use crate::service::list::PageQuery;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::Paged;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            web::resource("/webhooks/{id}")
                .route(web::get().to(get))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/webhooks/{id}/secret").route(web::post().to(secret)))
        .service(web::resource("/webhooks/{id}/test").route(web::post().to(test)))
        .service(web::resource("/webhooks/{id}/deliveries").route(web::get().to(deliveries)));
}

super::sort_param!(WebhookSort, crate::service::events::webhooks::Sort::ALL, "created_at");
super::sort_param!(DeliverySort, crate::service::events::webhooks::DeliverySort::ALL, "at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, patch, delete, secret, test, deliveries),
    components(schemas(crate::service::events::EventKind))
)]
pub struct Doc;

/// List the org's webhooks
///
/// Requires org:admin. The signing secret is never listed.
#[utoipa::path(get, path = "/webhooks", tag = "Webhooks", operation_id = "listWebhooks",
    params(PageQuery, WebhookSort),
    responses(
        (status = 200, description = "OK.", body = Paged<WebhookView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::list(conn, &c.0, &q)).await?)
}

/// Create a webhook
///
/// Requires org:admin. At most 20 per org (409). The signing secret is in this response only.
#[utoipa::path(post, path = "/webhooks", tag = "Webhooks", operation_id = "createWebhook",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created, with the signing secret.", body = WebhookWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn create(
    c: Caller,
    body: Obj<webhooks::CreateWebhook>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| webhooks::create(conn, &c.0, &s.notify.sealer, &body, now)).await?)
}

/// Read a webhook
///
/// Requires org:admin; another organization's webhook answers 404.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "Webhooks", operation_id = "getWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 200, description = "OK.", body = WebhookView),
        (status = 403),
        (status = 404),
    ))]
pub async fn get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::get(conn, &c.0, &id)).await?)
}

/// Change a webhook's URL, events, description or enabled flag
///
/// Requires org:admin; another organization's webhook answers 404.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "Webhooks", operation_id = "patchWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "OK.", body = WebhookView),
        (status = 403),
        (status = 404),
    ))]
pub async fn patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<webhooks::PatchWebhook>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| webhooks::patch(conn, &c.0, &id, &body, now)).await?)
}

/// Delete a webhook, its delivery log and its undelivered events
///
/// Requires org:admin; another organization's webhook answers 404.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "Webhooks", operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| webhooks::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Roll a webhook's signing secret
///
/// Requires org:admin; another organization's webhook answers 404. The old secret signs nothing from the
/// moment this commits; the new one is in this response only. No body.
#[utoipa::path(post, path = "/webhooks/{id}/secret", tag = "Webhooks", operation_id = "rollWebhookSecret",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 201, description = "The webhook with its new secret.", body = WebhookWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn secret(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| webhooks::roll_secret(conn, &c.0, &s.notify.sealer, &id, now)).await?)
}

/// Send a test event
///
/// Requires org:admin; another organization's webhook answers 404. Queues a webhook.test event for this
/// webhook only; the worker delivers it like any other (see the delivery log). A disabled webhook answers
/// 409. At most 10 test events per organization a minute (429 with Retry-After beyond). No body.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "Webhooks", operation_id = "testWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 202, description = "Queued.", body = TestQueued),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 429, description = "More than 10 test events of this organization within a minute."),
    ))]
pub async fn test(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let queued = write(&st, move |conn, s, now| webhooks::send_test(conn, &c.0, &id, &s.token_throttle, now)).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// A webhook's delivery log
///
/// Requires org:admin; another organization's webhook answers 404. One row per attempt (the last 100 are
/// kept); order=desc for the newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "Webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = String, Path, description = "Webhook id."), PageQuery, DeliverySort),
    responses(
        (status = 200, description = "OK.", body = Paged<DeliveryView>),
        (status = 403),
        (status = 404),
        (status = 422),
    ))]
pub async fn deliveries(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::deliveries(conn, &c.0, &id, &q)).await?)
}
