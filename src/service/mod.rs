//! Business rules: synchronous, no HTTP. Each function takes a connection, the caller and
//! the current time, and runs its own transaction when it mutates. A function reads as
//! validate → authorise → store → audit → view: the SQL lives in `crate::store` (queries
//! beside their rows, every list through `store::page`), the rules and views here.
pub mod authz;
pub mod doc;
pub mod events;
pub mod list;
pub mod oauth;
pub mod org;
pub mod principals;
pub mod tokens;

use crate::store::StoreError;

pub use authz::principal::{Acct, Principal};

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("not found")]
    NotFound,
    /// A request that cannot succeed as sent (e.g. a used reset code): 400.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("too many attempts")]
    TooMany { retry_after: u64 },
    /// Busy or a dependency is down: 503 with Retry-After.
    #[error("{what}")]
    Unavailable { what: &'static str, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing a token failed (the key ring refused).
    #[error("signing: {0}")]
    Sign(#[from] crate::keys::KeyError),
    /// Hashing a new password failed.
    #[error("password hashing: {0}")]
    PasswordHash(#[source] argon2::password_hash::Error),
    /// A fault of ours, with its cause kept for the log (never shown to the client).
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

// `From<diesel::result::Error>` (a unique violation is a conflict) is in `crate::error`.

/// What a service error means to whoever asked, the same for every front end: the API
/// renders it as problem+json, the console as a page or form errors, the OAuth endpoints as
/// RFC 6749 errors. Classifying here, once, is what keeps a database outage a 503 on every
/// surface; each front end only chooses the words and the format.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    NotFound,
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    Conflict(String),
    Invalid {
        field: String,
        message: String,
    },
    TooMany {
        retry_after: u64,
    },
    /// Busy, or the database is unreachable: 503 with Retry-After.
    Unavailable {
        what: &'static str,
        retry_after: u64,
    },
    /// A fault of ours: logged here with its cause, answered without it.
    Internal,
}

impl Error {
    /// The answer to give for this error (logs what the client is not told).
    pub fn answer(self) -> Answer {
        match self {
            Error::NotFound => Answer::NotFound,
            Error::BadRequest(m) => Answer::BadRequest(m),
            Error::Unauthorized(m) => Answer::Unauthorized(m),
            Error::Forbidden(m) => Answer::Forbidden(m),
            Error::Conflict(m) => Answer::Conflict(m),
            Error::Invalid { field, message } => Answer::Invalid { field, message },
            Error::TooMany { retry_after } => Answer::TooMany { retry_after },
            Error::Unavailable { what, retry_after } => Answer::Unavailable { what, retry_after },
            Error::Store(e) if e.is_unavailable() => {
                crate::store::log_unavailable(&e);
                Answer::Unavailable { what: "the database is unavailable", retry_after: crate::store::RETRY_AFTER }
            }
            e => {
                log::error!("internal error: {}", crate::logging::chain(&e));
                Answer::Internal
            }
        }
    }
}

pub fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid { field: field.to_string(), message: message.into() }
}

pub type Result<T> = std::result::Result<T, Error>;

/// For optional body fields that may be absent but not `null` (the document declares them
/// non-nullable): `#[serde(default, deserialize_with = "crate::service::not_null")]`.
/// An explicit `null` is a 422 like any other wrong type.
pub fn not_null<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A whole number written as an integer or with a zero fraction (`30` or `30.0`): JSON
/// Schema's `integer`, which the OpenAPI document promises, admits both. Present → `Some`;
/// `null`, fractions and anything outside i64 are a 422 like any other wrong type.
pub fn whole_number<'de, D>(d: D) -> std::result::Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let n = <serde_json::Number as serde::Deserialize>::deserialize(d)?;
    whole(&n).map(Some).ok_or_else(|| {
        let out_of_range = n.as_f64().is_some_and(|f| f.fract() == 0.0);
        let what = if out_of_range { "a whole number in range" } else { "a whole number" };
        serde::de::Error::custom(format!("expected {what}, got {n}"))
    })
}

/// The value of a JSON number that is a whole number in i64's range.
pub fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64().filter(|f| f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63)).map(|f| f as i64)
    })
}

/// Time-ordered ids: inserts append to indexes and ties in `created_at` sort stably.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The built-in organization roles, strongest first.
pub const ORG_ROLES: [&str; 4] = ["org:owner", "org:admin", "org:developer", "org:member"];

fn rank(role: &str) -> Option<usize> {
    ORG_ROLES.iter().position(|r| *r == role)
}

/// Whether `roles` hold `role`: literally, through the org-role ladder
/// (owner ⊇ admin ⊇ developer ⊇ member), or because `org:owner` holds every role.
pub fn holds(roles: &[String], role: &str) -> bool {
    roles.iter().any(|r| r == role || r == "org:owner" || matches!((rank(r), rank(role)), (Some(a), Some(b)) if a <= b))
}

/// Whether granted roles cover `role` for scope narrowing: literally or down the org-role
/// ladder (an org:admin token may narrow to org:member), but not owner-holds-all, so a
/// scope can never name a role nobody was granted.
pub fn implies(granted: &[String], role: &str) -> bool {
    granted.iter().any(|r| r == role || matches!((rank(r), rank(role)), (Some(a), Some(b)) if a <= b))
}

/// The roles both sides hold: the roles of `wanted` that `holder` holds, plus the org roles
/// of `holder` that `wanted` implies down the ladder (a token with org:admin whose owner was
/// demoted to org:member still carries org:member).
pub fn intersect(wanted: &[String], holder: &[String]) -> Vec<String> {
    let mut out: Vec<String> = wanted
        .iter()
        .filter(|r| holds(holder, r))
        .chain(holder.iter().filter(|r| rank(r).is_some() && implies(wanted, r)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<String> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(invalid(field, format!("must be {min} to {max} characters")));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn role_ladder() {
        assert!(holds(&v(&["org:owner"]), "metrics:read"));
        assert!(holds(&v(&["org:admin"]), "org:member"));
        assert!(!holds(&v(&["org:admin"]), "org:owner"));
        assert!(!holds(&v(&["org:admin"]), "metrics:read"));
        assert!(!holds(&v(&["org:member"]), "org:developer"));
        assert_eq!(intersect(&v(&["a:b", "org:admin"]), &v(&["org:developer", "a:b"])), v(&["a:b", "org:developer"]));
        assert_eq!(intersect(&v(&["org:owner"]), &v(&["org:admin"])), v(&["org:admin"]));
        assert_eq!(intersect(&v(&["org:member"]), &v(&["org:owner"])), v(&["org:member"]));
        assert_eq!(intersect(&v(&["metrics:read"]), &v(&["org:owner"])), v(&["metrics:read"]));
        assert!(intersect(&v(&["metrics:read"]), &v(&["org:admin"])).is_empty());
    }
}
