//! `tokend token …`: your API tokens (or a service account's, with `--service-account`),
//! and using one: `exchange`, `header`, `helper`.
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::store::{self, Cached};
use super::{client, secret_from_stdin, Failure, Output};

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an API token; prints its secret once (on standard output, alone, so that
    /// `SECRET=$(tokend token create …)` works).
    Create(CreateArgs),
    /// List tokens (never secrets): a table, or JSON.
    List(ListArgs),
    /// Replace a token's secret: prints the new secret once; the old one stops working now.
    Rotate(OneArgs),
    /// Revoke a token: it stops working now. Irreversible.
    Revoke(OneArgs),
    /// Exchange an API token for an access token and print it. The API token is read from
    /// TOKEND_TOKEN or standard input, never from the command line; the access token is
    /// cached (privately) until shortly before it expires.
    Exchange(ExchangeArgs),
    /// `exchange`, printed as an HTTP header line: `Authorization: Bearer …`.
    Header(ExchangeArgs),
    /// `exchange` for programs: prints JSON with the access token and its expiry (or a
    /// kubectl ExecCredential), for credential-helper hooks in scripts and tools.
    Helper(HelperArgs),
}

/// Which tokens: yours, or a service account's.
#[derive(Args, Clone)]
pub struct Owner {
    /// Act on this service account's tokens instead of your own (needs org:admin).
    #[arg(long = "service-account", value_name = "ID")]
    pub service_account: Option<String>,
}

impl Owner {
    fn base(&self) -> String {
        match &self.service_account {
            Some(sa) => format!("/service-accounts/{}/tokens", enc(sa)),
            None => "/me/tokens".to_string(),
        }
    }
}

/// Percent-encodes a path segment.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Args)]
pub struct CreateArgs {
    /// A name to recognise it by.
    #[arg(long)]
    pub name: String,
    /// What it is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Lifetime: `30d`, `2w`, a number of days, or an expiry date (`2027-01-31` or RFC 3339).
    #[arg(long, default_value = "30d")]
    pub expires: String,
    /// A role the token carries (repeat for several; personal tokens need at least one).
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// A resource audience it may be exchanged for (repeat; default: the org's policy).
    #[arg(long = "audience", value_name = "AUDIENCE")]
    pub audiences: Vec<String>,
    /// May also be exchanged for the management API (off by default).
    #[arg(long)]
    pub management: bool,
    #[command(flatten)]
    pub owner: Owner,
    /// `text` (the secret alone on stdout, tables for lists) or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only live tokens expiring within `--within` days.
    #[arg(long)]
    pub expiring: bool,
    /// The window of `--expiring`, in days.
    #[arg(long, default_value_t = 7, value_name = "DAYS")]
    pub within: i64,
    #[command(flatten)]
    pub owner: Owner,
    /// `text` (the secret alone on stdout, tables for lists) or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct OneArgs {
    /// The token's id (from `tokend token list`).
    pub id: String,
    #[command(flatten)]
    pub owner: Owner,
    /// `text` (the secret alone on stdout, tables for lists) or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args, Clone)]
pub struct ExchangeArgs {
    /// The server (default: TOKEND_SERVER, else the signed-in session's).
    #[arg(long, env = "TOKEND_SERVER")]
    pub server: Option<String>,
    /// The audience to get a token for (default: the server's first resource audience).
    #[arg(long)]
    pub audience: Option<String>,
    /// Space-separated roles to narrow the token to.
    #[arg(long)]
    pub scope: Option<String>,
    /// Always ask the server (the new token is still cached).
    #[arg(long)]
    pub no_cache: bool,
    /// Refused: a token on the command line is visible to other users and kept in shell
    /// history. Caught here so that the refusal does not repeat it.
    #[arg(hide = true, num_args = 0..)]
    pub stray: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum HelperFormat {
    /// `{"access_token","token_type","expires_at","expires_in"}`.
    #[default]
    Json,
    /// A kubectl `ExecCredential` (client.authentication.k8s.io/v1).
    ExecCredential,
    /// `TOKEND_ACCESS_TOKEN=…` for `eval`/`source`.
    Env,
}

#[derive(Args)]
pub struct HelperArgs {
    #[command(flatten)]
    pub exchange: ExchangeArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: HelperFormat,
}

pub fn run(cmd: TokenCmd) -> Result<(), Failure> {
    match cmd {
        TokenCmd::Create(a) => create(&a),
        TokenCmd::List(a) => list(&a),
        TokenCmd::Rotate(a) => rotate(&a),
        TokenCmd::Revoke(a) => revoke(&a),
        TokenCmd::Exchange(a) => {
            let c = exchange(&a)?;
            println!("{}", c.access_token);
            Ok(())
        }
        TokenCmd::Header(a) => {
            let c = exchange(&a)?;
            println!("Authorization: Bearer {}", c.access_token);
            Ok(())
        }
        TokenCmd::Helper(a) => {
            let c = exchange(&a.exchange)?;
            let expires = tokend::clock::rfc3339(c.expires_at);
            match a.format {
                HelperFormat::Json => println!(
                    "{}",
                    json!({"access_token": c.access_token, "token_type": c.token_type, "expires_at": expires,
                           "expires_in": (c.expires_at - super::now()).max(0), "scope": c.scope})
                ),
                HelperFormat::ExecCredential => println!(
                    "{}",
                    json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                           "status": {"token": c.access_token, "expirationTimestamp": expires}})
                ),
                HelperFormat::Env => println!("TOKEND_ACCESS_TOKEN={}", c.access_token),
            }
            Ok(())
        }
    }
}

/// `--expires` → the create body's `ttl_days` or `expires_at`.
pub fn expiry(raw: &str) -> Result<(&'static str, Value), Failure> {
    let s = raw.trim();
    let days = |n: &str, mult: i64| {
        n.parse::<i64>().ok().filter(|d| *d > 0).map(|d| d * mult).ok_or_else(|| {
            Failure::usage(format!("--expires {s:?}: expected a positive number of days (30d), weeks (2w) or a date"))
        })
    };
    if let Some(n) = s.strip_suffix('d') {
        return Ok(("ttl_days", json!(days(n, 1)?)));
    }
    if let Some(n) = s.strip_suffix('w') {
        return Ok(("ttl_days", json!(days(n, 7)?)));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(("ttl_days", json!(days(s, 1)?)));
    }
    if s.len() == 10 && tokend::clock::parse_rfc3339(&format!("{s}T00:00:00Z")).is_some() {
        return Ok(("expires_at", json!(format!("{s}T00:00:00Z"))));
    }
    if tokend::clock::parse_rfc3339(s).is_some() {
        return Ok(("expires_at", json!(s)));
    }
    Err(Failure::usage(format!(
        "--expires {s:?}: expected 30d, 2w, a number of days, a date (2027-01-31) or an RFC 3339 time"
    )))
}

fn create(a: &CreateArgs) -> Result<(), Failure> {
    let (field, value) = expiry(&a.expires)?;
    let s = store::live_session()?;
    let mut body = json!({"name": a.name, field: value, "management": a.management});
    if !a.roles.is_empty() {
        body["roles"] = json!(a.roles);
    } else if a.owner.service_account.is_none() {
        return Err(Failure::usage(
            "name at least one --role: a personal token carries only the roles you give it (see `tokend whoami`)",
        ));
    }
    if let Some(d) = &a.description {
        body["description"] = json!(d);
    }
    if !a.audiences.is_empty() {
        body["audiences"] = json!(a.audiences);
    }
    let created = client::api(&s, "POST", &a.owner.base(), Some(&body))?;
    print_secret(&created, a.output, "Created")
}

/// Prints a record carrying a secret shown once: text puts the secret alone on stdout and
/// the explanation on stderr; JSON prints the server's answer.
fn print_secret(v: &Value, output: Output, verb: &str) -> Result<(), Failure> {
    let Some(secret) = v["token"].as_str() else {
        return Err(Failure::error("the server's answer carries no secret"));
    };
    if output == Output::Json {
        println!("{v}");
        return Ok(());
    }
    eprintln!(
        "{verb} token \"{}\" (id {}, expires {}, roles {}). The secret below is shown once: store it now.",
        v["name"].as_str().unwrap_or(""),
        v["id"].as_str().unwrap_or(""),
        v["expires_at"].as_str().unwrap_or(""),
        v["roles"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    );
    println!("{secret}");
    Ok(())
}

fn all_pages(s: &store::Session, base: &str) -> Result<Vec<Value>, Failure> {
    let mut items = Vec::new();
    for page in 1.. {
        let v = client::api(s, "GET", &format!("{base}?page={page}&page_size=200"), None)?;
        let got = v["items"].as_array().cloned().unwrap_or_default();
        let n = got.len();
        items.extend(got);
        let total = v["total_count"].as_u64().unwrap_or(0) as usize;
        if n == 0 || items.len() >= total || page >= 50 {
            break;
        }
    }
    Ok(items)
}

fn list(a: &ListArgs) -> Result<(), Failure> {
    let s = store::live_session()?;
    let mut items = all_pages(&s, &a.owner.base())?;
    if a.expiring {
        let horizon = super::now() + a.within.max(0) * 86_400;
        items.retain(|t| {
            t["status"] == "active"
                && t["expires_at"].as_str().and_then(tokend::clock::parse_rfc3339).is_some_and(|e| e <= horizon)
        });
    }
    if a.output == Output::Json {
        println!("{}", Value::Array(items));
        return Ok(());
    }
    let rows: Vec<[String; 7]> = items
        .iter()
        .map(|t| {
            let f = |k: &str| t[k].as_str().unwrap_or("-").to_string();
            let roles = t["roles"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
            [f("id"), f("name"), f("hint"), f("status"), f("expires_at"), f("last_used_at"), roles.unwrap_or_default()]
        })
        .collect();
    print_table(&["ID", "NAME", "HINT", "STATUS", "EXPIRES", "LAST USED", "ROLES"], &rows);
    if rows.is_empty() {
        eprintln!("(no tokens{})", if a.expiring { " expiring in that window" } else { "" });
    }
    Ok(())
}

pub fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut w = head.map(|h| h.chars().count());
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn rotate(a: &OneArgs) -> Result<(), Failure> {
    let s = store::live_session()?;
    let v = client::api(&s, "POST", &format!("{}/{}/rotate", a.owner.base(), enc(&a.id)), None)?;
    print_secret(&v, a.output, "Rotated; new")
}

fn revoke(a: &OneArgs) -> Result<(), Failure> {
    let s = store::live_session()?;
    client::api(&s, "DELETE", &format!("{}/{}", a.owner.base(), enc(&a.id)), None)?;
    eprintln!("Revoked token {}.", a.id);
    Ok(())
}

/// Seconds before expiry at which a cached access token is no longer handed out.
pub const CACHE_MARGIN: i64 = 60;

/// The API token from TOKEND_TOKEN or standard input; form-checked before any network.
fn api_token() -> Result<String, Failure> {
    let t = match std::env::var("TOKEND_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => secret_from_stdin("API token (set TOKEND_TOKEN or pipe it on standard input)", None)?,
    };
    match tokend::secrets::parse(&t) {
        Ok(tokend::secrets::SecretKind::Personal | tokend::secrets::SecretKind::Service) => Ok(t),
        Ok(tokend::secrets::SecretKind::ClientSecret) => {
            Err(Failure::usage("that is an app's client secret: apps use client_credentials, not token exchange"))
        }
        Err(e) => Err(Failure::usage(format!("not a tokend API token ({e}): expected tkd_pat_… or tkd_sat_…"))),
    }
}

fn exchange_server(a: &ExchangeArgs) -> Result<String, Failure> {
    if let Some(s) = &a.server {
        return client::normalise_server(s);
    }
    match store::load_session()? {
        Some(s) => Ok(s.server),
        None => Err(Failure::usage("which server? pass --server URL, set TOKEND_SERVER, or run `tokend login` first")),
    }
}

/// The access token for the API token (cached, or fresh from `/oauth/token`).
pub fn exchange(a: &ExchangeArgs) -> Result<Cached, Failure> {
    if !a.stray.is_empty() {
        return Err(Failure::usage(
            "unexpected argument: the API token is read from TOKEND_TOKEN or standard input, never from the command line",
        ));
    }
    let token = api_token()?;
    let server = exchange_server(a)?;
    let audience = a.audience.clone().unwrap_or_default();
    let scope = a.scope.clone().unwrap_or_default();
    let path = store::cache_path(&[&server, &token, &audience, &scope])?;
    if !a.no_cache {
        if let Some(c) = store::load_cached(&path) {
            if c.expires_at - super::now() > CACHE_MARGIN {
                return Ok(c);
            }
        }
    }
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", token.as_str()),
        ("subject_token_type", "urn:tokend:params:oauth:token-type:api_token"),
    ];
    if !audience.is_empty() {
        form.push(("audience", &audience));
    }
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let v = client::token(&server, &form)?;
    let (Some(at), Some(ttl)) = (v["access_token"].as_str(), v["expires_in"].as_i64()) else {
        return Err(Failure::error(format!("{server} answered without access_token/expires_in")));
    };
    let c = Cached {
        access_token: at.to_string(),
        token_type: v["token_type"].as_str().unwrap_or("Bearer").to_string(),
        expires_at: super::now() + ttl,
        scope: v["scope"].as_str().unwrap_or("").to_string(),
    };
    if let Err(f) = store::save_cached(&path, &c) {
        // Still usable: only the cache failed.
        eprintln!("tokend: warning: {}", f.message);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_forms() {
        assert_eq!(expiry("30d").unwrap(), ("ttl_days", json!(30)));
        assert_eq!(expiry("2w").unwrap(), ("ttl_days", json!(14)));
        assert_eq!(expiry("7").unwrap(), ("ttl_days", json!(7)));
        assert_eq!(expiry("2027-01-31").unwrap(), ("expires_at", json!("2027-01-31T00:00:00Z")));
        assert_eq!(expiry("2027-01-31T10:00:00Z").unwrap(), ("expires_at", json!("2027-01-31T10:00:00Z")));
        for bad in ["", "0d", "-3d", "5h", "soon", "2027-13-01"] {
            assert_eq!(expiry(bad).unwrap_err().code, crate::cli::exit::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn servers_are_normalised() {
        assert_eq!(client::normalise_server("https://t.example/ ").unwrap(), "https://t.example");
        assert_eq!(client::normalise_server("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in ["t.example", "ftp://t.example", "https://u:p@t.example"] {
            assert!(client::normalise_server(bad).is_err(), "{bad}");
        }
    }
}
