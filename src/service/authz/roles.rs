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

/// Who holds a role (explicitly: owners hold every role without it being granted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Holders {
    pub count: usize,
    /// The first [`HOLDERS_NAMED`]: an email, or a name with its kind ("etl (service account)").
    pub names: Vec<String>,
}

/// How many holders a role's summary names before "and N more".
pub const HOLDERS_NAMED: usize = 5;

impl Holders {
    /// "ada@example.com, etl (service account) and 3 more"; empty with no holder.
    pub fn summary(&self) -> String {
        let listed = self.names.join(", ");
        match self.count.saturating_sub(self.names.len()) {
            0 => listed,
            more => format!("{listed} and {more} more"),
        }
    }
}

/// The holders of each of the org's own (service and custom) roles, by role name. Admins.
pub fn holders(conn: &mut AnyConnection, p: &Principal) -> Result<std::collections::HashMap<String, Holders>> {
    p.require(Role::OrgAdmin)?;
    holders_in(conn, &p.org_id, None)
}

fn holders_in(
    conn: &mut AnyConnection,
    org_id: &str,
    only: Option<&str>,
) -> Result<std::collections::HashMap<String, Holders>> {
    let mut out: std::collections::HashMap<String, Holders> = std::collections::HashMap::new();
    for (kind, label, roles) in store::principals::role_holders(conn, org_id)? {
        for r in roles_from_text(&roles) {
            if Role::parse(&r).is_some() || only.is_some_and(|o| o != r) {
                continue;
            }
            let h = out.entry(r).or_default();
            h.count += 1;
            if h.names.len() < HOLDERS_NAMED {
                h.names.push(match kind {
                    "service_account" => format!("{label} (service account)"),
                    "app" => format!("{label} (app)"),
                    _ => label.clone(),
                });
            }
        }
    }
    Ok(out)
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

/// A change to a service or custom role: its description (the name is what tokens carry,
/// so it does not change).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub description: crate::service::text::Description,
}

/// Sets a service or custom role's description (at most 1000 characters, as at creation).
pub fn describe(conn: &mut AnyConnection, p: &Principal, name: &str, input: &RolePatch, now: i64) -> Result<RoleView> {
    p.require(Role::OrgAdmin)?;
    if Role::parse(name).is_some() {
        return Err(Error::Conflict("built-in roles keep their own description".into()));
    }
    let description = input.description.to_string();
    conn.transaction(|conn| {
        let row = store::org::roles(conn, &p.org_id)?.into_iter().find(|r| r.name == name).ok_or(Error::NotFound)?;
        store::org::set_role_description(conn, &p.org_id, name, &description)?;
        events::emit(
            conn,
            Event::by(p, Action::RoleUpdate, "role", name)
                .detail(serde_json::json!({"description": {"before": row.description, "after": description}})),
            now,
        )?;
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
        let n = u + s + a;
        if n > 0 {
            let named = holders_in(conn, &p.org_id, Some(name))?.remove(name).unwrap_or_default();
            let whom = if n == 1 { "1 holder".to_string() } else { format!("{n} holders") };
            return Err(Error::Conflict(format!(
                "role {name} is still granted to {whom}: {}; take it from them first",
                named.summary()
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
