//! Assertions shared by every test module: each names the call site (`#[track_caller]`)
//! and prints the response with credentials redacted.
use serde_json::json;

use super::Resp;

/// Failure messages never show a credential: API tokens and client secrets (`tkd_…`) are
/// cut to their hint, JWTs (`eyJ…`) are dropped.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [rest.find("tkd_"), rest.find("eyJ")].into_iter().flatten().min();
        let Some(i) = next else { break };
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c))).unwrap_or(tail.len());
        let word = &tail[..end];
        if word.starts_with("eyJ") {
            out.push_str("eyJ…[redacted]");
        } else {
            let keep = word.rfind('_').map(|u| (u + 5).min(word.len())).unwrap_or(word.len());
            out.push_str(&word[..keep]);
            if keep < word.len() {
                out.push_str("…[redacted]");
            }
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `status`, and problem+json for any error.
#[track_caller]
pub fn status(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", redact(&r.text));
    if status >= 400 {
        assert!(is_problem(r), "{what}: error must be problem+json: {:?}", r.header("content-type"));
    }
}

pub fn is_problem(r: &Resp) -> bool {
    r.header("content-type").unwrap_or("").starts_with("application/problem+json")
}

/// An RFC 7807 problem with `status` (header, body status).
#[track_caller]
pub fn problem(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", redact(&r.text));
    assert!(is_problem(r), "{what}: problem+json expected: {:?}", r.header("content-type"));
    assert_eq!(r.body["status"], json!(status), "{what}: {}", redact(&r.text));
}

/// A 422 problem naming `field` in errors[] and as the detail's prefix.
#[track_caller]
pub fn invalid_field(r: &Resp, field: &str, what: &str) {
    problem(r, 422, what);
    let named = r.body["errors"].as_array().is_some_and(|e| e.iter().any(|x| x["field"] == json!(field)));
    assert!(named, "{what}: errors[] must name the field {field}: {}", redact(&r.text));
    let detail = r.body["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with(&format!("{field}: ")), "{what}: detail must start with '{field}: ': {detail}");
}

/// An RFC 6749 §5.2 error: status, `error`, a string `error_description`, no token.
#[track_caller]
pub fn oauth_error(r: &Resp, status: u16, error: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status} {error}: {}", redact(&r.text));
    assert_eq!(r.body["error"], json!(error), "{what}: {}", redact(&r.text));
    assert!(r.body["error_description"].is_string(), "{what}: error_description missing: {}", redact(&r.text));
    assert!(r.body.get("access_token").is_none(), "{what}: an error must not carry a token");
}

/// `400 invalid_grant`, the one answer to every failed credential check of a grant.
#[track_caller]
pub fn invalid_grant(r: &Resp, what: &str) {
    oauth_error(r, 400, "invalid_grant", what);
}
