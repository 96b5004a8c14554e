//! Names and descriptions: text a client sends that validates on construction and carries
//! its OpenAPI schema. A request type with a `Name` field cannot hold an unchecked name;
//! a JSON body that does not fit fails while it is parsed, with the field named (the `Obj`
//! extractor turns serde's path into the same 422 the service's `invalid` gives).
//!
//! The rule (`check`): trimmed, `MIN` to `MAX` characters (Unicode scalar values), no
//! control characters. `check_text` applies it to text that is not one of these types
//! (a trust policy's issuer and audience, an organization's name).
use std::borrow::Cow;
use std::fmt;

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::service::{invalid, Result};

/// No control characters (what `check` refuses).
pub const NO_CONTROL: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters and at least one character that is not whitespace (what `check`
/// with a minimum of 1 accepts after trimming).
pub const NOT_BLANK: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$";

/// Why a text was refused; its `Display` is the message a client reads after the field
/// name ("name: must be 1 to 100 characters").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    Length { min: usize, max: usize },
    Control,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Length { min, max } => write!(f, "must be {min} to {max} characters"),
            TextError::Control => f.write_str("must not contain control characters"),
        }
    }
}

impl std::error::Error for TextError {}

/// The text rule: `value` trimmed, `min` to `max` characters, no control characters.
pub fn check(value: &str, min: usize, max: usize) -> std::result::Result<String, TextError> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(TextError::Length { min, max });
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(TextError::Control);
    }
    Ok(v.to_string())
}

/// `check`, refused as a 422 naming `field`.
pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<String> {
    check(value, min, max).map_err(|e| invalid(field, e.to_string()))
}

/// A schema's `minLength`: none for 0.
fn at_least(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

/// A validated text type: `$name` holds `$min` to `$max` characters (trimmed, no control
/// characters); `TryFrom<String>`, serde (through `TryFrom`), `parse` for a named field,
/// `Deref<Target = str>`, and the OpenAPI schema `$name` in the document's components.
macro_rules! text {
    ($(#[$doc:meta])* $name:ident, $min:literal, $max:literal, $pattern:expr, $describe:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            pub const MIN: usize = $min;
            pub const MAX: usize = $max;

            /// `value` as this type, or a 422 naming `field`.
            pub fn parse(field: &str, value: &str) -> Result<Self> {
                check_text(field, value, $min, $max).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(value: String) -> std::result::Result<Self, TextError> {
                check(&value, $min, $max).map($name)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = TextError;
            fn try_from(value: &str) -> std::result::Result<Self, TextError> {
                check(value, $min, $max).map($name)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(at_least($min))
                    .max_length(Some($max))
                    .pattern(Some($pattern))
                    .description(Some($describe))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

text!(
    /// The name of an API token, service account, app, saved search or trust policy.
    Name, 1, 100, NOT_BLANK, "Trimmed; 1-100 characters, no control characters."
);
text!(
    /// A person's name.
    PersonName, 1, 200, NOT_BLANK, "Trimmed; 1-200 characters, no control characters."
);
text!(
    /// The description of a token, service account, app, role, webhook or trust policy
    /// (default empty).
    #[derive(Default)]
    Description, 0, 1000, NO_CONTROL,
    "Trimmed; at most 1000 characters, no control characters. Default empty."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_validates_and_trims() {
        assert_eq!(Name::try_from("  a b ").unwrap().as_str(), "a b");
        assert_eq!(Name::try_from("").unwrap_err().to_string(), "must be 1 to 100 characters");
        assert_eq!(Name::try_from("   ").unwrap_err(), TextError::Length { min: 1, max: 100 });
        assert_eq!(Name::try_from("a\u{7}b").unwrap_err().to_string(), "must not contain control characters");
        assert!(Name::try_from("x".repeat(100)).is_ok());
        assert!(Name::try_from("x".repeat(101)).is_err());
        assert!(PersonName::try_from("é".repeat(200)).is_ok());
        assert!(Description::try_from("").is_ok());
        assert!(Description::try_from("x".repeat(1001)).is_err());
    }

    #[test]
    fn serde_refuses_what_construction_refuses() {
        let e = serde_json::from_value::<Name>(serde_json::json!("")).unwrap_err();
        assert_eq!(e.to_string(), "must be 1 to 100 characters");
        let e = serde_json::from_value::<Name>(serde_json::json!(5)).unwrap_err();
        assert!(e.to_string().starts_with("invalid type: integer `5`, expected a string"), "{e}");
        assert_eq!(serde_json::from_value::<Description>(serde_json::json!(" d ")).unwrap().as_str(), "d");
    }

    #[test]
    fn parse_names_the_field() {
        let e = Name::parse("name", "").unwrap_err();
        assert_eq!(e.to_string(), invalid("name", "must be 1 to 100 characters").to_string());
    }
}
