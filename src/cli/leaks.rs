//! `tokend leaks check`: an operator pastes a suspected secret (standard input only) and,
//! if it is a live credential, it is revoked exactly as a signed leak report would revoke it
//! (reason `leak_report`, the URL in the audit row, the `token.revoked` event and the emails,
//! delivered by the running server's worker). Works on the database, like `tokend org create`.
use clap::{Args, Subcommand};
use tokend::clock::{Clock, SystemClock};
use tokend::config::{Config, ConfigArgs};
use tokend::service::tokens::leaks::{self, Sighting};
use tokend::store::Db;

use super::{exit, secret_from_stdin, Failure};

#[derive(Subcommand)]
pub enum LeaksCmd {
    /// Read a suspected secret from standard input; revoke it if it is a live credential.
    /// Exit 0: it was live and is now revoked. Exit 5: not a live credential (nothing
    /// changed; unknown, revoked, expired and malformed secrets are not told apart).
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Where the secret was found (kept in the audit row and sent in the notifications).
    #[arg(long, default_value = "")]
    pub url: String,
    /// What kind of place that is (e.g. `content`, `commit`, `paste`).
    #[arg(long, default_value = "operator")]
    pub source: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(cmd: LeaksCmd) -> Result<(), Failure> {
    let LeaksCmd::Check(a) = cmd;
    let cfg = Config::from_args(&a.config).map_err(|e| Failure::usage(format!("configuration error: {e}")))?;
    let secret = secret_from_stdin("suspected secret", Some("Suspected secret (not echoed): "))?;
    let db = Db::connect(&cfg.database_url, 1).map_err(|e| Failure::error(e.to_string()))?;
    let mut conn = db.write().map_err(|e| Failure::error(e.to_string()))?;
    let seen = Sighting { url: a.url, source: a.source, kind: "operator".into(), reporter: "operator".into() };
    let live = leaks::report(&mut conn, &secret, &seen, None, SystemClock.now());
    drop(conn);
    db.settle();
    let live = live.map_err(|e| Failure::error(e.to_string()))?;
    if live {
        println!("revoked: it was a live tokend credential; its owner is notified");
        Ok(())
    } else {
        Err(Failure::new(exit::NOT_FOUND, "not a live tokend credential; nothing changed"))
    }
}
