//! The role catalogue (admins): the built-in organization roles and the org's own service
//! and custom roles; create one, delete one nobody holds (`service::authz::roles`, as
//! `/api/v1/roles`).
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::app::State;
use crate::console::{done, read, render, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::authz::roles::{self, NewRole, RoleView};

const BASE: &str = "/console/roles";

#[derive(Template)]
#[template(path = "roles.html")]
struct Roles {
    chrome: Chrome,
    builtin: Vec<RoleView>,
    own: Vec<RoleView>,
    name: String,
    kind: String,
    description: String,
    errors: FieldErrors,
}

async fn show(
    ui: &Ui,
    st: &web::Data<State>,
    form: (String, String, String),
    errors: FieldErrors,
) -> Result<HttpResponse, Fail> {
    ui.p.require(crate::service::Role::OrgAdmin)?;
    let p = ui.p.clone();
    let all = read(st, move |conn, _, _| roles::list(conn, &p)).await?;
    let (builtin, own): (Vec<RoleView>, Vec<RoleView>) = all.into_iter().partition(|r| r.kind == "organization");
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (name, kind, description) = form;
    Ok(render(status, &Roles { chrome: ui.chrome("roles"), builtin, own, name, kind, description, errors }))
}

pub async fn list(ui: Ui, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    show(&ui, &st, (String::new(), "service".into(), String::new()), FieldErrors::default()).await
}

pub async fn create(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let kept = (form.get("name").trim().to_string(), form.get("kind").to_string(), form.get("description").to_string());
    let mut errors = FieldErrors::default();
    let Some(description) = errors.text("description", &kept.2) else {
        return show(&ui, &st, kept, errors).await;
    };
    let input = NewRole { name: kept.0.clone(), kind: kept.1.clone(), description };
    let p = ui.p.clone();
    match write(&st, move |conn, _, now| roles::create(conn, &p, &input, now)).await {
        Ok(r) => Ok(done(&ui, BASE, format!("Created the role {}.", r.name), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&ui, &st, kept, errors).await
        }
    }
}

pub async fn delete(post: Post, name: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let (p, name) = (ui.p.clone(), name.into_inner());
    let name2 = name.clone();
    match write(&st, move |conn, _, now| roles::delete(conn, &p, &name2, now)).await {
        Ok(()) => Ok(done(&ui, BASE, format!("Deleted the role {name}."), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&ui, &st, (String::new(), "service".into(), String::new()), errors).await
        }
    }
}
