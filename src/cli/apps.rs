//! `tokend app …` (server-to-server OAuth clients; org:admin or org:developer) and
//! `tokend service-account list` (org:admin; their tokens are `tokend token … --service-account ID`).
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::store;
use super::tokens::{enc, print_table};
use super::{client, Failure, Output};

#[derive(Subcommand)]
pub enum AppCmd {
    /// List the org's apps.
    List(OutputArgs),
    /// Create an app; prints its client id and, once, its client secret.
    Create(AppCreateArgs),
    /// Regenerate an app's client secret: prints the new one once; the old one stops
    /// working now (or after `--grace` seconds).
    Secret(AppSecretArgs),
    /// Delete an app: its secret and access tokens stop working now.
    Delete(AppIdArgs),
}

#[derive(Subcommand)]
pub enum ServiceAccountCmd {
    /// List the org's service accounts.
    List(OutputArgs),
}

#[derive(Args)]
pub struct OutputArgs {
    /// `text` or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct AppCreateArgs {
    #[arg(long)]
    pub name: String,
    /// What it is for.
    #[arg(long)]
    pub description: Option<String>,
    /// A role the app holds (repeat for several).
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub roles: Vec<String>,
    /// Lifetime of its access tokens, in seconds (default: the server's).
    #[arg(long, value_name = "SECONDS")]
    pub access_token_ttl: Option<i64>,
    /// May also get tokens for the management API.
    #[arg(long)]
    pub management: bool,
    /// `text` or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct AppSecretArgs {
    /// The app's id (from `tokend app list`).
    pub id: String,
    /// Seconds the old secret keeps working beside the new one (0 to 604800).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub grace: i64,
    /// `text` or `json` (the server's answer).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct AppIdArgs {
    /// The app's id (from `tokend app list`).
    pub id: String,
}

fn list_of(path: &str, output: Output, head: &[&str; 4], cols: [&str; 4]) -> Result<(), Failure> {
    let s = store::live_session()?;
    let v = client::api(&s, "GET", &format!("{path}?page_size=200"), None)?;
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if output == Output::Json {
        println!("{}", Value::Array(items));
        return Ok(());
    }
    let rows: Vec<[String; 4]> = items
        .iter()
        .map(|a| {
            cols.map(|k| match &a[k] {
                Value::String(s) => s.clone(),
                Value::Array(r) => r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
        })
        .collect();
    print_table(head, &rows);
    Ok(())
}

fn print_app_secret(v: &Value, output: Output, verb: &str) -> Result<(), Failure> {
    let Some(secret) = v["client_secret"].as_str() else {
        return Err(Failure::error("the server's answer carries no client secret"));
    };
    if output == Output::Json {
        println!("{v}");
        return Ok(());
    }
    eprintln!(
        "{verb} app \"{}\" (id {}, client id {}). The client secret below is shown once: store it now.",
        v["name"].as_str().unwrap_or(""),
        v["id"].as_str().unwrap_or(""),
        v["client_id"].as_str().unwrap_or("")
    );
    println!("{secret}");
    Ok(())
}

pub fn run_app(cmd: AppCmd) -> Result<(), Failure> {
    match cmd {
        AppCmd::List(a) => {
            list_of("/apps", a.output, &["ID", "NAME", "CLIENT ID", "ROLES"], ["id", "name", "client_id", "roles"])
        }
        AppCmd::Create(a) => {
            let s = store::live_session()?;
            let mut body = json!({"name": a.name, "roles": a.roles, "management": a.management});
            if let Some(d) = &a.description {
                body["description"] = json!(d);
            }
            if let Some(t) = a.access_token_ttl {
                body["access_token_ttl_seconds"] = json!(t);
            }
            let v = client::api(&s, "POST", "/apps", Some(&body))?;
            print_app_secret(&v, a.output, "Created")
        }
        AppCmd::Secret(a) => {
            let s = store::live_session()?;
            let body = json!({"grace_period_seconds": a.grace});
            let v = client::api(&s, "POST", &format!("/apps/{}/secret", enc(&a.id)), Some(&body))?;
            print_app_secret(&v, a.output, "New secret for")
        }
        AppCmd::Delete(a) => {
            let s = store::live_session()?;
            client::api(&s, "DELETE", &format!("/apps/{}", enc(&a.id)), None)?;
            eprintln!("Deleted app {}.", a.id);
            Ok(())
        }
    }
}

pub fn run_service_account(cmd: ServiceAccountCmd) -> Result<(), Failure> {
    match cmd {
        ServiceAccountCmd::List(a) => list_of(
            "/service-accounts",
            a.output,
            &["ID", "NAME", "DESCRIPTION", "ROLES"],
            ["id", "name", "description", "roles"],
        ),
    }
}
