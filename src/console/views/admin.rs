//! The admin pages (org token table, saved searches, people and roles, policy, audit).
//! Reserved here: `/console/tokens` answers its 403 page to anyone without org:admin and a
//! placeholder to admins, until the admin pages fill it.
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::console::{page, Chrome, Fail, Ui};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tokens").route(web::get().to(org_tokens)));
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
}

async fn org_tokens(ui: Ui) -> Result<HttpResponse, Fail> {
    ui.p.require("org:admin")?;
    page(&AdminPage { chrome: ui.chrome("admin") })
}
