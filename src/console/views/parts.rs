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
    /// May be revoked: active, or only stopped by its disabled owner (revoking keeps it
    /// dead when the owner is enabled again).
    pub revocable: bool,
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
            revocable: matches!(t.status, "active" | "owner_disabled" | "idle"),
        }
    }
}

impl TokenRow {
    /// "owner_disabled" → "owner disabled".
    pub fn status_label(&self) -> String {
        self.status.replace('_', " ")
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

/// A copyable configuration example on a secret page.
pub struct Snippet {
    /// The element id its Copy button names.
    pub id: &'static str,
    pub title: &'static str,
    pub text: String,
}

/// How to use a new credential from the tools people paste it into, with its client id
/// filled in: the exchange (curl) and Prometheus' own `oauth2` block (client_credentials,
/// which takes API tokens and app secrets alike). The secret itself is never in a snippet:
/// it goes in a file the tool reads.
pub fn usage_snippets(cfg: &crate::config::Config, client_id: &str, api_token: bool) -> Vec<Snippet> {
    let endpoint = format!("{}/oauth/token", cfg.issuer);
    let resource = cfg.audiences.first().map(|a| format!("\n        resource: {a}")).unwrap_or_default();
    let params = if resource.is_empty() { String::new() } else { format!("\n      endpoint_params:{resource}") };
    let mut out = Vec::new();
    if api_token {
        out.push(Snippet {
            id: "snippet-exchange",
            title: "Exchange it for an access token (the token in the file token.txt)",
            text: format!("curl -s {endpoint} -d grant_type=refresh_token --data-urlencode refresh_token@token.txt"),
        });
    }
    out.push(Snippet {
        id: "snippet-prometheus",
        title: "Prometheus scrape job (the secret in the file /etc/prometheus/tokend-secret)",
        text: format!(
            "scrape_configs:\n  - job_name: my-service\n    oauth2:\n      client_id: {client_id}\n      \
             client_secret_file: /etc/prometheus/tokend-secret\n      token_url: {endpoint}{params}\n    \
             static_configs:\n      - targets: [\"my-service:9100\"]"
        ),
    });
    out
}

/// The reach fields of a create dialog: every resource server (`*`) or chosen ones, and the
/// management API set apart.
pub struct ReachChoice {
    pub audiences: Vec<RoleChoice>,
    pub management: bool,
}

/// `*` first, then the configured resource audiences; `checked` ticked (None: the default).
pub fn reach_choice(cfg: &crate::config::Config, checked: Option<&[String]>, management: Option<bool>) -> ReachChoice {
    let names: Vec<String> =
        std::iter::once(crate::service::reach::ALL.to_string()).chain(cfg.audiences.iter().cloned()).collect();
    let all = [crate::service::reach::ALL.to_string()];
    ReachChoice { audiences: role_choices(&names, checked.unwrap_or(&all)), management: management.unwrap_or(false) }
}

/// The default of a new credential's dialog: every resource server, not the management API.
pub fn default_reach(cfg: &crate::config::Config) -> ReachChoice {
    reach_choice(cfg, None, None)
}

/// The reach a submitted dialog names: its ticked audiences (none ticked is refused by the
/// service, with a message) and whether the management API was ticked. A form without the
/// reach fields (`reach` marks that they were shown) leaves both to the defaults.
pub fn reach_from_form(form: &crate::console::csrf::Form) -> (Option<Vec<String>>, Option<bool>) {
    if form.opt("reach").is_none() {
        return (None, None);
    }
    (Some(form.all("audiences")), Some(form.opt("management").is_some()))
}
