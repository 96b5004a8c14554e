//! API tokens as client credentials (issue #24): tools that speak only `client_credentials`
//! (Prometheus, the OpenTelemetry collector, anything on Go's x/oauth2) use a personal or
//! service-account token as the client secret, with the token's id (or `api-token`) as the
//! client id. The answer is exactly the refresh_token grant's; every refusal is
//! invalid_client. The last test runs a real Prometheus against a resource server.
use crate::common::helpers::refresh;
use crate::common::{self, Backend, Resp, Server};
use serde_json::{json, Value};

const METRICS: &str = "metrics:read";

fn cc(s: &Server, id: &str, secret: &str, extra: &[(&str, &str)], basic: bool) -> Resp {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    if basic {
        s.form("/oauth/token", &pairs, Some((id, secret)))
    } else {
        pairs.extend_from_slice(&[("client_id", id), ("client_secret", secret)]);
        s.form("/oauth/token", &pairs, None)
    }
}

/// A person holding org:member and metrics:read, with a personal token carrying both;
/// answers (person id, their login, token id, token secret).
fn person_with_token(s: &Server, owner: &str) -> (String, String, String, String) {
    s.role(owner, METRICS);
    let (uid, login) = s.user(owner, "ada@example.test", &["org:member", METRICS]);
    let (tid, secret) = s.pat(&login, json!({"name": "prometheus", "ttl_days": 7, "roles": ["org:member", METRICS]}));
    (uid, login, tid, secret)
}

/// The claims an access token carries, less those unique to each token.
fn comparable(s: &Server, r: &Resp, aud: &str) -> Value {
    let mut c = s.verify(r.body["access_token"].as_str().expect("access_token"), aud);
    for k in ["jti", "iat", "nbf", "exp"] {
        c.as_object_mut().unwrap().remove(k);
    }
    c
}

#[track_caller]
fn invalid_client(r: &Resp, basic: bool, what: &str) {
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("invalid_client")), "{what}: {}", r.text);
    assert_eq!(r.body["error_description"], "client authentication failed", "{what}: nothing more is said");
    let challenge = r.header("www-authenticate");
    assert_eq!(challenge.is_some(), basic, "{what}: a Basic challenge exactly when Basic was used: {challenge:?}");
}

/// Both client authentication methods, both client ids: the same answer as the
/// refresh_token grant with that token (claims, roles, expiry header, scope narrowing),
/// and the same refusal where the refresh_token grant refuses.
fn personal_token_as_client_secret_answers_like_refresh_token(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, _, tid, secret) = person_with_token(&s, &owner);
    let aud = s.resource_audience();
    let base = refresh(&s, &secret, &[]);
    assert_eq!(base.status, 200, "{}", base.text);
    let expected = comparable(&s, &base, &aud);
    assert_eq!(expected["client_id"], tid.as_str());
    for (id, basic) in [(tid.as_str(), true), (tid.as_str(), false), ("api-token", true), ("api-token", false)] {
        let what = format!("client_id {id}, basic {basic}");
        let r = cc(&s, id, &secret, &[], basic);
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_eq!(comparable(&s, &r, &aud), expected, "{what}: claims");
        assert_eq!(r.body["expires_in"], base.body["expires_in"], "{what}");
        assert_eq!(r.body["scope"], base.body["scope"], "{what}");
        assert_eq!(r.body["token_type"], "Bearer");
        assert!(r.body.get("issued_token_type").is_none(), "{what}: not a token exchange");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let expires = r.header("tokend-api-token-expires");
        assert!(expires.is_some(), "{what}: the API token's expiry header");
        assert_eq!(expires, base.header("tokend-api-token-expires"), "{what}");
    }
    // The same narrowing and the same refusals as the refresh_token grant.
    let cases: [&[(&str, &str)]; 4] =
        [&[("scope", METRICS)], &[("scope", "org:admin")], &[("audience", "https://elsewhere.test")], &[]];
    for extra in cases {
        let (a, b2) = (refresh(&s, &secret, extra), cc(&s, &tid, &secret, extra, true));
        assert_eq!(
            (a.status, &a.body["error"]),
            (b2.status, &b2.body["error"]),
            "{extra:?}: {} vs {}",
            a.text,
            b2.text
        );
        if a.status == 200 {
            assert_eq!(comparable(&s, &a, &aud), comparable(&s, &b2, &aud), "{extra:?}");
        }
    }
    let narrowed = cc(&s, &tid, &secret, &[("scope", METRICS)], false);
    assert_eq!(s.verify_resource(narrowed.body["access_token"].as_str().unwrap())["roles"], json!([METRICS]));
    // Demoting the owner narrows both grants at the next request.
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"roles": ["org:member"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = cc(&s, &tid, &secret, &[], true);
    assert_eq!(s.verify_resource(r.body["access_token"].as_str().unwrap())["roles"], json!(["org:member"]));
}

/// A service-account token works the same way; the access token is the account's.
fn service_account_token_as_client_secret(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, METRICS);
    let r = s.post("/api/v1/service-accounts", &owner, json!({"name": "collector", "roles": [METRICS]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let sa = r.body["id"].as_str().unwrap().to_string();
    let r = s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner, json!({"name": "otel", "ttl_days": 30}));
    assert_eq!(r.status, 201, "{}", r.text);
    let (tid, secret) = (r.body["id"].as_str().unwrap().to_string(), r.body["token"].as_str().unwrap().to_string());
    assert_eq!(r.body["client_id"], tid.as_str(), "creation names the client id to use");
    let listed = s.get(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner);
    assert_eq!(listed.body["items"][0]["client_id"], tid.as_str(), "lists name it too");
    let r = cc(&s, &tid, &secret, &[], true);
    assert_eq!(r.status, 200, "{}", r.text);
    let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["acct"].as_str(), c["sub"].as_str(), c["client_id"].as_str()),
        (Some("service_account"), Some(sa.as_str()), Some(tid.as_str()))
    );
    assert_eq!(c["roles"], json!([METRICS]));
}

/// The id of another token, an unknown id, a revoked, expired or disabled owner's token:
/// invalid_client (Basic challenge when Basic was used), the same words as a wrong app
/// secret, nothing changed, and a refusal of a known token audited by id.
fn api_token_client_refusals_are_invalid_client(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (uid, login, tid, secret) = person_with_token(&s, &owner);
    let (other_id, _) = s.pat(&login, json!({"name": "other", "ttl_days": 7, "roles": ["org:member"]}));
    let before = s.data_snapshot();
    for basic in [true, false] {
        invalid_client(&cc(&s, &other_id, &secret, &[], basic), basic, "another token's id");
        invalid_client(&cc(&s, "0193a000-0000-7000-8000-000000000000", &secret, &[], basic), basic, "unknown id");
        invalid_client(&cc(&s, &tid, &format!("{secret}x"), &[], basic), basic, "altered secret");
        invalid_client(&cc(&s, "no-such-app", "not-a-secret", &[], basic), basic, "wrong app credentials");
    }
    let snapshot_without_audit = |snap: common::Snapshot| -> common::Snapshot {
        snap.into_iter().filter(|(t, _)| t != common::AUDIT_COUNT).collect()
    };
    assert_eq!(snapshot_without_audit(s.data_snapshot()), snapshot_without_audit(before), "refusals change nothing");
    let audit = s.get(&format!("/api/v1/audit?object={tid}&action=token.exchange"), &owner);
    assert_eq!(audit.status, 200, "{}", audit.text);
    let reasons: Vec<&Value> = audit.body["items"].as_array().unwrap().iter().map(|e| &e["detail"]["reason"]).collect();
    assert!(reasons.iter().any(|r| *r == "client_id mismatch"), "the mismatch is audited by token id: {reasons:?}");
    assert!(!audit.text.contains(&secret), "no secret in the audit log");

    // Disabled owner, then revoked, then expired.
    assert_eq!(cc(&s, &tid, &secret, &[], true).status, 200);
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    invalid_client(&cc(&s, &tid, &secret, &[], true), true, "disabled owner");
    assert_eq!(refresh(&s, &secret, &[]).body["error"], "invalid_grant", "the refresh_token grant refuses too");
    let (_, owner_secret) = s.pat(&owner, json!({"name": "mine", "ttl_days": 1, "roles": ["org:member"]}));
    let owner_tid = s.get("/api/v1/me/tokens?sort=created_at&order=desc", &owner).body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cc(&s, "api-token", &owner_secret, &[], false).status, 200);
    s.clock.advance(2 * 86_400);
    invalid_client(&cc(&s, &owner_tid, &owner_secret, &[], false), false, "expired");
    s.clock.advance(-2 * 86_400);
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{owner_tid}"), &owner).status, 204);
    invalid_client(&cc(&s, "api-token", &owner_secret, &[], true), true, "revoked");
}

/// Failures of an API token as client secret count like any failed credential: past the
/// per-identity limit they answer 429, while the right id with that token still succeeds.
fn api_token_client_failures_are_throttled(b: &Backend) {
    let s = b.start_with(|c| c.token_failures_per_minute = 120);
    let owner = s.owner_login();
    let (_, _, tid, secret) = person_with_token(&s, &owner);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(cc(&s, "0193a000-0000-7000-8000-000000000000", &secret, &[], true).status);
    }
    assert!(statuses[..10].iter().all(|st| *st == 401), "{statuses:?}");
    assert_eq!(statuses[11], 429, "past the per-identity limit: {statuses:?}");
    let r = cc(&s, &tid, &secret, &[], true);
    assert_eq!(r.status, 200, "valid credentials are always served: {}", r.text);
}

backend_tests!(
    personal_token_as_client_secret_answers_like_refresh_token,
    service_account_token_as_client_secret,
    api_token_client_refusals_are_invalid_client,
    api_token_client_failures_are_throttled,
);

/// A real Prometheus (Debian's package, unmodified) scrapes three targets of a resource
/// server that accepts only tokend access tokens, each job with its own `oauth2:` block:
/// a personal token, a service-account token and an app. All three are `up`; revoking the
/// personal token turns its target `down` at the next token refresh (the access-token TTL
/// is 5 s here, under x/oauth2's 10-s refresh margin, so Prometheus asks for a new access
/// token before every scrape).
mod prometheus {
    use super::*;
    use crate::common::helpers::free_port;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A resource server: `GET /<job>` answers a metric when the bearer is a tokend access
    /// token for `aud` (verified with the JWKS fetched over HTTP), 401 otherwise.
    fn resource_server(s: &Server, aud: String, stop: Arc<AtomicBool>) -> u16 {
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&ureq::get(&s.url("/.well-known/jwks.json")).call().unwrap().into_string().unwrap())
                .unwrap();
        let issuer = s.issuer();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut bearer = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            bearer = v.trim().strip_prefix("Bearer ").map(str::to_string);
                        }
                    }
                }
                let ok = bearer.is_some_and(|t| verifies(&jwks, &t, &issuer, &aud));
                let (status, body) =
                    if ok { ("200 OK", "# TYPE probe gauge\nprobe 1\n") } else { ("401 Unauthorized", "") };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    fn verifies(jwks: &jsonwebtoken::jwk::JwkSet, token: &str, issuer: &str, aud: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else { return false };
        let Some(jwk) = header.kid.as_deref().and_then(|k| jwks.find(k)) else { return false };
        let Ok(key) = jsonwebtoken::DecodingKey::from_jwk(jwk) else { return false };
        let alg = match jwk.common.key_algorithm {
            Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
            Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
            _ => jsonwebtoken::Algorithm::ES256,
        };
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&[aud]);
        v.set_issuer(&[issuer]);
        v.leeway = 0;
        header.typ.as_deref() == Some("at+jwt") && jsonwebtoken::decode::<Value>(token, &key, &v).is_ok()
    }

    /// `job → health` from Prometheus' own API.
    fn health(prom: u16) -> Vec<(String, String)> {
        let Ok(r) = ureq::get(&format!("http://127.0.0.1:{prom}/api/v1/targets")).call() else { return vec![] };
        let v: Value = serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or(Value::Null);
        let mut out: Vec<(String, String)> = v["data"]["activeTargets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["labels"]["job"].as_str().unwrap_or("").to_string(),
                            t["health"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn wait_for(prom: u16, want: &[(&str, &str)], what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let h = health(prom);
            let now: Vec<(&str, &str)> = h.iter().map(|(j, s)| (j.as_str(), s.as_str())).collect();
            if now == want {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: Prometheus reports {now:?}, expected {want:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn real_prometheus_scrapes_with_api_tokens_and_an_app(b: &Backend) {
        let s = b.start_with(|c| c.access_token_ttl = 5);
        // The resource server checks `exp` against the wall clock: the server's clock follows it.
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (clock, stop) = (s.clock.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    clock.set(common::now());
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let owner = s.owner_login();
        let (_, _, pat_id, pat) = person_with_token(&s, &owner);
        let r = s.post("/api/v1/service-accounts", &owner, json!({"name": "collector", "roles": [METRICS]}));
        let sa = r.body["id"].as_str().unwrap().to_string();
        let r =
            s.post(&format!("/api/v1/service-accounts/{sa}/tokens"), &owner, json!({"name": "prom", "ttl_days": 30}));
        assert_eq!(r.status, 201, "{}", r.text);
        let (sat_id, sat) = (r.body["id"].as_str().unwrap().to_string(), r.body["token"].as_str().unwrap().to_string());
        let (_, app_id, app_secret) = s.app(&owner, json!({"name": "prom-app", "roles": [METRICS]}));

        let aud = s.resource_audience();
        let upstream = resource_server(&s, aud.clone(), stop.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = String::new();
        for (job, id, secret) in [("app", &app_id, &app_secret), ("pat", &pat_id, &pat), ("sat", &sat_id, &sat)] {
            let file = dir.path().join(format!("{job}.secret"));
            std::fs::write(&file, secret).unwrap();
            jobs.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /{job}\n    oauth2:\n      client_id: \"{id}\"\n      \
                 client_secret_file: {}\n      token_url: {}/oauth/token\n      endpoint_params:\n        \
                 resource: \"{aud}\"\n    static_configs:\n      - targets: [\"127.0.0.1:{upstream}\"]\n",
                file.display(),
                s.base
            ));
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}"),
        )
        .unwrap();
        let prom = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(std::env::var("TOKEND_PROMETHEUS").unwrap_or_else(|_| "prometheus".into()))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian package `prometheus`; .ci/run installs it)");
        let _guard = Killed(child);
        let all_up = [("app", "up"), ("pat", "up"), ("sat", "up")];
        wait_for(prom, &all_up, "every credential scrapes");
        // The person revokes the token the tool holds: its target goes down at the next refresh.
        let login = s.login("ada@example.test", "user-password-123");
        assert_eq!(s.delete(&format!("/api/v1/me/tokens/{pat_id}"), &login).status, 204);
        wait_for(prom, &[("app", "up"), ("pat", "down"), ("sat", "up")], "the revoked token's target is down");
        stop.store(true, Ordering::Relaxed);
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        for secret in [&pat, &sat, &app_secret] {
            assert!(!log.contains(secret.as_str()), "no secret in Prometheus' log");
        }
    }

    mod sqlite {
        #[test]
        #[cfg_attr(
            tokend_skip_prometheus,
            ignore = "SKIPPED: prometheus is not installed (apt-get install prometheus)"
        )]
        fn real_prometheus_scrapes_with_api_tokens_and_an_app() {
            super::real_prometheus_scrapes_with_api_tokens_and_an_app(&crate::common::Backend::Sqlite)
        }
    }
    mod postgres {
        #[test]
        #[cfg_attr(tokend_skip_pg, ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
        #[cfg_attr(
            tokend_skip_prometheus,
            ignore = "SKIPPED: prometheus is not installed (apt-get install prometheus)"
        )]
        fn real_prometheus_scrapes_with_api_tokens_and_an_app() {
            super::real_prometheus_scrapes_with_api_tokens_and_an_app(&crate::common::Backend::postgres())
        }
    }
}
