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

/// One secret a reporter found.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LeakItem {
    /// The string found (a tkd_ secret, or anything matching the reporter's pattern).
    token: String,
    /// The reporter's name for the secret type, answered back as `token_type`.
    #[serde(default, rename = "type")]
    kind: String,
    /// Where it was found (kept in the audit row, sent to the owner).
    #[serde(default)]
    url: String,
    /// What kind of place that is (e.g. `content`, `commit`).
    #[serde(default)]
    source: String,
}

/// The verdict on one reported string.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LeakLabel {
    /// Lowercase hex SHA-256 of the reported string.
    token_hash: String,
    token_type: String,
    /// `true_positive`: it was a live credential and is now revoked; `false_positive`:
    /// anything else (nothing is told about strings that were not live).
    #[schema(schema_with = labels)]
    label: &'static str,
}

fn labels() -> utoipa::openapi::Object {
    crate::service::one_of(&["true_positive", "false_positive"])
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

/// Leak report
///
/// The secret-scanning partner intake. The body is signed with a reporter key listed in
/// TOKEND_LEAK_REPORTER_KEYS (ECDSA P-256 SHA-256 over the raw body, base64 DER); every live
/// credential in it is revoked at once (reason leak_report) and its owner told. At most 256 KiB
/// and 1000 items; 60 signed requests a minute per key.
#[utoipa::path(post, path = "/leaks/report", tag = "Operations", operation_id = "leaks_report", security(()),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "The reporter key's id."),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 ECDSA P-256 SHA-256 signature (ASN.1 DER) over the raw body."),
    ),
    request_body(content = Vec<LeakItem>, content_type = "application/json"),
    responses(
        (status = 200, description = "One label per reported item, in order.", body = Vec<LeakLabel>),
        (status = 400, description = "Not a JSON array of items, or too many.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown or invalid signature; nothing changed.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB."),
        (status = 429, description = "The key's budget is spent; Retry-After.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Try again.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub async fn report(st: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
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
    let items: Vec<LeakItem> = match serde_json::from_slice(&body) {
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
    let result = blocking(move || -> crate::service::Result<Vec<LeakLabel>> {
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
            labels.push(LeakLabel {
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
