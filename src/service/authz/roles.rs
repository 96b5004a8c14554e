//! The org's role catalogue: four built-in organization roles plus its own service and
//! custom roles. Only catalogued roles can be granted.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::service::events::{self, Action, Event};
use crate::service::{invalid, Error, Principal, Result};
use crate::store::{self, roles_from_text, roles_to_text, AnyConnection};

pub use super::role::{valid_name, Role, RoleName, RoleSet};

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub name: String,
    /// organization for the four built-in roles.
    #[schema(schema_with = role_kind)]
    pub kind: String,
    pub description: String,
}

fn role_kind() -> utoipa::openapi::Object {
    crate::service::one_of(&["organization", "service", "custom"])
}

fn new_role_kind() -> utoipa::openapi::Object {
    crate::service::one_of(&["service", "custom"])
}

/// A custom or service role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    #[schema(schema_with = crate::service::authz::role::schema::new_role_name)]
    pub name: String,
    #[schema(schema_with = new_role_kind)]
    pub kind: String,
    #[serde(default)]
    pub description: crate::service::text::Description,
}

/// Service and custom roles one org may catalogue (409 beyond).
pub const MAX_CATALOGUED_ROLES: i64 = 500;

pub fn list(conn: &mut AnyConnection, p: &Principal) -> Result<Vec<RoleView>> {
    let mut out: Vec<RoleView> = Role::ALL
        .iter()
        .map(|r| RoleView { name: r.to_string(), kind: "organization".into(), description: r.description().into() })
        .collect();
    let own = store::org::roles(conn, &p.org_id)?;
    out.extend(own.into_iter().map(|r| RoleView { name: r.name, kind: r.kind, description: r.description }));
    Ok(out)
}

/// Every role must be catalogued in the org and held by the granter.
/// Every role of the org (built-in and catalogued) that `holder` does not hold.
pub fn unheld(conn: &mut AnyConnection, org_id: &str, holder: &RoleSet) -> Result<Vec<String>> {
    let catalogue = store::org::role_names(conn, org_id)?;
    Ok(Role::ALL.iter().map(|r| r.to_string()).chain(catalogue).filter(|r| !holder.holds(r)).collect())
}

pub fn check_grantable(conn: &mut AnyConnection, org_id: &str, granter: &RoleSet, wanted: &[String]) -> Result<()> {
    for r in wanted {
        if Role::parse(r).is_none() {
            let known = store::org::count_role(conn, org_id, r)?;
            if known == 0 {
                return Err(invalid("roles", format!("role {r:?} is not in the organization's role catalogue")));
            }
        }
        if !granter.holds(r) {
            return Err(invalid("roles", format!("role {r:?} is not held by the caller, so it cannot be granted")));
        }
    }
    Ok(())
}

pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewRole, now: i64) -> Result<RoleView> {
    p.require(Role::OrgAdmin)?;
    if !valid_name(&input.name) || input.name.starts_with("org:") {
        return Err(invalid("name", "must match ^[a-z][a-z0-9_.-]*:[a-z0-9_.*-]+$ and not start with org:"));
    }
    if input.kind != "service" && input.kind != "custom" {
        return Err(invalid("kind", "must be service or custom"));
    }
    let description = input.description.to_string();
    conn.transaction(|conn| {
        let exists = store::org::count_role(conn, &p.org_id, &input.name)?;
        if exists > 0 {
            return Err(Error::Conflict(format!("role {} already exists", input.name)));
        }
        if store::org::count_roles(conn, &p.org_id)? >= MAX_CATALOGUED_ROLES {
            return Err(Error::Conflict(format!(
                "the catalogue holds at most {MAX_CATALOGUED_ROLES} service and custom roles; delete one first"
            )));
        }
        let row = crate::store::models::Role {
            org_id: p.org_id.clone(),
            name: input.name.clone(),
            kind: input.kind.clone(),
            description: description.clone(),
            created_at: now,
        };
        store::org::insert_role(conn, &row)?;
        events::emit(conn, Event::by(p, Action::RoleCreate, "role", &input.name), now)?;
        Ok(RoleView { name: row.name, kind: row.kind, description })
    })
}

pub fn delete(conn: &mut AnyConnection, p: &Principal, name: &str, now: i64) -> Result<()> {
    p.require(Role::OrgAdmin)?;
    if Role::parse(name).is_some() {
        return Err(Error::Conflict("built-in roles cannot be deleted".into()));
    }
    conn.transaction(|conn| {
        let found = store::org::count_role(conn, &p.org_id, name)?;
        if found == 0 {
            return Err(Error::NotFound);
        }
        let pattern = store::principals::role_pattern(name);
        let (u, s, a) = store::principals::count_with_roles_like(conn, &p.org_id, &pattern)?;
        if u + s + a > 0 {
            return Err(Error::Conflict(format!(
                "role {name} is still granted to {} holder(s): {u} user(s), {s} service account(s), {a} app(s)",
                u + s + a
            )));
        }
        store::org::delete_role(conn, &p.org_id, name)?;
        // Owners hold every role, so their tokens may still carry it: strip it there too.
        let carrying = store::tokens::with_roles_like(conn, &p.org_id, &pattern)?;
        for (id, text) in &carrying {
            let kept: Vec<String> = roles_from_text(text).into_iter().filter(|r| r != name).collect();
            store::tokens::set_roles(conn, id, &roles_to_text(&kept))?;
        }
        events::emit(
            conn,
            Event::by(p, Action::RoleDelete, "role", name)
                .detail(serde_json::json!({"stripped_from_tokens": carrying.len()})),
            now,
        )?;
        Ok(())
    })
}
