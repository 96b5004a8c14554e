//! tokend: a self-hosted OAuth2 token exchange authorization server.
//!
//! Layers, top to bottom: `http` (actix handlers) → `service` (rules) → `store` (diesel);
//! `secrets`, `keys` and `jwt` hold the cryptography.
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

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::service::orgs::CreatedOrg;
use crate::store::Db;

#[derive(thiserror::Error, Debug)]
pub enum BootError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] service::Error),
}

/// Everything `serve` does before listening: database, migrations, keys, first org.
/// Returns the shared state and, on a fresh database, the owner's first credentials.
pub fn boot(cfg: Config, clock: Arc<dyn Clock>) -> Result<(web::Data<http::State>, Option<CreatedOrg>), BootError> {
    let db = Db::connect(&cfg.database_url, (cfg.workers as u32) * 2)?;
    db.migrate()?;
    let now = clock.now();
    let keys = Arc::new(KeyRing::open(&cfg.keys_dir, cfg.signing_alg, cfg.key_publish_delay, now)?);
    let created = {
        let mut conn = db.write()?;
        service::orgs::bootstrap(&mut conn, &cfg.bootstrap_email, cfg.bootstrap_password.clone(), now)?
    };
    let state = web::Data::new(http::State::new(db, keys, cfg, clock));
    Ok((state, created))
}
