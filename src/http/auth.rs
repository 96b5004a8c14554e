//! Bearer authentication for `/api/v1`: verify the access token (signature with the key's
//! own algorithm, typ, iss, aud = the management audience, exp/nbf with a small leeway), then check that
//! the user, service account, app, API token or login session behind it is still live.
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use super::State;
use crate::error::ApiError;
use crate::service::{principal, Principal};

pub struct Caller(pub Principal);

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
/// untrusted address in X-Forwarded-For (read right to left, so a client cannot forge it).
pub fn client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else { return "unknown".into() };
    let trusted = req.app_data::<web::Data<State>>().map(|s| s.cfg.trusted_proxies.as_slice()).unwrap_or_default();
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded =
        req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    forwarded
        .rsplit(',')
        .filter_map(|h| h.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
        .to_string()
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Verifies a bearer and resolves it to a live principal.
pub async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let state = req
        .app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no state"))?;
    let token = bearer(req).ok_or_else(|| unauthorized("a bearer access token is required"))?;
    let now = state.now();
    let set = state.keys.set();
    // Only tokens minted for the management audience: a resource server that received a
    // token must not be able to replay it here.
    let claims = crate::jwt::verify(&set, token, &state.cfg.issuer, Some(&state.cfg.api_audience), now)
        .map_err(|e| unauthorized(&format!("invalid access token: {e}")))?;
    let ip = client_ip(req);
    let st = state.clone();
    let found = super::blocking(move || -> Result<_, ApiError> {
        let mut conn = st.db.read().map_err(crate::service::Error::from)?;
        Ok(principal::resolve(&mut conn, &claims, &st.usage, now)?)
    })
    .await?;
    let mut p = found.ok_or_else(|| unauthorized("the access token's subject is no longer active"))?;
    p.ip = Some(ip);
    // For the audit of refused calls (see http::audit_refused).
    actix_web::HttpMessage::extensions_mut(req).insert(p.clone());
    Ok(p)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(Caller) })
    }
}
