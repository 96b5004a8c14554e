//! Service accounts: list and create; one account's page with its roles (editable) and
//! its tokens (the live count against the org's limit, create/rotate/revoke). Every
//! action is a `service::principals::accounts` function, the same as `/api/v1/service-accounts`.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::my_tokens::own_roles;
use super::parts::{self, ListQuery, Pager, RoleChoice, TokenRow};
use super::secret;
use crate::app::State;
use crate::console::{done, page, read, render, show_secret, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::list::Paged;
use crate::service::principals::accounts::{self, AccountPatch, AccountView, NewAccount};
use crate::service::tokens::{CreateToken, TokenView};
use crate::service::{self, org::policy};

const BASE: &str = "/console/service-accounts";

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/service-accounts").route(get().to(list)).route(post().to(create)))
        .service(resource("/service-accounts/{id}").route(get().to(show)).route(post().to(edit)))
        .service(resource("/service-accounts/{id}/details").route(post().to(details)))
        .service(resource("/service-accounts/{id}/delete").route(post().to(delete)))
        .service(resource("/service-accounts/{id}/tokens").route(post().to(token_create)))
        .service(resource("/service-accounts/{id}/tokens/{tid}/rotate").route(post().to(token_rotate)))
        .service(resource("/service-accounts/{id}/tokens/{tid}/revoke").route(post().to(token_revoke)));
}

pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub roles: String,
    pub created: String,
    pub disabled: bool,
}

fn row(a: &AccountView) -> AccountRow {
    AccountRow {
        id: a.id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        roles: a.roles.join(", "),
        created: parts::when(&a.created_at),
        disabled: a.disabled,
    }
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AccountRow>,
    pager: Pager,
    roles: Vec<RoleChoice>,
    name: String,
    description: String,
    errors: FieldErrors,
    open: bool,
}

async fn list_page(ui: &Ui, st: &web::Data<State>, page: Option<String>) -> Result<ListPage, Fail> {
    let p = ui.p.clone();
    let (paged, roles, notes) = read(st, move |conn, _, _| {
        let paged = accounts::list(conn, &p, &parts::page_query(page.as_deref()))?;
        Ok((paged, own_roles(conn, &p)?, parts::role_notes(conn, &p)?))
    })
    .await?;
    Ok(ListPage {
        chrome: ui.chrome("service-accounts"),
        rows: paged.items.iter().map(row).collect(),
        pager: Pager::new(BASE, &paged),
        roles: parts::noted(parts::role_choices(&roles, &[]), &notes),
        name: String::new(),
        description: String::new(),
        errors: FieldErrors::default(),
        open: false,
    })
}

pub async fn list(ui: Ui, q: web::Query<ListQuery>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    page(&list_page(&ui, &st, q.into_inner().page).await?)
}

pub async fn create(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let (name, description, chosen) =
        (form.get("name").to_string(), form.get("description").to_string(), form.all("roles"));
    // Every error of the form at once; an account needs at least one role.
    let mut errors = FieldErrors::default();
    let text = (errors.text("name", &name), errors.text("description", &description));
    if chosen.is_empty() {
        errors
            .fields
            .push(("roles".into(), "Choose at least one role: a service account without roles can do nothing.".into()));
    }
    let p = ui.p.clone();
    let result = match text {
        (Some(name), Some(description)) if !errors.any() => {
            let input = NewAccount { name, description: Some(description), roles: chosen.clone() };
            match write(&st, move |conn, _, now| accounts::create(conn, &p, &input, now)).await {
                Ok(a) => Ok(a),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
        _ => Err(errors),
    };
    match result {
        Ok(a) => Ok(done(&ui, &format!("{BASE}/{}", a.id), format!("Created the service account “{}”.", a.name), None)),
        Err(errors) => {
            let mut v = list_page(&ui, &st, None).await?;
            v.roles = parts::recheck(std::mem::take(&mut v.roles), &chosen);
            let v = ListPage { name, description, errors, open: true, ..v };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct ShowPage {
    chrome: Chrome,
    a: AccountRow,
    /// The details form (name, description) as submitted, and its errors.
    name: String,
    description: String,
    details_errors: FieldErrors,
    /// Roles to pick for the account: the caller's own and the account's.
    role_choices: Vec<RoleChoice>,
    /// Roles to pick for a new token: the account's.
    token_roles: Vec<RoleChoice>,
    rows: Vec<TokenRow>,
    pager: Pager,
    live: i64,
    limit: i64,
    max_days: i64,
    errors: FieldErrors,
    token_errors: FieldErrors,
    token_name: String,
    token_description: String,
    ttl_days: String,
    /// Presets, date range and preview of the expiry.
    expiry: parts::Expiry,
    /// Where a new token works.
    reach: parts::ReachChoice,
    open: bool,
}

struct Loaded {
    a: AccountView,
    tokens: Paged<TokenView>,
    live: i64,
    limit: i64,
    max_days: i64,
    own: Vec<String>,
    notes: parts::Notes,
    reach: parts::ReachChoice,
}

async fn load(ui: &Ui, st: &web::Data<State>, id: String, page: Option<String>) -> Result<Loaded, Fail> {
    let p = ui.p.clone();
    Ok(read(st, move |conn, s, now| {
        let a = accounts::get(conn, &p, &id)?;
        let tokens = accounts::token_list(conn, &p, &id, &parts::token_query(page.as_deref())?, &s.usage, now)?;
        let (live, limit) = accounts::token_limit(conn, &p, &id, now)?;
        let max_days = policy::get(conn, &p.org_id)?.service_token_max_ttl_days;
        let reach = parts::default_reach(&s.cfg);
        let notes = parts::role_notes(conn, &p)?;
        Ok(Loaded { a, tokens, live, limit, max_days, own: own_roles(conn, &p)?, notes, reach })
    })
    .await?)
}

fn show_page(ui: &Ui, l: Loaded) -> ShowPage {
    let mut pickable = l.own.clone();
    pickable.extend(l.a.roles.iter().filter(|r| !l.own.contains(r)).cloned());
    ShowPage {
        chrome: ui.chrome("service-accounts"),
        name: l.a.name.clone(),
        description: l.a.description.clone(),
        details_errors: FieldErrors::default(),
        role_choices: parts::noted(parts::role_choices(&pickable, &l.a.roles), &l.notes),
        token_roles: parts::noted(parts::role_choices(&l.a.roles, &l.a.roles), &l.notes),
        rows: l.tokens.items.iter().map(|t| TokenRow::new(t, ui.now)).collect(),
        pager: Pager::new(&format!("{BASE}/{}", l.a.id), &l.tokens),
        live: l.live,
        limit: l.limit,
        max_days: l.max_days,
        a: row(&l.a),
        errors: FieldErrors::default(),
        token_errors: FieldErrors::default(),
        token_name: String::new(),
        token_description: String::new(),
        ttl_days: l.max_days.min(30).to_string(),
        expiry: parts::Expiry::new(l.max_days, ui.now, &l.max_days.min(30).to_string(), ""),
        reach: l.reach,
        open: false,
    }
}

pub async fn show(
    ui: Ui,
    id: web::Path<String>,
    q: web::Query<ListQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let l = load(&ui, &st, id.into_inner(), q.into_inner().page).await?;
    page(&show_page(&ui, l))
}

/// Saves the roles (and enabled state) of the account.
pub async fn edit(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let id = id.into_inner();
    let (p, id2) = (post.ui.p.clone(), id.clone());
    let held = read(&st, move |conn, _, _| accounts::get(conn, &p, &id2)).await?.roles;
    if post.form.all("roles").iter().any(|r| !held.contains(r)) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "grant roles").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
    let input = AccountPatch {
        name: None,
        description: None,
        roles: Some(form.all("roles")),
        disabled: form.opt("disabled").map(|_| true).or(Some(false)),
    };
    let chosen = input.roles.clone().unwrap_or_default();
    let (p, id2) = (ui.p.clone(), id.clone());
    match write(&st, move |conn, _, now| accounts::patch(conn, &p, &id2, &input, now)).await {
        Ok(a) => {
            let what = if a.disabled { "disabled: its tokens stop working" } else { "saved" };
            Ok(done(&ui, &format!("{BASE}/{id}"), format!("“{}” {what}.", a.name), None))
        }
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            let l = load(&ui, &st, id, None).await?;
            let mut v = show_page(&ui, l);
            v.role_choices = parts::recheck(std::mem::take(&mut v.role_choices), &chosen);
            v.errors = errors;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

pub async fn token_create(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    if sudo::is_high(&post.form.all("roles")) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "create a token with an admin role").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
    let id = id.into_inner();
    let (name, description, ttl) =
        (form.get("name").to_string(), form.get("description").to_string(), form.get("ttl_days").to_string());
    let chosen = form.all("roles");
    let (audiences, management) = parts::reach_from_form(&form);
    let result = match parts::expiry_from_form(&form) {
        Err(errors) => Err(errors),
        Ok((ttl_days, expires_at)) => 'arm: {
            let (tname, tdesc) = match FieldErrors::name_and_description(&name, &description) {
                Ok(v) => v,
                Err(errors) => break 'arm Err(errors),
            };
            let input = CreateToken {
                name: tname,
                description: Some(tdesc),
                ttl_days,
                roles: Some(chosen.clone()),
                expires_at,
                audiences: audiences.clone(),
                management,
            };
            let (p, id2) = (ui.p.clone(), id.clone());
            match write(&st, move |conn, s, now| accounts::token_create(conn, &s.cfg, &p, &id2, &input, &s.usage, now))
                .await
            {
                Ok(c) => Ok(c),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(created) => {
            let title = format!("Token “{}” created", created.record.name);
            Ok(show_secret(&ui, secret::token(&st.cfg, "service-accounts", title, created, format!("{BASE}/{id}"))))
        }
        Err(token_errors) => {
            let l = load(&ui, &st, id, None).await?;
            let mut v = show_page(&ui, l);
            v.token_roles = parts::recheck(std::mem::take(&mut v.token_roles), &chosen);
            let v = ShowPage {
                reach: parts::reach_choice(&st.cfg, audiences.as_deref(), management),
                token_errors,
                token_name: name,
                token_description: description,
                expiry: parts::Expiry::new(v.max_days, ui.now, &ttl, form.get("expires_on")),
                ttl_days: ttl,
                open: true,
                ..v
            };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

pub async fn token_rotate(
    req: HttpRequest,
    post: Post,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let (id, tid) = path.into_inner();
    let (p, id2, tid2) = (post.ui.p.clone(), id.clone(), tid.clone());
    let old = read(&st, move |conn, s, now| accounts::token_get(conn, &p, &id2, &tid2, &s.usage, now)).await?;
    if sudo::is_high(&old.roles) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "rotate a token with an admin role").await? {
            return Ok(prompt);
        }
    }
    let ui = post.ui;
    let (p, id2) = (ui.p.clone(), id.clone());
    let created: service::tokens::CreatedToken =
        write(&st, move |conn, s, now| accounts::token_rotate(conn, &p, &id2, &tid, &s.usage, now)).await?;
    let title = format!("Token “{}” rotated", created.record.name);
    Ok(show_secret(&ui, secret::token(&st.cfg, "service-accounts", title, created, format!("{BASE}/{id}"))))
}

pub async fn token_revoke(
    post: Post,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let p = ui.p.clone();
    let (id, tid) = path.into_inner();
    let (id2, tid2) = (id.clone(), tid.clone());
    let t = write(&st, move |conn, s, now| {
        accounts::token_revoke(conn, &p, &id2, &tid2, now)?;
        accounts::token_get(conn, &p, &id2, &tid2, &s.usage, now)
    })
    .await?;
    Ok(done(&ui, &format!("{BASE}/{id}"), format!("Revoked “{}”.", t.name), Some(&tid)))
}

/// Renames or re-describes the account (its tokens' owner label follows).
pub async fn details(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let id = id.into_inner();
    let mut errors = FieldErrors::default();
    let text = (errors.text("name", form.get("name")), errors.text("description", form.get("description")));
    if let (Some(name), Some(description)) = text {
        let input = AccountPatch { name: Some(name), description: Some(description), roles: None, disabled: None };
        let (p, id2) = (ui.p.clone(), id.clone());
        match write(&st, move |conn, _, now| accounts::patch(conn, &p, &id2, &input, now)).await {
            Ok(a) => return Ok(done(&ui, &format!("{BASE}/{id}"), format!("Saved “{}”.", a.name), None)),
            Err(e) => errors = FieldErrors::from_error(e)?,
        }
    }
    let l = load(&ui, &st, id, None).await?;
    let v = ShowPage {
        name: form.get("name").to_string(),
        description: form.get("description").to_string(),
        details_errors: errors,
        ..show_page(&ui, l)
    };
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
}

/// Deletes the account (confirmed in the page); every token of it is revoked with it.
pub async fn delete(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let (name, live) = write(&st, move |conn, _, now| {
        let a = accounts::get(conn, &p, &id)?;
        let (live, _) = accounts::token_limit(conn, &p, &id, now)?;
        accounts::delete(conn, &p, &id, now)?;
        Ok((a.name, live))
    })
    .await?;
    let tokens = match live {
        0 => "it had no live tokens".to_string(),
        1 => "its 1 live token was revoked".to_string(),
        n => format!("its {n} live tokens were revoked"),
    };
    Ok(done(&ui, BASE, format!("Deleted the service account “{name}”: {tokens}."), None))
}
