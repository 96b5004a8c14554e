//! Sign in, sign out, and redeeming a password reset code: the pages used without a
//! session. Their forms carry a pre-session CSRF token derived from a random
//! `tokend_console_pre` cookie set with the form.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{blocking, State};
use crate::console::session::{self, set_cookie, PRE_COOKIE};
use crate::console::{csrf, render_into, see_other, write, Chrome, Fail, FieldErrors, Form, Post};
use crate::http::auth::client_ip;
use crate::secrets;
use crate::service::{self, principals::sessions, principals::users};

/// Where a signed-in person lands.
pub const HOME: &str = "/console/me/tokens";

/// `/console`: the home page when signed in, else the sign-in page.
pub async fn home(req: HttpRequest) -> HttpResponse {
    match session::caller(&req).await {
        Ok(_) => see_other(HOME),
        Err(_) => see_other("/console/sign-in"),
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn {
    chrome: Chrome,
    email: String,
    org: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    done: Option<String>,
}

/// A signed-out page with a fresh pre-session cookie; `chrome.csrf` is its token.
pub fn pre_session<T: Template>(st: &State, status: StatusCode, make: impl FnOnce(Chrome) -> T) -> HttpResponse {
    let pre = session::new_secret();
    let chrome = Chrome { csrf: csrf::token(&pre), ..Chrome::signed_out() };
    let mut b = HttpResponse::build(status);
    set_cookie(&mut b, st, PRE_COOKIE, &pre, 3600);
    render_into(b, &make(chrome))
}

/// The pre-session check of a signed-out form: the cookie's token must be in the form.
pub fn pre_session_ok(req: &HttpRequest, form: &Form) -> bool {
    session::cookie(req, PRE_COOKIE).is_some_and(|pre| csrf::matches(&csrf::token(&pre), form.opt(csrf::FIELD)))
}

pub async fn form(req: HttpRequest, q: web::Query<SignInQuery>, st: web::Data<State>) -> HttpResponse {
    if session::caller(&req).await.is_ok() {
        return see_other(HOME);
    }
    let notice = match q.done.as_deref() {
        Some("signed-out") => Some("You are signed out."),
        Some("password-set") => Some("Your new password is set. Sign in with it."),
        _ => None,
    };
    pre_session(&st, StatusCode::OK, |chrome| SignIn {
        chrome,
        email: String::new(),
        org: String::new(),
        errors: FieldErrors::default(),
        notice,
    })
}

/// The same password check as `POST /api/v1/login` (the `PasswordGate`: throttle and
/// bounded hashing, one answer for unknown email and wrong password), then a session.
pub async fn submit(req: HttpRequest, body: web::Bytes, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let form = Form::parse(&body);
    let (email, password, org) =
        (form.get("email").to_string(), form.get("password").to_string(), form.get("org").trim().to_string());
    let again = |status, errors: FieldErrors| {
        let (email, org) = (email.clone(), org.clone());
        Ok(pre_session(&st, status, |chrome| SignIn { chrome, email, org, errors, notice: None }))
    };
    if !pre_session_ok(&req, &form) {
        return again(
            StatusCode::FORBIDDEN,
            FieldErrors::form("This sign-in form expired or was not sent from this page. Please try again"),
        );
    }
    if email.trim().is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("email", "enter your email address"));
    }
    if password.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("password", "enter your password"));
    }
    let ip = client_ip(&req);
    crate::http::pacing::login_overflow(&st, &email, &ip).await.map_err(Fail::from)?;
    let s = st.clone();
    let (e2, o2, ip2) = (email.clone(), org.clone(), ip.clone());
    let checked = blocking(move || -> service::Result<_> {
        let org = (!o2.is_empty()).then_some(o2.as_str());
        Ok(users::login(&s.db, &s.password_gate(), &e2, &password, org, &ip2, s.now())?.user)
    })
    .await;
    let user = match checked {
        Ok(u) => u,
        Err(service::Error::Unauthorized(_)) => {
            return again(StatusCode::UNAUTHORIZED, FieldErrors::form("The email or password is not correct"))
        }
        Err(e) => {
            let status = match &e {
                service::Error::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            return again(status, FieldErrors::from_error(e)?);
        }
    };
    let secret = session::new_secret();
    let hash = secrets::hash(&secret);
    // Signing in is a fresh password: sensitive actions need no prompt for a few minutes.
    if let Some(slots) = req.app_data::<web::Data<crate::console::slots::Slots>>() {
        slots.grant_sudo(&hash, st.now());
    }
    // The session this browser had (if any) ends: a sign-in never leaves two behind.
    let replaced = session::cookie(&req, session::COOKIE).map(|old| secrets::hash(&old));
    write(&st, move |conn, _, now| {
        if let Some(old) = &replaced {
            sessions::end_console(conn, old, now)?;
        }
        sessions::start_console(conn, &user, &hash, session::TTL, &ip, now)
    })
    .await?;
    let mut b = HttpResponse::SeeOther();
    b.insert_header((actix_web::http::header::LOCATION, HOME));
    set_cookie(&mut b, &st, session::COOKIE, &secret, session::TTL);
    set_cookie(&mut b, &st, PRE_COOKIE, "", 0);
    Ok(b.finish())
}

/// Ends the session (its row is revoked, the cookie deleted).
pub async fn sign_out(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    post.ui.slots.forget(&post.ui.sid);
    let p = post.ui.p;
    write(&st, move |conn, _, now| sessions::logout(conn, &p, now)).await?;
    let mut b = HttpResponse::SeeOther();
    b.insert_header((actix_web::http::header::LOCATION, "/console/sign-in?done=signed-out"));
    set_cookie(&mut b, &st, session::COOKIE, "", 0);
    Ok(b.finish())
}
