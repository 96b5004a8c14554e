//! The credentials a person created or whose secret they saw, when that person is deleted
//! or demoted: they must not keep working with roles the person no longer holds, nor with a
//! secret a leaver knows. The caller decides (`?credentials=disable|transfer`); without a
//! decision the change is refused with 409.
//!
//! What is settled: live apps and enabled service accounts the person created, live apps
//! and webhooks they created or whose secret they saw (`secret_seen_by`), and live API
//! tokens whose secret they saw on another owner (a service account's). On a demotion only
//! those carrying a role the person keeps no longer (a webhook carries org:admin).
//! - disable: apps are disabled with a secret nobody knows; service accounts are
//!   disabled and their tokens revoked; webhooks are disabled with a rolled secret.
//! - transfer: apps, service accounts and webhooks pass to the caller; apps and webhooks
//!   get a secret nobody knows (the new owner regenerates one when they need it).
//! - Either way the API tokens are revoked: a token is a secret, and its holder left.
use serde::Deserialize;
use serde_json::json;

use crate::secrets;
use crate::service::events::{self, Action, Event};
use crate::service::{Error, Principal, Result, RoleSet};
use crate::store::models::{ApiToken, App, ServiceAccount, Webhook};
use crate::store::{self, principals, roles_from_text, AnyConnection};
use crate::whsec::{self, Sealer};

/// What happens to the credentials a person created or saw the secret of when they are
/// deleted, or demoted below the roles those credentials hold (`?credentials=`; see
/// `service::principals::credentials`).
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsChoice {
    /// Not given: refuse with 409 when any such credential exists.
    #[default]
    #[serde(skip)]
    Ask,
    /// Disable them (their access tokens end at once; secrets are voided, tokens revoked).
    Disable,
    /// Make the caller their creator; the caller must hold every role they hold. Secrets
    /// are voided (the new owner regenerates them) and tokens revoked.
    Transfer,
}

#[derive(Default, Debug)]
pub struct Settled {
    pub choice: Option<CredentialsChoice>,
    pub apps: Vec<String>,
    pub service_accounts: Vec<String>,
    pub webhooks: Vec<String>,
    pub tokens: Vec<String>,
}

impl Settled {
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.service_accounts.is_empty() && self.webhooks.is_empty() && self.tokens.is_empty()
    }
    pub fn to_json(&self) -> serde_json::Value {
        let choice = match self.choice {
            Some(CredentialsChoice::Disable) => "disable",
            Some(CredentialsChoice::Transfer) => "transfer",
            _ => "none",
        };
        json!({"choice": choice, "apps": self.apps, "service_accounts": self.service_accounts,
               "webhooks": self.webhooks, "tokens": self.tokens})
    }
}

/// What a webhook's holder needs: managing webhooks is an admin's power.
const WEBHOOK_ROLE: crate::service::Role = crate::service::Role::OrgAdmin;

/// Settles what `person` created or saw the secret of: all of it when `kept_roles` is None
/// (the person is leaving), otherwise what holds a role outside `kept_roles` (demotion).
pub fn settle(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &Sealer,
    person: &str,
    kept_roles: Option<&[String]>,
    choice: CredentialsChoice,
    now: i64,
) -> Result<Settled> {
    let kept = kept_roles.map(RoleSet::from);
    let affected = |roles: &[String]| match &kept {
        None => true,
        Some(kept) => roles.iter().any(|r| !kept.holds(r)),
    };
    let apps: Vec<App> = principals::live_apps_held_by(conn, &p.org_id, person)?
        .into_iter()
        .filter(|a| affected(&roles_from_text(&a.roles)))
        .collect();
    let accounts: Vec<ServiceAccount> = principals::live_accounts_created_by(conn, &p.org_id, person)?
        .into_iter()
        .filter(|s| affected(&roles_from_text(&s.roles)))
        .collect();
    let hooks: Vec<Webhook> = if affected(&[WEBHOOK_ROLE.as_str().to_string()]) {
        store::webhooks::held_by(conn, &p.org_id, person)?
    } else {
        vec![]
    };
    let tokens: Vec<ApiToken> = store::tokens::live_seen_by_others(conn, &p.org_id, person, now)?
        .into_iter()
        .filter(|t| affected(&roles_from_text(&t.roles)))
        .collect();
    let mut out = Settled {
        choice: Some(choice),
        apps: apps.iter().map(|a| a.id.clone()).collect(),
        service_accounts: accounts.iter().map(|s| s.id.clone()).collect(),
        webhooks: hooks.iter().map(|w| w.id.clone()).collect(),
        tokens: tokens.iter().map(|t| t.id.clone()).collect(),
    };
    if out.is_empty() {
        out.choice = None;
        return Ok(out);
    }
    let from = json!({"from": person});
    match choice {
        CredentialsChoice::Ask => {
            return Err(Error::Conflict(format!(
                "this person created or saw the secret of {} live app(s), {} service account(s), {} webhook(s) \
                 and {} API token(s) of others that would outlast their trust; \
                 repeat with ?credentials=disable or ?credentials=transfer",
                out.apps.len(),
                out.service_accounts.len(),
                out.webhooks.len(),
                out.tokens.len()
            )))
        }
        CredentialsChoice::Disable => {
            // The person knows these secrets: disabled credentials also lose them, so that
            // re-enabling one (an interactive act) never revives what the leaver holds.
            for a in &apps {
                principals::disable_app(conn, &a.id, &unknown_secret_hash(), "(voided: regenerate)", now)?;
                events::emit(conn, Event::by(p, Action::AppDisable, "app", &a.id).detail(from.clone()), now)?;
            }
            for s in &accounts {
                principals::disable_account(conn, &s.id, now)?;
                crate::service::tokens::revoke_owned(conn, p, &s.id, now)?;
                let ev = Event::by(p, Action::ServiceAccountDisable, "service_account", &s.id).detail(from.clone());
                events::emit(conn, ev, now)?;
            }
            for w in &hooks {
                void_webhook(conn, sealer, w, None, now)?;
                events::emit(conn, Event::by(p, Action::WebhookDisable, "webhook", &w.id).detail(from.clone()), now)?;
            }
        }
        CredentialsChoice::Transfer => {
            // To a person only: a credential that owns credentials would escape every later
            // settlement.
            p.user_id().map_err(|_| Error::Forbidden("credentials are transferred to a person only".into()))?;
            for a in &apps {
                p.require_holds_all(&roles_from_text(&a.roles), "app")?;
                principals::transfer_app(conn, &a.id, &p.id, &unknown_secret_hash(), "(voided: regenerate)", now)?;
                events::emit(conn, Event::by(p, Action::AppTransfer, "app", &a.id).detail(from.clone()), now)?;
            }
            for s in &accounts {
                p.require_holds_all(&roles_from_text(&s.roles), "service account")?;
                principals::set_account_creator(conn, &s.id, &p.id, now)?;
                let ev = Event::by(p, Action::ServiceAccountTransfer, "service_account", &s.id).detail(from.clone());
                events::emit(conn, ev, now)?;
            }
            for w in &hooks {
                void_webhook(conn, sealer, w, Some(&p.id), now)?;
                events::emit(conn, Event::by(p, Action::WebhookTransfer, "webhook", &w.id).detail(from.clone()), now)?;
            }
        }
    }
    for t in &tokens {
        crate::service::tokens::revoke(conn, p, t, Action::TokenRevoke, now)?;
    }
    Ok(out)
}

/// The hash of a secret nobody is ever shown: the credential works again only once
/// someone regenerates it.
fn unknown_secret_hash() -> String {
    secrets::hash(&secrets::random_id("", 32))
}

/// Rolls a webhook's secret to one nobody is shown; disables it (`new_owner` None) or
/// passes it to `new_owner`.
fn void_webhook(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    w: &Webhook,
    new_owner: Option<&str>,
    now: i64,
) -> Result<()> {
    let secret = whsec::generate().map_err(|e| Error::Internal(Box::new(e)))?;
    let mut w = w.clone();
    w.secret_sealed = sealer.seal(&w.id, &secret).map_err(|e| Error::Internal(Box::new(e)))?;
    w.secret_hint = "(voided: roll)".into();
    w.secret_seen_by = "[]".into();
    match new_owner {
        None => w.enabled = false,
        Some(o) => w.created_by = Some(o.to_string()),
    }
    w.updated_at = now;
    Ok(store::webhooks::update(conn, &w)?)
}

/// Whether a secret holder (a user id in `secret_seen_by`) has left: deleted, disabled
/// or unknown.
pub fn holder_left(conn: &mut AnyConnection, org_id: &str, id: &str) -> Result<bool> {
    let u = principals::user(conn, id)?;
    Ok(!u.is_some_and(|u| u.org_id == org_id && !u.disabled && u.deleted_at.is_none()))
}

/// The holders in `seen_by` (JSON list) who have left.
pub fn holders_left(conn: &mut AnyConnection, org_id: &str, seen_by: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    for id in roles_from_text(seen_by) {
        if holder_left(conn, org_id, &id)? {
            out.push(id);
        }
    }
    Ok(out)
}

/// `seen_by` (JSON list) with `who` added.
pub fn seen_with(seen_by: &str, who: &str) -> String {
    let mut v = roles_from_text(seen_by);
    if !v.iter().any(|x| x == who) {
        v.push(who.to_string());
    }
    store::roles_to_text(&v)
}
