//! `POST /bench/sign` (cargo feature `bench` only): the benchmark ceiling.
use actix_web::{web, HttpResponse};

use crate::app::State;
use crate::service::oauth::exchange::{self, TokenResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/bench/sign").route(web::post().to(bench_sign)));
}

/// The benchmark ceiling: HTTP + signing a fixed set of claims, no database, no parsing.
/// Compiled only with `--features bench`, and even then answers 404 unless
/// TOKEND_BENCH_SIGN_ROUTE is set.
async fn bench_sign(state: web::Data<State>) -> HttpResponse {
    if !state.cfg.bench_sign_route {
        return HttpResponse::NotFound().finish();
    }
    let ctx = state.ctx("");
    let roles = vec!["org:member".to_string()];
    let subject =
        exchange::Subject { sub: "bench", org: "bench", acct: crate::service::Acct::App, client_id: "bench", epoch: 0 };
    let c = exchange::claims(&ctx, &subject, state.cfg.issuer.clone(), 1800, roles);
    match exchange::sign_claims(&ctx, &c) {
        // The same response writer as the token endpoint, so the ceiling is comparable.
        Ok(t) => super::oauth::token_response(&TokenResponse {
            access_token: t,
            token_type: "Bearer",
            expires_in: 1800,
            scope: c.scope,
            issued_token_type: None,
            api_token_expires_at: None,
        }),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}
