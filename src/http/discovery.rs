//! RFC 8414 metadata and the JWKS (pre-serialised per key change, with ETag and 304).
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::openapi::{AuthorizationServerMetadata, JwkSet};
use crate::app::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/oauth-authorization-server").route(web::get().to(metadata)))
        .service(web::resource("/.well-known/openid-configuration").route(web::get().to(openid_configuration)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .service(web::resource("/openapi.json").route(web::get().to(super::openapi::openapi_json)));
}

pub fn metadata_json(state: &State) -> serde_json::Value {
    let iss = &state.cfg.issuer;
    // Only what is implemented: no authorization endpoint (so no response type), no JWT
    // client authentication and no ID tokens (so no signing algorithms for either); the
    // access tokens' algorithm is each key's `alg` in the JWKS.
    json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "grant_types_supported": [
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
        // Not registered by RFC 8414: what `subject_token_type` (RFC 8693) may name here.
        "token_exchange_subject_token_types_supported": subject_token_types(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "service_documentation": format!("{iss}/openapi.json"),
    })
}

/// Every `subject_token_type` the token-exchange grant takes: API tokens, external
/// issuers' JWTs (trust policies) and tokend access tokens (delegation).
pub fn subject_token_types() -> Vec<&'static str> {
    super::oauth::SUBJECT_TYPES.iter().chain(super::oauth::EXTERNAL_SUBJECT_TYPES.iter()).copied().collect()
}

/// Authorization server metadata (RFC 8414)
///
/// The same document at /.well-known/oauth-authorization-server and
/// /.well-known/openid-configuration. scopes_supported is omitted.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "Discovery",
    operation_id = "oauthMetadata", security(()),
    responses((status = 200, description = "OK.", body = AuthorizationServerMetadata,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
pub async fn metadata(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(metadata_json(&state))
}

/// Authorization server metadata (RFC 8414)
///
/// The same document at /.well-known/oauth-authorization-server and
/// /.well-known/openid-configuration. scopes_supported is omitted.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "Discovery",
    operation_id = "openidConfiguration", security(()),
    responses((status = 200, description = "OK.", body = AuthorizationServerMetadata,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
pub async fn openid_configuration(state: web::Data<State>) -> HttpResponse {
    metadata(state).await
}

/// Published signing keys (JWKS)
///
/// Resource servers verify access tokens offline against these keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "Discovery", operation_id = "jwks", security(()),
    params(("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer (or *).")),
    responses(
        (status = 200, description = "The key set.", body = JwkSet, headers(
            ("Cache-Control" = String, description = "public, max-age=300"),
            ("ETag" = String, description = "Changes with the key set."))),
        (status = 304, description = "If-None-Match matched the current ETag (or was *).", headers(
            ("Cache-Control" = String, description = "public, max-age=300"),
            ("ETag" = String))),
    ))]
pub async fn jwks(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let set = state.keys.set();
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == set.etag || t.trim() == "*"));
    let mut r = if matches { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    r.insert_header((header::CACHE_CONTROL, "public, max-age=300")).insert_header((header::ETAG, set.etag.clone()));
    if matches {
        r.finish()
    } else {
        r.content_type("application/json").body(web::Bytes::copy_from_slice(&set.jwks_body))
    }
}
