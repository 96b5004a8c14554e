//! Pieces several pages share: token rows, the pager, role pickers, dates.
use crate::service::list::{PageQuery, Paged};
use crate::service::tokens::vocab::TokenStatus;
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
pub fn token_query(page: Option<&str>) -> crate::service::Result<crate::service::tokens::table::TableQuery> {
    Ok(crate::service::tokens::table::TableQuery { page: page_query(page).validate()?, ..Default::default() })
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
    /// Relative forms ("in 3 days", "2 h ago"); the absolute ones above go on hover.
    pub created_rel: String,
    pub expires_rel: String,
    pub last_used_rel: String,
    /// Active and expiring within 7 days.
    pub expiring_soon: bool,
    pub status: &'static str,
    /// Active: may be rotated or revoked.
    pub live: bool,
    /// May be revoked: active, or only stopped by its disabled owner (revoking keeps it
    /// dead when the owner is enabled again).
    pub revocable: bool,
}

impl TokenRow {
    pub fn new(t: &TokenView, now: i64) -> TokenRow {
        let expires_at = crate::clock::parse_rfc3339(&t.expires_at).unwrap_or(i64::MAX);
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
            created_rel: relative(&t.created_at, now),
            expires_rel: relative(&t.expires_at, now),
            last_used_rel: t.last_used_at.as_deref().map(|at| relative(at, now)).unwrap_or_else(|| "never".into()),
            expiring_soon: t.status == TokenStatus::Active && expires_at - now <= 7 * 86_400,
            status: t.status.as_str(),
            live: t.status == TokenStatus::Active,
            revocable: matches!(t.status, TokenStatus::Active | TokenStatus::OwnerDisabled | TokenStatus::Idle),
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
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = |n: i64| format!("{base}{sep}page={n}");
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
    /// What a built-in role allows, or the org's own role's description (see [`noted`]).
    pub description: String,
    /// org:owner: a warning goes beside it.
    pub owner: bool,
}

pub fn role_choices(names: &[String], checked: &[String]) -> Vec<RoleChoice> {
    names
        .iter()
        .map(|n| RoleChoice {
            name: n.clone(),
            checked: checked.contains(n),
            description: crate::service::authz::roles::RoleName::stored(n.to_string())
                .builtin()
                .map_or("", |r| r.description())
                .to_string(),
            owner: n == "org:owner",
        })
        .collect()
}

/// The same choices with `checked` ticked (a refused form shown again), descriptions kept.
pub fn recheck(mut choices: Vec<RoleChoice>, checked: &[String]) -> Vec<RoleChoice> {
    for c in &mut choices {
        c.checked = checked.contains(&c.name);
    }
    choices
}

/// The descriptions of the org's own (service and custom) roles, by name.
pub type Notes = std::collections::HashMap<String, String>;

pub fn role_notes(
    conn: &mut crate::store::AnyConnection,
    p: &crate::service::Principal,
) -> crate::service::Result<Notes> {
    Ok(crate::service::authz::roles::list(conn, p)?
        .into_iter()
        .filter(|r| r.kind != "organization" && !r.description.is_empty())
        .map(|r| (r.name, r.description))
        .collect())
}

/// [`role_choices`] with the org's own roles described beside their checkboxes too.
pub fn noted(mut choices: Vec<RoleChoice>, notes: &Notes) -> Vec<RoleChoice> {
    for c in &mut choices {
        if let Some(d) = notes.get(&c.name) {
            c.description = d.clone();
        }
    }
    choices
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
        std::iter::once(crate::service::authz::reach::ALL.to_string()).chain(cfg.audiences.iter().cloned()).collect();
    let all = [crate::service::authz::reach::ALL.to_string()];
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

/// Lifetime presets offered in a create dialog (those within the policy's maximum).
const PRESETS: [i64; 4] = [7, 30, 60, 90];

/// The expiry fields of a create dialog: presets, the date range, the preview.
pub struct Expiry {
    pub presets: Vec<i64>,
    pub max_days: i64,
    /// The server's time (the preview script counts from it).
    pub now: i64,
    /// Tomorrow and the last allowed day (YYYY-MM-DD), the date input's range.
    pub min_date: String,
    pub max_date: String,
    /// A chosen date, kept when the dialog is shown again.
    pub expires_on: String,
    /// "Expires on 2027-01-05 16:30 UTC (in 30 days)."
    pub preview: String,
}

impl Expiry {
    pub fn new(max_days: i64, now: i64, ttl_days: &str, expires_on: &str) -> Expiry {
        let date = |t: i64| crate::clock::rfc3339(t)[..10].to_string();
        let at = match parse_date(expires_on) {
            Some(t) => Some(t),
            None => ttl_days.trim().parse::<i64>().ok().map(|d| now + d * 86_400),
        };
        let preview = match at {
            Some(t) => format!("Expires on {} ({}).", when(&crate::clock::rfc3339(t)), relative_at(t, now)),
            None => String::new(),
        };
        Expiry {
            presets: PRESETS.iter().copied().filter(|d| *d <= max_days).collect(),
            max_days,
            now,
            min_date: date(now + 86_400),
            max_date: date(now + max_days * 86_400),
            expires_on: expires_on.to_string(),
            preview,
        }
    }
}

/// "2027-01-05" → its midnight UTC.
fn parse_date(v: &str) -> Option<i64> {
    let v = v.trim();
    (v.len() == 10).then(|| crate::clock::parse_rfc3339(&format!("{v}T00:00:00Z"))).flatten()
}

/// The lifetime a create dialog names: `expires_on` (a date: its midnight UTC) instead of
/// `ttl_days` when given. Answers (ttl_days, expires_at) for `CreateToken`.
pub fn expiry_from_form(
    form: &crate::console::csrf::Form,
) -> Result<(Option<i64>, Option<String>), crate::console::FieldErrors> {
    let on = form.get("expires_on").trim();
    if on.is_empty() {
        return Ok((days("ttl_days", form.get("ttl_days"))?, None));
    }
    match parse_date(on) {
        Some(t) => Ok((None, Some(crate::clock::rfc3339(t)))),
        None => Err(crate::console::FieldErrors::field("expires_at", "enter a date as YYYY-MM-DD")),
    }
}

/// "in 3 days", "2 h ago", "just now" for an RFC 3339 time ("" stays "").
pub fn relative(rfc: &str, now: i64) -> String {
    crate::clock::parse_rfc3339(rfc).map(|t| relative_at(t, now)).unwrap_or_default()
}

fn relative_at(t: i64, now: i64) -> String {
    let d = t - now;
    let a = d.abs();
    let amount = if a < 60 {
        return "just now".into();
    } else if a < 3600 {
        format!("{} min", a / 60)
    } else if a < 2 * 86_400 {
        format!("{} h", a / 3600)
    } else {
        format!("{} days", a / 86_400)
    };
    if d > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}
