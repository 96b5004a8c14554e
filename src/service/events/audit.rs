//! The audit log's writer: who did what to which object, when, from where, with what
//! outcome; and the flood control of refused calls. A leaf: it knows its rows and the
//! store, nothing of the services that write through it (they emit through
//! `service::events::emit`). The log's reading API is `events::log`.
use crate::clock::rfc3339;
use crate::service::{new_id, Result};
use crate::store::models::AuditEvent;
use crate::store::{self, AnyConnection};

/// What an audit row says happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    OrgCreate,
    UserCreate,
    UserUpdate,
    UserDelete,
    UserLogin,
    UserPasswordChange,
    UserPasswordReset,
    UserPasswordRedeem,
    SessionLogout,
    SessionRevokeAll,
    TokenCreate,
    TokenUpdate,
    TokenRevoke,
    TokenAdminRevoke,
    TokenRevokeAll,
    TokenRotate,
    TokenExchange,
    TokenPurge,
    AccessTokenRevoke,
    RoleCreate,
    RoleDelete,
    /// A custom or service role's description changed.
    RoleUpdate,
    PolicyUpdate,
    AppCreate,
    AppUpdate,
    AppDelete,
    AppDisable,
    AppTransfer,
    AppSecretRegenerate,
    /// An app allowed (or no longer allowed) to act for people toward audiences.
    AppDelegation,
    TrustPolicyCreate,
    TrustPolicyUpdate,
    TrustPolicyDelete,
    /// An external (keyless) token exchanged under a trust policy.
    TrustPolicyExchange,
    /// A person's access token exchanged by an app acting for them (RFC 8693 `act`).
    TokenDelegate,
    /// An app secret revoked on a leak report.
    AppSecretRevoke,
    ServiceAccountCreate,
    ServiceAccountUpdate,
    ServiceAccountDelete,
    ServiceAccountDisable,
    ServiceAccountTransfer,
    SavedSearchCreate,
    SavedSearchDelete,
    WebhookCreate,
    WebhookUpdate,
    WebhookDelete,
    WebhookDisable,
    WebhookTransfer,
    WebhookSecretRoll,
    WebhookTest,
    AuditSuppressed,
    /// A refused mutating call, as "METHOD /api/v1/route-pattern".
    Refused(String),
}

impl Action {
    pub fn as_str(&self) -> &str {
        match self {
            Action::OrgCreate => "org.create",
            Action::UserCreate => "user.create",
            Action::UserUpdate => "user.update",
            Action::UserDelete => "user.delete",
            Action::UserLogin => "user.login",
            Action::UserPasswordChange => "user.password.change",
            Action::UserPasswordReset => "user.password.reset",
            Action::UserPasswordRedeem => "user.password.redeem",
            Action::SessionLogout => "session.logout",
            Action::SessionRevokeAll => "session.revoke_all",
            Action::TokenCreate => "token.create",
            Action::TokenUpdate => "token.update",
            Action::TokenRevoke => "token.revoke",
            Action::TokenAdminRevoke => "token.admin_revoke",
            Action::TokenRevokeAll => "token.revoke_all",
            Action::TokenRotate => "token.rotate",
            Action::TokenExchange => "token.exchange",
            Action::TokenPurge => "token.purge",
            Action::AccessTokenRevoke => "access_token.revoke",
            Action::RoleCreate => "role.create",
            Action::RoleDelete => "role.delete",
            Action::RoleUpdate => "role.update",
            Action::PolicyUpdate => "policy.update",
            Action::AppCreate => "app.create",
            Action::AppUpdate => "app.update",
            Action::AppDelete => "app.delete",
            Action::AppDisable => "app.disable",
            Action::AppTransfer => "app.transfer",
            Action::AppSecretRegenerate => "app.secret.regenerate",
            Action::AppDelegation => "app.delegation",
            Action::TrustPolicyCreate => "trust_policy.create",
            Action::TrustPolicyUpdate => "trust_policy.update",
            Action::TrustPolicyDelete => "trust_policy.delete",
            Action::TrustPolicyExchange => "trust_policy.exchange",
            Action::TokenDelegate => "token.delegate",
            Action::AppSecretRevoke => "app.secret.revoke",
            Action::ServiceAccountCreate => "service_account.create",
            Action::ServiceAccountUpdate => "service_account.update",
            Action::ServiceAccountDelete => "service_account.delete",
            Action::ServiceAccountDisable => "service_account.disable",
            Action::ServiceAccountTransfer => "service_account.transfer",
            Action::SavedSearchCreate => "saved_search.create",
            Action::SavedSearchDelete => "saved_search.delete",
            Action::WebhookCreate => "webhook.create",
            Action::WebhookUpdate => "webhook.update",
            Action::WebhookDelete => "webhook.delete",
            Action::WebhookDisable => "webhook.disable",
            Action::WebhookTransfer => "webhook.transfer",
            Action::WebhookSecretRoll => "webhook.secret.roll",
            Action::WebhookTest => "webhook.test",
            Action::AuditSuppressed => "audit.suppressed",
            Action::Refused(call) => call,
        }
    }
}

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    User,
    ServiceAccount,
    App,
    /// An API token acting as itself (revocation by its holder, refused exchanges).
    ApiToken,
    /// The server (a new organization, the purge).
    System,
    /// An external identity presenting its issuer's token (keyless federation).
    External,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service_account",
            ActorKind::App => "app",
            ActorKind::ApiToken => "api_token",
            ActorKind::System => "system",
            ActorKind::External => "external",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused for want of a role or a right (403).
    Denied,
}

impl Outcome {
    /// Every outcome (and the values the log's `outcome` filter accepts).
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One row of the audit log about to be written; `org_id` None only for system events.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub org_id: Option<&'a str>,
    pub actor_kind: ActorKind,
    pub actor_id: Option<&'a str>,
    pub action: Action,
    pub object_kind: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub outcome: Outcome,
    pub detail: Option<serde_json::Value>,
}

impl<'a> Entry<'a> {
    /// A successful `action` of an actor in `org_id`, on no object yet, from no address.
    pub fn new(org_id: &'a str, actor_kind: ActorKind, actor_id: &'a str, action: Action) -> Entry<'a> {
        Entry {
            org_id: Some(org_id),
            actor_kind,
            actor_id: Some(actor_id),
            action,
            object_kind: None,
            object_id: None,
            ip: None,
            outcome: Outcome::Success,
            detail: None,
        }
    }

    /// A successful `action` of the server itself in `org_id`.
    pub fn system(org_id: &'a str, action: Action) -> Entry<'a> {
        Entry { actor_id: None, ..Entry::new(org_id, ActorKind::System, "", action) }
    }

    /// What was acted on.
    pub fn on(mut self, kind: &'a str, id: Option<&'a str>) -> Entry<'a> {
        self.object_kind = Some(kind);
        self.object_id = id;
        self
    }

    pub fn from_ip(mut self, ip: Option<&'a str>) -> Entry<'a> {
        self.ip = ip;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Entry<'a> {
        self.outcome = outcome;
        self
    }

    /// Adds the keys of `d` (an object) to the detail.
    pub fn detail(mut self, d: serde_json::Value) -> Entry<'a> {
        let mut merged = self.detail.take().unwrap_or_else(|| serde_json::json!({}));
        if let (Some(m), Some(extra)) = (merged.as_object_mut(), d.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        self.detail = Some(merged);
        self
    }
}

/// Writes one row, in the caller's transaction.
pub fn write(conn: &mut AnyConnection, e: &Entry<'_>, now: i64) -> Result<()> {
    let row = AuditEvent {
        id: new_id(),
        org_id: e.org_id.map(str::to_string),
        at: now,
        actor_kind: e.actor_kind.as_str().to_string(),
        actor_id: e.actor_id.map(str::to_string),
        action: e.action.as_str().to_string(),
        object_kind: e.object_kind.map(str::to_string),
        object_id: e.object_id.map(str::to_string),
        ip: e.ip.map(str::to_string),
        outcome: e.outcome.as_str().to_string(),
        detail: e.detail.as_ref().map(|d| d.to_string()),
    };
    Ok(store::audit::insert(conn, &row)?)
}

/// Longest object id or path kept in an audit row, in characters.
pub const MAX_FIELD_CHARS: usize = 64;

/// `s` cut to [`MAX_FIELD_CHARS`] characters, with `…` marking a cut.
pub fn truncate(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some((i, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..i])),
    }
}

/// Refused calls written individually per principal per window; beyond that they are
/// counted and written as one summary row.
pub const REFUSED_ROWS_PER_WINDOW: u32 = 5;
pub const REFUSED_WINDOW_SECONDS: i64 = 60;
/// Principals tracked at once; beyond that refused calls are written individually.
const MAX_TRACKED: usize = 10_000;

struct Window {
    start: i64,
    written: u32,
    suppressed: u64,
    org_id: String,
    actor_kind: ActorKind,
    ip: Option<String>,
}

/// Refused calls left out of the log in one window of one principal.
pub struct Suppressed {
    pub org_id: String,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub ip: Option<String>,
    pub count: u64,
    pub from: i64,
    pub to: i64,
}

impl Suppressed {
    pub fn record(&self, conn: &mut AnyConnection, now: i64) -> Result<()> {
        let ev = Entry::new(&self.org_id, self.actor_kind, &self.actor_id, Action::AuditSuppressed)
            .from_ip(self.ip.as_deref())
            .outcome(Outcome::Failure)
            .detail(serde_json::json!({
                "message": format!("refused calls suppressed: {}", self.count),
                "suppressed": self.count,
                "from": rfc3339(self.from),
                "to": rfc3339(self.to),
            }));
        write(conn, &ev, now)
    }
}

/// Per-principal flood control for the audit of refused calls: a caller repeating refused
/// calls cannot make the log grow faster than a few rows a minute.
#[derive(Default)]
pub struct RefusalFlood {
    map: parking_lot::Mutex<std::collections::HashMap<String, Window>>,
}

impl RefusalFlood {
    /// Whether to write this refused call of an actor (a principal, or a credential refused
    /// again and again: a known revoked token presented from many addresses), and a
    /// summary of an earlier window of the same actor that is due now.
    pub fn admit_for(
        &self,
        id: &str,
        org_id: &str,
        actor_kind: ActorKind,
        ip: Option<&str>,
        now: i64,
    ) -> (bool, Option<Suppressed>) {
        let mut map = self.map.lock();
        if !map.contains_key(id) && map.len() >= MAX_TRACKED {
            return (true, None);
        }
        let fresh = || Window {
            start: now,
            written: 1,
            suppressed: 0,
            org_id: org_id.to_string(),
            actor_kind,
            ip: ip.map(str::to_string),
        };
        match map.get_mut(id) {
            None => {
                map.insert(id.to_string(), fresh());
                (true, None)
            }
            Some(w) if now >= w.start + REFUSED_WINDOW_SECONDS => {
                let old = std::mem::replace(w, fresh());
                (true, summary(id, old, now))
            }
            Some(w) if w.written < REFUSED_ROWS_PER_WINDOW => {
                w.written += 1;
                (true, None)
            }
            Some(w) => {
                w.suppressed += 1;
                w.ip = ip.map(str::to_string);
                (false, None)
            }
        }
    }

    /// Summaries of windows that have closed (all windows with `all`, at shutdown); closed
    /// windows are forgotten.
    pub fn take_closed(&self, now: i64, all: bool) -> Vec<Suppressed> {
        let mut map = self.map.lock();
        let closed: Vec<String> = map
            .iter()
            .filter(|(_, w)| all || now >= w.start + REFUSED_WINDOW_SECONDS)
            .map(|(k, _)| k.clone())
            .collect();
        closed.into_iter().filter_map(|k| map.remove(&k).and_then(|w| summary(&k, w, now))).collect()
    }
}

fn summary(actor_id: &str, w: Window, now: i64) -> Option<Suppressed> {
    (w.suppressed > 0).then(|| Suppressed {
        org_id: w.org_id,
        actor_kind: w.actor_kind,
        actor_id: actor_id.to_string(),
        ip: w.ip,
        count: w.suppressed,
        from: w.start,
        to: now.min(w.start + REFUSED_WINDOW_SECONDS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct P(&'static str);

    impl RefusalFlood {
        fn admit(&self, p: &P, now: i64) -> (bool, Option<Suppressed>) {
            self.admit_for(p.0, "o", ActorKind::User, Some("192.0.2.1"), now)
        }
    }

    fn p(id: &'static str) -> P {
        P(id)
    }

    #[test]
    fn truncates_with_a_marker() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(100);
        let t = truncate(&long);
        assert_eq!(t.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(t.ends_with('…'));
        assert_eq!(truncate(&"x".repeat(MAX_FIELD_CHARS)).len(), MAX_FIELD_CHARS);
    }

    #[test]
    fn floods_are_summarised() {
        let f = RefusalFlood::default();
        let (a, b) = (p("a"), p("b"));
        let writes = (0..100).filter(|_| f.admit(&a, 1000).0).count();
        assert_eq!(writes, REFUSED_ROWS_PER_WINDOW as usize);
        assert!(f.admit(&b, 1000).0, "another principal has its own budget");
        assert!(f.take_closed(1059, false).is_empty(), "the window is still open");
        // The next allowed write carries the summary of the closed window.
        let (write, sum) = f.admit(&a, 1060);
        assert!(write);
        let sum = sum.expect("a summary");
        assert_eq!((sum.count, sum.from, sum.to), (95, 1000, 1060));
        // Or the maintenance pass writes it once the window has closed.
        for _ in 0..10 {
            f.admit(&a, 1061);
        }
        assert!(f.take_closed(1100, false).is_empty());
        let closed = f.take_closed(1121, false);
        assert_eq!(closed.len(), 1, "only a's window had anything suppressed");
        assert_eq!(closed[0].count, 10 - (REFUSED_ROWS_PER_WINDOW as u64 - 1));
        assert!(f.take_closed(1200, true).is_empty(), "each summary is handed out once");
    }
}
