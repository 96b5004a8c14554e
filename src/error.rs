//! The two error formats of the HTTP edge: RFC 9457 problem+json for `/api/v1`, and the
//! RFC 6749 §5.2 body for `/oauth/*`. Neither ever carries a secret.
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::service;
use crate::service::exchange::GrantError;

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
        use service::Error as E;
        match e {
            E::NotFound => ApiError::new(StatusCode::NOT_FOUND, "no such object"),
            E::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            E::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            E::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            E::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            E::Invalid { field, message } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: format!("{field}: {message}"),
                field: Some(field),
                retry_after: None,
            },
            E::TooMany { retry_after } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                detail: "too many failed attempts; try again later".into(),
                field: None,
                retry_after: Some(retry_after),
            },
            E::Unavailable { what, retry_after } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                detail: format!("{what}; retry later"),
                field: None,
                retry_after: Some(retry_after),
            },
            E::Store(e) if e.is_unavailable() => {
                crate::store::log_unavailable(&e);
                ApiError {
                    retry_after: Some(crate::store::RETRY_AFTER),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; retry later")
                }
            }
            E::Store(e) => {
                log::error!("storage error: {e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            E::Internal(m) => {
                log::error!("internal error: {m}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

/// RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// The client tried HTTP Basic: a 401 carries the Basic challenge.
    pub basic: bool,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "access_denied" => StatusCode::FORBIDDEN,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError { status, error, description: description.into(), basic: false, retry_after: None }
    }
    pub fn request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }
    /// 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1) with Retry-After.
    pub fn unavailable(retry_after: u64) -> OAuthError {
        OAuthError {
            retry_after: Some(retry_after),
            ..OAuthError::new("temporarily_unavailable", "the service is temporarily unavailable; retry later")
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

pub fn oauth_body(error: &str, description: &str) -> String {
    json!({ "error": error, "error_description": description }).to_string()
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.status == StatusCode::UNAUTHORIZED && self.basic {
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
                OAuthError::new("invalid_grant", "the grant is invalid, expired or revoked")
            }
            GrantError::InvalidClient => OAuthError::new("invalid_client", "client authentication failed"),
            GrantError::InvalidScope(m) => OAuthError::new("invalid_scope", m),
            GrantError::InvalidTarget(m) => OAuthError::new("invalid_target", m),
            GrantError::UnsupportedTokenType => OAuthError::new(
                "unsupported_token_type",
                "client secrets are not revoked here: regenerate the secret through the management API",
            ),
            GrantError::Store(e) if e.is_unavailable() => {
                crate::store::log_unavailable(&e);
                OAuthError::unavailable(crate::store::RETRY_AFTER)
            }
            GrantError::Store(e) => {
                log::error!("storage error on the token endpoint: {e}");
                OAuthError::new("server_error", "internal error")
            }
            GrantError::Internal(m) => {
                log::error!("token endpoint: {m}");
                OAuthError::new("server_error", "internal error")
            }
        }
    }
}
