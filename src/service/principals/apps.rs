//! Server-to-server apps: a public client id and a secret shown once, stored as a hash.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::config::{Config, MAX_ACCESS_TOKEN_TTL};
use crate::secrets::{self, SecretKind};
use crate::service::authz::reach::{self, Reach, ReachPolicy};
use crate::service::events::{self, Action, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::{invalid, new_id, Error, Principal, Result, Role};
use crate::store::models::App;
use crate::store::principals;
use crate::store::{roles_from_text, roles_to_text, AnyConnection};
use utoipa::ToSchema;

const WHO: [Role; 2] = [Role::OrgAdmin, Role::OrgDeveloper];

#[derive(Serialize, ToSchema)]
pub struct AppView {
    /// The record id used in /api/v1/apps/{id}.
    pub id: String,
    /// OAuth client id, tkd_app_...
    pub client_id: String,
    pub name: String,
    pub description: String,
    #[schema(schema_with = crate::service::authz::role::schema::roles)]
    pub roles: Vec<String>,
    #[schema(minimum = 300, maximum = 86400)]
    pub access_token_ttl_seconds: i64,
    pub disabled: bool,
    /// May call /oauth/introspect.
    pub introspect: bool,
    /// e.g. tkd_cs_Ab12...
    pub secret_hint: String,
    /// While a regeneration's grace period runs, the end of it: until then the previous
    /// secret works too.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<crate::service::Timestamp>,
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub updated_at: crate::service::Timestamp,
    /// The resource audiences it may get access tokens for (["*"]: every configured one).
    pub audiences: Vec<String>,
    /// Whether it may get access tokens for the management API.
    pub management: bool,
}

/// The app plus its client secret, shown in this response only. The credentials do not expire.
#[derive(Serialize, ToSchema)]
pub struct AppWithSecret {
    /// tkd_cs_...
    pub client_secret: String,
    #[serde(flatten)]
    pub app: AppView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub name: crate::service::text::Name,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default)]
    #[schema(schema_with = crate::service::authz::role::schema::granted)]
    pub roles: Vec<String>,
    /// Default: the server's access-token TTL (TOKEND_ACCESS_TOKEN_TTL, 1800).
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(nullable = false, minimum = 300, maximum = 86400)]
    pub access_token_ttl_seconds: Option<i64>,
    /// Allow this app to call /oauth/introspect (default false). Turning it on needs
    /// org:admin and an interactive login.
    #[serde(default)]
    pub introspect: bool,
    /// Resource audiences (from TOKEND_AUDIENCES) it may get tokens for, or ["*"] for all.
    /// Default: the policy's default_audiences.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub audiences: Option<Vec<String>>,
    /// Whether it may get tokens for the management API (default false).
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub management: Option<bool>,
}

/// Absent fields are unchanged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub name: Option<crate::service::text::Name>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub description: Option<crate::service::text::Description>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(schema_with = crate::service::authz::role::schema::replaced)]
    pub roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(nullable = false, minimum = 300, maximum = 86400)]
    pub access_token_ttl_seconds: Option<i64>,
    /// A disabled app cannot authenticate and its access tokens introspect inactive.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
    /// Allow this app to call /oauth/introspect. Turning it on needs org:admin and an
    /// interactive login.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub introspect: Option<bool>,
    /// Narrowing is an edit; widening (an audience not reached before, or management
    /// turned on) is minting: an interactive login.
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub audiences: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::service::not_null")]
    #[schema(nullable = false)]
    pub management: Option<bool>,
}

fn view(a: &App) -> AppView {
    AppView {
        id: a.id.clone(),
        client_id: a.client_id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        roles: roles_from_text(&a.roles),
        access_token_ttl_seconds: a.access_token_ttl_seconds,
        disabled: a.disabled,
        introspect: a.introspect,
        secret_hint: a.secret_hint.clone(),
        previous_secret_expires_at: a.previous_secret_expires_at.map(crate::service::Timestamp::at),
        created_by: a.created_by.clone(),
        created_at: crate::service::Timestamp::at(a.created_at),
        updated_at: crate::service::Timestamp::at(a.updated_at),
        audiences: roles_from_text(&a.audiences),
        management: a.management,
    }
}

fn check_ttl(v: i64) -> Result<i64> {
    if !(300..=MAX_ACCESS_TOKEN_TTL).contains(&v) {
        return Err(invalid("access_token_ttl_seconds", format!("must be from 300 to {MAX_ACCESS_TOKEN_TTL}")));
    }
    Ok(v)
}

/// Letting an app see every token of the org through introspection is an admin's power.
fn check_introspect_grant(p: &Principal) -> Result<()> {
    p.require(crate::service::Role::OrgAdmin)?;
    p.require_interactive()
}

/// Acting on the secret or the life of an app that may introspect (regenerate, disable,
/// delete) needs what granting introspection needs.
fn check_introspect_app(p: &Principal, a: &App) -> Result<()> {
    if a.introspect {
        check_introspect_grant(p)?;
    }
    Ok(())
}

fn load(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<App> {
    principals::app_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)
}

pub fn create(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    input: &NewApp,
    now: i64,
) -> Result<AppWithSecret> {
    p.require_any(&WHO)?;
    p.require_interactive()?;
    let name = input.name.to_string();
    let description = input.description.as_deref().unwrap_or("").to_string();
    let ttl = check_ttl(input.access_token_ttl_seconds.unwrap_or(cfg.access_token_ttl.max(300)))?;
    if input.introspect {
        check_introspect_grant(p)?;
    }
    conn.transaction(|conn| {
        crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, &input.roles)?;
        let policy = ReachPolicy::of(&crate::service::org::policy::get(conn, &p.org_id)?);
        let reach = reach::for_new(cfg, &policy, input.audiences.as_deref(), input.management, &input.roles)?;
        let secret = secrets::generate(SecretKind::ClientSecret);
        let a = App {
            id: new_id(),
            org_id: p.org_id.clone(),
            name,
            description,
            client_id: secrets::random_id("tkd_app_", 16),
            secret_hash: secret.hash,
            secret_hint: secret.hint,
            roles: roles_to_text(&input.roles),
            access_token_ttl_seconds: ttl,
            disabled: false,
            created_by: Some(p.id.clone()),
            created_at: now,
            updated_at: now,
            epoch: 0,
            introspect: input.introspect,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            audiences: reach.audiences_text(),
            management: reach.management,
            secret_seen_by: roles_to_text(std::slice::from_ref(&p.id)),
        };
        principals::insert_app(conn, &a)?;
        events::emit(
            conn,
            Event::by(p, Action::AppCreate, "app", &a.id).detail(serde_json::json!({"client_id": a.client_id,
                "roles": input.roles, "audiences": reach.audiences, "management": reach.management})),
            now,
        )?;
        Ok(AppWithSecret { client_secret: secret.value, app: view(&a) })
    })
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<AppView>> {
    p.require_any(&WHO)?;
    let page = pq.validate_sorted::<Sort>()?;
    let rows = principals::list_apps(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |a| view(&a)))
}

pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str) -> Result<AppView> {
    p.require_any(&WHO)?;
    Ok(view(&load(conn, p, id)?))
}

pub fn patch(
    conn: &mut AnyConnection,
    cfg: &Config,
    p: &Principal,
    id: &str,
    input: &AppPatch,
    now: i64,
) -> Result<AppView> {
    p.require_any(&WHO)?;
    let name = input.name.as_deref().map(str::to_string);
    let description = input.description.as_deref().map(str::to_string);
    let ttl = input.access_token_ttl_seconds.map(check_ttl).transpose()?;
    conn.transaction(|conn| {
        let mut a = load(conn, p, id)?;
        let before = roles_from_text(&a.roles);
        p.require_holds_all(&before, "app")?;
        if let Some(r) = &input.roles {
            crate::service::authz::roles::check_grantable(conn, &p.org_id, &p.roles, r)?;
            p.require_interactive_if_raising(&before, r)?;
            a.roles = roles_to_text(r);
        }
        if input.introspect == Some(true) && !a.introspect {
            check_introspect_grant(p)?;
        }
        if let Some(v) = input.introspect {
            a.introspect = v;
        }
        // Disabling ends the app's access tokens for good (re-enabling does not revive them);
        // re-enabling restores a credential's power, so it is minting.
        if input.disabled == Some(true) && !a.disabled {
            check_introspect_app(p, &a)?;
            a.epoch += 1;
            // A previous secret in its grace period dies with the app's access tokens.
            a.previous_secret_hash = None;
            a.previous_secret_expires_at = None;
        }
        if input.disabled == Some(false) && a.disabled {
            p.require_interactive()?;
            // The secret would work again: not while someone who has left holds it.
            let left = crate::service::principals::credentials::holders_left(conn, &p.org_id, &a.secret_seen_by)?;
            if !left.is_empty() {
                return Err(Error::Conflict(format!(
                    "the secret of this app was seen by {} person(s) who have left; regenerate it \
                     (POST /api/v1/apps/{}/secret) before enabling the app",
                    left.len(),
                    a.id
                )));
            }
        }
        if let Some(v) = name {
            a.name = v;
        }
        if let Some(v) = description {
            a.description = v;
        }
        if let Some(v) = ttl {
            a.access_token_ttl_seconds = v;
        }
        if let Some(v) = input.disabled {
            a.disabled = v;
        }
        let reach_before = Reach::from_row(&a.audiences, a.management);
        if input.audiences.is_some() || input.management.is_some() {
            let policy = ReachPolicy::of(&crate::service::org::policy::get(conn, &p.org_id)?);
            let roles = roles_from_text(&a.roles);
            let (aud, m) = (input.audiences.as_deref(), input.management);
            let after = reach::for_change(cfg, p, &policy, &reach_before, aud, m, &roles)?;
            a.audiences = after.audiences_text();
            a.management = after.management;
        }
        a.updated_at = now;
        principals::update_app(conn, &a, now)?;
        let detail = serde_json::json!({
            "roles": {"before": before, "after": roles_from_text(&a.roles)},
            "introspect": a.introspect,
            "disabled": a.disabled,
            "reach": {"before": reach_before, "after": Reach::from_row(&a.audiences, a.management)},
        });
        events::emit(conn, Event::by(p, Action::AppUpdate, "app", &a.id).detail(detail), now)?;
        Ok(view(&a))
    })
}

pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require_any(&WHO)?;
    conn.transaction(|conn| {
        let a = load(conn, p, id)?;
        p.require_holds_all(&roles_from_text(&a.roles), "app")?;
        check_introspect_app(p, &a)?;
        principals::delete_app(conn, &a.id, now)?;
        events::emit(
            conn,
            Event::by(p, Action::AppDelete, "app", &a.id).detail(serde_json::json!({"client_id": a.client_id})),
            now,
        )?;
        Ok(())
    })
}

/// The longest grace period of a secret regeneration: 7 days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 86_400;

/// The optional body of `POST /apps/{id}/secret`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// Seconds during which the old secret keeps working beside the new one (0 to 7 days;
    /// absent or 0: the old secret stops working at once).
    #[serde(default, deserialize_with = "crate::service::whole_number")]
    #[schema(nullable = false, minimum = 0, maximum = 604800, default = 0)]
    pub grace_period_seconds: Option<i64>,
}

/// A new secret. Without a grace period the old one (and every access token minted with
/// it) stops working when this commits; with one, the old secret and its access tokens
/// keep working until the grace ends, then die. A previous secret still in its grace dies
/// at once: at most two secrets work at any time.
pub fn regenerate_secret(
    conn: &mut AnyConnection,
    p: &Principal,
    id: &str,
    input: &SecretRotation,
    now: i64,
) -> Result<AppWithSecret> {
    p.require_any(&WHO)?;
    p.require_interactive()?;
    let grace = input.grace_period_seconds.unwrap_or(0);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(invalid("grace_period_seconds", format!("must be from 0 to {MAX_GRACE_SECONDS} (7 days)")));
    }
    conn.transaction(|conn| {
        let mut a = load(conn, p, id)?;
        p.require_holds_all(&roles_from_text(&a.roles), "app")?;
        check_introspect_app(p, &a)?;
        let secret = secrets::generate(SecretKind::ClientSecret);
        let old_hash = std::mem::replace(&mut a.secret_hash, secret.hash);
        a.secret_hint = secret.hint;
        a.updated_at = now;
        // Access tokens minted with the old secret end with it: at once, or (grace) when
        // the grace ends — they carry the previous epoch, accepted only until then.
        a.epoch += 1;
        // Whoever is shown the new secret holds it; with a grace, the old one's holders too.
        if grace > 0 {
            a.previous_secret_hash = Some(old_hash);
            a.previous_secret_expires_at = Some(now + grace);
            a.secret_seen_by = crate::service::principals::credentials::seen_with(&a.secret_seen_by, &p.id);
        } else {
            a.previous_secret_hash = None;
            a.previous_secret_expires_at = None;
            a.secret_seen_by = roles_to_text(std::slice::from_ref(&p.id));
        }
        principals::update_app_secret(conn, &a, now)?;
        let detail = serde_json::json!({"grace_period_seconds": grace});
        let ev = Event::by(p, Action::AppSecretRegenerate, "app", &a.id)
            .detail(detail)
            .notice(events::Notice::AppSecretRegenerated { app: &a });
        events::emit(conn, ev, now)?;
        Ok(AppWithSecret { client_secret: secret.value, app: view(&a) })
    })
}

crate::service::words!(
    /// Sort keys of the app list.
    pub Sort { CreatedAt = "created_at", Name = "name" }
);
