//! Keyless clients and delegation (issue #22), two RFC 8693 token exchanges beside the
//! API-token one in `exchange`:
//!
//! - **Federation**: `subject_token_type=urn:ietf:params:oauth:token-type:jwt` (or
//!   `…:id_token`): a token of an external OIDC issuer (GitHub Actions, GitLab CI, a
//!   Kubernetes service-account token) is verified against the issuer's JWKS (`jwks`) and
//!   matched against the trust policies naming that issuer (`policies`, `conditions`); the
//!   answer is an access token of the mapped service account (`acct: service_account`) whose
//!   `external` claim records who it was: `{"iss", "sub", "policy"}`.
//! - **Delegation**: `subject_token_type=urn:ietf:params:oauth:token-type:access_token`: an
//!   app holding a user's tokend access token (authenticated by its client credentials or
//!   an `actor_token` of its own) obtains a token for another resource audience an admin
//!   allowed it to act for; the answer carries `act: {"sub": <client_id>}`, the user as
//!   `sub`, roles narrowed to what both hold, and never outlives the subject token.
//!
//! Both are audited (success and refusal) and answered by `token`, which the HTTP edge runs
//! on the blocking pool: a key fetch may take seconds. Neither touches the API-token hot
//! path.
pub mod conditions;
pub mod jwks;
pub mod policies;

use base64::Engine;
use diesel::Connection;
use serde_json::{json, Value};

use super::exchange::{
    authenticate_app, claims, narrow, resolve_audience, verify_access, ClientSecret, Ctx, GrantError, Subject, Target,
    TokenResponse, TOKEN_TYPE_ACCESS,
};
use crate::jwt::AccessClaims;
use crate::service::authz::roles::RoleSet;
use crate::service::events::audit::{self, Action, ActorKind, Entry, Outcome, RefusalFlood};
use crate::service::Acct;
use crate::store::trust_policies::TrustPolicy;
use crate::store::{self, Db};

/// RFC 8693 token types of external tokens.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The subject token types of federation.
pub const EXTERNAL_TYPES: [&str; 2] = [TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN];

/// Seconds of clock skew tolerated on the external token's `exp`, `nbf` and `iat`.
pub const LEEWAY: i64 = 60;
/// The longest external token considered (anything longer is refused unread).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The signature algorithms accepted from external issuers. Never `none`, never HMAC (a
/// shared secret cannot be published in a JWKS; `HS256` with the issuer's public key as the
/// secret is the classic forgery).
pub const ALGORITHMS: [jsonwebtoken::Algorithm; 3] =
    [jsonwebtoken::Algorithm::RS256, jsonwebtoken::Algorithm::ES256, jsonwebtoken::Algorithm::EdDSA];
/// The claim of a federated access token naming the external identity.
pub const EXTERNAL_CLAIM: &str = "external";

pub use crate::service::oauth::exchange::ExternalGrant as Grant;

/// What `token` needs beyond the request context.
pub struct Env<'a> {
    pub db: &'a Db,
    pub keys: &'a jwks::IssuerKeys,
    pub fetch: &'a dyn jwks::Fetch,
    /// Flood control for audit rows of refusals.
    pub refused: &'a RefusalFlood,
}

/// A refusal with what its audit row says (named apart from `exchange::Refusal`, the reason
/// of an API token's refusal). `orgs`: the orgs it concerns (the policies' orgs for
/// federation; none when nothing attributes it).
struct AuditedRefusal {
    error: GrantError,
    reason: String,
    orgs: Vec<(String, Option<String>)>,
    detail: Value,
}

impl AuditedRefusal {
    fn new(error: GrantError, reason: impl Into<String>) -> AuditedRefusal {
        AuditedRefusal { error, reason: reason.into(), orgs: Vec::new(), detail: json!({}) }
    }
    fn grant(reason: &'static str) -> AuditedRefusal {
        // The grant error's own reason names a stored API token's refusal (none here); the
        // federation's reason is audited by `audit_refusal`.
        let known = None;
        AuditedRefusal::new(
            GrantError::InvalidGrant { known, reason: crate::service::oauth::exchange::Refusal::Unknown },
            reason,
        )
    }
    fn about(mut self, policies: &[TrustPolicy]) -> AuditedRefusal {
        self.orgs = policies.iter().map(|p| (p.org_id.clone(), Some(p.id.clone()))).collect();
        self.orgs.dedup_by(|a, b| a.0 == b.0);
        self
    }
    fn detail(mut self, d: Value) -> AuditedRefusal {
        self.detail = d;
        self
    }
}

impl From<GrantError> for AuditedRefusal {
    fn from(e: GrantError) -> AuditedRefusal {
        // invalid_grant says which check failed (for the audit only); other refusals by
        // their code.
        let reason = match &e {
            GrantError::InvalidGrant { reason, .. } => reason.to_string(),
            other => code(other).to_string(),
        };
        AuditedRefusal::new(e, reason)
    }
}

impl From<crate::store::StoreError> for AuditedRefusal {
    fn from(e: crate::store::StoreError) -> AuditedRefusal {
        AuditedRefusal::from(GrantError::Store(e))
    }
}

impl From<diesel::result::Error> for AuditedRefusal {
    fn from(e: diesel::result::Error) -> AuditedRefusal {
        AuditedRefusal::from(GrantError::from(e))
    }
}

/// A success's audit row.
struct Done {
    response: TokenResponse,
    org: String,
    actor_kind: ActorKind,
    actor_id: String,
    action: Action,
    object: (&'static str, String),
    detail: Value,
}

/// `POST /oauth/token` for the grants of this module: answers, and writes the audit row
/// (success, or refusal when it can be attributed to an org).
pub fn token(env: &Env<'_>, ctx: &Ctx<'_>, grant: Grant) -> Result<TokenResponse, GrantError> {
    let (action, result) = match grant {
        Grant::Federated { subject_token, client, scope, target } => {
            (Action::TrustPolicyExchange, federate(env, ctx, &subject_token, client, scope.as_deref(), &target))
        }
        Grant::Delegated { subject_token, client, actor_token, scope, target } => (
            Action::TokenDelegate,
            delegate(env, ctx, &subject_token, client, actor_token.as_deref(), scope.as_deref(), &target),
        ),
    };
    match result {
        Ok(done) => {
            let ev = Entry::new(&done.org, done.actor_kind, &done.actor_id, done.action)
                .on(done.object.0, Some(&done.object.1))
                .from_ip(Some(ctx.ip))
                .detail(done.detail);
            let mut w = env.db.write()?;
            w.transaction(|c| crate::service::events::emit(c, ev, ctx.now))?;
            Ok(done.response)
        }
        Err(r) => {
            audit_refusal(env, ctx, action, &r);
            Err(r.error)
        }
    }
}

/// Audits a refusal in each org it concerns (at most a few rows a minute per policy or
/// issuer; the rest are summarised); a failure to write is logged, never turned into a
/// server error.
fn audit_refusal(env: &Env<'_>, ctx: &Ctx<'_>, action: Action, r: &AuditedRefusal) {
    let code = code(&r.error);
    // Not audited: failures of the request or of client authentication (as for every
    // grant), outages, and delegation refusals nothing attributes to an org.
    if matches!(code, "invalid_request" | "invalid_client" | "server_error")
        || (r.orgs.is_empty() && action != Action::TrustPolicyExchange)
    {
        return;
    }
    let mut detail = r.detail.clone();
    detail["reason"] = json!(r.reason);
    detail["error"] = json!(code);
    let targets: Vec<(Option<&str>, Option<&str>)> = if r.orgs.is_empty() {
        vec![(None, None)]
    } else {
        r.orgs.iter().map(|(o, p)| (Some(o.as_str()), p.as_deref())).collect()
    };
    let delegation = action == Action::TokenDelegate;
    let (actor_kind, object_kind) =
        if delegation { (ActorKind::App, "app") } else { (ActorKind::External, "trust_policy") };
    // Flood control first: a refusal over its budget costs no write connection.
    let admitted: Vec<_> = targets
        .into_iter()
        .map(|(org, object)| {
            let flood_key = format!("{}:{}:{}", action.as_str(), object.or(org).unwrap_or("unattributed"), r.reason);
            let (write, summary) =
                env.refused.admit_for(&flood_key, org.unwrap_or(""), actor_kind, Some(ctx.ip), ctx.now);
            (org, object, write, summary.filter(|s| !s.org_id.is_empty()))
        })
        .filter(|(_, _, write, summary)| *write || summary.is_some())
        .collect();
    if admitted.is_empty() {
        return;
    }
    let actor = detail.get("external_sub").or(detail.get("actor")).and_then(Value::as_str).map(truncated);
    let result = env.db.write().map_err(crate::service::Error::from).and_then(|mut w| {
        for (org, object, write, summary) in admitted {
            if let Some(sum) = summary {
                sum.record(&mut w, ctx.now)?;
            }
            if !write {
                continue;
            }
            let ev = Entry {
                org_id: org,
                actor_kind,
                actor_id: actor.as_deref(),
                action: action.clone(),
                object_kind: object.map(|_| object_kind),
                object_id: object,
                ip: Some(ctx.ip),
                outcome: Outcome::Failure,
                detail: Some(detail.clone()),
            };
            audit::write(&mut w, &ev, ctx.now)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        log::warn!("auditing a refused {} failed: {e}", action.as_str());
    }
}

/// The RFC 6749 error code a refusal is answered with (as `crate::error` maps it).
fn code(e: &GrantError) -> &'static str {
    match e {
        GrantError::InvalidGrant { .. } => "invalid_grant",
        GrantError::InvalidClient | GrantError::InvalidApiTokenClient { .. } => "invalid_client",
        GrantError::InvalidScope(_) => "invalid_scope",
        GrantError::InvalidTarget(_) => "invalid_target",
        GrantError::UnauthorizedClient(_) => "unauthorized_client",
        GrantError::InvalidRequest(_) => "invalid_request",
        GrantError::AccessDenied(_) => "access_denied",
        GrantError::UnsupportedTokenType => "unsupported_token_type",
        GrantError::Service(crate::service::Error::Unavailable { .. }) => "temporarily_unavailable",
        _ => "server_error",
    }
}

fn truncated(s: &str) -> String {
    crate::service::events::audit::truncate(s).into_owned()
}

/// The claims of a compact JWS, unverified (to find the issuer before anything else).
fn unverified_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&raw).ok().filter(Value::is_object)
}

/// Signs `c` with extra top-level claims (`act`, `external`).
fn sign_with(ctx: &Ctx<'_>, c: &AccessClaims, extra: Value) -> Result<String, GrantError> {
    let mut v = serde_json::to_value(c).map_err(|e| crate::service::Error::Internal(Box::new(e)))?;
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    let body = serde_json::to_vec(&v).map_err(|e| crate::service::Error::Internal(Box::new(e)))?;
    Ok(ctx.keys.sign(&body, ctx.now)?)
}

fn response(access_token: String, c: &AccessClaims) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: c.exp - c.iat,
        scope: c.scope.clone(),
        issued_token_type: Some(TOKEN_TYPE_ACCESS),
        api_token_expires_at: None,
    }
}

/// A resource audience (never the management one: these tokens carry identities that the
/// management API does not resolve).
fn resource_audience(ctx: &Ctx<'_>, target: &Target, what: &str) -> Result<String, GrantError> {
    let aud = resolve_audience(ctx.cfg, target.resource.as_deref(), target.audience.as_deref())?;
    if aud == ctx.cfg.api_audience {
        return Err(GrantError::InvalidTarget(format!("{what} are issued for resource audiences only")));
    }
    Ok(aud)
}

// ---- federation ----

fn num(claims: &Value, k: &str) -> Option<i64> {
    claims.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// Whether the external token's `aud` (a string or an array) names `wanted`.
fn audience_has(claims: &Value, wanted: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(wanted)),
        _ => false,
    }
}

/// Whether a JWK is the kind of key `alg` needs (and strong enough).
fn key_fits(jwk: &jsonwebtoken::jwk::Jwk, alg: jsonwebtoken::Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    use jsonwebtoken::Algorithm as A;
    let published = jwk.common.key_algorithm.map(|k| format!("{k:?}"));
    if published.is_some_and(|p| p != format!("{alg:?}")) {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (P::RSA(r), A::RS256) => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(r.n.trim_end_matches('=')).is_ok_and(|n| {
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                bits >= 2048
            })
        }
        (P::EllipticCurve(e), A::ES256) => e.curve == C::P256,
        (P::OctetKeyPair(o), A::EdDSA) => o.curve == C::Ed25519,
        _ => false,
    }
}

// The refusal (with its audit detail) is the cold path; a box would buy nothing.
#[allow(clippy::result_large_err)]
fn federate(
    env: &Env<'_>,
    ctx: &Ctx<'_>,
    token: &str,
    client: Option<ClientSecret>,
    scope: Option<&str>,
    target: &Target,
) -> Result<Done, AuditedRefusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuditedRefusal::grant("external token too large"));
    }
    let Some(unverified) = unverified_claims(token) else {
        return Err(AuditedRefusal::grant("malformed external token"));
    };
    let Some(iss) = unverified.get("iss").and_then(Value::as_str).map(str::to_string) else {
        return Err(AuditedRefusal::grant("external token without iss"));
    };
    let ext = json!({"external_iss": truncated(&iss),
        "external_sub": unverified.get("sub").and_then(Value::as_str).map(truncated)});
    let candidates = {
        let mut conn = env.db.read()?;
        if let Some(c) = &client {
            authenticate_app(&mut conn, &c.client_id, &c.secret, ctx.now)?;
        }
        store::trust_policies::enabled_for_issuer(&mut conn, &iss)?
    };
    if candidates.is_empty() {
        // Nothing trusts this issuer: refused before any key is fetched from it.
        return Err(AuditedRefusal::grant("untrusted issuer").detail(ext));
    }
    let refuse = |reason: &'static str| AuditedRefusal::grant(reason).about(&candidates).detail(ext.clone());
    // The header: a strict algorithm allowlist (jsonwebtoken does not even parse `none`).
    let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("unsupported or malformed header"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refuse("algorithm not allowed"));
    }
    let kid = header.kid.as_deref().ok_or_else(|| refuse("no kid"))?;
    let jwk = match env.keys.key(&iss, kid, ctx.now, env.fetch) {
        jwks::Lookup::Key(k) => k,
        jwks::Lookup::UnknownKid => return Err(refuse("unknown kid")),
        jwks::Lookup::Unavailable(why) => {
            let e = crate::service::Error::Unavailable {
                what: "the external issuer's keys cannot be fetched",
                retry_after: jwks::MIN_REFETCH_SECONDS as u64,
            };
            return Err(AuditedRefusal::new(GrantError::Service(e), format!("issuer keys unavailable: {why}"))
                .about(&candidates)
                .detail(ext));
        }
    };
    if !key_fits(&jwk, header.alg) {
        return Err(refuse("key does not fit the algorithm"));
    }
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| refuse("unusable key"))?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.algorithms = vec![header.alg];
    // Time, issuer and audience are checked below, by our clock and per policy.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let c = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|_| refuse("bad signature"))?.claims;
    if c.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
        return Err(refuse("issuer mismatch"));
    }
    let sub = c.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| refuse("no sub"))?;
    let exp = num(&c, "exp").ok_or_else(|| refuse("no exp"))?;
    let iat = num(&c, "iat").ok_or_else(|| refuse("no iat"))?;
    if exp.saturating_add(LEEWAY) <= ctx.now {
        return Err(refuse("expired"));
    }
    if num(&c, "nbf").is_some_and(|nbf| nbf.saturating_sub(LEEWAY) > ctx.now) {
        return Err(refuse("not yet valid"));
    }
    if iat.saturating_sub(LEEWAY) > ctx.now {
        return Err(refuse("issued in the future"));
    }
    // The policies this token satisfies; each other policy says why not (for the audit).
    let mut why_not = Vec::new();
    let matching: Vec<&TrustPolicy> = candidates
        .iter()
        .filter(|p| {
            let fail = if !audience_has(&c, &p.audience) {
                Some("audience".to_string())
            } else if ctx.now.saturating_sub(iat) > p.max_age_seconds {
                Some("older than max_age_seconds".to_string())
            } else {
                conditions::first_failing(&policies::conditions_of(p), &c).map(|claim| format!("condition on {claim}"))
            };
            if let Some(f) = &fail {
                why_not.push(json!({"policy": p.id, "failed": f}));
            }
            fail.is_none()
        })
        .collect();
    let mut ext = ext;
    ext["external_jti"] = json!(c.get("jti").and_then(Value::as_str).map(truncated));
    let policy = match matching[..] {
        [one] => one,
        [] => {
            let reason =
                if why_not.iter().all(|w| w["failed"] == "audience") { "wrong audience" } else { "no policy matches" };
            ext["policies"] = json!(why_not);
            return Err(AuditedRefusal::grant(reason).about(&candidates).detail(ext));
        }
        _ => {
            let ids: Vec<&str> = matching.iter().map(|p| p.id.as_str()).collect();
            ext["policies"] = json!(ids);
            return Err(AuditedRefusal::grant("several policies match").about(&candidates).detail(ext));
        }
    };
    let about = std::slice::from_ref(policy);
    let aud = resource_audience(ctx, target, "tokens of external identities")
        .map_err(|e| AuditedRefusal::from(e).about(about).detail(ext.clone()))?;
    let mut conn = env.db.read()?;
    let sa = store::principals::live_account(&mut conn, &policy.org_id, &policy.service_account_id)?
        .filter(|s| !s.disabled)
        .ok_or_else(|| AuditedRefusal::grant("service account disabled or gone").about(about).detail(ext.clone()))?;
    let granted = RoleSet::from_text(&policy.roles).intersect(&RoleSet::from_text(&sa.roles)).to_strings();
    let roles = narrow(granted, scope).map_err(|e| AuditedRefusal::from(e).about(about).detail(ext.clone()))?;
    drop(conn);
    let s =
        Subject { sub: &sa.id, org: &sa.org_id, acct: Acct::ServiceAccount, client_id: &policy.id, epoch: sa.epoch };
    let claims = claims(ctx, &s, aud.clone(), ctx.cfg.access_token_ttl, roles.clone());
    let external = json!({"iss": iss, "sub": sub, "policy": policy.id});
    let signed = sign_with(ctx, &claims, json!({ EXTERNAL_CLAIM: external }))?;
    let mut detail = ext;
    detail["external_sub"] = json!(truncated(sub));
    detail["service_account_id"] = json!(sa.id);
    detail["audience"] = json!(aud);
    detail["roles"] = json!(roles);
    detail["jti"] = json!(claims.jti);
    Ok(Done {
        response: response(signed, &claims),
        org: sa.org_id.clone(),
        actor_kind: ActorKind::External,
        actor_id: truncated(sub),
        action: Action::TrustPolicyExchange,
        object: ("trust_policy", policy.id.clone()),
        detail,
    })
}

// ---- delegation ----

// The refusal (with its audit detail) is the cold path; a box would buy nothing.
#[allow(clippy::result_large_err)]
fn delegate(
    env: &Env<'_>,
    ctx: &Ctx<'_>,
    subject_token: &str,
    client: Option<ClientSecret>,
    actor_token: Option<&str>,
    scope: Option<&str>,
    target: &Target,
) -> Result<Done, AuditedRefusal> {
    let aud = resource_audience(ctx, target, "delegated tokens")?;
    let mut conn = env.db.read()?;
    let conn = &mut *conn;
    // The actor: the app by its credentials, by an access token of its own, or both (then
    // the same app).
    let by_client = match &client {
        Some(c) => Some(authenticate_app(conn, &c.client_id, &c.secret, ctx.now)?),
        None => None,
    };
    let by_actor = match actor_token {
        Some(t) => {
            let v = verify_access(conn, ctx, t)?.ok_or_else(|| AuditedRefusal::grant("actor token not active"))?;
            if v.claims.acct != Acct::App.as_str() {
                return Err(AuditedRefusal::grant("actor token is not an app's"));
            }
            let app = store::principals::app_by_client_id(conn, &v.claims.sub)?
                .filter(|a| !a.disabled)
                .ok_or_else(|| AuditedRefusal::grant("actor app gone"))?;
            Some(store::models::AppAuth::from(app))
        }
        None => None,
    };
    let app = match (by_client, by_actor) {
        (Some(a), Some(b)) if a.id != b.id => {
            return Err(AuditedRefusal::from(GrantError::InvalidRequest(
                "the actor_token and the client authentication name different apps".into(),
            )))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(AuditedRefusal::from(GrantError::InvalidRequest(
                "delegation needs the acting app: client authentication or an actor_token".into(),
            )))
        }
    };
    let about = |r: AuditedRefusal| AuditedRefusal {
        orgs: vec![(app.org_id.clone(), Some(app.id.clone()))],
        detail: json!({"actor": app.client_id, "audience": aud}),
        ..r
    };
    // The subject: a live access token of a user or service account, not itself delegated
    // (no chains) or federated.
    let raw = unverified_claims(subject_token).unwrap_or_default();
    if raw.get("act").is_some() || raw.get(EXTERNAL_CLAIM).is_some() {
        return Err(about(AuditedRefusal::grant("subject token is delegated or external")));
    }
    let subject = verify_access(conn, ctx, subject_token)
        .map_err(AuditedRefusal::from)?
        .ok_or_else(|| about(AuditedRefusal::grant("subject token not active")))?;
    let sc = &subject.claims;
    let acct = match Acct::parse(&sc.acct) {
        Some(a @ (Acct::User | Acct::ServiceAccount)) => a,
        _ => return Err(about(AuditedRefusal::grant("subject is not a user or service account"))),
    };
    let allowed = sc.org == app.org_id && store::trust_policies::delegation_allowed(conn, &app.org_id, &app.id, &aud)?;
    if !allowed {
        return Err(about(AuditedRefusal::from(GrantError::UnauthorizedClient(
            "this client is not allowed to act on behalf of others for the requested audience".into(),
        ))));
    }
    if acct == Acct::User && ctx.cfg.service_only_audiences.contains(&aud) {
        return Err(about(AuditedRefusal::from(GrantError::InvalidTarget(
            "this audience accepts service-account tokens only".into(),
        ))));
    }
    let granted = RoleSet::from(subject.roles.as_slice()).intersect(&RoleSet::from_text(&app.roles)).to_strings();
    let roles = narrow(granted, scope).map_err(|e| about(AuditedRefusal::from(e)))?;
    let s = Subject { sub: &sc.sub, org: &sc.org, acct, client_id: &app.client_id, epoch: sc.ep.unwrap_or(0) };
    let mut c = claims(ctx, &s, aud.clone(), app.access_token_ttl_seconds.min(ctx.cfg.access_token_ttl), roles);
    // Never longer than the subject token.
    c.exp = c.exp.min(sc.exp);
    if c.exp <= ctx.now {
        return Err(about(AuditedRefusal::grant("subject token expires now")));
    }
    let signed = sign_with(ctx, &c, json!({"act": {"sub": app.client_id}}))?;
    let detail = json!({"actor": app.client_id, "audience": aud, "roles": c.roles, "subject_jti": sc.jti,
        "jti": c.jti});
    Ok(Done {
        response: response(signed, &c),
        org: app.org_id.clone(),
        actor_kind: ActorKind::App,
        actor_id: app.client_id.clone(),
        action: Action::TokenDelegate,
        object: (if acct == Acct::User { "user" } else { "service_account" }, sc.sub.clone()),
        detail,
    })
}
