//! `POST /api/v1/me/tokens/{id}/regenerate`: rotation of a personal token with a new
//! expiry (the console's "Regenerate" on My tokens). A file of its own: `api.rs` is being
//! split per resource.
use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::api::Obj;
use super::auth::Caller;
use crate::app::{blocking, State};
use crate::error::ApiError;
#[allow(unused_imports)] // named in the #[utoipa::path] annotation
use crate::service::tokens::CreatedToken;
use crate::service::{self, tokens, tokens::Regenerate};

/// Registered inside the `/api/v1` scope (its error handlers and body limits apply).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/tokens/{id}/regenerate").route(web::post().to(my_regenerate)));
}

/// Regenerate an own token with a new expiry
///
/// Like rotate (revokes the token and creates a successor with the same name, description, roles and
/// reach; the new secret is in this response only), but the successor expires as the body says:
/// `ttl_days` or `expires_at`, within personal_token_max_ttl_days (422 beyond, or when both are
/// given). An empty object keeps the old lifetime, as rotate does. Needs an access token from an
/// interactive login (403 otherwise); 404 for a token that is not the caller's; 409 unless it is
/// active. Audited as token.rotate, whose detail names the successor (`new_token`).
#[utoipa::path(post, path = "/api/v1/me/tokens/{id}/regenerate", tag = "Personal tokens", operation_id = "regenerateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    request_body = Regenerate,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 422),
    ))]
pub async fn my_regenerate(
    c: Caller,
    id: web::Path<String>,
    body: Obj<Regenerate>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let st2 = st.clone();
    let body = body.0;
    let created = blocking(move || -> Result<_, ApiError> {
        let mut conn = st2.db.write().map_err(service::Error::from)?;
        Ok(tokens::my_regenerate(&mut conn, &c.0, &id, &body, &st2.usage, st2.now())?)
    })
    .await?;
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(created))
}
