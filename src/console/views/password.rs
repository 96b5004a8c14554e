//! Changing one's own password (signed in) and redeeming a reset code (signed out): the
//! same checks as `PUT /api/v1/me/password` and `POST /api/v1/password-reset`. A change
//! ends the person's other logins (this console session carries over); a reset ends all.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::signin::{pre_session, pre_session_ok};
use crate::app::{blocking, State};
use crate::console::{page, render, see_other, write, Chrome, Fail, FieldErrors, Form, Post, Ui};
use crate::http::auth::client_ip;
use crate::service::{self, principals::sessions, principals::users};

#[derive(Template)]
#[template(path = "password.html")]
struct ChangePage {
    chrome: Chrome,
    errors: FieldErrors,
    done: bool,
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn form(ui: Ui, q: web::Query<DoneQuery>) -> Result<HttpResponse, Fail> {
    page(&ChangePage { chrome: ui.chrome("password"), errors: FieldErrors::default(), done: q.done.is_some() })
}

/// The new password twice, the same length rule as the API.
fn check_new(form: &Form) -> Result<String, FieldErrors> {
    let new = form.get("new_password");
    if users::check_password(new).is_err() {
        return Err(FieldErrors::field("new_password", "must be 8 to 1024 characters"));
    }
    if form.get("confirm_password") != new {
        return Err(FieldErrors::field("confirm_password", "does not match the new password"));
    }
    Ok(new.to_string())
}

pub async fn change(req: HttpRequest, post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let again = |errors| {
        Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &ChangePage { chrome: ui.chrome("password"), errors, done: false }))
    };
    let new = match check_new(&form) {
        Ok(n) => n,
        Err(e) => return again(e),
    };
    let (p, ip, current, s) = (ui.p.clone(), client_ip(&req), form.get("current_password").to_string(), st.clone());
    let changed = blocking(move || {
        let gate = s.password_gate();
        sessions::change_own(&s.db, &gate, &p, &current, &new, &ip, s.now())
    })
    .await;
    match changed {
        Ok(()) => Ok(see_other("/console/me/password?done=1")),
        Err(e) => again(FieldErrors::from_error(e)?),
    }
}

/// "Sign out everywhere": every login and access token of the person ends, this console
/// session too (`service::principals::sessions::sign_out_everywhere`, as `POST /api/v1/me/sessions/revoke`).
pub async fn sign_out_everywhere(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let p = post.ui.p;
    write(&st, move |conn, _, now| sessions::sign_out_everywhere(conn, &p, now)).await?;
    let mut b = HttpResponse::SeeOther();
    b.insert_header((actix_web::http::header::LOCATION, "/console/sign-in?done=signed-out"));
    crate::console::session::set_cookie(&mut b, &st, crate::console::session::COOKIE, "", 0);
    Ok(b.finish())
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage {
    chrome: Chrome,
    errors: FieldErrors,
}

pub async fn reset_form(st: web::Data<State>) -> HttpResponse {
    pre_session(&st, StatusCode::OK, |chrome| ResetPage { chrome, errors: FieldErrors::default() })
}

/// Redeems a reset code: the code is checked before any hashing; every login of the
/// person ends; then the sign-in page.
pub async fn reset(req: HttpRequest, body: web::Bytes, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let form = Form::parse(&body);
    let again = |status, errors| Ok(pre_session(&st, status, |chrome| ResetPage { chrome, errors }));
    if !pre_session_ok(&req, &form) {
        return again(
            StatusCode::FORBIDDEN,
            FieldErrors::form("This form expired or was not sent from this page. Please try again"),
        );
    }
    let new = match check_new(&form) {
        Ok(n) => n,
        Err(e) => return again(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let (code, ip, s) = (form.get("code").to_string(), client_ip(&req), st.clone());
    let redeemed = blocking(move || sessions::redeem_code(&s.db, &s.hashing, &code, &new, &ip, s.now())).await;
    match redeemed {
        Ok(()) => Ok(see_other("/console/sign-in?done=password-set")),
        // A used, expired or unknown code: said at the code field.
        Err(service::Error::BadRequest(m)) => again(StatusCode::BAD_REQUEST, FieldErrors::field("code", &m)),
        Err(e) => again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from_error(e)?),
    }
}
