//! `/gateway/auth`: forward-auth for gateways (nginx `auth_request`, Traefik
//! `forwardAuth`, Envoy `ext_authz` over HTTP, Caddy `forward_auth`). Parses the
//! client's credentials and the route's audience and role, and writes the headers the
//! gateway copies upstream; the rules and caches are in `service::oauth::gateway`.
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::auth::client_ip;
use super::oauth::audit_refused_exchange;
use crate::app::State;
use crate::error::OAuthError;
use crate::service::authz::throttle;
use crate::service::oauth::exchange::{resolve_audience, GrantError};
use crate::service::oauth::gateway::{self, AccessRefusal, Admitted};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/gateway/auth").route(web::get().to(auth)).route(web::post().to(auth_post)));
}

/// The headers of an admitted request (besides `Authorization` and the tenant header).
pub const SUBJECT: &str = "x-tokend-subject";
pub const ORG: &str = "x-tokend-org";
pub const ROLES: &str = "x-tokend-roles";
pub const ACCT: &str = "x-tokend-acct";
pub const CLIENT_ID: &str = "x-tokend-client-id";
/// Request headers a gateway may set per route instead of the query parameters.
pub const AUDIENCE_HEADER: &str = "x-tokend-audience";
pub const ROLE_HEADER: &str = "x-tokend-role";

#[derive(serde::Deserialize, Default)]
struct RouteQuery {
    audience: Option<String>,
    role: Option<String>,
}

/// The client's credential: a Bearer token, or the password of HTTP Basic (any user name);
/// `basic` says which, for the challenge.
struct Presented {
    secret: String,
    basic: bool,
}

fn presented(req: &HttpRequest) -> Option<Presented> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| Presented { secret: rest.to_string(), basic: false });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (_, password) = text.split_once(':')?;
        return (!password.is_empty()).then(|| Presented { secret: password.to_string(), basic: true });
    }
    None
}

fn header_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// 401 with the challenges a client understands (RFC 6750 §3; Basic for Basic clients).
fn unauthorized(basic: bool, error: Option<&str>, why: &str) -> HttpResponse {
    let bearer = match error {
        Some(e) => format!("Bearer realm=\"tokend\", error=\"{e}\", error_description=\"{why}\""),
        None => "Bearer realm=\"tokend\"".to_string(),
    };
    let mut r = HttpResponse::Unauthorized();
    r.append_header((header::WWW_AUTHENTICATE, bearer));
    if basic || error.is_none() {
        r.append_header((header::WWW_AUTHENTICATE, "Basic realm=\"tokend\", charset=\"UTF-8\""));
    }
    r.insert_header((header::CACHE_CONTROL, "no-store")).content_type("text/plain").body(why.to_string())
}

fn forbidden(challenge: Option<String>, why: &str) -> HttpResponse {
    let mut r = HttpResponse::Forbidden();
    if let Some(c) = challenge {
        r.insert_header((header::WWW_AUTHENTICATE, c));
    }
    r.insert_header((header::CACHE_CONTROL, "no-store")).content_type("text/plain").body(why.to_string())
}

/// 200 with the headers for the upstream, or 403 when the route's role is not held.
fn admitted(state: &State, a: &Admitted, role: Option<&str>) -> HttpResponse {
    if !gateway::has_role(a, role) {
        let role = role.unwrap_or_default();
        let c = format!("Bearer realm=\"tokend\", error=\"insufficient_scope\", scope=\"{role}\"");
        return forbidden(Some(c), &format!("this route requires the role {role}"));
    }
    let mut r = HttpResponse::Ok();
    r.insert_header((header::AUTHORIZATION, format!("Bearer {}", a.access_token)))
        .insert_header((SUBJECT, a.sub.as_str()))
        .insert_header((ORG, a.org.as_str()))
        .insert_header((ROLES, a.roles.join(" ")))
        .insert_header((ACCT, a.acct.as_str()))
        .insert_header((CLIENT_ID, a.client_id.as_str()))
        .insert_header((state.cfg.gateway_tenant_header.clone(), a.org.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    r.finish()
}

/// A refused credential: counted against the address and the credential (429 with
/// Retry-After once over the limit), else 401.
fn refused(state: &State, ip: &str, p: &Presented, why: &str) -> HttpResponse {
    let per_minute = state.cfg.token_failures_per_minute;
    if let Err(retry) =
        throttle::credential_failure(&state.token_throttle, per_minute, ip, Some(&p.secret), state.now())
    {
        return HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, retry.to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    unauthorized(p.basic, Some("invalid_token"), why)
}

/// Forward-auth for gateways
///
/// Called by a gateway (nginx `auth_request`, Traefik `forwardAuth`, Envoy `ext_authz`,
/// Caddy `forward_auth`) with the client's `Authorization`: `Bearer` with an API token
/// (tkd_pat_… / tkd_sat_…) or a tokend access token, or `Basic` with the API token as
/// password (any user name). The route names its audience (`audience`, or the
/// X-Tokend-Audience header; default: the first resource audience) and optionally a role
/// the caller must hold (`role`, or X-Tokend-Role). An API token is exchanged by the rules
/// of POST /oauth/token (refresh_token grant); the answer carries a short-lived access
/// token for the audience in `Authorization`, for the gateway to send upstream instead of
/// the client's header. An access token is accepted only for its own audience and passed
/// through. Answers are served from memory for TOKEND_GATEWAY_CACHE_SECONDS (10 s): a
/// revocation through this instance takes effect at once, through another within that
/// time. Refused credentials count against the caller's address like /oauth/token's.
#[utoipa::path(get, path = "/gateway/auth", tag = "OAuth", operation_id = "gateway_auth",
    params(
        ("audience" = Option<String>, Query, description = "The upstream's audience (one of TOKEND_AUDIENCES, \
            or the management audience)."),
        ("role" = Option<String>, Query, description = "A role the caller must hold (a role that implies it \
            counts)."),
        ("X-Tokend-Audience" = Option<String>, Header, description = "Instead of `audience`."),
        ("X-Tokend-Role" = Option<String>, Header, description = "Instead of `role`."),
    ),
    security(("bearerAuth" = []), ("clientBasic" = [])),
    responses(
        (status = 200, description = "Admitted. Empty body; copy these headers upstream.", headers(
            ("Authorization" = String, description = "Bearer <access token for the audience>: replaces the \
                client's Authorization upstream."),
            ("X-Tokend-Subject" = String, description = "The `sub` claim."),
            ("X-Tokend-Org" = String, description = "The organization id."),
            ("X-Tokend-Roles" = String, description = "The granted roles, space-separated."),
            ("X-Tokend-Acct" = String, description = "user | service_account | app"),
            ("X-Tokend-Client-Id" = String, description = "The API token's id (or the app's client id)."),
            ("X-Scope-OrgID" = String, description = "The organization id again, under the name set by \
                TOKEND_GATEWAY_TENANT_HEADER (multi-tenant upstreams)."),
            ("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "No credential, or an invalid, expired, revoked or idle one, or an access \
            token for another audience. WWW-Authenticate: Bearer realm=\"tokend\", error=\"invalid_token\" (and \
            a Basic challenge when Basic was used or nothing was presented)."),
        (status = 403, description = "The route's role is not held (error=\"insufficient_scope\"), or the \
            audience refuses this credential (not configured, or service accounts only)."),
        (status = 429, description = "Too many failed credentials from this address (Retry-After)."),
    ))]
pub async fn auth(req: HttpRequest, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    let q = web::Query::<RouteQuery>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
    let audience = q.audience.filter(|a| !a.is_empty()).or_else(|| header_value(&req, AUDIENCE_HEADER).map(Into::into));
    let role = q.role.filter(|r| !r.is_empty()).or_else(|| header_value(&req, ROLE_HEADER).map(Into::into));
    let Some(p) = presented(&req) else {
        return Ok(unauthorized(true, None, "present an API token as Bearer or as the Basic password"));
    };
    let aud = match resolve_audience(&state.cfg, None, audience.as_deref()) {
        Ok(a) => a,
        Err(e) => return Ok(forbidden(None, &e.to_string())),
    };
    let ip = client_ip(&req);
    let now = state.now();
    if p.secret.starts_with("tkd_") {
        if let Some(a) = gateway::cached_grant(&state.caches, &p.secret, &aud, now) {
            state.usage.touch(&a.client_id, now, &ip);
            return Ok(admitted(&state, &a, role.as_deref()));
        }
        let (st, secret, ip2) = (state.clone(), p.secret.clone(), ip.clone());
        let r = state
            .db
            .read_hot(move |conn| gateway::admit_api_token(conn, &st.caches, &st.ctx(&ip2), &secret, aud))
            .await?;
        return match r {
            Ok(a) => Ok(admitted(&state, &a, role.as_deref())),
            Err(GrantError::InvalidGrant { known, reason }) => {
                let res = refused(&state, &ip, &p, "the token is invalid, expired or revoked");
                if let (Some((org, id)), false) = (known, res.status() == StatusCode::TOO_MANY_REQUESTS) {
                    audit_refused_exchange(&state, org, id, reason, ip).await;
                }
                Ok(res)
            }
            Err(GrantError::InvalidTarget(why)) => Ok(forbidden(None, &why)),
            Err(e) => Err(e.into()),
        };
    }
    let v = match gateway::cached_access(&state.caches, &p.secret, now) {
        Some(v) => Some(v),
        None => {
            let (st, token) = (state.clone(), p.secret.clone());
            let ip2 = ip.clone();
            state.db.read_hot(move |conn| gateway::verify_access(conn, &st.caches, &st.ctx(&ip2), &token)).await??
        }
    };
    match gateway::admit_access(&p.secret, v, &aud, now) {
        Ok(a) => Ok(admitted(&state, &a, role.as_deref())),
        Err(AccessRefusal::Inactive) => Ok(refused(&state, &ip, &p, "the token is invalid, expired or revoked")),
        Err(AccessRefusal::OtherAudience) => {
            Ok(unauthorized(p.basic, Some("invalid_token"), "the access token is for another audience"))
        }
    }
}

/// Forward-auth for gateways (POST)
///
/// The same as GET, for gateways that forward the client's method.
#[utoipa::path(post, path = "/gateway/auth", tag = "OAuth", operation_id = "gateway_auth_post",
    params(
        ("audience" = Option<String>, Query, description = "As GET: the upstream's audience."),
        ("role" = Option<String>, Query, description = "As GET: a role the caller must hold."),
        ("X-Tokend-Audience" = Option<String>, Header, description = "Instead of `audience`."),
        ("X-Tokend-Role" = Option<String>, Header, description = "Instead of `role`."),
    ),
    security(("bearerAuth" = []), ("clientBasic" = [])),
    responses((status = 200, description = "As GET."), (status = 401), (status = 403), (status = 429)))]
pub async fn auth_post(req: HttpRequest, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    auth(req, state).await
}
