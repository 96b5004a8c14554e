//! `/oauth/token`, `/oauth/revoke`, `/oauth/introspect`: strict form parsing and client
//! authentication; the grant rules are in `service::oauth::exchange`.
use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::auth::{bearer, client_ip};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use super::openapi::{IntrospectRequest, IntrospectionResponse, RevokeRequest, TokenForm};
use crate::app::{blocking, State};
use crate::error::{OAuthCode, OAuthError};
use crate::service::oauth::exchange::{
    self, AnyTokenRequest, ClientSecret, GrantError, GrantType, Target, TokenRequest, TokenResponse,
};
use crate::service::oauth::gateway;
use crate::service::oauth::introspection::{self, Presented};
use crate::service::oauth::revoke;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/token").route(web::post().to(token)))
        .service(web::resource("/revoke").route(web::post().to(revoke)))
        .service(web::resource("/introspect").route(web::post().to(introspect)))
        .service(web::resource("/revocations").route(web::get().to(revocations)));
}

pub use crate::service::oauth::exchange::TOKEN_TYPE_ACCESS;
pub const SUBJECT_TYPES: [&str; 2] =
    ["urn:ietf:params:oauth:token-type:refresh_token", "urn:tokend:params:oauth:token-type:api_token"];
/// Subject token types of `service::oauth::federation`: an external issuer's JWT (trust
/// policies), or a tokend access token exchanged by an app acting for its subject.
pub const EXTERNAL_SUBJECT_TYPES: [&str; 3] =
    ["urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token", TOKEN_TYPE_ACCESS];

/// Strict `application/x-www-form-urlencoded`: UTF-8 only, each parameter at most once.
pub fn parse_form<'a>(req: &HttpRequest, body: &'a [u8]) -> Result<Form<'a>, OAuthError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    parse_form_body(ct, body)
}

/// A parsed form: its pairs in body order, borrowed from the body unless a `%` escape or
/// `+` had to be decoded. A handful of pairs: a list searched in order is cheaper than a
/// map (no hashing, one allocation), and the token path reads only a few names.
#[derive(Debug, Default)]
pub struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    /// The value of parameter `k`, if given.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_ref())
    }

    pub fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Every (name, value) pair, in body order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Whether `k` was already given. Past a few pairs, a set: a body of thousands of
    /// distinct names must not cost a scan per name.
    fn repeats(&self, k: &str, seen: &mut Option<std::collections::HashSet<String>>) -> bool {
        const SCAN: usize = 16;
        if self.pairs.len() < SCAN {
            return self.pairs.iter().any(|(n, _)| n == k);
        }
        let set = seen.get_or_insert_with(|| self.pairs.iter().map(|(n, _)| n.to_string()).collect());
        !set.insert(k.to_string())
    }
}

/// `parse_form` without the request: the Content-Type value (`""` when absent or not
/// visible ASCII) and the body.
pub fn parse_form_body<'a>(content_type: &str, body: &'a [u8]) -> Result<Form<'a>, OAuthError> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::request("the body must be application/x-www-form-urlencoded"));
    }
    let mut out = Form { pairs: Vec::with_capacity(4) };
    let mut seen = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let k = form_decode(it.next().unwrap_or_default())?;
        let v = form_decode(it.next().unwrap_or_default())?;
        if out.repeats(&k, &mut seen) {
            return Err(OAuthError::request(format!("parameter {k} is given more than once")));
        }
        out.pairs.push((k, v));
    }
    Ok(out)
}

/// One form-urlencoded name or value: `+` is a space, then percent-decoding; UTF-8 only.
/// Borrowed when there is nothing to decode (the usual case on the token path).
fn form_decode(raw: &[u8]) -> Result<Cow<'_, str>, OAuthError> {
    let bad = || OAuthError::request("parameters must be UTF-8");
    if raw.contains(&b'+') {
        let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
        return String::from_utf8(bytes).map(Cow::Owned).map_err(|_| bad());
    }
    percent_encoding::percent_decode(raw).decode_utf8().map_err(|_| bad())
}

/// An `Authorization` header value as HTTP Basic client credentials (RFC 6749 §2.3.1: each
/// part form-urlencoded): `Ok(None)` when the scheme is not Basic, `invalid_client` (with
/// the Basic challenge) when it is but the credentials are malformed.
pub fn decode_basic(header_value: &str) -> Result<Option<(String, String)>, OAuthError> {
    let Some((_, b64)) = header_value.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("basic")) else {
        return Ok(None);
    };
    let bad = || OAuthError::new(OAuthCode::InvalidClient, "malformed Basic credentials").basic(true);
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| -> Result<String, OAuthError> {
        let plus = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus).decode_utf8().map(|c| c.into_owned()).map_err(|_| bad())
    };
    Ok(Some((dec(id)?, dec(secret)?)))
}

/// Client credentials from HTTP Basic (see `decode_basic`) or the body.
struct ClientAuth {
    id: String,
    secret: String,
    basic: bool,
}

fn client_auth(req: &HttpRequest, form: &Form<'_>) -> Result<Option<ClientAuth>, OAuthError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let basic = match header {
        Some(h) => decode_basic(h)?.map(|(id, secret)| ClientAuth { id, secret, basic: true }),
        None => None,
    };
    let post = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some(ClientAuth { id: id.to_string(), secret: secret.to_string(), basic: false }),
        _ => None,
    };
    match (basic, post) {
        (Some(_), Some(_)) => Err(OAuthError::request("use one client authentication method, not two")),
        (Some(_), None) if form.contains_key("client_secret") => {
            Err(OAuthError::request("use one client authentication method, not two"))
        }
        (Some(b), None) => match form.get("client_id") {
            Some(id) if id != b.id => Err(OAuthError::request("client_id disagrees with the Basic credentials")),
            _ => Ok(Some(b)),
        },
        (None, Some(p)) => Ok(Some(p)),
        (None, None) => Ok(None),
    }
}

/// The token path's database read: the per-backend strategy is `Db::read_hot`'s.
async fn hot<T, F>(state: &web::Data<State>, f: F) -> Result<T, OAuthError>
where
    F: FnOnce(&mut crate::store::AnyConnection) -> Result<T, OAuthError> + Send + 'static,
    T: Send + 'static,
{
    state.db.read_hot(f).await?
}

/// The header telling a script when the API token it exchanged expires (as GitHub's
/// `GitHub-Authentication-Token-Expiration`), so that it can warn itself.
pub const API_TOKEN_EXPIRES_HEADER: &str = "tokend-api-token-expires";

/// Writes the RFC 6749 §5.1 success body (and, for an API-token exchange, the expiry
/// header).
pub fn token_response(r: &TokenResponse) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
    if let Some(at) = r.api_token_expires_at {
        res.insert_header((API_TOKEN_EXPIRES_HEADER, crate::clock::rfc3339(at)));
    }
    match serde_json::to_vec(r) {
        Ok(body) => res.content_type("application/json").body(body),
        Err(e) => {
            log::error!("serialising a token response: {e}");
            actix_web::ResponseError::error_response(&OAuthError::new(OAuthCode::ServerError, "internal error"))
        }
    }
}

fn ok_json(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

fn nonempty<'a>(form: &'a Form<'_>, k: &str) -> Option<&'a str> {
    form.get(k).filter(|v| !v.is_empty())
}

/// The form of `POST /oauth/token` as a typed request (`basic`: the client tried HTTP
/// Basic). Unknown grants are `unsupported_grant_type`, a missing one `invalid_request`.
fn token_request(req: &HttpRequest, form: &Form<'_>) -> Result<(AnyTokenRequest, bool), OAuthError> {
    let scope = form.get("scope").map(str::to_string);
    let target = Target {
        resource: nonempty(form, "resource").map(str::to_string),
        audience: nonempty(form, "audience").map(str::to_string),
    };
    let grant = match form.get("grant_type").unwrap_or_default() {
        "" => return Err(OAuthError::request("grant_type is required")),
        g => GrantType::from_param(g).ok_or_else(|| {
            // RFC 6749 §5.2: every grant this server does not implement, password and
            // authorization_code included.
            OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                "supported grant types: client_credentials, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange",
            )
        })?,
    };
    let secret = |a: ClientAuth| ClientSecret { client_id: a.id, secret: a.secret };
    match grant {
        GrantType::ClientCredentials => {
            let Some(auth) = client_auth(req, form)? else {
                return Err(OAuthError::new(OAuthCode::InvalidClient, "client authentication is required"));
            };
            let basic = auth.basic;
            Ok((TokenRequest::ClientCredentials { client: secret(auth), scope, target }.into(), basic))
        }
        GrantType::RefreshToken => {
            let refresh_token = nonempty(form, "refresh_token")
                .ok_or_else(|| OAuthError::request("refresh_token is required"))?
                .to_string();
            // Client authentication is optional here, but presented credentials are checked.
            let client = client_auth(req, form)?;
            let basic = client.as_ref().is_some_and(|c| c.basic);
            Ok((TokenRequest::RefreshToken { refresh_token, client: client.map(secret), scope, target }.into(), basic))
        }
        GrantType::TokenExchange => {
            let subject_token =
                nonempty(form, "subject_token").ok_or_else(|| OAuthError::request("subject_token is required"))?;
            let ty = nonempty(form, "subject_token_type")
                .ok_or_else(|| OAuthError::request("subject_token_type is required"))?;
            if !SUBJECT_TYPES.contains(&ty) && !EXTERNAL_SUBJECT_TYPES.contains(&ty) {
                return Err(OAuthError::request("unsupported subject_token_type"));
            }
            if let Some(rt) = nonempty(form, "requested_token_type") {
                if rt != TOKEN_TYPE_ACCESS {
                    return Err(OAuthError::request("only access tokens can be requested"));
                }
            }
            if ty != SUBJECT_TYPES[0] && ty != SUBJECT_TYPES[1] {
                return external_request(req, form, subject_token, ty, scope, target);
            }
            if form.contains_key("actor_token") {
                return Err(OAuthError::request("actor_token is not supported"));
            }
            let subject_token = subject_token.to_string();
            let client = client_auth(req, form)?;
            let basic = client.as_ref().is_some_and(|c| c.basic);
            Ok((TokenRequest::TokenExchange { subject_token, client: client.map(secret), scope, target }.into(), basic))
        }
    }
}

/// A token-exchange form whose subject is an external JWT (federation) or a tokend access
/// token (delegation).
fn external_request(
    req: &HttpRequest,
    form: &Form<'_>,
    subject_token: &str,
    ty: &str,
    scope: Option<String>,
    target: Target,
) -> Result<(AnyTokenRequest, bool), OAuthError> {
    use crate::service::oauth::federation::Grant;
    let client = client_auth(req, form)?;
    let basic = client.as_ref().is_some_and(|c| c.basic);
    let client = client.map(|a| ClientSecret { client_id: a.id, secret: a.secret });
    let subject_token = subject_token.to_string();
    let actor_token = nonempty(form, "actor_token").map(str::to_string);
    let actor_type = nonempty(form, "actor_token_type");
    if ty != TOKEN_TYPE_ACCESS {
        if actor_token.is_some() || actor_type.is_some() {
            return Err(OAuthError::request("actor_token is not supported with an external subject token"));
        }
        return Ok((Grant::Federated { subject_token, client, scope, target }.into(), basic));
    }
    match (&actor_token, actor_type) {
        (Some(_), Some(TOKEN_TYPE_ACCESS)) | (None, None) => {}
        (Some(_), None) => return Err(OAuthError::request("actor_token_type is required with actor_token")),
        (None, Some(_)) => return Err(OAuthError::request("actor_token_type without actor_token")),
        (Some(_), Some(_)) => return Err(OAuthError::request("actor_token_type must be an access token type")),
    }
    if actor_token.is_none() && client.is_none() {
        return Err(OAuthError::request(
            "exchanging an access token is delegation: authenticate the acting app or send its actor_token",
        ));
    }
    Ok((Grant::Delegated { subject_token, client, actor_token, scope, target }.into(), basic))
}

/// Issue an access token
///
/// The three grants: client_credentials (an app with its client secret, or an API token as
/// the client secret with the token's id or `api-token` as client_id, for tools that speak
/// only this grant), refresh_token and RFC 8693 token exchange (an API token; an external
/// issuer's JWT through a trust policy; or, for an app allowed to act for the audience, a
/// user's access token, answered with an act claim). Other grant types (authorization_code and password included) answer
/// unsupported_grant_type. The form is strict: UTF-8, each parameter at most once (a
/// repeated parameter is invalid_request); unknown parameters are ignored. Failed calls
/// (invalid_grant, invalid_client) count against a per-client-IP limit
/// (TOKEND_TOKEN_FAILURES_PER_MINUTE, default 120 per minute); beyond it failing calls
/// answer 429 slow_down until Retry-After (valid credentials are always served).
#[utoipa::path(post, path = "/oauth/token", tag = "OAuth", operation_id = "token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("clientBasic" = []), ()),
    responses(
        (status = 200, description = "The access token.", body = TokenResponse, headers(
            ("Cache-Control" = String, description = "no-store"), ("Pragma" = String, description = "no-cache"),
            ("Tokend-Api-Token-Expires" = String, description = "On an API-token exchange (refresh_token and \
                token-exchange grants): when the exchanged API token expires (RFC 3339), so that scripts can warn \
                themselves before it does. Absent for client_credentials (app secrets never expire)."))),
        (status = 400, description = "invalid_request, invalid_grant (unknown, malformed, expired, idle-expired \
            or revoked API token; client secret given as a grant; owner disabled or deleted), unauthorized_client, \
            unsupported_grant_type, invalid_scope, invalid_target (audience not configured, resource and audience \
            disagree, or a personal token for a service-only audience)."),
        (status = 401, description = "invalid_client: client_credentials without client authentication, \
            malformed Basic credentials, unknown or disabled app, wrong secret; an API token as client secret that \
            is not live or does not match the client_id."),
        (status = 429),
    ))]
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    let ip = client_ip(&req);
    let (label, parsed) = read_token_request(&req, &body)?;
    let mut refused_known = None;
    let result = match parsed {
        Ok((AnyTokenRequest::External(grant), basic)) => {
            // Off the worker thread: it may fetch an external issuer's keys.
            let (st, ip) = (state.clone(), ip.clone());
            let r = blocking(move || {
                Ok::<_, OAuthError>(crate::service::oauth::federation::token(&st.federation(), &st.ctx(&ip), grant))
            })
            .await?;
            r.map_err(|e| OAuthError::from(e).basic(basic))
        }
        Ok((AnyTokenRequest::Api(request), basic)) => {
            // PostgreSQL: from the credential cache on this worker when it can answer (no
            // database, no thread hop); otherwise, and on SQLite, the per-backend read.
            let remembered =
                if state.db.is_sqlite() { None } else { exchange::token_from_memory(&request, &state.ctx(&ip)) };
            let r = match remembered {
                Some(r) => r,
                None => {
                    let (st, ip) = (state.clone(), ip.clone());
                    hot(&state, move |conn| Ok(exchange::token_guarded(conn, request, &st.ctx(&ip)))).await?
                }
            };
            if let Err(
                GrantError::InvalidGrant { known: Some((org, id)), reason }
                | GrantError::InvalidApiTokenClient { known: Some((org, id)), reason },
            ) = &r
            {
                refused_known = Some((org.clone(), id.clone(), *reason));
            }
            r.map_err(|e| OAuthError::from(e).basic(basic))
        }
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => "success",
        // Already over the failure limit: answered without another audit row.
        Err(e) if e.error == OAuthCode::SlowDown => "throttled",
        Err(e) => e.error.as_str(),
    };
    if let Some((org, id, reason)) = refused_known {
        audit_refused_exchange(&state, org, id, reason, ip).await;
    }
    state.metrics.count_issued(label, outcome);
    result.map(|r| token_response(&r))
}

/// A token form as a typed request and whether the client tried HTTP Basic, or why the
/// form is malformed (answered after the issuance metric counted it).
pub(crate) type Parsed = Result<(AnyTokenRequest, bool), OAuthError>;

/// What `POST /oauth/token` reads of a request before any credential is checked: the
/// `grant` label of the issuance metric and the typed request (or why it is malformed).
/// Shared with the benchmark ceiling (`http::bench`), which must parse the same request
/// the same way to measure what the token path costs beyond it.
pub(crate) fn read_token_request(req: &HttpRequest, body: &[u8]) -> Result<(&'static str, Parsed), OAuthError> {
    let form = parse_form(req, body)?;
    let label = form.get("grant_type").and_then(GrantType::from_param).map_or("other", GrantType::label);
    Ok((label, token_request(req, &form)))
}

/// Audits a refused exchange of a known API token (token endpoint, forward-auth): off the
/// worker thread (the write waits for the disk), and never allowed to turn the refusal
/// into a server error.
pub async fn audit_refused_exchange(
    state: &web::Data<State>,
    org: String,
    id: String,
    reason: exchange::Refusal,
    ip: String,
) {
    // At most a few rows a minute per credential, however many addresses present it (the
    // rest are summarised).
    let (write, summary) =
        state.refused.admit_for(&id, &org, crate::service::events::ActorKind::ApiToken, Some(&ip), state.now());
    if !write {
        return;
    }
    let st = state.clone();
    let r = blocking(move || -> Result<(), crate::service::Error> {
        let mut w = st.db.write()?;
        if let Some(sum) = summary {
            sum.record(&mut w, st.now())?;
        }
        exchange::audit_refusal(&mut w, &org, &id, reason, &ip, st.now())
    })
    .await;
    if let Err(e) = r {
        log::warn!("auditing a refused exchange failed: {e}");
    }
}

/// Revoke a token (RFC 7009)
///
/// The holder of an API token revokes it, the holder of an access token issued here its jti;
/// no client authentication. Always 200 with an empty body when the form is valid, also for
/// an unknown or already revoked token; a client secret is unsupported_token_type (400). One
/// principal's access tokens are revoked at most 30 a minute (429 slow_down beyond).
#[utoipa::path(post, path = "/oauth/revoke", tag = "OAuth", operation_id = "revoke", security(()),
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke. Empty body.",
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 429),
    ))]
pub async fn revoke(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    let form = parse_form(&req, &body)?;
    let token = nonempty(&form, "token").ok_or_else(|| OAuthError::request("token is required"))?.to_string();
    let ip = client_ip(&req);
    let (st, ip2, token2) = (state.clone(), ip.clone(), token.clone());
    let plan = hot(&state, move |conn| revoke::plan(conn, &st.ctx(&ip2), &token2).map_err(OAuthError::from)).await?;
    if plan == revoke::Plan::Write {
        let st = state.clone();
        blocking(move || {
            let mut conn = st.db.write().map_err(crate::service::Error::from)?;
            revoke::revoke_by_holder(&mut conn, &st.ctx(&ip), &token).map_err(OAuthError::from)
        })
        .await?;
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish())
}

/// Introspect an access token or API token (RFC 7662)
///
/// The caller is an app an admin allowed to introspect (HTTP Basic or client_id/client_secret
/// in the form) or presents a bearer access token holding org:admin. A token is active only
/// if it verifies, what stands behind it is still live, and it belongs to the caller's
/// organization.
#[utoipa::path(post, path = "/oauth/introspect", tag = "OAuth", operation_id = "introspect",
    request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    security(("clientBasic" = []), ("bearerAuth" = []), ()),
    responses(
        (status = 200, description = "Introspection result.", body = IntrospectionResponse, headers(
            ("Cache-Control" = String, description = "no-store"), ("Pragma" = String, description = "no-cache"))),
        (status = 401, description = "invalid_client: no authentication, bad app credentials, or an invalid \
            bearer token."),
        (status = 403, description = "access_denied: the app is not allowed to introspect, or the bearer does \
            not hold org:admin."),
        (status = 429),
    ))]
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<State>,
) -> Result<HttpResponse, OAuthError> {
    let form = parse_form(&req, &body)?;
    let token = nonempty(&form, "token").ok_or_else(|| OAuthError::request("token is required"))?.to_string();
    let ip = client_ip(&req);
    let org_id = introspection_caller(&req, &form, &state, &ip).await?;
    let st = state.clone();
    if token.starts_with("tkd_") {
        let v = hot(&state, move |conn| {
            exchange::introspect(conn, &st.ctx(&ip), &org_id, &token).map_err(OAuthError::from)
        })
        .await?;
        return Ok(ok_json(v));
    }
    // Access tokens: a verified, live one is served from memory for a few seconds (never
    // beyond its exp; any revocation in this process drops it).
    let now = state.now();
    if let Some(v) = gateway::cached_access(&state.caches, &token, now) {
        return Ok(ok_json(exchange::access_view(Some(&v), &org_id, now)));
    }
    let v = hot(&state, move |conn| {
        let ctx = st.ctx(&ip);
        let v = gateway::verify_access(conn, &st.caches, &ctx, &token).map_err(OAuthError::from)?;
        Ok(exchange::access_view(v.as_ref(), &org_id, ctx.now))
    })
    .await?;
    Ok(ok_json(v))
}

/// The org of an introspection caller (introspection and the revocation feed): the
/// presented credentials as parsed here, judged by `service::oauth::introspection`.
async fn introspection_caller(
    req: &HttpRequest,
    form: &Form<'_>,
    state: &web::Data<State>,
    ip: &str,
) -> Result<String, OAuthError> {
    let presented = match (client_auth(req, form)?, bearer(req)) {
        (Some(a), _) => Presented::App { id: a.id, secret: a.secret, basic: a.basic },
        (None, Some(b)) => Presented::Bearer(b.to_string()),
        (None, None) => Presented::Nothing,
    };
    let (st, ip) = (state.clone(), ip.to_string());
    hot(state, move |conn| {
        introspection::caller(conn, &st.ctx(&ip), presented).map_err(|(e, basic)| OAuthError::from(e).basic(basic))
    })
    .await
}

/// What the feed's query string may hold.
#[derive(serde::Deserialize)]
struct FeedQuery {
    since: Option<String>,
}

/// Revocations since a cursor (the feed for offline verifiers)
///
/// What was revoked in the caller's organization since `since`: access tokens by `jti`,
/// API tokens by id (the `client_id` claim of the access tokens exchanged from them), and
/// principals whose earlier access tokens ended (refuse a token of `sub` whose `ep` claim
/// is below `epoch`). Only what can still matter: a revocation drops out once no access
/// token it concerns can be live (`window_seconds`). Without `since`, or with a cursor
/// answered longer ago than the window, the answer holds the whole window and says
/// `reset: true`. The caller is what introspection accepts: an app allowed to introspect
/// (HTTP Basic) or a bearer holding org:admin. Poll it every few seconds; an unchanged
/// answer is 304 to If-None-Match.
#[utoipa::path(get, path = "/oauth/revocations", tag = "OAuth", operation_id = "revocations",
    params(("since" = Option<String>, Query, description = "The `cursor` of the previous answer (opaque).")),
    security(("clientBasic" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "Revocations since the cursor.", body = crate::service::oauth::revocations::Feed,
            headers(("ETag" = String, description = "Of this answer's body."),
                ("Cache-Control" = String, description = "private, no-cache: revalidate with If-None-Match."))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match."),
        (status = 400, description = "invalid_request: a malformed cursor."),
        (status = 401, description = "invalid_client: no authentication, bad app credentials, or an invalid \
            bearer token."),
        (status = 403, description = "access_denied: the app is not allowed to introspect, or the bearer does \
            not hold org:admin."),
        (status = 429),
    ))]
pub async fn revocations(req: HttpRequest, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    let q = web::Query::<FeedQuery>::from_query(req.query_string())
        .map_err(|_| OAuthError::request("malformed query string"))?;
    let now = state.now();
    let since = match q.since.as_deref() {
        None => None,
        Some(c) => Some(
            crate::service::oauth::revocations::parse_cursor(c, now)
                .ok_or_else(|| OAuthError::request("since: not a cursor of this feed"))?,
        ),
    };
    let ip = client_ip(&req);
    let org_id = introspection_caller(&req, &Form::default(), &state, &ip).await?;
    let feed = hot(&state, move |conn| {
        crate::service::oauth::revocations::read(conn, &org_id, since, now).map_err(OAuthError::from)
    })
    .await?;
    let body = serde_json::to_vec(&feed).map_err(|e| {
        log::error!("serialising the revocation feed: {e}");
        OAuthError::new(OAuthCode::ServerError, "internal error")
    })?;
    // Of the rows, not of the cursor (which names the time it was answered).
    let tag = {
        let rows = serde_json::json!([feed.reset, feed.more, feed.access_tokens, feed.api_tokens, feed.principals]);
        format!("\"{}\"", &crate::secrets::hash(&format!("{rows}|{}", feed.cursor.split('.').next().unwrap_or(""))))
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut res = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, tag.as_str())).insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if fresh {
        return Ok(res.finish());
    }
    Ok(res.content_type("application/json").body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn form_body_is_strict() {
        let f = parse_form_body("Application/X-WWW-Form-URLEncoded; charset=UTF-8", b"a=1+2&b=%C3%A9&&c").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!((f.get("a"), f.get("b"), f.get("c")), (Some("1 2"), Some("é"), Some("")));
        assert_eq!(parse_form_body("application/json", b"a=1").unwrap_err().error, "invalid_request");
        assert_eq!(parse_form_body("", b"a=1").unwrap_err().error, "invalid_request");
        assert!(parse_form_body(FORM, b"a=1&a=1").unwrap_err().description.contains("more than once"));
        assert!(parse_form_body(FORM, b"a=%FF").unwrap_err().description.contains("UTF-8"));
        assert!(parse_form_body(FORM, b"").unwrap().is_empty());
        // Past the short list's scan, the set finds a repeat just the same.
        let many = (0..40).map(|i| format!("p{i}=x&")).collect::<String>() + "p%33=y";
        assert_eq!(
            parse_form_body(FORM, many.as_bytes()).unwrap_err().description,
            "parameter p3 is given more than once"
        );
        assert_eq!(parse_form_body(FORM, many.replace("p%33=y", "q=y").as_bytes()).unwrap().len(), 41);
    }

    #[test]
    fn basic_credentials() {
        let h = |raw: &str| format!("Basic {}", STANDARD.encode(raw));
        assert_eq!(decode_basic(&h("app:s%2Bc+r")).unwrap(), Some(("app".into(), "s+c r".into())));
        assert_eq!(decode_basic(&format!("bAsIc  {} ", STANDARD.encode("a:"))).unwrap(), Some(("a".into(), "".into())));
        assert_eq!(decode_basic("Bearer abc").unwrap(), None);
        assert_eq!(decode_basic("Basic").unwrap(), None);
        for bad in [h("no-colon"), "Basic !!".into(), h("a:%FF"), format!("Basic {}", STANDARD.encode([0xff, b':']))] {
            let e = decode_basic(&bad).unwrap_err();
            assert!(e.error == "invalid_client" && e.basic, "{bad}");
        }
    }

    fn request_of(pairs: &[(&str, &str)], basic: Option<&str>) -> Result<(TokenRequest, bool), OAuthError> {
        let mut req = actix_web::test::TestRequest::default();
        if let Some(b) = basic {
            req = req.insert_header((header::AUTHORIZATION, format!("Basic {}", STANDARD.encode(b))));
        }
        let form = Form { pairs: pairs.iter().map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v))).collect() };
        token_request(&req.to_http_request(), &form).map(|(r, basic)| match r {
            AnyTokenRequest::Api(r) => (r, basic),
            other => panic!("not an API-token grant: {other:?}"),
        })
    }

    #[test]
    fn token_requests_are_typed() {
        let e = request_of(&[], None).unwrap_err();
        assert_eq!((e.error, e.description.as_str()), (OAuthCode::InvalidRequest, "grant_type is required"));
        for g in ["password", "authorization_code", "CLIENT_CREDENTIALS"] {
            let e = request_of(&[("grant_type", g)], None).unwrap_err();
            assert_eq!((e.error, e.error.status().as_u16()), (OAuthCode::UnsupportedGrantType, 400), "{g}");
        }
        let e = request_of(&[("grant_type", "client_credentials")], None).unwrap_err();
        assert!(e.error == OAuthCode::InvalidClient && !e.basic);
        let (r, basic) =
            request_of(&[("grant_type", "client_credentials"), ("scope", "a b"), ("resource", "")], Some("app:s"))
                .unwrap();
        assert!(basic);
        match r {
            TokenRequest::ClientCredentials { client, scope, target } => {
                assert_eq!((client.client_id.as_str(), client.secret.as_str()), ("app", "s"));
                assert_eq!(scope.as_deref(), Some("a b"));
                assert!(target.resource.is_none() && target.audience.is_none());
            }
            other => panic!("{other:?}"),
        }
        let e = request_of(&[("grant_type", "refresh_token")], None).unwrap_err();
        assert_eq!(e.description, "refresh_token is required");
        let (r, basic) =
            request_of(&[("grant_type", "refresh_token"), ("refresh_token", "t"), ("audience", "x")], None).unwrap();
        assert!(!basic);
        assert!(
            matches!(r, TokenRequest::RefreshToken { ref refresh_token, client: None, .. } if refresh_token == "t")
        );
        let te = GrantType::TOKEN_EXCHANGE;
        let e =
            request_of(&[("grant_type", te), ("subject_token", "t"), ("subject_token_type", "x")], None).unwrap_err();
        assert_eq!(e.description, "unsupported subject_token_type");
        let ok = [("grant_type", te), ("subject_token", "t"), ("subject_token_type", SUBJECT_TYPES[1])];
        let (r, _) = request_of(&ok, None).unwrap();
        assert!(matches!(r, TokenRequest::TokenExchange { ref subject_token, .. } if subject_token == "t"));
        let e = request_of(&[ok[0], ok[1], ok[2], ("actor_token", "a")], None).unwrap_err();
        assert_eq!(e.description, "actor_token is not supported");
    }
}
