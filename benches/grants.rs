//! The token grants through the service layer, without HTTP: `exchange::token` (what the
//! `POST /oauth/token` handler calls) on a warm SQLite connection, so that a change to
//! the grant functions shows in their own time, apart from the server's.
//!
//!   cargo bench --bench grants
//!
//! client_credentials (an app and its secret), refresh_token and token-exchange (an API
//! token), and client_credentials with an API token as the secret. A temp-dir store with
//! the bootstrap org, one app and the owner's personal token.
use std::sync::{Arc, OnceLock};

use tokend::app::State;
use tokend::clock::{Clock, FixedClock};
use tokend::config::Config;
use tokend::secrets::{self, SecretKind};
use tokend::service::oauth::exchange::{self, ClientSecret, Target, TokenRequest};
use tokend::store::models::App;

const NOW: i64 = 1_800_000_000;
const AUDIENCE: &str = "https://api.example.test";

struct Fixture {
    state: actix_web::web::Data<State>,
    client_id: String,
    client_secret: String,
    /// The owner's personal API token.
    pat: String,
    pat_id: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/grants.db", dir.path().display());
        let mut cfg = Config::for_test(&url, &dir.path().join("keys"));
        cfg.audiences = vec![AUDIENCE.into()];
        cfg.bootstrap_password = Some("bench-password-123".into());
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(NOW));
        let (state, created) = tokend::boot(cfg, clock).expect("boot");
        let created = created.expect("a new org");
        let secret = secrets::generate(SecretKind::ClientSecret);
        let client_id = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let app = App {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: created.org_id.clone(),
            name: "bench".into(),
            description: String::new(),
            client_id: client_id.clone(),
            secret_hash: secret.hash,
            secret_hint: secret.hint,
            roles: "[\"org:member\"]".into(),
            access_token_ttl_seconds: 1800,
            disabled: false,
            created_by: None,
            created_at: NOW,
            updated_at: NOW,
            epoch: 0,
            introspect: false,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            audiences: "[\"*\"]".into(),
            management: false,
            secret_seen_by: "[]".into(),
        };
        tokend::store::principals::insert_app(&mut state.db.write().unwrap(), &app).expect("insert app");
        let pat_id = {
            let mut conn = state.db.read().unwrap();
            tokend::store::tokens::find_by_hash(&mut conn, &secrets::hash(&created.token)).unwrap().unwrap().id
        };
        Fixture { state, client_id, client_secret: secret.value, pat: created.token, pat_id, _dir: dir }
    })
}

fn target() -> Target {
    Target { resource: None, audience: None }
}

/// One grant, again and again on one warm pooled connection; panics on a refusal (a
/// benchmark of an error path would measure the wrong thing).
fn run(bencher: divan::Bencher, request: impl Fn() -> TokenRequest + Sync) {
    let f = fixture();
    let mut conn = f.state.db.read().unwrap();
    bencher.bench_local(|| {
        let req = request();
        exchange::token(&mut *conn, &req, &f.state.ctx("127.0.0.1")).expect("granted")
    });
}

#[divan::bench]
fn client_credentials(bencher: divan::Bencher) {
    let f = fixture();
    run(bencher, || TokenRequest::ClientCredentials {
        client: ClientSecret { client_id: f.client_id.clone(), secret: f.client_secret.clone() },
        scope: Some("org:member".into()),
        target: target(),
    });
}

#[divan::bench]
fn refresh_token(bencher: divan::Bencher) {
    let f = fixture();
    run(bencher, || TokenRequest::RefreshToken {
        refresh_token: f.pat.clone(),
        client: None,
        scope: None,
        target: target(),
    });
}

#[divan::bench]
fn token_exchange(bencher: divan::Bencher) {
    let f = fixture();
    run(bencher, || TokenRequest::TokenExchange {
        subject_token: f.pat.clone(),
        client: None,
        scope: None,
        target: target(),
    });
}

/// client_credentials with the personal token as the client secret (Prometheus' way).
#[divan::bench]
fn api_token_as_client(bencher: divan::Bencher) {
    let f = fixture();
    run(bencher, || TokenRequest::ClientCredentials {
        client: ClientSecret { client_id: f.pat_id.clone(), secret: f.pat.clone() },
        scope: None,
        target: target(),
    });
}

fn main() {
    // The store, keys and password hash are made before divan starts timing.
    fixture();
    divan::main();
}
