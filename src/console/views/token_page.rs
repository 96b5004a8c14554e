//! One API token's page: its facts, a form to rename it (name and description), and for a
//! personal token "Regenerate" — a new secret with a new expiry (the old one revoked, as a
//! rotation). A rotated token links to its successor. Personal tokens at
//! `/console/me/tokens/{id}` (`service::tokens::my_*`), service-account tokens at
//! `/console/service-accounts/{id}/tokens/{tid}` (`service::principals::accounts::token_*`).
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::parts::{self, TokenRow};
use super::secret;
use crate::app::State;
use crate::console::{done, page, read, render, show_secret, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::principals::accounts;
use crate::service::tokens::{self, PatchToken, Regenerate, TokenView};
use crate::service::{org::policy, Principal};

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/me/tokens/{id}").route(get().to(my_show)))
        .service(resource("/me/tokens/{id}/edit").route(post().to(my_edit)))
        .service(resource("/me/tokens/{id}/regenerate").route(post().to(my_regenerate)))
        .service(resource("/service-accounts/{id}/tokens/{tid}").route(get().to(sa_show)))
        .service(resource("/service-accounts/{id}/tokens/{tid}/edit").route(post().to(sa_edit)));
}

/// A link to another token (a successor).
pub struct Link {
    pub href: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    chrome: Chrome,
    t: TokenRow,
    client_id: String,
    reach: String,
    /// Where this page sits: the list it came from.
    back: String,
    back_label: String,
    /// The form actions (without the trailing `/edit`, `/regenerate`).
    base: String,
    successor: Option<Link>,
    name: String,
    description: String,
    errors: FieldErrors,
    /// Personal tokens: regenerate with a new expiry.
    regenerate: bool,
    ttl_days: String,
    expiry: parts::Expiry,
    regen_errors: FieldErrors,
}

fn reach_text(t: &TokenView) -> String {
    let aud =
        if t.audiences.iter().any(|a| a == "*") { "every resource server".to_string() } else { t.audiences.join(", ") };
    if t.management {
        format!("{aud}, and the management API")
    } else {
        aud
    }
}

fn token_page(
    ui: &Ui,
    nav: &'static str,
    t: &TokenView,
    base: String,
    back: (String, String),
    max_days: i64,
    regenerate: bool,
) -> TokenPage {
    let row = TokenRow::new(t, ui.now);
    let ttl = max_days.min(30).to_string();
    TokenPage {
        chrome: ui.chrome(nav),
        client_id: t.client_id.clone(),
        reach: reach_text(t),
        back: back.0,
        back_label: back.1,
        base,
        successor: None,
        name: t.name.clone(),
        description: t.description.clone(),
        errors: FieldErrors::default(),
        regenerate: regenerate && row.live,
        expiry: parts::Expiry::new(max_days, ui.now, &ttl, ""),
        ttl_days: ttl,
        regen_errors: FieldErrors::default(),
        t: row,
    }
}

const MY: &str = "/console/me/tokens";

async fn my_load(ui: &Ui, st: &web::Data<State>, id: String) -> Result<TokenPage, Fail> {
    let p: Principal = ui.p.clone();
    let (t, max_days, successor) = read(st, move |conn, s, now| {
        let t = tokens::my_get(conn, &p, &id, &s.usage, now)?;
        let max_days = policy::get(conn, &p.org_id)?.personal_token_max_ttl_days;
        let successor = tokens::my_successors(conn, &p, std::slice::from_ref(&t.id), &s.usage, now)?.remove(&t.id);
        Ok((t, max_days, successor))
    })
    .await?;
    let mut v =
        token_page(ui, "my-tokens", &t, format!("{MY}/{}", t.id), (MY.into(), "My tokens".into()), max_days, true);
    v.successor =
        successor.map(|s| Link { href: format!("{MY}/{}", s.id), label: format!("“{}” ({})", s.name, s.hint) });
    Ok(v)
}

pub async fn my_show(ui: Ui, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    page(&my_load(&ui, &st, id.into_inner()).await?)
}

/// The form as a patch; `None` with every error of it (name and description at once)
/// in `errors`.
fn patch_of(form: &crate::console::csrf::Form, errors: &mut FieldErrors) -> Option<PatchToken> {
    let text = (errors.text("name", form.get("name")), errors.text("description", form.get("description")));
    let (Some(name), Some(description)) = text else { return None };
    Some(PatchToken { name: Some(name), description: Some(description), ..Default::default() })
}

pub async fn my_edit(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let id = id.into_inner();
    let mut errors = FieldErrors::default();
    if let Some(input) = patch_of(&form, &mut errors) {
        let (p, id2) = (ui.p.clone(), id.clone());
        match write(&st, move |conn, s, now| tokens::my_patch(conn, &s.cfg, &p, &id2, &input, &s.usage, now)).await {
            Ok(t) => return Ok(done(&ui, &format!("{MY}/{id}"), format!("Saved “{}”.", t.name), None)),
            Err(e) => errors = FieldErrors::from_error(e)?,
        }
    }
    let mut v = my_load(&ui, &st, id).await?;
    v.name = form.get("name").to_string();
    v.description = form.get("description").to_string();
    v.errors = errors;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
}

pub async fn my_regenerate(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let id = id.into_inner();
    let (p, id2) = (post.ui.p.clone(), id.clone());
    let old = read(&st, move |conn, s, now| tokens::my_get(conn, &p, &id2, &s.usage, now)).await?;
    if sudo::is_high(&old.roles) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "regenerate a token with an admin role").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
    let result = match parts::expiry_from_form(&form) {
        Err(errors) => Err(errors),
        Ok((ttl_days, expires_at)) => {
            let input = Regenerate { ttl_days, expires_at };
            let (p, id2) = (ui.p.clone(), id.clone());
            match write(&st, move |conn, s, now| tokens::my_regenerate(conn, &p, &id2, &input, &s.usage, now)).await {
                Ok(c) => Ok(c),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(created) => {
            let title = format!("Token “{}” regenerated", created.record.name);
            Ok(show_secret(&ui, secret::token(&st.cfg, "my-tokens", title, created, MY.into())))
        }
        Err(regen_errors) => {
            let mut v = my_load(&ui, &st, id).await?;
            let ttl = form.get("ttl_days").to_string();
            v.expiry = parts::Expiry::new(v.expiry.max_days, ui.now, &ttl, form.get("expires_on"));
            v.ttl_days = ttl;
            v.regen_errors = regen_errors;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

const SA: &str = "/console/service-accounts";

async fn sa_load(ui: &Ui, st: &web::Data<State>, id: String, tid: String) -> Result<TokenPage, Fail> {
    let p: Principal = ui.p.clone();
    let (a, t, max_days) = read(st, move |conn, s, now| {
        let a = accounts::get(conn, &p, &id)?;
        let t = accounts::token_get(conn, &p, &id, &tid, &s.usage, now)?;
        Ok((a, t, policy::get(conn, &p.org_id)?.service_token_max_ttl_days))
    })
    .await?;
    let base = format!("{SA}/{}/tokens/{}", a.id, t.id);
    Ok(token_page(ui, "service-accounts", &t, base, (format!("{SA}/{}", a.id), a.name.clone()), max_days, false))
}

pub async fn sa_show(ui: Ui, path: web::Path<(String, String)>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let (id, tid) = path.into_inner();
    page(&sa_load(&ui, &st, id, tid).await?)
}

pub async fn sa_edit(
    post: Post,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let (id, tid) = path.into_inner();
    let mut errors = FieldErrors::default();
    if let Some(input) = patch_of(&form, &mut errors) {
        let (p, id2, tid2) = (ui.p.clone(), id.clone(), tid.clone());
        match write(&st, move |conn, s, now| {
            accounts::token_patch(conn, &s.cfg, &p, (&id2, &tid2), &input, &s.usage, now)
        })
        .await
        {
            Ok(t) => {
                return Ok(done(&ui, &format!("{SA}/{id}/tokens/{tid}"), format!("Saved “{}”.", t.name), None));
            }
            Err(e) => errors = FieldErrors::from_error(e)?,
        }
    }
    let mut v = sa_load(&ui, &st, id, tid).await?;
    v.name = form.get("name").to_string();
    v.description = form.get("description").to_string();
    v.errors = errors;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
}
