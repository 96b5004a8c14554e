//! The durable outbox's writer: the webhook event vocabulary, the Standard Webhooks
//! payload, and the rows queued for subscribers and email recipients in the transaction of
//! the change. A leaf: it knows its rows and the store, nothing of the services (they emit
//! through `service::events::emit`). Delivery is the worker's, in `app::outbox`.
use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::rfc3339;
use crate::service::{new_id, Result};
use crate::store::models::{OutboxRow, Webhook};
use crate::store::{self, AnyConnection};

/// The kinds of webhook event: the subscribable ones and `webhook.test`. The one list of
/// them (the API's enum, subscription validation, the payload's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum EventKind {
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
    /// `POST /webhooks/{id}/test`: delivered whatever the subscription; not subscribable.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

/// In the OpenAPI document: `WebhookEvent`, the subscribable events.
impl utoipa::PartialSchema for EventKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some("An event a webhook may subscribe to."))
            .enum_values(Some(EventKind::SUBSCRIBABLE.map(EventKind::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for EventKind {
    fn name() -> std::borrow::Cow<'static, str> {
        "WebhookEvent".into()
    }
}

impl EventKind {
    /// The events a webhook may subscribe to.
    pub const SUBSCRIBABLE: [EventKind; 7] = [
        EventKind::TokenExpiring,
        EventKind::TokenExpired,
        EventKind::TokenRevoked,
        EventKind::TokenCreated,
        EventKind::AppSecretRegenerated,
        EventKind::UserDisabled,
        EventKind::PolicyChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TokenExpiring => "token.expiring",
            EventKind::TokenExpired => "token.expired",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::TokenCreated => "token.created",
            EventKind::AppSecretRegenerated => "app.secret_regenerated",
            EventKind::UserDisabled => "user.disabled",
            EventKind::PolicyChanged => "policy.changed",
            EventKind::WebhookTest => "webhook.test",
        }
    }

    /// A subscribable event by name.
    pub fn subscribable(s: &str) -> Option<EventKind> {
        EventKind::SUBSCRIBABLE.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event about to be queued: its id (the `webhook-id` of every delivery of it) and the
/// payload `{"type", "timestamp", "data"}` (Standard Webhooks).
pub struct NewEvent {
    pub id: String,
    pub org_id: String,
    pub kind: EventKind,
    pub payload: String,
    pub now: i64,
}

impl NewEvent {
    pub fn new(org_id: &str, kind: EventKind, data: Value, now: i64) -> NewEvent {
        let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        let payload = json!({"type": kind.as_str(), "timestamp": rfc3339(now), "data": data}).to_string();
        NewEvent { id, org_id: org_id.to_string(), kind, payload, now }
    }

    fn row(&self, kind: &str, webhook_id: Option<&str>, recipient: Option<&str>) -> OutboxRow {
        OutboxRow {
            id: new_id(),
            org_id: self.org_id.clone(),
            kind: kind.to_string(),
            event_id: self.id.clone(),
            event_type: self.kind.as_str().to_string(),
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

/// The events a webhook row subscribes to (its `events` column).
pub fn events_of(w: &Webhook) -> Vec<String> {
    serde_json::from_str(&w.events).unwrap_or_default()
}

/// The org's enabled webhooks, for [`subscribed`]: read once per change.
pub fn enabled(conn: &mut AnyConnection, org_id: &str) -> Result<Vec<Webhook>> {
    Ok(store::webhooks::enabled(conn, org_id)?)
}

/// The ids of `hooks` subscribed to `kind`.
pub fn subscribed(hooks: &[Webhook], kind: EventKind) -> Vec<String> {
    hooks.iter().filter(|w| events_of(w).iter().any(|e| e == kind.as_str())).map(|w| w.id.clone()).collect()
}

/// Queues one event for its subscribers and the email recipients, in the caller's
/// transaction. With neither, nothing is written.
pub fn queue(conn: &mut AnyConnection, ev: &NewEvent, hooks: &[String], emails: &[String]) -> Result<()> {
    let mut rows: Vec<OutboxRow> = hooks.iter().map(|h| ev.row_for_webhook(h)).collect();
    rows.extend(emails.iter().map(|r| ev.row_for_email(r)));
    Ok(store::webhooks::enqueue(conn, &rows)?)
}

/// The associated data a sealed email payload is bound to: its outbox row.
pub fn sealed_aad(row_id: &str) -> String {
    format!("outbox/{row_id}")
}

/// An email carrying a live secret (an invitation link with its one-time code), queued for
/// one recipient in the caller's transaction. The secret is sealed like webhook signing
/// secrets (`whsec::Sealer`, bound to the row's id) under the payload's `sealed` key; the
/// rest of the payload (`type`, `timestamp`, `data`) is clear. The worker opens it only to
/// send, and blanks it once the row is delivered or given up on.
#[allow(clippy::too_many_arguments)]
pub fn queue_sealed_email(
    conn: &mut AnyConnection,
    sealer: &crate::whsec::Sealer,
    org_id: &str,
    event_type: &str,
    recipient: &str,
    data: Value,
    secret: &str,
    now: i64,
) -> Result<()> {
    let id = new_id();
    let sealed = sealer.seal(&sealed_aad(&id), secret).map_err(|e| crate::service::Error::Internal(Box::new(e)))?;
    let payload = json!({"type": event_type, "timestamp": rfc3339(now), "data": data, "sealed": sealed}).to_string();
    let row = OutboxRow {
        id,
        org_id: org_id.to_string(),
        kind: "email".into(),
        event_id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        event_type: event_type.to_string(),
        payload,
        webhook_id: None,
        recipient: Some(recipient.to_string()),
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        locked_by: None,
        delivered_at: None,
        failed_at: None,
        last_error: None,
        created_at: now,
    };
    Ok(store::webhooks::enqueue(conn, &[row])?)
}

/// A payload without its sealed part (what stays once an email is delivered or given up).
pub fn unsealed_payload(payload: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(payload).ok()?;
    v.as_object_mut()?.remove("sealed")?;
    Some(v.to_string())
}

/// The org's admins' and owners' email addresses.
pub fn admin_emails(conn: &mut AnyConnection, org_id: &str) -> Result<Vec<String>> {
    Ok(store::webhooks::admin_emails(conn, org_id)?)
}

/// A live user's email address.
pub fn user_email(conn: &mut AnyConnection, user_id: &str) -> Result<Option<String>> {
    Ok(store::webhooks::live_user_email(conn, user_id)?)
}

/// Who gets email about a token of `owner_kind`/`owner_id` in `org_id`: its owner (a live
/// user), or for a service account's token the org's admins and owners.
pub fn token_recipients(
    conn: &mut AnyConnection,
    org_id: &str,
    owner_kind: &str,
    owner_id: &str,
) -> Result<Vec<String>> {
    if owner_kind == "user" {
        Ok(store::webhooks::live_user_email(conn, owner_id)?.into_iter().collect())
    } else {
        Ok(store::webhooks::admin_emails(conn, org_id)?)
    }
}
