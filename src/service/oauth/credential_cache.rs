//! The verified-credential cache of the token path: what the credential lookups of
//! `POST /oauth/token` read (an API token's row with its owner's state; an app's row),
//! kept in memory after a lookup whose verification succeeded, so that a later request
//! with the same credential reads no database.
//!
//! - Keyed by the SHA-256 of the presented secret (with the client id for apps), never the
//!   secret itself ([`token_key`], [`app_key`]).
//! - Only the lookup is cached, not the verdict: every check (revoked, expiry, idle against
//!   last use, owner disabled, kind, app secret and grace) runs again on every request
//!   against the cached row and the clock. A cached row that fails them is not trusted
//!   either way: the database decides ([`through`]).
//! - Only a lookup whose verification succeeded is kept: a refusal is never cached.
//! - Bounded: at most `cap` entries (`TOKEND_CREDENTIAL_CACHE`, 0 = off); when full, the
//!   stale entries and then an eighth of the rest go.
//! - Invalidated coarsely: an entry holds under one generation only. The generation is
//!   the process-wide one of `store::revocations`, which moves on at every audited change
//!   (`service::events::emit`) and every store write that weakens a credential (twice: in
//!   the writer's transaction and once it is over), when another instance's change arrives
//!   (PostgreSQL `LISTEN tokend_credentials`) and, on SQLite, when another connection
//!   committed to the file (`store::CommitWatch`, which also sees another process such as
//!   `tokend leaks check`); both watched by `app::credential_listener`, every 5 ms.
//! - The cache serves nothing until its watcher runs, nor while the watcher has lost its
//!   connection: [`CredentialCache::set_listening`].
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::secrets;
use crate::store::revocations::generation;
use crate::store::{AnyConnection, StoreError};

/// Where a credential lookup's database connection comes from: a connection, or none at
/// all (answer from memory or not at all: `MemoryOnly`).
pub trait Source {
    fn conn(&mut self) -> Result<&mut AnyConnection, StoreError>;
}

impl Source for AnyConnection {
    fn conn(&mut self) -> Result<&mut AnyConnection, StoreError> {
        Ok(self)
    }
}

/// No connection: the token path's first attempt on PostgreSQL, on the HTTP worker. Any
/// read it would need fails with [`StoreError::NeedsDatabase`], and the request is served
/// again the usual way (a pooled connection off the worker thread).
pub struct MemoryOnly;

impl Source for MemoryOnly {
    fn conn(&mut self) -> Result<&mut AnyConnection, StoreError> {
        Err(StoreError::NeedsDatabase)
    }
}

struct Slot<V> {
    value: V,
    generation: u64,
}

/// One bounded map of verified lookups.
pub struct Map<V> {
    map: Mutex<HashMap<String, Slot<V>>>,
    cap: usize,
}

impl<V: Clone> Map<V> {
    fn new(cap: usize) -> Map<V> {
        Map { map: Mutex::new(HashMap::new()), cap }
    }

    fn get(&self, key: &str, gen: u64) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|s| s.generation == gen).map(|s| s.value.clone())
    }

    /// Keeps `value` if the generation is still the one read before the lookup.
    fn put(&self, key: String, value: V, generation_read: u64, current: impl Fn() -> u64) {
        if self.cap == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Under the lock: a clear (which takes it) cannot slip between this check and the insert.
        if current() != generation_read {
            return;
        }
        if map.len() >= self.cap && !map.contains_key(&key) {
            map.retain(|_, s| s.generation == generation_read);
            if map.len() >= self.cap {
                let drop: Vec<String> = map.keys().take(self.cap / 8 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, Slot { value, generation: generation_read });
    }

    fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn keys(&self) -> Vec<String> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }
}

/// The cache of one instance: API-token lookups and app lookups, generic over the row
/// types the lookups answer (`T`, `A`).
pub struct CredentialCache<T, A> {
    pub tokens: Map<T>,
    pub apps: Map<A>,
    /// Whether entries may be served: only while this instance's watcher
    /// (`app::credential_listener`) sees the changes made elsewhere.
    listening: AtomicBool,
    /// This cache's own generation, added to the process-wide one: moved on by a
    /// notification from another instance, a (re)started listener, or (SQLite) a commit by
    /// another connection. Kept apart from the process-wide one so that those do not drop
    /// the gateway caches too.
    local: AtomicU64,
}

/// One map of a cache that may serve, as [`through`] uses it.
pub struct On<'a, V> {
    map: &'a Map<V>,
    local: &'a AtomicU64,
}

impl<V> On<'_, V> {
    fn generation(&self) -> u64 {
        generation().wrapping_add(self.local.load(Ordering::Acquire))
    }
}

/// The entry bound unless `TOKEND_CREDENTIAL_CACHE` says otherwise.
pub const DEFAULT_ENTRIES: usize = 10_000;

/// The key of an API token's lookup: the SHA-256 of its secret (never the secret).
pub fn token_key(secret: &str) -> String {
    secrets::hash(secret)
}

/// The key of an app's lookup: its client id and the SHA-256 of the presented secret
/// (`secret_hash`, as `secrets::hash` answers it).
pub fn app_key(client_id: &str, secret_hash: &str) -> String {
    format!("{client_id}\n{secret_hash}")
}

impl<T: Clone, A: Clone> CredentialCache<T, A> {
    /// `cap` entries per map (0: no caching); nothing is served before `set_listening(true)`.
    pub fn new(cap: usize) -> Self {
        CredentialCache {
            tokens: Map::new(cap),
            apps: Map::new(cap),
            listening: AtomicBool::new(false),
            local: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.tokens.cap > 0 && self.listening.load(Ordering::Acquire)
    }

    /// PostgreSQL: the listener started (true, after its `LISTEN` and a clear) or lost its
    /// connection (false: nothing is served until it listens again). Either way, everything
    /// held so far is dropped.
    pub fn set_listening(&self, on: bool) {
        if !on {
            self.listening.store(false, Ordering::Release);
        }
        self.clear();
        if on {
            self.listening.store(true, Ordering::Release);
        }
    }

    /// Another instance changed something (a notification): drop everything.
    pub fn clear(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
        self.tokens.clear();
        self.apps.clear();
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key held (tests: no key is a secret).
    pub fn keys(&self) -> Vec<String> {
        let mut k = self.tokens.keys();
        k.extend(self.apps.keys());
        k
    }

    /// The API-token map, when entries may be served (for [`through`]).
    pub fn tokens_on(&self) -> Option<On<'_, T>> {
        self.enabled().then_some(On { map: &self.tokens, local: &self.local })
    }

    /// The app map, when entries may be served (for [`through`]).
    pub fn apps_on(&self) -> Option<On<'_, A>> {
        self.enabled().then_some(On { map: &self.apps, local: &self.local })
    }
}

/// A credential lookup through the cache. `load` is the lookup (run only on a miss, on the
/// connection `src` gives), `verify` the checks that decide the credential (run on every
/// request, on the cached or the loaded row). A cached row that `verify` refuses is not
/// trusted: the lookup runs again and the database decides. A loaded row is kept only when
/// `verify` accepted it, under the generation read before the lookup.
pub fn through<S, V, R, E>(
    on: Option<On<'_, V>>,
    src: &mut S,
    key: impl FnOnce() -> String,
    load: impl FnOnce(&mut AnyConnection) -> Result<V, StoreError>,
    verify: impl Fn(V) -> Result<R, E>,
) -> Result<R, E>
where
    S: Source + ?Sized,
    V: Clone,
    E: From<StoreError>,
{
    let Some(on) = on else { return verify(load(src.conn()?)?) };
    let key = key();
    if let Some(v) = on.map.get(&key, on.generation()) {
        if let Ok(r) = verify(v) {
            return Ok(r);
        }
    }
    let gen = on.generation();
    let v = load(src.conn()?)?;
    let r = verify(v.clone())?;
    on.map.put(key, v, gen, || on.generation());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashes_never_secrets() {
        let secret = "tkd_pat_example_secret_value_1234567890";
        let k = token_key(secret);
        assert_eq!(k, secrets::hash(secret));
        assert!(!k.contains(secret) && !k.contains("example_secret"));
        assert_eq!(k.len(), 64);
        let a = app_key("cid_1", &secrets::hash("cs_very_secret_value"));
        assert!(a.starts_with("cid_1\n") && !a.contains("very_secret"));
    }

    #[test]
    fn a_refused_lookup_is_never_kept_and_a_change_drops_everything() {
        let c: CredentialCache<i64, i64> = CredentialCache::new(4);
        c.set_listening(true);
        // From memory only, a miss says it needs the database.
        let r: Result<i64, StoreError> = through(c.tokens_on(), &mut MemoryOnly, || "k".into(), |_| Ok(1), Ok);
        assert!(matches!(r, Err(StoreError::NeedsDatabase)));
        // Served from memory once kept; the checks run on what is served. (Other tests
        // move the process-wide generation on: retried until one round sees none.)
        let mut served = None;
        for _ in 0..1000 {
            let on = c.tokens_on().unwrap();
            c.tokens.put("k".into(), 7, on.generation(), || on.generation());
            if let Ok(v) = through(c.tokens_on(), &mut MemoryOnly, || "k".into(), |_| Ok(0), Ok::<i64, StoreError>) {
                served = Some(v);
                break;
            }
        }
        assert_eq!(served, Some(7));
        // Refused from memory: not trusted, the database decides (here none: a miss).
        let refused: Result<i64, StoreError> = through(
            c.tokens_on(),
            &mut MemoryOnly,
            || "k".into(),
            |_| Ok(0),
            |v| if v == 7 { Err(StoreError::Migrate("refused".into())) } else { Ok(v) },
        );
        assert!(matches!(refused, Err(StoreError::NeedsDatabase)));
        // A verification that fails is never kept; a clear drops everything.
        let gen = c.tokens_on().unwrap().generation();
        c.clear();
        assert!(c.is_empty());
        c.tokens.put("old".into(), 1, gen, || c.tokens_on().unwrap().generation());
        assert!(c.is_empty(), "a lookup read before a change is not kept");
    }

    #[test]
    fn bounded() {
        let c: CredentialCache<i64, i64> = CredentialCache::new(8);
        let gen = generation();
        for i in 0..100 {
            c.tokens.put(format!("k{i}"), i, gen, || gen);
        }
        assert!(c.tokens.len() <= 8);
        let off: CredentialCache<i64, i64> = CredentialCache::new(0);
        off.set_listening(true);
        off.tokens.put("k".into(), 1, gen, || gen);
        assert!(off.is_empty() && !off.enabled());
        let pg: CredentialCache<i64, i64> = CredentialCache::new(8);
        assert!(!pg.enabled(), "nothing served before the watcher runs");
        pg.set_listening(true);
        assert!(pg.enabled());
        pg.set_listening(false);
        assert!(!pg.enabled());
    }
}
