//! tokend's integration tests: one binary (one build, one link), a module per feature.
//! Every module starts real servers through `common` (127.0.0.1:0, temp SQLite file or a
//! fresh PostgreSQL database, temp key directory, fixed clock), speaks HTTP and verifies
//! issued JWTs independently. Scenarios written once run as `MODULE::sqlite::NAME` and
//! `MODULE::postgres::NAME` (`backend_tests!`); without `TOKEND_TEST_DATABASE_URL` the
//! PostgreSQL ones are ignored with the reason `SKIPPED: …` and counted as ignored in the
//! summary, and under `CI=true` they fail instead.
#[macro_use]
mod common;

/// Bounded cost under abuse: hashing bound, throttles, pacing, metrics, audit floods.
mod abuse_and_limits;
/// API tokens as client credentials (client_credentials), with a real Prometheus.
mod api_tokens_as_client;
/// Apps (client_credentials), service accounts, introspection, real third-party clients.
mod apps_and_service_accounts;
/// Pagination in one query: exact totals on every page, past the end, filtered.
mod archrest_pagination;
/// RS256 on the operator's RSA keys (tokend generates none): refusal, first key, rotation.
mod archrest_rsa_keys;
/// Rules in service/ once: the webhook test-event limit for API and console; page guards.
mod archrest_rules;
/// The real `tokend` binary: first start, `tokend verify`.
mod cli_process;
/// The web console: browser walks (headless Chromium), sessions, CSRF, headers.
mod console;
/// The console's admin pages: org token table, saved searches, people, roles, policy, audit.
mod console_admin;
/// The console, second round: secrets shown once after a redirect, honest status, flash
/// messages, the sudo window, confirmations.
mod console_round2;
/// The console, third round: service accounts and tokens corrected (rename, delete,
/// regenerate), all errors of a form at once, My tokens tabs, status filters.
mod console_round3;
/// The console, fourth round: the invitation link emailed (sealed in the outbox), role
/// holders named, custom roles' descriptions, tokens in the audit log's picker.
mod console_round4;
/// Signing keys and discovery: JWKS, rotation, forged bearers, health, metrics, login.
mod discovery_keys_and_login;
/// Every principal × every sensitive action, exact statuses, nothing changed when refused.
mod escalation_matrix;
/// Keyless clients (trust policies for CI and Kubernetes tokens, a real local OIDC issuer)
/// and delegation (RFC 8693 actor).
mod federation;
/// The cargo-fuzz targets' bodies, replayed on their seeds and past crash inputs.
mod fuzz_replay;
/// Gateways and offline verifiers: forward-auth (and a real nginx), the revocation feed,
/// cached introspection, the example resource server.
mod gateway_and_feed;
/// Issue #18's throttles, floods, amplification bounds and small hardening items.
mod hardening;
/// Several instances on one database, PostgreSQL outages, SQLite on a full disk.
mod instances_and_outages;
/// Leak reports: the signed secret-scanning intake and `tokend leaks check`.
mod leak_reports;
/// Escalation through principals and leaked credentials.
mod leaked_credentials;
/// The server against its OpenAPI document.
mod openapi_conformance;
/// Org administration: the token table, policy, people, roles, saved searches, audit.
mod org_admin;
/// Issue #21 item 3: the token path's verified-credential cache across instances
/// (PostgreSQL LISTEN/NOTIFY) and on SQLite.
mod perfpg_cache;
/// Personal access tokens and `POST /oauth/token` (refresh_token, token exchange).
mod personal_tokens_and_exchange;
/// The role algebra, property-tested at the service layer.
mod role_algebra;
/// Logins, sessions, resets, jti revocation, the management audience.
mod sessions_and_revocation;
/// A first look: the server starts and answers.
mod smoke;
/// Token lifecycle: expiry visibility, rotation without downtime, retention, gauges.
mod token_lifecycle;
/// Per-credential reach: which audiences (and whether the management API) a token reaches.
mod token_reach;
/// Credentials follow trust: reset codes, seen secrets and minted tokens of leavers and
/// demoted people; re-enabling and widening need an interactive login.
mod trust_follows_people;
/// The user's command line: the real binary against a real server, both backends.
mod user_cli;
/// Webhooks and email: the API, signed deliveries, retries, restarts, two instances, SMTP.
mod webhooks;
