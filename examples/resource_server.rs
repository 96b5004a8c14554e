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
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tokend::jwt::{verify_with_jwks, AccessClaims, VerifyError};

struct Verifier {
    issuer: String,
    audience: String,
    jwks: RwLock<(Vec<u8>, Instant)>,
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
    let v = Arc::new(Verifier { issuer, audience, jwks: RwLock::new((jwks, Instant::now())) });
    println!("resource server on http://{bind}, trusting {}", v.issuer);
    HttpServer::new(move || {
        App::new().app_data(web::Data::new(v.clone())).route("/metrics/query", web::get().to(query))
    })
    .bind(bind)?
    .run()
    .await
}
