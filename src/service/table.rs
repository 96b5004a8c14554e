//! The org-wide token table (`GET /api/v1/tokens`): filters, sorts, exact totals.
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde::Serialize;
use std::collections::HashMap;

use super::list::{Page, PageQuery, Paged};
use super::tokens::{self, TokenView};
use super::usage::Usage;
use super::{invalid, Error, Principal, Result};
use crate::clock::parse_rfc3339;
use crate::store::models::ApiToken;
use crate::store::schema::{api_tokens, service_accounts, users};
use crate::store::{like_escape, AnyConnection};

#[derive(Debug, Default, Clone)]
pub struct TableQuery {
    pub owner_kind: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<String>,
    pub usage: Option<String>,
    pub unused_since: Option<i64>,
    pub role: Option<String>,
    pub q: Option<String>,
    pub page: Page,
}

const SORTS: [&str; 5] = ["created_at", "name", "expires_at", "last_used_at", "owner"];

/// Parses and validates a query string; unknown parameters and values are 422.
pub fn parse(query: &str) -> Result<TableQuery> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|_| invalid("query", "not a valid query string"))?;
    let mut t = TableQuery::default();
    let mut pq = PageQuery::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in pairs {
        if !seen.insert(k.clone()) {
            return Err(invalid(&k, "given more than once"));
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
                if !["active", "expired", "revoked", "idle"].contains(&v.as_str()) {
                    return Err(invalid(&k, "must be active, expired, revoked or idle"));
                }
                t.status = Some(v)
            }
            "usage" => {
                if v != "never_used" && v != "used" {
                    return Err(invalid(&k, "must be never_used or used"));
                }
                t.usage = Some(v)
            }
            "unused_since" => {
                t.unused_since = Some(parse_rfc3339(&v).ok_or_else(|| invalid(&k, "must be an RFC 3339 time"))?)
            }
            "role" => t.role = Some(v),
            "q" => t.q = Some(v),
            "page" => pq.page = Some(v),
            "page_size" => pq.page_size = Some(v),
            "sort" => pq.sort = Some(v),
            "order" => pq.order = Some(v),
            _ => return Err(invalid(&k, "unknown parameter")),
        }
    }
    t.page = pq.validate()?;
    t.page.check_sort(&SORTS)?;
    Ok(t)
}

#[derive(Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub token: TokenView,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
}

/// Idle beyond the token's idle TTL, by the database's last-used time (a NULL idle TTL
/// counts as a billion days); each is one comparison ending in the bound `now`.
pub const IDLE_SQL: &str =
    "COALESCE(api_tokens.last_used_at, api_tokens.created_at) + COALESCE(api_tokens.idle_ttl_days, 1000000000) * 86400 <= ";
pub const NOT_IDLE_SQL: &str =
    "COALESCE(api_tokens.last_used_at, api_tokens.created_at) + COALESCE(api_tokens.idle_ttl_days, 1000000000) * 86400 > ";

pub fn list(conn: &mut AnyConnection, p: &Principal, t: &TableQuery, usage: &Usage, now: i64) -> Result<Paged<Row>> {
    p.require("org:admin")?;
    // Filters and sorts touch api_tokens alone (owner label and search text are
    // denormalised), so every sort has an index and OFFSET skips rows without joins.
    let build = || {
        let mut q = api_tokens::table.filter(api_tokens::org_id.eq(p.org_id.clone())).into_boxed();
        if let Some(v) = &t.owner_kind {
            q = q.filter(api_tokens::owner_kind.eq(v.clone()));
        }
        if let Some(v) = &t.owner_id {
            q = q.filter(api_tokens::owner_id.eq(v.clone()));
        }
        match t.status.as_deref() {
            Some("revoked") => q = q.filter(api_tokens::revoked_at.is_not_null()),
            Some("expired") => q = q.filter(api_tokens::revoked_at.is_null()).filter(api_tokens::expires_at.le(now)),
            Some("idle") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(sql::<Bool>(IDLE_SQL).bind::<BigInt, _>(now))
            }
            Some("active") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
            }
            _ => {}
        }
        match t.usage.as_deref() {
            Some("never_used") => q = q.filter(api_tokens::last_used_at.is_null()),
            Some("used") => q = q.filter(api_tokens::last_used_at.is_not_null()),
            _ => {}
        }
        if let Some(since) = t.unused_since {
            q = q.filter(api_tokens::last_used_at.is_null().or(api_tokens::last_used_at.lt(since)));
        }
        if let Some(r) = &t.role {
            q = q.filter(api_tokens::roles.like(format!("%{}%", like_escape(&format!("\"{r}\"")))).escape('\\'));
        }
        if let Some(s) = &t.q {
            q = q.filter(api_tokens::search.like(format!("%{}%", like_escape(&s.to_lowercase()))).escape('\\'));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let q = build();
    let desc = t.page.desc;
    macro_rules! by {
        ($e:expr) => {
            if desc {
                q.order(($e.desc(), api_tokens::id.desc()))
            } else {
                q.order(($e.asc(), api_tokens::id.asc()))
            }
        };
    }
    let q = match t.page.sort.as_deref() {
        Some("name") => by!(api_tokens::name),
        Some("expires_at") => by!(api_tokens::expires_at),
        // Never-used tokens sort as oldest on both backends (NULL ordering differs); the
        // expression matches the index api_tokens_org_last_used_sort.
        Some("last_used_at") => by!(sql::<BigInt>("COALESCE(last_used_at, 0)")),
        Some("owner") => by!(api_tokens::owner_label),
        _ => by!(api_tokens::created_at),
    };
    let rows: Vec<ApiToken> = q.limit(t.page.size).offset(t.page.offset()).select(ApiToken::as_select()).load(conn)?;
    // Owner names and emails for this page only.
    let ids: Vec<&String> = rows.iter().map(|r| &r.owner_id).collect();
    let people: HashMap<String, (String, String)> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::email, users::name))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(id, email, name)| (id, (email, name)))
        .collect();
    let accounts: HashMap<String, String> = service_accounts::table
        .filter(service_accounts::id.eq_any(&ids))
        .select((service_accounts::id, service_accounts::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let items = rows
        .into_iter()
        .map(|tok| {
            let (owner_email, owner_name) = match people.get(&tok.owner_id) {
                Some((e, n)) => (Some(e.clone()), Some(n.clone())),
                None => (None, accounts.get(&tok.owner_id).cloned()),
            };
            Row { token: tokens::view(&tok, usage, now), owner_name, owner_email }
        })
        .collect();
    Ok(t.page.wrap(items, total))
}

/// Any token of the org, by an admin.
pub fn revoke(conn: &mut AnyConnection, p: &Principal, id: &str, usage: &Usage, now: i64) -> Result<TokenView> {
    p.require("org:admin")?;
    conn.transaction(|conn| {
        let t: ApiToken = api_tokens::table
            .find(id)
            .filter(api_tokens::org_id.eq(&p.org_id))
            .select(ApiToken::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound)?;
        tokens::revoke(conn, p, &t, "token.admin_revoke", now)?;
        let t: ApiToken = api_tokens::table.find(id).select(ApiToken::as_select()).first(conn)?;
        Ok(tokens::view(&t, usage, now))
    })
}
