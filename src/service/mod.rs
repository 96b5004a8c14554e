//! Business rules: synchronous, no HTTP. Each function takes a connection, the caller and
//! the current time, and runs its own transaction when it mutates. A function reads as
//! validate → authorise → store → audit → view: the SQL lives in `crate::store` (queries
//! beside their rows, every list through `store::page`), the rules and views here.
pub mod authz;
pub mod events;
pub mod list;
pub mod oauth;
pub mod org;
pub mod principals;
pub mod text;
pub mod tokens;

use crate::store::StoreError;

pub use authz::principal::{Acct, Principal};
pub use authz::roles::{Role, RoleName, RoleSet};

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

/// A point in time in a view: whole seconds, written on the wire as `clock::rfc3339` writes
/// it (`2026-11-25T10:00:00Z`), and read as that text (`Deref<Target = str>`). The OpenAPI
/// schema is the field's (`Timestamp::schema`, or `format = DateTime`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    secs: i64,
    text: String,
}

impl Timestamp {
    pub fn at(secs: i64) -> Timestamp {
        Timestamp { secs, text: crate::clock::rfc3339(secs) }
    }

    /// Seconds since the Unix epoch.
    pub fn secs(&self) -> i64 {
        self.secs
    }
}

impl Timestamp {
    /// The OpenAPI schema of a time as `clock::rfc3339` writes it.
    pub fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .description(Some("RFC 3339 UTC, whole seconds (e.g. 2026-11-25T10:00:00Z)."))
            .build()
    }
}

impl std::ops::Deref for Timestamp {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A closed vocabulary held as strings on the wire and in the database: the enums of
/// [`words!`] (statuses, kinds, the sort keys of each list).
pub trait Word: Copy + 'static {
    fn all() -> &'static [Self];
    fn as_str(self) -> &'static str;
}

/// `words!(/// doc  pub Name { Variant = "text", ... })`: an enum serialized as its texts,
/// with `ALL`, `as_str`, `parse`, its OpenAPI `schema()` and [`Word`].
macro_rules! words {
    ($(#[$m:meta])* $vis:vis $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        $vis enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|w| w.as_str() == s)
            }

            /// The OpenAPI schema: a string, one of [`Self::ALL`].
            pub fn schema() -> utoipa::openapi::Object {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some($name::ALL.iter().map(|w| w.as_str())))
                    .build()
            }
        }

        impl $crate::service::Word for $name {
            fn all() -> &'static [$name] {
                $name::ALL
            }
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use words;

pub use text::check_text;

/// A query parameter's schema made by a function, as a type for `#[param(value_type =
/// Option<T>, inline)]`: unlike `schema_with`, that keeps the parameter's doc comment as its
/// description.
macro_rules! param_schema {
    ($name:ident, $f:path) => {
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $f().into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use param_schema;

/// The OpenAPI schema of a string that is one of `values`.
pub fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_written_as_rfc3339_text() {
        let t = Timestamp::at(1_764_064_800);
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", crate::clock::rfc3339(1_764_064_800)));
        assert_eq!(&*t, "2025-11-25T10:00:00Z");
        assert_eq!(t.to_string(), "2025-11-25T10:00:00Z");
        assert_eq!(t.secs(), 1_764_064_800);
    }
}
