//! Bearer authentication for `/api/v1`: verify the access token (signature with the key's
//! own algorithm, typ, iss, aud = issuer, exp/nbf with a small leeway), then check that
//! the user, service account, app or API token behind it is still live.
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use super::State;
use crate::error::ApiError;
use crate::service::{principal, Principal};

pub struct Caller(pub Principal);

pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
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
    let claims = crate::jwt::verify(&set, token, &state.cfg.issuer, Some(&state.cfg.issuer), now)
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
