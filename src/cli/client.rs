//! HTTP to a tokend server: JSON calls to `/api/v1` with the session's bearer, form posts
//! to `/oauth/token`. A refusal becomes a [`Failure`] carrying the server's own message
//! (problem+json `detail`, or OAuth `error_description`) and the exit code of its status.
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use super::exit::{self, Failure};
use super::store::Session;

/// Largest response body read.
const MAX_BODY: u64 = 4 << 20;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout(Duration::from_secs(60)).build()
}

/// `https://host` or `http://host[:port]`, without a trailing slash.
pub fn normalise_server(raw: &str) -> Result<String, Failure> {
    let s = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(s).map_err(|e| Failure::usage(format!("--server {s:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Failure::usage(format!("--server {s:?}: expected http(s)://HOST[:PORT]")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Failure::usage("--server must not carry credentials"));
    }
    Ok(s.to_string())
}

fn read_body(r: ureq::Response) -> (u16, Option<String>, String) {
    let status = r.status();
    let retry = r.header("retry-after").map(str::to_string);
    let mut body = String::new();
    let _ = r.into_reader().take(MAX_BODY).read_to_string(&mut body);
    (status, retry, body)
}

/// The server's words for a refusal.
fn message(status: u16, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(d) = v["detail"].as_str() {
        return d.to_string();
    }
    match (v["error"].as_str(), v["error_description"].as_str()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        _ if !body.trim().is_empty() && body.len() < 300 && !body.trim_start().starts_with('<') => {
            body.trim().to_string()
        }
        _ => format!("HTTP {status}"),
    }
}

fn refusal(server: &str, status: u16, retry: Option<String>, body: &str, session: bool) -> Failure {
    let msg = message(status, body);
    match status {
        401 if session => Failure::auth(format!(
            "{server} refused the session ({msg}): it expired or was signed out; run `tokend login --server {server}`"
        )),
        401 => Failure::auth(msg),
        403 => Failure::new(exit::FORBIDDEN, format!("permission denied: {msg}")),
        404 => Failure::new(exit::NOT_FOUND, format!("not found: {msg}")),
        429 => Failure::error(format!("{msg} (retry after {} s)", retry.as_deref().unwrap_or("a few"))),
        _ => Failure::error(msg),
    }
}

fn transport(server: &str, e: &ureq::Transport) -> Failure {
    Failure::new(exit::UNREACHABLE, format!("cannot reach {server}: {e}"))
}

/// A management-API call with the session's bearer; answers the JSON body (Null for 204).
pub fn api(s: &Session, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
    let url = format!("{}/api/v1{path}", s.server);
    let req = agent().request(method, &url).set("Authorization", &format!("Bearer {}", s.access_token));
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(&b.to_string()),
        None => req.call(),
    };
    match r {
        Ok(r) => {
            let (_, _, text) = read_body(r);
            Ok(if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) })
        }
        Err(ureq::Error::Status(_, r)) => {
            let (status, retry, text) = read_body(r);
            Err(refusal(&s.server, status, retry, &text, true))
        }
        Err(ureq::Error::Transport(t)) => Err(transport(&s.server, &t)),
    }
}

/// `POST /api/v1/login`; answers the JSON body.
pub fn login(server: &str, email: &str, password: &str) -> Result<Value, Failure> {
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    match agent().post(&format!("{server}/api/v1/login")).set("Content-Type", "application/json").send_string(&body) {
        Ok(r) => {
            let (_, _, text) = read_body(r);
            serde_json::from_str(&text).map_err(|_| Failure::error(format!("{server} answered the login with no JSON")))
        }
        Err(ureq::Error::Status(_, r)) => {
            let (status, retry, text) = read_body(r);
            Err(refusal(server, status, retry, &text, false))
        }
        Err(ureq::Error::Transport(t)) => Err(transport(server, &t)),
    }
}

/// `POST /oauth/token` with a form; answers the JSON body.
pub fn token(server: &str, form: &[(&str, &str)]) -> Result<Value, Failure> {
    match agent().post(&format!("{server}/oauth/token")).send_form(form) {
        Ok(r) => {
            let (_, _, text) = read_body(r);
            serde_json::from_str(&text)
                .map_err(|_| Failure::error(format!("{server} answered the exchange with no JSON")))
        }
        Err(ureq::Error::Status(_, r)) => {
            let (status, retry, text) = read_body(r);
            let mut f = refusal(server, status, retry, &text, false);
            // invalid_grant: the API token is unknown, expired or revoked.
            if status == 400 && f.message.starts_with("invalid_grant") {
                f.code = exit::AUTH;
            }
            Err(f)
        }
        Err(ureq::Error::Transport(t)) => Err(transport(server, &t)),
    }
}
