//! Webhooks per org (`/api/v1/webhooks`): subscription management, URL validation, the
//! expiry scan and the retry schedule. Which change makes which event is the change's
//! (`events::Notice`, written by `events::emit`); the queue is `events::outbox`. Delivery
//! (HTTP, SMTP, retries) is the worker's, in `app::outbox`.
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::service::events::outbox::{self, EventKind, NewEvent};
use crate::service::events::{self, Action, Event, Notice};
use crate::service::list::{PageQuery, Paged};
use crate::service::{invalid, new_id, Error, Principal, Result, Role};
use crate::store::models::Webhook;
use crate::store::{self, AnyConnection};
use crate::whsec::{self, Sealer};

/// Test events one org may queue a minute (`POST /api/v1/webhooks/{id}/test`; 429 beyond).
pub const TEST_EVENTS_PER_MINUTE: u32 = 10;
crate::service::words!(
    /// Sort keys of the webhook list.
    pub Sort { CreatedAt = "created_at", Url = "url" }
);
crate::service::words!(
    /// Sort keys of a delivery log.
    pub DeliverySort { At = "at" }
);
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
        if EventKind::subscribable(e).is_none() {
            let known: Vec<&str> = EventKind::SUBSCRIBABLE.iter().map(|k| k.as_str()).collect();
            return Err(invalid("events", format!("unknown event {e:?}; known: {}", known.join(", "))));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out.sort();
    Ok(out)
}

// ---- API ----

/// A new webhook. Requires org:admin; at most 20 per org (409).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhook)]
pub struct CreateWebhook {
    #[schema(schema_with = webhook_url)]
    pub url: String,
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
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
    #[schema(schema_with = webhook_url)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = events_schema)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
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
    #[schema(value_type = Vec<EventKind>)]
    pub events: Vec<String>,
    pub enabled: bool,
    /// whsec_ and the first 4 characters of the secret, to recognise it.
    pub secret_hint: String,
    /// The user who created it (null once that record is gone).
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub updated_at: crate::service::Timestamp,
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
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub at: crate::service::Timestamp,
    #[schema(schema_with = outcome_schema)]
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
    #[schema(schema_with = test_event_schema)]
    pub event_type: EventKind,
}

fn view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: outbox::events_of(w),
        enabled: w.enabled,
        secret_hint: w.secret_hint.clone(),
        created_by: w.created_by.clone(),
        created_at: crate::service::Timestamp::at(w.created_at),
        updated_at: crate::service::Timestamp::at(w.updated_at),
    }
}

fn sealing(e: whsec::SealError) -> Error {
    Error::Internal(Box::new(e))
}

fn load(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<Webhook> {
    store::webhooks::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<WebhookView>> {
    p.require(Role::OrgAdmin)?;
    let page = pq.validate_sorted::<Sort>()?;
    let rows = store::webhooks::list(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |w| view(&w)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<WebhookView> {
    p.require(Role::OrgAdmin)?;
    Ok(view(&load(conn, p, id)?))
}

pub fn create(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    input: &CreateWebhook,
    now: i64,
) -> Result<WebhookWithSecret> {
    p.require(Role::OrgAdmin)?;
    let url = check_url(&input.url)?;
    let events = check_events(&input.events)?;
    let description = input.description.as_deref().unwrap_or("").to_string();
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
        events::emit(
            conn,
            Event::by(p, Action::WebhookCreate, "webhook", &w.id).detail(json!({"url": w.url, "events": events})),
            now,
        )
    })?;
    Ok(WebhookWithSecret { secret, webhook: view(&w) })
}

pub fn patch(conn: &mut AnyConnection, p: &Principal, id: &str, input: &PatchWebhook, now: i64) -> Result<WebhookView> {
    p.require(Role::OrgAdmin)?;
    let url = input.url.as_deref().map(check_url).transpose()?;
    let events = input.events.as_deref().map(check_events).transpose()?;
    let description = input.description.as_deref().map(str::to_string);
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
        events::emit(conn, Event::by(p, Action::WebhookUpdate, "webhook", &w.id).detail(Value::Object(changes)), now)?;
        Ok(view(&w))
    })
}

/// Deletes a webhook, its delivery log and its undelivered events.
pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require(Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let w = load(conn, p, id)?;
        store::webhooks::delete(conn, &w.id)?;
        events::emit(conn, Event::by(p, Action::WebhookDelete, "webhook", &w.id).detail(json!({"url": w.url})), now)
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
    p.require(Role::OrgAdmin)?;
    let secret = whsec::generate().map_err(sealing)?;
    conn.transaction(|conn| {
        let mut w = load(conn, p, id)?;
        w.secret_sealed = sealer.seal(&w.id, &secret).map_err(sealing)?;
        w.secret_hint = whsec::hint(&secret);
        w.secret_seen_by = crate::store::roles_to_text(std::slice::from_ref(&p.id));
        w.updated_at = now;
        store::webhooks::update(conn, &w)?;
        events::emit(conn, Event::by(p, Action::WebhookSecretRoll, "webhook", &w.id), now)?;
        Ok(WebhookWithSecret { secret: secret.clone(), webhook: view(&w) })
    })
}

/// Queues a `webhook.test` event for this webhook only (the worker delivers it like any
/// other, so it shows in the delivery log). Bounded per org ([`TEST_EVENTS_PER_MINUTE`],
/// counted in `throttle`, the process's request throttle): test events cannot flood the
/// outbox and the worker's slots, from the API or the console; only callers allowed to
/// send them count, and over the limit nothing is queued (`TooMany`).
pub fn send_test(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    throttle: &crate::service::authz::throttle::Throttle,
    now: i64,
) -> Result<TestQueued> {
    p.require(Role::OrgAdmin)?;
    let key = format!("webhook-test:{}", p.org_id);
    let limit = crate::service::authz::throttle::Rule::Limit(TEST_EVENTS_PER_MINUTE);
    throttle.reserve(&[(&key, limit)], now).map_err(|retry_after| Error::TooMany { retry_after })?;
    conn.transaction(|conn| {
        let w = load(conn, p, id)?;
        if !w.enabled {
            return Err(Error::Conflict("the webhook is disabled; enable it to send a test event".into()));
        }
        let data = json!({"webhook_id": w.id, "message": "a test event"});
        let ev = NewEvent::new(&p.org_id, EventKind::WebhookTest, data, now);
        outbox::queue(conn, &ev, std::slice::from_ref(&w.id), &[])?;
        events::emit(
            conn,
            Event::by(p, Action::WebhookTest, "webhook", &w.id).detail(json!({"event_id": ev.id})),
            now,
        )?;
        Ok(TestQueued { event_id: ev.id, event_type: EventKind::WebhookTest })
    })
}

pub fn deliveries(conn: &mut AnyConnection, p: &Principal, id: &str, pq: &PageQuery) -> Result<Paged<DeliveryView>> {
    p.require(Role::OrgAdmin)?;
    let page = pq.validate_sorted::<DeliverySort>()?;
    let w = load(conn, p, id)?;
    let rows = store::webhooks::deliveries(conn, &w.id, &page)?;
    Ok(page.view(rows, |d| DeliveryView {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        attempt: d.attempt,
        at: crate::service::Timestamp::at(d.at),
        outcome: d.outcome,
        status_code: d.status_code,
        duration_ms: d.duration_ms,
        error: d.error,
    }))
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
            let t = store::tokens::get(conn, &id)?;
            events::notify(conn, &org_id, None, &[Notice::TokenExpiring { token: &t, days_left: m, mail: email }], now)
        })?;
    }
    Ok(queued)
}

/// The events of a webhook (`check_events`), for the OpenAPI document.
fn events_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("WebhookEvent"))
        .min_items(Some(1))
        .description(Some("The events to deliver, at least one (stored sorted, duplicates dropped)."))
        .build()
}

/// The outcome of a delivery attempt.
fn outcome_schema() -> utoipa::openapi::Object {
    crate::service::one_of(&["success", "failure"])
}

/// The event type of a test delivery.
fn test_event_schema() -> utoipa::openapi::Object {
    crate::service::one_of(&[crate::service::events::EventKind::WebhookTest.as_str()])
}

/// A webhook URL (`webhooks::check_url`).
fn webhook_url() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into())))
        .min_length(Some(1))
        .max_length(Some(crate::service::events::webhooks::MAX_URL_CHARS))
        .description(Some(
            "http or https; no user:password@, no #fragment, at most 2048 characters. Loopback, private and \
             link-local destinations are refused at delivery unless the server sets TOKEND_WEBHOOK_ALLOW_PRIVATE=true.",
        ))
        .build()
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
}
