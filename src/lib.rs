//! tokend: a self-hosted OAuth2 token exchange authorization server.
//!
//! Layers, top to bottom (a lower layer never imports a higher one; `tests/layers.rs`
//! checks it, and that the modules of `service` import each other without a cycle):
//! - `http` and `console`: the two front ends. `http`: actix handlers and routes (`oauth`,
//!   `gateway`, `leaks`, `discovery`, `health`, `auth` for the bearer extractor over
//!   `service::authz::bearer`, `middleware`, `pacing`, `openapi`), and `api/`, the
//!   management API `/api/v1` with one module per resource (`session`, `me`, `users`,
//!   `roles`, `accounts`, `apps`, `tokens`, `policy`, `saved`, `audit`, `webhooks`,
//!   `trust_policies`), each declaring its routes and its OpenAPI operations (`Doc`,
//!   nested under `/api/v1` by `api::Doc` and merged into `openapi::ApiDoc`).
//!   `console`: the web console under `/console`. Both parse, call one service function and
//!   render; both map service errors through `service::Answer`. No rule lives here.
//! - `app`: the process. The shared `State`, `boot` (database, migrations, keys, first
//!   org), the maintenance thread, the notification worker, the refusal pacer and the
//!   blocking runner. Main and the tests start the server through `http::server`.
//! - `service`: the rules (synchronous; a connection, the caller and the time in), each
//!   reading validate → authorise → store → audit → view, grouped by domain:
//!   `authz` (the caller, typed roles, per-credential reach, failure throttle), `events` (the
//!   one event sink: audit log and webhook/email outbox writers, webhook subscriptions), `oauth` (`POST /oauth/token` through `oauth::exchange::token`,
//!   forward-auth and introspection, the revocation feed), `tokens` (personal and
//!   service-account API tokens, the org table, saved searches, usage, lifecycle),
//!   `principals` (people, login, passwords, sessions, service accounts, apps, what a
//!   leaver's credentials become), `org` (organizations, policy, the audit log as read); `list` (paging
//!   parameters) and `text` (name and description newtypes that validate on construction
//!   and carry their OpenAPI schema) are shared leaves.
//! - `store`: diesel schema, rows, pools for SQLite and PostgreSQL, the per-backend read
//!   strategy of the token path (`Db::read_hot`), and the queries beside their rows in
//!   `store::{tokens, principals, org, sessions, audit, saved}`; every list is paged by
//!   `store::page`. No policy decisions. `store::revocations` holds the revocation feed
//!   and the process-wide revocation generation the credential caches of
//!   `service::oauth::gateway` (forward-auth, introspection) compare against.
//!
//! Beside them: `error` (ApiError → problem+json, OAuthError with typed `OAuthCode` →
//! RFC 6749 §5.2, and every conversion between error types), `metrics` (the Prometheus
//! registry, counters and the gauges maintenance computes), `logging` (text or JSON log
//! lines, the request id), `config`, `clock`, `bootstrap`; `secrets`, `keys`, `jwt` and
//! `whsec` (webhook signing secrets, sealed at rest) and `reporters` (secret-scanning
//! reporters' keys, `POST /leaks/report`) hold the cryptography.
//!
//! Events: a change hands one typed `service::events::Event` (its audit row and the
//! notices it makes) to `service::events::emit` inside its own transaction, which writes
//! the audit row (`events::audit`) and the outbox rows for the subscribed webhooks and email
//! (`events::outbox`); both writers are leaves. The worker in `app::outbox` delivers them
//! (webhooks over HTTP, email over SMTP) with retries.
pub mod app;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod reporters;
pub mod secrets;
pub mod service;
pub mod store;
pub mod whsec;

pub use app::{boot, BootError};
