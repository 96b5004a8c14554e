//! The org-wide token table (`GET /api/v1/tokens`): filters, sorts, exact totals; and the
//! query parsing every token list shares (`/me/tokens` and service-account token lists take
//! the status and expiry filters too, and refuse unknown parameters alike).
use diesel::Connection;
use serde::Serialize;

use crate::clock::parse_rfc3339;
use crate::service::list::{Page, PageQuery, Paged};
use crate::service::tokens::usage::Usage;
use crate::service::tokens::{self, TokenView};
use crate::service::{invalid, Error, Principal, Result};
use crate::store::models::ApiToken;
use crate::store::tokens::TableFilter;
use crate::store::{self, AnyConnection};

#[derive(Debug, Default, Clone)]
pub struct TableQuery {
    pub owner_kind: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<String>,
    pub usage: Option<String>,
    pub unused_since: Option<i64>,
    pub role: Option<String>,
    pub q: Option<String>,
    pub expires_before: Option<i64>,
    pub expires_within_days: Option<i64>,
    pub management: Option<bool>,
    pub audience: Option<String>,
    pub page: Page,
}

pub const SORTS: [&str; 5] = ["created_at", "name", "expires_at", "last_used_at", "owner"];
/// Values of the `status` filter of every token list.
pub const STATUSES: [&str; 6] = ["active", "owner_disabled", "expired", "revoked", "idle", "expiring_soon"];

/// A status filter the console's tabs set (never parsed from a query): revoked, expired or
/// idle, within the retention.
pub const INACTIVE: &str = "inactive";

/// The query parameters of one owner's token list (`Scope::Owner`); any other is 422.
pub const OWNER_KEYS: [&str; 7] =
    ["status", "expires_before", "expires_within_days", "page", "page_size", "sort", "order"];

/// Which token list a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The org-wide table: every filter.
    Org,
    /// One owner's tokens (`/me/tokens`, a service account's): status and expiry filters.
    Owner,
}

/// Parses and validates a query string of the org table; unknown parameters and values are 422.
pub fn parse(query: &str) -> Result<TableQuery> {
    parse_in(query, Scope::Org)
}

/// Parses and validates a query string of a token list; unknown parameters and values are 422.
pub fn parse_in(query: &str, scope: Scope) -> Result<TableQuery> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|_| invalid("query", "not a valid query string"))?;
    let mut t = TableQuery::default();
    let mut pq = PageQuery::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in pairs {
        if !seen.insert(k.clone()) {
            return Err(invalid(&k, "given more than once"));
        }
        if scope == Scope::Owner && !OWNER_KEYS.contains(&k.as_str()) {
            return Err(invalid(&k, "unknown parameter"));
        }
        match k.as_str() {
            "owner_kind" => {
                if v != "user" && v != "service_account" {
                    return Err(invalid(&k, "must be user or service_account"));
                }
                t.owner_kind = Some(v)
            }
            "owner_id" => t.owner_id = Some(v),
            "status" => {
                if !STATUSES.contains(&v.as_str()) {
                    return Err(invalid(&k, "must be active, owner_disabled, expired, revoked, idle or expiring_soon"));
                }
                t.status = Some(v)
            }
            "expires_before" => {
                t.expires_before = Some(parse_rfc3339(&v).ok_or_else(|| invalid(&k, "must be an RFC 3339 time"))?)
            }
            "expires_within_days" => match v.parse::<i64>() {
                Ok(n) if (1..=crate::service::org::policy::MAX_DAYS).contains(&n) => t.expires_within_days = Some(n),
                _ => {
                    return Err(invalid(
                        &k,
                        format!("must be an integer from 1 to {}", crate::service::org::policy::MAX_DAYS),
                    ))
                }
            },
            "usage" => {
                if v != "never_used" && v != "used" {
                    return Err(invalid(&k, "must be never_used or used"));
                }
                t.usage = Some(v)
            }
            "unused_since" => {
                t.unused_since = Some(parse_rfc3339(&v).ok_or_else(|| invalid(&k, "must be an RFC 3339 time"))?)
            }
            // Bounded: a search term becomes LIKE patterns in the query.
            "role" | "q" if v.chars().count() > MAX_FILTER_CHARS => {
                return Err(invalid(&k, format!("must be at most {MAX_FILTER_CHARS} characters")))
            }
            "role" => t.role = Some(v),
            "q" => t.q = Some(v),
            "management" => match v.as_str() {
                "true" => t.management = Some(true),
                "false" => t.management = Some(false),
                _ => return Err(invalid(&k, "must be true or false")),
            },
            "audience" => t.audience = Some(v.trim_end_matches('/').to_string()),
            "page" => pq.page = Some(v),
            "page_size" => pq.page_size = Some(v),
            "sort" => pq.sort = Some(v),
            "order" => pq.order = Some(v),
            _ => return Err(invalid(&k, "unknown parameter")),
        }
    }
    t.page = pq.validate()?;
    // One owner's list sorts by `tokens::SORTS` (the keys its OpenAPI `sort` parameter lists).
    t.page.check_sort(if scope == Scope::Org { &SORTS } else { &tokens::SORTS })?;
    Ok(t)
}

/// The longest `q` or `role` filter of a token list.
pub const MAX_FILTER_CHARS: usize = 200;

/// The store filter of a parsed query for `org_id`'s lists: without a status filter, tokens
/// that ended more than the org's `retention_days` ago are left out (even before the purge
/// removed them).
pub fn filter<'a>(conn: &mut AnyConnection, org_id: &str, t: &'a TableQuery, now: i64) -> Result<TableFilter<'a>> {
    let ended_after = match t.status.as_deref() {
        Some(s) if s != INACTIVE => None,
        _ => Some(now - crate::service::org::policy::get(conn, org_id)?.retention_days * 86_400),
    };
    Ok(TableFilter {
        owner_kind: t.owner_kind.as_deref(),
        owner_id: t.owner_id.as_deref(),
        status: t.status.as_deref(),
        usage: t.usage.as_deref(),
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
    p.require("org:admin")?;
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
    p.require("org:admin")?;
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
    p.require("org:admin")?;
    if ids.is_empty() || ids.len() > MAX_REVOKE_MANY {
        return Err(invalid("ids", format!("select 1 to {MAX_REVOKE_MANY} tokens")));
    }
    conn.transaction(|conn| {
        let mut n = 0;
        for id in ids {
            let t = store::tokens::find_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
            if tokens::revoke(conn, p, &t, "token.admin_revoke", now)? {
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Any token of the org, by an admin.
pub fn revoke(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<TokenView> {
    p.require("org:admin")?;
    conn.transaction(|conn| {
        let t = store::tokens::find_in_org(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
        tokens::revoke(conn, p, &t, "token.admin_revoke", now)?;
        let t = store::tokens::get(conn, id)?;
        Ok(tokens::view(&t, usage, now))
    })
}
