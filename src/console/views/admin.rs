//! The admin pages: the org token table with saved searches (`org_tokens`), people
//! (`people`), the role catalogue (`roles_page`), the policy (`policy_page`) and the audit
//! log (`audit_log`). Every one answers its 403 page to a caller without org:admin (the
//! services refuse anyway; the page check only spares the database work), and every
//! action calls the same `service` function as the JSON API.
//!
//! Also here: [`Query`], a list page's query string as ordered pairs (links that keep the
//! filters while changing one parameter), and [`QueryPager`], the pager that keeps them.
use actix_web::web::{self, get, post, resource};

use super::{audit_log, org_tokens, people, policy_page, roles_page};
use crate::service::list::Paged;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/tokens").route(get().to(org_tokens::list)))
        .service(resource("/tokens/saved").route(post().to(org_tokens::save)))
        .service(resource("/tokens/revoke-selected").route(post().to(org_tokens::revoke_selected)))
        .service(resource("/tokens/export.csv").route(get().to(org_tokens::export_csv)))
        .service(resource("/tokens/saved/{id}/delete").route(post().to(org_tokens::delete_saved)))
        .service(resource("/tokens/{id}/revoke").route(post().to(org_tokens::revoke)))
        .service(resource("/people").route(get().to(people::list)).route(post().to(people::create)))
        .service(resource("/people/{id}").route(get().to(people::show)).route(post().to(people::update)))
        .service(resource("/people/{id}/disable").route(post().to(people::disable)))
        .service(resource("/people/{id}/enable").route(post().to(people::enable)))
        .service(resource("/people/{id}/reset").route(post().to(people::reset)))
        .service(resource("/roles").route(get().to(roles_page::list)).route(post().to(roles_page::create)))
        .service(resource("/roles/{name}/delete").route(post().to(roles_page::delete)))
        .service(resource("/roles/{name}/description").route(post().to(roles_page::describe)))
        .service(resource("/policy").route(get().to(policy_page::show_page)).route(post().to(policy_page::save)))
        .service(resource("/audit").route(get().to(audit_log::list)));
}

/// A page's query string as ordered `(name, value)` pairs, empty values dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string; unparsable input is an empty query.
    pub fn from_raw(raw: &str) -> Query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.trim_start_matches('?')).unwrap_or_default();
        Query(pairs.into_iter().map(|(k, v)| (k, v.trim().to_string())).filter(|(_, v)| !v.is_empty()).collect())
    }
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_string()).filter(|v| !v.is_empty())
    }
    /// This query with `name` set to `value` (removed when empty), in place of any earlier
    /// value. Changing anything but the page goes back to page 1.
    pub fn with(&self, name: &str, value: &str) -> Query {
        let mut out: Vec<(String, String)> =
            self.0.iter().filter(|(k, _)| k != name && (name == "page" || k != "page")).cloned().collect();
        if !value.is_empty() {
            out.push((name.to_string(), value.to_string()));
        }
        Query(out)
    }
    pub fn without(&self, name: &str) -> Query {
        self.with(name, "")
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The encoded query string (no leading `?`).
    pub fn encoded(&self) -> String {
        serde_urlencoded::to_string(&self.0).unwrap_or_default()
    }
    /// `base` with this query.
    pub fn href(&self, base: &str) -> String {
        if self.0.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", self.encoded())
        }
    }
}

/// "Page 2 of 5 (93 in all)" with links that keep the query.
pub struct QueryPager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl QueryPager {
    pub fn new<T: serde::Serialize>(base: &str, q: &Query, p: &Paged<T>) -> QueryPager {
        let pages = ((p.total_count + p.page_size - 1) / p.page_size.max(1)).max(1);
        let link = |n: i64| q.with("page", &n.to_string()).href(base);
        QueryPager {
            page: p.page,
            pages,
            total: p.total_count,
            prev: (p.page > 1).then(|| link(p.page - 1)),
            next: (p.page < pages).then(|| link(p.page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn queries_keep_filters_and_drop_empty_values() {
        let q = Query::from_raw("?q=&status=idle&page=3&usage=never_used");
        assert_eq!(q.encoded(), "status=idle&page=3&usage=never_used");
        assert_eq!(q.with("status", "revoked").encoded(), "usage=never_used&status=revoked", "back to page 1");
        assert_eq!(q.with("page", "4").encoded(), "status=idle&usage=never_used&page=4");
        assert_eq!(Query::from_raw("a=1%3A2").href("/x"), "/x?a=1%3A2");
        assert_eq!(Query::from_raw("").href("/x"), "/x");
        // Encoding is stable: the canonical form of a canonical query is itself.
        let raw = Query::from_raw("unused_since=2026-01-01T00:00:00Z&q=a b").encoded();
        assert_eq!(Query::from_raw(&raw).encoded(), raw);
    }
}
