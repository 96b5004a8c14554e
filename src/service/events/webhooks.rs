//! Lifecycle notifications: webhooks per org (`/api/v1/webhooks`), the events they carry,
//! and the durable outbox those events go to in the transaction of the change. Delivery
//! (HTTP, SMTP, retries) is the worker's, in `app::outbox`; here are the rules: which
//! change makes which event, who receives it, URL validation, the retry schedule.
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::rfc3339;
use crate::service::events::audit::{self, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::{check_text, invalid, new_id, Error, Principal, Result};
use crate::store::models::{ApiToken, OutboxRow, Webhook};
use crate::store::{self, AnyConnection};
use crate::whsec::{self, Sealer};

/// The events a webhook may subscribe to.
pub const EVENTS: [&str; 7] = [
    "token.expiring",
    "token.expired",
    "token.revoked",
    "token.created",
    "app.secret_regenerated",
    "user.disabled",
    "policy.changed",
];
/// The event of `POST /webhooks/{id}/test` (delivered whatever the subscription).
pub const TEST_EVENT: &str = "webhook.test";
/// Test events one org may queue a minute (`POST /api/v1/webhooks/{id}/test`; 429 beyond).
pub const TEST_EVENTS_PER_MINUTE: u32 = 10;
/// Sort keys of the webhook list and of a delivery log.
pub const SORTS: [&str; 2] = ["created_at", "url"];
pub const DELIVERY_SORTS: [&str; 1] = ["at"];
/// Webhooks per org.
pub const MAX_PER_ORG: i64 = 20;
pub const MAX_URL_CHARS: usize = 2048;
/// Expiry milestones in days before expiry; 0 is `token.expired`.
pub const MILESTONES: [i64; 4] = [14, 7, 1, 0];
/// Delays between attempts, after the first (Standard Webhooks' schedule), in seconds;
/// the last repeats until [`RETRY_WINDOW`] has passed since the event.
pub const RETRY_DELAYS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// How long an event is retried: a last attempt is made at 24 h, then it is failed.
pub const RETRY_WINDOW: i64 = 86_400;
/// Delivery attempts kept in each webhook's log.
pub const LOG_KEEP: i64 = 100;

/// When to try again after `attempts` failed attempts of an event created at `created_at`,
/// with `jitter` in [0, 1) adding up to 10 % of the delay; None once the window is spent.
pub fn next_attempt(created_at: i64, attempts: i64, now: i64, jitter: f64) -> Option<i64> {
    let end = created_at + RETRY_WINDOW;
    if now >= end {
        return None;
    }
    let i = (attempts.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
    let delay = RETRY_DELAYS[i];
    let extra = (delay as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as i64;
    Some((now + delay + extra).min(end))
}

// ---- URL validation ----

/// A webhook URL: absolute http(s), a host, no credentials, no fragment, at most 2048
/// characters. Where it points (private addresses) is checked at delivery time, when the
/// name is resolved.
pub fn check_url(raw: &str) -> Result<String> {
    let field = "url";
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > MAX_URL_CHARS {
        return Err(invalid(field, format!("must be 1 to {MAX_URL_CHARS} characters")));
    }
    let u = url::Url::parse(s).map_err(|e| invalid(field, format!("is not an absolute URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(invalid(field, "must be an http or https URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(field, "must not contain credentials (user:password@)"));
    }
    if u.fragment().is_some() {
        return Err(invalid(field, "must not contain a fragment (#…)"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, "must name a host"));
    }
    Ok(u.to_string())
}

fn check_events(events: &[String]) -> Result<Vec<String>> {
    if events.is_empty() {
        return Err(invalid("events", "must name at least one event"));
    }
    let mut out = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(invalid("events", format!("unknown event {e:?}; known: {}", EVENTS.join(", "))));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out.sort();
    Ok(out)
}

// ---- API ----

/// An event a webhook may subscribe to (the OpenAPI enum of [`EVENTS`]; a unit test
/// holds them equal).
#[derive(Serialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "token.expiring")]
    TokenExpiring,
    #[serde(rename = "token.expired")]
    TokenExpired,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "app.secret_regenerated")]
    AppSecretRegenerated,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "policy.changed")]
    PolicyChanged,
}

/// A new webhook. Requires org:admin; at most 20 per org (409).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhook)]
pub struct CreateWebhook {
    #[schema(schema_with = crate::service::doc::webhook_url)]
    pub url: String,
    #[schema(schema_with = crate::service::doc::webhook_events)]
    pub events: Vec<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::doc::description)]
    pub description: Option<String>,
    /// Default true. A disabled webhook receives nothing; events queued for it are failed.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false, default = true)]
    pub enabled: Option<bool>,
}

/// Absent fields are unchanged.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookPatch)]
pub struct PatchWebhook {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::doc::webhook_url)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::doc::webhook_events)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::doc::description)]
    pub description: Option<String>,
    /// A disabled webhook receives nothing; events queued for it are failed.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// The subscribed events, sorted.
    #[schema(value_type = Vec<WebhookEvent>)]
    pub events: Vec<String>,
    pub enabled: bool,
    /// whsec_ and the first 4 characters of the secret, to recognise it.
    pub secret_hint: String,
    /// The user who created it (null once that record is gone).
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[schema(schema_with = crate::service::doc::time)]
    pub created_at: String,
    #[schema(schema_with = crate::service::doc::time)]
    pub updated_at: String,
}

/// A created webhook or a rolled secret: the record plus the signing secret, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    /// The signing secret (whsec_ + base64 of 32 random bytes). Shown in this response only.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]{43}=$")]
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

/// One delivery attempt of an event to a webhook.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    pub id: String,
    /// The webhook-id header: the same on every attempt of one event.
    pub event_id: String,
    /// The event's type (one of the subscribable events, or webhook.test).
    pub event_type: String,
    #[schema(minimum = 1)]
    pub attempt: i64,
    #[schema(schema_with = crate::service::doc::time)]
    pub at: String,
    #[schema(schema_with = crate::service::doc::delivery_outcome)]
    pub outcome: String,
    /// The receiver's HTTP status; null when none was received.
    #[schema(required = true)]
    pub status_code: Option<i64>,
    #[schema(minimum = 0)]
    pub duration_ms: i64,
    /// Why the attempt failed; null on success.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// `POST /webhooks/{id}/test`: the queued event.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookTestQueued)]
pub struct TestQueued {
    /// The id of the queued event (its deliveries carry it as event_id).
    pub event_id: String,
    #[schema(schema_with = crate::service::doc::test_event)]
    pub event_type: &'static str,
}

fn events_of(w: &Webhook) -> Vec<String> {
    serde_json::from_str(&w.events).unwrap_or_default()
}

fn view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: events_of(w),
        enabled: w.enabled,
        secret_hint: w.secret_hint.clone(),
        created_by: w.created_by.clone(),
        created_at: rfc3339(w.created_at),
        updated_at: rfc3339(w.updated_at),
    }
}

fn sealing(e: whsec::SealError) -> Error {
    Error::Internal(e.to_string())
}

fn load(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<Webhook> {
    store::webhooks::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<WebhookView>> {
    p.require("org:admin")?;
    let page = pq.validate_sorted(&SORTS)?;
    let rows = store::webhooks::list(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |w| view(&w)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<WebhookView> {
    p.require("org:admin")?;
    Ok(view(&load(conn, p, id)?))
}

pub fn create(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    input: &CreateWebhook,
    now: i64,
) -> Result<WebhookWithSecret> {
    p.require("org:admin")?;
    let url = check_url(&input.url)?;
    let events = check_events(&input.events)?;
    let description = check_text("description", input.description.as_deref().unwrap_or(""), 0, 1000)?;
    let secret = whsec::generate().map_err(sealing)?;
    let id = new_id();
    let w = Webhook {
        secret_sealed: sealer.seal(&id, &secret).map_err(sealing)?,
        secret_hint: whsec::hint(&secret),
        id,
        org_id: p.org_id.clone(),
        url,
        description,
        events: serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
        enabled: input.enabled.unwrap_or(true),
        created_by: Some(p.id.clone()),
        created_at: now,
        updated_at: now,
        secret_seen_by: crate::store::roles_to_text(std::slice::from_ref(&p.id)),
    };
    conn.transaction(|conn| {
        // Serialise creations of one org so the limit holds under concurrency.
        store::org::lock(conn, &p.org_id)?;
        if store::webhooks::count(conn, &p.org_id)? >= MAX_PER_ORG {
            return Err(Error::Conflict(format!("an organization has at most {MAX_PER_ORG} webhooks")));
        }
        store::webhooks::insert(conn, &w)?;
        audit::record(
            conn,
            Event::by(p, "webhook.create", "webhook", &w.id).detail(json!({"url": w.url, "events": events})),
            now,
        )
    })?;
    Ok(WebhookWithSecret { secret, webhook: view(&w) })
}

pub fn patch(conn: &mut AnyConnection, p: &Principal, id: &str, input: &PatchWebhook, now: i64) -> Result<WebhookView> {
    p.require("org:admin")?;
    let url = input.url.as_deref().map(check_url).transpose()?;
    let events = input.events.as_deref().map(check_events).transpose()?;
    let description = input.description.as_deref().map(|d| check_text("description", d, 0, 1000)).transpose()?;
    conn.transaction(|conn| {
        let mut w = load(conn, p, id)?;
        let mut changes = serde_json::Map::new();
        if let Some(u) = url {
            changes.insert("url".into(), json!(u));
            w.url = u;
        }
        if let Some(e) = events {
            changes.insert("events".into(), json!(e));
            w.events = serde_json::to_string(&e).unwrap_or_else(|_| "[]".into());
        }
        if let Some(d) = description {
            w.description = d;
        }
        if let Some(en) = input.enabled {
            changes.insert("enabled".into(), json!(en));
            w.enabled = en;
        }
        w.updated_at = now;
        store::webhooks::update(conn, &w)?;
        audit::record(conn, Event::by(p, "webhook.update", "webhook", &w.id).detail(Value::Object(changes)), now)?;
        Ok(view(&w))
    })
}

/// Deletes a webhook, its delivery log and its undelivered events.
pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require("org:admin")?;
    conn.transaction(|conn| {
        let w = load(conn, p, id)?;
        store::webhooks::delete(conn, &w.id)?;
        audit::record(conn, Event::by(p, "webhook.delete", "webhook", &w.id).detail(json!({"url": w.url})), now)
    })
}

/// A new signing secret; the old one signs nothing from the moment this commits.
pub fn roll_secret(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    id: &str,
    now: i64,
) -> Result<WebhookWithSecret> {
    p.require("org:admin")?;
    let secret = whsec::generate().map_err(sealing)?;
    conn.transaction(|conn| {
        let mut w = load(conn, p, id)?;
        w.secret_sealed = sealer.seal(&w.id, &secret).map_err(sealing)?;
        w.secret_hint = whsec::hint(&secret);
        w.secret_seen_by = crate::store::roles_to_text(std::slice::from_ref(&p.id));
        w.updated_at = now;
        store::webhooks::update(conn, &w)?;
        audit::record(conn, Event::by(p, "webhook.secret.roll", "webhook", &w.id), now)?;
        Ok(WebhookWithSecret { secret: secret.clone(), webhook: view(&w) })
    })
}

/// Queues a `webhook.test` event for this webhook only (the worker delivers it like any
/// other, so it shows in the delivery log).
pub fn send_test(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<TestQueued> {
    p.require("org:admin")?;
    conn.transaction(|conn| {
        let w = load(conn, p, id)?;
        if !w.enabled {
            return Err(Error::Conflict("the webhook is disabled; enable it to send a test event".into()));
        }
        let ev = NewEvent::new(&p.org_id, TEST_EVENT, json!({"webhook_id": w.id, "message": "a test event"}), now);
        store::webhooks::enqueue(conn, &[ev.row_for_webhook(&w.id)])?;
        audit::record(conn, Event::by(p, "webhook.test", "webhook", &w.id).detail(json!({"event_id": ev.id})), now)?;
        Ok(TestQueued { event_id: ev.id, event_type: TEST_EVENT })
    })
}

pub fn deliveries(conn: &mut AnyConnection, p: &Principal, id: &str, pq: &PageQuery) -> Result<Paged<DeliveryView>> {
    p.require("org:admin")?;
    let page = pq.validate_sorted(&DELIVERY_SORTS)?;
    let w = load(conn, p, id)?;
    let rows = store::webhooks::deliveries(conn, &w.id, &page)?;
    Ok(page.view(rows, |d| DeliveryView {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        attempt: d.attempt,
        at: rfc3339(d.at),
        outcome: d.outcome,
        status_code: d.status_code,
        duration_ms: d.duration_ms,
        error: d.error,
    }))
}

// ---- events ----

/// An event about to be queued: its id (the `webhook-id` of every delivery of it) and the
/// payload `{"type", "timestamp", "data"}` (Standard Webhooks).
pub struct NewEvent {
    pub id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    pub now: i64,
}

impl NewEvent {
    pub fn new(org_id: &str, event_type: &str, data: Value, now: i64) -> NewEvent {
        let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        let payload = json!({"type": event_type, "timestamp": rfc3339(now), "data": data}).to_string();
        NewEvent { id, org_id: org_id.to_string(), event_type: event_type.to_string(), payload, now }
    }

    fn row(&self, kind: &str, webhook_id: Option<&str>, recipient: Option<&str>) -> OutboxRow {
        OutboxRow {
            id: new_id(),
            org_id: self.org_id.clone(),
            kind: kind.to_string(),
            event_id: self.id.clone(),
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            webhook_id: webhook_id.map(str::to_string),
            recipient: recipient.map(str::to_string),
            attempts: 0,
            next_attempt_at: self.now,
            locked_until: None,
            locked_by: None,
            delivered_at: None,
            failed_at: None,
            last_error: None,
            created_at: self.now,
        }
    }

    pub fn row_for_webhook(&self, webhook_id: &str) -> OutboxRow {
        self.row("webhook", Some(webhook_id), None)
    }

    pub fn row_for_email(&self, recipient: &str) -> OutboxRow {
        self.row("email", None, Some(recipient))
    }
}

/// The org's enabled webhooks subscribed to `event_type` (ids).
fn subscribers(conn: &mut AnyConnection, org_id: &str, event_type: &str) -> Result<Vec<String>> {
    Ok(store::webhooks::enabled(conn, org_id)?
        .into_iter()
        .filter(|w| events_of(w).iter().any(|e| e == event_type))
        .map(|w| w.id)
        .collect())
}

/// Queues one event for its subscribers and the email recipients, in the caller's
/// transaction. With neither, nothing is written.
fn queue(conn: &mut AnyConnection, ev: &NewEvent, hooks: &[String], emails: &[String]) -> Result<()> {
    let mut rows: Vec<OutboxRow> = hooks.iter().map(|h| ev.row_for_webhook(h)).collect();
    rows.extend(emails.iter().map(|r| ev.row_for_email(r)));
    Ok(store::webhooks::enqueue(conn, &rows)?)
}

fn token_data(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "hint": t.hint,
        "owner_kind": t.owner_kind,
        "owner_id": t.owner_id,
        "owner": t.owner_label,
        "created_at": rfc3339(t.created_at),
        "expires_at": rfc3339(t.expires_at),
        "audiences": crate::store::roles_from_text(&t.audiences),
        "management": t.management,
    })
}

/// Who gets email about a token: its owner (a live user), or for a service account's
/// token the org's admins and owners.
fn token_recipients(conn: &mut AnyConnection, t: &ApiToken) -> Result<Vec<String>> {
    if t.owner_kind == "user" {
        Ok(store::webhooks::live_user_email(conn, &t.owner_id)?.into_iter().collect())
    } else {
        Ok(store::webhooks::admin_emails(conn, &t.org_id)?)
    }
}

/// The event an audited action makes, if any. Everything else (logins, exchanges, refused
/// calls) maps to none and costs no query.
pub fn event_of(action: &str) -> Option<&'static str> {
    match action {
        "token.create" | "token.rotate" => Some("token.created"),
        "token.revoke" | "token.admin_revoke" => Some("token.revoked"),
        "app.secret.regenerate" => Some("app.secret_regenerated"),
        "policy.update" => Some("policy.changed"),
        _ => None,
    }
}

/// Why a token was revoked: the audit detail's `reason` when the revoking code names one
/// (`policy`, `leak_report`), else `owner` when its owner (or the token itself, at
/// `/oauth/revoke`) revoked it, else `admin`.
fn revoke_reason(e: &Event<'_>, t: &ApiToken) -> &'static str {
    let named = e.detail.as_ref().and_then(|d| d.get("reason")).and_then(Value::as_str);
    match named {
        Some("policy") => "policy",
        Some("leak_report") => "leak_report",
        _ if e.actor_id == Some(t.owner_id.as_str()) || e.actor_id == Some(t.id.as_str()) => "owner",
        _ => "admin",
    }
}

/// The audit hook: an audited change that is also a notification event queues it in the
/// same transaction (`audit::record` calls this for every row it writes).
pub fn on_audit(conn: &mut AnyConnection, e: &Event<'_>, now: i64) -> Result<()> {
    if e.outcome != "success" {
        return Ok(());
    }
    let (Some(event_type), Some(org_id)) = (event_of(e.action), e.org_id) else { return Ok(()) };
    let by = json!({"kind": e.actor_kind, "id": e.actor_id});
    match event_type {
        "token.created" => {
            let hooks = subscribers(conn, org_id, event_type)?;
            if hooks.is_empty() {
                return Ok(());
            }
            let (id, rotated_from) = match e.action {
                "token.rotate" => (e.detail.as_ref().and_then(|d| d["new_token"].as_str()), e.object_id),
                _ => (e.object_id, None),
            };
            let Some(t) = id.map(|id| store::tokens::get(conn, id)).transpose()? else { return Ok(()) };
            let mut data = json!({"org_id": org_id, "token": token_data(&t), "created_by": by});
            if let Some(old) = rotated_from {
                data["rotated_from"] = json!(old);
            }
            queue(conn, &NewEvent::new(org_id, event_type, data, now), &hooks, &[])
        }
        "token.revoked" => {
            let Some(t) = e.object_id.map(|id| store::tokens::get(conn, id)).transpose()? else { return Ok(()) };
            let reason = revoke_reason(e, &t);
            let hooks = subscribers(conn, org_id, event_type)?;
            // An admin's revocation is also mailed to the token's owner (sent only when
            // TOKEND_SMTP_URL is set; the worker drops it otherwise).
            // So is a leak report's, with where the secret was found.
            let emails = if matches!(reason, "admin" | "leak_report") { token_recipients(conn, &t)? } else { vec![] };
            if hooks.is_empty() && emails.is_empty() {
                return Ok(());
            }
            let mut data = json!({"org_id": org_id, "token": token_data(&t), "revoked_by": by, "reason": reason});
            if reason == "leak_report" {
                data["leak"] = e.detail.as_ref().map(|d| d["leak"].clone()).unwrap_or_default();
            }
            queue(conn, &NewEvent::new(org_id, event_type, data, now), &hooks, &emails)
        }
        "app.secret_regenerated" => {
            let hooks = subscribers(conn, org_id, event_type)?;
            let Some(app) = (match e.object_id {
                Some(id) if !hooks.is_empty() => store::principals::app_in_org(conn, org_id, id)?,
                _ => None,
            }) else {
                return Ok(());
            };
            let data = json!({"org_id": org_id, "app": {"id": app.id, "name": app.name, "client_id": app.client_id}, "by": by});
            queue(conn, &NewEvent::new(org_id, event_type, data, now), &hooks, &[])
        }
        "policy.changed" => {
            let hooks = subscribers(conn, org_id, event_type)?;
            if hooks.is_empty() {
                return Ok(());
            }
            let d = e.detail.clone().unwrap_or_default();
            let data = json!({"org_id": org_id, "before": d["before"], "after": d["after"], "by": by});
            queue(conn, &NewEvent::new(org_id, event_type, data, now), &hooks, &[])
        }
        _ => Ok(()),
    }
}

/// `token.revoked` (reason `leak_report`) for an app secret revoked after a leak report,
/// to the org's subscribers, and an email to whoever created the app and the org's admins.
pub fn app_secret_leaked(
    conn: &mut AnyConnection,
    app: &crate::store::models::App,
    leak: Value,
    now: i64,
) -> Result<()> {
    let hooks = subscribers(conn, &app.org_id, "token.revoked")?;
    let mut emails = store::webhooks::admin_emails(conn, &app.org_id)?;
    if let Some(creator) = app.created_by.as_deref() {
        if let Some(mail) = store::webhooks::live_user_email(conn, creator)? {
            if !emails.contains(&mail) {
                emails.push(mail);
            }
        }
    }
    let data = json!({
        "org_id": app.org_id,
        "app": {"id": app.id, "name": app.name, "client_id": app.client_id, "hint": app.secret_hint},
        "credential": "app_secret",
        "revoked_by": {"kind": "system", "id": null},
        "reason": "leak_report",
        "leak": leak,
    });
    queue(conn, &NewEvent::new(&app.org_id, "token.revoked", data, now), &hooks, &emails)
}

/// `user.disabled`, from the change that disabled the person.
pub fn user_disabled(conn: &mut AnyConnection, p: &Principal, user_id: &str, email: &str, now: i64) -> Result<()> {
    let hooks = subscribers(conn, &p.org_id, "user.disabled")?;
    if hooks.is_empty() {
        return Ok(());
    }
    let data = json!({
        "org_id": p.org_id,
        "user": {"id": user_id, "email": email},
        "by": {"kind": p.acct.as_str(), "id": p.id},
    });
    queue(conn, &NewEvent::new(&p.org_id, "user.disabled", data, now), &hooks, &[])
}

/// `token.revoked` for each live token of `owner_id`, before a revocation of them all
/// (revoke-all, deleting a person or a service account) in the same transaction.
pub fn owner_tokens_revoked(conn: &mut AnyConnection, p: &Principal, owner_id: &str, now: i64) -> Result<()> {
    let hooks = subscribers(conn, &p.org_id, "token.revoked")?;
    if hooks.is_empty() {
        return Ok(());
    }
    let reason = if p.id == owner_id { "owner" } else { "admin" };
    let by = json!({"kind": p.acct.as_str(), "id": p.id});
    for t in store::webhooks::live_tokens_of(conn, &p.org_id, owner_id)? {
        let data = json!({"org_id": p.org_id, "token": token_data(&t), "revoked_by": by, "reason": reason});
        queue(conn, &NewEvent::new(&p.org_id, "token.revoked", data, now), &hooks, &[])?;
    }
    Ok(())
}

/// The milestone a token expiring at `expires_at` has reached at `now`: the smallest of
/// [`MILESTONES`] not yet passed (0 once expired), or None beyond the first.
pub fn milestone(expires_at: i64, now: i64) -> Option<i64> {
    MILESTONES.iter().rev().copied().find(|m| expires_at <= now + m * 86_400)
}

/// The expiry scan: each live token that reached a milestone (14, 7, 1 days before
/// expiry, expired) past its last notice gets `token.expiring` / `token.expired` queued,
/// and email to its owner when `email` is on. The milestone is recorded on the token by a
/// conditional UPDATE in the same transaction, so each is queued once even with several
/// instances scanning. A milestone the token never lived through (created closer to expiry
/// than it) is recorded without a notice. Answers the number of events queued.
pub fn scan_expiry(conn: &mut AnyConnection, now: i64, email: bool, limit: i64) -> Result<usize> {
    let due = store::webhooks::expiry_due(conn, now, MILESTONES, limit)?;
    let mut queued = 0;
    for store::webhooks::DueToken { id, org_id, created_at, expires_at } in due {
        let Some(m) = milestone(expires_at, now) else { continue };
        let lived_through = m == 0 || created_at < expires_at - m * 86_400;
        queued += conn.transaction(|conn| -> Result<usize> {
            if !store::webhooks::mark_notice(conn, &id, m)? || !lived_through {
                return Ok(0);
            }
            let event_type = if m == 0 { "token.expired" } else { "token.expiring" };
            let hooks = subscribers(conn, &org_id, event_type)?;
            let t = store::tokens::get(conn, &id)?;
            let emails = if email { token_recipients(conn, &t)? } else { vec![] };
            if hooks.is_empty() && emails.is_empty() {
                return Ok(0);
            }
            let mut data = json!({"org_id": org_id, "token": token_data(&t)});
            if m > 0 {
                data["days_left"] = json!(m);
            }
            queue(conn, &NewEvent::new(&org_id, event_type, data, now), &hooks, &emails)?;
            Ok(1)
        })?;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_validated() {
        assert_eq!(check_url(" https://hooks.example/x?a=1 ").unwrap(), "https://hooks.example/x?a=1");
        assert!(check_url("http://127.0.0.1:9/").is_ok(), "private targets are refused at delivery");
        for bad in [
            "ftp://x.example/",
            "https://user:pw@x.example/",
            "https://user@x.example/",
            "https://x.example/#frag",
            "/relative",
            "",
            "javascript:alert(1)",
            "file:///etc/passwd",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(matches!(&e, Error::Invalid { field, .. } if field == "url"), "{bad}: {e}");
        }
        assert!(check_url(&format!("https://x.example/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn retries_follow_the_schedule_for_24_hours() {
        let t0 = 1_000_000;
        assert_eq!(next_attempt(t0, 1, t0, 0.0), Some(t0 + 5));
        assert_eq!(next_attempt(t0, 2, t0 + 5, 0.0), Some(t0 + 305));
        assert_eq!(next_attempt(t0, 2, t0 + 5, 0.999), Some(t0 + 5 + 300 + 29));
        assert_eq!(next_attempt(t0, 20, t0 + 80_000, 0.0), Some(t0 + RETRY_WINDOW), "capped at the window");
        assert_eq!(next_attempt(t0, 9, t0 + RETRY_WINDOW, 0.0), None, "then failed");
        // Walking the schedule: the last attempt is made at 24 h.
        let (mut now, mut n) = (t0, 1);
        while let Some(next) = next_attempt(t0, n, now, 0.0) {
            now = next;
            n += 1;
        }
        assert_eq!(now, t0 + RETRY_WINDOW);
        assert_eq!(n, 8, "7 retries after the first attempt");
    }

    #[test]
    fn milestones() {
        let d = 86_400;
        assert_eq!(milestone(100 + 15 * d, 100), None);
        assert_eq!(milestone(100 + 14 * d, 100), Some(14));
        assert_eq!(milestone(100 + 7 * d, 100), Some(7));
        assert_eq!(milestone(100 + 3 * d, 100), Some(7));
        assert_eq!(milestone(100 + d, 100), Some(1));
        assert_eq!(milestone(100, 100), Some(0));
    }

    #[test]
    fn only_lifecycle_actions_make_events() {
        for quiet in ["token.exchange", "user.login", "access_token.revoke", "audit.suppressed", "webhook.create"] {
            assert_eq!(event_of(quiet), None, "{quiet}");
        }
        assert_eq!(event_of("token.admin_revoke"), Some("token.revoked"));
    }
}
