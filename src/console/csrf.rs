//! CSRF protection: the same-origin check of every state-changing request (in the
//! console's middleware) and the per-session token every form carries, checked by
//! [`Post`], the only way a signed-in handler reads a form.
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::session::{caller, Ui};
use super::Fail;
use crate::app::State;
use crate::secrets;

/// The name of the hidden form field carrying the token.
pub const FIELD: &str = "csrf";

/// The CSRF token of a session (or pre-session) cookie secret: one-way, so the page's
/// token does not reveal the cookie, and tied to it, so another session's token fails.
pub fn token(secret: &str) -> String {
    secrets::hash(&format!("tokend-console-csrf\0{secret}"))
}

/// Whether a presented token is the expected one (constant time).
pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| secrets::ct_eq(expected, p))
}

/// Whether a state-changing request comes from this origin: `Sec-Fetch-Site` (sent by
/// current browsers) must be `same-origin` or `none` (typed or bookmarked), and `Origin`,
/// when sent, must be this server's (the issuer's origin, or the scheme and Host the
/// request arrived with). Browsers that send neither header still meet the token check.
pub fn same_origin(req: &HttpRequest) -> bool {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    if let Some(site) = h("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let issuer = req.app_data::<web::Data<State>>().map(|s| origin_of(&s.cfg.issuer)).unwrap_or_default();
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    origin == issuer || origin == own
}

/// `https://host:port` of a URL (up to the first `/` after the scheme).
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or("")),
        None => String::new(),
    }
}

/// A submitted `application/x-www-form-urlencoded` form: repeated names (checkbox
/// groups) are kept.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default())
    }
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.opt(name).unwrap_or("")
    }
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

/// A signed-in POST: the caller and the form, whose `csrf` field matched the session's
/// token. A missing session answers 303 to sign-in; a missing or wrong token 403.
pub struct Post {
    pub ui: Ui,
    pub form: Form,
}

impl FromRequest for Post {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Post, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            let ui = caller(&req).await?;
            let form = Form::parse(&body);
            if !matches(&ui.csrf, form.opt(FIELD)) {
                return Err(Fail::cross_site().into());
            }
            Ok(Post { ui, form })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_forms() {
        assert_eq!(origin_of("https://id.example.com/tenant/x"), "https://id.example.com");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("no scheme"), "");
        let f = Form::parse(b"csrf=abc&roles=a%3Ab&roles=c&name=x+y&empty=");
        assert_eq!(f.get("csrf"), "abc");
        assert_eq!(f.all("roles"), vec!["a:b".to_string(), "c".to_string()]);
        assert_eq!(f.get("name"), "x y");
        assert_eq!(f.opt("empty"), Some(""));
        assert_eq!(f.opt("missing"), None);
        assert!(Form::parse(b"%zz=\xff").0.len() <= 1, "garbage does not panic");
    }

    #[test]
    fn tokens_are_per_secret_and_compared_whole() {
        let (a, b) = (token("secret-a"), token("secret-b"));
        assert_ne!(a, b);
        assert_ne!(a, secrets::hash("secret-a"), "not the session's stored hash");
        assert!(matches(&a, Some(&a)));
        assert!(!matches(&a, Some(&b)));
        assert!(!matches(&a, Some(&a[..10])));
        assert!(!matches(&a, Some("")));
        assert!(!matches(&a, None));
    }
}
