//! One event sink. A change describes what happened as a typed [`Event`] (the audit row
//! and the notices it makes) and hands it to [`emit`] inside its own transaction: the
//! audit row and the outbox rows for the subscribed webhooks (and email) are written from
//! it, nothing re-read. `audit` (the log's writer) and `outbox` (the queue's writer) are
//! leaves; `log` reads the audit log back; `webhooks` manages subscriptions, the expiry
//! scan and the delivery rules. Nothing here imports the services that emit: the caller
//! is any [`Acting`] (the principal implements it in `authz::principal`).
pub mod audit;
pub mod outbox;
pub mod webhooks;

use serde_json::{json, Value};

pub use audit::{Action, ActorKind, Entry, Outcome};
pub use outbox::EventKind;

use crate::clock::rfc3339;
use crate::service::Result;
use crate::store::models::{ApiToken, App};
use crate::store::AnyConnection;

/// Whoever acts in an event (the authenticated principal).
pub trait Acting {
    fn org_id(&self) -> &str;
    fn actor_kind(&self) -> ActorKind;
    fn actor_id(&self) -> &str;
    /// The caller's address, if known.
    fn ip(&self) -> Option<&str>;
    /// The API token the caller's access token was exchanged from, if any.
    fn via_token(&self) -> Option<&str>;
}

/// Why a token was revoked, as its `token.revoked` event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    /// By its owner, or by the token itself at `/oauth/revoke`.
    Owner,
    /// By anyone else (an admin).
    Admin,
    /// Found in public by a secret scanner (or an operator's `tokend leaks check`).
    LeakReport,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Owner => "owner",
            RevokeReason::Admin => "admin",
            RevokeReason::LeakReport => "leak_report",
        }
    }
}

/// What a change tells subscribers: the typed data of one webhook event.
#[derive(Clone, Debug)]
pub enum Notice<'a> {
    /// A new token; `rotated_from` the token a rotation replaced.
    TokenCreated {
        token: &'a ApiToken,
        rotated_from: Option<&'a str>,
    },
    /// A revoked token. With `mail`, an admin's revocation is also mailed to the token's
    /// owner (sent only when TOKEND_SMTP_URL is set; the worker drops it otherwise).
    TokenRevoked {
        token: &'a ApiToken,
        mail: bool,
    },
    AppSecretRegenerated {
        app: &'a App,
    },
    /// A live API token revoked on a leak report (`leak`: where it was found); mailed to
    /// its owner (a service account's: the org's admins).
    TokenLeaked {
        token: &'a ApiToken,
        leak: Value,
    },
    /// An app's secret revoked on a leak report; mailed to the app's creator and the org's
    /// admins.
    AppSecretLeaked {
        app: &'a App,
        leak: Value,
    },
    PolicyChanged {
        before: Value,
        after: Value,
    },
    UserDisabled {
        user_id: &'a str,
        email: &'a str,
    },
    /// A token reached an expiry milestone: `days_left` 14, 7, 1, or 0 once expired. With
    /// `mail`, its owner is mailed too.
    TokenExpiring {
        token: &'a ApiToken,
        days_left: i64,
        mail: bool,
    },
}

impl Notice<'_> {
    pub fn kind(&self) -> EventKind {
        match self {
            Notice::TokenCreated { .. } => EventKind::TokenCreated,
            Notice::TokenRevoked { .. } | Notice::TokenLeaked { .. } | Notice::AppSecretLeaked { .. } => {
                EventKind::TokenRevoked
            }
            Notice::AppSecretRegenerated { .. } => EventKind::AppSecretRegenerated,
            Notice::PolicyChanged { .. } => EventKind::PolicyChanged,
            Notice::UserDisabled { .. } => EventKind::UserDisabled,
            Notice::TokenExpiring { days_left: 0, .. } => EventKind::TokenExpired,
            Notice::TokenExpiring { .. } => EventKind::TokenExpiring,
        }
    }
}

/// Who acted, as an event's `by` names them.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub kind: ActorKind,
    pub id: Option<&'a str>,
}

impl<'a> Actor<'a> {
    pub fn of(p: &'a impl Acting) -> Actor<'a> {
        Actor { kind: p.actor_kind(), id: Some(p.actor_id()) }
    }

    fn json(self) -> Value {
        json!({"kind": self.kind.as_str(), "id": self.id})
    }
}

/// A change: its audit row and the notices it makes.
pub struct Event<'a> {
    pub entry: Entry<'a>,
    pub notices: Vec<Notice<'a>>,
}

impl<'a> Event<'a> {
    /// A successful action of `p` on an object (and the API token it came through, if any).
    pub fn by(p: &'a impl Acting, action: Action, kind: &'a str, id: &'a str) -> Event<'a> {
        let mut entry = Entry::new(p.org_id(), p.actor_kind(), p.actor_id(), action).on(kind, Some(id)).from_ip(p.ip());
        entry.detail = p.via_token().map(|t| json!({ "via_token": t }));
        Event { entry, notices: vec![] }
    }

    pub fn detail(mut self, d: Value) -> Event<'a> {
        self.entry = self.entry.detail(d);
        self
    }

    pub fn notice(mut self, n: Notice<'a>) -> Event<'a> {
        self.notices.push(n);
        self
    }
}

impl<'a> From<Entry<'a>> for Event<'a> {
    fn from(entry: Entry<'a>) -> Event<'a> {
        Event { entry, notices: vec![] }
    }
}

/// Writes the change's audit row and, for a success in an org, its notices to the outbox,
/// in the caller's transaction.
pub fn emit<'a>(conn: &mut AnyConnection, e: impl Into<Event<'a>>, now: i64) -> Result<()> {
    let e = e.into();
    if changes_credentials(&e.entry) {
        // The credential caches of every instance drop what they hold once this commits.
        crate::store::revocations::invalidate(conn)?;
    }
    if let (Outcome::Success, Some(org_id)) = (e.entry.outcome, e.entry.org_id) {
        let by = Actor { kind: e.entry.actor_kind, id: e.entry.actor_id };
        notify(conn, org_id, Some(by), &e.notices, now)?;
    }
    audit::write(conn, &e.entry, now)
}

/// Whether an event may change what a credential check answers, so that the credential
/// caches (`service::oauth::credential_cache`) must drop what they hold. Coarse on purpose:
/// every audited change does, except what only records a use or a refusal (an exchange, a
/// refused call, a summary of suppressed refusals, anything whose outcome is a failure).
pub fn changes_credentials(e: &Entry<'_>) -> bool {
    if e.outcome != Outcome::Success {
        return false;
    }
    !matches!(
        e.action,
        Action::TokenExchange
            | Action::TrustPolicyExchange
            | Action::TokenDelegate
            | Action::Refused(_)
            | Action::AuditSuppressed
    )
}

/// Queues notices that no audit row of their own goes with (the expiry scan; the tokens
/// revoked with their owner, whose change is audited once), in the caller's transaction.
/// The org's webhooks are read once, and only when there is something to tell. Answers
/// how many events were queued (one with neither subscriber nor recipient is not).
pub fn notify(
    conn: &mut AnyConnection,
    org_id: &str,
    by: Option<Actor<'_>>,
    notices: &[Notice<'_>],
    now: i64,
) -> Result<usize> {
    let mut queued = 0;
    if notices.is_empty() {
        return Ok(queued);
    }
    let webhooks = outbox::enabled(conn, org_id)?;
    for n in notices {
        let kind = n.kind();
        let hooks = outbox::subscribed(&webhooks, kind);
        let by_json = by.map(Actor::json).unwrap_or(Value::Null);
        let (data, emails) = match n {
            Notice::TokenCreated { token, rotated_from } => {
                let mut data = json!({"org_id": org_id, "token": token_data(token), "created_by": by_json});
                if let Some(old) = rotated_from {
                    data["rotated_from"] = json!(old);
                }
                (data, vec![])
            }
            Notice::TokenRevoked { token, mail } => {
                let actor = by.and_then(|b| b.id);
                let reason = if actor == Some(token.owner_id.as_str()) || actor == Some(token.id.as_str()) {
                    RevokeReason::Owner
                } else {
                    RevokeReason::Admin
                };
                let emails = if *mail && reason == RevokeReason::Admin {
                    outbox::token_recipients(conn, &token.org_id, &token.owner_kind, &token.owner_id)?
                } else {
                    vec![]
                };
                let data = json!({"org_id": org_id, "token": token_data(token), "revoked_by": by_json, "reason": reason.as_str()});
                (data, emails)
            }
            Notice::TokenLeaked { token, leak } => {
                let emails = outbox::token_recipients(conn, &token.org_id, &token.owner_kind, &token.owner_id)?;
                let reason = RevokeReason::LeakReport.as_str();
                let data = json!({"org_id": org_id, "token": token_data(token), "revoked_by": by_json, "reason": reason, "leak": leak});
                (data, emails)
            }
            Notice::AppSecretLeaked { app, leak } => {
                let mut emails = outbox::admin_emails(conn, &app.org_id)?;
                if let Some(creator) = app.created_by.as_deref() {
                    if let Some(mail) = outbox::user_email(conn, creator)? {
                        if !emails.contains(&mail) {
                            emails.push(mail);
                        }
                    }
                }
                let data = json!({
                    "org_id": org_id,
                    "app": {"id": app.id, "name": app.name, "client_id": app.client_id, "hint": app.secret_hint},
                    "credential": "app_secret",
                    "revoked_by": by_json,
                    "reason": RevokeReason::LeakReport.as_str(),
                    "leak": leak,
                });
                (data, emails)
            }
            Notice::AppSecretRegenerated { app } => {
                let app = json!({"id": app.id, "name": app.name, "client_id": app.client_id});
                (json!({"org_id": org_id, "app": app, "by": by_json}), vec![])
            }
            Notice::PolicyChanged { before, after } => {
                (json!({"org_id": org_id, "before": before, "after": after, "by": by_json}), vec![])
            }
            Notice::UserDisabled { user_id, email } => {
                (json!({"org_id": org_id, "user": {"id": user_id, "email": email}, "by": by_json}), vec![])
            }
            Notice::TokenExpiring { token, days_left, mail } => {
                let emails = if *mail {
                    outbox::token_recipients(conn, &token.org_id, &token.owner_kind, &token.owner_id)?
                } else {
                    vec![]
                };
                let mut data = json!({"org_id": org_id, "token": token_data(token)});
                if *days_left > 0 {
                    data["days_left"] = json!(days_left);
                }
                (data, emails)
            }
        };
        if hooks.is_empty() && emails.is_empty() {
            continue;
        }
        outbox::queue(conn, &outbox::NewEvent::new(org_id, kind, data, now), &hooks, &emails)?;
        queued += 1;
    }
    Ok(queued)
}

/// A token as its events carry it.
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
