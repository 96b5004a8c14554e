//! `POST /bench/sign` (cargo feature `bench` only): the benchmark ceiling.
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::client_ip;
use super::middleware;
use crate::app::State;
use crate::error::OAuthError;
use crate::service::oauth::exchange::{self, AnyTokenRequest, TokenRequest, TokenResponse};
use crate::service::Acct;

/// Under the same scope settings and middleware as `/oauth` (body limit, error shaping),
/// beside the app-wide chain every route has.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/bench")
            .app_data(web::PayloadConfig::new(64 * 1024))
            .wrap(from_fn(middleware::oauth_errors))
            .service(web::resource("/sign").route(web::post().to(bench_sign))),
    );
}

/// The roles the ceiling grants: what the load tool's app holds.
const ROLES: &str = "org:member";

/// The benchmark ceiling: the same request as client_credentials (form, Basic header,
/// scope, audience, issuance metric, response writer) with only the credential check
/// skipped: no database read, no secret hash, roles fixed. `grant / ceiling` is then what
/// the token path costs beyond parsing and signing. Compiled only with `--features
/// bench`, and even then answers 404 unless TOKEND_BENCH_SIGN_ROUTE is set.
async fn bench_sign(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> Result<HttpResponse, OAuthError> {
    if !state.cfg.bench_sign_route {
        return Ok(HttpResponse::NotFound().finish());
    }
    let ip = client_ip(&req);
    let (label, parsed) = super::oauth::read_token_request(&req, &body)?;
    let result = match parsed {
        Ok((AnyTokenRequest::Api(TokenRequest::ClientCredentials { client, scope, target }), _)) => {
            sign_as(&state.ctx(&ip), &client.client_id, scope.as_deref(), &target).map_err(OAuthError::from)
        }
        Ok(_) => Err(OAuthError::request("the ceiling serves client_credentials only")),
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) => e.error.as_str(),
    };
    state.metrics.count_issued(label, outcome);
    result.map(|r| super::oauth::token_response(&r))
}

/// `exchange::client_credentials` after its credential check.
fn sign_as(
    ctx: &exchange::Ctx<'_>,
    client_id: &str,
    scope: Option<&str>,
    target: &exchange::Target,
) -> Result<TokenResponse, exchange::GrantError> {
    let aud = exchange::resolve_audience(ctx.cfg, target.resource.as_deref(), target.audience.as_deref())?;
    let roles = exchange::narrow(vec![ROLES.to_string()], scope)?;
    let subject = exchange::Subject { sub: client_id, org: "bench", acct: Acct::App, client_id, epoch: 0 };
    let c = exchange::claims(ctx, &subject, aud, ctx.cfg.access_token_ttl, roles);
    let access_token = exchange::sign_claims(ctx, &c)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: c.exp - c.iat,
        scope: c.scope,
        issued_token_type: None,
        api_token_expires_at: None,
    })
}
