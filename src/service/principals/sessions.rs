//! Interactive logins and what ends them: sessions, logout, sign-out-everywhere, a
//! person's own password change, and one-time password reset codes issued by an admin.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::secrets;
use crate::service::events::{self, Action, ActorKind, Entry, Event};
use crate::service::principals::login::{check_current_password, PasswordGate};
use crate::service::principals::passwords::Bound;
use crate::service::principals::users::{self, bump_epoch, load_target};
use crate::service::{new_id, Error, Principal, Result};
use crate::store::models::{ResetCode, Session, User};
use crate::store::{self, roles_from_text, AnyConnection, Db};

/// A person's own password change, as `PUT /api/v1/me/password` and the console's password
/// page both make it: from an interactive login, the new password's length rule, the
/// current password checked under the login guard (its failures count like a sign-in's),
/// the hash computed holding no database connection, then [`change_password`].
/// A wrong current password is a 422 on `current_password`.
pub fn change_own(
    db: &Db,
    gate: &PasswordGate,
    p: &Principal,
    current: &str,
    new: &str,
    ip: &str,
    now: i64,
) -> Result<()> {
    p.require_interactive()?;
    check_new_password(new)?;
    let user = users::load(&mut *db.read()?, &p.org_id, p.user_id()?)?;
    if !check_current_password(gate, &user, current, ip, now)? {
        return Err(crate::service::invalid("current_password", "is not correct"));
    }
    let new_hash = gate.hashing.hash(new)?;
    change_password(&mut *db.write()?, p, &new_hash, now)
}

/// Redeeming a reset code, as `POST /api/v1/password-reset` and the console's reset page
/// both do it: the length rule, the code checked before any hashing (a bad code costs no
/// hash), the hash computed holding no database connection, then [`redeem`].
pub fn redeem_code(db: &Db, hashing: &Bound, code: &str, new: &str, ip: &str, now: i64) -> Result<()> {
    check_new_password(new)?;
    let code = find_code(&mut *db.read()?, code, now)?;
    let new_hash = hashing.hash(new)?;
    redeem(&mut *db.write()?, &code, &new_hash, ip, now)
}

/// A new password (`users::check_password`), for the OpenAPI document.
fn new_password_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .min_length(Some(8))
        .max_length(Some(1024))
        .build()
}

fn check_new_password(new: &str) -> Result<()> {
    users::check_password(new).map_err(|_| crate::service::invalid("new_password", "must be 8 to 1024 characters"))
}

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
        let ev = Entry::new(&user.org_id, ActorKind::User, &user.id, Action::UserLogin)
            .on("user", Some(&user.id))
            .from_ip(Some(ip))
            .detail(serde_json::json!({"via": "console", "session": s.id}));
        events::emit(conn, ev, now)?;
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
        events::emit(conn, Event::by(p, Action::SessionLogout, p.acct.as_str(), &p.id), now)
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
        events::emit(conn, Event::by(p, Action::SessionRevokeAll, "user", &user_id), now)
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    #[schema(schema_with = new_password_schema)]
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
        events::emit(conn, Event::by(p, Action::UserPasswordChange, "user", &user_id), now)
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedCode {
    /// Shown once; only its SHA-256 is stored.
    pub code: String,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub expires_at: crate::service::Timestamp,
}

/// An admin's one-time reset code for a person (who sets their own password with it):
/// valid an hour, or 24 hours for someone who has no password yet (an invitation).
/// Issuing one ends the person's logins and voids earlier unused codes.
pub fn issue_reset_code(conn: &mut AnyConnection, p: &Principal, user_id: &str, now: i64) -> Result<IssuedCode> {
    p.require(crate::service::Role::OrgAdmin)?;
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
        events::emit(
            conn,
            Event::by(p, Action::UserPasswordReset, "user", &u.id).detail(serde_json::json!({"code_id": row.id})),
            now,
        )?;
        Ok(IssuedCode { code, expires_at: crate::service::Timestamp::at(row.expires_at) })
    })
}

/// [`issue_reset_code`], and the one-time link carrying the code (`{reset_url}?code=…`)
/// emailed to the person through the outbox: an invitation (`user.invitation`) for someone
/// without a password, a reset link (`user.password_reset`) otherwise. The link is sealed
/// in the outbox row (`events::outbox::queue_sealed_email`), never stored in clear. The
/// caller offers this only when email is sent (TOKEND_SMTP_URL).
pub fn issue_and_mail_code(
    conn: &mut AnyConnection,
    p: &Principal,
    sealer: &crate::whsec::Sealer,
    user_id: &str,
    reset_url: &str,
    now: i64,
) -> Result<IssuedCode> {
    conn.transaction(|conn| {
        let invite = load_target(conn, p, user_id)?.password_hash.is_none();
        let issued = issue_reset_code(conn, p, user_id, now)?;
        let u = load_target(conn, p, user_id)?;
        let inviter = match p.user_id() {
            Ok(id) => store::webhooks::live_user_email(conn, id)?,
            Err(_) => None,
        };
        let data = serde_json::json!({
            "org_id": u.org_id,
            "user": {"id": u.id, "email": u.email, "name": u.name},
            "by": inviter,
            "expires_at": &*issued.expires_at,
        });
        let kind = if invite { "user.invitation" } else { "user.password_reset" };
        let link = format!("{reset_url}?code={}", issued.code);
        events::outbox::queue_sealed_email(conn, sealer, &u.org_id, kind, &u.email, data, &link, now)?;
        Ok(issued)
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub code: String,
    #[schema(schema_with = new_password_schema)]
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
    let issuer_roles = crate::service::RoleSet::from_text(&issuer.roles);
    Ok(issuer_roles.holds(crate::service::Role::OrgAdmin) && roles.iter().all(|r| issuer_roles.holds(r)))
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
        let ev = Entry::new(&code.org_id, ActorKind::User, &code.user_id, Action::UserPasswordRedeem)
            .on("user", Some(&code.user_id))
            .from_ip(Some(ip))
            .detail(serde_json::json!({"code_id": code.id}));
        events::emit(conn, ev, now)
    })
}

/// Drops what can no longer matter: ended or expired sessions past their expiry, revoked
/// access-token ids past their expiry, and spent or expired reset codes (maintenance).
pub fn purge_expired(conn: &mut AnyConnection, now: i64) -> Result<usize> {
    let feed = store::revocations::purge(conn, now)?;
    Ok(store::sessions::purge(conn, now, now - RESET_CODE_TTL)? + feed)
}

/// A password login's access token, in the login's transaction: starts the session,
/// records the login and signs `login_claims`.
pub fn login_token(
    conn: &mut AnyConnection,
    ctx: &crate::service::oauth::exchange::Ctx<'_>,
    user: &crate::store::models::User,
) -> crate::service::Result<String> {
    conn.transaction(|conn| {
        let session = start(conn, user, ctx.cfg.access_token_ttl, ctx.now)?;
        let ev = Entry::new(&user.org_id, ActorKind::User, &user.id, Action::UserLogin)
            .on("user", Some(&user.id))
            .from_ip(Some(ctx.ip));
        events::emit(conn, ev, ctx.now)?;
        let claims = crate::service::oauth::exchange::login_claims(ctx, user, &session.id);
        Ok(crate::jwt::issue(ctx.keys, &claims, ctx.now)?)
    })
}
