//! External issuers' signing keys: found through the issuer's OIDC discovery document,
//! fetched over https (http only for loopback addresses), cached as long as the JWKS
//! answer's `Cache-Control: max-age` says (clamped), refreshed on an unknown `kid`, and
//! never fetched more often than once per `MIN_REFETCH_SECONDS` per issuer, whatever
//! callers present: an attacker sending tokens with made-up `kid`s cannot make tokend
//! fetch on every request. Fetches are bounded (timeouts, no redirects, a body cap) and run
//! on the caller's thread, which the HTTP edge keeps off the actix workers (the blocking
//! pool).
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

/// At most one fetch per issuer in this many seconds (unknown kid, expiry, failure alike).
pub const MIN_REFETCH_SECONDS: i64 = 30;
/// Cache lifetime without a usable `max-age`.
pub const DEFAULT_TTL_SECONDS: i64 = 300;
/// The longest `max-age` honoured.
pub const MAX_TTL_SECONDS: i64 = 86_400;
/// While the issuer cannot be reached, keys it published stay usable this long past
/// their freshness (a key it withdrew is dropped at the first successful fetch).
pub const STALE_GRACE_SECONDS: i64 = 3600;
/// Per request (connect, read, write each; and the whole exchange).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or JWKS read.
pub const BODY_CAP: u64 = 256 * 1024;
/// The most keys kept of one JWKS.
pub const MAX_KEYS: usize = 50;

/// A fetched key set and how long it is fresh, in seconds.
pub struct Fetched {
    pub keys: Vec<Jwk>,
    pub ttl: i64,
}

/// Where keys come from (the network in production; tests of the cache may count).
pub trait Fetch: Send + Sync {
    fn fetch(&self, issuer: &str) -> Result<Fetched, String>;
}

/// Fetches over HTTP with ureq.
pub struct Http;

impl Fetch for Http {
    fn fetch(&self, issuer: &str) -> Result<Fetched, String> {
        fetch_http(issuer)
    }
}

#[derive(Clone)]
struct Entry {
    keys: Arc<Vec<Jwk>>,
    fresh_until: i64,
    /// The last fetch attempt (successful or not).
    attempted_at: i64,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Key(Box<Jwk>),
    /// The issuer publishes no key with that kid (after a refresh, or a refresh was not
    /// allowed yet).
    UnknownKid,
    /// No keys could be fetched and none are cached.
    Unavailable(String),
}

/// The process-wide cache of external issuers' keys.
#[derive(Default)]
pub struct IssuerKeys {
    map: Mutex<HashMap<String, Entry>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl IssuerKeys {
    /// Fetches made so far (for metrics and tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key `kid` of `issuer` at `now`: from the cache when fresh and known, else after
    /// one fetch when the per-issuer interval allows it.
    pub fn key(&self, issuer: &str, kid: &str, now: i64, source: &dyn Fetch) -> Lookup {
        let find = |keys: &[Jwk]| keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).cloned();
        let cached = {
            let mut map = self.map.lock();
            let entry = map.entry(issuer.to_string()).or_insert_with(|| Entry {
                keys: Arc::new(Vec::new()),
                fresh_until: i64::MIN,
                attempted_at: i64::MIN,
            });
            if now < entry.fresh_until {
                if let Some(k) = find(&entry.keys) {
                    return Lookup::Key(Box::new(k));
                }
            }
            let may_fetch = now.saturating_sub(entry.attempted_at) >= MIN_REFETCH_SECONDS;
            if may_fetch {
                entry.attempted_at = now;
            }
            (entry.clone(), may_fetch)
        };
        let (entry, may_fetch) = cached;
        let stale = || {
            if now < entry.fresh_until.saturating_add(STALE_GRACE_SECONDS) {
                find(&entry.keys)
            } else {
                None
            }
        };
        if !may_fetch {
            return match stale() {
                Some(k) => Lookup::Key(Box::new(k)),
                None if entry.fresh_until == i64::MIN => {
                    Lookup::Unavailable("the issuer's keys were not fetched yet; retry shortly".into())
                }
                None => Lookup::UnknownKid,
            };
        }
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match source.fetch(issuer) {
            Ok(f) => {
                let ttl = f.ttl.clamp(MIN_REFETCH_SECONDS, MAX_TTL_SECONDS);
                let keys = Arc::new(f.keys);
                let found = find(&keys);
                let mut map = self.map.lock();
                map.insert(issuer.to_string(), Entry { keys, fresh_until: now + ttl, attempted_at: now });
                match found {
                    Some(k) => Lookup::Key(Box::new(k)),
                    None => Lookup::UnknownKid,
                }
            }
            Err(e) => {
                log::warn!("fetching the keys of external issuer {issuer} failed: {e}");
                match stale() {
                    Some(k) => Lookup::Key(Box::new(k)),
                    None if entry.keys.is_empty() => Lookup::Unavailable(e),
                    None => Lookup::UnknownKid,
                }
            }
        }
    }
}

/// Whether an http URL names a loopback address (an IP literal: a name could resolve
/// anywhere).
pub fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        _ => false,
    }
}

/// A URL tokend may fetch: https, or http to a loopback address.
fn fetchable(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL".to_string())?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback(&url) => Ok(url),
        _ => Err(format!("refusing to fetch {}: https only (http only for loopback addresses)", url.scheme())),
    }
}

/// `max-age` of a Cache-Control value (`no-store`/`no-cache` count as 0).
pub fn max_age(cache_control: Option<&str>) -> Option<i64> {
    let v = cache_control?;
    let mut age = None;
    for d in v.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<i64>().ok();
        }
    }
    age
}

fn get(agent: &ureq::Agent, url: &url::Url) -> Result<(Vec<u8>, Option<String>), String> {
    let resp = agent.request_url("GET", url).set("accept", "application/json").call().map_err(|e| match e {
        ureq::Error::Status(code, _) => format!("answered HTTP {code}"),
        ureq::Error::Transport(t) => format!("{:?}: {}", t.kind(), t.message().unwrap_or("")),
    })?;
    if resp.status() != 200 {
        return Err(format!("answered HTTP {}", resp.status()));
    }
    let cc = resp.header("cache-control").map(str::to_string);
    let mut body = Vec::new();
    resp.into_reader().take(BODY_CAP + 1).read_to_end(&mut body).map_err(|e| format!("reading the body: {e}"))?;
    if body.len() as u64 > BODY_CAP {
        return Err(format!("the answer is larger than {BODY_CAP} bytes"));
    }
    Ok((body, cc))
}

/// The discovery document, then the JWKS it names; the keys tokend can use (RSA, P-256 and
/// Ed25519 signing keys; others are skipped).
pub fn fetch_http(issuer: &str) -> Result<Fetched, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(TIMEOUT)
        .timeout_read(TIMEOUT)
        .timeout_write(TIMEOUT)
        .timeout(TIMEOUT * 2)
        .redirects(0)
        .user_agent(concat!("tokend-federation/", env!("CARGO_PKG_VERSION")))
        .build();
    let discovery = fetchable(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))?;
    let (body, _) = get(&agent, &discovery).map_err(|e| format!("discovery document: {e}"))?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| "the discovery document is not JSON".to_string())?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("the discovery document has no jwks_uri")?;
    let jwks_url = fetchable(jwks_uri)?;
    let (body, cc) = get(&agent, &jwks_url).map_err(|e| format!("JWKS: {e}"))?;
    let set: Value = serde_json::from_slice(&body).map_err(|_| "the JWKS is not JSON".to_string())?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?
        .iter()
        .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| k.common.key_id.is_some())
        .take(MAX_KEYS)
        .collect();
    Ok(Fetched { keys, ttl: max_age(cc.as_deref()).unwrap_or(DEFAULT_TTL_SECONDS) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: AtomicUsize,
        kids: Mutex<Vec<&'static str>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Fetch for Counting {
        fn fetch(&self, _issuer: &str) -> Result<Fetched, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err("down".into());
            }
            let keys = self
                .kids
                .lock()
                .iter()
                .map(|kid| {
                    serde_json::from_value(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": kid}))
                    .unwrap()
                })
                .collect();
            Ok(Fetched { keys, ttl: 600 })
        }
    }

    #[test]
    fn cache_refresh_and_rate_limit() {
        let src = Counting { calls: 0.into(), kids: Mutex::new(vec!["a"]), fail: false.into() };
        let c = IssuerKeys::default();
        let iss = "https://issuer.test";
        assert!(matches!(c.key(iss, "a", 1000, &src), Lookup::Key(_)));
        assert!(matches!(c.key(iss, "a", 1001, &src), Lookup::Key(_)));
        assert_eq!(src.calls.load(Ordering::SeqCst), 1, "fresh keys are not fetched again");
        // An unknown kid right after a fetch: no new fetch (rate limit), refused.
        for t in 1002..1010 {
            assert!(matches!(c.key(iss, "zzz", t, &src), Lookup::UnknownKid));
        }
        assert_eq!(src.calls.load(Ordering::SeqCst), 1);
        // The issuer rotates; after the interval, the new kid is fetched once.
        src.kids.lock().push("b");
        assert!(matches!(c.key(iss, "b", 1000 + MIN_REFETCH_SECONDS, &src), Lookup::Key(_)));
        assert_eq!(src.calls.load(Ordering::SeqCst), 2);
        // Expiry refetches; a failure keeps known keys within the grace.
        src.fail.store(true, Ordering::SeqCst);
        assert!(matches!(c.key(iss, "a", 1000 + 700, &src), Lookup::Key(_)));
        assert_eq!(src.calls.load(Ordering::SeqCst), 3);
        let far = 1000 + 700 + STALE_GRACE_SECONDS + 600;
        assert!(matches!(c.key(iss, "a", far, &src), Lookup::UnknownKid));
        // Never fetched and down: unavailable.
        assert!(matches!(c.key("https://other.test", "a", 5000, &src), Lookup::Unavailable(_)));
    }

    #[test]
    fn cache_control_and_urls() {
        assert_eq!(max_age(Some("public, max-age=600")), Some(600));
        assert_eq!(max_age(Some("no-store")), Some(0));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(None), None);
        assert!(fetchable("https://token.actions.githubusercontent.com/.well-known/jwks").is_ok());
        assert!(fetchable("http://127.0.0.1:8080/x").is_ok());
        assert!(fetchable("http://[::1]:8080/x").is_ok());
        assert!(fetchable("http://localhost:8080/x").is_err());
        assert!(fetchable("http://10.0.0.1/x").is_err());
        assert!(fetchable("file:///etc/passwd").is_err());
    }
}
