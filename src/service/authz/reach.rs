//! A credential's reach (issue #26): which resource servers an API token or app may be
//! exchanged for (`audiences`, a subset of TOKEND_AUDIENCES, or `*` for all of them, also
//! ones configured later), and separately whether it may reach the management API
//! (`management`). Roles say what a token may do; reach says where.
//!
//! New credentials reach what the request names, else the policy's `default_audiences`
//! (`["*"]` unless an owner changed it), and the management API only when asked for by
//! name — and, when the policy's `allow_management_audience_for` lists roles, only with one
//! of them. Credentials that existed before the migration keep "all, management included".
//! Narrowing is editing; widening is minting (an interactive login).
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::service::{invalid, Principal, Result};
use crate::store::{roles_from_text, roles_to_text};

/// Every configured resource audience.
pub const ALL: &str = "*";
/// The stored text of `[ALL]`: compared as text on the exchange, so the common case parses
/// nothing.
pub const ALL_TEXT: &str = crate::store::tokens::ALL_AUDIENCES;

/// What a credential may be exchanged for, as requests name it and views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reach {
    /// Resource audiences (from TOKEND_AUDIENCES), or ["*"] for every one of them.
    pub audiences: Vec<String>,
    /// Whether it may be exchanged for the management API's audience.
    pub management: bool,
}

impl Reach {
    /// From the stored columns.
    pub fn from_row(audiences: &str, management: bool) -> Reach {
        Reach { audiences: roles_from_text(audiences), management }
    }

    /// The stored text of `audiences`.
    pub fn audiences_text(&self) -> String {
        roles_to_text(&self.audiences)
    }

    /// Whether everything `other` reaches, this reaches too.
    pub fn covers(&self, other: &Reach) -> bool {
        (self.management || !other.management) && other.audiences.iter().all(|a| self.has_audience(a))
    }

    fn has_audience(&self, aud: &str) -> bool {
        self.audiences.iter().any(|a| a == ALL || a == aud)
    }
}

/// Whether a credential with these stored columns may get a token for `aud` (already
/// resolved to a configured audience). Hot path: no parsing for the usual `["*"]`.
pub fn allows(cfg: &Config, audiences: &str, management: bool, aud: &str) -> bool {
    if aud == cfg.api_audience {
        management
    } else {
        audiences == ALL_TEXT || roles_from_text(audiences).iter().any(|a| a == ALL || a == aud)
    }
}

/// The audiences a request names, checked against the configuration: `*` or configured
/// resource audiences (the management audience is the separate `management` flag), at
/// least one; sorted, deduplicated, and `*` alone when it is there.
pub fn check_audiences(cfg: &Config, field: &str, list: &[String]) -> Result<Vec<String>> {
    if list.is_empty() {
        return Err(invalid(field, "must name at least one audience, or \"*\" for all"));
    }
    for a in list {
        let a = a.trim_end_matches('/');
        if a == cfg.api_audience {
            return Err(invalid(field, "the management API is not an audience here: set \"management\": true"));
        }
        if a != ALL && !cfg.audiences.iter().any(|c| c == a) {
            return Err(invalid(field, format!("{a:?} is not a configured resource audience (TOKEND_AUDIENCES)")));
        }
    }
    if list.iter().any(|a| a == ALL) {
        return Ok(vec![ALL.to_string()]);
    }
    let mut out: Vec<String> = list.iter().map(|a| a.trim_end_matches('/').to_string()).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The org policy's part in reach: defaults and who may reach the management API.
pub struct ReachPolicy {
    pub default_audiences: Vec<String>,
    /// None: any credential may be created for the management API.
    pub management_roles: Option<Vec<String>>,
}

impl ReachPolicy {
    pub fn of(p: &crate::store::models::Policy) -> ReachPolicy {
        ReachPolicy {
            default_audiences: roles_from_text(&p.default_audiences),
            management_roles: p.allow_management_audience_for.as_deref().map(roles_from_text),
        }
    }

    /// Whether a credential carrying `roles` may reach the management API.
    pub fn management_allowed(&self, roles: &[String]) -> bool {
        match &self.management_roles {
            None => true,
            Some(allowed) => {
                let roles = crate::service::RoleSet::from(roles);
                allowed.iter().any(|r| roles.implies(r))
            }
        }
    }
}

/// The reach of a new credential carrying `roles`: what the request names (each part
/// defaulting to the policy's audiences and no management), checked.
pub fn for_new(
    cfg: &Config,
    policy: &ReachPolicy,
    audiences: Option<&[String]>,
    management: Option<bool>,
    roles: &[String],
) -> Result<Reach> {
    let audiences = match audiences {
        Some(list) => check_audiences(cfg, "audiences", list)?,
        // A default saved before an audience left the configuration still applies as saved.
        None => policy.default_audiences.clone(),
    };
    let management = management.unwrap_or(false);
    if management && !policy.management_allowed(roles) {
        return Err(invalid(
            "management",
            "the organization's policy allows the management API only to credentials holding one of \
             allow_management_audience_for",
        ));
    }
    Ok(Reach { audiences, management })
}

/// A change of an existing credential's reach: narrowing is editing; widening is minting,
/// so it needs an interactive login and passes the policy like a new credential.
pub fn for_change(
    cfg: &Config,
    p: &Principal,
    policy: &ReachPolicy,
    before: &Reach,
    audiences: Option<&[String]>,
    management: Option<bool>,
    roles: &[String],
) -> Result<Reach> {
    let after = Reach {
        audiences: match audiences {
            Some(list) => check_audiences(cfg, "audiences", list)?,
            None => before.audiences.clone(),
        },
        management: management.unwrap_or(before.management),
    };
    if !before.covers(&after) {
        p.require_interactive()?;
        if after.management && !before.management && !policy.management_allowed(roles) {
            return Err(invalid("management", "the organization's policy does not allow this credential there"));
        }
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::for_test("sqlite://x", std::path::Path::new("/nonexistent"));
        c.audiences = vec!["https://a.test".into(), "https://b.test".into()];
        c.api_audience = "https://tokend.test/api".into();
        c
    }

    fn reach(a: &[&str], m: bool) -> Reach {
        Reach { audiences: a.iter().map(|s| s.to_string()).collect(), management: m }
    }

    #[test]
    fn allows_by_list_and_flag() {
        let c = cfg();
        assert!(allows(&c, ALL_TEXT, false, "https://a.test"));
        assert!(!allows(&c, ALL_TEXT, false, "https://tokend.test/api"));
        assert!(allows(&c, ALL_TEXT, true, "https://tokend.test/api"));
        assert!(allows(&c, r#"["https://a.test"]"#, false, "https://a.test"));
        assert!(!allows(&c, r#"["https://a.test"]"#, true, "https://b.test"));
        assert!(!allows(&c, "not json", true, "https://b.test"), "an unreadable list reaches nothing");
    }

    #[test]
    fn audiences_are_checked() {
        let c = cfg();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_audiences(&c, "audiences", &s(&["https://b.test/", "https://a.test", "https://b.test"])).unwrap(),
            s(&["https://a.test", "https://b.test"])
        );
        assert_eq!(check_audiences(&c, "audiences", &s(&["https://a.test", "*"])).unwrap(), s(&["*"]));
        assert!(check_audiences(&c, "audiences", &[]).is_err());
        assert!(check_audiences(&c, "audiences", &s(&["https://c.test"])).is_err());
        assert!(check_audiences(&c, "audiences", &s(&["https://tokend.test/api"])).is_err());
    }

    #[test]
    fn covering_is_narrowing() {
        assert!(reach(&["*"], true).covers(&reach(&["https://a.test"], false)));
        assert!(reach(&["*"], false).covers(&reach(&["*"], false)));
        assert!(!reach(&["*"], false).covers(&reach(&["https://a.test"], true)));
        assert!(!reach(&["https://a.test"], false).covers(&reach(&["*"], false)));
        assert!(!reach(&["https://a.test"], false).covers(&reach(&["https://b.test"], false)));
        assert!(reach(&["https://a.test", "https://b.test"], false).covers(&reach(&["https://b.test"], false)));
    }

    #[test]
    fn policy_limits_management() {
        let any = ReachPolicy { default_audiences: vec!["*".into()], management_roles: None };
        let admins =
            ReachPolicy { default_audiences: vec!["*".into()], management_roles: Some(vec!["org:admin".into()]) };
        let c = cfg();
        let member = vec!["org:member".to_string()];
        let owner = vec!["org:owner".to_string()];
        assert_eq!(for_new(&c, &any, None, None, &member).unwrap(), reach(&["*"], false), "management only by name");
        assert!(for_new(&c, &any, None, Some(true), &member).unwrap().management);
        assert!(for_new(&c, &admins, None, Some(true), &member).is_err());
        assert!(for_new(&c, &admins, None, Some(true), &owner).unwrap().management, "org:owner implies org:admin");
    }
}
