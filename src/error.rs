//! The two error formats of the HTTP edge: RFC 9457 problem+json for `/api/v1`, and the
//! RFC 6749 §5.2 body for `/oauth/*`. Neither ever carries a secret.
//!
//! Every conversion between the crate's error types lives here, so that the mapping from
//! a lower layer's failure to what a client sees can be read in one place. Lower errors
//! are kept as the source (for the log); the wire message stays generic.
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::service;
use crate::service::oauth::exchange::GrantError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError { status, detail: detail.into(), field: None, retry_after: None }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

pub fn problem_body(status: StatusCode, detail: &str, field: Option<&str>) -> serde_json::Value {
    let title = status.canonical_reason().unwrap_or("Error");
    let slug = title.to_lowercase().replace(' ', "-");
    let mut body = json!({
        "type": format!("https://tokend.dev/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(f) = field {
        body["errors"] = json!([{ "field": f, "message": detail }]);
    }
    body
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"tokend\""));
        }
        if let Some(s) = self.retry_after {
            r.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        r.body(problem_body(self.status, &self.detail, self.field.as_deref()).to_string())
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> ApiError {
        use service::Answer as A;
        match e.answer() {
            A::NotFound => ApiError::new(StatusCode::NOT_FOUND, "no such object"),
            A::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            A::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            A::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            A::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            A::Invalid { field, message } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: format!("{field}: {message}"),
                field: Some(field),
                retry_after: None,
            },
            A::TooMany { retry_after } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                detail: "too many failed attempts; try again later".into(),
                field: None,
                retry_after: Some(retry_after),
            },
            A::Unavailable { what, retry_after } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                detail: format!("{what}; retry later"),
                field: None,
                retry_after: Some(retry_after),
            },
            A::Internal => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// The RFC 6749 §5.2 `error` codes tokend answers with (with RFC 8693's `invalid_target`,
/// RFC 7009's `unsupported_token_type` and RFC 8628's `slow_down`), serialised as their
/// snake_case wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    UnsupportedTokenType,
    AccessDenied,
    SlowDown,
    TemporarilyUnavailable,
    ServerError,
}

impl OAuthCode {
    /// The wire string (the same as the serde serialisation).
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::SlowDown => "slow_down",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthCode::ServerError => "server_error",
        }
    }

    /// The status this code is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::AccessDenied => StatusCode::FORBIDDEN,
            OAuthCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for OAuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for OAuthCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for OAuthCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    /// The status follows from the code (`OAuthCode::status`).
    pub error: OAuthCode,
    pub description: String,
    /// The client tried HTTP Basic: a 401 carries the Basic challenge.
    pub basic: bool,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: OAuthCode, description: impl Into<String>) -> OAuthError {
        OAuthError { error, description: description.into(), basic: false, retry_after: None }
    }
    pub fn request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthCode::InvalidRequest, description)
    }
    /// 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1) with Retry-After.
    pub fn unavailable(retry_after: u64) -> OAuthError {
        OAuthError {
            retry_after: Some(retry_after),
            ..OAuthError::new(OAuthCode::TemporarilyUnavailable, "the service is temporarily unavailable; retry later")
        }
    }
    /// With the Basic challenge on a 401 when the client tried HTTP Basic.
    pub fn basic(self, basic: bool) -> OAuthError {
        OAuthError { basic, ..self }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

pub fn oauth_body(error: OAuthCode, description: &str) -> String {
    json!({ "error": error, "error_description": description }).to_string()
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.status_code() == StatusCode::UNAUTHORIZED && self.basic {
            r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"tokend\""));
        }
        if let Some(s) = self.retry_after {
            r.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        r.body(oauth_body(self.error, &self.description))
    }
}

impl From<GrantError> for OAuthError {
    fn from(e: GrantError) -> OAuthError {
        match e {
            // Never say which check failed.
            GrantError::InvalidGrant { .. } => {
                OAuthError::new(OAuthCode::InvalidGrant, "the grant is invalid, expired or revoked")
            }
            GrantError::InvalidClient | GrantError::InvalidApiTokenClient { .. } => {
                OAuthError::new(OAuthCode::InvalidClient, "client authentication failed")
            }
            GrantError::Unauthenticated(m) => OAuthError::new(OAuthCode::InvalidClient, m),
            GrantError::SlowDown(retry) => OAuthError {
                retry_after: Some(retry),
                ..OAuthError::new(OAuthCode::SlowDown, "too many failed requests; retry later")
            },
            GrantError::InvalidScope(m) => OAuthError::new(OAuthCode::InvalidScope, m),
            GrantError::InvalidTarget(m) => OAuthError::new(OAuthCode::InvalidTarget, m),
            GrantError::UnauthorizedClient(m) => OAuthError::new(OAuthCode::UnauthorizedClient, m),
            GrantError::InvalidRequest(m) => OAuthError::new(OAuthCode::InvalidRequest, m),
            GrantError::UnsupportedTokenType => OAuthError::new(
                OAuthCode::UnsupportedTokenType,
                "client secrets are not revoked here: regenerate the secret through the management API",
            ),
            GrantError::AccessDenied(m) => OAuthError::new(OAuthCode::AccessDenied, m),
            // Through the one classification: an outage is 503, anything else a logged 500.
            GrantError::Store(e) => OAuthError::from(service::Error::Store(e)),
            GrantError::Service(e) => OAuthError::from(e),
            GrantError::Sign(e) => OAuthError::from(service::Error::Sign(e)),
        }
    }
}

impl From<service::Error> for OAuthError {
    fn from(e: service::Error) -> OAuthError {
        match e.answer() {
            service::Answer::Unavailable { retry_after, .. } => OAuthError::unavailable(retry_after),
            service::Answer::Internal => OAuthError::new(OAuthCode::ServerError, "internal error"),
            other => {
                log::error!("oauth endpoint: unexpected service answer {other:?}");
                OAuthError::new(OAuthCode::ServerError, "internal error")
            }
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> OAuthError {
        OAuthError::from(service::Error::from(e))
    }
}

/// Lower errors keep their kind: a database outage stays a store error (503), not a 500;
/// anything else is kept whole as the source.
impl From<service::Error> for GrantError {
    fn from(e: service::Error) -> GrantError {
        match e {
            service::Error::Store(s) => GrantError::Store(s),
            other => GrantError::Service(other),
        }
    }
}

impl From<diesel::result::Error> for GrantError {
    fn from(e: diesel::result::Error) -> GrantError {
        crate::store::mark_if_lost(&e);
        GrantError::Store(StoreError::from(e))
    }
}

impl From<diesel::result::Error> for service::Error {
    fn from(e: diesel::result::Error) -> service::Error {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            // A concurrent create won the race for a unique name or email.
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                service::Error::Conflict("the object already exists".into())
            }
            e => {
                crate::store::mark_if_lost(&e);
                service::Error::Store(StoreError::from(e))
            }
        }
    }
}

/// Why `app::boot` could not start the server.
#[derive(thiserror::Error, Debug)]
pub enum BootError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] service::Error),
    #[error(transparent)]
    Credentials(#[from] crate::bootstrap::CredentialsError),
    /// The webhook secret key or the SMTP settings.
    #[error("notifications: {0}")]
    Notify(String),
}

impl From<diesel::result::Error> for BootError {
    fn from(e: diesel::result::Error) -> BootError {
        crate::store::mark_if_lost(&e);
        BootError::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [OAuthCode; 12] = [
        OAuthCode::InvalidRequest,
        OAuthCode::InvalidClient,
        OAuthCode::InvalidGrant,
        OAuthCode::UnauthorizedClient,
        OAuthCode::UnsupportedGrantType,
        OAuthCode::InvalidScope,
        OAuthCode::InvalidTarget,
        OAuthCode::UnsupportedTokenType,
        OAuthCode::AccessDenied,
        OAuthCode::SlowDown,
        OAuthCode::TemporarilyUnavailable,
        OAuthCode::ServerError,
    ];

    #[test]
    fn codes_serialise_as_rfc6749_strings() {
        for c in ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(OAuthCode::UnsupportedGrantType.as_str(), "unsupported_grant_type");
        assert_eq!(OAuthCode::TemporarilyUnavailable.as_str(), "temporarily_unavailable");
        assert_eq!(oauth_body(OAuthCode::InvalidGrant, "x"), r#"{"error":"invalid_grant","error_description":"x"}"#);
    }

    #[test]
    fn statuses_and_headers() {
        let status = |c: OAuthCode| OAuthError::new(c, "d").status_code().as_u16();
        assert_eq!(status(OAuthCode::InvalidClient), 401);
        assert_eq!(status(OAuthCode::AccessDenied), 403);
        assert_eq!(status(OAuthCode::ServerError), 500);
        assert_eq!(status(OAuthCode::TemporarilyUnavailable), 503);
        for c in [OAuthCode::InvalidRequest, OAuthCode::InvalidGrant, OAuthCode::InvalidScope, OAuthCode::InvalidTarget]
        {
            assert_eq!(status(c), 400, "{c}");
        }
        let r = OAuthError::new(OAuthCode::InvalidClient, "d").basic(true).error_response();
        assert_eq!(r.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Basic realm=\"tokend\"");
        assert_eq!(r.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
        let r = OAuthError::unavailable(7).error_response();
        assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "7");
        assert!(OAuthError::new(OAuthCode::InvalidGrant, "d")
            .basic(true)
            .error_response()
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .is_none());
    }
}
