//! Pieces several pages share: token rows, the pager, role pickers, dates.
use crate::service::list::{PageQuery, Paged};
use crate::service::tokens::TokenView;

/// Rows per page on every console list.
pub const PAGE_SIZE: i64 = 20;

/// The page query of a console list (`?page=N`), newest first.
pub fn page_query(page: Option<&str>) -> PageQuery {
    PageQuery {
        page: page.map(str::to_string),
        page_size: Some(PAGE_SIZE.to_string()),
        sort: Some("created_at".into()),
        order: Some("desc".into()),
    }
}

/// One owner's token list (personal or a service account's), newest first: the same query
/// `GET /api/v1/me/tokens` parses, without filters.
pub fn token_query(page: Option<&str>) -> crate::service::Result<crate::service::table::TableQuery> {
    Ok(crate::service::table::TableQuery { page: page_query(page).validate()?, ..Default::default() })
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    pub page: Option<String>,
}

/// "2026-11-28T16:30:00Z" → "2026-11-28 16:30 UTC".
pub fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t} UTC"),
        _ => rfc3339.to_string(),
    }
}

/// A token as a table row shows it.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub hint: String,
    pub roles: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub status: &'static str,
    /// Active: may be rotated or revoked.
    pub live: bool,
}

impl TokenRow {
    pub fn new(t: &TokenView) -> TokenRow {
        let last_used = match (&t.last_used_at, &t.last_used_ip) {
            (Some(at), Some(ip)) => format!("{} from {ip}", when(at)),
            (Some(at), None) => when(at),
            _ => "never".into(),
        };
        TokenRow {
            id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            hint: t.hint.clone(),
            roles: t.roles.join(", "),
            created: when(&t.created_at),
            expires: when(&t.expires_at),
            last_used,
            status: t.status,
            live: t.status == "active",
        }
    }
}

/// "Page 2 of 5" with previous/next links.
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new<T: serde::Serialize>(base: &str, p: &Paged<T>) -> Pager {
        let pages = ((p.total_count + p.page_size - 1) / p.page_size.max(1)).max(1);
        let link = |n: i64| format!("{base}?page={n}");
        Pager {
            page: p.page,
            pages,
            total: p.total_count,
            prev: (p.page > 1).then(|| link(p.page - 1)),
            next: (p.page < pages).then(|| link(p.page + 1)),
        }
    }
}

/// A checkbox of a role picker.
pub struct RoleChoice {
    pub name: String,
    pub checked: bool,
}

pub fn role_choices(names: &[String], checked: &[String]) -> Vec<RoleChoice> {
    names.iter().map(|n| RoleChoice { name: n.clone(), checked: checked.contains(n) }).collect()
}

/// A whole number of days from a form field: empty → None.
pub fn days(field: &str, v: &str) -> Result<Option<i64>, crate::console::FieldErrors> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>().map(Some).map_err(|_| crate::console::FieldErrors::field(field, "enter a whole number of days"))
}
