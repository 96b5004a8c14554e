//! The console's static files, embedded in the binary and served under
//! `/console/static/` with the first 12 hex digits of their SHA-256 in the name, so they
//! can be cached for a year (`immutable`) and a new build never serves a stale one.
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::Fail;

const CSS: &[u8] = include_bytes!("static/console.css");
const JS: &[u8] = include_bytes!("static/console.js");

struct Names {
    css: String,
    js: String,
}

fn names() -> &'static Names {
    static N: OnceLock<Names> = OnceLock::new();
    N.get_or_init(|| {
        let short = |b: &[u8]| {
            let h = ring::digest::digest(&ring::digest::SHA256, b);
            h.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        Names {
            css: format!("/console/static/console.{}.css", short(CSS)),
            js: format!("/console/static/console.{}.js", short(JS)),
        }
    })
}

pub fn css_url() -> &'static str {
    &names().css
}

pub fn js_url() -> &'static str {
    &names().js
}

/// `GET /console/static/{file}`: only the current hashed names answer.
pub async fn serve(file: web::Path<String>) -> Result<HttpResponse, Fail> {
    let path = format!("/console/static/{file}");
    let (body, ct) = if path == css_url() {
        (CSS, "text/css; charset=utf-8")
    } else if path == js_url() {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return Err(Fail::not_found());
    };
    Ok(HttpResponse::Ok()
        .content_type(ct)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body))
}
