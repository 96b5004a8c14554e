//! The "sudo" window: sensitive console actions (tokens with org:admin or org:owner,
//! reset codes, granting roles, regenerating secrets, policy changes) need the password
//! entered within the last few minutes (`slots::SUDO_TTL`; signing in counts). Without
//! it the action answers a password prompt whose form posts the same action again, with
//! the original fields kept hidden and the password added; a right password opens the
//! window and the action goes on in that same request.
//!
//! The API's rule (an interactive login for these actions) is unchanged: this is the
//! console's own, because its session lives 12 hours.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::{read, render, Chrome, Fail, FieldErrors, Post};
use crate::app::{blocking, State};
use crate::http::auth::client_ip;
use crate::service::{self, principals::users};

/// The form field carrying the password typed at the prompt.
pub const FIELD: &str = "sudo_password";

/// Roles whose tokens count as sensitive.
pub fn is_high(roles: &[String]) -> bool {
    use service::Role;
    roles.iter().any(|r| Role::parse(r).is_some_and(|r| r <= Role::OrgAdmin))
}

#[derive(Template)]
#[template(path = "sudo.html")]
struct Prompt {
    chrome: Chrome,
    action: String,
    what: String,
    kept: Vec<(String, String)>,
    errors: FieldErrors,
}

/// `Ok(None)`: go on (the window is open, or the password just given is right).
/// `Ok(Some(page))`: answer the prompt (first time, or a wrong password).
pub async fn check(
    post: &Post,
    req: &HttpRequest,
    st: &web::Data<State>,
    what: &str,
) -> Result<Option<HttpResponse>, Fail> {
    let ui = &post.ui;
    if ui.slots.has_sudo(&ui.sid, ui.now) {
        return Ok(None);
    }
    let errors = match post.form.opt(FIELD) {
        None => FieldErrors::default(),
        Some(password) => match verify(post, req, st, password.to_string()).await? {
            Ok(()) => {
                ui.slots.grant_sudo(&ui.sid, ui.now);
                return Ok(None);
            }
            Err(errors) => errors,
        },
    };
    let kept = post.form.0.iter().filter(|(k, _)| k != FIELD && k != super::csrf::FIELD).cloned().collect();
    let page = Prompt { chrome: ui.chrome(""), action: req.path().to_string(), what: what.to_string(), kept, errors };
    Ok(Some(render(StatusCode::UNAUTHORIZED, &page)))
}

/// An admin-only sensitive action's opening: `org:admin` (the 403 page for anyone else),
/// then [`check`]. `Ok(Some(page))`: answer the prompt.
pub async fn admin(
    post: &Post,
    req: &HttpRequest,
    st: &web::Data<State>,
    what: &str,
) -> Result<Option<HttpResponse>, Fail> {
    post.ui.p.require(service::Role::OrgAdmin)?;
    check(post, req, st, what).await
}

/// The caller's password, through the same throttle as a login.
async fn verify(
    post: &Post,
    req: &HttpRequest,
    st: &web::Data<State>,
    password: String,
) -> Result<Result<(), FieldErrors>, Fail> {
    let p = post.ui.p.clone();
    let (org, id) = (p.org_id.clone(), p.user_id()?.to_string());
    let user = read(st, move |conn, _, _| users::load(conn, &org, &id)).await?;
    let (ip, s) = (client_ip(req), st.clone());
    let ok = blocking(move || -> service::Result<bool> {
        users::check_current_password(&s.password_gate(), &user, &password, &ip, s.now())
    })
    .await;
    match ok {
        Ok(true) => Ok(Ok(())),
        Ok(false) => Ok(Err(FieldErrors::field(FIELD, "that is not your password"))),
        Err(e) => Ok(Err(FieldErrors::from_error(e)?)),
    }
}
