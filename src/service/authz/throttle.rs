//! Failure counters (per process) for logins and credential checks. Each key counts its
//! failures in a sliding window of a few buckets (constant memory per key, whatever the
//! limit), and the map holds at most `MAX_KEYS` keys. A caller that has not failed pays
//! nothing: the token endpoint and bearer checks consult a throttle only after a failure,
//! login pays one atomic load while nothing has failed recently.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Buckets per window; a failure leaves the count between `window - window/8` and
/// `window` after it happened.
const PER_WINDOW: i64 = 8;
const SLOTS: usize = PER_WINDOW as usize + 2;
/// Beyond this many keys the oldest half is forgotten.
pub const MAX_KEYS: usize = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// At most `n` failures within the window.
    Limit(u32),
    /// `free` failures within the window; after that each further attempt waits
    /// `base · 2^(failures − free)` seconds (at most the window) after the last failure.
    Backoff { free: u32, base: i64 },
}

impl Rule {
    /// The failures a fresh key lets through.
    fn capacity(self) -> u32 {
        match self {
            Rule::Limit(n) => n,
            Rule::Backoff { free, .. } => free.max(1),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Entry {
    /// (bucket number, failures in it).
    slots: [(i64, u32); SLOTS],
    last: i64,
}

pub struct Throttle {
    map: Mutex<HashMap<String, Entry>>,
    /// Number of keys; zero means nothing to check.
    tracked: AtomicUsize,
    window: i64,
    bucket: i64,
}

impl Entry {
    fn alive(&self, bucket: i64, window: i64, now: i64) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.slots.iter().copied().filter(move |(b, n)| *n > 0 && b * bucket + window > now)
    }

    fn count(&self, bucket: i64, window: i64, now: i64) -> u32 {
        self.alive(bucket, window, now).map(|(_, n)| n).sum()
    }

    /// Ok, or the seconds until `rule` lets the next attempt through.
    fn check(&self, rule: Rule, bucket: i64, window: i64, now: i64) -> Result<(), u64> {
        let count = self.count(bucket, window, now);
        match rule {
            Rule::Limit(n) if count >= n => {
                let mut alive: Vec<(i64, u32)> = self.alive(bucket, window, now).collect();
                alive.sort_unstable();
                let mut left = count;
                for (b, c) in alive {
                    left -= c;
                    if left < n {
                        return Err((b * bucket + window - now).max(1) as u64);
                    }
                }
                Err(1)
            }
            Rule::Backoff { free, base } if count >= free => {
                let delay = (base << (count - free).min(20)).min(window);
                let until = self.last + delay;
                if now < until {
                    Err((until - now) as u64)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// How many more failures `rule` lets through now (0: the key is over its rule).
    fn headroom(&self, rule: Rule, bucket: i64, window: i64, now: i64) -> u32 {
        let count = self.count(bucket, window, now);
        match rule {
            Rule::Limit(n) => n.saturating_sub(count),
            Rule::Backoff { free, .. } if count < free => free - count,
            Rule::Backoff { .. } => u32::from(self.check(rule, bucket, window, now).is_ok()),
        }
    }

    fn add(&mut self, bucket: i64, window: i64, now: i64) {
        let b = now.div_euclid(bucket);
        self.last = self.last.max(now);
        if let Some(s) = self.slots.iter_mut().find(|(sb, n)| *sb == b && *n > 0) {
            s.1 = s.1.saturating_add(1);
            return;
        }
        // A free or expired slot; there is always one, as at most PER_WINDOW + 1 are alive.
        let i = self
            .slots
            .iter()
            .position(|(sb, n)| *n == 0 || sb * bucket + window <= now)
            .unwrap_or_else(|| (0..SLOTS).min_by_key(|i| self.slots[*i].0).unwrap_or(0));
        self.slots[i] = (b, 1);
    }

    fn remove(&mut self, bucket: i64, at: i64) {
        let b = at.div_euclid(bucket);
        if let Some(s) = self.slots.iter_mut().find(|(sb, n)| *sb == b && *n > 0) {
            s.1 -= 1;
        }
    }

    fn expired(&self, bucket: i64, window: i64, now: i64) -> bool {
        self.count(bucket, window, now) == 0 && self.last + window <= now
    }
}

impl Throttle {
    pub fn new(window_seconds: i64) -> Throttle {
        let window = window_seconds.max(1);
        Throttle {
            map: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
            window,
            bucket: ((window + PER_WINDOW - 1) / PER_WINDOW).max(1),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock()
    }

    /// Ok, or the longest wait any key's rule asks for.
    pub fn check(&self, keys: &[(&str, Rule)], now: i64) -> Result<(), u64> {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let map = self.lock();
        self.check_locked(&map, keys, now)
    }

    fn check_locked(&self, map: &HashMap<String, Entry>, keys: &[(&str, Rule)], now: i64) -> Result<(), u64> {
        let mut wait = None;
        for (k, rule) in keys {
            if let Some(e) = map.get(*k) {
                if let Err(w) = e.check(*rule, self.bucket, self.window, now) {
                    wait = Some(wait.unwrap_or(0).max(w));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    fn add_locked(&self, map: &mut HashMap<String, Entry>, keys: &[(&str, Rule)], now: i64) {
        for (k, _) in keys {
            if !map.contains_key(*k) && map.len() >= MAX_KEYS {
                self.shrink(map, now);
            }
            map.entry(k.to_string()).or_default().add(self.bucket, self.window, now);
        }
        self.tracked.store(map.len(), Ordering::Relaxed);
    }

    /// Forgets expired keys, and if that is not enough, the half that failed longest ago.
    fn shrink(&self, map: &mut HashMap<String, Entry>, now: i64) {
        map.retain(|_, e| !e.expired(self.bucket, self.window, now));
        if map.len() >= MAX_KEYS {
            let mut lasts: Vec<i64> = map.values().map(|e| e.last).collect();
            let mid = lasts.len() / 2;
            let (_, median, _) = lasts.select_nth_unstable(mid);
            let median = *median;
            map.retain(|_, e| e.last > median);
        }
        map.shrink_to_fit();
    }

    /// How many more failures `rule` lets through for `key` now.
    pub fn headroom(&self, key: &str, rule: Rule, now: i64) -> u32 {
        let map = self.lock();
        map.get(key).map_or_else(|| rule.capacity(), |e| e.headroom(rule, self.bucket, self.window, now))
    }

    /// Forgets expired keys and hands the freed memory back (maintenance, once a minute).
    pub fn purge(&self, now: i64) {
        let mut map = self.lock();
        map.retain(|_, e| !e.expired(self.bucket, self.window, now));
        map.shrink_to_fit();
        self.tracked.store(map.len(), Ordering::Relaxed);
    }

    /// Checks, and when every key allows it, counts one failure on each key now: the
    /// attempt holds its place before the slow work, so concurrent attempts cannot all
    /// pass the check first. A success gives the place back with [`Throttle::release`].
    pub fn reserve(&self, keys: &[(&str, Rule)], now: i64) -> Result<(), u64> {
        let mut map = self.lock();
        self.check_locked(&map, keys, now)?;
        self.add_locked(&mut map, keys, now);
        Ok(())
    }

    /// Counts a failure on every key, and answers whether the keys were already over their
    /// rules before it (then the caller answers 429 instead of the failure).
    pub fn fail(&self, keys: &[(&str, Rule)], now: i64) -> Result<(), u64> {
        let mut map = self.lock();
        let before = self.check_locked(&map, keys, now);
        self.add_locked(&mut map, keys, now);
        before
    }

    /// Takes back one failure counted at `at` (a reservation that turned out not to be one).
    pub fn release(&self, key: &str, at: i64) {
        let mut map = self.lock();
        if let Some(e) = map.get_mut(key) {
            e.remove(self.bucket, at);
        }
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.lock();
        map.remove(key);
        self.tracked.store(map.len(), Ordering::Relaxed);
    }

    pub fn keys(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }
}

/// The address part of a throttle key: an IPv4 address, or the /64 of an IPv6 address
/// (one host usually holds a whole /64).
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.chars().take(64).collect(),
    }
}

/// A short fixed-size fingerprint of a presented credential or identity for throttle keys
/// (never the value itself, whose length the caller chooses).
pub fn fingerprint(value: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Failed credential checks (token endpoint, introspection, revocation, forward-auth,
/// /api/v1 bearers) allowed per (client address, presented identity) per minute, below the
/// per-address limit.
pub const IDENTITY_FAILURES_PER_MINUTE: u32 = 10;

/// Access tokens one principal may revoke by jti per minute (each writes a revoked-jti row
/// and an audit row); beyond it `/oauth/revoke` answers 429 until Retry-After.
pub const REVOKES_PER_MINUTE: u32 = 30;

/// The credential-failure rule of every surface that checks a presented credential.
///
/// Counts a failed check from `ip` presenting `identity` (a client_id or a token, only its
/// fingerprint is kept) against `per_minute` failures per address (0: no limit) and
/// [`IDENTITY_FAILURES_PER_MINUTE`] per (address, identity). Err(seconds) when either was
/// already over its limit: the caller then answers 429 instead of the failure. Only failures
/// are counted and only failures are turned into 429s, so a request with valid credentials
/// is never refused because others failed from the same address.
pub fn credential_failure(
    t: &Throttle,
    per_minute: usize,
    ip: &str,
    identity: Option<&str>,
    now: i64,
) -> Result<(), u64> {
    if per_minute == 0 {
        return Ok(());
    }
    let limit = u32::try_from(per_minute).unwrap_or(u32::MAX);
    let addr = address_key(ip);
    let ip_key = format!("cred-ip:{addr}");
    let id_key = identity.map(|i| format!("cred-id:{addr}|{}", fingerprint(i)));
    let mut keys = vec![(ip_key.as_str(), Rule::Limit(limit))];
    if let Some(k) = &id_key {
        keys.push((k.as_str(), Rule::Limit(IDENTITY_FAILURES_PER_MINUTE.min(limit))));
    }
    t.fail(&keys, now)
}

/// Reserves one revocation by jti for the principal `sub` of `org` (see
/// [`REVOKES_PER_MINUTE`]); Err(seconds) over the limit.
pub fn reserve_revoke(t: &Throttle, org: &str, sub: &str, now: i64) -> Result<(), u64> {
    let key = format!("revoke-jti:{org}|{sub}");
    t.reserve(&[(&key, Rule::Limit(REVOKES_PER_MINUTE))], now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_blocks_until_the_window_passes() {
        let t = Throttle::new(60);
        let keys = [("ip:1", Rule::Limit(3))];
        for _ in 0..3 {
            assert!(t.check(&keys, 100).is_ok());
            assert!(t.fail(&keys, 100).is_ok());
        }
        let wait = t.check(&keys, 110).unwrap_err();
        assert!((1..=50).contains(&wait), "{wait}");
        assert!(t.check(&keys, 110 + wait as i64).is_ok(), "free after the announced wait");
        assert!(t.check(&[("ip:2", Rule::Limit(3))], 110).is_ok());
        assert!(t.check(&keys, 161).is_ok());
        assert_eq!(t.fail(&keys, 110).map_err(|_| ()), Err(()), "a failure over the limit says so");
        t.clear("ip:1");
        assert!(t.check(&keys, 110).is_ok());
    }

    #[test]
    fn backoff_grows_and_never_locks() {
        let t = Throttle::new(900);
        let rule = Rule::Backoff { free: 5, base: 30 };
        let keys = [("pair", rule)];
        for _ in 0..5 {
            t.reserve(&keys, 1000).unwrap();
        }
        assert_eq!(t.reserve(&keys, 1000), Err(30));
        assert_eq!(t.reserve(&keys, 1029), Err(1));
        t.reserve(&keys, 1030).unwrap();
        assert_eq!(t.reserve(&keys, 1030), Err(60), "the wait doubles");
        t.reserve(&keys, 1090).unwrap();
        assert_eq!(t.check(&keys, 1090), Err(120));
        // Capped at the window, and everything is forgotten after it.
        for i in 0..30 {
            let _ = t.fail(&keys, 1100 + i);
        }
        assert_eq!(t.check(&keys, 1130), Err(900 - 1));
        assert!(t.check(&keys, 1130 + 900).is_ok());
    }

    #[test]
    fn reservations_are_atomic_and_releasable() {
        let t = Throttle::new(900);
        let keys = [("a", Rule::Limit(2))];
        assert!(t.reserve(&keys, 5).is_ok());
        assert!(t.reserve(&keys, 5).is_ok());
        assert!(t.reserve(&keys, 5).is_err(), "two places taken");
        t.release("a", 5);
        assert!(t.reserve(&keys, 5).is_ok(), "a released place is free again");
        // A refused key records nothing on the other keys either.
        let both = [("b", Rule::Limit(5)), ("a", Rule::Limit(2))];
        assert!(t.reserve(&both, 5).is_err());
        assert!(t.check(&[("b", Rule::Limit(1))], 5).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(60);
        for i in 0..(MAX_KEYS + 10) {
            let _ = t.fail(&[(&format!("k{i}"), Rule::Limit(1))], 100 + (i as i64 % 7));
        }
        assert!(t.keys() <= MAX_KEYS, "{}", t.keys());
        // Thousands of failures on one key take constant space and still count.
        for _ in 0..10_000 {
            let _ = t.fail(&[("hot", Rule::Limit(5))], 200);
        }
        assert!(t.check(&[("hot", Rule::Limit(10_000))], 200).is_err());
    }

    #[test]
    fn address_keys() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2::99"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(fingerprint("x").len(), 16);
    }
}
