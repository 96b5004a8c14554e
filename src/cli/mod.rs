//! The user's own command line: `tokend login`, `tokend token …`, `tokend service-account …`,
//! `tokend app …`, and the operator's `tokend leaks check`. Part of the binary, not of the
//! library: it speaks the public HTTP API (`client`) like any other client, and keeps its
//! session and cached access tokens in a private directory (`store`).
//!
//! Exit codes (see [`exit`]) are the same for every command.
pub mod apps;
pub mod client;
pub mod exit;
pub mod leaks;
pub mod login;
pub mod store;
pub mod tokens;

use std::io::{IsTerminal, Read};

pub use exit::Failure;

/// Output format of commands that print records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human-readable text (tables for lists).
    #[default]
    Text,
    /// The server's JSON, unchanged.
    Json,
}

/// Upper bound on a secret read from standard input.
const MAX_STDIN: u64 = 64 << 10;

/// Reads a secret from standard input (first line, trimmed). Refuses a terminal unless
/// `prompt` is given (then the secret is typed without echo).
pub fn secret_from_stdin(what: &str, prompt: Option<&str>) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let Some(p) = prompt else {
            return Err(Failure::usage(format!(
                "no {what} on standard input (pipe it in; never pass it as an argument)"
            )));
        };
        return rpassword::prompt_password(p).map_err(|e| Failure::error(format!("reading the {what}: {e}")));
    }
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::error(format!("reading the {what} from standard input: {e}")))?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(Failure::usage(format!("the {what} on standard input is longer than {MAX_STDIN} bytes")));
    }
    let text = String::from_utf8(buf).map_err(|_| Failure::usage(format!("the {what} is not UTF-8")))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(Failure::usage(format!("no {what} on standard input")));
    }
    Ok(line)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
