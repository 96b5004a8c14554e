//! The `tokend` command: serve (default), migrate, org, keys, verify, leaks (operators, on
//! the database); login, logout, whoami, token, service-account, app (people, over HTTP;
//! `cli`); completions.
mod cli;

use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokend::clock::{Clock, SystemClock};
use tokend::config::{Config, ConfigArgs, MAX_ACCESS_TOKEN_TTL};
use tokend::keys::KeyRing;
use tokend::store::Db;

#[derive(Parser)]
#[command(name = "tokend", version, about = "OAuth2 token exchange authorization server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log lines as `text` (the default) or `json` (one object per line).
    #[arg(long, global = true, env = "TOKEND_LOG_FORMAT", hide_env_values = true, default_value = "text")]
    log_format: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (the default); migrates the database first.
    Serve(ConfigArgs),
    /// Apply pending migrations and exit.
    Migrate(ConfigArgs),
    /// Organizations.
    Org {
        #[command(subcommand)]
        cmd: OrgCmd,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Verify an access token (read from standard input) offline and print its claims.
    ///
    /// Checks what a resource server must: typ at+jwt, the algorithm of the key (ES256,
    /// EdDSA or RS256), iss (TOKEND_ISSUER), aud, exp and nbf. Never creates keys.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        /// The audience the token must carry.
        #[arg(long)]
        audience: String,
        /// Verify against this JWKS URL (http or https) instead of the local key directory.
        #[arg(long)]
        jwks: Option<String>,
        /// Refused: a token on the command line is visible to other users and kept in shell
        /// history. Caught here so that the refusal does not repeat it.
        #[arg(hide = true, num_args = 0..)]
        stray: Vec<String>,
    },
    /// Leak reports, for operators: revoke a suspected leaked secret (on the database).
    Leaks {
        #[command(subcommand)]
        cmd: cli::leaks::LeaksCmd,
    },
    /// Sign in to a tokend server; stores the session (never the password) privately.
    Login(cli::login::LoginArgs),
    /// End the session on the server and forget it (and cached access tokens) here.
    Logout,
    /// Who the session is: email, org, roles, until when.
    Whoami {
        #[arg(long, value_enum, default_value_t)]
        output: cli::Output,
    },
    /// Your API tokens (or a service account's), and using one from scripts.
    Token {
        #[command(subcommand)]
        cmd: cli::tokens::TokenCmd,
    },
    /// Service accounts (org:admin).
    #[command(name = "service-account", alias = "sa")]
    ServiceAccount {
        #[command(subcommand)]
        cmd: cli::apps::ServiceAccountCmd,
    },
    /// Apps: server-to-server OAuth clients (org:admin or org:developer).
    App {
        #[command(subcommand)]
        cmd: cli::apps::AppCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum OrgCmd {
    /// Create an organization and its owner; prints JSON with the owner's credentials.
    Create {
        name: String,
        #[arg(long)]
        owner_email: String,
        /// Read the owner's password from standard input instead of generating one.
        #[arg(long)]
        owner_password_stdin: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// List keys with their status.
    List(ConfigArgs),
    /// Add a key: published now, signing after TOKEND_KEY_PUBLISH_DELAY.
    Rotate {
        /// Add this key (PEM: PKCS#8, or PKCS#1 for RSA) instead of generating one; how
        /// RS256 keys are rotated (tokend does not generate RSA keys).
        #[arg(long, value_name = "FILE")]
        key_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Stop publishing a key once the tokens it signed have expired.
    Retire {
        /// Key id; base64url, so it may start with '-'.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire even though tokens it signed may still be valid.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tokend: error: {msg}");
    ExitCode::from(1)
}

fn config(a: &ConfigArgs) -> Result<Config, ExitCode> {
    Config::from_args(a).map_err(|e| {
        eprintln!("tokend: configuration error: {e}");
        ExitCode::from(2)
    })
}

macro_rules! tryx {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

fn main() -> ExitCode {
    // `tokend` alone, or `tokend --flag …`, means `tokend serve …`.
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() == 1 || args[1].starts_with("--") && !matches!(args[1].as_str(), "--help" | "--version") {
        args.insert(1, "serve".into());
    }
    let cli = Cli::parse_from(args);
    let Some(log_format) = tokend::logging::Format::parse(&cli.log_format) else {
        eprintln!("tokend: configuration error: TOKEND_LOG_FORMAT (--log-format) must be text or json");
        return ExitCode::from(2);
    };
    tokend::logging::init(log_format);
    match cli.cmd {
        Cmd::Serve(a) => serve(tryx!(config(&a))),
        Cmd::Migrate(a) => {
            let cfg = tryx!(config(&a));
            match Db::connect(&cfg.database_url, 1).and_then(|db| db.migrate()) {
                Ok(n) => {
                    println!("applied {n} migration(s)");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Cmd::Org { cmd: OrgCmd::Create { name, owner_email, owner_password_stdin, config: a } } => {
            let cfg = tryx!(config(&a));
            let password = if owner_password_stdin {
                let mut s = String::new();
                if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                    return fail(format!("reading the password from stdin: {e}"));
                }
                Some(s.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let db = match Db::connect(&cfg.database_url, 1) {
                Ok(db) => db,
                Err(e) => return fail(e),
            };
            if let Err(e) = db.migrate() {
                return fail(e);
            }
            let result = db.write().map_err(tokend::service::Error::from).and_then(|mut c| {
                tokend::service::org::orgs::create(&mut c, &name, &owner_email, password, SystemClock.now())
            });
            match result {
                Ok(created) => {
                    println!("{}", serde_json::to_string(&created).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Cmd::Keys { cmd } => keys(cmd),
        Cmd::Verify { config: a, audience, jwks, stray } => {
            if !stray.is_empty() {
                use clap::CommandFactory;
                let mut cli = Cli::command();
                cli.build();
                cli.find_subcommand_mut("verify")
                    .expect("the verify subcommand")
                    .error(
                        clap::error::ErrorKind::UnknownArgument,
                        "unexpected positional argument: `tokend verify` reads the token from standard input, never from the command line",
                    )
                    .exit();
            }
            let cfg = tryx!(config(&a));
            verify(&cfg, &audience, jwks.as_deref())
        }
        Cmd::Leaks { cmd } => cli::exit::finish(cli::leaks::run(cmd)),
        Cmd::Login(a) => cli::exit::finish(cli::login::login(&a)),
        Cmd::Logout => cli::exit::finish(cli::login::logout()),
        Cmd::Whoami { output } => cli::exit::finish(cli::login::whoami(output)),
        Cmd::Token { cmd } => cli::exit::finish(cli::tokens::run(cmd)),
        Cmd::ServiceAccount { cmd } => cli::exit::finish(cli::apps::run_service_account(cmd)),
        Cmd::App { cmd } => cli::exit::finish(cli::apps::run_app(cmd)),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tokend", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// A key error: RS256 without an RSA key to use is a configuration error (exit 2), the
/// others exit 1.
fn key_fail(e: tokend::keys::KeyError) -> ExitCode {
    match e {
        tokend::keys::KeyError::RsaKeyNeeded(msg) => {
            eprintln!("tokend: configuration error: {msg}");
            ExitCode::from(2)
        }
        e => fail(e),
    }
}

fn keys(cmd: KeysCmd) -> ExitCode {
    let (a, action) = match &cmd {
        KeysCmd::List(a) => (a, "list"),
        KeysCmd::Rotate { config, .. } => (config, "rotate"),
        KeysCmd::Retire { config, .. } => (config, "retire"),
    };
    let cfg = tryx!(config(a));
    let now = SystemClock.now();
    // A key file to rotate to is read first: a typo in its path changes nothing.
    let key_file = match &cmd {
        KeysCmd::Rotate { key_file: Some(path), .. } => match std::fs::read(path) {
            Ok(bytes) => Some((path.display().to_string(), bytes)),
            Err(e) => return fail(format!("key file {}: {e}", path.display())),
        },
        _ => None,
    };
    let ring = match KeyRing::open(&cfg.keys_dir, cfg.signing_alg, cfg.key_publish_delay, now) {
        Ok(r) => r,
        Err(e) => return key_fail(e),
    };
    let result = match (action, &cmd) {
        ("rotate", _) => match &key_file {
            Some((name, bytes)) => ring.rotate_to(name, bytes, now),
            None => ring.rotate(now),
        }
        .map(|m| {
            println!(
                "{}",
                serde_json::json!({"kid": m.kid, "alg": m.alg.as_str(), "published_at": tokend::clock::rfc3339(now), "signs_from": tokend::clock::rfc3339(m.activates_at)})
            )
        }),
        ("retire", KeysCmd::Retire { kid, force, .. }) => {
            ring.retire(kid, now, MAX_ACCESS_TOKEN_TTL, *force).map(|_| println!("retired {kid}"))
        }
        _ => ring.list(now).map(|l| {
            for k in l {
                println!(
                    "{}\t{}\t{}\tsigns_from={}",
                    k.kid,
                    k.alg,
                    k.status,
                    tokend::clock::rfc3339(k.activates_at)
                );
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => key_fail(e),
    }
}

/// Upper bound on a token read from stdin and on a fetched JWKS document.
const MAX_TOKEN: u64 = 64 << 10;
const MAX_JWKS: u64 = 1 << 20;

fn fetch_jwks(url: &str) -> Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .build();
    // ureq's errors name the URL.
    let resp = agent.get(url).call().map_err(|e| format!("fetching the JWKS: {e}"))?;
    let mut body = Vec::new();
    resp.into_reader().take(MAX_JWKS + 1).read_to_end(&mut body).map_err(|e| format!("reading {url}: {e}"))?;
    if body.len() as u64 > MAX_JWKS {
        return Err(format!("{url}: the JWKS document is larger than {MAX_JWKS} bytes"));
    }
    Ok(body)
}

fn verify(cfg: &Config, audience: &str, jwks_url: Option<&str>) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_TOKEN + 1).read_to_end(&mut input) {
        return fail(format!("reading the token from standard input: {e}"));
    }
    if input.len() as u64 > MAX_TOKEN {
        return fail(format!("token rejected: longer than {MAX_TOKEN} bytes"));
    }
    let token = match std::str::from_utf8(&input) {
        Ok(t) => t.trim(),
        Err(_) => return fail("token rejected: malformed token"),
    };
    if token.is_empty() {
        return fail("token rejected: no token on standard input (usage: tokend verify --audience A < FILE)");
    }
    let jwks: Vec<u8> = match jwks_url {
        Some(url) => match fetch_jwks(url) {
            Ok(body) => body,
            Err(e) => return fail(e),
        },
        // Read-only: a verifier must never create a signing key.
        None => match tokend::keys::published_jwks(&cfg.keys_dir) {
            Ok(body) => body,
            Err(e) => return fail(e),
        },
    };
    match tokend::jwt::verify_with_jwks(&jwks, token, &cfg.issuer, Some(audience)) {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(&claims).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("token rejected: {e}")),
    }
}

fn serve(mut cfg: Config) -> ExitCode {
    let started = std::time::Instant::now();
    let bind = cfg.bind;
    let listener = match TcpListener::bind(bind) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {bind} (TOKEND_BIND): {e}")),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(format!("cannot read the address bound for {bind} (TOKEND_BIND): {e}")),
    };
    // TOKEND_BIND=…:0 lets the system pick a free port; URLs naming port 0 (an issuer of
    // `http://127.0.0.1:0`, and what is derived from it) mean the port actually bound.
    if bind.port() == 0 {
        with_bound_port(&mut cfg, addr.port());
    }
    // On a fresh database boot() writes the owner's first credentials to a private file and
    // logs its path: they never go to stdout or the log.
    let (state, _first_credentials) = match tokend::boot(cfg, Arc::new(SystemClock)) {
        Ok(v) => v,
        Err(tokend::BootError::Keys(e)) => return key_fail(e),
        Err(e) => return fail(e),
    };
    let maintenance = tokend::app::spawn_maintenance(state.clone());
    let system = actix_web::rt::System::new();
    let result = system.block_on(async {
        let server = tokend::http::server(state.clone(), listener)?;
        log::info!("tokend listening on http://{addr} (issuer {}), ready in {:?}", state.cfg.issuer, started.elapsed());
        // Also on stdout, whatever RUST_LOG says: whoever started it with port 0 learns the
        // port here (one line; nothing secret is ever printed).
        println!("tokend listening on http://{addr}");
        server.await
    });
    state.stop();
    let _ = maintenance.join();
    state.flush_usage();
    state.flush_refused(true);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Rewrites URLs of the configuration whose authority ends in `:0` to name `port`.
fn with_bound_port(cfg: &mut Config, port: u16) {
    let fix = |url: &mut String| {
        let Some((scheme, rest)) = url.split_once("://") else { return };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(host) = authority.strip_suffix(":0") {
            *url = format!("{scheme}://{host}:{port}{path}");
        }
    };
    fix(&mut cfg.issuer);
    fix(&mut cfg.api_audience);
    cfg.audiences.iter_mut().for_each(fix);
    cfg.service_only_audiences.iter_mut().for_each(fix);
}
