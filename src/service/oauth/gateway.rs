//! Forward-auth for gateways (nginx `auth_request`, Traefik `forwardAuth`, Envoy
//! `ext_authz`, Caddy `forward_auth`) and the in-memory credential caches on the hot
//! path (forward-auth and introspection).
//!
//! An API token presented to the gateway is exchanged by the very rules of
//! `POST /oauth/token` (`exchange::exchange_claims`: roles ∩ owner roles, audience,
//! service-only audiences, expiry, idle, disabled owner); an access token presented
//! instead is verified and resolved as introspection does (`exchange::verify_access`).
//!
//! Caches: bounded, keyed by a SHA-256, holding an entry for at most `seconds`
//! (`TOKEND_GATEWAY_CACHE_SECONDS`) and never beyond the access token's life; an entry
//! is dropped as soon as anything is revoked or weakened in this process (the revocation
//! generation of `store::revocations`). Other instances learn of a revocation when
//! their entry's time is up. Only successes are cached.
use parking_lot::Mutex;
use std::collections::HashMap;

use crate::secrets;
use crate::service::oauth::exchange::{self, Ctx, GrantError, Verified};
use crate::store::revocations::generation;
use crate::store::AnyConnection;

/// Entries per cache, beyond which the stale ones and then arbitrary ones are dropped.
pub const CACHE_ENTRIES: usize = 10_000;

struct Slot<V> {
    value: V,
    generation: u64,
    until: i64,
}

/// A bounded map from a key to a value valid until a time and under a generation.
pub struct Cache<V> {
    map: Mutex<HashMap<String, Slot<V>>>,
    cap: usize,
    /// The current revocation generation (the process-wide one but in unit tests).
    generation: fn() -> u64,
}

impl<V: Clone> Cache<V> {
    pub fn new(cap: usize) -> Cache<V> {
        Cache { map: Mutex::new(HashMap::new()), cap: cap.max(1), generation }
    }

    /// The live value under `key` at `now`, if any (no database, no signing).
    pub fn get(&self, key: &str, now: i64) -> Option<V> {
        let gen = (self.generation)();
        let map = self.map.lock();
        map.get(key).filter(|s| s.generation == gen && s.until > now).map(|s| s.value.clone())
    }

    /// Keeps `value` until `until`, if nothing was revoked since `generation` was read.
    pub fn put(&self, key: String, value: V, generation_read: u64, until: i64, now: i64) {
        if until <= now {
            return;
        }
        let mut map = self.map.lock();
        if (self.generation)() != generation_read {
            return;
        }
        if map.len() >= self.cap && !map.contains_key(&key) {
            let gen = generation_read;
            map.retain(|_, s| s.generation == gen && s.until > now);
            if map.len() >= self.cap {
                // Still full of live entries: drop an eighth, whichever the hasher lists first.
                let drop: Vec<String> = map.keys().take(self.cap / 8 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, Slot { value, generation: generation_read, until });
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a gateway passes upstream for an admitted request.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The access token for the upstream: freshly minted (API token) or the one presented.
    pub access_token: String,
    pub sub: String,
    pub org: String,
    pub acct: String,
    pub roles: Vec<String>,
    /// The API token's id (the `client_id` claim), or the app's client id.
    pub client_id: String,
    pub exp: i64,
}

/// The forward-auth and introspection caches of one process.
pub struct Caches {
    pub grants: Cache<Admitted>,
    pub access: Cache<Verified>,
    /// How long an entry may be served (0: no caching).
    pub seconds: i64,
}

impl Caches {
    pub fn new(seconds: i64) -> Caches {
        Caches { grants: Cache::new(CACHE_ENTRIES), access: Cache::new(CACHE_ENTRIES), seconds }
    }
}

fn grant_key(secret: &str, aud: &str) -> String {
    format!("{}|{aud}", secrets::hash(secret))
}

/// A cached admission of this API token for this audience.
pub fn cached_grant(c: &Caches, secret: &str, aud: &str, now: i64) -> Option<Admitted> {
    if c.seconds == 0 {
        return None;
    }
    c.grants.get(&grant_key(secret, aud), now)
}

/// The API token exchanged for `aud` by the rules of `POST /oauth/token`, then cached
/// (under the generation read before the exchange) until the cache time is up or the
/// minted token nears its end (less than a minute or a tenth of its life left).
pub fn admit_api_token(
    conn: &mut AnyConnection,
    caches: &Caches,
    ctx: &Ctx<'_>,
    secret: &str,
    aud: String,
) -> Result<Admitted, GrantError> {
    let gen = generation();
    let (issued, c) = exchange::exchange_claims(conn, ctx, secret, None, aud.clone())?;
    let token_end = issued.api_token_expires_at;
    let a = Admitted {
        access_token: issued.access_token,
        sub: c.sub,
        org: c.org,
        acct: c.acct,
        roles: c.roles,
        client_id: c.client_id,
        exp: c.exp,
    };
    if caches.seconds > 0 {
        let margin = ((c.exp - c.iat) / 10).max(60);
        // Never past the API token's own expiry either (idle cannot come sooner: this use
        // and every hit count as uses).
        let token_end = token_end.unwrap_or(i64::MAX);
        let until = (ctx.now + caches.seconds).min(c.exp - margin).min(token_end);
        caches.grants.put(grant_key(secret, &aud), a.clone(), gen, until, ctx.now);
    }
    Ok(a)
}

fn access_key(token: &str) -> String {
    secrets::hash(token)
}

/// A cached verification of this access token.
pub fn cached_access(c: &Caches, token: &str, now: i64) -> Option<Verified> {
    if c.seconds == 0 {
        return None;
    }
    c.access.get(&access_key(token), now)
}

/// `exchange::verify_access`, with an active answer cached (never beyond the token's exp).
pub fn verify_access(
    conn: &mut AnyConnection,
    caches: &Caches,
    ctx: &Ctx<'_>,
    token: &str,
) -> Result<Option<Verified>, GrantError> {
    let gen = generation();
    let v = exchange::verify_access(conn, ctx, token)?;
    if let Some(v) = &v {
        if caches.seconds > 0 {
            let until = (ctx.now + caches.seconds).min(v.until);
            caches.access.put(access_key(token), v.clone(), gen, until, ctx.now);
        }
    }
    Ok(v)
}

/// Why a presented access token is not admitted for an audience.
#[derive(Debug, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Not active (does not verify, expired, revoked, principal gone).
    Inactive,
    /// Active, but minted for another audience: the gateway passes tokens through, never
    /// re-targets them.
    OtherAudience,
}

/// An access token presented to the gateway: admitted only for its own audience, passed
/// through unchanged.
pub fn admit_access(token: &str, v: Option<Verified>, aud: &str, now: i64) -> Result<Admitted, AccessRefusal> {
    let Some(Verified { claims: c, roles, .. }) = v else { return Err(AccessRefusal::Inactive) };
    if c.exp <= now || c.nbf > now {
        return Err(AccessRefusal::Inactive);
    }
    if c.aud != aud {
        return Err(AccessRefusal::OtherAudience);
    }
    Ok(Admitted {
        access_token: token.to_string(),
        sub: c.sub,
        org: c.org,
        acct: c.acct,
        roles,
        client_id: c.client_id,
        exp: c.exp,
    })
}

/// Whether the admitted roles satisfy the route's required role (one that implies it,
/// such as org:admin for org:member, counts).
pub fn has_role(a: &Admitted, role: Option<&str>) -> bool {
    role.is_none_or(|r| crate::service::RoleSet::from(a.roles.as_slice()).holds(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_respects_time_generation_and_bound() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static GEN: AtomicU64 = AtomicU64::new(7);
        let mut c: Cache<u32> = Cache::new(16);
        c.generation = || GEN.load(Ordering::SeqCst);
        let g = 7;
        c.put("a".into(), 1, g, 110, 100);
        assert_eq!(c.get("a", 105), Some(1));
        assert_eq!(c.get("a", 110), None, "never at or past its time");
        c.put("b".into(), 2, g.wrapping_sub(1), 200, 100);
        assert_eq!(c.get("b", 105), None, "read under an older generation: not kept");
        c.put("c".into(), 3, g, 100, 100);
        assert_eq!(c.get("c", 99), None, "already over: not kept");
        GEN.store(8, Ordering::SeqCst);
        assert_eq!(c.get("a", 105), None, "a revocation drops every entry");
        let g = 8;
        for i in 0..100 {
            c.put(format!("k{i}"), i, g, 1000, 100);
        }
        assert!(c.len() <= 16, "bounded: {}", c.len());
        assert_eq!(c.get("k99", 500), Some(99), "the newest entry is kept");
    }
}
