//! The web console: server-rendered pages under `/console`, served by the same process as
//! the API and calling the same `service` functions (no rule is written twice here).
//!
//! Layout (the style kanidm moved to in `server/core/src/https/views/`):
//! - `mod.rs` (this file): the `/console` scope (a scope of its own: nothing here touches
//!   `/oauth` or `/api/v1`, and `/oauth/token` does no extra work), the security headers
//!   on every console response, the error pages, and the helpers every view uses.
//! - `session.rs`: cookie ↔ server-side session ([`Ui`], the signed-in caller).
//! - `csrf.rs`: the per-session CSRF token, the same-origin check and [`Post`], the only
//!   way a handler reads a form.
//! - `assets.rs`: `console.css` and `console.js`, embedded with `include_bytes!`, served
//!   under `/console/static/` with a content hash in the name and a year of caching.
//! - `views/`: one file per page. Templates are in `src/console/templates/` (askama,
//!   configured by `askama.toml`; checked at compile time, HTML-escaped by default).
//!
//! No htmx: every action is a plain form, POST → 303 redirect (or, for a secret shown
//! once, the page answered to the POST itself, so the secret is never stored or put in a
//! URL). `console.js` (same origin, no inline script) only opens/closes `<dialog>`s, asks
//! for confirmations and copies secrets; without it every form still posts.
//!
//! ## How to add a page
//! 1. A template `src/console/templates/NAME.html` starting with
//!    `{% extends "base.html" %}` and filling `{% block title %}` and `{% block main %}`.
//! 2. A view file `views/NAME.rs` with an askama struct holding `chrome: Chrome` (the
//!    layout: stylesheet, script, navigation) plus the page's data, and the handlers.
//!    Register its routes in `views::routes` (paths relative to `/console`).
//! 3. A GET handler takes [`Ui`] (the caller; no session → 303 to the sign-in page) and
//!    answers `page(&MyPage { chrome: ui.chrome("nav-key"), … })`. Call services through
//!    [`read`] / [`write`] (the blocking pool, a pooled connection; the closure gets the
//!    connection, the state and the time) with `&ui.p`, the same `Principal` the API
//!    builds for an interactive login: the service does the role checks.
//!
//! ## How to get the caller
//! Take `ui: Ui` in a GET handler, or `post: Post` in a POST handler (`post.ui`). `ui.p`
//! is the `Principal` (`ui.p.has(crate::service::Role::OrgAdmin)` for what to show; the service refuses what
//! is not allowed anyway), `ui.csrf` the token to put in forms (the layout does it for the
//! sign-out button; `{% include "csrf.html" %}` in any form of a page whose struct has a
//! `chrome` field).
//!
//! ## How to render a form error at a field
//! `match write(…).await { Ok(v) => …, Err(e) => { let errors = FieldErrors::from_error(e)?; … } }`:
//! `from_error` keeps the errors that belong on a form (422 with the field named, 409,
//! 400, 429) and turns the rest (403, 404, 500) into their error page via `?`. Re-render
//! the page with `errors` and the submitted values. In the template, after
//! `{% import "macros.html" as m %}`: `{% call m::field_error(errors, "name") %}{% endcall %}`
//! under the input shows the message next to that field (and
//! `{% call m::invalid(errors, "name") %}{% endcall %}` inside the input's tag marks it
//! `aria-invalid`), and `{% call m::form_error(errors, ["name", …]) %}{% endcall %}`
//! above the form shows the errors without a field or with a field the form lacks.
//!
//! ## How CSRF is checked
//! Every POST under `/console` passes two checks. (1) The [`headers`] middleware refuses
//! (403) any state-changing request whose `Sec-Fetch-Site` is `cross-site` or
//! `same-site`, or whose `Origin` is present and is not this server's origin (the issuer's
//! or the Host's). (2) A handler can only read a form through [`Post`] (signed in: the
//! hidden `csrf` field must equal the session's token, compared in constant time) or
//! `views::signin`'s pre-session check (the sign-in and reset forms: a random pre-session
//! cookie and its derived token). So a POST handler without `Post` cannot read its form.
//! The session cookie is also `SameSite=Strict` and `HttpOnly`, `Secure` when the issuer
//! is https.
//!
//! ## How a browser test is written
//! `tests/it/console.rs`: `browser_tests!(name, …)` runs `fn name(b: &Backend)` on both
//! backends, skipped with `SKIPPED: …` when chromium/chromedriver are missing (and failing
//! under `CI=true`). In it: `let s = b.start(); let mut br = Browser::start();`
//! `br.sign_in(&s, email, password)`, then `br.go(&s.url("/console/…"))`,
//! `br.find("css").click()`, `.send_keys("…")`, `.text()`, `br.screenshot("page-name")`
//! (writes `target/console-screenshots/page-name-{1280,390}.png`).
//!
//! Headers on every console response: `Content-Security-Policy` (`default-src 'none'`,
//! scripts, styles, images and forms from this origin only, `frame-ancestors 'none'`,
//! `base-uri 'none'`), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: same-origin`, and `Cache-Control: no-store` on everything but the
//! hashed static assets (so no page, in particular none showing a secret once, is cached).
pub mod assets;
pub mod csrf;
pub mod session;
pub mod slots;
pub mod sudo;
pub mod views;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;

use crate::app::{blocking, State};
use crate::service;
use crate::store::AnyConnection;

pub use csrf::{Form, Post};
pub use session::Ui;

/// Adds the console: `/` answers 303 to `/console`, and the `/console` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(root))).service(
        web::scope("/console")
            .app_data(web::PayloadConfig::new(64 * 1024))
            .wrap(from_fn(headers))
            .configure(views::routes)
            .default_service(web::to(not_found)),
    );
}

async fn root() -> HttpResponse {
    see_other("/console")
}

async fn not_found() -> Result<HttpResponse, Fail> {
    Err(Fail::not_found())
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers of every console response, and the same-origin check of every
/// state-changing request (see the module doc, "How CSRF is checked").
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut res = if !safe && !csrf::same_origin(req.request()) {
        let resp = Fail::cross_site().error_response();
        req.into_response(resp.map_into_boxed_body()).map_into_right_body()
    } else {
        let res = next.call(req).await?;
        // Refused forms of a signed-in person are audited like refused API calls.
        crate::http::middleware::audit_refused(&res).await;
        // An error page of a signed-in person keeps the navigation (the error itself is
        // rendered without knowing who asked).
        let shown = res.response().extensions().get::<Shown>().cloned();
        match shown {
            Some(Shown { status, title, message }) => match session::caller(res.request()).await {
                Ok(ui) => {
                    let page = render(status, &ErrorPage { chrome: ui.chrome(""), title, message: &message });
                    res.into_response(page).map_into_right_body()
                }
                Err(_) => res.map_into_left_body(),
            },
            None => res.map_into_left_body(),
        }
    };
    let h = res.headers_mut();
    let set = |h: &mut header::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, header::HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    Ok(res)
}

/// The layout's data: asset URLs and, when signed in, the navigation.
pub struct Chrome {
    pub css: &'static str,
    pub js: &'static str,
    pub nav: Option<Nav>,
    /// The CSRF token for this page's forms (empty when signed out; the sign-in form
    /// carries its pre-session token itself).
    pub csrf: String,
    /// What the last action did (shown once, its row highlighted).
    pub flash: Option<slots::Flash>,
}

impl Chrome {
    pub fn signed_out() -> Chrome {
        Chrome { css: assets::css_url(), js: assets::js_url(), nav: None, csrf: String::new(), flash: None }
    }
    /// The `data-id` of the row the last action concerned, or "".
    pub fn flash_row(&self) -> &str {
        self.flash.as_ref().and_then(|f| f.row.as_deref()).unwrap_or("")
    }
}

/// The navigation of a signed-in page: who, and which links they get.
pub struct Nav {
    pub email: String,
    pub org_name: String,
    /// The current section (its link is marked `aria-current`).
    pub current: &'static str,
    /// org:admin and above: service accounts and the admin pages.
    pub admin: bool,
    /// org:developer and above: apps.
    pub apps: bool,
}

impl Nav {
    pub fn is(&self, key: &str) -> &'static str {
        if self.current == key {
            "page"
        } else {
            "false"
        }
    }
}

/// Renders a template with a status.
pub fn render<T: Template>(status: StatusCode, t: &T) -> HttpResponse {
    render_into(HttpResponse::build(status), t)
}

/// Renders a template into a response being built (extra headers, cookies).
pub fn render_into<T: Template>(mut b: actix_web::HttpResponseBuilder, t: &T) -> HttpResponse {
    match t.render() {
        Ok(body) => b.content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            log::error!("console template failed to render: {e}");
            HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("internal error")
        }
    }
}

/// A 200 page.
pub fn page<T: Template>(t: &T) -> Result<HttpResponse, Fail> {
    Ok(render(StatusCode::OK, t))
}

/// 303 See Other to a path (after every successful POST).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_string())).finish()
}

/// 303 after an action, with the message the next page shows (and the row it highlights).
pub fn done(ui: &Ui, location: &str, message: String, row: Option<&str>) -> HttpResponse {
    ui.slots.put_flash(&ui.sid, message, row.map(str::to_string), ui.now);
    see_other(location)
}

/// 303 to the page that shows a new secret once: the secret waits in a slot of this
/// session, so reloading that page (or resubmitting) never repeats the action.
pub fn show_secret(ui: &Ui, s: slots::ShownSecret) -> HttpResponse {
    let slot = ui.slots.put_secret(&ui.sid, s, ui.now);
    see_other(&format!("/console/secret/{slot}"))
}

/// Runs `f` on the blocking pool with a pooled read connection.
pub async fn read<T, F>(st: &web::Data<State>, f: F) -> service::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, false, f).await
}

/// Runs `f` on the blocking pool with the writer (the service opens its transaction).
pub async fn write<T, F>(st: &web::Data<State>, f: F) -> service::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, true, f).await
}

async fn run<T, F>(st: &web::Data<State>, write: bool, f: F) -> service::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    let st = st.clone();
    blocking(move || -> service::Result<T> {
        let mut conn = if write { st.db.write() } else { st.db.read() }?;
        f(&mut conn, &st, st.now())
    })
    .await
}

/// Errors shown on a form: at their field, or above the form.
#[derive(Default, Debug)]
pub struct FieldErrors {
    pub fields: Vec<(String, String)>,
    pub form: Option<String>,
}

impl FieldErrors {
    /// The errors that belong on the form; any other error becomes its page (`?`).
    pub fn from_error(e: service::Error) -> Result<FieldErrors, Fail> {
        use service::Answer as A;
        let mut out = FieldErrors::default();
        match e.answer() {
            A::Invalid { field, message } => out.fields.push((field, sentence(&message))),
            A::Conflict(m) | A::BadRequest(m) => out.form = Some(sentence(&m)),
            A::TooMany { retry_after } => {
                out.form = Some(format!("Too many attempts. Try again in {retry_after} seconds."))
            }
            other => return Err(Fail::from(other)),
        }
        Ok(out)
    }
    /// `value` as one of the service's text types (`text::Name`, `text::Description`, …), or
    /// `None` with its error, worded as the API words it, added to the others.
    pub fn text<T>(&mut self, field: &str, value: &str) -> Option<T>
    where
        T: for<'a> TryFrom<&'a str, Error = service::text::TextError>,
    {
        match T::try_from(value) {
            Ok(v) => Some(v),
            Err(e) => {
                if let Ok(f) = FieldErrors::from_error(service::invalid(field, e.to_string())) {
                    self.fields.extend(f.fields);
                }
                None
            }
        }
    }
    /// A form's name and description as the service's text types (`N`: the name's type,
    /// whose limits vary), or the errors of both at once.
    pub fn name_and_description<N>(
        name: &str,
        description: &str,
    ) -> Result<(N, service::text::Description), FieldErrors>
    where
        N: for<'a> TryFrom<&'a str, Error = service::text::TextError>,
    {
        let mut e = FieldErrors::default();
        match (e.text("name", name), e.text("description", description)) {
            (Some(n), Some(d)) => Ok((n, d)),
            _ => Err(e),
        }
    }
    pub fn field(field: &str, message: &str) -> FieldErrors {
        FieldErrors { fields: vec![(field.to_string(), sentence(message))], form: None }
    }
    pub fn form(message: &str) -> FieldErrors {
        FieldErrors { fields: vec![], form: Some(sentence(message)) }
    }
    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
    /// Whether there is any error (a dialog re-opens on load).
    pub fn any(&self) -> bool {
        self.form.is_some() || !self.fields.is_empty()
    }
    /// Errors whose field the form has no input for, shown above the form.
    pub fn others<'k, K: AsRef<[&'k str]>>(&self, known: K) -> Vec<String> {
        let known = known.as_ref();
        self.fields.iter().filter(|(f, _)| !known.contains(&f.as_str())).map(|(f, m)| format!("{f}: {m}")).collect()
    }
}

/// "must be 1 to 100 characters" → "Must be 1 to 100 characters."
fn sentence(m: &str) -> String {
    let mut c = m.trim().chars();
    let mut s = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub enum Fail {
    /// No session, or it ended: 303 to the sign-in page.
    SignIn,
    /// An error page.
    Page { status: StatusCode, title: &'static str, message: String },
    /// Busy or the database is unreachable: the 503 page with Retry-After, as the API's 503.
    Unavailable { retry_after: u64 },
}

impl Fail {
    pub fn not_found() -> Fail {
        Fail::Page {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: "There is nothing here, or it belongs to another organization.".into(),
        }
    }
    pub fn cross_site() -> Fail {
        Fail::Page {
            status: StatusCode::FORBIDDEN,
            title: "Form refused",
            message: "This form was not sent from this console page (its security token is missing, wrong or \
                      expired). Reload the page and try again."
                .into(),
        }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::SignIn => write!(f, "sign in first"),
            Fail::Page { status, message, .. } => write!(f, "{status}: {message}"),
            Fail::Unavailable { .. } => write!(f, "503: unavailable"),
        }
    }
}

impl From<service::Error> for Fail {
    fn from(e: service::Error) -> Fail {
        Fail::from(e.answer())
    }
}

/// The console's words for the one classification of service errors (`service::Answer`),
/// which the API renders as problem+json.
impl From<service::Answer> for Fail {
    fn from(a: service::Answer) -> Fail {
        use service::Answer as A;
        let page = |status, title, message: String| Fail::Page { status, title, message };
        match a {
            A::NotFound => Fail::not_found(),
            A::Unauthorized(_) => Fail::SignIn,
            A::Forbidden(m) => page(
                StatusCode::FORBIDDEN,
                "You need another role",
                format!("{} Ask an administrator of your organization if you need this.", sentence(&m)),
            ),
            A::Invalid { field, message } => {
                page(StatusCode::UNPROCESSABLE_ENTITY, "Not accepted", format!("{field}: {}", sentence(&message)))
            }
            A::Conflict(m) => page(StatusCode::CONFLICT, "Not possible now", sentence(&m)),
            A::BadRequest(m) => page(StatusCode::BAD_REQUEST, "Not accepted", sentence(&m)),
            A::TooMany { retry_after } => {
                page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", format!("Try again in {retry_after} seconds."))
            }
            A::Unavailable { retry_after, .. } => Fail::Unavailable { retry_after },
            A::Internal => {
                page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error was logged.".into())
            }
        }
    }
}

/// What an error page said, kept on its response so that `headers` can render it again
/// with the caller's navigation.
#[derive(Clone)]
struct Shown {
    status: StatusCode,
    title: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for Fail {
    fn status_code(&self) -> StatusCode {
        match self {
            Fail::SignIn => StatusCode::SEE_OTHER,
            Fail::Page { status, .. } => *status,
            Fail::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            Fail::SignIn => see_other("/console/sign-in"),
            Fail::Page { status, title, message } => {
                let mut resp = render(*status, &ErrorPage { chrome: Chrome::signed_out(), title, message });
                resp.extensions_mut().insert(Shown { status: *status, title, message: message.clone() });
                resp
            }
            Fail::Unavailable { retry_after } => {
                let mut b = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE);
                b.insert_header((actix_web::http::header::RETRY_AFTER, retry_after.to_string()));
                let message = "The server is busy or its database is unreachable. Try again in a moment.";
                render_into(b, &ErrorPage { chrome: Chrome::signed_out(), title: "Temporarily unavailable", message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_in_words() {
        assert_eq!(sentence("must be 1 to 100 characters"), "Must be 1 to 100 characters.");
        assert_eq!(sentence("Done!"), "Done!");
        let e = FieldErrors::from_error(service::invalid("roles", "must name at least one role")).unwrap();
        assert_eq!(e.get("roles"), Some("Must name at least one role."));
        assert_eq!(e.others(["name"]), vec!["roles: Must name at least one role.".to_string()]);
        assert!(e.others(["roles"]).is_empty());
        let e = FieldErrors::from_error(service::Error::Conflict("limit reached".into())).unwrap();
        assert_eq!(e.form.as_deref(), Some("Limit reached."));
        let f = FieldErrors::from_error(service::Error::Forbidden("requires the role org:admin".into())).unwrap_err();
        assert_eq!(f.status_code(), StatusCode::FORBIDDEN);
        assert!(f.to_string().contains("Requires the role org:admin."));
        assert_eq!(Fail::from(service::Error::NotFound).status_code(), StatusCode::NOT_FOUND);
        assert_eq!(Fail::from(service::Error::Unauthorized("x".into())).status_code(), StatusCode::SEE_OTHER);
    }
}
