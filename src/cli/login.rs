//! `tokend login`, `tokend logout`, `tokend whoami`.
//!
//! Login asks for the password without echo (or reads it from standard input with
//! `--password-stdin`) and posts it to `/api/v1/login`, the contract's sign-in. A device-code
//! flow was the alternative; it needs new server routes and a console page for approving
//! codes, while the password prompt uses what every tokend already serves and gives the same
//! result (an interactive session, `amr: pwd`, which creating tokens requires). The password
//! is sent once and never written anywhere; the session file holds the access token the
//! server answered and its expiry.
use clap::Args;

use super::store::{self, Session};
use super::{client, secret_from_stdin, Failure};

#[derive(Args)]
pub struct LoginArgs {
    /// The tokend server, e.g. https://tokend.example.com.
    #[arg(long, env = "TOKEND_SERVER")]
    pub server: String,
    /// Your email address (asked for when not given).
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from standard input (first line) instead of prompting: for
    /// scripts. Never pass a password as an argument.
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn login(a: &LoginArgs) -> Result<(), Failure> {
    let server = client::normalise_server(&a.server)?;
    let email = match &a.email {
        Some(e) => e.trim().to_string(),
        None if a.password_stdin => return Err(Failure::usage("--password-stdin needs --email")),
        None => {
            eprint!("Email: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| Failure::error(format!("reading the email: {e}")))?;
            line.trim().to_string()
        }
    };
    if email.is_empty() {
        return Err(Failure::usage("an email address is required"));
    }
    let password = if a.password_stdin {
        secret_from_stdin("password", None)?
    } else {
        secret_from_stdin("password", Some(&format!("Password for {email} on {server}: ")))?
    };
    let answer = client::login(&server, &email, &password)?;
    drop(password);
    let (Some(token), Some(ttl)) = (answer["access_token"].as_str(), answer["expires_in"].as_i64()) else {
        return Err(Failure::error(format!("{server} answered the login without access_token/expires_in")));
    };
    let session = Session {
        server: server.clone(),
        email: email.clone(),
        access_token: token.to_string(),
        expires_at: super::now() + ttl,
    };
    let path = store::save_session(&session)?;
    eprintln!(
        "Signed in to {server} as {email}; the session lasts until {} (stored in {}).",
        tokend::clock::rfc3339(session.expires_at),
        path.display()
    );
    Ok(())
}

/// Ends the session on the server (when it is still live) and forgets it here.
pub fn logout() -> Result<(), Failure> {
    if let Some(s) = store::load_session()? {
        if s.expires_at > super::now() {
            match client::api(&s, "POST", "/logout", None) {
                // Already ended on the server: forgetting it here is all that is left.
                Ok(_) | Err(Failure { code: super::exit::AUTH, .. }) => {}
                Err(f) => eprintln!("tokend: warning: the server did not end the session: {}", f.message),
            }
        }
    }
    store::forget()?;
    eprintln!("Signed out.");
    Ok(())
}

pub fn whoami(output: super::Output) -> Result<(), Failure> {
    let s = store::live_session()?;
    let me = client::api(&s, "GET", "/me", None)?;
    if output == super::Output::Json {
        println!("{me}");
        return Ok(());
    }
    let roles: Vec<&str> =
        me["roles"].as_array().map(|a| a.iter().filter_map(|r| r.as_str()).collect()).unwrap_or_default();
    println!(
        "{} on {} (org {}), roles: {}",
        me["email"].as_str().unwrap_or(""),
        s.server,
        me["org_id"].as_str().or(me["org"].as_str()).unwrap_or(""),
        roles.join(" ")
    );
    println!("session valid until {}", tokend::clock::rfc3339(s.expires_at));
    Ok(())
}
