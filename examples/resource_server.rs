//! A resource server protected by tokend access tokens, verified offline against the JWKS.
//!
//!   cargo run --example resource_server -- http://127.0.0.1:8080 https://metrics.example
//!   (tokend's issuer, and the audience this API accepts: one of TOKEND_AUDIENCES; a third
//!   argument is the address to listen on, 127.0.0.1:9090 by default)
//!
//!   curl -s 127.0.0.1:9090/metrics/query -H "authorization: Bearer $ACCESS"
//!
//! The JWKS is fetched at start and again when a token names an unknown kid (key rotation),
//! at most once a minute. Verification is `tokend::jwt::verify_with_jwks`: `typ` at+jwt,
//! the algorithm taken from the JWK (never `none`, never HMAC), iss, aud, exp and nbf.
//!
//! Revocations: with `TOKEND_FEED_CLIENT_ID` and `TOKEND_FEED_CLIENT_SECRET` (an app an
//! admin allowed to introspect), it polls `GET /oauth/revocations` every
//! `TOKEND_FEED_POLL_SECONDS` (5) and refuses, from then on, access tokens whose `jti` was
//! revoked, whose API token (`client_id`) was revoked, or whose `ep` is below its
//! subject's revoked epoch: a revocation reaches it within one poll interval instead of
//! at the token's expiry.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tokend::jwt::{verify_with_jwks, AccessClaims, VerifyError};

struct Verifier {
    issuer: String,
    audience: String,
    jwks: RwLock<(Vec<u8>, Instant)>,
    revoked: RwLock<Revoked>,
}

/// What the revocation feed said so far.
#[derive(Default)]
struct Revoked {
    cursor: Option<String>,
    jtis: HashSet<String>,
    client_ids: HashSet<String>,
    /// sub → tokens with `ep` below this are refused.
    epochs: HashMap<String, i64>,
}

impl Revoked {
    fn refuses(&self, c: &AccessClaims) -> bool {
        self.jtis.contains(&c.jti)
            || self.client_ids.contains(&c.client_id)
            || self.epochs.get(&c.sub).is_some_and(|e| c.ep.unwrap_or(0) < *e)
    }

    /// Takes one answer of the feed (a `reset` replaces what was known).
    fn apply(&mut self, feed: &serde_json::Value) {
        if feed["reset"] == true {
            *self = Revoked::default();
        }
        let items = |k: &str| feed[k].as_array().cloned().unwrap_or_default();
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        self.jtis.extend(items("access_tokens").iter().map(|v| text(v, "jti")));
        self.client_ids.extend(items("api_tokens").iter().map(|v| text(v, "client_id")));
        for p in items("principals") {
            let e = self.epochs.entry(text(&p, "sub")).or_default();
            *e = (*e).max(p["epoch"].as_i64().unwrap_or(i64::MAX));
        }
        self.cursor = feed["cursor"].as_str().map(str::to_string);
    }
}

/// Polls the revocation feed until the process ends (one thread).
fn poll_feed(v: Arc<Verifier>, client_id: String, secret: String, every: Duration) {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    loop {
        let cursor = v.revoked.read().unwrap().cursor.clone();
        let mut req = ureq::get(&format!("{}/oauth/revocations", v.issuer))
            .set("Authorization", &format!("Basic {basic}"))
            .timeout(Duration::from_secs(10));
        if let Some(c) = &cursor {
            req = req.query("since", c);
        }
        match req.call().map(|r| r.into_json::<serde_json::Value>()) {
            Ok(Ok(feed)) => {
                let more = feed["more"] == true;
                v.revoked.write().unwrap().apply(&feed);
                if more {
                    continue;
                }
            }
            other => eprintln!("revocation feed: {:?}", other.err()),
        }
        std::thread::sleep(every);
    }
}

impl Verifier {
    fn fetch(issuer: &str) -> Vec<u8> {
        ureq::get(&format!("{issuer}/.well-known/jwks.json"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .map(String::into_bytes)
            .unwrap_or_default()
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let jwks = self.jwks.read().unwrap().0.clone();
        match verify_with_jwks(&jwks, token, &self.issuer, Some(&self.audience)) {
            Err(VerifyError::UnknownKey) if self.jwks.read().unwrap().1.elapsed() > Duration::from_secs(60) => {
                // A new key may have been published since: refresh once, then retry.
                let fresh = Self::fetch(&self.issuer);
                *self.jwks.write().unwrap() = (fresh.clone(), Instant::now());
                verify_with_jwks(&fresh, token, &self.issuer, Some(&self.audience))
            }
            other => other,
        }
        .and_then(|c| if self.revoked.read().unwrap().refuses(&c) { Err(VerifyError::Invalid) } else { Ok(c) })
    }
}

async fn query(req: HttpRequest, v: web::Data<Arc<Verifier>>) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let v = v.get_ref().clone();
    let token = token.to_string();
    let claims = match web::block(move || v.verify(&token)).await {
        Ok(Ok(c)) => c,
        _ => {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
                .finish()
        }
    };
    if !claims.roles.iter().any(|r| r == "metrics:read" || r == "org:owner") {
        return HttpResponse::Forbidden()
            .insert_header(("WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"metrics:read\""))
            .finish();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "org": claims.org, "caller": claims.sub, "acct": claims.acct, "roles": claims.roles,
        "series": [[1_700_000_000, 42.0]],
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let issuer = args.next().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    // One of tokend's TOKEND_AUDIENCES; never the management audience.
    let audience = args.next().unwrap_or_else(|| "https://metrics.example".into());
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:9090".into());
    let jwks = Verifier::fetch(&issuer);
    let v = Arc::new(Verifier {
        issuer,
        audience,
        jwks: RwLock::new((jwks, Instant::now())),
        revoked: RwLock::new(Revoked::default()),
    });
    if let (Ok(id), Ok(secret)) = (std::env::var("TOKEND_FEED_CLIENT_ID"), std::env::var("TOKEND_FEED_CLIENT_SECRET")) {
        let secs = std::env::var("TOKEND_FEED_POLL_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
        let v = v.clone();
        std::thread::spawn(move || poll_feed(v, id, secret, Duration::from_secs(secs)));
    }
    let trusting = v.issuer.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(v.clone())).route("/metrics/query", web::get().to(query))
    })
    .bind(bind)?;
    // The address actually bound (port 0 picks a free one), on stdout's first line.
    let addrs: Vec<String> = server.addrs().iter().map(|a| format!("http://{a}")).collect();
    println!("resource server on {}, trusting {trusting}", addrs.join(", "));
    server.run().await
}
