//! Password hashing: argon2id with the crate's defaults (19 MiB, 2 passes), behind the
//! server's bound (`State::hashing`, one per process). At most `bound` hashes run at once
//! (about one per core), at most `4 × bound` callers wait for a turn, each for a few seconds at most; anyone beyond
//! that is told to come back later (`Error::Unavailable`, 503 with Retry-After). Memory
//! stays at `bound × 19 MiB` however many logins arrive at once.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::service::{Error, Result};

/// A counting semaphore with a bounded queue.
pub struct Bound {
    max: usize,
    queue: usize,
    wait: Duration,
    /// (running, waiting)
    state: Mutex<(usize, usize)>,
    turn: Condvar,
    peak_running: AtomicUsize,
    peak_waiting: AtomicUsize,
    turns: AtomicUsize,
}

/// A turn to hash; gives it back when dropped.
pub struct Permit<'a>(&'a Bound);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.0 -= 1;
        drop(s);
        self.0.turn.notify_one();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub bound: usize,
    pub queue: usize,
    pub running: usize,
    pub waiting: usize,
    pub peak_running: usize,
    pub peak_waiting: usize,
    /// Turns given so far (hashes computed or verified).
    pub turns: usize,
}

/// What a refusal for a full hashing budget says.
pub const BUSY: &str = "password hashing is busy";

/// Seconds a refused caller is asked to wait.
pub const RETRY_AFTER: u64 = 1;

impl Bound {
    pub fn new(max: usize, queue: usize, wait: Duration) -> Bound {
        Bound {
            max: max.max(1),
            queue,
            wait,
            state: Mutex::new((0, 0)),
            turn: Condvar::new(),
            peak_running: AtomicUsize::new(0),
            peak_waiting: AtomicUsize::new(0),
            turns: AtomicUsize::new(0),
        }
    }

    /// A turn now, or after waiting in the queue; None when the queue is full or the wait
    /// runs out.
    pub fn acquire(&self) -> Option<Permit<'_>> {
        let mut s = self.state.lock();
        if s.0 >= self.max {
            if s.1 >= self.queue {
                return None;
            }
            s.1 += 1;
            self.peak_waiting.fetch_max(s.1, Ordering::Relaxed);
            let deadline = Instant::now() + self.wait;
            while s.0 >= self.max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    s.1 -= 1;
                    return None;
                }
                self.turn.wait_for(&mut s, left);
            }
            s.1 -= 1;
        }
        s.0 += 1;
        self.peak_running.fetch_max(s.0, Ordering::Relaxed);
        self.turns.fetch_add(1, Ordering::Relaxed);
        Some(Permit(self))
    }

    /// Whether every turn is taken and the queue is full (a new caller would be refused).
    pub fn is_full(&self) -> bool {
        let s = self.state.lock();
        s.0 >= self.max && s.1 >= self.queue
    }

    pub fn stats(&self) -> Stats {
        let s = self.state.lock();
        Stats {
            bound: self.max,
            queue: self.queue,
            running: s.0,
            waiting: s.1,
            peak_running: self.peak_running.load(Ordering::Relaxed),
            peak_waiting: self.peak_waiting.load(Ordering::Relaxed),
            turns: self.turns.load(Ordering::Relaxed),
        }
    }
}

impl Bound {
    /// The server's bound: one hash per core, four waiting per core, five seconds' wait.
    pub fn per_core() -> Bound {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Bound::new(cores, 4 * cores, Duration::from_secs(5))
    }

    fn turn(&self) -> Result<Permit<'_>> {
        self.acquire().ok_or(Error::Unavailable { what: BUSY, retry_after: RETRY_AFTER })
    }

    /// A new PHC-format argon2id hash of `p`, in a turn.
    pub fn hash(&self, p: &str) -> Result<String> {
        let _turn = self.turn()?;
        hash_once(p)
    }

    /// Whether `p` matches `hash`, in a turn; a hash that does not parse matches nothing
    /// (after the same work as a real one, against the dummy hash).
    pub fn verify(&self, hash: &str, p: &str) -> Result<bool> {
        let parsed = PasswordHash::new(hash).or_else(|_| PasswordHash::new(dummy_hash()));
        let _turn = self.turn()?;
        let ok = parsed.is_ok_and(|h| matches(&h, p));
        Ok(ok && hash != dummy_hash())
    }
}

/// argon2's working memory (19 MiB a hash), kept for the next hash instead of being
/// allocated and freed each time. At most one buffer per concurrent hash exists, so
/// resident memory for hashing is at most the bound × 19 MiB and does not churn: with a
/// fresh allocation per hash, glibc kept freed buffers in the arena of every
/// blocking-pool thread that had hashed (+386 MiB measured under a login flood).
///
/// Kept while hashing goes on, not forever: an idle server gives the buffers back
/// (`release_idle_memory`), so the first start's hash of the bootstrap password, or one
/// login an hour, does not hold 19 MiB of resident memory (the bulk of idle RSS).
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let taken = pool().free.pop();
    let mut mem = match taken {
        Some(m) if m.len() >= blocks => m,
        _ => vec![Block::default(); blocks],
    };
    let out = f(&mut mem[..blocks]);
    let mut p = pool();
    p.free.push(mem);
    p.used_at = Some(Instant::now());
    out
}

/// Hashing memory not in use, and when a hash last returned some.
struct Pool {
    free: Vec<Vec<Block>>,
    used_at: Option<Instant>,
}

fn pool() -> parking_lot::MutexGuard<'static, Pool> {
    static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), used_at: None });
    POOL.lock()
}

/// Frees the pooled hashing memory when no hash has finished for `idle` (the maintenance
/// pass, every tick; boot, with zero, after the bootstrap hash). A buffer in use is not
/// in the pool and is untouched; the next hash allocates anew.
pub fn release_idle_memory(idle: Duration) {
    let mut p = pool();
    if p.used_at.is_none_or(|t| t.elapsed() >= idle) {
        p.free = Vec::new();
    }
}

/// argon2 of `p` with `a`'s parameters into `out`, in pooled memory.
fn compute(a: &Argon2, p: &[u8], salt: &[u8], out: &mut [u8]) -> Result<()> {
    with_memory(a.params().block_count(), |mem| a.hash_password_into_with_memory(p, salt, out, mem))
        .map_err(|e| Error::PasswordHash(e.into()))
}

/// A PHC-format argon2id hash (the crate's default parameters) of `p`, outside any bound:
/// for work that no request can trigger (the first start, `tokend org create`).
pub fn hash_once(p: &str) -> Result<String> {
    let a = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(Error::PasswordHash)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&a, p.as_bytes(), salt_bytes, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).map_err(Error::PasswordHash)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(Error::PasswordHash)?),
    };
    Ok(phc.to_string())
}

/// Whether `p` matches the PHC string `h` (any argon2 variant and parameters it names).
fn matches(h: &PasswordHash, p: &str) -> bool {
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
    let parsed = (
        Algorithm::try_from(h.algorithm),
        h.version.map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(h),
    );
    let (Ok(alg), Ok(version), Ok(params)) = parsed else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    compute(&Argon2::new(alg, version, params), p.as_bytes(), salt, &mut out).is_ok()
        && bool::from(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()))
}

/// A hash to verify against when the email is unknown or has no password, so every
/// failure costs the same. Built on first use (outside the bound: once per process).
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_once("tokend-dummy-password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_waits_then_gives_up() {
        let b = Bound::new(1, 4, Duration::from_millis(20));
        let _p = b.acquire().expect("first turn");
        assert!(b.acquire().is_none(), "the wait runs out while nobody finishes");
        assert_eq!(b.stats().waiting, 0, "a caller that gave up left the queue");
    }

    #[test]
    fn bound_queues_then_refuses() {
        let b = Bound::new(2, 1, Duration::from_secs(60));
        let p1 = b.acquire().expect("first turn");
        let _p2 = b.acquire().expect("second turn");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.acquire().is_some());
            // Let the waiter queue, then a further caller finds the queue full at once.
            while b.stats().waiting == 0 {
                std::thread::yield_now();
            }
            assert!(b.acquire().is_none(), "the queue is full");
            drop(p1);
            assert!(waiter.join().unwrap(), "a finished turn goes to the waiter");
        });
        let st = b.stats();
        assert_eq!((st.peak_running, st.peak_waiting), (2, 1));
        assert_eq!(st.running, 1, "the waiter's turn ended with its thread");
    }

    #[test]
    fn hash_and_verify() {
        let b = Bound::per_core();
        let (hash, verify) = (|p: &str| b.hash(p), |h: &str, p: &str| b.verify(h, p));
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse").unwrap());
        assert!(!verify(&h, "wrong horse").unwrap());
        assert!(!verify("not a hash", "correct horse").unwrap());
        assert!(!verify(dummy_hash(), "tokend-dummy-password").unwrap(), "the dummy matches nothing");
    }

    #[test]
    fn pooled_hashes_are_the_crates_own_format() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let b = Bound::per_core();
        let (hash, verify) = (|p: &str| b.hash(p), |h: &str, p: &str| b.verify(h, p));
        // Ours verifies with the crate's verifier, and the crate's hashes (stored before
        // pooling, or with other parameters) verify with ours.
        let ours = hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"battery staple", &salt).unwrap().to_string();
        assert!(verify(&theirs, "battery staple").unwrap());
        assert!(!verify(&theirs, "battery stapler").unwrap());
        let small = Params::new(8, 1, 1, Some(16)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, small);
        let theirs = other.hash_password(b"tr0ub4dor", &salt).unwrap().to_string();
        assert!(verify(&theirs, "tr0ub4dor").unwrap(), "{theirs}");
        assert!(!verify(&theirs, "tr0ub4dor&3").unwrap());
    }
}
