//! Configuration from environment and flags, with the defaults of API.md.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::keys::Alg;

/// Every variable is also a flag of `tokend serve`; values are checked in `Config::from_args`
/// so that a bad value names its variable.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = "sqlite://./data/tokend.db")]
    pub database_url: String,
    #[arg(long, env = "TOKEND_BIND", hide_env_values = true, default_value = "127.0.0.1:8080")]
    pub bind: String,
    #[arg(long, env = "TOKEND_ISSUER", hide_env_values = true, default_value = "http://127.0.0.1:8080")]
    pub issuer: String,
    #[arg(long, env = "TOKEND_KEYS_DIR", hide_env_values = true, default_value = "./keys")]
    pub keys_dir: PathBuf,
    #[arg(long, env = "TOKEND_SIGNING_ALG", hide_env_values = true, default_value = "ES256")]
    pub signing_alg: String,
    #[arg(long, env = "TOKEND_ACCESS_TOKEN_TTL", hide_env_values = true, default_value = "1800")]
    pub access_token_ttl: String,
    #[arg(long, env = "TOKEND_KEY_PUBLISH_DELAY", hide_env_values = true, default_value = "600")]
    pub key_publish_delay: String,
    #[arg(long, env = "TOKEND_KEYS_RELOAD_SECONDS", hide_env_values = true, default_value = "30")]
    pub keys_reload_seconds: String,
    /// Comma-separated resource-server audiences; the first is the default. None by default.
    #[arg(long, env = "TOKEND_AUDIENCES", hide_env_values = true, default_value = "")]
    pub audiences: String,
    /// The management API's audience (default `{issuer}/api`): never a default audience.
    #[arg(long, env = "TOKEND_API_AUDIENCE", hide_env_values = true)]
    pub api_audience: Option<String>,
    #[arg(long, env = "TOKEND_SERVICE_ONLY_AUDIENCES", hide_env_values = true, default_value = "")]
    pub service_only_audiences: String,
    #[arg(long, env = "TOKEND_BOOTSTRAP_EMAIL", hide_env_values = true, default_value = "admin@localhost")]
    pub bootstrap_email: String,
    #[arg(long, env = "TOKEND_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<String>,
    /// Failed credential checks (/oauth/token, /oauth/introspect, /oauth/revoke, /api/v1
    /// bearers) per client address per minute before further failures answer 429 (valid
    /// credentials are always served); 0 turns these limits off.
    #[arg(long, env = "TOKEND_TOKEN_FAILURES_PER_MINUTE", hide_env_values = true, default_value = "120")]
    pub token_failures_per_minute: String,
    /// Refused requests (4xx) answered at once per second, process-wide; beyond, a refusal
    /// waits its turn (at most 1 s) or is answered with its connection closed. 0 = off.
    #[arg(long, env = "TOKEND_REFUSALS_PER_SECOND", hide_env_values = true, default_value = "1000")]
    pub refusals_per_second: String,
    /// Comma-separated IPs of reverse proxies whose X-Forwarded-For is believed (throttles,
    /// audit and last-used IPs then see the real client).
    #[arg(long, env = "TOKEND_TRUSTED_PROXIES", hide_env_values = true, default_value = "")]
    pub trusted_proxies: String,
    /// Serve POST /bench/sign, which only signs a fixed JWT: the ceiling for benchmarks.
    #[arg(long, env = "TOKEND_BENCH_SIGN_ROUTE", hide_env_values = true, hide = true)]
    pub bench_sign_route: bool,
    /// HTTP worker threads; 0 means one per CPU.
    #[arg(long, env = "TOKEND_WORKERS", hide_env_values = true, default_value = "0")]
    pub workers: String,
    /// SMTP server for notification email (`smtp://host:port`, `smtps://user:pass@host`,
    /// `smtp://host?tls=required`); none: no email is sent.
    #[arg(long, env = "TOKEND_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Secret-scanning reporters' public keys for `POST /leaks/report`: a file or an
    /// http(s) URL of `{"public_keys":[{"key_identifier","key"}]}`; none: the route answers 401.
    #[arg(long, env = "TOKEND_LEAK_REPORTER_KEYS", hide_env_values = true)]
    pub leak_reporter_keys: Option<String>,
    /// The From address of notification email.
    #[arg(long, env = "TOKEND_SMTP_FROM", hide_env_values = true, default_value = "tokend <tokend@localhost>")]
    pub smtp_from: String,
    /// Deliver webhooks to loopback, private and link-local addresses too (refused by
    /// default: an org admin must not reach the operator's internal network).
    #[arg(long, env = "TOKEND_WEBHOOK_ALLOW_PRIVATE", hide_env_values = true)]
    pub webhook_allow_private: bool,
    /// Seconds between passes of the notification worker; 0 turns it (and the expiry
    /// scan) off in this instance.
    #[arg(long, env = "TOKEND_OUTBOX_INTERVAL_SECONDS", hide_env_values = true, default_value = "5")]
    pub outbox_interval_seconds: String,
    /// The header forward-auth (`GET /gateway/auth`) sets to the caller's org id, for
    /// multi-tenant upstreams (Mimir, Loki, Tempo, Cortex read `X-Scope-OrgID`).
    #[arg(long, env = "TOKEND_GATEWAY_TENANT_HEADER", hide_env_values = true, default_value = "X-Scope-OrgID")]
    pub gateway_tenant_header: String,
    /// Seconds a forward-auth or introspection answer is served from memory (0: never).
    /// A revocation through this instance takes effect at once; through another, within this time.
    #[arg(long, env = "TOKEND_GATEWAY_CACHE_SECONDS", hide_env_values = true, default_value = "10")]
    pub gateway_cache_seconds: String,
    /// Entries of the token path's verified-credential cache (0: no caching). Every
    /// instance drops its entries on any change: on PostgreSQL through LISTEN/NOTIFY, on
    /// SQLite when another connection commits to the file.
    #[arg(long, env = "TOKEND_CREDENTIAL_CACHE", hide_env_values = true, default_value = "10000")]
    pub credential_cache: String,
    /// Seconds a client has to send a request's head, and as long again for its body; a
    /// connection that stops mid-request is answered (408/400) and closed.
    #[arg(long, env = "TOKEND_REQUEST_TIMEOUT_SECONDS", hide_env_values = true, default_value = "10")]
    pub request_timeout_seconds: String,
    /// When set, `/metrics` answers only `Authorization: Bearer <this token>` (401 otherwise).
    #[arg(long, env = "TOKEND_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    pub issuer: String,
    pub keys_dir: PathBuf,
    pub signing_alg: Alg,
    pub access_token_ttl: i64,
    pub key_publish_delay: i64,
    pub keys_reload_seconds: u64,
    /// Resource-server audiences; the first is the default for token requests naming none.
    pub audiences: Vec<String>,
    /// The audience `/api/v1` accepts. Only a client naming it gets a token for it.
    pub api_audience: String,
    pub service_only_audiences: Vec<String>,
    pub bootstrap_email: String,
    pub bootstrap_password: Option<String>,
    pub workers: usize,
    pub token_failures_per_minute: usize,
    pub refusals_per_second: u64,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub bench_sign_route: bool,
    /// `TOKEND_SMTP_URL`; it may hold a password, so it is never logged.
    pub smtp_url: Option<SmtpUrl>,
    pub smtp_from: String,
    /// `TOKEND_LEAK_REPORTER_KEYS`: where the leak reporters' keys are read from.
    pub leak_reporter_keys: Option<String>,
    pub webhook_allow_private: bool,
    pub outbox_interval_seconds: u64,
    pub gateway_tenant_header: actix_web::http::header::HeaderName,
    pub gateway_cache_seconds: i64,
    /// `TOKEND_CREDENTIAL_CACHE`: the credential cache's entry bound (0: off).
    pub credential_cache: usize,
    /// `TOKEND_METRICS_TOKEN`: the bearer `/metrics` requires, if any.
    pub metrics_token: Option<MetricsToken>,
    pub request_timeout_seconds: u64,
}

/// The bearer token of `/metrics`, kept as its SHA-256 (compared in constant time; never
/// logged).
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(token: &str) -> MetricsToken {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        MetricsToken(out)
    }

    /// Whether `presented` is the token (constant time: both sides are hashed first).
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(&MetricsToken::new(presented).0[..], &self.0[..]))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(metrics token)")
    }
}

/// An SMTP URL; its Debug form shows no credentials.
#[derive(Clone)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                write!(f, "{scheme}://{host}")
            }
            None => f.write_str("(SMTP URL)"),
        }
    }
}

/// The longest access token any app may ask for; key retirement waits this long.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 86_400;

#[derive(thiserror::Error, Debug)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn int_in(var: &'static str, value: &str, lo: i64, hi: i64, what: &str) -> Result<i64, ConfigError> {
    match value.trim().parse::<i64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(ConfigError { var, message: format!("expected {what} between {lo} and {hi}, got {value:?}") }),
    }
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect()
}

impl Config {
    pub fn from_args(a: &ConfigArgs) -> Result<Config, ConfigError> {
        let bind = a.bind.parse::<SocketAddr>().map_err(|_| ConfigError {
            var: "TOKEND_BIND",
            message: format!("expected HOST:PORT such as 127.0.0.1:8080, got {:?}", a.bind),
        })?;
        let issuer = a.issuer.trim().trim_end_matches('/').to_string();
        if !(issuer.starts_with("http://") || issuer.starts_with("https://")) || issuer.len() < 10 {
            return Err(ConfigError {
                var: "TOKEND_ISSUER",
                message: format!("expected an http(s) URL, got {:?}", a.issuer),
            });
        }
        let signing_alg = Alg::parse(a.signing_alg.trim()).ok_or_else(|| ConfigError {
            var: "TOKEND_SIGNING_ALG",
            message: format!("expected ES256, EdDSA or RS256, got {:?}", a.signing_alg),
        })?;
        let db = a.database_url.trim();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(ConfigError {
                var: "DATABASE_URL",
                message: format!(
                    "expected sqlite://PATH or postgres://…, got a URL starting {:?}",
                    db.split(':').next().unwrap_or("")
                ),
            });
        }
        let audiences = list(&a.audiences);
        let api_audience = match a.api_audience.as_deref().map(str::trim) {
            None | Some("") => format!("{issuer}/api"),
            Some(v) => v.trim_end_matches('/').to_string(),
        };
        if audiences.contains(&api_audience) {
            return Err(ConfigError {
                var: "TOKEND_API_AUDIENCE",
                message: format!(
                    "{api_audience:?} is also in TOKEND_AUDIENCES; the management audience must be separate"
                ),
            });
        }
        let service_only_audiences = list(&a.service_only_audiences);
        if let Some(bad) = service_only_audiences.iter().find(|s| !audiences.contains(s)) {
            return Err(ConfigError {
                var: "TOKEND_SERVICE_ONLY_AUDIENCES",
                message: format!("{bad:?} is not one of TOKEND_AUDIENCES"),
            });
        }
        if !a.bootstrap_email.contains('@') {
            return Err(ConfigError { var: "TOKEND_BOOTSTRAP_EMAIL", message: "expected an email address".into() });
        }
        if let Some(p) = &a.bootstrap_password {
            if p.chars().count() < 8 {
                return Err(ConfigError {
                    var: "TOKEND_BOOTSTRAP_PASSWORD",
                    message: "must be at least 8 characters".into(),
                });
            }
        }
        let workers = int_in("TOKEND_WORKERS", &a.workers, 0, 1024, "a thread count")? as usize;
        let smtp_url = match a.smtp_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => {
                // The message never repeats the URL: it may carry a password.
                lettre::SmtpTransport::from_url(u).map_err(|_| ConfigError {
                    var: "TOKEND_SMTP_URL",
                    message: "expected smtp://HOST[:PORT] or smtps://[USER:PASSWORD@]HOST[:PORT]".into(),
                })?;
                if smtp_credentials_in_clear(u) {
                    return Err(ConfigError {
                        var: "TOKEND_SMTP_URL",
                        message: "credentials over plain smtp:// would be sent without TLS: use smtps://, add \
                                  ?tls=required, or a loopback host"
                            .into(),
                    });
                }
                Some(SmtpUrl(u.to_string()))
            }
        };
        if a.smtp_from.trim().parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError {
                var: "TOKEND_SMTP_FROM",
                message: format!("expected an address such as tokend@example.com, got {:?}", a.smtp_from),
            });
        }
        let gateway_tenant_header = actix_web::http::header::HeaderName::from_bytes(
            a.gateway_tenant_header.trim().as_bytes(),
        )
        .map_err(|_| ConfigError {
            var: "TOKEND_GATEWAY_TENANT_HEADER",
            message: format!("expected an HTTP header name, got {:?}", a.gateway_tenant_header),
        })?;
        Ok(Config {
            gateway_tenant_header,
            gateway_cache_seconds: int_in("TOKEND_GATEWAY_CACHE_SECONDS", &a.gateway_cache_seconds, 0, 300, "seconds")?,
            credential_cache: int_in("TOKEND_CREDENTIAL_CACHE", a.credential_cache.trim(), 0, 1_000_000, "entries")?
                as usize,
            database_url: db.to_string(),
            bind,
            issuer,
            keys_dir: a.keys_dir.clone(),
            signing_alg,
            access_token_ttl: int_in(
                "TOKEND_ACCESS_TOKEN_TTL",
                &a.access_token_ttl,
                60,
                MAX_ACCESS_TOKEN_TTL,
                "seconds",
            )?,
            key_publish_delay: int_in("TOKEND_KEY_PUBLISH_DELAY", &a.key_publish_delay, 0, 30 * 86_400, "seconds")?,
            keys_reload_seconds: int_in("TOKEND_KEYS_RELOAD_SECONDS", &a.keys_reload_seconds, 1, 86_400, "seconds")?
                as u64,
            audiences,
            api_audience,
            service_only_audiences,
            bootstrap_email: a.bootstrap_email.trim().to_lowercase(),
            bootstrap_password: a.bootstrap_password.clone(),
            workers: if workers == 0 {
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
            } else {
                workers
            },
            token_failures_per_minute: int_in(
                "TOKEND_TOKEN_FAILURES_PER_MINUTE",
                &a.token_failures_per_minute,
                0,
                1_000_000,
                "a count",
            )? as usize,
            refusals_per_second: int_in("TOKEND_REFUSALS_PER_SECOND", &a.refusals_per_second, 0, 1_000_000, "a count")?
                as u64,
            trusted_proxies: a
                .trusted_proxies
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().map_err(|_| ConfigError {
                        var: "TOKEND_TRUSTED_PROXIES",
                        message: format!("expected comma-separated IP addresses, got {s:?}"),
                    })
                })
                .collect::<Result<_, _>>()?,
            bench_sign_route: a.bench_sign_route,
            smtp_url,
            smtp_from: a.smtp_from.trim().to_string(),
            leak_reporter_keys: a
                .leak_reporter_keys
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            webhook_allow_private: a.webhook_allow_private,
            outbox_interval_seconds: int_in(
                "TOKEND_OUTBOX_INTERVAL_SECONDS",
                &a.outbox_interval_seconds,
                0,
                3600,
                "seconds",
            )? as u64,
            request_timeout_seconds: int_in(
                "TOKEND_REQUEST_TIMEOUT_SECONDS",
                &a.request_timeout_seconds,
                1,
                3600,
                "seconds",
            )? as u64,
            metrics_token: match a.metrics_token.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(t) if t.len() < 16 => {
                    return Err(ConfigError {
                        var: "TOKEND_METRICS_TOKEN",
                        message: "must be at least 16 characters".into(),
                    })
                }
                Some(t) => Some(MetricsToken::new(t)),
            },
        })
    }

    /// Defaults with the given database and key directory (tests and tools).
    pub fn for_test(database_url: &str, keys_dir: &std::path::Path) -> Config {
        Config {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".parse().expect("static address"),
            issuer: "http://127.0.0.1:8080".into(),
            keys_dir: keys_dir.to_path_buf(),
            signing_alg: Alg::ES256,
            access_token_ttl: 1800,
            key_publish_delay: 600,
            keys_reload_seconds: 30,
            audiences: vec!["http://127.0.0.1:8080".into()],
            api_audience: "http://127.0.0.1:8080/api".into(),
            service_only_audiences: vec![],
            bootstrap_email: "admin@localhost".into(),
            bootstrap_password: None,
            workers: 2,
            token_failures_per_minute: 120,
            refusals_per_second: 1000,
            trusted_proxies: vec![],
            bench_sign_route: false,
            smtp_url: None,
            smtp_from: "tokend <tokend@localhost>".into(),
            leak_reporter_keys: None,
            webhook_allow_private: false,
            outbox_interval_seconds: 5,
            gateway_tenant_header: actix_web::http::header::HeaderName::from_static("x-scope-orgid"),
            gateway_cache_seconds: 10,
            credential_cache: 10_000,
            metrics_token: None,
            request_timeout_seconds: 10,
        }
    }
}

/// Whether an SMTP URL carries credentials that could cross the network in clear: plain
/// `smtp://` with a user or password, without `tls=required`, to a host that is not loopback.
fn smtp_credentials_in_clear(u: &str) -> bool {
    let Ok(url) = url::Url::parse(u) else { return false };
    let creds = !url.username().is_empty() || url.password().is_some();
    let tls_required = url.query_pairs().any(|(k, v)| k == "tls" && v == "required");
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        // smtp: is not a special scheme: its IPv4 hosts parse as opaque names.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_matches(|c| c == '[' || c == ']').parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    };
    url.scheme() == "smtp" && creds && !tls_required && !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_credentials_never_travel_in_clear() {
        assert!(smtp_credentials_in_clear("smtp://u:p@mail.example:587"));
        assert!(smtp_credentials_in_clear("smtp://u@mail.example?tls=opportunistic"));
        assert!(!smtp_credentials_in_clear("smtp://u:p@mail.example:587?tls=required"));
        assert!(!smtp_credentials_in_clear("smtps://u:p@mail.example"));
        assert!(!smtp_credentials_in_clear("smtp://mail.example:25"));
        assert!(!smtp_credentials_in_clear("smtp://u:p@127.0.0.1:2525"));
        assert!(!smtp_credentials_in_clear("smtp://u:p@[::1]:2525"));
        assert!(!smtp_credentials_in_clear("smtp://u:p@localhost:2525"));
    }

    /// `TOKEND_CREDENTIAL_CACHE`: 10 000 by default, 0 turns the cache off, a count out of
    /// range or not a number is refused with the variable's name.
    #[test]
    fn credential_cache_entries() {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            config: ConfigArgs,
        }
        let parse = |v: Option<&str>| {
            let mut argv = vec!["tokend".to_string()];
            if let Some(v) = v {
                argv.push(format!("--credential-cache={v}"));
            }
            Config::from_args(&Args::parse_from(argv).config)
        };
        assert_eq!(parse(None).unwrap().credential_cache, 10_000);
        assert_eq!(parse(Some("0")).unwrap().credential_cache, 0);
        assert_eq!(parse(Some("500")).unwrap().credential_cache, 500);
        for bad in ["-1", "1000001", "many"] {
            let e = parse(Some(bad)).expect_err("refused");
            assert_eq!(e.var, "TOKEND_CREDENTIAL_CACHE", "{bad}");
        }
    }

    #[test]
    fn smtp_url_debug_hides_credentials() {
        let u = SmtpUrl("smtps://mailer:s3cret@smtp.example:465".into());
        assert_eq!(format!("{u:?}"), "smtps://smtp.example:465");
        assert_eq!(format!("{:?}", SmtpUrl("smtp://127.0.0.1:2525".into())), "smtp://127.0.0.1:2525");
    }
}
