//! Who is calling: built from a verified access token, re-checked against the database
//! so that a disabled user, a revoked API token or a deleted app stops at once.
use serde::Serialize;

use crate::jwt::AccessClaims;
use crate::service::authz::roles::{Role, RoleSet};
use crate::service::events::{Acting, ActorKind};
use crate::service::tokens::usage::Usage;
use crate::service::Result;
use crate::store::models::{ApiToken, User};
use crate::store::{self, principals, AnyConnection};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acct {
    User,
    ServiceAccount,
    App,
}

impl Acct {
    pub fn as_str(self) -> &'static str {
        match self {
            Acct::User => "user",
            Acct::ServiceAccount => "service_account",
            Acct::App => "app",
        }
    }
    pub fn parse(s: &str) -> Option<Acct> {
        match s {
            "user" => Some(Acct::User),
            "service_account" => Some(Acct::ServiceAccount),
            "app" => Some(Acct::App),
            _ => None,
        }
    }
}

impl From<Acct> for ActorKind {
    fn from(a: Acct) -> ActorKind {
        match a {
            Acct::User => ActorKind::User,
            Acct::ServiceAccount => ActorKind::ServiceAccount,
            Acct::App => ActorKind::App,
        }
    }
}

impl Acting for Principal {
    fn org_id(&self) -> &str {
        &self.org_id
    }
    fn actor_kind(&self) -> ActorKind {
        self.acct.into()
    }
    fn actor_id(&self) -> &str {
        &self.id
    }
    fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
    fn via_token(&self) -> Option<&str> {
        self.token_id.as_deref()
    }
}

impl From<crate::service::tokens::vocab::OwnerKind> for Acct {
    fn from(k: crate::service::tokens::vocab::OwnerKind) -> Acct {
        match k {
            crate::service::tokens::vocab::OwnerKind::User => Acct::User,
            crate::service::tokens::vocab::OwnerKind::ServiceAccount => Acct::ServiceAccount,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub org_id: String,
    pub acct: Acct,
    /// User id, service account id, or the app's client id.
    pub id: String,
    /// Effective roles: the token's roles that the principal still holds.
    pub roles: RoleSet,
    /// Authenticated with a password in this session (`amr` has `pwd`).
    pub interactive: bool,
    /// The API token the access token was exchanged from, if any.
    pub token_id: Option<String>,
    pub ip: Option<String>,
    /// The login session (interactive tokens), the access token's id and expiry: what
    /// logout and sign-out-everywhere end.
    pub sid: Option<String>,
    pub jti: String,
    pub exp: i64,
}

impl Principal {
    /// Whether the caller holds the built-in `role` (any other name: `self.roles.holds`).
    pub fn has(&self, role: Role) -> bool {
        self.roles.holds(role)
    }
    pub fn is_owner(&self) -> bool {
        self.has(Role::OrgOwner)
    }
    pub fn require(&self, role: Role) -> Result<()> {
        if self.has(role) {
            Ok(())
        } else {
            Err(crate::service::Error::Forbidden(format!("requires the role {role}")))
        }
    }
    pub fn require_any(&self, roles: &[Role]) -> Result<()> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(crate::service::Error::Forbidden(format!("requires one of the roles {}", names.join(", "))))
        }
    }
    /// Minting or resetting a credential (API tokens, app secrets, passwords) needs an
    /// interactive login: a leaked API token must not be able to mint more.
    pub fn require_interactive(&self) -> Result<()> {
        if self.interactive && self.acct == Acct::User {
            Ok(())
        } else {
            Err(crate::service::Error::Forbidden(
                "minting or resetting credentials needs an access token from an interactive login; one derived from an API token or app cannot".into(),
            ))
        }
    }

    /// Raising the roles of an existing credential is minting: it needs an interactive login.
    pub fn require_interactive_if_raising(&self, before: &[String], after: &[String]) -> Result<()> {
        let before = RoleSet::from(before);
        if after.iter().any(|r| !before.holds(r)) {
            self.require_interactive()
        } else {
            Ok(())
        }
    }

    /// Acting on a principal (user, app, service account) needs every role it holds, so
    /// that no one reaches roles they lack through it.
    pub fn require_holds_all(&self, roles: &[String], what: &str) -> Result<()> {
        match roles.iter().find(|r| !self.roles.holds(r)) {
            Some(r) => {
                Err(crate::service::Error::Forbidden(format!("this {what} holds {r}, which the caller does not")))
            }
            None => Ok(()),
        }
    }

    pub fn user_id(&self) -> Result<&str> {
        if self.acct == Acct::User {
            Ok(&self.id)
        } else {
            Err(crate::service::Error::Forbidden("only people have personal tokens".into()))
        }
    }
}

/// Whether an API token may still be exchanged at `now`.
pub fn token_live(t: &ApiToken, usage: &Usage, now: i64) -> bool {
    t.revoked_at.is_none() && t.expires_at > now && !idle_expired(t, usage, now)
}

pub fn idle_expired(t: &ApiToken, usage: &Usage, now: i64) -> bool {
    idle(&t.id, t.idle_ttl_days, t.last_used_at, t.created_at, usage, now)
}

/// Idle beyond its idle TTL, judged by the freshest last use (database or this process).
pub fn idle(
    id: &str,
    idle_ttl_days: Option<i64>,
    last_used_at: Option<i64>,
    created_at: i64,
    usage: &Usage,
    now: i64,
) -> bool {
    match idle_ttl_days {
        Some(days) => {
            let last = usage.last_used(id).max(last_used_at.unwrap_or(0)).max(created_at);
            now >= last + days * 86_400
        }
        None => false,
    }
}

/// When the API token `id` of `owner` stops being live by time (expiry or idle TTL), or
/// None when it is not live now.
fn live_api_token(conn: &mut AnyConnection, id: &str, owner: &str, usage: &Usage, now: i64) -> Result<Option<i64>> {
    let t = store::tokens::find(conn, id)?;
    Ok(t.filter(|t| t.owner_id == owner && token_live(t, usage, now)).map(|t| {
        let idle_at = t.idle_ttl_days.map_or(i64::MAX, |days| {
            usage.last_used(&t.id).max(t.last_used_at.unwrap_or(0)).max(t.created_at) + days * 86_400
        });
        t.expires_at.min(idle_at)
    }))
}

/// Resolves verified claims to a live principal, or None when what stands behind the
/// token is gone (user disabled or deleted, API token revoked, app deleted or disabled),
/// when the token was minted before its principal's epoch was bumped, when its login
/// session ended, or when it was revoked by jti.
pub fn resolve(conn: &mut AnyConnection, c: &AccessClaims, usage: &Usage, now: i64) -> Result<Option<Principal>> {
    Ok(resolve_until(conn, c, usage, now)?.map(|(p, _)| p))
}

/// `resolve`, with the time at which the answer stops holding by the clock alone (a login
/// session's end, an app secret's grace, the API token's expiry or idle TTL): what a cache
/// of the answer must not outlive. Revocations are not in it (see `store::revocations`).
pub fn resolve_until(
    conn: &mut AnyConnection,
    c: &AccessClaims,
    usage: &Usage,
    now: i64,
) -> Result<Option<(Principal, i64)>> {
    let mut until = c.exp;
    let Some(acct) = Acct::parse(&c.acct) else { return Ok(None) };
    let interactive = c.interactive();
    let token_id = (!interactive && acct != Acct::App).then(|| c.client_id.clone());
    let minted_epoch = c.ep.unwrap_or(0);
    let current_roles: RoleSet = match acct {
        Acct::User => {
            let u = principals::user(conn, &c.sub)?;
            let Some(u) = u.filter(|u| u.org_id == c.org && !u.disabled && u.deleted_at.is_none()) else {
                return Ok(None);
            };
            let live = if interactive {
                session_live(conn, c.sid.as_deref(), &u, now)?
            } else {
                (minted_epoch >= u.epoch).then_some(i64::MAX)
            };
            let Some(session_end) = live else { return Ok(None) };
            until = until.min(session_end);
            RoleSet::from_text(&u.roles)
        }
        Acct::ServiceAccount => {
            let s = principals::account(conn, &c.sub)?;
            let Some(s) = s.filter(|s| s.org_id == c.org && !s.disabled && s.deleted_at.is_none()) else {
                return Ok(None);
            };
            if minted_epoch < s.epoch || interactive {
                return Ok(None);
            }
            RoleSet::from_text(&s.roles)
        }
        Acct::App => {
            let a = principals::app_by_client_id(conn, &c.sub)?;
            let Some(a) = a.filter(|a| a.org_id == c.org && !a.disabled) else { return Ok(None) };
            // Minted with the previous secret during a regeneration's grace period: live
            // until the grace ends.
            let in_grace = minted_epoch == a.epoch - 1 && a.previous_secret_expires_at.is_some_and(|u| u > now);
            if (minted_epoch < a.epoch && !in_grace) || interactive {
                return Ok(None);
            }
            if minted_epoch < a.epoch {
                until = until.min(a.previous_secret_expires_at.unwrap_or(now));
            }
            RoleSet::from_text(&a.roles)
        }
    };
    if let Some(tid) = &token_id {
        let Some(token_end) = live_api_token(conn, tid, &c.sub, usage, now)? else { return Ok(None) };
        until = until.min(token_end);
    }
    if jti_revoked(conn, &c.jti)? {
        return Ok(None);
    }
    let p = Principal {
        org_id: c.org.clone(),
        acct,
        id: c.sub.clone(),
        roles: RoleSet::from(c.roles.as_slice()).intersect(&current_roles),
        interactive,
        token_id,
        ip: None,
        sid: c.sid.clone(),
        jti: c.jti.clone(),
        exp: c.exp,
    };
    Ok(Some((p, until)))
}

/// The principal of a console session (by the SHA-256 of its cookie secret): the same
/// one an interactive login's access token resolves to (`amr` pwd, the session as `sid`),
/// or None when the session ended, expired, is older than the user's epoch, or the user
/// is disabled or deleted.
pub fn resolve_console(conn: &mut AnyConnection, secret_hash: &str, now: i64) -> Result<Option<Principal>> {
    let Some(s) = store::sessions::find_by_secret(conn, secret_hash)? else { return Ok(None) };
    let u = principals::user(conn, &s.user_id)?;
    let Some(u) = u.filter(|u| u.org_id == s.org_id && !u.disabled && u.deleted_at.is_none()) else {
        return Ok(None);
    };
    if session_live(conn, Some(&s.id), &u, now)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Principal {
        org_id: u.org_id.clone(),
        acct: Acct::User,
        id: u.id.clone(),
        roles: RoleSet::from_text(&u.roles),
        interactive: true,
        token_id: None,
        ip: None,
        sid: Some(s.id.clone()),
        jti: format!("console:{}", s.id),
        exp: s.expires_at,
    }))
}

/// A login session lives while it is not revoked, not expired, and not older than the
/// user's epoch (a password reset or sign-out-everywhere bumps it): its end, if it lives.
fn session_live(conn: &mut AnyConnection, sid: Option<&str>, u: &User, now: i64) -> Result<Option<i64>> {
    let Some(sid) = sid else { return Ok(None) };
    let s = store::sessions::find(conn, sid)?;
    Ok(s.filter(|s| s.user_id == u.id && s.revoked_at.is_none() && s.expires_at > now && s.epoch >= u.epoch)
        .map(|s| s.expires_at))
}

pub fn jti_revoked(conn: &mut AnyConnection, jti: &str) -> Result<bool> {
    Ok(store::sessions::jti_revoked(conn, jti)?)
}
