//! API token rows: insert, look-ups, the per-owner list and the org-wide token table,
//! rename, revoke, owner relabelling and the last-used flush. No policy here: who may see
//! or revoke a token is decided in `service`.
use std::collections::HashMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::models::ApiToken;
use super::page::{self, Page, Rows};
use super::revocations::{self, tokens_revoked};
use super::schema::{api_tokens, service_accounts, users};
use super::{like_escape, AnyConnection};

/// The stored `audiences` of a credential that reaches every configured audience, also
/// ones added later (`service::authz::reach::ALL_TEXT`).
pub const ALL_AUDIENCES: &str = r#"["*"]"#;

/// Idle beyond the token's idle TTL, by the database's last-used time (a NULL idle TTL
/// counts as a billion days); each is one comparison ending in the bound `now`.
pub const IDLE_SQL: &str =
    "COALESCE(api_tokens.last_used_at, api_tokens.created_at) + COALESCE(api_tokens.idle_ttl_days, 1000000000) * 86400 <= ";
pub const NOT_IDLE_SQL: &str =
    "COALESCE(api_tokens.last_used_at, api_tokens.created_at) + COALESCE(api_tokens.idle_ttl_days, 1000000000) * 86400 > ";

/// The token's owner (a person or a service account) is disabled: its otherwise active
/// tokens show `owner_disabled` (the exchange refuses them).
pub const OWNER_DISABLED_SQL: &str = "(api_tokens.owner_id IN (SELECT id FROM users WHERE disabled) \
                                      OR api_tokens.owner_id IN (SELECT id FROM service_accounts WHERE disabled))";
pub const OWNER_ENABLED_SQL: &str = "NOT (api_tokens.owner_id IN (SELECT id FROM users WHERE disabled) \
                                     OR api_tokens.owner_id IN (SELECT id FROM service_accounts WHERE disabled))";

pub fn insert(conn: &mut AnyConnection, row: &ApiToken) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table.find(id).select(ApiToken::as_select()).first(conn).optional()
}

/// A token known to exist, by id.
pub fn get(conn: &mut AnyConnection, id: &str) -> QueryResult<ApiToken> {
    api_tokens::table.find(id).select(ApiToken::as_select()).first(conn)
}

/// A token of the org, by id.
pub fn find_in_org(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .find(id)
        .filter(api_tokens::org_id.eq(org_id))
        .select(ApiToken::as_select())
        .first(conn)
        .optional()
}

/// A token of `owner_id` in the org, by id.
pub fn find_owned(conn: &mut AnyConnection, org_id: &str, owner_id: &str, id: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .find(id)
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::owner_id.eq(owner_id))
        .select(ApiToken::as_select())
        .first(conn)
        .optional()
}

/// The owner's roles, disabled, deleted_at and epoch.
pub type OwnerState = Option<(String, bool, Option<i64>, i64)>;

/// The columns an exchange needs, and no more (the hot path decodes this row).
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = api_tokens)]
pub struct Grant {
    pub id: String,
    pub org_id: String,
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub roles: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub idle_ttl_days: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub audiences: String,
    pub management: bool,
}

/// The hot path's read: an API token by the SHA-256 of its secret together with its
/// owner's state (user, service account), in one indexed read on the concrete connection.
pub fn find_grant(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<(Grant, OwnerState, OwnerState)>> {
    Ok(crate::on_backend!(conn, c => api_tokens::table
        .filter(api_tokens::secret_hash.eq(hash))
        .left_join(users::table.on(users::id.eq(api_tokens::owner_id)))
        .left_join(service_accounts::table.on(service_accounts::id.eq(api_tokens::owner_id)))
        .select((
            Grant::as_select(),
            (users::roles, users::disabled, users::deleted_at, users::epoch).nullable(),
            (service_accounts::roles, service_accounts::disabled, service_accounts::deleted_at, service_accounts::epoch)
                .nullable(),
        ))
        // No `.first()`: SQLite re-prepares a statement whenever a bound LIMIT is rebound.
        // secret_hash is unique, so this loads at most one row.
        .load(c)?)
    .pop())
}

/// Whether a token with this secret hash exists (concrete connection, no LIMIT, as above).
pub fn hash_known(conn: &mut AnyConnection, hash: &str) -> QueryResult<bool> {
    let ids: Vec<String> = crate::on_backend!(conn, c => api_tokens::table
        .filter(api_tokens::secret_hash.eq(hash))
        .select(api_tokens::id)
        .load(c)?);
    Ok(!ids.is_empty())
}

/// A token by the SHA-256 of its secret.
pub fn find_by_hash(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table.filter(api_tokens::secret_hash.eq(hash)).select(ApiToken::as_select()).first(conn).optional()
}

/// Filters of the org-wide token table, already validated.
#[derive(Default, Debug, Clone, Copy)]
pub struct TableFilter<'a> {
    pub owner_kind: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    /// active, owner_disabled, expired, revoked, idle or expiring_soon, as of `now`.
    pub status: Option<&'a str>,
    /// never_used or used.
    pub usage: Option<&'a str>,
    pub unused_since: Option<i64>,
    pub role: Option<&'a str>,
    pub q: Option<&'a str>,
    /// Whether it may reach the management API.
    pub management: Option<bool>,
    /// It may be exchanged for this resource audience (listed, or "*").
    pub audience: Option<&'a str>,
    /// Expiring before this time (live or not).
    pub expires_before: Option<i64>,
    /// Not revoked, not yet expired, and expiring within this many seconds of `now`.
    pub expires_within: Option<i64>,
    /// The retention of the default lists: tokens that ended (revoked or expired) at or
    /// before this time are left out.
    pub ended_after: Option<i64>,
}

/// Days within which an active token counts as "expiring soon" (`status=expiring_soon`).
pub const EXPIRING_SOON_DAYS: i64 = 7;

/// One page of the org's token table. Filters and sorts touch api_tokens alone (owner
/// label and search text are denormalised), so every sort has an index and OFFSET skips
/// rows without joins. Sorts: `name`, `expires_at`, `last_used_at`, `owner`, else
/// `created_at`.
pub fn table(
    conn: &mut AnyConnection,
    org_id: &str,
    f: &TableFilter<'_>,
    now: i64,
    page: &Page,
) -> QueryResult<Rows<ApiToken>> {
    let query = || {
        let mut q = api_tokens::table.filter(api_tokens::org_id.eq(org_id.to_string())).into_boxed();
        if let Some(v) = f.owner_kind {
            q = q.filter(api_tokens::owner_kind.eq(v.to_string()));
        }
        if let Some(v) = f.owner_id {
            q = q.filter(api_tokens::owner_id.eq(v.to_string()));
        }
        match f.status {
            Some("revoked") => q = q.filter(api_tokens::revoked_at.is_not_null()),
            Some("expired") => q = q.filter(api_tokens::revoked_at.is_null()).filter(api_tokens::expires_at.le(now)),
            Some("idle") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(sql::<Bool>(IDLE_SQL).bind::<BigInt, _>(now))
            }
            // The status a list shows: an active token of a disabled owner is owner_disabled.
            Some("active") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
                    .filter(sql::<Bool>(OWNER_ENABLED_SQL))
            }
            Some("owner_disabled") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
                    .filter(sql::<Bool>(OWNER_DISABLED_SQL))
            }
            // Console tabs only (not an API value): not active (revoked, expired or idle).
            Some("inactive") => {
                q = q.filter(
                    api_tokens::revoked_at
                        .is_not_null()
                        .or(api_tokens::expires_at.le(now))
                        .or(sql::<Bool>(IDLE_SQL).bind::<BigInt, _>(now)),
                )
            }
            Some("expiring_soon") => {
                q = q
                    .filter(api_tokens::revoked_at.is_null())
                    .filter(api_tokens::expires_at.gt(now))
                    .filter(api_tokens::expires_at.le(now + EXPIRING_SOON_DAYS * 86_400))
                    .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
                    .filter(sql::<Bool>(OWNER_ENABLED_SQL))
            }
            _ => {}
        }
        if let Some(before) = f.expires_before {
            q = q.filter(api_tokens::expires_at.lt(before));
        }
        if let Some(within) = f.expires_within {
            q = q
                .filter(api_tokens::revoked_at.is_null())
                .filter(api_tokens::expires_at.gt(now))
                .filter(api_tokens::expires_at.le(now + within));
        }
        if let Some(cutoff) = f.ended_after {
            // Ended = revoked or expired, whichever came first; both after the cutoff.
            q = q
                .filter(api_tokens::expires_at.gt(cutoff))
                .filter(api_tokens::revoked_at.is_null().or(api_tokens::revoked_at.gt(cutoff)));
        }
        match f.usage {
            Some("never_used") => q = q.filter(api_tokens::last_used_at.is_null()),
            Some("used") => q = q.filter(api_tokens::last_used_at.is_not_null()),
            _ => {}
        }
        if let Some(since) = f.unused_since {
            q = q.filter(api_tokens::last_used_at.is_null().or(api_tokens::last_used_at.lt(since)));
        }
        if let Some(r) = f.role {
            q = q.filter(api_tokens::roles.like(format!("%{}%", like_escape(&format!("\"{r}\"")))).escape('\\'));
        }
        if let Some(s) = f.q {
            q = q.filter(api_tokens::search.like(format!("%{}%", like_escape(&s.to_lowercase()))).escape('\\'));
        }
        if let Some(m) = f.management {
            q = q.filter(api_tokens::management.eq(m));
        }
        if let Some(a) = f.audience {
            let listed = format!("%{}%", like_escape(&format!("\"{a}\"")));
            q = q.filter(api_tokens::audiences.eq(ALL_AUDIENCES).or(api_tokens::audiences.like(listed).escape('\\')));
        }
        q.select((ApiToken::as_select(), page::total()))
    };
    page.load(conn, query, |q| match page.key() {
        Some("name") => page.order(q, api_tokens::name, api_tokens::id),
        Some("expires_at") => page.order(q, api_tokens::expires_at, api_tokens::id),
        // Never-used tokens sort as oldest on both backends (NULL ordering differs); the
        // expression matches the index api_tokens_org_last_used_sort.
        Some("last_used_at") => page.order(q, sql::<BigInt>("COALESCE(last_used_at, 0)"), api_tokens::id),
        Some("owner") => page.order(q, api_tokens::owner_label, api_tokens::id),
        _ => page.order(q, api_tokens::created_at, api_tokens::id),
    })
}

/// The owners among `ids`: people by id (email, name) and service accounts by id (name).
pub type Owners = (HashMap<String, (String, String)>, HashMap<String, String>);

pub fn owners(conn: &mut AnyConnection, ids: &[&String]) -> QueryResult<Owners> {
    let people: HashMap<String, (String, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email, users::name))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(id, email, name)| (id, (email, name)))
        .collect();
    let accounts: HashMap<String, String> = service_accounts::table
        .filter(service_accounts::id.eq_any(ids))
        .select((service_accounts::id, service_accounts::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    Ok((people, accounts))
}

/// Which of these owners (people or service accounts) are disabled.
pub fn disabled_owners(conn: &mut AnyConnection, ids: &[&String]) -> QueryResult<std::collections::HashSet<String>> {
    let mut out: std::collections::HashSet<String> = users::table
        .filter(users::id.eq_any(ids))
        .filter(users::disabled.eq(true))
        .select(users::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    out.extend(
        service_accounts::table
            .filter(service_accounts::id.eq_any(ids))
            .filter(service_accounts::disabled.eq(true))
            .select(service_accounts::id)
            .load::<String>(conn)?,
    );
    Ok(out)
}

/// Deletes up to `limit` tokens of the org that ended (revoked or expired) at or before
/// `cutoff`; answers how many. Nothing references api_tokens by foreign key: the audit
/// log names tokens by id and keeps their history.
pub fn purge_ended(conn: &mut AnyConnection, org_id: &str, cutoff: i64, limit: i64) -> QueryResult<usize> {
    let ids: Vec<String> = api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::expires_at.le(cutoff).or(api_tokens::revoked_at.le(cutoff)))
        .select(api_tokens::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(api_tokens::table.filter(api_tokens::id.eq_any(&ids))).execute(conn)
}

/// The operators' gauges: live tokens by owner kind, live tokens expiring within
/// `soon` seconds, and idle tokens (not revoked, not expired, past their idle TTL), as of
/// `now`, over every org. Answers ((user, service_account), expiring, idle).
pub fn gauges(conn: &mut AnyConnection, now: i64, soon: i64) -> QueryResult<((i64, i64), i64, i64)> {
    let live = || {
        api_tokens::table
            .filter(api_tokens::revoked_at.is_null())
            .filter(api_tokens::expires_at.gt(now))
            .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
    };
    let by_kind: Vec<(String, i64)> = live()
        .group_by(api_tokens::owner_kind)
        .select((api_tokens::owner_kind, diesel::dsl::count_star()))
        .load(conn)?;
    let kind = |k: &str| by_kind.iter().find(|(x, _)| x == k).map_or(0, |(_, n)| *n);
    let expiring: i64 = live().filter(api_tokens::expires_at.le(now + soon)).count().get_result(conn)?;
    let idle: i64 = api_tokens::table
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(now))
        .filter(sql::<Bool>(IDLE_SQL).bind::<BigInt, _>(now))
        .count()
        .get_result(conn)?;
    Ok(((kind("user"), kind("service_account")), expiring, idle))
}

/// Live tokens of an owner, except `except` (the token being replaced by a rotation).
pub fn count_live_except(conn: &mut AnyConnection, owner_id: &str, except: &str, now: i64) -> QueryResult<i64> {
    api_tokens::table
        .filter(api_tokens::owner_id.eq(owner_id))
        .filter(api_tokens::id.ne(except))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(now))
        .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
        .count()
        .get_result(conn)
}

/// Live tokens of an owner: not revoked, not expired and not idle-expired as of `now`.
pub fn count_live(conn: &mut AnyConnection, owner_id: &str, now: i64) -> QueryResult<i64> {
    api_tokens::table
        .filter(api_tokens::owner_id.eq(owner_id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(now))
        .filter(sql::<Bool>(NOT_IDLE_SQL).bind::<BigInt, _>(now))
        .count()
        .get_result(conn)
}

/// Stores a token's name, description and search text.
/// Stores what an edit may change: name, description (and the search text) and reach.
pub fn set_editable(conn: &mut AnyConnection, t: &ApiToken) -> QueryResult<()> {
    diesel::update(api_tokens::table.find(&t.id))
        .set((
            api_tokens::name.eq(&t.name),
            api_tokens::description.eq(&t.description),
            api_tokens::search.eq(&t.search),
            api_tokens::audiences.eq(&t.audiences),
            api_tokens::management.eq(t.management),
        ))
        .execute(conn)?;
    // A narrowed reach must not live on in a credential cache (forward-auth).
    super::revocations::invalidate(conn)?;
    Ok(())
}

/// Unrevoked, unexpired tokens of the org owned by someone else whose secret `person` saw.
pub fn live_seen_by_others(
    conn: &mut AnyConnection,
    org_id: &str,
    person: &str,
    now: i64,
) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::owner_id.ne(person))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(now))
        .filter(api_tokens::secret_seen_by.like(super::principals::role_pattern(person)).escape('\\'))
        .select(ApiToken::as_select())
        .load(conn)
}

/// Revokes one token unless it already is; answers the rows changed (0 or 1).
pub fn revoke(conn: &mut AnyConnection, id: &str, by: &str, now: i64) -> QueryResult<usize> {
    let n = diesel::update(api_tokens::table.find(id).filter(api_tokens::revoked_at.is_null()))
        .set((api_tokens::revoked_at.eq(Some(now)), api_tokens::revoked_by.eq(Some(by))))
        .execute(conn)?;
    if n > 0 {
        tokens_revoked(conn, &[id.to_string()], now)?;
    }
    Ok(n)
}

/// Sets a token's revocation time and author, whatever they were (RFC 7009 revocation by
/// the holder, which has just read the token as live in the same transaction).
pub fn mark_revoked(conn: &mut AnyConnection, id: &str, by: &str, now: i64) -> QueryResult<()> {
    diesel::update(api_tokens::table.find(id))
        .set((api_tokens::revoked_at.eq(Some(now)), api_tokens::revoked_by.eq(Some(by))))
        .execute(conn)?;
    tokens_revoked(conn, &[id.to_string()], now)
}

/// Revokes every live token of one owner in the org; answers how many.
pub fn revoke_owned(conn: &mut AnyConnection, org_id: &str, owner_id: &str, by: &str, now: i64) -> QueryResult<usize> {
    let live = || {
        api_tokens::table
            .filter(api_tokens::org_id.eq(org_id))
            .filter(api_tokens::owner_id.eq(owner_id))
            .filter(api_tokens::revoked_at.is_null())
    };
    let ids: Vec<String> = live().select(api_tokens::id).load(conn)?;
    let n = diesel::update(live())
        .set((api_tokens::revoked_at.eq(Some(now)), api_tokens::revoked_by.eq(Some(by))))
        .execute(conn)?;
    tokens_revoked(conn, &ids, now)?;
    Ok(n)
}

/// How many tokens of an owner are not revoked (what revoking all of them revokes).
pub fn count_unrevoked(conn: &mut AnyConnection, org_id: &str, owner_id: &str) -> QueryResult<i64> {
    api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::owner_id.eq(owner_id))
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(conn)
}

/// Keeps the owner label and search text of an owner's tokens in step with its new label.
pub fn relabel_owner(conn: &mut AnyConnection, owner_id: &str, label: &str) -> QueryResult<()> {
    let rows: Vec<ApiToken> =
        api_tokens::table.filter(api_tokens::owner_id.eq(owner_id)).select(ApiToken::as_select()).load(conn)?;
    for t in rows {
        let search = ApiToken::search_text(&t.name, &t.description, &t.hint, label);
        diesel::update(api_tokens::table.find(&t.id))
            .set((api_tokens::owner_label.eq(label), api_tokens::search.eq(search)))
            .execute(conn)?;
    }
    Ok(())
}

/// (id, roles text) of the org's tokens whose roles text matches the LIKE `pattern`.
pub fn with_roles_like(conn: &mut AnyConnection, org_id: &str, pattern: &str) -> QueryResult<Vec<(String, String)>> {
    api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::roles.like(pattern).escape('\\'))
        .select((api_tokens::id, api_tokens::roles))
        .load(conn)
}

pub fn set_roles(conn: &mut AnyConnection, id: &str, roles_text: &str) -> QueryResult<()> {
    diesel::update(api_tokens::table.find(id)).set(api_tokens::roles.eq(roles_text)).execute(conn)?;
    revocations::invalidate(conn)?;
    Ok(())
}

/// Records a use, never moving the last-used time backwards (another instance may have
/// written a newer one).
pub fn touch(conn: &mut AnyConnection, id: &str, at: i64, ip: &str) -> QueryResult<()> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::last_used_at.is_null().or(api_tokens::last_used_at.lt(at))),
    )
    .set((api_tokens::last_used_at.eq(at), api_tokens::last_used_ip.eq(ip)))
    .execute(conn)?;
    Ok(())
}
