//! The words of authorization: a built-in role ([`Role`]), a valid role name
//! ([`RoleName`]), a set of roles and the role algebra over it ([`RoleSet`]). A leaf: the
//! catalogue of an org's roles (`authz::roles`) and the principal (`authz::principal`) build
//! on it.
use serde::{Deserialize, Serialize};

/// A built-in organization role. Strongest first: owner ⊇ admin ⊇ developer ⊇ member, and
/// the owner holds every role. Call sites name these, never the strings, so a misspelt role
/// does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    OrgOwner,
    OrgAdmin,
    OrgDeveloper,
    OrgMember,
}

impl Role {
    /// Strongest first.
    pub const ALL: [Role; 4] = [Role::OrgOwner, Role::OrgAdmin, Role::OrgDeveloper, Role::OrgMember];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::OrgOwner => "org:owner",
            Role::OrgAdmin => "org:admin",
            Role::OrgDeveloper => "org:developer",
            Role::OrgMember => "org:member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::OrgOwner => "Full control of the organization, including policy and owners",
            Role::OrgAdmin => "Manages people, service accounts, apps, roles and every token",
            Role::OrgDeveloper => "Manages server-to-server apps",
            Role::OrgMember => "Signs in and manages their own tokens",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Role {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A role name: a built-in role or `^[a-z][a-z0-9_.-]*:[a-z0-9_.*-]+$`, at most 100
/// characters ([`valid_name`]). On the wire and in the database a plain string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    /// A valid role name, or None.
    pub fn new(name: &str) -> Option<RoleName> {
        valid_name(name).then(|| RoleName(name.to_string()))
    }

    /// A name read back from where only valid names are written (the database, a token
    /// this server signed): not re-validated.
    pub(crate) fn stored(name: String) -> RoleName {
        RoleName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The built-in role this is, if it is one.
    pub fn builtin(&self) -> Option<Role> {
        Role::parse(&self.0)
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> RoleName {
        RoleName(r.as_str().to_string())
    }
}

impl AsRef<str> for RoleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RoleName, D::Error> {
        let s = String::deserialize(d)?;
        RoleName::new(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a role name")))
    }
}

impl utoipa::PartialSchema for RoleName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::role().into()
    }
}

impl utoipa::ToSchema for RoleName {}

fn rank(role: &str) -> Option<usize> {
    Role::ALL.iter().position(|r| r.as_str() == role)
}

/// A set of roles (a principal's, a token's, a grant's) and the role algebra over it.
/// Serialized as a JSON array of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoleSet(Vec<RoleName>);

impl RoleSet {
    /// Roles read back from the database or a token this server signed (see
    /// [`RoleName::stored`]); the order is kept.
    pub fn stored(names: impl IntoIterator<Item = String>) -> RoleSet {
        RoleSet(names.into_iter().map(RoleName::stored).collect())
    }

    /// A roles column (a JSON array of names).
    pub fn from_text(text: &str) -> RoleSet {
        RoleSet::stored(crate::store::roles_from_text(text))
    }

    pub fn of(roles: &[Role]) -> RoleSet {
        RoleSet(roles.iter().map(|r| RoleName::from(*r)).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &RoleName> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names as plain strings (views, the database column, token claims).
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|r| r.0.clone()).collect()
    }

    /// Whether the set holds `role`: literally, through the org-role ladder
    /// (owner ⊇ admin ⊇ developer ⊇ member), or because `org:owner` holds every role.
    pub fn holds(&self, role: impl AsRef<str>) -> bool {
        let role = role.as_ref();
        self.0.iter().any(|r| {
            r.0 == role
                || r.0 == Role::OrgOwner.as_str()
                || matches!((rank(&r.0), rank(role)), (Some(a), Some(b)) if a <= b)
        })
    }

    /// Whether granted roles cover `role` for scope narrowing: literally or down the
    /// org-role ladder (an org:admin token may narrow to org:member), but not
    /// owner-holds-all, so a scope can never name a role nobody was granted.
    pub fn implies(&self, role: impl AsRef<str>) -> bool {
        let role = role.as_ref();
        self.0.iter().any(|r| r.0 == role || matches!((rank(&r.0), rank(role)), (Some(a), Some(b)) if a <= b))
    }

    /// The roles both sides hold: the roles of `self` (wanted) that `holder` holds, plus
    /// the org roles of `holder` that `self` implies down the ladder (a token with
    /// org:admin whose owner was demoted to org:member still carries org:member). Sorted.
    pub fn intersect(&self, holder: &RoleSet) -> RoleSet {
        let mut out: Vec<RoleName> = self
            .0
            .iter()
            .filter(|r| holder.holds(r))
            .chain(holder.0.iter().filter(|r| rank(&r.0).is_some() && self.implies(r)))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        RoleSet(out)
    }
}

impl From<Vec<String>> for RoleSet {
    /// Roles from where only valid names are written (see [`RoleSet::stored`]).
    fn from(v: Vec<String>) -> RoleSet {
        RoleSet::stored(v)
    }
}

impl From<&[String]> for RoleSet {
    fn from(v: &[String]) -> RoleSet {
        RoleSet::stored(v.iter().cloned())
    }
}

pub fn valid_name(name: &str) -> bool {
    // ^[a-z][a-z0-9_.-]*:[a-z0-9_.*-]+$
    let Some((left, right)) = name.split_once(':') else { return false };
    let mut l = left.chars();
    matches!(l.next(), Some(c) if c.is_ascii_lowercase())
        && l.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        && !right.is_empty()
        && right.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.*-".contains(c))
        && name.len() <= 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(r: &[&str]) -> RoleSet {
        RoleSet::stored(r.iter().map(|s| s.to_string()))
    }

    #[test]
    fn role_ladder() {
        assert!(v(&["org:owner"]).holds("metrics:read"));
        assert!(v(&["org:admin"]).holds(Role::OrgMember));
        assert!(!v(&["org:admin"]).holds(Role::OrgOwner));
        assert!(!v(&["org:admin"]).holds("metrics:read"));
        assert!(!v(&["org:member"]).holds(Role::OrgDeveloper));
        assert_eq!(v(&["a:b", "org:admin"]).intersect(&v(&["org:developer", "a:b"])), v(&["a:b", "org:developer"]));
        assert_eq!(v(&["org:owner"]).intersect(&v(&["org:admin"])), v(&["org:admin"]));
        assert_eq!(v(&["org:member"]).intersect(&v(&["org:owner"])), v(&["org:member"]));
        assert_eq!(v(&["metrics:read"]).intersect(&v(&["org:owner"])), v(&["metrics:read"]));
        assert!(v(&["metrics:read"]).intersect(&v(&["org:admin"])).is_empty());
    }

    #[test]
    fn builtins_are_valid_names_and_round_trip() {
        for r in Role::ALL {
            assert!(valid_name(r.as_str()));
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(RoleName::from(r).builtin(), Some(r));
        }
        assert!(RoleName::new("org:admn").is_some_and(|n| n.builtin().is_none()));
        assert!(serde_json::from_str::<RoleName>("\"Bad\"").is_err());
        assert_eq!(serde_json::to_string(&v(&["a:b", "org:admin"])).unwrap(), r#"["a:b","org:admin"]"#);
    }

    #[test]
    fn role_names() {
        for ok in ["metrics:read", "alerts:write", "a.b-c_d:x*", "logs:*"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["Metrics:read", "metrics", ":read", "metrics:", "1a:b", "a:B", "a b:c"] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}

/// The OpenAPI schemas of role fields, beside the rule they describe ([`valid_name`]):
/// one role name, and the lists a request or a view carries.
pub mod schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    use utoipa::openapi::{Array, Object};

    /// A role name ([`super::valid_name`]).
    pub const ROLE: &str = r"^[a-z][a-z0-9_.-]*:[a-z0-9_.*-]+$";

    /// A role name that does not start with `org:` (the left part is not `org`), without
    /// look-ahead so that every schema-based generator can use it.
    pub const NEW_ROLE: &str = r"^([a-np-z][a-z0-9_.-]*|o([a-qs-z0-9_.-][a-z0-9_.-]*)?|or([a-fh-z0-9_.-][a-z0-9_.-]*)?|org[a-z0-9_.-]+):[a-z0-9_.*-]+$";

    /// One role name.
    pub fn role() -> Object {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(ROLE)).max_length(Some(100)).build()
    }

    /// A list of role names.
    pub fn roles() -> Array {
        ArrayBuilder::new().items(role()).build()
    }

    /// The roles of a new principal.
    pub fn granted() -> Array {
        ArrayBuilder::new()
            .items(role())
            .description(Some(
                "Each must be catalogued and held by the caller (422); org:owner only by an owner (403).",
            ))
            .build()
    }

    /// A principal's new role list.
    pub fn replaced() -> Array {
        ArrayBuilder::new()
            .items(role())
            .description(Some(
                "The full new role list; every role added or removed must be grantable by the caller (org:owner only \
                 by an owner).",
            ))
            .build()
    }

    /// The roles of a new API token: at least one.
    pub fn of_token() -> Array {
        ArrayBuilder::new()
            .items(role())
            .min_items(Some(1))
            .description(Some(
                "The roles this token carries, each held by the caller. Required for a personal token (nothing is \
                 granted implicitly); for a service-account token a subset of the account's roles, default all of them.",
            ))
            .build()
    }

    /// A new role's name: a role name that does not start with `org:`.
    pub fn new_role_name() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NEW_ROLE))
            .max_length(Some(100))
            .description(Some("e.g. metrics:read; must not start with org:."))
            .build()
    }
}
