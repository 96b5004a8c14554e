//! The page that shows a new secret once (`/console/secret/{slot}`): the action's POST put
//! it in a slot of this session (`console::show_secret`) and answered 303 here; this GET
//! takes it out. A reload finds the slot empty and says so: nothing is created again and
//! the secret is not shown again.
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::console::{page, render, slots, Chrome, Fail, Ui};

#[derive(Template)]
#[template(path = "secret.html")]
pub struct Secret {
    pub chrome: Chrome,
    /// What the POST that made it put in the session's slot.
    pub page: slots::ShownSecret,
}

#[derive(Template)]
#[template(path = "secret_gone.html")]
struct Gone {
    chrome: Chrome,
}

pub async fn show(ui: Ui, slot: web::Path<String>) -> Result<HttpResponse, Fail> {
    match ui.slots.take_secret(&ui.sid, &slot, ui.now) {
        Some(s) => page(&Secret { chrome: ui.chrome(s.nav), page: s }),
        None => Ok(render(StatusCode::GONE, &Gone { chrome: ui.chrome("") })),
    }
}

/// The secret page of a new or rotated API token: its client id, expiry, roles and how to
/// use it.
pub fn token(
    cfg: &crate::config::Config,
    nav: &'static str,
    title: String,
    c: crate::service::tokens::CreatedToken,
    back: String,
) -> slots::ShownSecret {
    slots::ShownSecret {
        nav,
        title,
        what: "token",
        usage: super::parts::usage_snippets(cfg, &c.record.client_id, true),
        facts: vec![("Expires", super::parts::when(&c.record.expires_at)), ("Roles", c.record.roles.join(", "))],
        extra: Some(("Client id", c.record.client_id)),
        secret: c.token,
        back,
    }
}
