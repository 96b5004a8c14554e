//! Password login and the guard every password check passes through.
//!
//! Rules (README, "Security"):
//! - Only failures are throttled. An attempt is refused unchecked only while other
//!   attempts of the same key are still being checked and could use up its places; it
//!   waits for them instead (a burst of valid logins all succeed). A key over its failure
//!   limit does not refuse the right password: the attempt is still checked, in the
//!   *locked lane*, which checks at most `LOCKED_CHECKS_PER_SECOND` such attempts a second
//!   process-wide (guesses stay slow); a wrong password there answers 429.
//! - Exactly one password hash is verified per attempt, whatever the number of accounts
//!   sharing the email (timing says nothing about other organizations).
//! - Known-good traffic ((account, network) pairs that logged in successfully recently)
//!   hashes in its own budget, so a flood of unknown logins does not crowd it out.
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::service::authz::throttle::{self, Rule, Throttle};
use crate::service::principals::passwords;
use crate::service::{Error, Result};
use crate::store::models::{Org, User};
use crate::store::{self, Db};

/// Failed logins per (account, client address) before each further wrong password from
/// that address waits (30 s, doubling, at most the 15-minute window). Keyed by address
/// too, so failures elsewhere never matter.
pub const LOGIN_FREE_FAILURES: u32 = 5;
pub const LOGIN_BACKOFF_SECONDS: i64 = 30;
/// Failed logins per client address (any accounts) within the window.
pub const LOGIN_FAILURES_PER_IP: u32 = 30;
/// Over-limit attempts checked per second, process-wide (the locked lane).
pub const LOCKED_CHECKS_PER_SECOND: u64 = 2;
/// How long an attempt waits for the same key's attempts in flight to settle.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// At most this many attempts wait at once (each holds a blocking thread); beyond, an
/// attempt goes to the locked lane at once.
const MAX_WAITING: usize = 32;
/// How long a successful login keeps its (account, network) pair known-good.
pub const KNOWN_GOOD_SECONDS: i64 = 30 * 86_400;
/// At most this many known-good pairs are remembered (the oldest half is forgotten).
const MAX_KNOWN: usize = 20_000;

/// The login guard: failure counts, attempts in flight, the locked lane's pace and the
/// known-good pairs. One per process (`State::login`).
pub struct Guard {
    pub failures: Throttle,
    inflight: Mutex<HashMap<String, u32>>,
    settled: Condvar,
    /// Attempts waiting in `enter` (guarded by `inflight`'s lock).
    waiting: std::sync::atomic::AtomicUsize,
    /// The end of the last locked-lane slot handed out.
    locked_next: Mutex<Instant>,
    /// pair key → (user id, last successful login).
    known: Mutex<HashMap<String, (String, i64)>>,
    /// The hashing budget of known-good pairs (beside `State::hashing`).
    pub priority: passwords::Bound,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard {
            failures: Throttle::new(900),
            inflight: Mutex::new(HashMap::new()),
            settled: Condvar::new(),
            waiting: Default::default(),
            locked_next: Mutex::new(Instant::now()),
            known: Mutex::new(HashMap::new()),
            priority: passwords::Bound::per_core(),
        }
    }
}

/// Which way an attempt is checked.
#[derive(Debug, PartialEq, Eq)]
enum Lane {
    Free,
    /// Over a failure limit: checked in the locked lane; a wrong password answers 429.
    Locked {
        retry_after: u64,
    },
}

/// An attempt in flight; settles its keys when dropped.
struct InFlight<'a> {
    guard: &'a Guard,
    keys: Vec<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut m = self.guard.inflight.lock();
        for k in &self.keys {
            if let Some(n) = m.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(k);
                }
            }
        }
        drop(m);
        self.guard.settled.notify_all();
    }
}

impl Guard {
    /// Waits until the attempt's keys have room for it counting the attempts in flight,
    /// then holds its place. A key over its rule (failures alone) sends it to the locked lane.
    fn enter(&self, keys: &[(&str, Rule)], now: i64) -> (Lane, InFlight<'_>) {
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut m = self.inflight.lock();
        let lane = loop {
            let over = keys.iter().any(|(k, r)| self.failures.headroom(k, *r, now) == 0);
            if over {
                let retry_after = self.failures.check(keys, now).err().unwrap_or(1);
                break Lane::Locked { retry_after };
            }
            let room = keys.iter().all(|(k, r)| m.get(*k).copied().unwrap_or(0) < self.failures.headroom(k, *r, now));
            let left = deadline.saturating_duration_since(Instant::now());
            if room {
                break Lane::Free;
            }
            use std::sync::atomic::Ordering::Relaxed;
            if left.is_zero() || self.waiting.load(Relaxed) >= MAX_WAITING {
                break Lane::Locked { retry_after: 1 };
            }
            self.waiting.fetch_add(1, Relaxed);
            self.settled.wait_for(&mut m, left);
            self.waiting.fetch_sub(1, Relaxed);
        };
        for (k, _) in keys {
            *m.entry(k.to_string()).or_default() += 1;
        }
        (lane, InFlight { guard: self, keys: keys.iter().map(|(k, _)| k.to_string()).collect() })
    }

    /// A locked-lane slot: how long to wait for it when it comes within a second, else
    /// None (the attempt is refused unchecked).
    fn locked_slot(&self) -> Option<Duration> {
        let interval = Duration::from_nanos(1_000_000_000 / LOCKED_CHECKS_PER_SECOND);
        let mut next = self.locked_next.lock();
        let now = Instant::now();
        let start = (*next).max(now);
        if start > now + Duration::from_secs(1) {
            return None;
        }
        *next = start + interval;
        Some(start - now)
    }

    /// The user id last logged in from this pair, while it is known-good.
    fn known_user(&self, pair: &str, now: i64) -> Option<String> {
        let m = self.known.lock();
        m.get(pair).filter(|(_, at)| now - at < KNOWN_GOOD_SECONDS).map(|(id, _)| id.clone())
    }

    fn remember(&self, pair: &str, user_id: &str, now: i64) {
        let mut m = self.known.lock();
        if m.len() >= MAX_KNOWN && !m.contains_key(pair) {
            m.retain(|_, (_, at)| now - *at < KNOWN_GOOD_SECONDS);
            if m.len() >= MAX_KNOWN {
                let mut ats: Vec<i64> = m.values().map(|(_, at)| *at).collect();
                let mid = ats.len() / 2;
                let median = *ats.select_nth_unstable(mid).1;
                m.retain(|_, (_, at)| *at > median);
            }
            m.shrink_to_fit();
        }
        m.insert(pair.to_string(), (user_id.to_string(), now));
    }

    /// Refuses a login before it takes a blocking thread when its hashing budget is full
    /// (the priority budget for known-good pairs, else `common`). The refusal counts as a
    /// failure of the address: a flood pays for its refusals.
    pub fn refuse_overflow(&self, common: &passwords::Bound, email: &str, ip: &str, now: i64) -> Result<()> {
        let (pair, ip_key) = login_keys(&email.trim().to_lowercase(), ip);
        if !self.budget(common, self.known_user(&pair, now).is_some()).is_full() {
            return Ok(());
        }
        self.failures.fail(&rules(&pair, &ip_key)[1..], now).ok();
        Err(Error::Unavailable { what: passwords::BUSY, retry_after: passwords::RETRY_AFTER })
    }

    /// The hashing budget this attempt uses.
    fn budget<'a>(&'a self, common: &'a passwords::Bound, known: bool) -> &'a passwords::Bound {
        if known {
            &self.priority
        } else {
            common
        }
    }

    /// Forgets expired failure keys and known-good pairs (maintenance).
    pub fn purge(&self, now: i64) {
        self.failures.purge(now);
        let mut m = self.known.lock();
        m.retain(|_, (_, at)| now - *at < KNOWN_GOOD_SECONDS);
        m.shrink_to_fit();
    }
}

/// What every password check passes through: the login guard and the server's hashing
/// bound.
pub struct PasswordGate<'a> {
    pub guard: &'a Guard,
    pub hashing: &'a passwords::Bound,
}

pub struct LoginOk {
    pub user: User,
}

/// The login throttle's keys: (account, address) and address.
fn login_keys(email: &str, ip: &str) -> (String, String) {
    let addr = throttle::address_key(ip);
    (format!("login:{}|{addr}", throttle::fingerprint(email)), format!("login-ip:{addr}"))
}

fn rules<'a>(pair: &'a str, ip: &'a str) -> [(&'a str, Rule); 2] {
    [
        (pair, Rule::Backoff { free: LOGIN_FREE_FAILURES, base: LOGIN_BACKOFF_SECONDS }),
        (ip, Rule::Limit(LOGIN_FAILURES_PER_IP)),
    ]
}

/// One password check under the guard: `verify` runs in the attempt's lane and budget;
/// the outcome is counted (a failure on both keys, a success clears the pair, an outage
/// nothing, a busy hashing budget a failure of the address: a flood pays for its refusals).
fn guarded(
    gate: &PasswordGate,
    email: &str,
    ip: &str,
    now: i64,
    verify: impl FnOnce(&passwords::Bound, Option<&str>) -> Result<Option<User>>,
) -> Result<Option<User>> {
    let guard = gate.guard;
    let (pair, ip_key) = login_keys(email, ip);
    let keys = rules(&pair, &ip_key);
    let (lane, _inflight) = guard.enter(&keys, now);
    if let Lane::Locked { retry_after } = lane {
        let Some(wait) = guard.locked_slot() else {
            guard.failures.fail(&keys[1..], now).ok();
            return Err(Error::TooMany { retry_after });
        };
        std::thread::sleep(wait);
    }
    let known = guard.known_user(&pair, now);
    match verify(guard.budget(gate.hashing, known.is_some()), known.as_deref()) {
        Ok(Some(user)) => {
            guard.failures.clear(&pair);
            guard.remember(&pair, &user.id, now);
            Ok(Some(user))
        }
        Ok(None) => {
            let before = guard.failures.fail(&keys, now);
            match lane {
                Lane::Locked { retry_after } => {
                    Err(Error::TooMany { retry_after: before.err().unwrap_or(retry_after) })
                }
                Lane::Free => Ok(None),
            }
        }
        Err(e @ Error::Unavailable { .. }) if is_hashing_busy(&e) => {
            guard.failures.fail(&keys[1..], now).ok();
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn is_hashing_busy(e: &Error) -> bool {
    matches!(e, Error::Unavailable { what, .. } if *what == passwords::BUSY)
}

/// Password login. Unknown email, wrong password and disabled user all answer the same,
/// after the same work (one hash verification). No database connection is held while
/// hashing.
pub fn login(
    db: &Db,
    gate: &PasswordGate,
    email: &str,
    password: &str,
    org: Option<&str>,
    ip: &str,
    now: i64,
) -> Result<LoginOk> {
    let email = email.trim().to_lowercase();
    let found = guarded(gate, &email, ip, now, |hashing, known| {
        let candidate = candidate(db, &email, org, known)?;
        let dummy = passwords::dummy_hash();
        let hash = candidate.as_ref().and_then(|u| u.password_hash.as_deref()).unwrap_or(dummy);
        let ok = hashing.verify(hash, password)?;
        Ok(candidate.filter(|u| ok && u.password_hash.is_some() && !u.disabled))
    })?;
    found.map(|user| LoginOk { user }).ok_or_else(|| Error::Unauthorized("invalid email or password".into()))
}

/// The one account a login checks: the one in `org` when named; else the only one with
/// this email; else, when several organizations have it, the one that last logged in
/// from this network, or the oldest (name the org to choose another). One candidate, so
/// one hash, however many accounts share the email.
fn candidate(db: &Db, email: &str, org: Option<&str>, known: Option<&str>) -> Result<Option<User>> {
    let mut conn = db.read()?;
    let mut candidates = store::principals::users_by_email(&mut conn, email)?;
    if let Some(o) = org {
        let orgs: Vec<Org> = store::org::named(&mut conn, o)?;
        candidates.retain(|u| orgs.iter().any(|o| o.id == u.org_id));
    }
    candidates.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let pick = known.and_then(|id| candidates.iter().position(|u| u.id == id)).unwrap_or(0);
    Ok((pick < candidates.len()).then(|| candidates.swap_remove(pick)))
}

/// A person's current password, checked for an own password change under the login
/// guard and the hashing bound (no database connection is held). Answers whether it
/// matched; a mismatch counts as a failed login from that address.
pub fn check_current_password(gate: &PasswordGate, user: &User, password: &str, ip: &str, now: i64) -> Result<bool> {
    let found = guarded(gate, &user.email, ip, now, |hashing, _| {
        let ok = hashing.verify(user.password_hash.as_deref().unwrap_or(passwords::dummy_hash()), password)?;
        Ok((ok && user.password_hash.is_some()).then(|| user.clone()))
    })?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(pair: &'a str, ip: &'a str) -> [(&'a str, Rule); 2] {
        rules(pair, ip)
    }

    #[test]
    fn attempts_in_flight_wait_instead_of_being_refused() {
        let g = Guard::default();
        let k = keys("p", "i");
        let held: Vec<_> = (0..LOGIN_FREE_FAILURES).map(|_| g.enter(&k, 100)).collect();
        assert!(held.iter().all(|(l, _)| *l == Lane::Free));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| g.enter(&k, 100).0);
            // The five in flight succeed: the waiter gets a free place, not a refusal.
            std::thread::sleep(Duration::from_millis(50));
            g.failures.clear("p");
            drop(held);
            assert_eq!(waiter.join().unwrap(), Lane::Free);
        });
    }

    #[test]
    fn a_key_over_its_limit_goes_to_the_locked_lane() {
        let g = Guard::default();
        let k = keys("p", "i");
        for _ in 0..LOGIN_FREE_FAILURES {
            let _ = g.failures.fail(&k, 100);
        }
        assert!(matches!(g.enter(&k, 100).0, Lane::Locked { retry_after: 30 }));
        // The address alone over its limit: another account is checked in the locked lane too.
        for _ in 0..LOGIN_FAILURES_PER_IP {
            let _ = g.failures.fail(&k[1..], 100);
        }
        assert!(matches!(g.enter(&keys("q", "i"), 100).0, Lane::Locked { .. }));
    }

    #[test]
    fn the_locked_lane_is_paced() {
        let g = Guard::default();
        // An idle lane: one at once, then one per slot up to a second ahead, then refusals.
        let slots: Vec<_> = (0..10).map_while(|_| g.locked_slot()).collect();
        assert_eq!(slots.len() as u64, 1 + LOCKED_CHECKS_PER_SECOND, "{slots:?}");
        assert!(slots[0] < Duration::from_millis(100) && slots[slots.len() - 1] > Duration::from_millis(900));
        assert!(g.locked_slot().is_none());
    }

    #[test]
    fn known_good_pairs_are_bounded() {
        let g = Guard::default();
        for i in 0..(MAX_KNOWN + 10) {
            g.remember(&format!("p{i}"), "u", 1000 + i as i64);
        }
        assert!(g.known.lock().len() <= MAX_KNOWN);
        assert_eq!(g.known_user(&format!("p{}", MAX_KNOWN + 9), 2000 + MAX_KNOWN as i64).as_deref(), Some("u"));
        g.purge(1000 + KNOWN_GOOD_SECONDS + 2 * MAX_KNOWN as i64);
        assert!(g.known.lock().is_empty());
    }
}
