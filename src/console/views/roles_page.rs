//! The role catalogue (admins): the built-in organization roles and the org's own service
//! and custom roles with who holds them (named, the first few); create one, change its
//! description, delete one nobody holds (`service::authz::roles`, as `/api/v1/roles`).
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::app::State;
use crate::console::{done, read, render, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::authz::roles::{self, NewRole, RolePatch, RoleView};

const BASE: &str = "/console/roles";

#[derive(Template)]
#[template(path = "roles.html")]
struct Roles {
    chrome: Chrome,
    builtin: Vec<RoleView>,
    own: Vec<OwnRole>,
    name: String,
    kind: String,
    description: String,
    /// A refused change of a description: its error shows in that row, not the new-role form.
    editing: bool,
    errors: FieldErrors,
}

/// One of the org's roles as its row shows it.
struct OwnRole {
    r: RoleView,
    /// How many hold it, and the first few named ("… and N more").
    count: usize,
    held: String,
    /// The description as typed when a change of it was refused.
    editing: Option<String>,
}

async fn show(
    ui: &Ui,
    st: &web::Data<State>,
    form: (String, String, String),
    edit: Option<(String, String)>,
    errors: FieldErrors,
) -> Result<HttpResponse, Fail> {
    ui.p.require(crate::service::Role::OrgAdmin)?;
    let p = ui.p.clone();
    let (all, mut holders) =
        read(st, move |conn, _, _| Ok((roles::list(conn, &p)?, roles::holders(conn, &p)?))).await?;
    let (builtin, own): (Vec<RoleView>, Vec<RoleView>) = all.into_iter().partition(|r| r.kind == "organization");
    let own = own
        .into_iter()
        .map(|r| {
            let h = holders.remove(&r.name).unwrap_or_default();
            let editing = edit.as_ref().filter(|(n, _)| *n == r.name).map(|(_, d)| d.clone());
            OwnRole { count: h.count, held: h.summary(), r, editing }
        })
        .collect();
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (name, kind, description) = form;
    let editing = edit.is_some();
    let v = Roles { chrome: ui.chrome("roles"), builtin, own, name, kind, description, editing, errors };
    Ok(render(status, &v))
}

pub async fn list(ui: Ui, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    show(&ui, &st, (String::new(), "service".into(), String::new()), None, FieldErrors::default()).await
}

pub async fn create(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let kept = (form.get("name").trim().to_string(), form.get("kind").to_string(), form.get("description").to_string());
    let mut errors = FieldErrors::default();
    let Some(description) = errors.text("description", &kept.2) else {
        return show(&ui, &st, kept, None, errors).await;
    };
    let input = NewRole { name: kept.0.clone(), kind: kept.1.clone(), description };
    let p = ui.p.clone();
    match write(&st, move |conn, _, now| roles::create(conn, &p, &input, now)).await {
        Ok(r) => Ok(done(&ui, BASE, format!("Created the role {}.", r.name), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&ui, &st, kept, None, errors).await
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
            show(&ui, &st, (String::new(), "service".into(), String::new()), None, errors).await
        }
    }
}

/// `service::authz::roles::describe`, as `PATCH /api/v1/roles/{name}`.
pub async fn describe(post: Post, name: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let name = name.into_inner();
    let kept = (name.clone(), form.get("description").to_string());
    let mut errors = FieldErrors::default();
    let Some(description) = errors.text("description", &kept.1) else {
        return show(&ui, &st, (String::new(), "service".into(), String::new()), Some(kept), errors).await;
    };
    let input = RolePatch { description };
    let (p, name2) = (ui.p.clone(), name.clone());
    match write(&st, move |conn, _, now| roles::describe(conn, &p, &name2, &input, now)).await {
        Ok(r) => Ok(done(&ui, BASE, format!("Saved the description of {}.", r.name), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&ui, &st, (String::new(), "service".into(), String::new()), Some(kept), errors).await
        }
    }
}
