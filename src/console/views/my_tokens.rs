//! "My tokens": the caller's personal API tokens — list, create (the secret shown once),
//! rotate, revoke one (confirmed), revoke all. Every action is `service::tokens::my_*`,
//! the same functions as `/api/v1/me/tokens`.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::parts::{self, Pager, RoleChoice, TokenRow};
use super::secret;
use super::token_page::Link;
use crate::app::State;
use crate::console::{done, page, read, render, show_secret, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::tokens::{self, CreateToken};
use crate::service::{self, authz::roles, org::policy, Principal};
use crate::store::AnyConnection;

const BASE: &str = "/console/me/tokens";

#[derive(Template)]
#[template(path = "my_tokens.html")]
struct MyTokens {
    chrome: Chrome,
    rows: Vec<TokenRow>,
    pager: Pager,
    /// The tab shown: active tokens, or inactive ones (revoked, expired, idle).
    inactive: bool,
    active_count: i64,
    inactive_count: i64,
    /// What "Revoke all" revokes: every token not yet revoked.
    unrevoked: i64,
    /// Successors of rotated tokens on this page (by the old token's id).
    successors: std::collections::HashMap<String, Link>,
    roles: Vec<RoleChoice>,
    name: String,
    description: String,
    ttl_days: String,
    /// Presets, date range and preview of the expiry.
    expiry: parts::Expiry,
    errors: FieldErrors,
    /// Where the new token works (audiences, management API).
    reach: parts::ReachChoice,
    /// Reopen the create dialog (after a refused create).
    open: bool,
}

/// The roles a caller may put on a token: those of the org they hold.
pub fn own_roles(conn: &mut AnyConnection, p: &Principal) -> service::Result<Vec<String>> {
    Ok(roles::list(conn, p)?.into_iter().map(|r| r.name).filter(|r| p.roles.holds(r)).collect())
}

impl MyTokens {
    fn successor(&self, id: &str) -> Option<&Link> {
        self.successors.get(id)
    }
}

/// `?tab=inactive&page=N`.
#[derive(serde::Deserialize, Default)]
pub struct TabQuery {
    pub page: Option<String>,
    pub tab: Option<String>,
}

struct Listed {
    page: service::list::Paged<tokens::TokenView>,
    inactive: bool,
    active_count: i64,
    inactive_count: i64,
    unrevoked: i64,
    successors: std::collections::HashMap<String, tokens::TokenView>,
    max_days: i64,
    roles: Vec<String>,
    notes: parts::Notes,
    reach: parts::ReachChoice,
}

async fn load(ui: &Ui, st: &web::Data<State>, page: Option<String>, inactive: bool) -> Result<Listed, Fail> {
    let p = ui.p.clone();
    Ok(read(st, move |conn, s, now| {
        let mut q = parts::token_query(page.as_deref())?;
        let mut other = parts::token_query(None)?;
        other.page.size = 1;
        let (shown, hidden) = if inactive { (&mut q, &mut other) } else { (&mut other, &mut q) };
        shown.inactive = true;
        hidden.status = Some(tokens::vocab::StatusFilter::Active);
        let page = tokens::table::my_list(conn, &p, &q, &s.usage, now)?;
        let other_count = tokens::table::my_list(conn, &p, &other, &s.usage, now)?.total_count;
        let (active_count, inactive_count) =
            if inactive { (other_count, page.total_count) } else { (page.total_count, other_count) };
        let ids: Vec<String> =
            page.items.iter().filter(|t| t.status.as_str() == "revoked").map(|t| t.id.clone()).collect();
        let successors = tokens::my_successors(conn, &p, &ids, &s.usage, now)?;
        let max_days = policy::get(conn, &p.org_id)?.personal_token_max_ttl_days;
        Ok(Listed {
            page,
            inactive,
            active_count,
            inactive_count,
            unrevoked: tokens::my_unrevoked(conn, &p)?,
            successors,
            max_days,
            roles: own_roles(conn, &p)?,
            notes: parts::role_notes(conn, &p)?,
            reach: parts::default_reach(&s.cfg),
        })
    })
    .await?)
}

fn view(ui: &Ui, l: Listed) -> MyTokens {
    // A new token carries the lowest org role the caller holds by default (least privilege).
    let default_role: Vec<String> = l.roles.iter().rev().find(|r| r.starts_with("org:")).cloned().into_iter().collect();
    MyTokens {
        chrome: ui.chrome("my-tokens"),
        rows: l.page.items.iter().map(|t| TokenRow::new(t, ui.now)).collect(),
        pager: if l.inactive {
            Pager::new(&format!("{BASE}?tab=inactive"), &l.page)
        } else {
            Pager::new(BASE, &l.page)
        },
        inactive: l.inactive,
        active_count: l.active_count,
        inactive_count: l.inactive_count,
        unrevoked: l.unrevoked,
        successors: l
            .successors
            .into_iter()
            .map(|(old, t)| {
                let label = format!("{} ({})", t.name, t.hint);
                (old, Link { href: format!("{BASE}/{}", t.id), label })
            })
            .collect(),
        roles: parts::noted(parts::role_choices(&l.roles, &default_role), &l.notes),
        name: String::new(),
        description: String::new(),
        ttl_days: l.max_days.min(30).to_string(),
        expiry: parts::Expiry::new(l.max_days, ui.now, &l.max_days.min(30).to_string(), ""),
        errors: FieldErrors::default(),
        reach: l.reach,
        open: false,
    }
}

pub async fn list(ui: Ui, q: web::Query<TabQuery>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let q = q.into_inner();
    let l = load(&ui, &st, q.page, q.tab.as_deref() == Some("inactive")).await?;
    page(&view(&ui, l))
}

pub async fn create(req: HttpRequest, post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    if sudo::is_high(&post.form.all("roles")) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "create a token with an admin role").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
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
            let p = ui.p.clone();
            match write(&st, move |conn, s, now| tokens::my_create(conn, &s.cfg, &p, &input, &s.usage, now)).await {
                Ok(created) => Ok(created),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(created) => {
            let title = format!("Token “{}” created", created.record.name);
            Ok(show_secret(&ui, secret::token(&st.cfg, "my-tokens", title, created, BASE.into())))
        }
        Err(errors) => {
            let l = load(&ui, &st, None, false).await?;
            let roles = parts::noted(parts::role_choices(&l.roles, &chosen), &l.notes);
            let reach = parts::reach_choice(&st.cfg, audiences.as_deref(), management);
            let expiry = parts::Expiry::new(l.max_days, ui.now, &ttl, form.get("expires_on"));
            let v =
                MyTokens { roles, name, description, ttl_days: ttl, expiry, errors, reach, open: true, ..view(&ui, l) };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

pub async fn revoke(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let id2 = id.clone();
    let t = write(&st, move |conn, s, now| {
        tokens::my_revoke(conn, &p, &id2, now)?;
        tokens::my_get(conn, &p, &id2, &s.usage, now)
    })
    .await?;
    // A revoked token is listed under Inactive: the message's row is there.
    Ok(done(&ui, &format!("{BASE}?tab=inactive"), format!("Revoked “{}”.", t.name), Some(&id)))
}

pub async fn revoke_all(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let p = ui.p.clone();
    let n = write(&st, move |conn, _, now| tokens::my_revoke_all(conn, &p, now)).await?;
    let what = if n == 1 { "1 token".to_string() } else { format!("{n} tokens") };
    Ok(done(&ui, BASE, format!("Revoked all your tokens: {what}."), None))
}

pub async fn rotate(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let (p, id2) = (post.ui.p.clone(), id.clone());
    let old = read(&st, move |conn, s, now| tokens::my_get(conn, &p, &id2, &s.usage, now)).await?;
    if sudo::is_high(&old.roles) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "rotate a token with an admin role").await? {
            return Ok(prompt);
        }
    }
    let ui = post.ui;
    let p = ui.p.clone();
    let created = write(&st, move |conn, s, now| tokens::my_rotate(conn, &p, &id, &s.usage, now)).await?;
    let title = format!("Token “{}” rotated", created.record.name);
    Ok(show_secret(&ui, secret::token(&st.cfg, "my-tokens", title, created, BASE.into())))
}
