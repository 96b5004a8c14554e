//! `/api/v1` handlers: extract, authenticate, call one service function on the blocking
//! pool, answer JSON. Errors are problem+json.
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{client_ip, Caller};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use super::openapi::{
    AccountSort, AppSort, AuditSort, DeliverySort, OwnerTokenFilter, SavedSort, TableFilter, TableSort, TokenSort,
    UserSort, WebhookSort,
};
use crate::app::{blocking, State};
use crate::error::ApiError;
use crate::service::list::{PageQuery, Paged};
use crate::service::oauth::exchange;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::principals::apps::SecretRotation;
use crate::service::{
    self, authz::roles, events::webhooks, org::audit_log as audit, org::policy, principals::accounts, principals::apps,
    principals::sessions, principals::users, tokens, tokens::saved, tokens::table,
};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::{
    authz::roles::{NewRole, RolePatch, RoleView},
    events::webhooks::{CreateWebhook, DeliveryView, PatchWebhook, TestQueued, WebhookView, WebhookWithSecret},
    org::audit_log::{AuditFilter, AuditView},
    org::policy::{PolicyUpdate, PolicyView},
    principals::accounts::{AccountPatch, AccountView, NewAccount},
    principals::apps::{AppPatch, AppView, AppWithSecret, NewApp},
    principals::sessions::{IssuedCode, PasswordChange, Redeem},
    principals::users::{CredentialsQuery, MeView, NewUser, UserFilter, UserPatch, UserView},
    tokens::saved::{NewSearch, SearchView},
    tokens::table::Row,
    tokens::{CreateToken, CreatedToken, PatchToken, TokenView},
};
use crate::store::AnyConnection;

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

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put, resource};
    cfg.service(resource("/login").route(post().to(login)))
        .service(resource("/logout").route(post().to(logout)))
        .service(resource("/password-reset").route(post().to(redeem_reset)))
        .service(resource("/me").route(get().to(me)))
        .service(resource("/me/password").route(put().to(change_password)))
        .service(resource("/me/sessions/revoke").route(post().to(sign_out_everywhere)))
        .service(
            resource("/me/tokens")
                .route(get().to(my_tokens))
                .route(post().to(my_create))
                .route(delete().to(my_revoke_all)),
        )
        .service(
            resource("/me/tokens/{id}")
                .route(get().to(my_get))
                .route(patch().to(my_patch))
                .route(delete().to(my_revoke)),
        )
        .service(resource("/me/tokens/{id}/rotate").route(post().to(my_rotate)))
        .service(resource("/users").route(get().to(users_list)).route(post().to(users_create)))
        .service(
            resource("/users/{id}")
                .route(get().to(users_get))
                .route(patch().to(users_patch))
                .route(delete().to(users_delete)),
        )
        .service(resource("/users/{id}/password-reset").route(post().to(users_password_reset)))
        .service(resource("/roles").route(get().to(roles_list)).route(post().to(roles_create)))
        .service(resource("/roles/{name}").route(patch().to(roles_patch)).route(delete().to(roles_delete)))
        .service(resource("/service-accounts").route(get().to(sa_list)).route(post().to(sa_create)))
        .service(
            resource("/service-accounts/{id}")
                .route(get().to(sa_get))
                .route(patch().to(sa_patch))
                .route(delete().to(sa_delete)),
        )
        .service(resource("/service-accounts/{id}/tokens").route(get().to(sa_tokens)).route(post().to(sa_token_create)))
        .service(
            resource("/service-accounts/{id}/tokens/{tid}")
                .route(get().to(sa_token_get))
                .route(patch().to(sa_token_patch))
                .route(delete().to(sa_token_revoke)),
        )
        .service(resource("/service-accounts/{id}/tokens/{tid}/rotate").route(post().to(sa_token_rotate)))
        .service(resource("/apps").route(get().to(apps_list)).route(post().to(apps_create)))
        .service(
            resource("/apps/{id}")
                .route(get().to(apps_get))
                .route(patch().to(apps_patch))
                .route(delete().to(apps_delete)),
        )
        .service(resource("/apps/{id}/secret").route(post().to(apps_secret)))
        .service(resource("/tokens").route(get().to(table_list)))
        .service(resource("/tokens/self/rotate").route(post().to(self_rotate)))
        .service(resource("/tokens/{id}").route(get().to(table_get)))
        .service(resource("/tokens/{id}/revoke").route(post().to(table_revoke)))
        .service(resource("/policy").route(get().to(policy_get)).route(put().to(policy_put)))
        .service(resource("/saved-searches").route(get().to(saved_list)).route(post().to(saved_create)))
        .service(resource("/saved-searches/{id}").route(delete().to(saved_delete)))
        .service(resource("/audit").route(get().to(audit_list)))
        .service(resource("/webhooks").route(get().to(webhooks_list)).route(post().to(webhooks_create)))
        .service(
            resource("/webhooks/{id}")
                .route(get().to(webhooks_get))
                .route(patch().to(webhooks_patch))
                .route(delete().to(webhooks_delete)),
        )
        .service(resource("/webhooks/{id}/secret").route(post().to(webhooks_secret)))
        .service(resource("/webhooks/{id}/test").route(post().to(webhooks_test)))
        .service(resource("/webhooks/{id}/deliveries").route(get().to(webhooks_deliveries)));
}

// ---- login and the caller ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginRequest)]
pub struct Login {
    /// Compared trimmed and lower-cased.
    email: String,
    password: String,
    /// Organization name or id, to pick among accounts with the same email in several orgs.
    #[serde(default)]
    #[schema(nullable = false)]
    org: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// JWT for the user with all their roles, amr ["pwd"] (an interactive login), aud = the
    /// management audience, client_id tokend-login.
    access_token: String,
    #[schema(schema_with = bearer)]
    token_type: &'static str,
    /// Seconds (TOKEND_ACCESS_TOKEN_TTL, 1800 by default).
    expires_in: i64,
}

fn bearer() -> utoipa::openapi::Object {
    service::doc::one_of(&["Bearer"])
}

/// How many tokens were revoked.
#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    #[schema(minimum = 0)]
    revoked: usize,
}

/// Log in with email and password
///
/// Returns an access token for the user with all their roles and amr ["pwd"] (an interactive login,
/// needed to mint credentials). Unknown email, wrong password, no password and disabled user all answer
/// the same 401. Failed attempts are throttled (429: 5 per account and 30 per client IP within 15
/// minutes).
#[utoipa::path(post, path = "/api/v1/login", tag = "Session", operation_id = "login", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "OK.", body = LoginResponse, headers(("Cache-Control" = String, description = "no-store"), ("Pragma" = String, description = "no-cache"))),
        (status = 401, description = "Invalid email or password."),
        (status = 429, description = "Too many failed logins (5 per account and 30 per client IP within 15 minutes)."),
    ))]
pub async fn login(req: HttpRequest, body: Obj<Login>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let Login { email, password, org } = body.0;
    super::pacing::login_overflow(&st, &email, &ip).await?;
    // Password verification (argon2, tens of ms, bounded in service::principals::passwords) on the
    // blocking pool, holding no database connection while it hashes. The session and audit
    // rows take the writer briefly after.
    let ip2 = ip.clone();
    let s = st.clone();
    let user = blocking(move || -> Result<_, ApiError> {
        let now = s.now();
        Ok(users::login(&s.db, &s.password_gate(), &email, &password, org.as_deref(), &ip2, now)?.user)
    })
    .await?;
    let token = write(&st, move |conn, s, _| sessions::login_token(conn, &s.ctx(&ip), &user)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(LoginResponse { access_token: token, token_type: "Bearer", expires_in: st.cfg.access_token_ttl }))
}

/// End this login
///
/// Revokes the presented login (its session); for an access token that is not a login, that token (by
/// jti).
#[utoipa::path(post, path = "/api/v1/logout", tag = "Session", operation_id = "logout",
    responses(
        (status = 204, description = "Done."),
    ))]
pub async fn logout(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::logout(conn, &c.0, now)).await?;
    no_content()
}

/// Sign out everywhere
///
/// Ends every login and every access token of the caller minted before now. 403 for callers that are
/// not users.
#[utoipa::path(post, path = "/api/v1/me/sessions/revoke", tag = "Session", operation_id = "signOutEverywhere",
    responses(
        (status = 204, description = "Done."),
        (status = 403),
    ))]
pub async fn sign_out_everywhere(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::sign_out_everywhere(conn, &c.0, now)).await?;
    no_content()
}

/// Change own password
///
/// Needs an interactive login. Ends the caller's other logins (this one stays). A wrong current
/// password answers 422 naming current_password, and counts against the login throttle (429).
#[utoipa::path(put, path = "/api/v1/me/password", tag = "Session", operation_id = "changeMyPassword",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Done."),
        (status = 403),
    ))]
// Own password change: the current password is checked and the new one hashed with no
// database connection held; failures count against the login throttle.
pub async fn change_password(
    req: HttpRequest,
    c: Caller,
    body: Obj<sessions::PasswordChange>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (ip, body, s) = (client_ip(&req), body.0, st.clone());
    blocking(move || -> Result<(), ApiError> {
        let gate = s.password_gate();
        Ok(sessions::change_own(&s.db, &gate, &c.0, &body.current_password, &body.new_password, &ip, s.now())?)
    })
    .await?;
    no_content()
}

/// Issue a one-time password reset code
///
/// org:admin holding every role of the person, from an interactive login. Answers a code valid for one
/// hour, shown once; ends the person's logins and voids earlier codes.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "Users", operation_id = "issueResetCode",
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "OK.", body = IssuedCode, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn users_password_reset(
    c: Caller,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let issued = write(&st, move |conn, _, now| sessions::issue_reset_code(conn, &c.0, &id, now)).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(issued))
}

/// Set a password with a reset code
///
/// Anyone holding a valid code. A used, expired or unknown code answers 400, and so does a code whose
/// trust changed since it was issued: the person's roles changed or they were disabled, a newer code
/// was issued, or the issuer is no longer an enabled admin holding every role of the person. Ends every
/// login of the person.
#[utoipa::path(post, path = "/api/v1/password-reset", tag = "Session", operation_id = "redeemResetCode", security(()),
    request_body = Redeem,
    responses(
        (status = 204, description = "Done."),
        (status = 400, description = "The body is not valid JSON, or the code is unknown, expired or already used."),
    ))]
// Anyone holding a reset code sets the password: the code is checked before hashing.
pub async fn redeem_reset(
    req: HttpRequest,
    body: Obj<sessions::Redeem>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (ip, body, s) = (client_ip(&req), body.0, st.clone());
    blocking(move || -> Result<(), ApiError> {
        Ok(sessions::redeem_code(&s.db, &s.hashing, &body.code, &body.new_password, &ip, s.now())?)
    })
    .await?;
    no_content()
}

/// The calling user
///
/// Only people: a service account or app caller gets 403.
#[utoipa::path(get, path = "/api/v1/me", tag = "Session", operation_id = "me",
    responses(
        (status = 200, description = "OK.", body = MeView),
        (status = 403),
    ))]
pub async fn me(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::me(conn, &c.0)).await?)
}

// ---- personal tokens ----

/// List own API tokens
///
/// 403 for callers that are not users. Unknown or repeated query parameters and invalid values are 422.
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "Personal tokens", operation_id = "listMyTokens",
    params(OwnerTokenFilter, PageQuery, TokenSort),
    responses(
        (status = 200, description = "OK.", body = Paged<TokenView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn my_tokens(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| tokens::table::my_list(conn, &c.0, &q, &s.usage, now)).await?)
}

/// Create a personal access token
///
/// The caller needs an access token from an interactive login (POST /api/v1/login; amr has pwd), so a
/// token derived from an API token or app cannot mint credentials (403). roles is required and non-
/// empty. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "Personal tokens", operation_id = "createMyToken",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn my_create(
    c: Caller,
    body: Obj<tokens::CreateToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_create(conn, &s.cfg, &c.0, &body, &s.usage, now)).await?)
}

/// Read an own token
#[utoipa::path(get, path = "/api/v1/me/tokens/{id}", tag = "Personal tokens", operation_id = "getMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn my_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| tokens::my_get(conn, &c.0, &id, &s.usage, now)).await?)
}

/// Rename or re-describe an own token
///
/// 409 for a revoked token.
#[utoipa::path(patch, path = "/api/v1/me/tokens/{id}", tag = "Personal tokens", operation_id = "updateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    request_body = PatchToken,
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn my_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| tokens::my_patch(conn, &s.cfg, &c.0, &id, &body, &s.usage, now)).await?)
}

/// Revoke an own token
///
/// Immediate and idempotent (204 also when already revoked).
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "Personal tokens", operation_id = "revokeMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn my_revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| tokens::my_revoke(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Revoke all own tokens
///
/// Revokes every unrevoked token of the caller; answers how many.
#[utoipa::path(delete, path = "/api/v1/me/tokens", tag = "Personal tokens", operation_id = "revokeAllMyTokens",
    responses(
        (status = 200, description = "OK.", body = RevokedCount),
        (status = 403),
    ))]
pub async fn my_revoke_all(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let n = write(&st, move |conn, _, now| tokens::my_revoke_all(conn, &c.0, now)).await?;
    ok(RevokedCount { revoked: n })
}

/// Rotate an own token
///
/// Revokes the token and creates a new one with the same name, description, roles and lifetime (capped
/// by the current policy); the new secret is in this response only. The caller needs an access token
/// from an interactive login (POST /api/v1/login; amr has pwd), so a token derived from an API token or
/// app cannot mint credentials (403). 409 unless the token is active.
#[utoipa::path(post, path = "/api/v1/me/tokens/{id}/rotate", tag = "Personal tokens", operation_id = "rotateMyToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn my_rotate(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_rotate(conn, &c.0, &id, &s.usage, now)).await?)
}

// ---- people ----

/// List users
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/users", tag = "Users", operation_id = "listUsers",
    params(UserFilter, PageQuery, UserSort),
    responses(
        (status = 200, description = "OK.", body = Paged<UserView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn users_list(
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
#[utoipa::path(post, path = "/api/v1/users", tag = "Users", operation_id = "createUser",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created.", body = UserView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
// Hashes a password being set on the blocking pool, holding no database connection.
pub async fn users_create(
    c: Caller,
    body: Obj<users::NewUser>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| users::create(conn, &c.0, &body, now)).await?)
}

/// Read a user
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "Users", operation_id = "getUser",
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "OK.", body = UserView),
        (status = 403),
        (status = 404),
    ))]
pub async fn users_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::get(conn, &c.0, &id)).await?)
}

/// Change a user
///
/// Requires org:admin. A disabled user's tokens stop working at the next exchange; re-enabling needs an
/// access token from an interactive login (403). A change of roles, or disabling, voids the person's
/// pending reset codes. 409 when it would leave no enabled owner, or (without ?credentials=) when a
/// demotion leaves credentials they created or saw with roles they no longer hold.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "Users", operation_id = "updateUser",
    params(("id" = String, Path, description = "User id."), CredentialsQuery),
    request_body = UserPatch,
    responses(
        (status = 200, description = "OK.", body = UserView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn users_patch(
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
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "Users", operation_id = "deleteUser",
    params(("id" = String, Path, description = "User id."), CredentialsQuery),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 422),
    ))]
pub async fn users_delete(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<users::CredentialsQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let choice = q.choice()?;
    write(&st, move |conn, s, now| users::delete(conn, &c.0, &s.notify.sealer, &id, choice, now)).await?;
    no_content()
}

// ---- roles ----

/// The org's role catalogue
///
/// Any authenticated caller. The whole catalogue in one page: the four built-in roles (strongest
/// first), then the org's roles by name; page is 1 and page_size equals total_count. Not paginated (no
/// query parameters).
#[utoipa::path(get, path = "/api/v1/roles", tag = "Roles", operation_id = "listRoles",
    responses(
        (status = 200, description = "OK.", body = Paged<RoleView>),
    ))]
pub async fn roles_list(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let items = read(&st, move |conn, _, _| roles::list(conn, &c.0)).await?;
    let n = items.len() as i64;
    ok(Paged { items, total_count: n, page: 1, page_size: n })
}

/// Add a service or custom role
///
/// Requires org:admin. 409 if the role exists, or when the org already catalogues 500 service and
/// custom roles (the cap).
#[utoipa::path(post, path = "/api/v1/roles", tag = "Roles", operation_id = "createRole",
    request_body = NewRole,
    responses(
        (status = 201, description = "Created.", body = RoleView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn roles_create(
    c: Caller,
    body: Obj<roles::NewRole>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| roles::create(conn, &c.0, &body, now)).await?)
}

/// Change a role's description
///
/// Requires org:admin. A service or custom role's description (at most 1000 characters); its name
/// stays. 409 for a built-in role, 404 for a role the org does not catalogue.
#[utoipa::path(patch, path = "/api/v1/roles/{name}", tag = "Roles", operation_id = "updateRole",
    params(("name" = String, Path, description = "Role name, e.g. metrics:read.")),
    request_body = RolePatch,
    responses(
        (status = 200, description = "OK.", body = RoleView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn roles_patch(
    c: Caller,
    name: web::Path<String>,
    body: Obj<roles::RolePatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| roles::describe(conn, &c.0, &name, &body, now)).await?)
}

/// Delete a role
///
/// Requires org:admin. 409 for a built-in role or one still granted to a user, service account or app.
/// The role is also removed from API tokens that carry it.
#[utoipa::path(delete, path = "/api/v1/roles/{name}", tag = "Roles", operation_id = "deleteRole",
    params(("name" = String, Path, description = "Role name, e.g. metrics:read.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn roles_delete(c: Caller, name: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| roles::delete(conn, &c.0, &name, now)).await?;
    no_content()
}

// ---- service accounts ----

/// List service accounts
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "Service accounts", operation_id = "listServiceAccounts",
    params(PageQuery, AccountSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AccountView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn sa_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::list(conn, &c.0, &q)).await?)
}

/// Create a service account
///
/// Requires org:admin.
#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "Service accounts", operation_id = "createServiceAccount",
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created.", body = AccountView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn sa_create(
    c: Caller,
    body: Obj<accounts::NewAccount>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| accounts::create(conn, &c.0, &body, now)).await?)
}

/// Read a service account
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}", tag = "Service accounts", operation_id = "getServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    responses(
        (status = 200, description = "OK.", body = AccountView),
        (status = 403),
        (status = 404),
    ))]
pub async fn sa_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::get(conn, &c.0, &id)).await?)
}

/// Change a service account
///
/// Requires org:admin. The caller must hold every role the account holds (403). Enabling needs an
/// interactive login (403) and revokes the account's tokens minted by people who have since left
/// (deleted or disabled).
#[utoipa::path(patch, path = "/api/v1/service-accounts/{id}", tag = "Service accounts", operation_id = "updateServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    request_body = AccountPatch,
    responses(
        (status = 200, description = "OK.", body = AccountView),
        (status = 403),
        (status = 404),
    ))]
pub async fn sa_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<accounts::AccountPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| accounts::patch(conn, &c.0, &id, &body, now)).await?)
}

/// Delete a service account
///
/// Requires org:admin. The caller must hold every role the account holds (403). Soft delete; every
/// token of the account is revoked.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}", tag = "Service accounts", operation_id = "deleteServiceAccount",
    params(("id" = String, Path, description = "Service account id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn sa_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| accounts::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// List a service account's tokens
///
/// Requires org:admin. Unknown or repeated query parameters and invalid values are 422.
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/tokens", tag = "Service accounts", operation_id = "listServiceAccountTokens",
    params(("id" = String, Path, description = "Service account id."), OwnerTokenFilter, PageQuery, TokenSort),
    responses(
        (status = 200, description = "OK.", body = Paged<TokenView>),
        (status = 403),
        (status = 404),
        (status = 422),
    ))]
pub async fn sa_tokens(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| accounts::token_list(conn, &c.0, &id, &q, &s.usage, now)).await?)
}

/// Read one service-account token
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "getServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn sa_token_get(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(read(&st, move |conn, s, now| accounts::token_get(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}

/// Rotate a service-account token
///
/// Requires org:admin, every role the account holds (403) and an access token from an interactive login
/// (POST /api/v1/login; amr has pwd): rotation mints. Revokes the token and creates a new one with the
/// same name, description, roles and lifetime (capped by the current policy) in one transaction; the new
/// secret is in this response only. The token limit does not count the token being replaced, so an
/// account at its limit rotates (409 only when the other live tokens alone reach the limit). 409 unless
/// the token is active. No body.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/tokens/{tid}/rotate", tag = "Service accounts", operation_id = "rotateServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn sa_token_rotate(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    created(write(&st, move |conn, s, now| accounts::token_rotate(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}

/// Create a service-account token
///
/// Requires org:admin. The caller needs an access token from an interactive login (POST /api/v1/login;
/// amr has pwd), so a token derived from an API token or app cannot mint credentials (403). roles may
/// be left out (the token then carries the account's roles); if given, a non-empty subset of them.
/// ttl_days up to the policy's service_token_max_ttl_days. 409 when the account already has
/// max_tokens_per_service_account live tokens (policy, default 20; revoked, expired and idle tokens do
/// not count). The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/tokens", tag = "Service accounts", operation_id = "createServiceAccountToken",
    params(("id" = String, Path, description = "Service account id.")),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn sa_token_create(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::CreateToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(
        write(&st, move |conn, s, now| accounts::token_create(conn, &s.cfg, &c.0, &id, &body, &s.usage, now)).await?,
    )
}

/// Rename or re-describe a service-account token
///
/// Requires org:admin. 409 for a revoked token.
#[utoipa::path(patch, path = "/api/v1/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "updateServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    request_body = PatchToken,
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn sa_token_patch(
    c: Caller,
    path: web::Path<(String, String)>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(write(&st, move |conn, s, now| accounts::token_patch(conn, &s.cfg, &c.0, (&id, &tid), &body, &s.usage, now))
        .await?)
}

/// Revoke a service-account token
///
/// Requires org:admin. Irreversible and idempotent.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}/tokens/{tid}", tag = "Service accounts", operation_id = "revokeServiceAccountToken",
    params(("id" = String, Path, description = "Service account id."), ("tid" = String, Path, description = "API token id (a token of this service account).")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn sa_token_revoke(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    write(&st, move |conn, _, now| accounts::token_revoke(conn, &c.0, &id, &tid, now)).await?;
    no_content()
}

// ---- apps ----

/// List apps
///
/// Requires org:admin or org:developer.
#[utoipa::path(get, path = "/api/v1/apps", tag = "Apps", operation_id = "listApps",
    params(PageQuery, AppSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AppView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn apps_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::list(conn, &c.0, &q)).await?)
}

/// Create an app (OAuth client)
///
/// Requires org:admin or org:developer. The caller needs an access token from an interactive login
/// (POST /api/v1/login; amr has pwd), so a token derived from an API token or app cannot mint
/// credentials (403). The client secret is in this response only.
#[utoipa::path(post, path = "/api/v1/apps", tag = "Apps", operation_id = "createApp",
    request_body = NewApp,
    responses(
        (status = 201, description = "Created.", body = AppWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn apps_create(c: Caller, body: Obj<apps::NewApp>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    // Apps live 300 s to 86400 s; a shorter server default still gives apps a valid one.
    created(write(&st, move |conn, s, now| apps::create(conn, &s.cfg, &c.0, &body, now)).await?)
}

/// Read an app
///
/// Requires org:admin or org:developer.
#[utoipa::path(get, path = "/api/v1/apps/{id}", tag = "Apps", operation_id = "getApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    responses(
        (status = 200, description = "OK.", body = AppView),
        (status = 403),
        (status = 404),
    ))]
pub async fn apps_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::get(conn, &c.0, &id)).await?)
}

/// Change an app
///
/// Requires org:admin or org:developer. The caller must hold every role the app holds (403). Disabling
/// an app with introspect needs org:admin and an interactive login (403). Enabling needs an interactive
/// login (403), and answers 409 while a person who saw its secret has left (deleted or disabled):
/// regenerate the secret first.
#[utoipa::path(patch, path = "/api/v1/apps/{id}", tag = "Apps", operation_id = "updateApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    request_body = AppPatch,
    responses(
        (status = 200, description = "OK.", body = AppView),
        (status = 403),
        (status = 404),
        (status = 409),
    ))]
pub async fn apps_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<apps::AppPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| apps::patch(conn, &s.cfg, &c.0, &id, &body, now)).await?)
}

/// Delete an app
///
/// Requires org:admin or org:developer. The caller must hold every role the app holds (403); an app with
/// introspect needs org:admin and an interactive login (403). Its credentials stop working at once; its access tokens are refused by /api/v1 and introspect inactive
/// (offline verification still accepts them until exp).
#[utoipa::path(delete, path = "/api/v1/apps/{id}", tag = "Apps", operation_id = "deleteApp",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn apps_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| apps::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Regenerate an app's client secret
///
/// Requires org:admin or org:developer (org:admin for an app with introspect). The caller must hold every
/// role the app holds (403). The caller needs an access token from an interactive login (POST /api/v1/login; amr has pwd), so a token
/// derived from an API token or app cannot mint credentials (403). Without a body (or with
/// grace_period_seconds 0) the old secret, and every access token minted with it, stops working when this
/// commits. With grace_period_seconds (at most 604800, 7 days) the old secret and its access tokens keep
/// working until previous_secret_expires_at, then die; a previous secret still in its grace dies at once.
/// The new secret is in this response only.
#[utoipa::path(post, path = "/api/v1/apps/{id}/secret", tag = "Apps", operation_id = "regenerateAppSecret",
    params(("id" = String, Path, description = "App record id (not the client_id).")),
    request_body(content = Option<SecretRotation>, description = "Optional.", content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = AppWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn apps_secret(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let input: apps::SecretRotation = optional_obj(&req, &body)?.unwrap_or_default();
    created(write(&st, move |conn, _, now| apps::regenerate_secret(conn, &c.0, &id, &input, now)).await?)
}

// ---- org-wide token table, policy, saved searches, audit ----

/// Every API token of the organization
///
/// Requires org:admin. Unknown or repeated query parameters and invalid values are 422 (checked before
/// the role).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "Token table", operation_id = "listOrgTokens",
    params(TableFilter, PageQuery, TableSort),
    responses(
        (status = 200, description = "OK.", body = Paged<Row>),
        (status = 403),
        (status = 422),
    ))]
pub async fn table_list(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse(req.query_string())?;
    ok(read(&st, move |conn, s, now| table::list(conn, &c.0, &q, &s.usage, now)).await?)
}

/// Read one API token of the organization
///
/// Requires org:admin. The token table's row: the record plus the owner's name and email. Another
/// organization's token is 404.
#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "Token table", operation_id = "getOrgToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = Row),
        (status = 403),
        (status = 404),
    ))]
pub async fn table_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| table::get(conn, &c.0, &id, &s.usage, now)).await?)
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
#[utoipa::path(post, path = "/api/v1/tokens/self/rotate", tag = "Personal tokens", operation_id = "rotateSelf",
    security(("apiToken" = [])),
    responses(
        (status = 201, description = "Created.", body = CreatedToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "The bearer is missing or not a live API token (an access token is refused too)."),
        (status = 403, description = "The organization's policy does not allow self-rotation."),
        (status = 409),
    ))]
pub async fn self_rotate(req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let secret = super::auth::bearer(&req).map(str::to_string);
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
        return Err(fail(super::auth::bearer(&req), e));
    };
    let (s2, ip2) = (secret.clone(), ip.clone());
    match write(&st, move |conn, s, now| tokens::self_rotate(conn, &s2, &ip2, &s.usage, now)).await {
        Ok(v) => created(v),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(fail(Some(&secret), e)),
        Err(e) => Err(e),
    }
}

/// Revoke any token of the organization
///
/// Requires org:admin. Idempotent; answers the (revoked) token record.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "Token table", operation_id = "adminRevokeToken",
    params(("id" = String, Path, description = "API token id.")),
    responses(
        (status = 200, description = "OK.", body = TokenView),
        (status = 403),
        (status = 404),
    ))]
pub async fn table_revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| table::revoke(conn, &c.0, &id, &s.usage, now)).await?)
}

/// Read the token policy
///
/// Requires org:admin.
#[utoipa::path(get, path = "/api/v1/policy", tag = "Policy", operation_id = "getPolicy",
    responses(
        (status = 200, description = "OK.", body = PolicyView),
        (status = 403),
    ))]
pub async fn policy_get(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policy::read(conn, &c.0)).await?)
}

/// Change the token policy
///
/// Requires org:owner. A change that widens what tokens can do (allow_self_rotation turned on, a longer
/// maximum TTL, a larger max_tokens_per_service_account, a longer or no idle_ttl_days) needs an access
/// token from an interactive login (403); one derived from an API token may only narrow.
#[utoipa::path(put, path = "/api/v1/policy", tag = "Policy", operation_id = "updatePolicy",
    request_body = PolicyUpdate,
    responses(
        (status = 200, description = "OK.", body = PolicyView),
        (status = 403),
    ))]
pub async fn policy_put(
    c: Caller,
    body: Obj<serde_json::Value>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| policy::update(conn, &s.cfg, &c.0, &body, now)).await?)
}

/// List saved searches
///
/// Requires org:admin. Shared by every admin of the org.
#[utoipa::path(get, path = "/api/v1/saved-searches", tag = "Token table", operation_id = "listSavedSearches",
    params(PageQuery, SavedSort),
    responses(
        (status = 200, description = "OK.", body = Paged<SearchView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn saved_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| saved::list(conn, &c.0, &q)).await?)
}

/// Save a token-table query
///
/// Requires org:admin.
#[utoipa::path(post, path = "/api/v1/saved-searches", tag = "Token table", operation_id = "createSavedSearch",
    request_body = NewSearch,
    responses(
        (status = 201, description = "Created.", body = SearchView, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
    ))]
pub async fn saved_create(
    c: Caller,
    body: Obj<saved::NewSearch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| saved::create(conn, &c.0, &body, now)).await?)
}

/// Delete a saved search
///
/// Requires org:admin. Only its creator or an owner (403).
#[utoipa::path(delete, path = "/api/v1/saved-searches/{id}", tag = "Token table", operation_id = "deleteSavedSearch",
    params(("id" = String, Path, description = "Saved search id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn saved_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| saved::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// The audit log
///
/// Requires org:admin. Default order: oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "Audit", operation_id = "listAudit",
    params(AuditFilter, PageQuery, AuditSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AuditView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn audit_list(
    c: Caller,
    f: web::Query<audit::AuditFilter>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let page = q.validate()?;
    ok(read(&st, move |conn, _, _| audit::list(conn, &c.0, &f, &page)).await?)
}

// ---- webhooks ----

/// List the org's webhooks
///
/// Requires org:admin. The signing secret is never listed.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "Webhooks", operation_id = "listWebhooks",
    params(PageQuery, WebhookSort),
    responses(
        (status = 200, description = "OK.", body = Paged<WebhookView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn webhooks_list(
    c: Caller,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::list(conn, &c.0, &q)).await?)
}

/// Create a webhook
///
/// Requires org:admin. At most 20 per org (409). The signing secret is in this response only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "Webhooks", operation_id = "createWebhook",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created, with the signing secret.", body = WebhookWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 409),
    ))]
pub async fn webhooks_create(
    c: Caller,
    body: Obj<webhooks::CreateWebhook>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| webhooks::create(conn, &c.0, &s.notify.sealer, &body, now)).await?)
}

/// Read a webhook
///
/// Requires org:admin; another organization's webhook answers 404.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "getWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 200, description = "OK.", body = WebhookView),
        (status = 403),
        (status = 404),
    ))]
pub async fn webhooks_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::get(conn, &c.0, &id)).await?)
}

/// Change a webhook's URL, events, description or enabled flag
///
/// Requires org:admin; another organization's webhook answers 404.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "patchWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "OK.", body = WebhookView),
        (status = 403),
        (status = 404),
    ))]
pub async fn webhooks_patch(
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
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "Webhooks", operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 204, description = "Done."),
        (status = 403),
        (status = 404),
    ))]
pub async fn webhooks_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| webhooks::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// Roll a webhook's signing secret
///
/// Requires org:admin; another organization's webhook answers 404. The old secret signs nothing from the
/// moment this commits; the new one is in this response only. No body.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/secret", tag = "Webhooks", operation_id = "rollWebhookSecret",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 201, description = "The webhook with its new secret.", body = WebhookWithSecret, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403),
        (status = 404),
    ))]
pub async fn webhooks_secret(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| webhooks::roll_secret(conn, &c.0, &s.notify.sealer, &id, now)).await?)
}

/// Send a test event
///
/// Requires org:admin; another organization's webhook answers 404. Queues a webhook.test event for this
/// webhook only; the worker delivers it like any other (see the delivery log). A disabled webhook answers
/// 409. At most 10 test events per organization a minute (429 with Retry-After beyond). No body.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "Webhooks", operation_id = "testWebhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 202, description = "Queued.", body = TestQueued),
        (status = 403),
        (status = 404),
        (status = 409),
        (status = 429, description = "More than 10 test events of this organization within a minute."),
    ))]
pub async fn webhooks_test(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let queued = write(&st, move |conn, s, now| webhooks::send_test(conn, &c.0, &id, &s.token_throttle, now)).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// A webhook's delivery log
///
/// Requires org:admin; another organization's webhook answers 404. One row per attempt (the last 100 are
/// kept); order=desc for the newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "Webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = String, Path, description = "Webhook id."), PageQuery, DeliverySort),
    responses(
        (status = 200, description = "OK.", body = Paged<DeliveryView>),
        (status = 403),
        (status = 404),
        (status = 422),
    ))]
pub async fn webhooks_deliveries(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| webhooks::deliveries(conn, &c.0, &id, &q)).await?)
}
