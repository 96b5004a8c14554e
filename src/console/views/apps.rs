//! Apps (server-to-server clients, `client_credentials`): list, create (client id and
//! secret shown once), edit, regenerate the secret, delete. Every action is a
//! `service::principals::apps` function, the same as `/api/v1/apps`.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::my_tokens::own_roles;
use super::parts::{self, ListQuery, Pager, RoleChoice};
use crate::app::State;
use crate::console::{
    done, page, read, render, show_secret, slots, sudo, write, Chrome, Fail, FieldErrors, Form, Post, Ui,
};
use crate::service::principals::apps::{self, AppPatch, AppView, NewApp};

const BASE: &str = "/console/apps";

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/apps").route(get().to(list)).route(post().to(create)))
        .service(resource("/apps/{id}").route(get().to(show)).route(post().to(edit)))
        .service(resource("/apps/{id}/secret").route(post().to(regenerate)))
        .service(resource("/apps/{id}/delete").route(post().to(delete)));
}

pub struct AppRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub roles: String,
    pub ttl: i64,
    pub disabled: bool,
    pub introspect: bool,
    pub secret_hint: String,
    pub created: String,
    pub updated: String,
}

fn row(a: &AppView) -> AppRow {
    AppRow {
        id: a.id.clone(),
        client_id: a.client_id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        roles: a.roles.join(", "),
        ttl: a.access_token_ttl_seconds,
        disabled: a.disabled,
        introspect: a.introspect,
        secret_hint: a.secret_hint.clone(),
        created: parts::when(&a.created_at),
        updated: parts::when(&a.updated_at),
    }
}

/// The values of the create/edit form, kept when it is shown again with errors.
pub struct AppForm {
    pub name: String,
    pub description: String,
    pub ttl: String,
    pub introspect: bool,
    pub disabled: bool,
    pub roles: Vec<RoleChoice>,
}

fn ttl_field(form: &Form) -> Result<Option<i64>, FieldErrors> {
    let v = form.get("access_token_ttl_seconds").trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>()
        .map(Some)
        .map_err(|_| FieldErrors::field("access_token_ttl_seconds", "enter a whole number of seconds"))
}

#[derive(Template)]
#[template(path = "apps.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AppRow>,
    pager: Pager,
    f: AppForm,
    errors: FieldErrors,
    /// Where a new app's tokens work.
    reach: parts::ReachChoice,
    open: bool,
}

async fn list_page(ui: &Ui, st: &web::Data<State>, page: Option<String>) -> Result<ListPage, Fail> {
    let p = ui.p.clone();
    let (paged, roles, notes) = read(st, move |conn, _, _| {
        let paged = apps::list(conn, &p, &parts::page_query(page.as_deref()))?;
        Ok((paged, own_roles(conn, &p)?, parts::role_notes(conn, &p)?))
    })
    .await?;
    Ok(ListPage {
        chrome: ui.chrome("apps"),
        rows: paged.items.iter().map(row).collect(),
        pager: Pager::new(BASE, &paged),
        f: AppForm {
            name: String::new(),
            description: String::new(),
            ttl: String::new(),
            introspect: false,
            disabled: false,
            roles: parts::noted(parts::role_choices(&roles, &[]), &notes),
        },
        errors: FieldErrors::default(),
        reach: parts::default_reach(&st.cfg),
        open: false,
    })
}

pub async fn list(ui: Ui, q: web::Query<ListQuery>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    page(&list_page(&ui, &st, q.into_inner().page).await?)
}

pub async fn create(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let chosen = form.all("roles");
    let result = match ttl_field(&form) {
        Err(e) => Err(e),
        Ok(ttl) => 'arm: {
            let (name, description) = match FieldErrors::name_and_description(form.get("name"), form.get("description"))
            {
                Ok(v) => v,
                Err(errors) => break 'arm Err(errors),
            };
            let input = NewApp {
                name,
                description: Some(description),
                roles: chosen.clone(),
                access_token_ttl_seconds: ttl,
                introspect: form.opt("introspect").is_some(),
                audiences: parts::reach_from_form(&form).0,
                management: parts::reach_from_form(&form).1,
            };
            let p = ui.p.clone();
            let created = write(&st, move |conn, s, now| apps::create(conn, &s.cfg, &p, &input, now)).await;
            match created {
                Ok(c) => Ok(c),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(c) => {
            let title = format!("App “{}” created", c.app.name);
            Ok(show_secret(&ui, app_secret(&st.cfg, title, c)))
        }
        Err(errors) => {
            let mut v = list_page(&ui, &st, None).await?;
            let kept = parts::recheck(std::mem::take(&mut v.f.roles), &chosen);
            v.f = AppForm {
                name: form.get("name").to_string(),
                description: form.get("description").to_string(),
                ttl: form.get("access_token_ttl_seconds").to_string(),
                introspect: form.opt("introspect").is_some(),
                disabled: false,
                roles: kept,
            };
            let (audiences, management) = parts::reach_from_form(&form);
            v.reach = parts::reach_choice(&st.cfg, audiences.as_deref(), management);
            v.errors = errors;
            v.open = true;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

#[derive(Template)]
#[template(path = "app.html")]
struct ShowPage {
    chrome: Chrome,
    a: AppRow,
    f: AppForm,
    errors: FieldErrors,
}

async fn show_page(ui: &Ui, st: &web::Data<State>, id: String) -> Result<ShowPage, Fail> {
    let p = ui.p.clone();
    let (a, own, notes) =
        read(st, move |conn, _, _| Ok((apps::get(conn, &p, &id)?, own_roles(conn, &p)?, parts::role_notes(conn, &p)?)))
            .await?;
    let mut pickable = own;
    pickable.extend(a.roles.iter().filter(|r| !pickable.contains(r)).cloned().collect::<Vec<_>>());
    Ok(ShowPage {
        chrome: ui.chrome("apps"),
        f: AppForm {
            name: a.name.clone(),
            description: a.description.clone(),
            ttl: a.access_token_ttl_seconds.to_string(),
            introspect: a.introspect,
            disabled: a.disabled,
            roles: parts::noted(parts::role_choices(&pickable, &a.roles), &notes),
        },
        a: row(&a),
        errors: FieldErrors::default(),
    })
}

pub async fn show(ui: Ui, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    page(&show_page(&ui, &st, id.into_inner()).await?)
}

pub async fn edit(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let id = id.into_inner();
    let chosen = form.all("roles");
    let result = match ttl_field(&form) {
        Err(e) => Err(e),
        Ok(ttl) => 'arm: {
            let (name, description) = match FieldErrors::name_and_description(form.get("name"), form.get("description"))
            {
                Ok(v) => v,
                Err(errors) => break 'arm Err(errors),
            };
            let input = AppPatch {
                name: Some(name),
                description: Some(description),
                roles: Some(chosen.clone()),
                access_token_ttl_seconds: ttl,
                disabled: Some(form.opt("disabled").is_some()),
                introspect: Some(form.opt("introspect").is_some()),
                // Reach is edited through the API for now; the page's form leaves it alone.
                audiences: None,
                management: None,
            };
            let (p, id2) = (ui.p.clone(), id.clone());
            match write(&st, move |conn, s, now| apps::patch(conn, &s.cfg, &p, &id2, &input, now)).await {
                Ok(_) => Ok(()),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(()) => Ok(done(&ui, &format!("{BASE}/{id}"), format!("Saved “{}”.", form.get("name")), None)),
        Err(errors) => {
            let mut v = show_page(&ui, &st, id).await?;
            let kept = parts::recheck(std::mem::take(&mut v.f.roles), &chosen);
            v.f = AppForm {
                name: form.get("name").to_string(),
                description: form.get("description").to_string(),
                ttl: form.get("access_token_ttl_seconds").to_string(),
                introspect: form.opt("introspect").is_some(),
                disabled: form.opt("disabled").is_some(),
                roles: kept,
            };
            v.errors = errors;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

pub async fn regenerate(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    // Those who may not regenerate meet the service's refusal, not a prompt.
    if post.ui.p.has(crate::service::Role::OrgDeveloper) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "regenerate a client secret").await? {
            return Ok(prompt);
        }
    }
    // The grace period chosen in the form (absent: none, as the API's default).
    let grace = post.form.get("grace_period_seconds").trim().parse::<i64>().ok();
    let rotation = apps::SecretRotation { grace_period_seconds: grace };
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let c = write(&st, move |conn, _, now| apps::regenerate_secret(conn, &p, &id, &rotation, now)).await?;
    let title = format!("New secret for “{}”", c.app.name);
    Ok(show_secret(&ui, app_secret(&st.cfg, title, c)))
}

/// The secret page of a new app or a regenerated secret.
fn app_secret(cfg: &crate::config::Config, title: String, c: apps::AppWithSecret) -> slots::ShownSecret {
    slots::ShownSecret {
        nav: "apps",
        title,
        what: "client secret",
        usage: parts::usage_snippets(cfg, &c.app.client_id, false),
        facts: vec![("Roles", c.app.roles.join(", "))],
        back: format!("{BASE}/{}", c.app.id),
        extra: Some(("Client id", c.app.client_id)),
        secret: c.client_secret,
    }
}

pub async fn delete(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let name = write(&st, move |conn, _, now| {
        let name = apps::get(conn, &p, &id)?.name;
        apps::delete(conn, &p, &id, now).map(|_| name)
    })
    .await?;
    Ok(done(&ui, BASE, format!("Deleted the app “{name}”."), None))
}
