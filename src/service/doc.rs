//! OpenAPI schemas of the service's field rules that a Rust type alone does not say (text
//! limits, role names, enums held as strings). Used with `#[schema(schema_with = ...)]` on
//! the request and view types, next to the rule they describe (`check_text`, `valid_name`,
//! `check_password`, ...), so the document and the validation are read in one place.
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Array, Object};

/// No control characters (what `check_text` refuses).
pub const NO_CONTROL: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters and at least one character that is not whitespace (what
/// `check_text` with a minimum of 1 accepts after trimming).
pub const NOT_BLANK: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$";
/// A role name (`roles::valid_name`).
pub const ROLE: &str = r"^[a-z][a-z0-9_.-]*:[a-z0-9_.*-]+$";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn name(max: usize) -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK))
        .description(Some(format!("Trimmed; 1-{max} characters, no control characters.")))
        .build()
}

/// `check_text(name, 1, 100)`: names of tokens, apps, service accounts, saved searches.
pub fn name_100() -> Object {
    name(100)
}

/// `check_text(name, 1, 200)`: a person's name.
pub fn name_200() -> Object {
    name(200)
}

/// `check_text(description, 0, 1000)`.
pub fn description() -> Object {
    string()
        .max_length(Some(1000))
        .pattern(Some(NO_CONTROL))
        .description(Some("Trimmed; at most 1000 characters, no control characters. Default empty."))
        .build()
}

/// One role name.
pub fn role() -> Object {
    string().pattern(Some(ROLE)).max_length(Some(100)).build()
}

/// A list of role names.
pub fn roles() -> Array {
    ArrayBuilder::new().items(role()).build()
}

/// The roles of a new principal.
pub fn roles_granted() -> Array {
    ArrayBuilder::new()
        .items(role())
        .description(Some("Each must be catalogued and held by the caller (422); org:owner only by an owner (403)."))
        .build()
}

/// A principal's new role list.
pub fn roles_replaced() -> Array {
    ArrayBuilder::new()
        .items(role())
        .description(Some(
            "The full new role list; every role added or removed must be grantable by the caller (org:owner only \
             by an owner).",
        ))
        .build()
}

/// The roles of a new API token: at least one.
pub fn roles_of_token() -> Array {
    ArrayBuilder::new()
        .items(role())
        .min_items(Some(1))
        .description(Some(
            "The roles this token carries, each held by the caller. Required for a personal token (nothing is \
             granted implicitly); for a service-account token a subset of the account's roles, default all of them.",
        ))
        .build()
}

/// A role name that does not start with `org:` (the left part is not `org`), without
/// look-ahead so that every schema-based generator can use it.
pub const NEW_ROLE: &str = r"^([a-np-z][a-z0-9_.-]*|o([a-qs-z0-9_.-][a-z0-9_.-]*)?|or([a-fh-z0-9_.-][a-z0-9_.-]*)?|org[a-z0-9_.-]+):[a-z0-9_.*-]+$";

/// A new role's name: a role name that does not start with `org:`.
pub fn new_role_name() -> Object {
    string()
        .pattern(Some(NEW_ROLE))
        .max_length(Some(100))
        .description(Some("e.g. metrics:read; must not start with org:."))
        .build()
}

/// A new user's email as sent (`users::normalize_email`).
pub fn email() -> Object {
    string()
        .max_length(Some(254))
        .pattern(Some(r"^\s*[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+\s*$"))
        .description(Some(
            "At most 254 characters as sent; then trimmed and lower-cased: one @ with text on both sides, no \
             whitespace or control characters inside, at most 254 bytes. Unique among the org's undeleted users (409).",
        ))
        .build()
}

/// A new password (`users::check_password`).
pub fn new_password() -> Object {
    string().min_length(Some(8)).max_length(Some(1024)).build()
}

/// A time as `clock::rfc3339` writes it.
pub fn time() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339 UTC, whole seconds (e.g. 2026-11-25T10:00:00Z)."))
        .build()
}

/// A string that is one of `values`.
pub fn one_of(values: &[&str]) -> Object {
    string().enum_values(Some(values.iter().copied())).build()
}

/// `tokens::status`, and `owner_disabled` (`tokens::owner_status`): active itself, but its
/// owner (the person or service account) is disabled, so the exchange refuses it.
pub fn token_status() -> Object {
    one_of(&["active", "expired", "revoked", "idle", "owner_disabled"])
}

/// Owner kinds of API tokens.
pub fn owner_kind() -> Object {
    one_of(&["user", "service_account"])
}

/// The events of a webhook (`webhooks::check_events`).
pub fn webhook_events() -> Array {
    ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("WebhookEvent"))
        .min_items(Some(1))
        .description(Some("The events to deliver, at least one (stored sorted, duplicates dropped)."))
        .build()
}

/// The outcome of a delivery attempt.
pub fn delivery_outcome() -> Object {
    one_of(&["success", "failure"])
}

/// The event type of a test delivery.
pub fn test_event() -> Object {
    one_of(&[crate::service::events::EventKind::WebhookTest.as_str()])
}
