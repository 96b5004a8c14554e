//! The OpenAPI 3.1 document served at `GET /openapi.json`, derived with utoipa from the
//! handlers' `#[utoipa::path]` annotations and the request/response types they use
//! (`ToSchema`/`IntoParams` on the service's views and request structs, the text newtypes
//! of `service::text`). `ApiDoc` lists the operations outside `/api/v1` (`oauth`,
//! `gateway`, `discovery`, `health`, `leaks`); each file of `http::api` declares its own
//! and `api::Doc` nests them under `/api/v1`, merged here (`ManagementApi`). A field added
//! to one of those types appears here by construction.
//!
//! The types below document bodies that have no Rust type: the server assembles them as
//! JSON (problem+json in `error::problem_body`, the RFC 6749 error body in
//! `error::oauth_body`, introspection in `service::oauth::exchange::introspect`, RFC 8414
//! metadata in `discovery::metadata_json`, the JWKS in `keys`) or reads them field by field
//! (the `/oauth` forms, parsed by `oauth`); unit tests hold them to the bodies the server
//! writes. [`Finish`] adds what every operation of a scope has in common (error bodies,
//! the status codes of authentication, body parsing and outages), so the handlers list
//! only the answers that are theirs.
use std::sync::OnceLock;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, ObjectBuilder, OpenApi as Doc, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::OAuthCode;
use crate::service::authz::role::schema::roles;
use crate::service::oauth::exchange::TOKEN_TYPE_ACCESS;
use crate::service::one_of;
use crate::service::tokens::vocab::OwnerKind;

/// RFC 9457 problem details (application/problem+json), the error body of every /api/v1
/// route (built by `error::problem_body`).
#[derive(ToSchema)]
#[schema(example = json!({"type": "https://tokend.dev/problems/unprocessable-entity",
    "title": "Unprocessable Entity", "status": 422,
    "detail": "ttl_days: must be from 1 to 30 (the organization's limit)",
    "errors": [{"field": "ttl_days", "message": "ttl_days: must be from 1 to 30 (the organization's limit)"}]}))]
#[allow(dead_code)]
pub struct Problem {
    /// https://tokend.dev/problems/{slug of title}, e.g. https://tokend.dev/problems/unprocessable-entity.
    #[schema(format = "uri")]
    r#type: String,
    /// The HTTP reason phrase, e.g. Unprocessable Entity.
    title: String,
    /// The HTTP status code.
    status: u16,
    /// What went wrong; for a field error it starts with the field name ("name: must be 1
    /// to 100 characters").
    detail: String,
    /// Present on 422 answers from field validation: the field at fault.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldError>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldError {
    field: String,
    message: String,
}

/// RFC 6749 section 5.2 error body, used by every /oauth route (built by
/// `error::oauth_body`). It never says which check failed beyond the code.
#[derive(ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "the grant is invalid, expired or revoked"}))]
#[allow(dead_code)]
pub struct OAuthErrorBody {
    error: OAuthCode,
    error_description: String,
}

fn grant_client_credentials() -> utoipa::openapi::Object {
    one_of(&["client_credentials"])
}
fn grant_refresh_token() -> utoipa::openapi::Object {
    one_of(&["refresh_token"])
}
fn grant_token_exchange() -> utoipa::openapi::Object {
    one_of(&["urn:ietf:params:oauth:grant-type:token-exchange"])
}
fn subject_token_types() -> utoipa::openapi::Object {
    one_of(&super::discovery::subject_token_types())
}
fn access_token_type() -> utoipa::openapi::Object {
    one_of(&[TOKEN_TYPE_ACCESS])
}

/// An app (server-to-server client) authenticates with HTTP Basic (client_secret_basic) or
/// client_id/client_secret in the form (client_secret_post), not both. The access token's
/// sub and client_id are the app's client id; its lifetime is the app's
/// access_token_ttl_seconds.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ClientCredentialsGrant {
    #[schema(schema_with = grant_client_credentials)]
    grant_type: String,
    /// client_secret_post: the app's client id (tkd_app_...). With HTTP Basic it may be
    /// repeated here but must then equal the Basic user name.
    #[schema(nullable = false)]
    client_id: Option<String>,
    /// client_secret_post: the app's secret (tkd_cs_...). Not allowed together with HTTP Basic.
    #[schema(nullable = false)]
    client_secret: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    target: TokenTarget,
}

/// Exchanges an API token for an access token of its owner (no client authentication).
/// Roles granted: the token's roles that the owner still holds, narrowed by scope.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RefreshTokenGrant {
    #[schema(schema_with = grant_refresh_token)]
    grant_type: String,
    /// An API token: personal (tkd_pat_...) or service-account (tkd_sat_...).
    #[schema(min_length = 1)]
    refresh_token: String,
    #[schema(inline)]
    #[serde(flatten)]
    target: TokenTarget,
}

/// RFC 8693 token exchange, by subject_token_type:
/// - an API token (`…:refresh_token`, `urn:tokend:…:api_token`): same result as
///   refresh_token plus issued_token_type; actor_token is not supported (invalid_request).
/// - an external issuer's JWT (`…:jwt`, `…:id_token`): verified against the issuer's keys
///   and a trust policy naming that issuer; the answer is an access token of the policy's
///   service account (acct service_account) whose `external` claim is {iss, sub, policy}.
///   A token no single policy accepts (issuer, audience, signature, algorithm, exp/nbf/iat,
///   max age, a condition) is invalid_grant; roles beyond the policy invalid_scope.
/// - a tokend access token (`…:access_token`): delegation. The acting app authenticates
///   (client_secret_basic/post) and/or sends an access token of its own as actor_token;
///   it must be allowed to act for the audience (PUT /api/v1/apps/{id}/delegation), else
///   unauthorized_client. The answer: sub the subject, act {sub: the app's client_id}, roles
///   both hold, exp never after the subject token's. A revoked or inactive subject token is
///   invalid_grant.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenExchangeGrant {
    #[schema(schema_with = grant_token_exchange)]
    grant_type: String,
    /// An API token (tkd_pat_... or tkd_sat_...), an external JWT, or an access token
    /// issued here (per subject_token_type).
    #[schema(min_length = 1)]
    subject_token: String,
    #[schema(schema_with = subject_token_types)]
    subject_token_type: String,
    /// Optional; anything else is invalid_request.
    #[schema(schema_with = access_token_type)]
    requested_token_type: Option<String>,
    /// Delegation only: an access token of the acting app (client_credentials).
    #[schema(nullable = false)]
    actor_token: Option<String>,
    /// Required with actor_token.
    #[schema(schema_with = access_token_type)]
    actor_token_type: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    target: TokenTarget,
}

/// Parameters every grant takes (`exchange::Target` and the scope).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenTarget {
    /// Space-separated roles; narrows what the grant would give (an org role may narrow
    /// down the org-role ladder). Asking for a role not available: invalid_scope. Empty: no
    /// narrowing.
    #[schema(nullable = false)]
    scope: Option<String>,
    /// RFC 8707 resource: the audience of the access token (a trailing slash is ignored).
    /// Must be the issuer or a configured audience, else invalid_target. Default: the first
    /// configured audience.
    #[schema(nullable = false)]
    resource: Option<String>,
    /// RFC 8693 audience; same rules as resource. If both are given they must agree, else
    /// invalid_target.
    #[schema(nullable = false)]
    audience: Option<String>,
}

/// The form of `POST /oauth/token`, one per grant (`oauth::token_request`).
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "grant_type", mapping(
    ("client_credentials" = "#/components/schemas/ClientCredentialsGrant"),
    ("refresh_token" = "#/components/schemas/RefreshTokenGrant"),
    ("urn:ietf:params:oauth:grant-type:token-exchange" = "#/components/schemas/TokenExchangeGrant"),
)))]
#[allow(dead_code)]
pub enum TokenForm {
    ClientCredentials(ClientCredentialsGrant),
    RefreshToken(RefreshTokenGrant),
    TokenExchange(TokenExchangeGrant),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevokeRequest {
    /// An API token (tkd_pat_... or tkd_sat_...). Anything else (unknown token, access
    /// token of another issuer) is ignored with the same 200; a client secret is
    /// unsupported_token_type.
    #[schema(min_length = 1)]
    token: String,
    /// Accepted and ignored.
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct IntrospectRequest {
    /// An access token (JWT) or an API token (tkd_pat_... / tkd_sat_...).
    #[schema(min_length = 1)]
    token: String,
    /// Accepted and ignored.
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
    /// client_secret_post authentication (with client_secret).
    #[schema(nullable = false)]
    client_id: Option<String>,
    /// client_secret_post authentication (with client_id).
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

fn inactive() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Boolean).enum_values(Some([false])).build()
}
fn active() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Boolean).enum_values(Some([true])).build()
}
fn bearer() -> utoipa::openapi::Object {
    one_of(&["Bearer"])
}
fn api_token() -> utoipa::openapi::Object {
    one_of(&["api_token"])
}
fn acct() -> utoipa::openapi::Object {
    one_of(&["user", "service_account", "app"])
}

/// Unknown, invalid, expired, revoked, idle, of another org, or whatever stands behind it
/// (user, service account, app, API token) is no longer live.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionInactive {
    #[schema(schema_with = inactive)]
    active: bool,
}

/// An access token (`jwt::AccessClaims` plus active, token_type, scope and roles in effect).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionAccessToken {
    #[schema(schema_with = active)]
    active: bool,
    #[schema(schema_with = bearer)]
    token_type: String,
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    /// The app's client id, the API token's id for exchanged tokens, or tokend-login for a
    /// login token.
    client_id: String,
    /// The roles still in effect now (the token's roles its principal still holds),
    /// space-separated.
    scope: String,
    /// As scope, as an array.
    #[schema(schema_with = roles)]
    roles: Vec<String>,
    org: String,
    #[schema(schema_with = acct)]
    acct: String,
    /// ["pwd"] on tokens from /api/v1/login.
    #[schema(nullable = false)]
    amr: Option<Vec<String>>,
}

/// An API token.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionApiToken {
    #[schema(schema_with = active)]
    active: bool,
    #[schema(schema_with = api_token)]
    token_type: String,
    /// The API token's id.
    client_id: String,
    /// The owner's id.
    sub: String,
    #[schema(schema_with = OwnerKind::schema)]
    acct: String,
    org: String,
    /// The roles an exchange would grant now.
    #[schema(schema_with = roles)]
    roles: Vec<String>,
    scope: String,
    /// Creation time (Unix seconds).
    iat: i64,
    /// Expiry (Unix seconds).
    exp: i64,
    iss: String,
    name: String,
}

/// RFC 7662 answer (`exchange::introspect`).
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IntrospectionResponse {
    Inactive(IntrospectionInactive),
    AccessToken(IntrospectionAccessToken),
    ApiToken(IntrospectionApiToken),
}

/// RFC 8414 metadata (`discovery::metadata_json`); URLs are built from the configured
/// issuer (TOKEND_ISSUER).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuthorizationServerMetadata {
    #[schema(format = "uri")]
    issuer: String,
    #[schema(format = "uri")]
    token_endpoint: String,
    #[schema(format = "uri")]
    jwks_uri: String,
    #[schema(format = "uri")]
    revocation_endpoint: String,
    #[schema(format = "uri")]
    introspection_endpoint: String,
    #[schema(example = json!(["client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"]))]
    grant_types_supported: Vec<String>,
    /// What subject_token_type (RFC 8693) may name at the token endpoint (not registered
    /// by RFC 8414): API tokens, external issuers' JWTs and ID tokens (trust policies), and
    /// access tokens (delegation).
    #[schema(example = json!(["urn:ietf:params:oauth:token-type:refresh_token",
        "urn:tokend:params:oauth:token-type:api_token", "urn:ietf:params:oauth:token-type:jwt",
        "urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:access_token"]))]
    token_exchange_subject_token_types_supported: Vec<String>,
    #[schema(example = json!(["client_secret_basic", "client_secret_post"]))]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[schema(example = json!(["none"]))]
    revocation_endpoint_auth_methods_supported: Vec<String>,
    #[schema(example = json!(["client_secret_basic", "client_secret_post", "bearer"]))]
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Empty: there is no authorization endpoint.
    #[schema(example = json!([]))]
    response_types_supported: Vec<String>,
    subject_types_supported: Vec<String>,
    #[schema(format = "uri")]
    service_documentation: String,
}

fn kty() -> utoipa::openapi::Object {
    one_of(&["EC", "OKP", "RSA"])
}
fn alg() -> utoipa::openapi::Object {
    one_of(&["ES256", "EdDSA", "RS256"])
}
fn sig() -> utoipa::openapi::Object {
    one_of(&["sig"])
}
fn crv() -> utoipa::openapi::Object {
    one_of(&["P-256", "Ed25519"])
}

/// A published public key (`keys::jwk`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    #[schema(schema_with = kty)]
    kty: String,
    /// RFC 7638 thumbprint of the key.
    kid: String,
    #[schema(schema_with = alg)]
    alg: String,
    #[schema(schema_with = sig)]
    r#use: String,
    /// EC and OKP keys.
    #[schema(schema_with = crv, required = false)]
    crv: Option<String>,
    /// EC and OKP keys (base64url).
    #[schema(nullable = false)]
    x: Option<String>,
    /// EC keys (base64url).
    #[schema(nullable = false)]
    y: Option<String>,
    /// RSA keys (base64url).
    #[schema(nullable = false)]
    n: Option<String>,
    /// RSA keys (base64url).
    #[schema(nullable = false)]
    e: Option<String>,
}

/// Every published public key: signing keys, keys published ahead of signing, and retired
/// keys until their tokens expired.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// Sections of the document, in this order.
const TAGS: [(&str, &str); 14] = [
    ("OAuth", "Token endpoint, revocation and introspection (form bodies, RFC 6749 errors)."),
    ("Discovery", "Metadata, signing keys and this document."),
    ("Operations", "Health, readiness and metrics."),
    ("Session", "Login, logout, own password."),
    ("Personal tokens", "The caller's own API tokens."),
    ("Users", "People of the organization."),
    ("Roles", "The organization's role catalogue."),
    ("Service accounts", "Non-human principals and their tokens."),
    ("Apps", "Server-to-server OAuth clients."),
    ("Token table", "Every API token of the organization, and saved searches of it."),
    ("Policy", "Token lifetimes and limits."),
    ("Audit", "The append-only audit log."),
    (
        "Trust policies",
        "External OIDC issuers (CI systems, Kubernetes clusters) whose tokens are exchanged at /oauth/token \
         (subject_token_type urn:ietf:params:oauth:token-type:jwt) for a service account's access tokens.",
    ),
    (
        "Webhooks",
        "Lifecycle notifications per org, signed the Standard Webhooks way (webhook-id, webhook-timestamp, \
         webhook-signature: v1,base64 HMAC-SHA256 over id.timestamp.body with the base64-decoded secret after \
         whsec_). Delivered at least once from a durable outbox, retried for 24 h (5 s, 5 min, 30 min, 2 h, 5 h, \
         10 h, 10 h, +0-10 % jitter). Payload: {\"type\", \"timestamp\", \"data\"}.",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokend",
        description = "Self-hosted OAuth2 token-exchange authorization server. API tokens (personal and \
            service-account) and app client secrets are traded at POST /oauth/token for short-lived RFC 9068 \
            JWT access tokens that carry roles; resource servers verify them offline against the JWKS. /oauth \
            routes take application/x-www-form-urlencoded bodies (at most 64 KiB) and answer RFC 6749 errors. \
            /api/v1 is the management API: JSON bodies (at most 64 KiB, application/json, unknown fields \
            rejected), bearer access tokens issued by this server, and application/problem+json errors; an \
            unknown route answers 404 and a method a route lacks 405, both as problem+json. Any route may \
            answer 500 on an internal error. Lists answer {items, total_count, page, page_size}; default order \
            created_at ascending. Times are RFC 3339 UTC. This document is derived from the server's own \
            types and handlers (utoipa)."
    ),
    servers((url = "http://127.0.0.1:8080")),
    security(("bearerAuth" = [])),
    paths(
        super::oauth::token, super::oauth::revoke, super::oauth::introspect, super::oauth::revocations,
        super::gateway::auth, super::gateway::auth_post,
        super::discovery::metadata, super::discovery::openid_configuration, super::discovery::jwks,
        openapi_json,
        super::health::healthz, super::health::readyz, super::health::metrics,
        super::leaks::report,
    ),
    components(schemas(Problem, OAuthErrorBody, TokenForm, ClientCredentialsGrant, RefreshTokenGrant, TokenExchangeGrant)),
    modifiers(&ManagementApi, &Finish),
)]
pub struct ApiDoc;

/// `/api/v1`: the operations each file of `http::api` declares (`api::Doc`).
struct ManagementApi;

impl Modify for ManagementApi {
    fn modify(&self, doc: &mut Doc) {
        doc.merge(super::api::Doc::openapi());
    }
}

/// The document as served: built once, on first request.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises").into_bytes())
}

/// This OpenAPI document
///
/// OpenAPI 3.1, derived from the server's handlers and types.
#[utoipa::path(get, path = "/openapi.json", tag = "Discovery", operation_id = "openapi", security(()),
    responses((status = 200, description = "OpenAPI 3.1 document.", content_type = "application/json", body = Object,
        headers(("Cache-Control" = String, description = "public, max-age=3600")))))]
pub async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/json")
        .body(document())
}

/// What every operation of a scope has in common, added to each after the derive.
struct Finish;

const PROBLEM: &str = "application/problem+json";

fn seconds_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer))
        .description(Some("Seconds."))
        .build()
}

/// The default description of an error status in `/api/v1` (bearer: the operation takes a
/// bearer).
fn api_default(status: &str, bearer: bool) -> &'static str {
    match status {
        "400" => "The body is not valid JSON.",
        "401" => {
            "Missing, invalid or expired bearer access token, or the user, service account, app or API \
                  token behind it is no longer live."
        }
        "403" => "The caller lacks the required role, or the action needs an interactive (password) login.",
        "404" => "No such object in the caller's organization (objects of other orgs answer 404 too).",
        "409" => "The request conflicts with the current state.",
        "413" => "The body is larger than 64 KiB.",
        "415" => "The body is not application/json.",
        "422" => {
            "Invalid value: a field fails validation (errors names it), an unknown field, a body that is \
                  not a JSON object, or an invalid query parameter."
        }
        "429" if bearer => {
            "Too many failed credential checks from this address (TOKEND_TOKEN_FAILURES_PER_MINUTE, \
                  default 120 a minute, or 10 for the same bearer): further requests with an invalid bearer \
                  are answered 429 until Retry-After. A valid bearer is never refused."
        }
        "429" => "Too many failed attempts; retry after Retry-After seconds.",
        "503" => {
            "The database is unavailable (or a bounded resource such as password hashing is saturated); \
                  retry after Retry-After seconds."
        }
        _ => "Error.",
    }
}

fn oauth_default(status: &str) -> &'static str {
    match status {
        "400" => {
            "invalid_request (body not application/x-www-form-urlencoded, not UTF-8, a parameter repeated \
                  or missing, two client authentication methods), or another 400 error of the endpoint."
        }
        "405" => "Only POST is allowed (error invalid_request).",
        "413" => "The body is larger than 64 KiB (error invalid_request).",
        "429" => {
            "slow_down: too many failed credential checks from this address (or for this identity) within \
                  a minute."
        }
        "500" => "server_error.",
        "503" => "temporarily_unavailable: the database is unavailable; retry after Retry-After seconds.",
        _ => "Error.",
    }
}

/// `additionalProperties: {type: string}` on an object schema and on each part of an allOf.
fn strings_only(schema: &mut Schema) {
    match schema {
        Schema::Object(o) => {
            let string = ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).build();
            o.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(Schema::Object(string)))));
        }
        Schema::AllOf(all) => {
            for part in all.items.iter_mut() {
                if let RefOr::T(s) = part {
                    strings_only(s);
                }
            }
        }
        _ => {}
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

impl Finish {
    /// `/api/v1`: bearer operations can answer 401, 429 and 503; JSON bodies 400, 413, 415
    /// and 422 (the `Obj` extractor); every error is problem+json.
    fn api(op: &mut Operation) {
        let bearer = op.security.as_ref().is_none_or(|s| !s.is_empty() && s.iter().any(|r| *r != Default::default()));
        // An optional JSON body (`request_body = Option<T>`) is absent or a T, never `null`
        // (`api::optional_obj` answers 422 to anything but an object): keep the T.
        for c in op.request_body.iter_mut().flat_map(|b| b.content.values_mut()) {
            if let Some(RefOr::T(Schema::OneOf(one))) = &c.schema {
                let is_null = |s: &RefOr<Schema>| {
                    matches!(s, RefOr::T(Schema::Object(o))
                        if o.schema_type == utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::Null))
                };
                let rest: Vec<&RefOr<Schema>> = one.items.iter().filter(|s| !is_null(s)).collect();
                if let [only] = rest[..] {
                    if rest.len() < one.items.len() {
                        c.schema = Some(only.clone());
                    }
                }
            }
        }
        let mut add = vec!["503"];
        if bearer {
            add.extend(["401", "429"]);
        }
        if op.request_body.is_some() {
            add.extend(["400", "413", "415", "422"]);
        }
        let responses = &mut op.responses.responses;
        for s in add {
            responses.entry(s.to_string()).or_insert_with(|| RefOr::T(Response::new("")));
        }
        for (status, r) in responses.iter_mut() {
            let RefOr::T(r) = r else { continue };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            if r.description.is_empty() {
                r.description = api_default(status, bearer).to_string();
            }
            if r.content.is_empty() {
                r.content.insert(PROBLEM.to_string(), Content::new(Some(Ref::from_schema_name("Problem"))));
            }
            match status.as_str() {
                "429" | "503" => {
                    r.headers.entry("Retry-After".into()).or_insert_with(seconds_header);
                }
                "401" => {
                    r.headers.entry("WWW-Authenticate".into()).or_insert_with(|| {
                        HeaderBuilder::new()
                            .schema(one_of(&["Bearer realm=\"tokend\""]))
                            .description(Some("The bearer challenge."))
                            .build()
                    });
                }
                _ => {}
            }
        }
    }

    /// `/oauth`: every operation can answer 400, 405, 413, 500 and 503; every error is the
    /// RFC 6749 body.
    fn oauth(op: &mut Operation) {
        let responses = &mut op.responses.responses;
        for s in ["400", "405", "413", "500", "503"] {
            responses.entry(s.to_string()).or_insert_with(|| RefOr::T(Response::new("")));
        }
        for (status, r) in responses.iter_mut() {
            let RefOr::T(r) = r else { continue };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            if r.description.is_empty() {
                r.description = oauth_default(status).to_string();
            }
            if r.content.is_empty() {
                r.content.insert(
                    "application/json".to_string(),
                    Content::new(Some(Ref::from_schema_name("OAuthErrorBody"))),
                );
            }
            if status == "429" || status == "503" {
                r.headers.entry("Retry-After".into()).or_insert_with(seconds_header);
            }
            if status == "401" {
                r.headers.entry("WWW-Authenticate".into()).or_insert_with(|| {
                    HeaderBuilder::new()
                        .schema(one_of(&["Basic realm=\"tokend\""]))
                        .description(Some("When the client used HTTP Basic."))
                        .build()
                });
            }
        }
    }
}

impl Modify for Finish {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "An access token issued by this server (from /api/v1/login or /oauth/token) for the management \
             audience (TOKEND_API_AUDIENCE). The user, service account, app or API token behind it must still be \
             live; roles in effect are the token's roles the principal still holds."
                .into(),
        );
        components.add_security_scheme("bearerAuth", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "App client authentication (client_secret_basic): client_id as user name, client_secret as password, \
             each form-urlencoded (RFC 6749 section 2.3.1). Alternatively client_secret_post: client_id and \
             client_secret as form parameters (the empty security requirement), never both."
                .into(),
        );
        components.add_security_scheme("clientBasic", SecurityScheme::Http(basic));
        let mut api_token = Http::new(HttpAuthScheme::Bearer);
        api_token.description = Some(
            "An API token (tkd_pat_... or tkd_sat_...) itself, not an access token; only POST \
             /api/v1/tokens/self/rotate takes one."
                .into(),
        );
        components.add_security_scheme("apiToken", SecurityScheme::Http(api_token));
        // The /oauth forms: unknown parameters are ignored, but every parameter is one string
        // (a repeated one is invalid_request).
        for name in
            ["ClientCredentialsGrant", "RefreshTokenGrant", "TokenExchangeGrant", "RevokeRequest", "IntrospectRequest"]
        {
            if let Some(RefOr::T(schema)) = components.schemas.get_mut(name) {
                strings_only(schema);
            }
        }
        // "ttl_days or expires_at, not both" (422) is JSON Schema's `not`, which utoipa's
        // types lack: set through the object's extension map, serialised flat into it.
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut("CreateToken") {
            o.extensions
                .get_or_insert_with(Default::default)
                .insert("not".into(), serde_json::json!({"required": ["ttl_days", "expires_at"]}));
        }
        doc.tags = Some(
            TAGS.iter()
                .map(|(name, d)| utoipa::openapi::tag::TagBuilder::new().name(*name).description(Some(*d)).build())
                .collect(),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            let oauth = path.starts_with("/oauth/");
            for op in operations(item) {
                if api {
                    Finish::api(op);
                } else if oauth {
                    Finish::oauth(op);
                }
                // The observe middleware answers every request with its request id.
                for r in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = r {
                        r.headers.entry("X-Request-Id".into()).or_insert_with(|| {
                            HeaderBuilder::new()
                                .schema(ObjectBuilder::new().schema_type(utoipa::openapi::Type::String))
                                .description(Some(
                                    "The request id: the request's X-Request-Id when sane (at most 128 of \
                                     A-Z a-z 0-9 - _ . : /), otherwise a generated one; also in the log lines of \
                                     the request.",
                                ))
                                .build()
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_slice(document()).unwrap()
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let s = &doc["components"]["schemas"][name];
        assert!(s.is_object(), "no schema {name}");
        s
    }

    fn props(s: &Value) -> Vec<String> {
        let mut v: Vec<String> = s["properties"].as_object().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    /// Every request type that denies unknown fields says so: `additionalProperties: false`.
    #[test]
    fn deny_unknown_fields_types_are_closed() {
        let d = doc();
        for name in [
            "LoginRequest",
            "PasswordChange",
            "Redeem",
            "CreateToken",
            "PatchToken",
            "NewUser",
            "UserPatch",
            "NewRole",
            "RolePatch",
            "NewAccount",
            "AccountPatch",
            "NewApp",
            "AppPatch",
            "PolicyUpdate",
            "NewSearch",
            "NewWebhook",
            "WebhookPatch",
            "SecretRotation",
        ] {
            assert_eq!(schema(&d, name)["additionalProperties"], Value::Bool(false), "{name}");
        }
        // And every JSON request body of /api/v1 is one of them.
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(r) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() else {
                    continue;
                };
                let name = r.rsplit('/').next().unwrap();
                assert_eq!(schema(&d, name)["additionalProperties"], Value::Bool(false), "{method} {path}: {name}");
            }
        }
    }

    /// Optional fields that refuse `null` (`not_null`, `whole_number`) are not nullable;
    /// the policy's idle TTL is.
    #[test]
    fn optional_fields_are_not_nullable() {
        let d = doc();
        for (name, field) in [
            ("AppPatch", "disabled"),
            ("AppPatch", "name"),
            ("AppPatch", "access_token_ttl_seconds"),
            ("NewApp", "description"),
            ("CreateToken", "ttl_days"),
            ("CreateToken", "roles"),
            ("UserPatch", "disabled"),
            ("NewUser", "name"),
            ("CreateToken", "expires_at"),
            ("NewWebhook", "enabled"),
            ("NewWebhook", "description"),
            ("WebhookPatch", "url"),
            ("WebhookPatch", "events"),
            ("WebhookPatch", "enabled"),
            ("SecretRotation", "grace_period_seconds"),
        ] {
            let s = &schema(&d, name)["properties"][field];
            assert!(!s.to_string().contains("\"null\""), "{name}.{field}: {s}");
            let req = schema(&d, name)["required"].as_array().cloned().unwrap_or_default();
            assert!(!req.contains(&Value::from(field)), "{name}.{field} is optional");
        }
        let idle = &schema(&d, "PolicyUpdate")["properties"]["idle_ttl_days"];
        assert!(idle.to_string().contains("\"null\""), "{idle}");
    }

    /// The new-role pattern accepts exactly what `roles::valid_name` accepts minus the
    /// `org:` prefix; the text patterns accept what `check_text` does.
    #[test]
    fn patterns_match_the_service_rules() {
        let d = doc();
        let pattern = schema(&d, "NewRole")["properties"]["name"]["pattern"].as_str().unwrap().to_string();
        let re = regex::Regex::new(&pattern).unwrap();
        for name in [
            "org:owner",
            "org:x",
            "orgs:x",
            "or:x",
            "o:x",
            "a:b",
            "organisation:x",
            "ora:x",
            "ogr:x",
            "org.x:y",
            "o-r:g",
            "metrics:read",
            "Org:x",
            "1a:b",
            "a:",
            ":b",
            "a:B",
            "a:*",
            "org",
            "o:r:g",
        ] {
            let expected = !name.starts_with("org:") && crate::service::authz::roles::valid_name(name);
            assert_eq!(re.is_match(name), expected, "{name}");
        }
        let blank = regex::Regex::new(crate::service::text::NOT_BLANK).unwrap();
        for (text, ok) in [("a", true), (" a ", true), ("", false), ("  ", false), ("\u{3000}", false), ("a\tb", false)]
        {
            assert_eq!(blank.is_match(text), ok, "{text:?}");
            assert_eq!(crate::service::check_text("f", text, 1, 100).is_ok(), ok, "{text:?}");
        }
    }

    /// The limits the service enforces are the document's.
    #[test]
    fn limits_match_the_service() {
        use crate::service::list::MAX_PAGE_SIZE;
        let d = doc();
        let op = &d["paths"]["/api/v1/users"]["get"];
        let size = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "page_size").unwrap();
        assert_eq!(size["schema"]["maximum"], MAX_PAGE_SIZE);
        let ttl = &schema(&d, "CreateToken")["properties"]["ttl_days"];
        assert_eq!(ttl["maximum"], crate::service::org::policy::MAX_DAYS);
        let days = &schema(&d, "PolicyUpdate")["properties"]["personal_token_max_ttl_days"];
        assert_eq!(days["maximum"], crate::service::org::policy::MAX_DAYS);
        assert_eq!(schema(&d, "NewUser")["properties"]["email"]["maxLength"], 254);
        let grace = &schema(&d, "SecretRotation")["properties"]["grace_period_seconds"];
        assert_eq!(grace["maximum"], crate::service::principals::apps::MAX_GRACE_SECONDS);
        let url = &schema(&d, "NewWebhook")["properties"]["url"];
        assert_eq!(url["maxLength"], crate::service::events::webhooks::MAX_URL_CHARS);
        for path in ["/api/v1/tokens", "/api/v1/me/tokens"] {
            let op = &d["paths"][path]["get"];
            let days =
                op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "expires_within_days").unwrap();
            assert_eq!(days["schema"]["maximum"], crate::service::org::policy::MAX_DAYS, "{path}");
        }
    }

    /// Every parameter of every operation says what it is (a description of its own).
    #[test]
    fn every_parameter_is_described() {
        let d = doc();
        let mut missing = vec![];
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["description"].as_str().is_none_or(|t| t.trim().is_empty()) {
                        missing.push(format!("{method} {path} {}", p["name"]));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "parameters without a description: {missing:#?}");
    }

    /// The webhook enums are the service's: the subscribable events, the test event, the
    /// sorts of the two lists.
    #[test]
    fn webhook_enums_match_the_service() {
        use crate::service::events::webhooks::{DeliverySort, Sort};
        use crate::service::events::EventKind;
        let d = doc();
        assert_eq!(schema(&d, "WebhookEvent")["enum"], serde_json::json!(EventKind::SUBSCRIBABLE));
        assert_eq!(
            schema(&d, "WebhookTestQueued")["properties"]["event_type"]["enum"],
            serde_json::json!([EventKind::WebhookTest])
        );
        let events = &schema(&d, "NewWebhook")["properties"]["events"];
        assert_eq!(events["items"]["$ref"], "#/components/schemas/WebhookEvent");
        assert_eq!(events["minItems"], 1);
        // Duplicates are accepted (and dropped), so the document must not forbid them.
        assert!(events.get("uniqueItems").is_none(), "{events}");
        // CreateToken takes ttl_days or expires_at, not both.
        let not = &schema(&d, "CreateToken")["not"];
        assert_eq!(not["required"], serde_json::json!(["ttl_days", "expires_at"]));
        let sort = |path: &str| {
            let op = &d["paths"][path]["get"];
            op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "sort").unwrap()["schema"]["enum"].clone()
        };
        assert_eq!(sort("/api/v1/webhooks"), serde_json::json!(Sort::ALL));
        assert_eq!(sort("/api/v1/webhooks/{id}/deliveries"), serde_json::json!(DeliverySort::ALL));
    }

    /// The owner token lists document exactly the parameters `table::parse_in` reads for
    /// them (it refuses any other); every token list's status filter has the service's values.
    #[test]
    fn token_list_parameters_match_the_parser() {
        use crate::service::tokens::table::OWNER_KEYS;
        use crate::service::tokens::vocab::StatusFilter;
        let d = doc();
        let names = |path: &str| -> Vec<String> {
            let op = &d["paths"][path]["get"];
            let mut v: Vec<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        let mut keys: Vec<String> = OWNER_KEYS.iter().map(|k| k.to_string()).collect();
        keys.sort();
        for path in ["/api/v1/me/tokens", "/api/v1/service-accounts/{id}/tokens"] {
            assert_eq!(names(path), keys, "{path}");
        }
        for path in ["/api/v1/me/tokens", "/api/v1/service-accounts/{id}/tokens", "/api/v1/tokens"] {
            let op = &d["paths"][path]["get"];
            let status = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "status").unwrap();
            assert_eq!(status["schema"]["enum"], serde_json::json!(StatusFilter::ALL), "{path}");
            assert!(status["description"].as_str().unwrap().contains("expiring_soon"), "{path}");
        }
    }

    /// Self-rotation takes the API token itself; every answer of every operation names the
    /// X-Request-Id header; the token endpoint names the expiry header.
    #[test]
    fn lifecycle_headers_and_schemes() {
        let d = doc();
        let op = &d["paths"]["/api/v1/tokens/self/rotate"]["post"];
        assert_eq!(op["security"], serde_json::json!([{"apiToken": []}]));
        assert_eq!(d["components"]["securitySchemes"]["apiToken"]["scheme"], "bearer");
        let ok = &d["paths"]["/oauth/token"]["post"]["responses"]["200"]["headers"];
        assert!(ok["Tokend-Api-Token-Expires"].is_object(), "{ok}");
        let mut n = 0;
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, r) in op["responses"].as_object().unwrap() {
                    assert!(r["headers"]["X-Request-Id"].is_object(), "{method} {path} {status}");
                    n += 1;
                }
            }
        }
        assert!(n > 300, "{n}");
        // The optional body of a secret regeneration: absent or a SecretRotation, never null.
        let body = &d["paths"]["/api/v1/apps/{id}/secret"]["post"]["requestBody"];
        assert_eq!(body["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/SecretRotation");
        assert_ne!(body["required"], true);
    }

    /// The bodies the server builds as JSON have exactly the documented fields.
    #[test]
    fn assembled_bodies_match_their_schemas() {
        use actix_web::http::StatusCode;
        let d = doc();
        let problem = crate::error::problem_body(StatusCode::UNPROCESSABLE_ENTITY, "x: bad", Some("x"));
        assert_eq!(props(&serde_json::json!({ "properties": problem })), props(schema(&d, "Problem")));
        let oauth: Value = serde_json::from_str(&crate::error::oauth_body(OAuthCode::InvalidGrant, "no")).unwrap();
        assert_eq!(props(&serde_json::json!({"properties": oauth})), props(schema(&d, "OAuthErrorBody")));
        // Every OAuthCode is in the enum.
        let codes = schema(&d, "OAuthCode")["enum"].as_array().unwrap().len();
        assert_eq!(codes, 12);
        // The policy body's fields are the ones `policy::update` reads.
        use crate::service::org::policy::{READ_ONLY_FIELDS, UPDATE_FIELDS};
        let mut read: Vec<String> = UPDATE_FIELDS.iter().chain(&READ_ONLY_FIELDS).map(|f| f.to_string()).collect();
        read.sort();
        assert_eq!(props(schema(&d, "PolicyUpdate")), read);
    }
}
