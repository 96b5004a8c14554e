//! Login, logout, one's own password and sessions, reset-code redemption, `GET /me`.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{no_content, ok, read, write, Obj};
use crate::app::{blocking, State};
use crate::error::ApiError;
use crate::http::auth::{client_ip, Caller};
use crate::service::principals::{sessions, users};
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::principals::{
    sessions::{PasswordChange, Redeem},
    users::MeView,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::post().to(login)))
        .service(web::resource("/logout").route(web::post().to(logout)))
        .service(web::resource("/password-reset").route(web::post().to(redeem_reset)))
        .service(web::resource("/me").route(web::get().to(me)))
        .service(web::resource("/me/password").route(web::put().to(change_password)))
        .service(web::resource("/me/sessions/revoke").route(web::post().to(sign_out_everywhere)));
}

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
    crate::service::one_of(&["Bearer"])
}

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(login, logout, redeem_reset, me, change_password, sign_out_everywhere))]
pub struct Doc;

/// Log in with email and password
///
/// Returns an access token for the user with all their roles and amr ["pwd"] (an interactive login,
/// needed to mint credentials). Unknown email, wrong password, no password and disabled user all answer
/// the same 401. Failed attempts are throttled (429: 5 per account and 30 per client IP within 15
/// minutes).
#[utoipa::path(post, path = "/login", tag = "Session", operation_id = "login", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "OK.", body = LoginResponse, headers(("Cache-Control" = String, description = "no-store"), ("Pragma" = String, description = "no-cache"))),
        (status = 401, description = "Invalid email or password."),
        (status = 429, description = "Too many failed logins (5 per account and 30 per client IP within 15 minutes)."),
    ))]
pub async fn login(req: HttpRequest, body: Obj<Login>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let Login { email, password, org } = body.0;
    crate::http::pacing::login_overflow(&st, &email, &ip).await?;
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
#[utoipa::path(post, path = "/logout", tag = "Session", operation_id = "logout",
    responses(
        (status = 204, description = "Done."),
    ))]
pub async fn logout(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::logout(conn, &c.0, now)).await?;
    no_content()
}

/// Set a password with a reset code
///
/// Anyone holding a valid code. A used, expired or unknown code answers 400, and so does a code whose
/// trust changed since it was issued: the person's roles changed or they were disabled, a newer code
/// was issued, or the issuer is no longer an enabled admin holding every role of the person. Ends every
/// login of the person.
#[utoipa::path(post, path = "/password-reset", tag = "Session", operation_id = "redeemResetCode", security(()),
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
#[utoipa::path(get, path = "/me", tag = "Session", operation_id = "me",
    responses(
        (status = 200, description = "OK.", body = MeView),
        (status = 403),
    ))]
pub async fn me(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::me(conn, &c.0)).await?)
}

/// Change own password
///
/// Needs an interactive login. Ends the caller's other logins (this one stays). A wrong current
/// password answers 422 naming current_password, and counts against the login throttle (429).
#[utoipa::path(put, path = "/me/password", tag = "Session", operation_id = "changeMyPassword",
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

/// Sign out everywhere
///
/// Ends every login and every access token of the caller minted before now. 403 for callers that are
/// not users.
#[utoipa::path(post, path = "/me/sessions/revoke", tag = "Session", operation_id = "signOutEverywhere",
    responses(
        (status = 204, description = "Done."),
        (status = 403),
    ))]
pub async fn sign_out_everywhere(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::sign_out_everywhere(conn, &c.0, now)).await?;
    no_content()
}
