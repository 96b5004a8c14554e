//! The apps and service accounts a person created, when that person is deleted or demoted:
//! they must not keep working with roles their creator no longer holds. The caller decides
//! (`?credentials=disable|transfer`); without a decision the change is refused with 409.
use serde_json::json;

use super::audit::{self, Event};
use super::users::CredentialsChoice;
use super::{holds, Error, Principal, Result};
use crate::secrets;
use crate::store::models::{App, ServiceAccount};
use crate::store::{principals, roles_from_text, AnyConnection};

#[derive(Default, Debug)]
pub struct Settled {
    pub choice: Option<CredentialsChoice>,
    pub apps: Vec<String>,
    pub service_accounts: Vec<String>,
}

impl Settled {
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.service_accounts.is_empty()
    }
    pub fn to_json(&self) -> serde_json::Value {
        let choice = match self.choice {
            Some(CredentialsChoice::Disable) => "disable",
            Some(CredentialsChoice::Transfer) => "transfer",
            _ => "none",
        };
        json!({"choice": choice, "apps": self.apps, "service_accounts": self.service_accounts})
    }
}

/// Settles the live apps and service accounts created by `creator`: all of them when
/// `kept_roles` is None (the creator is leaving), otherwise those holding a role outside
/// `kept_roles` (the creator is being demoted).
pub fn settle(
    conn: &mut AnyConnection,
    p: &Principal,
    creator: &str,
    kept_roles: Option<&[String]>,
    choice: CredentialsChoice,
    now: i64,
) -> Result<Settled> {
    let affected = |roles: &str| match kept_roles {
        None => true,
        Some(kept) => roles_from_text(roles).iter().any(|r| !holds(kept, r)),
    };
    let live_apps = principals::live_apps_created_by(conn, &p.org_id, creator)?;
    let live_accounts = principals::live_accounts_created_by(conn, &p.org_id, creator)?;
    let apps_hit: Vec<App> = live_apps.into_iter().filter(|a| affected(&a.roles)).collect();
    let accounts_hit: Vec<ServiceAccount> = live_accounts.into_iter().filter(|s| affected(&s.roles)).collect();
    let mut out = Settled {
        choice: Some(choice),
        apps: apps_hit.iter().map(|a| a.id.clone()).collect(),
        service_accounts: accounts_hit.iter().map(|s| s.id.clone()).collect(),
    };
    if out.is_empty() {
        out.choice = None;
        return Ok(out);
    }
    match choice {
        CredentialsChoice::Ask => Err(Error::Conflict(format!(
            "this person created {} live app(s) and {} service account(s) that would keep roles they no longer hold; \
             repeat with ?credentials=disable or ?credentials=transfer",
            out.apps.len(),
            out.service_accounts.len()
        ))),
        CredentialsChoice::Disable => {
            // The creator knows these secrets: disabled credentials also lose them, so that
            // re-enabling one (an interactive act) never revives what the leaver holds.
            for a in &apps_hit {
                let unknown = secrets::hash(&secrets::random_id("", 32));
                principals::disable_app(conn, &a.id, &unknown, "(voided: regenerate)", now)?;
                audit::record(
                    conn,
                    Event::by(p, "app.disable", "app", &a.id).detail(json!({"creator": creator})),
                    now,
                )?;
            }
            for s in &accounts_hit {
                principals::disable_account(conn, &s.id, now)?;
                super::tokens::revoke_owned(conn, p, &s.id, now)?;
                audit::record(
                    conn,
                    Event::by(p, "service_account.disable", "service_account", &s.id)
                        .detail(json!({"creator": creator})),
                    now,
                )?;
            }
            Ok(out)
        }
        CredentialsChoice::Transfer => {
            // To a person only: a credential that owns credentials would escape every later
            // settlement.
            p.user_id().map_err(|_| Error::Forbidden("credentials are transferred to a person only".into()))?;
            for a in &apps_hit {
                p.require_holds_all(&roles_from_text(&a.roles), "app")?;
                principals::set_app_creator(conn, &a.id, &p.id, now)?;
                audit::record(conn, Event::by(p, "app.transfer", "app", &a.id).detail(json!({"from": creator})), now)?;
            }
            for s in &accounts_hit {
                p.require_holds_all(&roles_from_text(&s.roles), "service account")?;
                principals::set_account_creator(conn, &s.id, &p.id, now)?;
                audit::record(
                    conn,
                    Event::by(p, "service_account.transfer", "service_account", &s.id).detail(json!({"from": creator})),
                    now,
                )?;
            }
            Ok(out)
        }
    }
}
