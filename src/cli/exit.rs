//! Exit codes of every `tokend` client command (the README lists them):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (`leaks check`: the secret was live and is now revoked) |
//! | 1 | the server refused the request (its message is printed), or a local error |
//! | 2 | usage or configuration error (bad flag, missing input) |
//! | 3 | not signed in: no session, session expired or ended, wrong email or password, API token refused |
//! | 4 | permission denied: the session lacks the role (HTTP 403) |
//! | 5 | not found (HTTP 404; `leaks check`: the secret is not a live credential) |
//! | 6 | the server could not be reached |
use std::process::ExitCode;

pub const ERROR: u8 = 1;
pub const USAGE: u8 = 2;
pub const AUTH: u8 = 3;
pub const FORBIDDEN: u8 = 4;
pub const NOT_FOUND: u8 = 5;
pub const UNREACHABLE: u8 = 6;

/// A command that failed: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
    pub fn error(message: impl Into<String>) -> Failure {
        Failure::new(ERROR, message)
    }
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(USAGE, message)
    }
    pub fn auth(message: impl Into<String>) -> Failure {
        Failure::new(AUTH, message)
    }
}

/// Prints a failure (`tokend: error: …`) and answers its exit code.
pub fn finish(r: Result<(), Failure>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tokend: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
