//! tokend: a self-hosted OAuth2 token exchange authorization server.
//!
//! Layers, top to bottom: `http` (actix handlers) → `service` (rules: validate → authorise
//! → store → audit → view) → `store` (diesel: pools, schema, and the queries beside their
//! rows in `store::{tokens, principals, org, sessions, audit, saved}`, every list paged by
//! `store::page`; no policy decisions); `secrets`, `keys` and `jwt` hold the cryptography.
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod secrets;
pub mod service;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use diesel::Connection;

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::service::orgs::CreatedOrg;
use crate::store::{AnyConnection, Db};

#[derive(thiserror::Error, Debug)]
pub enum BootError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] service::Error),
    #[error(transparent)]
    Credentials(#[from] bootstrap::CredentialsError),
}

impl From<diesel::result::Error> for BootError {
    fn from(e: diesel::result::Error) -> BootError {
        BootError::Store(e.into())
    }
}

/// Everything `serve` does before listening: database, migrations, keys, first org.
/// Returns the shared state and, on a fresh database, the owner's first credentials, which
/// are also written to `bootstrap::CREDENTIALS_FILE` beside the database (only its path is
/// logged). The org is committed only once that file is written, so a failed write leaves
/// the database empty for the next start instead of losing the credentials.
pub fn boot(cfg: Config, clock: Arc<dyn Clock>) -> Result<(web::Data<http::State>, Option<CreatedOrg>), BootError> {
    let db = Db::connect(&cfg.database_url, (cfg.workers as u32) * 2)?;
    db.migrate()?;
    let now = clock.now();
    let keys = Arc::new(KeyRing::open(&cfg.keys_dir, cfg.signing_alg, cfg.key_publish_delay, now)?);
    let created = {
        let mut pooled = db.write()?;
        let conn: &mut AnyConnection = &mut pooled;
        let created = conn.transaction::<_, BootError, _>(|c| {
            let Some(org) = service::orgs::bootstrap(c, &cfg.bootstrap_email, cfg.bootstrap_password.clone(), now)?
            else {
                return Ok(None);
            };
            let path = bootstrap::write_credentials(&bootstrap::credentials_dir(&cfg), &org, &cfg.bootstrap_email)?;
            Ok(Some((org, path)))
        })?;
        created.map(|(org, path)| {
            log::warn!(
                "first start: the owner's credentials were written to {} (mode 0600). Read that file, store them safely, then delete it.",
                path.display()
            );
            org
        })
    };
    let state = web::Data::new(http::State::new(db, keys, cfg, clock));
    Ok((state, created))
}
