//! Interactive logins and what ends them: sessions, logout, sign-out-everywhere, a
//! person's own password change, and one-time password reset codes issued by an admin.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::secrets;
use crate::service::events::audit::{self, Event};
use crate::service::principals::users::{bump_epoch, load_target};
use crate::service::{new_id, Error, Principal, Result};
use crate::store::models::{ResetCode, Session, User};
use crate::store::{self, roles_from_text, AnyConnection};

/// A reset code is valid for one hour, once.
pub const RESET_CODE_TTL: i64 = 3600;
/// How long an invitation lasts: the code of a person who has no password yet.
pub const INVITE_CODE_TTL: i64 = 24 * 3600;

/// Records a login; the access token names it (`sid`).
pub fn start(conn: &mut AnyConnection, user: &User, ttl: i64, now: i64) -> Result<Session> {
    insert_session(conn, user, ttl, None, now)
}

fn insert_session(
    conn: &mut AnyConnection,
    user: &User,
    ttl: i64,
    secret_hash: Option<String>,
    now: i64,
) -> Result<Session> {
    let s = Session {
        id: new_id(),
        org_id: user.org_id.clone(),
        user_id: user.id.clone(),
        epoch: user.epoch,
        created_at: now,
        expires_at: now + ttl,
        revoked_at: None,
        secret_hash,
    };
    store::sessions::insert(conn, &s)?;
    Ok(s)
}

/// A console sign-in (the password was checked by the caller through the same
/// `PasswordGate` as `POST /api/v1/login`): a login session whose reference is the
/// SHA-256 of the browser's cookie secret, audited like an API login.
pub fn start_console(
    conn: &mut AnyConnection,
    user: &User,
    secret_hash: &str,
    ttl: i64,
    ip: &str,
    now: i64,
) -> Result<Session> {
    conn.transaction(|conn| {
        let s = insert_session(conn, user, ttl, Some(secret_hash.to_string()), now)?;
        let ev = Event {
            org_id: Some(&user.org_id),
            actor_kind: "user",
            actor_id: Some(&user.id),
            action: "user.login",
            object_kind: Some("user"),
            object_id: Some(&user.id),
            ip: Some(ip),
            outcome: "success",
            detail: Some(serde_json::json!({"via": "console", "session": s.id})),
        };
        audit::record(conn, ev, now)?;
        Ok(s)
    })
}

/// Ends the console session whose cookie secret hashes to `secret_hash`, if there is one
/// (a new sign-in in the same browser replaces the session it had).
pub fn end_console(conn: &mut AnyConnection, secret_hash: &str, now: i64) -> Result<()> {
    if let Some(s) = store::sessions::find_by_secret(conn, secret_hash)? {
        store::sessions::revoke(conn, &s.id, now)?;
    }
    Ok(())
}

/// Ends the presented login (or, for a token that is not a login, that access token).
pub fn logout(conn: &mut AnyConnection, p: &Principal, now: i64) -> Result<()> {
    conn.transaction(|conn| {
        match &p.sid {
            Some(sid) => store::sessions::revoke(conn, sid, now)?,
            None => revoke_jti(conn, p, now)?,
        }
        audit::record(conn, Event::by(p, "session.logout", p.acct.as_str(), &p.id), now)
    })
}

fn revoke_jti(conn: &mut AnyConnection, p: &Principal, now: i64) -> Result<()> {
    record_revoked_jti(conn, &p.jti, &p.org_id, p.exp, now).map(|_| ())
}

/// Refuses an access token by its id until it expires (logout of a non-login token, and
/// RFC 7009 revocation). Answers whether this call recorded it (false if it already was).
pub fn record_revoked_jti(conn: &mut AnyConnection, jti: &str, org_id: &str, exp: i64, now: i64) -> Result<bool> {
    if crate::service::authz::principal::jti_revoked(conn, jti)? {
        return Ok(false);
    }
    store::sessions::insert_revoked_jti(conn, jti, org_id, exp.saturating_add(crate::jwt::LEEWAY), now)?;
    Ok(true)
}

/// "Sign out everywhere": every login and access token of the caller ends now.
pub fn sign_out_everywhere(conn: &mut AnyConnection, p: &Principal, now: i64) -> Result<()> {
    let user_id = p.user_id()?.to_string();
    conn.transaction(|conn| {
        bump_epoch(conn, &user_id, now)?;
        audit::record(conn, Event::by(p, "session.revoke_all", "user", &user_id), now)
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    #[schema(schema_with = crate::service::doc::new_password)]
    pub new_password: String,
}

/// Stores a person's new password hash (checked and hashed by the caller, outside any
/// transaction) and ends their other logins: the epoch moves on and only the current
/// session is carried over to it.
pub fn change_password(conn: &mut AnyConnection, p: &Principal, new_hash: &str, now: i64) -> Result<()> {
    p.require_interactive()?;
    let user_id = p.user_id()?.to_string();
    conn.transaction(|conn| {
        store::principals::set_password(conn, &user_id, new_hash, now)?;
        bump_epoch(conn, &user_id, now)?;
        if let Some(sid) = &p.sid {
            let epoch = store::principals::user_epoch(conn, &user_id)?;
            store::sessions::set_epoch(conn, sid, epoch)?;
        }
        audit::record(conn, Event::by(p, "user.password.change", "user", &user_id), now)
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedCode {
    /// Shown once; only its SHA-256 is stored.
    pub code: String,
    #[schema(schema_with = crate::service::doc::time)]
    pub expires_at: String,
}

/// An admin's one-time reset code for a person (who sets their own password with it):
/// valid an hour, or 24 hours for someone who has no password yet (an invitation).
/// Issuing one ends the person's logins and voids earlier unused codes.
pub fn issue_reset_code(conn: &mut AnyConnection, p: &Principal, user_id: &str, now: i64) -> Result<IssuedCode> {
    p.require("org:admin")?;
    p.require_interactive()?;
    conn.transaction(|conn| {
        let u = load_target(conn, p, user_id)?;
        store::sessions::void_reset_codes(conn, &u.id, now)?;
        let code = secrets::random_id("", 24);
        let row = ResetCode {
            id: new_id(),
            org_id: u.org_id.clone(),
            user_id: u.id.clone(),
            code_hash: secrets::hash(&code),
            created_by: p.id.clone(),
            created_at: now,
            // Someone new (no password yet) has a day; a reset of an existing password an hour.
            expires_at: now + if u.password_hash.is_none() { INVITE_CODE_TTL } else { RESET_CODE_TTL },
            used_at: None,
            user_roles: Some(u.roles.clone()),
        };
        store::sessions::insert_reset_code(conn, &row)?;
        bump_epoch(conn, &u.id, now)?;
        audit::record(
            conn,
            Event::by(p, "user.password.reset", "user", &u.id).detail(serde_json::json!({"code_id": row.id})),
            now,
        )?;
        Ok(IssuedCode { code, expires_at: rfc3339(row.expires_at) })
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub code: String,
    #[schema(schema_with = crate::service::doc::new_password)]
    pub new_password: String,
}

fn bad_code() -> Error {
    Error::BadRequest("the reset code is unknown, expired or already used".into())
}

/// The live reset code with this value (checked before any password hashing is done).
pub fn find_code(conn: &mut AnyConnection, code: &str, now: i64) -> Result<ResetCode> {
    let c = store::sessions::reset_code_by_hash(conn, &secrets::hash(code.trim()))?;
    let c = c.filter(|c| c.used_at.is_none() && c.expires_at > now).ok_or_else(bad_code)?;
    if !code_trusted(conn, &c)? {
        return Err(bad_code());
    }
    Ok(c)
}

/// Whether the trust a reset code was issued under still stands: the person is enabled
/// and holds exactly the roles they held then, no newer code was issued for them, and the
/// issuer is an enabled admin of the org still holding every role of the person. Checked
/// at redemption whatever path changed things (voiding on those changes is the first line).
fn code_trusted(conn: &mut AnyConnection, c: &ResetCode) -> Result<bool> {
    let live = |u: &Option<User>| {
        u.as_ref().filter(|u| u.org_id == c.org_id && !u.disabled && u.deleted_at.is_none()).cloned()
    };
    let Some(person) = live(&store::principals::user(conn, &c.user_id)?) else { return Ok(false) };
    let Some(issuer) = live(&store::principals::user(conn, &c.created_by)?) else { return Ok(false) };
    let roles = roles_from_text(&person.roles);
    let mut then = c.user_roles.as_deref().map(roles_from_text);
    if let Some(t) = then.as_mut() {
        t.sort();
    }
    let mut now_roles = roles.clone();
    now_roles.sort();
    if then.as_ref() != Some(&now_roles) || store::sessions::newer_reset_code(conn, c)? {
        return Ok(false);
    }
    let issuer_roles = roles_from_text(&issuer.roles);
    Ok(crate::service::holds(&issuer_roles, "org:admin")
        && roles.iter().all(|r| crate::service::holds(&issuer_roles, r)))
}

/// Spends the code and sets the password; ends every login of the person.
pub fn redeem(conn: &mut AnyConnection, code: &ResetCode, new_hash: &str, ip: &str, now: i64) -> Result<()> {
    conn.transaction(|conn| {
        let n = store::sessions::spend_reset_code(conn, &code.id, now)?;
        if n != 1 || !code_trusted(conn, code)? {
            return Err(bad_code());
        }
        let n = store::principals::set_password_if_live(conn, &code.user_id, new_hash, now)?;
        if n != 1 {
            return Err(bad_code());
        }
        bump_epoch(conn, &code.user_id, now)?;
        let ev = Event {
            org_id: Some(&code.org_id),
            actor_kind: "user",
            actor_id: Some(&code.user_id),
            action: "user.password.redeem",
            object_kind: Some("user"),
            object_id: Some(&code.user_id),
            ip: Some(ip),
            outcome: "success",
            detail: Some(serde_json::json!({"code_id": code.id})),
        };
        audit::record(conn, ev, now)
    })
}

/// Drops what can no longer matter: ended or expired sessions past their expiry, revoked
/// access-token ids past their expiry, and spent or expired reset codes (maintenance).
pub fn purge_expired(conn: &mut AnyConnection, now: i64) -> Result<usize> {
    let feed = store::revocations::purge(conn, now)?;
    Ok(store::sessions::purge(conn, now, now - RESET_CODE_TTL)? + feed)
}
