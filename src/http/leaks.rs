//! `POST /leaks/report`: the secret-scanning partner intake. A code host that found `tkd_`
//! strings in public posts them here, signed (see `crate::reporters`); each live credential
//! is revoked at once (`service::tokens::leaks`) and every reported string gets a label.
//!
//! Request: headers `Github-Public-Key-Identifier` (key id) and
//! `Github-Public-Key-Signature` (base64 ECDSA P-256 SHA-256 over the raw body); body a
//! JSON array of `{"token","type","url","source"}`. Answer 200 with one
//! `{"token_hash","token_type","label"}` per item, `label` `true_positive` (it was live and
//! is now revoked) or `false_positive` (anything else; the same answer for unknown,
//! revoked, expired and malformed strings). A missing, unknown or bad signature answers
//! 401 and changes nothing; more than [`MAX_BODY`] bytes 413; more than [`MAX_ITEMS`]
//! items or a body that is not such an array 400; past a key's budget 429 with
//! `Retry-After`.
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::app::{blocking, State};
use crate::error::problem_body;
use crate::reporters::VerifyError;
use crate::service::tokens::leaks::{self, Sighting};

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// Most items in one report.
pub const MAX_ITEMS: usize = 1000;
/// The key id header.
pub const KEY_ID_HEADER: &str = "Github-Public-Key-Identifier";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "Github-Public-Key-Signature";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/leaks/report").app_data(web::PayloadConfig::new(MAX_BODY)).route(web::post().to(report)),
    );
}

#[derive(Deserialize)]
struct Item {
    token: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    source: String,
}

#[derive(Serialize)]
struct Label {
    token_hash: String,
    token_type: String,
    label: &'static str,
}

fn problem(status: StatusCode, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .body(problem_body(status, detail, None).to_string())
}

fn unauthorized() -> HttpResponse {
    // One answer for every signature failure: which check failed is not told.
    problem(StatusCode::UNAUTHORIZED, "missing, unknown or invalid reporter signature")
}

async fn report(st: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(kid), Some(sig)) = (header(KEY_ID_HEADER), header(SIGNATURE_HEADER)) else { return unauthorized() };
    if kid.len() > 256 || sig.len() > 512 {
        return unauthorized();
    }
    let keys = st.reporters.clone();
    let signed = body.clone();
    let k = kid.clone();
    let verified = web::block(move || keys.verify(&k, &sig, &signed)).await.unwrap_or(Err(VerifyError::BadSignature));
    if let Err(e) = verified {
        log::info!("leak report refused: {e}");
        return unauthorized();
    }
    if let Err(retry) = st.reporters.admit(&kid) {
        return HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, retry.to_string()))
            .content_type("application/problem+json")
            .body(
                problem_body(StatusCode::TOO_MANY_REQUESTS, "too many reports from this key; retry later", None)
                    .to_string(),
            );
    }
    let items: Vec<Item> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return problem(StatusCode::BAD_REQUEST, "expected a JSON array of {\"token\",\"type\",\"url\",\"source\"}")
        }
    };
    if items.len() > MAX_ITEMS {
        return problem(StatusCode::BAD_REQUEST, &format!("at most {MAX_ITEMS} items in one report"));
    }
    let ip = crate::http::auth::client_ip(&req);
    let state = st.clone();
    let result = blocking(move || -> crate::service::Result<Vec<Label>> {
        let mut conn = state.db.write()?;
        let now = state.now();
        let reporter = format!("key:{kid}");
        let mut labels = Vec::with_capacity(items.len());
        for it in items {
            let seen = Sighting { url: it.url, source: it.source, kind: it.kind.clone(), reporter: reporter.clone() };
            let live = leaks::report(&mut conn, &it.token, &seen, Some(&ip), now)?;
            if live {
                log::warn!("leak report: a live credential was revoked (reported by {reporter})");
            }
            labels.push(Label {
                token_hash: crate::secrets::hash(&it.token),
                token_type: it.kind,
                label: if live { "true_positive" } else { "false_positive" },
            });
        }
        Ok(labels)
    })
    .await;
    match result {
        Ok(labels) => HttpResponse::Ok().json(labels),
        Err(e) => {
            log::warn!("leak report failed: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the report could not be processed; send it again")
        }
    }
}
