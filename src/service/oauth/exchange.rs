//! The token endpoint's rules: API-token exchange (refresh_token and RFC 8693 grants),
//! client_credentials for apps, RFC 7662 introspection and RFC 7009 revocation.
//! Hot path: checksum → SHA-256 → one indexed read → sign. No database write on success.
use serde_json::json;

use crate::config::Config;
use crate::jwt::{self, AccessClaims};
use crate::keys::KeyRing;
use crate::secrets::{self, SecretKind};
use crate::service::authz::principal::idle;
use crate::service::events::{self, Action, ActorKind, Entry, Outcome};
use crate::service::tokens::usage::Usage;
use crate::service::{Acct, Role, RoleSet};
use crate::store::models::AppAuth;
use crate::store::tokens::Grant;
use crate::store::{self, roles_from_text, AnyConnection, StoreError};

use super::credential_cache::{self, CredentialCache, MemoryOnly, Source};

/// The token path's credential cache (`credential_cache`): API-token lookups (the row of
/// `store::tokens::find_grant`) and app lookups (`store::principals::app_for_client_auth`).
pub type Credentials =
    CredentialCache<Option<(Grant, store::tokens::OwnerState, store::tokens::OwnerState)>, Option<AppAuth>>;

crate::service::words!(
    /// Why an API token was not accepted as a grant or client secret: the `reason` of the
    /// audit row of a refused exchange of a known token.
    pub Refusal {
        Malformed = "malformed",
        ClientSecret = "client secret",
        Unknown = "unknown",
        KindMismatch = "kind mismatch",
        Revoked = "revoked",
        Expired = "expired",
        Idle = "idle",
        OwnerMissing = "owner missing",
        OwnerDisabled = "owner disabled",
        ClientIdMismatch = "client_id mismatch",
    }
);

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `known` names the token when it was found, for the audit log (never the secret).
    #[error("invalid_grant")]
    InvalidGrant { known: Option<(String, String)>, reason: Refusal },
    #[error("invalid_client")]
    InvalidClient,
    /// No usable client authentication (invalid_client with this description).
    #[error("invalid_client: {0}")]
    Unauthenticated(&'static str),
    /// A credential-failure or write limit was reached: 429 `slow_down` with Retry-After.
    #[error("slow_down")]
    SlowDown(u64),
    /// An API token presented as a client secret (client_credentials) that does not
    /// authenticate: answered as invalid_client; `known` as in `InvalidGrant`, for the audit.
    #[error("invalid_client")]
    InvalidApiTokenClient { known: Option<(String, String)>, reason: Refusal },
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// A known client not allowed this grant (e.g. delegation for an audience an admin did
    /// not allow it to act for).
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// A request the rules find malformed beyond the form parser's checks.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// RFC 7009 §2.2.1: a client secret is not revoked here.
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    /// An authenticated caller that may not do this (e.g. introspect).
    #[error("access_denied: {0}")]
    AccessDenied(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed (the key ring refused).
    #[error("signing: {0}")]
    Sign(#[from] crate::keys::KeyError),
    /// Any other lower failure, kept whole (a store error stays `Store`: see `crate::error`).
    #[error(transparent)]
    Service(crate::service::Error),
}

// The conversions from `service::Error` and diesel's error are in `crate::error`.

pub struct Ctx<'a> {
    pub keys: &'a KeyRing,
    pub cfg: &'a Config,
    pub usage: &'a Usage,
    /// Failed credential checks and per-principal write limits (`authz::throttle`).
    pub throttle: &'a crate::service::authz::throttle::Throttle,
    /// Verified credential lookups kept in memory (`credential_cache`).
    pub credentials: &'a Credentials,
    pub now: i64,
    pub ip: &'a str,
}

pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    /// The exchanged API token's expiry (from the row the exchange read), for the
    /// `Tokend-Api-Token-Expires` header; None for apps, whose secrets never expire.
    pub api_token_expires_at: Option<i64>,
}

/// `resource` (RFC 8707) or `audience` (RFC 8693): a configured resource audience or the
/// management audience. Naming none gives the first resource audience; the management
/// audience is never a default.
pub fn resolve_audience(cfg: &Config, resource: Option<&str>, audience: Option<&str>) -> Result<String, GrantError> {
    let wanted = match (resource, audience) {
        (Some(r), Some(a)) if r.trim_end_matches('/') != a.trim_end_matches('/') => {
            return Err(GrantError::InvalidTarget("resource and audience disagree".into()))
        }
        (Some(v), _) | (None, Some(v)) => v.trim_end_matches('/'),
        (None, None) => {
            return cfg.audiences.first().cloned().ok_or_else(|| {
                GrantError::InvalidTarget(
                    "no default audience is configured: name one with the resource or audience parameter".into(),
                )
            })
        }
    };
    if wanted == cfg.api_audience || cfg.audiences.iter().any(|a| a == wanted) {
        Ok(wanted.to_string())
    } else {
        Err(GrantError::InvalidTarget("the requested audience is not configured".into()))
    }
}

/// `scope` narrows the granted roles; asking for more than granted is invalid_scope.
pub fn narrow(granted: Vec<String>, scope: Option<&str>) -> Result<Vec<String>, GrantError> {
    let Some(scope) = scope.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(granted) };
    let mut wanted: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    wanted.sort();
    wanted.dedup();
    let granted_set = RoleSet::from(granted.as_slice());
    if let Some(extra) = wanted.iter().find(|r| !granted_set.implies(r)) {
        return Err(GrantError::InvalidScope(format!("scope {extra:?} is not available to this grant")));
    }
    Ok(wanted)
}

fn sign(ctx: &Ctx<'_>, claims: &AccessClaims) -> Result<Issued, GrantError> {
    let access_token = sign_claims(ctx, claims)?;
    Ok(Issued {
        access_token,
        expires_in: claims.exp - claims.iat,
        scope: claims.scope.clone(),
        api_token_expires_at: None,
    })
}

/// Who a token is for: the fields every access token's claims take from its principal.
pub struct Subject<'a> {
    pub sub: &'a str,
    pub org: &'a str,
    pub acct: Acct,
    /// The app's client id, or the API token's id for exchanged tokens.
    pub client_id: &'a str,
    /// The principal's epoch now (see `AccessClaims::ep`).
    pub epoch: i64,
}

/// The claims of every access token tokend issues (exchange, client_credentials, login).
pub fn claims(ctx: &Ctx<'_>, s: &Subject<'_>, aud: String, ttl: i64, roles: Vec<String>) -> AccessClaims {
    AccessClaims {
        iss: ctx.cfg.issuer.clone(),
        sub: s.sub.to_string(),
        aud,
        exp: ctx.now + ttl,
        iat: ctx.now,
        nbf: ctx.now,
        jti: next_jti(),
        client_id: s.client_id.to_string(),
        scope: roles.join(" "),
        roles,
        org: s.org.to_string(),
        acct: s.acct.as_str().to_string(),
        amr: None,
        sid: None,
        ep: Some(s.epoch),
    }
}

/// A password login's token: all the user's roles, for the management audience only,
/// `amr: ["pwd"]`, tied to its session.
pub fn login_claims(ctx: &Ctx<'_>, user: &crate::store::models::User, sid: &str) -> AccessClaims {
    let roles = roles_from_text(&user.roles);
    let s =
        Subject { sub: &user.id, org: &user.org_id, acct: Acct::User, client_id: LOGIN_CLIENT_ID, epoch: user.epoch };
    let mut c = claims(ctx, &s, ctx.cfg.api_audience.clone(), ctx.cfg.access_token_ttl, roles);
    c.amr = Some(vec!["pwd".into()]);
    c.sid = Some(sid.to_string());
    c
}

pub const LOGIN_CLIENT_ID: &str = "tokend-login";

/// Signs claims into a compact JWS.
pub fn sign_claims(ctx: &Ctx<'_>, c: &AccessClaims) -> Result<String, GrantError> {
    Ok(jwt::issue(ctx.keys, c, ctx.now)?)
}

/// Unique token ids without a syscall per token: a random per-process prefix and a counter.
pub fn next_jti() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string());
    format!("{prefix}.{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A live API token, its owner's kind, current roles and epoch, or why not.
pub fn check_token(
    conn: &mut AnyConnection,
    secret: &str,
    usage: &Usage,
    now: i64,
) -> Result<(Grant, Acct, Vec<String>, i64), GrantError> {
    check_token_in(conn, None, secret, usage, now)
}

/// `check_token` with the credential cache (`Some`: the token path): the lookup is served
/// from memory when it can be, every check runs on what it answers.
fn check_token_in<C: Source + ?Sized>(
    conn: &mut C,
    cache: Option<&Credentials>,
    secret: &str,
    usage: &Usage,
    now: i64,
) -> Result<(Grant, Acct, Vec<String>, i64), GrantError> {
    let kind =
        secrets::parse(secret).map_err(|_| GrantError::InvalidGrant { known: None, reason: Refusal::Malformed })?;
    if kind == SecretKind::ClientSecret {
        return Err(GrantError::InvalidGrant { known: None, reason: Refusal::ClientSecret });
    }
    let hash = credential_cache::token_key(secret);
    credential_cache::through(
        cache.and_then(Credentials::tokens_on),
        conn,
        || hash.clone(),
        |c| store::tokens::find_grant(c, &hash).map_err(lost),
        |found| verify_token(kind, found, usage, now),
    )
}

/// A failed lookup's error; a lost connection is marked so that the pool drops it.
fn lost(e: diesel::result::Error) -> StoreError {
    store::mark_if_lost(&e);
    StoreError::from(e)
}

/// The checks that decide an API token, on its looked-up row (fresh or cached) and the clock.
fn verify_token(
    kind: SecretKind,
    found: Option<(Grant, store::tokens::OwnerState, store::tokens::OwnerState)>,
    usage: &Usage,
    now: i64,
) -> Result<(Grant, Acct, Vec<String>, i64), GrantError> {
    let Some((t, user, sa)) = found else {
        return Err(GrantError::InvalidGrant { known: None, reason: Refusal::Unknown });
    };
    let reject = |reason| GrantError::InvalidGrant { known: Some((t.org_id.clone(), t.id.clone())), reason };
    let (acct, owner) = match (kind, t.owner_kind.as_str()) {
        (SecretKind::Personal, "user") => (Acct::User, user),
        (SecretKind::Service, "service_account") => (Acct::ServiceAccount, sa),
        _ => return Err(reject(Refusal::KindMismatch)),
    };
    if t.revoked_at.is_some() {
        return Err(reject(Refusal::Revoked));
    }
    if t.expires_at <= now {
        return Err(reject(Refusal::Expired));
    }
    if idle(&t.id, t.idle_ttl_days, t.last_used_at, t.created_at, usage, now) {
        return Err(reject(Refusal::Idle));
    }
    let Some((roles, disabled, deleted, epoch)) = owner else { return Err(reject(Refusal::OwnerMissing)) };
    if disabled || deleted.is_some() {
        return Err(reject(Refusal::OwnerDisabled));
    }
    Ok((t, acct, roles_from_text(&roles), epoch))
}

/// refresh_token and token-exchange grants.
pub fn exchange<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    secret: &str,
    scope: Option<&str>,
    aud: String,
) -> Result<Issued, GrantError> {
    exchange_claims(conn, ctx, secret, scope, aud).map(|(issued, _)| issued)
}

/// `exchange`, answering the signed token's claims too (forward-auth copies them into
/// headers).
pub fn exchange_claims<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    secret: &str,
    scope: Option<&str>,
    aud: String,
) -> Result<(Issued, AccessClaims), GrantError> {
    let checked = check_token_in(conn, Some(ctx.credentials), secret, ctx.usage, ctx.now)?;
    issue_for_token(conn, ctx, checked, scope, aud)
}

/// The fixed client id a tool may send beside an API token used as its client secret, for
/// people who do not know (or do not want to look up) the token's id.
pub const API_TOKEN_CLIENT_ID: &str = "api-token";

/// client_credentials with an API token as the client secret, for tools that speak only
/// that grant (Prometheus, the OpenTelemetry collector, Go's x/oauth2): `client_id` is the
/// token's id (its record id, the `client_id` claim of what it is exchanged for) or
/// `API_TOKEN_CLIENT_ID`. The answer is exactly the refresh_token grant's; every refusal
/// is invalid_client (the credential is the client's), without saying which check failed.
pub fn api_token_client<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
    aud: String,
) -> Result<Issued, GrantError> {
    let as_client = |e| match e {
        GrantError::InvalidGrant { known, reason } => GrantError::InvalidApiTokenClient { known, reason },
        other => other,
    };
    let checked = check_token_in(conn, Some(ctx.credentials), secret, ctx.usage, ctx.now).map_err(as_client)?;
    let t = &checked.0;
    if client_id != API_TOKEN_CLIENT_ID && !secrets::ct_eq(client_id, &t.id) {
        let known = Some((t.org_id.clone(), t.id.clone()));
        return Err(GrantError::InvalidApiTokenClient { known, reason: Refusal::ClientIdMismatch });
    }
    issue_for_token(conn, ctx, checked, scope, aud).map(|(issued, _)| issued)
}

/// Whether a credential's reach (its stored audiences and management flag) covers `aud`,
/// and, for the management audience, whether the org's policy lets a credential with these
/// roles reach it (read only then: resource audiences, the hot path, need no read).
fn check_reach<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    org_id: &str,
    (audiences, management): (&str, bool),
    roles: &[String],
    aud: &str,
) -> Result<(), GrantError> {
    let refused = || GrantError::InvalidTarget("this credential may not be used for the requested audience".into());
    if !crate::service::authz::reach::allows(ctx.cfg, audiences, management, aud) {
        return Err(refused());
    }
    if aud == ctx.cfg.api_audience {
        let policy = crate::service::org::policy::get(conn.conn()?, org_id)?;
        if !crate::service::authz::reach::ReachPolicy::of(&policy).management_allowed(roles) {
            return Err(refused());
        }
    }
    Ok(())
}

/// Signs the access token a live API token (from `check_token`) is exchanged for; answers
/// it with its claims.
fn issue_for_token<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    (t, acct, owner_roles, epoch): (Grant, Acct, Vec<String>, i64),
    scope: Option<&str>,
    aud: String,
) -> Result<(Issued, AccessClaims), GrantError> {
    if acct == Acct::User && ctx.cfg.service_only_audiences.contains(&aud) {
        return Err(GrantError::InvalidTarget("this audience accepts service-account tokens only".into()));
    }
    let granted = RoleSet::from_text(&t.roles).intersect(&RoleSet::from(owner_roles)).to_strings();
    check_reach(conn, ctx, &t.org_id, (&t.audiences, t.management), &granted, &aud)?;
    let roles = narrow(granted, scope)?;
    let s = Subject { sub: &t.owner_id, org: &t.org_id, acct, client_id: &t.id, epoch };
    let c = claims(ctx, &s, aud, ctx.cfg.access_token_ttl, roles);
    let mut issued = sign(ctx, &c)?;
    issued.api_token_expires_at = Some(t.expires_at);
    ctx.usage.touch(&t.id, ctx.now, ctx.ip);
    Ok((issued, c))
}

/// The grant types of `POST /oauth/token`, as named by the `grant_type` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    ClientCredentials,
    RefreshToken,
    TokenExchange,
}

impl GrantType {
    pub const TOKEN_EXCHANGE: &'static str = "urn:ietf:params:oauth:grant-type:token-exchange";

    /// The grant a `grant_type` value names, if tokend implements it.
    pub fn from_param(v: &str) -> Option<GrantType> {
        match v {
            "client_credentials" => Some(GrantType::ClientCredentials),
            "refresh_token" => Some(GrantType::RefreshToken),
            Self::TOKEN_EXCHANGE => Some(GrantType::TokenExchange),
            _ => None,
        }
    }

    /// The `grant` label of the issuance metric.
    pub fn label(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "token_exchange",
        }
    }
}

/// RFC 8693 token type of an access token (the only type tokend issues by exchange).
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Client credentials as presented (HTTP Basic or the body); checked by the service.
#[derive(Debug)]
pub struct ClientSecret {
    pub client_id: String,
    pub secret: String,
}

/// The target a token is asked for: RFC 8707 `resource` and RFC 8693 `audience` as sent
/// (empty values already dropped); resolved by `resolve_audience`.
#[derive(Debug, Default)]
pub struct Target {
    pub resource: Option<String>,
    pub audience: Option<String>,
}

/// A token request served by `oauth::federation::token` (the HTTP edge sends it there):
/// an external JWT, or a delegation.
#[derive(Debug)]
pub enum ExternalGrant {
    /// An external issuer's JWT for a service account's access token. Client credentials,
    /// when presented, must authenticate (they are not otherwise used).
    Federated { subject_token: String, client: Option<ClientSecret>, scope: Option<String>, target: Target },
    /// A user's access token, exchanged by an app (its client credentials and/or an
    /// `actor_token`: one of its own access tokens) for another audience.
    Delegated {
        subject_token: String,
        client: Option<ClientSecret>,
        actor_token: Option<String>,
        scope: Option<String>,
        target: Target,
    },
}

/// A parsed token request, one variant per supported grant (kanidm's `GrantTypeReq`).
#[derive(Debug)]
pub enum TokenRequest {
    /// RFC 6749 §4.4: an app with its client secret.
    ClientCredentials { client: ClientSecret, scope: Option<String>, target: Target },
    /// RFC 6749 §6 with an API token as the refresh token; client authentication optional.
    RefreshToken { refresh_token: String, client: Option<ClientSecret>, scope: Option<String>, target: Target },
    /// RFC 8693 with an API token as the subject token (the type is checked by the parser);
    /// client authentication optional.
    TokenExchange { subject_token: String, client: Option<ClientSecret>, scope: Option<String>, target: Target },
}

/// A parsed `POST /oauth/token` form: a grant [`token`] serves, or an external grant (RFC
/// 8693 with an external issuer's JWT, or delegation with a user's access token) that
/// `service::oauth::federation::token` serves, which the HTTP edge calls off the worker
/// thread (it may fetch an issuer's keys). Two request types, so that neither function can
/// be handed the other's grants.
#[derive(Debug)]
pub enum AnyTokenRequest {
    Api(TokenRequest),
    External(ExternalGrant),
}

impl From<TokenRequest> for AnyTokenRequest {
    fn from(r: TokenRequest) -> Self {
        AnyTokenRequest::Api(r)
    }
}

impl From<ExternalGrant> for AnyTokenRequest {
    fn from(g: ExternalGrant) -> Self {
        AnyTokenRequest::External(g)
    }
}

/// The RFC 6749 §5.1 success body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9...",
    "token_type": "Bearer", "expires_in": 1800, "scope": "metrics:read org:member",
    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}))]
pub struct TokenResponse {
    /// An RFC 9068 JWT (typ at+jwt) signed with a key published in the JWKS.
    pub access_token: String,
    #[schema(schema_with = bearer_type)]
    pub token_type: &'static str,
    /// Seconds; 1800 by default, an app's own access_token_ttl_seconds for client_credentials.
    pub expires_in: i64,
    /// The granted roles, space-separated (may be empty).
    pub scope: String,
    /// Only on the token-exchange grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = issued_type)]
    pub issued_token_type: Option<&'static str>,
    /// Not in the body: the `Tokend-Api-Token-Expires` header (an API-token exchange).
    #[serde(skip)]
    pub api_token_expires_at: Option<i64>,
}

fn bearer_type() -> utoipa::openapi::Object {
    crate::service::one_of(&["Bearer"])
}

fn issued_type() -> utoipa::openapi::Object {
    crate::service::one_of(&[TOKEN_TYPE_ACCESS])
}

impl TokenResponse {
    fn bearer(issued: Issued, issued_token_type: Option<&'static str>) -> TokenResponse {
        TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: issued.scope,
            issued_token_type,
            api_token_expires_at: issued.api_token_expires_at,
        }
    }
}

/// `POST /oauth/token`: every grant through one entry point. The target is resolved
/// first, then the client (when presented) is authenticated, then the grant's rules run.
/// No database write; a refused grant of a known token says so in `InvalidGrant::known`
/// for the caller's audit (see `audit_refusal`).
pub fn token<C: Source + ?Sized>(conn: &mut C, req: &TokenRequest, ctx: &Ctx<'_>) -> Result<TokenResponse, GrantError> {
    match req {
        TokenRequest::ClientCredentials { client, scope, target } => {
            let aud = resolve_audience(ctx.cfg, target.resource.as_deref(), target.audience.as_deref())?;
            let (id, secret, scope) = (&client.client_id, &client.secret, scope.as_deref());
            let issued = if revocable(secret) {
                api_token_client(conn, ctx, id, secret, scope, aud)?
            } else {
                client_credentials(conn, ctx, id, secret, scope, aud)?
            };
            Ok(TokenResponse::bearer(issued, None))
        }
        TokenRequest::RefreshToken { refresh_token, client, scope, target } => {
            let issued = exchange_grant(conn, ctx, refresh_token, client.as_ref(), scope.as_deref(), target)?;
            Ok(TokenResponse::bearer(issued, None))
        }
        TokenRequest::TokenExchange { subject_token, client, scope, target } => {
            let issued = exchange_grant(conn, ctx, subject_token, client.as_ref(), scope.as_deref(), target)?;
            Ok(TokenResponse::bearer(issued, Some(TOKEN_TYPE_ACCESS)))
        }
    }
}

/// [`token`] under the credential-failure rule: a refused credential (invalid_grant,
/// invalid_client) counts against the caller's address and the presented identity, and
/// once either is over the limit the answer is `slow_down` (valid credentials are always
/// answered: only failures are counted and turned into 429s).
pub fn token_guarded(conn: &mut AnyConnection, req: TokenRequest, ctx: &Ctx<'_>) -> Result<TokenResponse, GrantError> {
    token_guarded_in(conn, &req, ctx)
}

/// [`token_guarded`] from memory alone (the credential cache), without a database: `None`
/// when a read would be needed (a credential not cached, the management audience's policy),
/// and nothing was done or counted then; otherwise exactly the answer `token_guarded`
/// gives. The PostgreSQL token path's first attempt, on the HTTP worker.
pub fn token_from_memory(req: &TokenRequest, ctx: &Ctx<'_>) -> Option<Result<TokenResponse, GrantError>> {
    if !ctx.credentials.enabled() {
        return None;
    }
    match token_guarded_in(&mut MemoryOnly, req, ctx) {
        Err(GrantError::Store(StoreError::NeedsDatabase)) => None,
        r => Some(r),
    }
}

fn token_guarded_in<C: Source + ?Sized>(
    conn: &mut C,
    req: &TokenRequest,
    ctx: &Ctx<'_>,
) -> Result<TokenResponse, GrantError> {
    let r = token(conn, req, ctx);
    if let Err(
        GrantError::InvalidGrant { .. }
        | GrantError::InvalidClient
        | GrantError::InvalidApiTokenClient { .. }
        | GrantError::Unauthenticated(_),
    ) = &r
    {
        let identity = req.presented_identity();
        let per_minute = ctx.cfg.token_failures_per_minute;
        crate::service::authz::throttle::credential_failure(ctx.throttle, per_minute, ctx.ip, Some(&identity), ctx.now)
            .map_err(GrantError::SlowDown)?;
    }
    r
}

impl TokenRequest {
    /// The identity a failed request presented, for the failure throttle: the API token
    /// (also when sent as a client secret: its failures count per token, whatever id came
    /// with it), else the client id.
    pub fn presented_identity(&self) -> std::borrow::Cow<'_, str> {
        match self {
            TokenRequest::ClientCredentials { client, .. } if revocable(&client.secret) => {
                client.secret.as_str().into()
            }
            // The same key introspection counts an app's failures under.
            TokenRequest::ClientCredentials { client, .. } => format!("client:{}", client.client_id).into(),
            TokenRequest::RefreshToken { refresh_token, .. } => refresh_token.as_str().into(),
            TokenRequest::TokenExchange { subject_token, .. } => subject_token.as_str().into(),
        }
    }
}

/// refresh_token and token-exchange: the presented client, if any, must authenticate;
/// then the API token is exchanged.
fn exchange_grant<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    secret: &str,
    client: Option<&ClientSecret>,
    scope: Option<&str>,
    target: &Target,
) -> Result<Issued, GrantError> {
    let aud = resolve_audience(ctx.cfg, target.resource.as_deref(), target.audience.as_deref())?;
    if let Some(c) = client {
        authenticate_app_in(conn, Some(ctx.credentials), &c.client_id, &c.secret, ctx.now)?;
    }
    exchange(conn, ctx, secret, scope, aud)
}

/// Equal work for unknown clients: hash, then compare against a fixed dummy.
const DUMMY_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The app `client_id` names, if `secret` is its current secret or its previous one
/// still in its grace period (both compared in constant time, from the row read once).
/// An app authenticated by its previous secret is answered with the previous epoch, the
/// one its access tokens carry: they end with the grace.
pub fn authenticate_app(
    conn: &mut AnyConnection,
    client_id: &str,
    secret: &str,
    now: i64,
) -> Result<AppAuth, GrantError> {
    authenticate_app_in(conn, None, client_id, secret, now)
}

/// `authenticate_app` with the credential cache (`Some`: the token path).
fn authenticate_app_in<C: Source + ?Sized>(
    conn: &mut C,
    cache: Option<&Credentials>,
    client_id: &str,
    secret: &str,
    now: i64,
) -> Result<AppAuth, GrantError> {
    let presented = secrets::hash(secret);
    credential_cache::through(
        cache.and_then(Credentials::apps_on),
        conn,
        || credential_cache::app_key(client_id, &presented),
        |c| store::principals::app_for_client_auth(c, client_id).map_err(lost),
        |app| verify_app(app, &presented, now),
    )
}

/// The checks that decide an app's client authentication, on its looked-up row (fresh or
/// cached), the SHA-256 of the presented secret and the clock.
fn verify_app(app: Option<AppAuth>, presented: &str, now: i64) -> Result<AppAuth, GrantError> {
    let current = secrets::ct_eq(presented, app.as_ref().map(|a| a.secret_hash.as_str()).unwrap_or(DUMMY_HASH));
    let previous_hash = app
        .as_ref()
        .filter(|a| a.previous_secret_expires_at.is_some_and(|until| until > now))
        .and_then(|a| a.previous_secret_hash.as_deref());
    // Equal work whether or not a grace runs.
    let previous = secrets::ct_eq(presented, previous_hash.unwrap_or(DUMMY_HASH)) && previous_hash.is_some();
    match app {
        Some(a) if current && !a.disabled => Ok(a),
        Some(mut a) if previous && !a.disabled => {
            a.epoch -= 1;
            Ok(a)
        }
        _ => Err(GrantError::InvalidClient),
    }
}

pub fn client_credentials<C: Source + ?Sized>(
    conn: &mut C,
    ctx: &Ctx<'_>,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
    aud: String,
) -> Result<Issued, GrantError> {
    let app = authenticate_app_in(conn, Some(ctx.credentials), client_id, secret, ctx.now)?;
    let app_roles = roles_from_text(&app.roles);
    check_reach(conn, ctx, &app.org_id, (&app.audiences, app.management), &app_roles, &aud)?;
    let roles = narrow(app_roles, scope)?;
    let s =
        Subject { sub: &app.client_id, org: &app.org_id, acct: Acct::App, client_id: &app.client_id, epoch: app.epoch };
    let c = claims(ctx, &s, aud, app.access_token_ttl_seconds, roles);
    sign(ctx, &c)
}

/// RFC 7662 callers: an app an admin allowed to introspect (its org's tokens).
pub fn app_may_introspect(app: &AppAuth) -> Result<(), GrantError> {
    if app.introspect {
        Ok(())
    } else {
        Err(GrantError::AccessDenied("this app is not allowed to introspect tokens"))
    }
}

/// RFC 7662 callers: a management bearer holding org:admin (its org's tokens).
pub fn bearer_may_introspect(p: &crate::service::Principal) -> Result<(), GrantError> {
    if p.has(Role::OrgAdmin) {
        Ok(())
    } else {
        Err(GrantError::AccessDenied("introspection needs org:admin or app credentials"))
    }
}

/// RFC 7662 for a caller of `org_id`: active only if the token verifies AND what stands
/// behind it is still live AND it belongs to the caller's org.
pub fn introspect(
    conn: &mut AnyConnection,
    ctx: &Ctx<'_>,
    org_id: &str,
    token: &str,
) -> Result<serde_json::Value, GrantError> {
    let inactive = json!({ "active": false });
    if token.starts_with("tkd_") {
        return match check_token(conn, token, ctx.usage, ctx.now) {
            Ok((t, acct, owner_roles, _)) if t.org_id == org_id => {
                let roles = RoleSet::from_text(&t.roles).intersect(&RoleSet::from(owner_roles)).to_strings();
                Ok(json!({
                    "active": true,
                    "token_type": "api_token",
                    "client_id": t.id,
                    "sub": t.owner_id,
                    "acct": acct.as_str(),
                    "org": t.org_id,
                    "roles": roles,
                    "scope": roles.join(" "),
                    "iat": t.created_at,
                    "exp": t.expires_at,
                    "iss": ctx.cfg.issuer,
                    "name": t.name,
                    "audiences": roles_from_text(&t.audiences),
                    "management": t.management,
                }))
            }
            Ok(_) | Err(GrantError::InvalidGrant { .. }) => Ok(inactive),
            Err(e) => Err(e),
        };
    }
    Ok(access_view(verify_access(conn, ctx, token)?.as_ref(), org_id, ctx.now))
}

/// An access token that verifies and whose principal is live: its claims and the roles
/// it carries that the principal still holds.
#[derive(Clone, Debug)]
pub struct Verified {
    pub claims: AccessClaims,
    pub roles: Vec<String>,
    /// When this answer stops holding by the clock alone (`principal::resolve_until`).
    pub until: i64,
}

/// Verifies an access token (signature, iss, exp/nbf by our own clock) and resolves its
/// principal (live, epoch, API token, session, jti): None when it is not active.
pub fn verify_access(conn: &mut AnyConnection, ctx: &Ctx<'_>, token: &str) -> Result<Option<Verified>, GrantError> {
    let set = ctx.keys.set();
    let Ok(c) = jwt::verify(&set, token, &ctx.cfg.issuer, None, ctx.now) else { return Ok(None) };
    // The leeway in verify() is for other machines' clocks; here our own clock decides exactly.
    if c.exp <= ctx.now || c.nbf > ctx.now {
        return Ok(None);
    }
    let found = crate::service::authz::principal::resolve_until(conn, &c, ctx.usage, ctx.now)?;
    Ok(found.map(|(p, until)| Verified { claims: c, roles: p.roles.to_strings(), until }))
}

/// The RFC 7662 answer for a verified access token (or none), for a caller of `org_id`.
pub fn access_view(v: Option<&Verified>, org_id: &str, now: i64) -> serde_json::Value {
    match v {
        Some(Verified { claims: c, roles, .. }) if c.org == org_id && c.exp > now && c.nbf <= now => {
            let Ok(mut v) = serde_json::to_value(c) else {
                log::error!("serialising the claims of an introspected token failed: answered inactive");
                return json!({ "active": false });
            };
            v["active"] = json!(true);
            v["token_type"] = json!("Bearer");
            v["scope"] = json!(roles.join(" "));
            v["roles"] = json!(roles);
            v
        }
        _ => json!({ "active": false }),
    }
}

/// Whether `secret` has the form of an API token (PAT or service token) with a valid
/// checksum: only those can name a stored token.
pub fn revocable(secret: &str) -> bool {
    matches!(secrets::parse(secret), Ok(SecretKind::Personal) | Ok(SecretKind::Service))
}

/// Whether an API token with this secret hash is stored (live or not); one indexed read.
pub fn token_known(conn: &mut AnyConnection, hash: &str) -> Result<bool, GrantError> {
    Ok(store::tokens::hash_known(conn, hash)?)
}

/// Records a refused exchange of a known token (by id; never the secret).
pub fn audit_refusal(
    conn: &mut AnyConnection,
    org_id: &str,
    token_id: &str,
    reason: Refusal,
    ip: &str,
    now: i64,
) -> crate::service::Result<()> {
    let ev = Entry::new(org_id, ActorKind::ApiToken, token_id, Action::TokenExchange)
        .on("api_token", Some(token_id))
        .from_ip(Some(ip))
        .outcome(Outcome::Failure)
        .detail(json!({ "reason": reason.as_str() }));
    events::emit(conn, ev, now)
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
