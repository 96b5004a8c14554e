//! Test harness: a real tokend on 127.0.0.1:0 with a temp SQLite file (or a fresh
//! PostgreSQL database when TOKEND_TEST_DATABASE_URL is set), a temp key directory and a
//! fixed clock; a blocking HTTP client; JWT checks against the JWKS fetched over HTTP.

pub mod assert;
pub mod helpers;
#[macro_use]
pub mod browser;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web;
use serde_json::{json, Value};
use tokend::app::State;
use tokend::clock::{Clock, FixedClock};
use tokend::config::Config;

/// The fields of a token record (API.md, "A token record").
pub const RECORD_FIELDS: [&str; 15] = [
    "id",
    "name",
    "description",
    "hint",
    "owner_kind",
    "owner_id",
    "roles",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "idle_ttl_days",
    "status",
    "revoked_at",
    "revoked_by",
];

/// `Server::snapshot`: (table, its rows serialised) pairs, and (AUDIT_COUNT, the number).
pub type Snapshot = Vec<(String, String)>;

/// The snapshot entry holding the number of audit events.
pub const AUDIT_COUNT: &str = "audit_events (count)";

/// The tables a refused call must leave exactly as they were (sessions are left out: tests
/// log in between snapshots; the audit log is counted separately).
pub const SNAPSHOT_TABLES: [&str; 14] = [
    "orgs",
    "users",
    "roles",
    "service_accounts",
    "api_tokens",
    "apps",
    "policies",
    "saved_searches",
    "revoked_jtis",
    "reset_codes",
    "webhooks",
    "outbox",
    "webhook_deliveries",
    "revocation_feed",
];

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// PostgreSQL from TOKEND_TEST_DATABASE_URL. Tests that need it are marked ignored at
    /// build time when it is unset (see build.rs), so reaching here without it is an error:
    /// under CI=true a test that cannot run fails, saying why.
    #[track_caller]
    pub fn postgres() -> Backend {
        match std::env::var("TOKEND_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Backend::Postgres(url),
            _ => panic!(
                "TOKEND_TEST_DATABASE_URL is not set: this PostgreSQL test cannot run (under CI=true that is a \
                 failure; locally, rebuild without CI=true to skip it)"
            ),
        }
    }

    #[track_caller]
    pub fn start(&self) -> Server {
        self.start_with(|_| {})
    }

    #[track_caller]
    pub fn start_with(&self, f: impl FnOnce(&mut Config)) -> Server {
        Server::start(self, f)
    }
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests for functions `fn NAME(b: &Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&$crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test]
            #[cfg_attr(tokend_skip_pg, ignore = "SKIPPED: TOKEND_TEST_DATABASE_URL is not set")]
            fn $name() { super::$name(&$crate::common::Backend::postgres()) } )*
        }
    };
}

pub fn fresh_pg_database(base: &str) -> String {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let name = format!("tokend_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(base).expect("connect to TOKEND_TEST_DATABASE_URL");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
    let (prefix, rest) = base.rsplit_once('/').expect("database URL with a path");
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{prefix}/{name}{query}")
}

pub fn drop_pg_database(base: &str, url: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let name = url.rsplit_once('/').map(|(_, n)| n.split('?').next().unwrap_or(n).to_string()).unwrap_or_default();
    if let Ok(mut admin) = diesel::PgConnection::establish(base) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

pub struct Server {
    pub base: String,
    pub state: web::Data<State>,
    pub clock: Arc<FixedClock>,
    pub org_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub owner_password: String,
    /// The owner's bootstrap personal API token.
    pub owner_pat: String,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pg_base: Option<String>,
    handle: actix_web::dev::ServerHandle,
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl Server {
    fn start(backend: &Backend, f: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg_base) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/tokend.db", dir.path().display()), None),
            Backend::Postgres(base) => (fresh_pg_database(base), Some(base.clone())),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut cfg = Config::for_test(&database_url, &dir.path().join("keys"));
        cfg.issuer = format!("http://127.0.0.1:{port}");
        cfg.audiences = vec![cfg.issuer.clone()];
        cfg.api_audience = format!("{}/api", cfg.issuer);
        cfg.bootstrap_password = Some("owner-password-123".into());
        cfg.key_publish_delay = 0;
        // Tests hammer the token endpoint with bad input from one address; the throttle
        // has its own test.
        cfg.token_failures_per_minute = 0;
        // Webhook receivers in tests listen on 127.0.0.1; delivery passes and expiry scans
        // run when a test calls `deliver` / `scan_expiry` (the fixed clock decides what is due).
        cfg.webhook_allow_private = true;
        cfg.outbox_interval_seconds = 0;
        f(&mut cfg);
        let owner_email = cfg.bootstrap_email.clone();
        let owner_password = cfg.bootstrap_password.clone().unwrap();
        let clock = Arc::new(FixedClock::new(now()));
        let (state, created, handle) = Self::launch(cfg, clock.clone(), listener);
        let created = created.expect("fresh database bootstraps an org");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            database_url: state.cfg.database_url.clone(),
            state,
            clock,
            org_id: created.org_id,
            owner_id: created.owner_id,
            owner_email,
            owner_password,
            owner_pat: created.token,
            dir,
            pg_base,
            handle,
        }
    }

    /// Boots and serves `cfg` on `listener` (HTTP server and maintenance thread).
    fn launch(
        cfg: Config,
        clock: Arc<FixedClock>,
        listener: TcpListener,
    ) -> (web::Data<State>, Option<tokend::service::org::orgs::CreatedOrg>, actix_web::dev::ServerHandle) {
        let (state, created) = tokend::boot(cfg, clock as Arc<dyn Clock>).expect("boot");
        let maintenance_state = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let server = tokend::http::server(st, listener).unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = rx.recv().unwrap();
        tokend::app::spawn_maintenance(maintenance_state);
        (state, created, handle)
    }

    /// Another instance beside `first`: same database, same key directory, same issuer
    /// and audiences (as behind one load balancer), same clock; no bootstrap. `f` adjusts
    /// its configuration (a copy of the first one's). Dropping it leaves the database to
    /// `first`.
    #[track_caller]
    pub fn start_second(first: &Server, f: impl FnOnce(&mut Config)) -> Server {
        let mut cfg = first.state.cfg.clone();
        f(&mut cfg);
        Self::start_on(first, cfg, tempfile::tempdir().unwrap(), None)
    }

    /// Stops this instance and starts a new one on the same database file or database,
    /// key directory and configuration (a new port).
    #[track_caller]
    pub fn restart(mut self) -> Server {
        let cfg = self.state.cfg.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let pg_base = self.pg_base.take();
        let template = (
            self.clock.clone(),
            self.org_id.clone(),
            self.owner_id.clone(),
            self.owner_email.clone(),
            self.owner_password.clone(),
            self.owner_pat.clone(),
        );
        drop(self);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, created, handle) = Self::launch(cfg, template.0.clone(), listener);
        assert!(created.is_none(), "a restart finds its org");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            database_url: state.cfg.database_url.clone(),
            state,
            clock: template.0,
            org_id: template.1,
            owner_id: template.2,
            owner_email: template.3,
            owner_password: template.4,
            owner_pat: template.5,
            dir,
            pg_base,
            handle,
        }
    }

    fn start_on(first: &Server, cfg: Config, dir: tempfile::TempDir, pg_base: Option<String>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, created, handle) = Self::launch(cfg, first.clock.clone(), listener);
        assert!(created.is_none(), "a second instance finds the org the first one created");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            database_url: state.cfg.database_url.clone(),
            state,
            clock: first.clock.clone(),
            org_id: first.org_id.clone(),
            owner_id: first.owner_id.clone(),
            owner_email: first.owner_email.clone(),
            owner_password: first.owner_password.clone(),
            owner_pat: first.owner_pat.clone(),
            dir,
            pg_base,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn issuer(&self) -> String {
        self.state.cfg.issuer.clone()
    }

    // ---- HTTP helpers: every call answers (status, headers lookup, body) ----

    pub fn call(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = ureq::request(method, &self.url(path));
        if let Some(b) = bearer {
            req = req.set("Authorization", &format!("Bearer {b}"));
        }
        let r = match body {
            Some(v) => req.set("Content-Type", "application/json").send_string(&v.to_string()),
            None => req.call(),
        };
        Resp::from(r)
    }

    pub fn get(&self, path: &str, bearer: &str) -> Resp {
        self.call("GET", path, Some(bearer), None)
    }
    pub fn post(&self, path: &str, bearer: &str, body: Value) -> Resp {
        self.call("POST", path, Some(bearer), Some(&body))
    }
    pub fn patch(&self, path: &str, bearer: &str, body: Value) -> Resp {
        self.call("PATCH", path, Some(bearer), Some(&body))
    }
    pub fn put(&self, path: &str, bearer: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(bearer), Some(&body))
    }
    pub fn delete(&self, path: &str, bearer: &str) -> Resp {
        self.call("DELETE", path, Some(bearer), None)
    }

    /// A raw request: any method, headers and body bytes.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut req = ureq::request(method, &self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Resp::from(if body.is_empty() && method == "GET" { req.call() } else { req.send_bytes(body) })
    }

    /// `application/x-www-form-urlencoded` POST, optionally with HTTP Basic.
    pub fn form(&self, path: &str, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let mut req = ureq::post(&self.url(path));
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let enc =
                |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let cred = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
            req = req.set("Authorization", &format!("Basic {cred}"));
        }
        Resp::from(req.send_form(pairs))
    }

    // ---- flows ----

    /// Logs in; the answered access token (management audience) has been verified
    /// independently (`verify`).
    #[track_caller]
    pub fn login(&self, email: &str, password: &str) -> String {
        let r = self.call("POST", "/api/v1/login", None, Some(&json!({"email": email, "password": password})));
        assert::status(&r, 200, "login failed");
        let t = r.body["access_token"].as_str().unwrap().to_string();
        self.verify(&t, &self.api_audience());
        t
    }

    #[track_caller]
    pub fn owner_login(&self) -> String {
        self.login(&self.owner_email, &self.owner_password)
    }

    /// Exchanges an API token (refresh_token grant); answers the response. A 200's access
    /// token (default audience: the resource audience) has been verified independently.
    #[track_caller]
    pub fn exchange(&self, api_token: &str) -> Resp {
        let r = self.form("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", api_token)], None);
        if r.status == 200 {
            let t = r.body["access_token"].as_str().expect("a 200 from /oauth/token carries access_token");
            self.verify(t, &self.resource_audience());
        }
        r
    }

    #[track_caller]
    pub fn exchange_ok(&self, api_token: &str) -> String {
        let r = self.exchange(api_token);
        assert::status(&r, 200, "exchange failed");
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// The management API's audience.
    pub fn api_audience(&self) -> String {
        self.state.cfg.api_audience.clone()
    }

    /// The default resource audience (the first of TOKEND_AUDIENCES): what a token request
    /// without `audience` gets.
    pub fn resource_audience(&self) -> String {
        self.state.cfg.audiences.first().cloned().expect("at least one resource audience")
    }

    /// Exchanges an API token for a management-API access token (the audience named).
    #[track_caller]
    pub fn exchange_api(&self, api_token: &str) -> String {
        let aud = self.api_audience();
        let r = self.form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", api_token), ("audience", &aud)],
            None,
        );
        assert::status(&r, 200, "exchange for the management audience failed");
        let t = r.body["access_token"].as_str().unwrap().to_string();
        self.verify(&t, &aud);
        t
    }

    /// client_credentials for the management audience; answers the access token.
    #[track_caller]
    pub fn app_api_token(&self, client_id: &str, secret: &str) -> String {
        let aud = self.api_audience();
        let r = self.form(
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("audience", &aud)],
            Some((client_id, secret)),
        );
        assert::status(&r, 200, "client_credentials for the management audience failed");
        let t = r.body["access_token"].as_str().unwrap().to_string();
        self.verify(&t, &aud);
        t
    }

    /// Sets a person's password the way the contract says: an admin's one-time reset
    /// code, redeemed by the person.
    #[track_caller]
    pub fn set_password(&self, admin: &str, user_id: &str, password: &str) {
        let r = self.post(&format!("/api/v1/users/{user_id}/password-reset"), admin, json!({}));
        assert::status(&r, 200, "issue reset code");
        let code = r.body["code"].as_str().unwrap().to_string();
        let r =
            self.call("POST", "/api/v1/password-reset", None, Some(&json!({"code": code, "new_password": password})));
        assert::status(&r, 204, "redeem reset code");
    }

    /// Creates a user with roles and a password; answers (id, access token from login).
    #[track_caller]
    pub fn user(&self, admin: &str, email: &str, roles: &[&str]) -> (String, String) {
        let r = self.post("/api/v1/users", admin, json!({"email": email, "roles": roles}));
        assert::status(&r, 201, "create user");
        let id = r.body["id"].as_str().unwrap().to_string();
        self.set_password(admin, &id, "user-password-123");
        (id, self.login(email, "user-password-123"))
    }

    /// Creates a personal token for the caller (interactive access token); answers (id, secret).
    /// `roles` is required by the contract; a body without it names every role the caller
    /// holds (what tests written before that rule meant).
    /// Without `management` in the body the token may reach the management API too (what
    /// tests written before per-token reach meant); tests of reach name it.
    #[track_caller]
    pub fn pat(&self, access: &str, body: Value) -> (String, String) {
        let mut body = body;
        if body.get("management").is_none() {
            body["management"] = json!(true);
        }
        if body.get("roles").is_none() {
            let me = self.get("/api/v1/me", access);
            assert::status(&me, 200, "read the caller");
            body["roles"] = me.body["roles"].clone();
        }
        let r = self.post("/api/v1/me/tokens", access, body);
        assert::status(&r, 201, "create token");
        (r.body["id"].as_str().unwrap().to_string(), r.body["token"].as_str().unwrap().to_string())
    }

    /// Creates a token of a service account; answers (id, secret). Without `management` in
    /// the body it may reach the management API too (as `pat`).
    #[track_caller]
    pub fn sa_token(&self, admin: &str, sa: &str, body: Value) -> (String, String) {
        let mut body = body;
        if body.get("management").is_none() {
            body["management"] = json!(true);
        }
        let r = self.post(&format!("/api/v1/service-accounts/{sa}/tokens"), admin, body);
        assert::status(&r, 201, "create service-account token");
        let secret = r.body["token"].as_str().unwrap().to_string();
        assert!(secret.starts_with("tkd_sat_"), "a service-account token starts with tkd_sat_");
        (r.body["id"].as_str().unwrap().to_string(), secret)
    }

    /// Creates an app; answers (id, client_id, client_secret). Without `management` in the
    /// body the app may reach the management API too (as `pat`).
    #[track_caller]
    pub fn app(&self, access: &str, body: Value) -> (String, String, String) {
        let mut body = body;
        if body.get("management").is_none() {
            body["management"] = json!(true);
        }
        let r = self.post("/api/v1/apps", access, body);
        assert::status(&r, 201, "create app");
        let s = |k: &str| r.body[k].as_str().unwrap().to_string();
        (s("id"), s("client_id"), s("client_secret"))
    }

    #[track_caller]
    pub fn role(&self, admin: &str, name: &str) {
        let r = self.post("/api/v1/roles", admin, json!({"name": name, "kind": "service", "description": "test"}));
        assert::status(&r, 201, "create role");
    }

    /// Verifies an access token independently of the server's own verifier: jsonwebtoken
    /// with the JWKS fetched over HTTP. The algorithm is pinned by the key the `kid` names
    /// (kty/crv, and its `alg` when published), never taken from the token's header alone;
    /// `aud` must be exactly `expected_aud`; `iss` the issuer; `exp`/`nbf`/`iat` are checked
    /// against the server's fixed test clock (no leeway). Answers the claims.
    #[track_caller]
    pub fn verify(&self, token: &str, expected_aud: &str) -> Value {
        let text = ureq::get(&self.url("/.well-known/jwks.json")).call().unwrap().into_string().unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&text).unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let kid = header.kid.as_deref().expect("kid in the token header");
        let raw_key = raw["keys"]
            .as_array()
            .expect("JWKS keys")
            .iter()
            .find(|k| k["kid"] == json!(kid))
            .unwrap_or_else(|| panic!("kid {kid} published in the JWKS"));
        use jsonwebtoken::Algorithm;
        let pinned = match (raw_key["kty"].as_str(), raw_key["crv"].as_str()) {
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
            (Some("RSA"), None) => Algorithm::RS256,
            other => panic!("unexpected key type {other:?} in the JWKS: {raw_key}"),
        };
        if let Some(alg) = raw_key.get("alg") {
            assert_eq!(alg, &json!(format!("{pinned:?}")), "the key's published alg matches its type: {raw_key}");
        }
        assert_eq!(header.alg, pinned, "the token's header alg must be the one its key is for");
        let jwk = jwks.find(kid).expect("kid published in the JWKS");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(pinned);
        v.algorithms = vec![pinned];
        v.set_issuer(&[self.issuer()]);
        v.set_audience(&[expected_aud]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        v.leeway = 0;
        // Time is checked below against the server's clock, not the wall clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
            .unwrap_or_else(|e| panic!("token verifies against the JWKS for audience {expected_aud:?}: {e}"))
            .claims;
        assert_eq!(claims["aud"], json!(expected_aud), "a single audience, the intended one: {claims}");
        let now = self.clock.now();
        let num = |k: &str| claims[k].as_i64().unwrap_or_else(|| panic!("{k} is an integer: {claims}"));
        assert!(num("exp") > now, "exp {} not after the server clock {now}: {claims}", num("exp"));
        assert!(num("nbf") <= now, "nbf {} after the server clock {now}: {claims}", num("nbf"));
        assert!(num("iat") <= now, "iat {} after the server clock {now}: {claims}", num("iat"));
        claims
    }

    /// `verify` for a token of the default resource audience.
    #[track_caller]
    pub fn verify_resource(&self, token: &str) -> Value {
        self.verify(token, &self.resource_audience())
    }

    /// `verify` for a management-API token.
    #[track_caller]
    pub fn verify_api(&self, token: &str) -> Value {
        self.verify(token, &self.api_audience())
    }

    /// Counts rows of a table straight from the database (to prove "nothing changed").
    #[track_caller]
    pub fn count(&self, table: &str) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.state.db.read().unwrap();
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<N>(&mut *conn).unwrap().n
    }

    /// Every column of every row of `table`, one string per row (`col=value | …`, NULL as
    /// `~`), sorted; the columns are read from the database's catalogue, so a column added
    /// later is covered without editing this.
    #[track_caller]
    pub fn rows(&self, table: &str) -> Vec<String> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = self.state.db.read().unwrap();
        let cols_q = if self.database_url.starts_with("postgres") {
            format!(
                "SELECT CAST(column_name AS TEXT) AS v FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            )
        } else {
            format!("SELECT name AS v FROM pragma_table_info('{table}') ORDER BY cid")
        };
        let cols: Vec<String> = diesel::sql_query(&cols_q)
            .load::<Row>(&mut *conn)
            .unwrap_or_else(|e| panic!("{cols_q}: {e}"))
            .into_iter()
            .map(|r| r.v)
            .collect();
        assert!(!cols.is_empty(), "table {table} has columns");
        let expr = cols
            .iter()
            .map(|c| format!("'{c}=' || COALESCE(CAST(\"{c}\" AS TEXT), '~')"))
            .collect::<Vec<_>>()
            .join(" || ' | ' || ");
        let q = format!("SELECT {expr} AS v FROM {table}");
        let mut rows: Vec<String> = diesel::sql_query(&q)
            .load::<Row>(&mut *conn)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .into_iter()
            .map(|r| r.v)
            .collect();
        rows.sort();
        rows
    }

    /// Every record of every mutable table (all columns), plus the number of audit events,
    /// for "this request changed nothing": a refused rename or secret regeneration that
    /// happened anyway shows up as a changed row, not only a changed row count. Buffered
    /// last-used times are flushed first, so a use before the snapshot is in it and a use
    /// recorded by the refused call shows up after.
    #[track_caller]
    pub fn snapshot(&self) -> Snapshot {
        self.flush_usage();
        let mut out = Vec::new();
        for table in SNAPSHOT_TABLES {
            out.push((table.to_string(), self.rows(table).join("\n")));
        }
        out.push((AUDIT_COUNT.to_string(), self.count("audit_events").to_string()));
        out
    }

    /// The snapshot without the audit log: refused calls are audited, and that is the
    /// only trace they may leave.
    #[track_caller]
    pub fn data_snapshot(&self) -> Snapshot {
        self.snapshot().into_iter().filter(|(q, _)| q != AUDIT_COUNT).collect()
    }

    /// One pass of the notification worker (what the worker thread does every few seconds).
    #[track_caller]
    pub fn deliver(&self) -> tokend::app::outbox::Pass {
        tokend::app::outbox::deliver_due(&self.state).expect("a delivery pass")
    }

    /// Passes until one claims nothing; answers them added up.
    #[track_caller]
    pub fn deliver_all(&self) -> tokend::app::outbox::Pass {
        let mut total = tokend::app::outbox::Pass::default();
        loop {
            let p = self.deliver();
            if p.claimed == 0 {
                return total;
            }
            total.claimed += p.claimed;
            total.delivered += p.delivered;
            total.retried += p.retried;
            total.failed += p.failed;
            total.dropped += p.dropped;
        }
    }

    /// One expiry scan (the worker thread's minute task); answers the events queued.
    #[track_caller]
    pub fn scan_expiry(&self) -> usize {
        tokend::app::outbox::scan_expiry(&self.state).expect("an expiry scan")
    }

    /// Writes buffered last-used times now (the server does it every ~0.5 s).
    pub fn flush_usage(&self) {
        self.state.flush_usage();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop();
        let h = self.handle.clone();
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false))).join();
        if let Some(base) = &self.pg_base {
            drop_pg_database(base, &self.database_url);
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl From<Result<ureq::Response, ureq::Error>> for Resp {
    #[track_caller]
    fn from(r: Result<ureq::Response, ureq::Error>) -> Resp {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, text, body }
    }
}
