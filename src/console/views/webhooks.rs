//! The org's webhooks (admins): list, create (the signing secret shown once, from a slot),
//! a webhook's page with its recent deliveries, send a test event, enable/disable, a new
//! signing secret, delete. Creating, changing and deleting webhooks and new secrets need the
//! sudo window. Every action is `service::events::webhooks`, as `/api/v1/webhooks`.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::parts::{self, ListQuery, Pager, RoleChoice};
use crate::app::State;
use crate::console::{done, page, read, render, show_secret, slots, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::events::outbox::EventKind;
use crate::service::events::webhooks::{self, CreateWebhook, PatchWebhook, WebhookView};
use crate::service::list::PageQuery;

const BASE: &str = "/console/webhooks";

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/webhooks").route(get().to(list)).route(post().to(create)))
        .service(resource("/webhooks/{id}").route(get().to(show)))
        .service(resource("/webhooks/{id}/test").route(post().to(test)))
        .service(resource("/webhooks/{id}/enabled").route(post().to(toggle)))
        .service(resource("/webhooks/{id}/secret").route(post().to(secret)))
        .service(resource("/webhooks/{id}/delete").route(post().to(delete)));
}

pub struct HookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub hint: String,
    pub created: String,
}

fn row(w: &WebhookView) -> HookRow {
    HookRow {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: w.events.join(", "),
        enabled: w.enabled,
        hint: w.secret_hint.clone(),
        created: parts::when(&w.created_at),
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<HookRow>,
    pager: Pager,
    url: String,
    description: String,
    events: Vec<RoleChoice>,
    errors: FieldErrors,
    open: bool,
}

async fn list_page(ui: &Ui, st: &web::Data<State>, page: Option<String>) -> Result<ListPage, Fail> {
    let p = ui.p.clone();
    let paged = read(st, move |conn, _, _| webhooks::list(conn, &p, &parts::page_query(page.as_deref()))).await?;
    let all: Vec<String> = EventKind::SUBSCRIBABLE.iter().map(|e| e.as_str().to_string()).collect();
    Ok(ListPage {
        chrome: ui.chrome("webhooks"),
        rows: paged.items.iter().map(row).collect(),
        pager: Pager::new(BASE, &paged),
        url: String::new(),
        description: String::new(),
        events: parts::role_choices(&all, &[]),
        errors: FieldErrors::default(),
        open: false,
    })
}

pub async fn list(ui: Ui, q: web::Query<ListQuery>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    page(&list_page(&ui, &st, q.into_inner().page).await?)
}

pub async fn create(req: HttpRequest, post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    if let Some(prompt) = sudo::admin(&post, &req, &st, "create a webhook").await? {
        return Ok(prompt);
    }
    let Post { ui, form } = post;
    let (url, description, chosen) =
        (form.get("url").trim().to_string(), form.get("description").to_string(), form.all("events"));
    let mut text_errors = FieldErrors::default();
    let outcome = match text_errors.text("description", &description) {
        None => Err(text_errors),
        Some(d) => {
            let input =
                CreateWebhook { url: url.clone(), events: chosen.clone(), description: Some(d), enabled: Some(true) };
            let p = ui.p.clone();
            match write(&st, move |conn, s, now| webhooks::create(conn, &p, &s.notify.sealer, &input, now)).await {
                Ok(w) => Ok(w),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match outcome {
        Ok(w) => Ok(show_secret(&ui, shown(&w.secret, &w.webhook, "created"))),
        Err(errors) => {
            let mut v = list_page(&ui, &st, None).await?;
            let all: Vec<String> = EventKind::SUBSCRIBABLE.iter().map(|e| e.as_str().to_string()).collect();
            v.events = parts::role_choices(&all, &chosen);
            let v = ListPage { url, description, errors, open: true, ..v };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &v))
        }
    }
}

/// The secret page of a new signing secret.
fn shown(secret: &str, w: &WebhookView, what: &str) -> slots::ShownSecret {
    slots::ShownSecret {
        nav: "webhooks",
        title: format!("Webhook {what}: its signing secret"),
        what: "signing secret",
        secret: secret.to_string(),
        extra: Some(("Webhook id", w.id.clone())),
        facts: vec![("URL", w.url.clone()), ("Events", w.events.join(", "))],
        usage: Vec::new(),
        back: format!("{BASE}/{}", w.id),
    }
}

pub struct DeliveryRow {
    pub at: String,
    pub at_rel: String,
    pub event_type: String,
    pub attempt: i64,
    pub outcome: String,
    pub status: String,
    pub duration_ms: i64,
    pub error: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct ShowPage {
    chrome: Chrome,
    w: HookRow,
    deliveries: Vec<DeliveryRow>,
    total: i64,
}

pub async fn show(ui: Ui, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let (p, id) = (ui.p.clone(), id.into_inner());
    let pq =
        PageQuery { page: None, page_size: Some("50".into()), sort: Some("at".into()), order: Some("desc".into()) };
    let (w, d) = read(&st, move |conn, _, _| {
        let w = webhooks::get(conn, &p, &id)?;
        let d = webhooks::deliveries(conn, &p, &id, &pq)?;
        Ok((w, d))
    })
    .await?;
    let deliveries = d
        .items
        .iter()
        .map(|x| DeliveryRow {
            at: parts::when(&x.at),
            at_rel: parts::relative(&x.at, ui.now),
            event_type: x.event_type.clone(),
            attempt: x.attempt,
            outcome: x.outcome.clone(),
            status: x.status_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
            duration_ms: x.duration_ms,
            error: x.error.clone().unwrap_or_default(),
        })
        .collect();
    page(&ShowPage { chrome: ui.chrome("webhooks"), w: row(&w), deliveries, total: d.total_count })
}

pub async fn test(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let id2 = id.clone();
    write(&st, move |conn, s, now| webhooks::send_test(conn, &p, &id2, &s.token_throttle, now)).await?;
    Ok(done(&ui, &format!("{BASE}/{id}"), "A test event is queued: its delivery shows below in a moment.".into(), None))
}

pub async fn toggle(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    if let Some(prompt) = sudo::admin(&post, &req, &st, "change a webhook").await? {
        return Ok(prompt);
    }
    let Post { ui, form } = post;
    let enable = form.get("enabled") == "true";
    let (p, id) = (ui.p.clone(), id.into_inner());
    let id2 = id.clone();
    let input = PatchWebhook { url: None, events: None, description: None, enabled: Some(enable) };
    let w = write(&st, move |conn, _, now| webhooks::patch(conn, &p, &id2, &input, now)).await?;
    let what = if w.enabled { "enabled" } else { "disabled: it receives nothing" };
    Ok(done(&ui, &format!("{BASE}/{id}"), format!("The webhook to {} is {what}.", w.url), None))
}

pub async fn secret(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    if let Some(prompt) = sudo::admin(&post, &req, &st, "give a webhook a new signing secret").await? {
        return Ok(prompt);
    }
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let w = write(&st, move |conn, s, now| webhooks::roll_secret(conn, &p, &s.notify.sealer, &id, now)).await?;
    Ok(show_secret(&ui, shown(&w.secret, &w.webhook, "secret replaced")))
}

pub async fn delete(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    if let Some(prompt) = sudo::admin(&post, &req, &st, "delete a webhook").await? {
        return Ok(prompt);
    }
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let url = write(&st, move |conn, _, now| {
        let w = webhooks::get(conn, &p, &id)?;
        webhooks::delete(conn, &p, &id, now)?;
        Ok(w.url)
    })
    .await?;
    Ok(done(&ui, BASE, format!("Deleted the webhook to {url}."), None))
}
