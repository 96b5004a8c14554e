//! The org-wide token table (`GET /api/v1/tokens`): filters, sorts, exact totals; and the
//! query parsing every token list shares (`/me/tokens` and service-account token lists take
//! the status and expiry filters too, and refuse unknown parameters alike).
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::parse_rfc3339;
use crate::service::list::{Page, PageQuery, Paged};
use crate::service::tokens::usage::Usage;
use crate::service::tokens::vocab::{OwnerKind, StatusFilter, UsageFilter};
use crate::service::tokens::{self, TokenView};
use crate::service::{invalid, Error, Principal, Result};
use crate::store::models::ApiToken;
use crate::store::tokens::TableFilter;
use crate::store::{self, AnyConnection};

#[derive(Debug, Default, Clone)]
pub struct TableQuery {
    pub owner_kind: Option<OwnerKind>,
    pub owner_id: Option<String>,
    pub status: Option<StatusFilter>,
    pub usage: Option<UsageFilter>,
    pub unused_since: Option<i64>,
    pub role: Option<String>,
    pub q: Option<String>,
    pub expires_before: Option<i64>,
    pub expires_within_days: Option<i64>,
    pub management: Option<bool>,
    pub audience: Option<String>,
    pub page: Page,
    /// The console's Inactive tab (revoked, expired or idle, within the retention); never
    /// parsed from a query.
    pub inactive: bool,
}

/// The store's status filter for [`TableQuery::inactive`].
pub const INACTIVE: &str = "inactive";

crate::service::words!(
    /// Sort keys of the org table.
    pub TableSort { CreatedAt = "created_at", Name = "name", ExpiresAt = "expires_at", LastUsedAt = "last_used_at", Owner = "owner" }
);

/// Which token list a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The org-wide table: every filter.
    Org,
    /// One owner's tokens (`/me/tokens`, a service account's): status and expiry filters.
    Owner,
}

/// The query string of the org table as sent: each parameter once, none unknown.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OrgParams {
    owner_kind: Option<String>,
    owner_id: Option<String>,
    status: Option<String>,
    usage: Option<String>,
    unused_since: Option<String>,
    role: Option<String>,
    q: Option<String>,
    expires_before: Option<String>,
    expires_within_days: Option<String>,
    management: Option<String>,
    audience: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

/// The parameters of one owner's token list: the fields of [`OwnerParams`] (a unit test
/// holds them equal; the OpenAPI document lists these).
pub const OWNER_KEYS: [&str; 7] =
    ["status", "expires_before", "expires_within_days", "page", "page_size", "sort", "order"];

/// The query string of one owner's token list (`Scope::Owner`): status and expiry filters
/// and paging; any other parameter is 422.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OwnerParams {
    status: Option<String>,
    expires_before: Option<String>,
    expires_within_days: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

impl From<OwnerParams> for OrgParams {
    fn from(o: OwnerParams) -> OrgParams {
        OrgParams {
            status: o.status,
            expires_before: o.expires_before,
            expires_within_days: o.expires_within_days,
            page: o.page,
            page_size: o.page_size,
            sort: o.sort,
            order: o.order,
            ..OrgParams::default()
        }
    }
}

/// serde's refusal of a query string as the 422 of the parameter it names.
fn refused(e: serde_urlencoded::de::Error) -> Error {
    let text = e.to_string();
    let named = text.split('`').nth(1).unwrap_or("query").to_string();
    if text.starts_with("unknown field") {
        invalid(&named, "unknown parameter")
    } else if text.starts_with("duplicate field") {
        invalid(&named, "given more than once")
    } else {
        invalid("query", "not a valid query string")
    }
}

/// Parses and validates a query string of the org table; unknown parameters and values are 422.
pub fn parse(query: &str) -> Result<TableQuery> {
    parse_in(query, Scope::Org)
}

/// Parses and validates a query string of a token list; unknown parameters and values are 422.
pub fn parse_in(query: &str, scope: Scope) -> Result<TableQuery> {
    let raw: OrgParams = match scope {
        Scope::Org => serde_urlencoded::from_str(query).map_err(refused)?,
        Scope::Owner => serde_urlencoded::from_str::<OwnerParams>(query).map_err(refused)?.into(),
    };
    let time = |k: &str, v: Option<String>| {
        v.map(|v| parse_rfc3339(&v).ok_or_else(|| invalid(k, "must be an RFC 3339 time"))).transpose()
    };
    // Bounded: a search term becomes LIKE patterns in the query.
    let bounded = |k: &str, v: Option<String>| match v {
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => {
            Err(invalid(k, format!("must be at most {MAX_FILTER_CHARS} characters")))
        }
        v => Ok(v),
    };
    let max_days = crate::service::org::policy::MAX_DAYS;
    let t = TableQuery {
        owner_kind: raw
            .owner_kind
            .map(|v| OwnerKind::parse(&v).ok_or_else(|| invalid("owner_kind", "must be user or service_account")))
            .transpose()?,
        owner_id: raw.owner_id,
        status: raw
            .status
            .map(|v| {
                StatusFilter::parse(&v).ok_or_else(|| {
                    invalid("status", "must be active, owner_disabled, expired, revoked, idle or expiring_soon")
                })
            })
            .transpose()?,
        usage: raw
            .usage
            .map(|v| UsageFilter::parse(&v).ok_or_else(|| invalid("usage", "must be never_used or used")))
            .transpose()?,
        unused_since: time("unused_since", raw.unused_since)?,
        role: bounded("role", raw.role)?,
        q: bounded("q", raw.q)?,
        expires_before: time("expires_before", raw.expires_before)?,
        expires_within_days: raw
            .expires_within_days
            .map(|v| match v.parse::<i64>() {
                Ok(n) if (1..=max_days).contains(&n) => Ok(n),
                _ => Err(invalid("expires_within_days", format!("must be an integer from 1 to {max_days}"))),
            })
            .transpose()?,
        management: raw
            .management
            .map(|v| match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid("management", "must be true or false")),
            })
            .transpose()?,
        audience: raw.audience.map(|v| v.trim_end_matches('/').to_string()),
        page: PageQuery { page: raw.page, page_size: raw.page_size, sort: raw.sort, order: raw.order }.validate()?,
        inactive: false,
    };
    // One owner's list sorts by `tokens::Sort` (the keys its OpenAPI `sort` parameter lists).
    match scope {
        Scope::Org => t.page.check_sort::<TableSort>()?,
        Scope::Owner => t.page.check_sort::<tokens::Sort>()?,
    }
    Ok(t)
}

/// The longest `q` or `role` filter of a token list.
pub const MAX_FILTER_CHARS: usize = 200;

/// The store filter of a parsed query for `org_id`'s lists: without a status filter, tokens
/// that ended more than the org's `retention_days` ago are left out (even before the purge
/// removed them).
pub fn filter<'a>(conn: &mut AnyConnection, org_id: &str, t: &'a TableQuery, now: i64) -> Result<TableFilter<'a>> {
    let ended_after = match t.status {
        Some(_) if !t.inactive => None,
        _ => Some(now - crate::service::org::policy::get(conn, org_id)?.retention_days * 86_400),
    };
    Ok(TableFilter {
        owner_kind: t.owner_kind.map(OwnerKind::as_str),
        owner_id: t.owner_id.as_deref(),
        status: if t.inactive { Some(INACTIVE) } else { t.status.map(StatusFilter::as_str) },
        usage: t.usage.map(UsageFilter::as_str),
        unused_since: t.unused_since,
        role: t.role.as_deref(),
        q: t.q.as_deref(),
        management: t.management,
        audience: t.audience.as_deref(),
        expires_before: t.expires_before,
        expires_within: t.expires_within_days.map(|d| d * 86_400),
        ended_after,
    })
}

/// A row of the org-wide token table: the token and its owner.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TokenTableRow)]
pub struct Row {
    #[serde(flatten)]
    pub token: TokenView,
    /// The user's name or the service account's name.
    #[schema(required = true)]
    pub owner_name: Option<String>,
    /// The user's email; null for service accounts.
    #[schema(required = true)]
    pub owner_email: Option<String>,
}

pub fn list(conn: &mut AnyConnection, p: &Principal, t: &TableQuery, usage: &Usage, now: i64) -> Result<Paged<Row>> {
    p.require(crate::service::Role::OrgAdmin)?;
    let filter = filter(conn, &p.org_id, t, now)?;
    let rows = store::tokens::table(conn, &p.org_id, &filter, now, &t.page)?;
    // Owner names and emails for this page only.
    let ids: Vec<&String> = rows.rows.iter().map(|r| &r.owner_id).collect();
    let (people, accounts) = store::tokens::owners(conn, &ids)?;
    let disabled = store::tokens::disabled_owners(conn, &ids)?;
    Ok(t.page.view(rows, |tok| row(&tok, &people, &accounts, &disabled, usage, now)))
}

fn row(
    tok: &ApiToken,
    people: &Owners,
    accounts: &OwnerNames,
    disabled: &std::collections::HashSet<String>,
    usage: &Usage,
    now: i64,
) -> Row {
    let (owner_email, owner_name) = match people.get(&tok.owner_id) {
        Some((e, n)) => (Some(e.clone()), Some(n.clone())),
        None => (None, accounts.get(&tok.owner_id).cloned()),
    };
    let token = tokens::owner_status(tokens::view(tok, usage, now), disabled.contains(&tok.owner_id));
    Row { token, owner_name, owner_email }
}

type Owners = std::collections::HashMap<String, (String, String)>;
type OwnerNames = std::collections::HashMap<String, String>;

/// One token of the org, by an admin (`GET /api/v1/tokens/{id}`): the table's row.
pub fn get(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<Row> {
    p.require(crate::service::Role::OrgAdmin)?;
    let t = store::tokens::find_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
    let (people, accounts) = store::tokens::owners(conn, &[&t.owner_id])?;
    let disabled = store::tokens::disabled_owners(conn, &[&t.owner_id])?;
    Ok(row(&t, &people, &accounts, &disabled, usage, now))
}

/// At most this many tokens in one "revoke selected".
pub const MAX_REVOKE_MANY: usize = 200;

/// Several tokens of the org, by an admin, in one transaction: an unknown id revokes
/// nothing (404); already ended ones are left as they are. Answers how many were revoked.
pub fn revoke_many(conn: &mut AnyConnection, p: &Principal, ids: &[String], now: i64) -> Result<usize> {
    p.require(crate::service::Role::OrgAdmin)?;
    if ids.is_empty() || ids.len() > MAX_REVOKE_MANY {
        return Err(invalid("ids", format!("select 1 to {MAX_REVOKE_MANY} tokens")));
    }
    conn.transaction(|conn| {
        let mut n = 0;
        for id in ids {
            let t = store::tokens::find_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
            if tokens::revoke(conn, p, &t, crate::service::events::Action::TokenAdminRevoke, now)? {
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Any token of the org, by an admin.
pub fn revoke(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<TokenView> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let t = store::tokens::find_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
        tokens::revoke(conn, p, &t, crate::service::events::Action::TokenAdminRevoke, now)?;
        let t = store::tokens::get(conn, id)?;
        Ok(tokens::view(&t, usage, now))
    })
}

/// One owner's tokens, filtered as `q` says (parsed with `table::Scope::Owner`).
pub fn list_owned(
    conn: &mut AnyConnection,
    org_id: &str,
    owner_id: &str,
    q: &TableQuery,
    usage: &Usage,
    now: i64,
) -> Result<Paged<TokenView>> {
    let mut f = filter(conn, org_id, q, now)?;
    f.owner_id = Some(owner_id);
    let rows = store::tokens::table(conn, org_id, &f, now, &q.page)?;
    let disabled = store::tokens::disabled_owners(conn, &[&owner_id.to_string()])?.contains(owner_id);
    Ok(q.page.view(rows, |t| tokens::owner_status(tokens::view(&t, usage, now), disabled)))
}

pub fn my_list(
    conn: &mut AnyConnection,
    p: &Principal,
    q: &TableQuery,
    usage: &Usage,
    now: i64,
) -> Result<Paged<TokenView>> {
    list_owned(conn, &p.org_id, p.user_id()?, q, usage, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(q: &str, scope: Scope) -> (String, String) {
        match parse_in(q, scope) {
            Err(Error::Invalid { field, message }) => (field, message),
            other => panic!("{q}: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn owner_lists_take_exactly_the_owner_keys() {
        for k in OWNER_KEYS {
            let v = match k {
                "status" => "active",
                "expires_before" => "2030-01-01T00:00:00Z",
                "sort" => "name",
                "order" => "desc",
                _ => "2",
            };
            assert!(parse_in(&format!("{k}={v}"), Scope::Owner).is_ok(), "{k}");
        }
        assert_eq!(refusal("owner_id=x", Scope::Owner), ("owner_id".into(), "unknown parameter".into()));
        assert!(parse_in("owner_id=x", Scope::Org).is_ok());
    }

    #[test]
    fn refusals_name_the_parameter() {
        assert_eq!(refusal("colour=red", Scope::Org), ("colour".into(), "unknown parameter".into()));
        assert_eq!(refusal("status=active&status=idle", Scope::Org), ("status".into(), "given more than once".into()));
        assert_eq!(refusal("status=bogus", Scope::Org).0, "status");
        assert_eq!(refusal("management=yes", Scope::Org).0, "management");
        assert_eq!(refusal("expires_within_days=0", Scope::Org).0, "expires_within_days");
        assert_eq!(refusal("sort=colour", Scope::Org).0, "sort");
        let t = parse("owner_kind=service_account&status=expiring_soon&usage=never_used&audience=https://a.example/")
            .unwrap();
        assert_eq!(t.owner_kind, Some(OwnerKind::ServiceAccount));
        assert_eq!(t.status, Some(StatusFilter::ExpiringSoon));
        assert_eq!(t.usage, Some(UsageFilter::NeverUsed));
        assert_eq!(t.audience.as_deref(), Some("https://a.example"));
    }
}
