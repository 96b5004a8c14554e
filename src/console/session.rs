//! Console sessions: a random secret in an `HttpOnly; SameSite=Strict` cookie (`Secure`
//! when the issuer is https), whose SHA-256 names a row of `sessions` (a login session
//! like the API's, so what ends logins ends it). Every request resolves the cookie to the
//! same `Principal` an interactive login's access token resolves to.
use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest, HttpResponseBuilder};

use super::{Chrome, Fail, Nav};
use crate::app::{blocking, State};
use crate::http::auth::client_ip;
use crate::secrets;
use crate::service::{self, authz::principal, Principal};

/// The session cookie (the secret; the server keeps only its SHA-256).
pub const COOKIE: &str = "tokend_console";
/// The pre-session cookie of the sign-in and reset forms (their CSRF token is derived
/// from it).
pub const PRE_COOKIE: &str = "tokend_console_pre";
/// How long a console sign-in lasts (it also ends on sign-out and on every event that
/// ends logins: password change or reset, disabling, sign-out-everywhere).
pub const TTL: i64 = 12 * 3600;

/// The signed-in caller of a console request.
pub struct Ui {
    pub p: Principal,
    /// The CSRF token for this session's forms.
    pub csrf: String,
    pub email: String,
    pub org_name: String,
    /// The session's hash: the key of its short-lived slots (`super::slots`).
    pub sid: String,
    /// The message of this page (a GET after an action), taken from its slot.
    pub flash: Option<super::slots::Flash>,
    /// The server's time of this request.
    pub now: i64,
    /// The server.
    pub st: web::Data<State>,
    /// The console's one-time slots (secrets, flash messages, sudo windows).
    pub slots: web::Data<super::slots::Slots>,
}

impl Ui {
    /// The layout for a page in section `current` (`my-tokens`, `service-accounts`,
    /// `apps`, `password`, `admin`).
    pub fn chrome(&self, current: &'static str) -> Chrome {
        Chrome {
            nav: Some(Nav {
                email: self.email.clone(),
                org_name: self.org_name.clone(),
                current,
                admin: self.p.has(crate::service::Role::OrgAdmin),
                apps: self.p.has(crate::service::Role::OrgDeveloper),
            }),
            csrf: self.csrf.clone(),
            flash: self.flash.clone(),
            ..Chrome::signed_out()
        }
    }
}

/// A fresh random cookie secret (256 bits).
pub fn new_secret() -> String {
    secrets::random_id("", 32)
}

/// The value of cookie `name` in the request, if any (actix-web's cookie parsing: every
/// `Cookie` header, `;`-separated pairs).
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_string()).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Adds a `Set-Cookie` for `name` (`max_age` 0 deletes it): `Path=/console`, `HttpOnly`,
/// `SameSite=Strict`, and `Secure` when the issuer is https.
pub fn set_cookie(resp: &mut HttpResponseBuilder, st: &State, name: &str, value: &str, max_age: i64) {
    let c = Cookie::build(name.to_string(), value.to_string())
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .secure(st.cfg.issuer.starts_with("https://"))
        .finish();
    resp.cookie(c);
}

/// The caller of a request from its session cookie; `Fail::SignIn` without a live one.
pub async fn caller(req: &HttpRequest) -> Result<Ui, Fail> {
    let st = req.app_data::<web::Data<State>>().cloned().ok_or(Fail::SignIn)?;
    let st2 = st.clone();
    let secret = cookie(req, COOKIE).ok_or(Fail::SignIn)?;
    let csrf = super::csrf::token(&secret);
    let hash = secrets::hash(&secret);
    let sid = hash.clone();
    let ip = client_ip(req);
    let now = st.now();
    let found = blocking(move || -> service::Result<_> {
        let mut conn = st.db.read()?;
        let Some(p) = principal::resolve_console(&mut conn, &hash, st.now())? else { return Ok(None) };
        let me = service::principals::users::me(&mut conn, &p)?;
        Ok(Some((p, me.user.email, me.org_name)))
    })
    .await;
    match found {
        Ok(Some((mut p, email, org_name))) => {
            p.ip = Some(ip);
            // For the audit of refused forms (see `http::middleware::audit_refused`).
            actix_web::HttpMessage::extensions_mut(req).insert(p.clone());
            let slots = req.app_data::<web::Data<super::slots::Slots>>().cloned().ok_or(Fail::SignIn)?;
            Ok(Ui { p, csrf, email, org_name, sid, flash: None, now, st: st2, slots })
        }
        Ok(None) | Err(service::Error::NotFound) => Err(Fail::SignIn),
        Err(e) => Err(Fail::from(e)),
    }
}

impl FromRequest for Ui {
    type Error = Fail;
    type Future = Pin<Box<dyn Future<Output = Result<Ui, Fail>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let mut ui = caller(&req).await?;
            // A page shown after an action carries its message (once).
            if req.method() == actix_web::http::Method::GET {
                ui.flash = ui.slots.take_flash(&ui.sid, ui.now);
            }
            Ok(ui)
        })
    }
}
