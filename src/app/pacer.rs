//! The budget of refusals a second (`TOKEND_REFUSALS_PER_SECOND`): a virtual-time
//! scheduler the HTTP edge (`http::pacing`) asks before answering a 4xx, so that a flood
//! of bad requests is slowed instead of served at full speed. Process state, so it lives
//! beside the rest of `State`; the middleware that applies it is in `http::pacing`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a refusal waits for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// A virtual-time scheduler: each refusal takes the next free slot of `1/rate` seconds.
pub struct Pacer {
    /// Nanoseconds per refusal; 0 = pacing off.
    interval_ns: u64,
    /// The end of the last slot handed out, in nanoseconds since `origin`.
    next: AtomicU64,
    origin: Instant,
}

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    Now,
    After(Duration),
    /// The queue is full: answer now and close the connection.
    Close,
}

impl Pacer {
    pub fn new(per_second: u64) -> Pacer {
        let interval_ns = if per_second == 0 { 0 } else { 1_000_000_000 / per_second.min(1_000_000_000) };
        Pacer { interval_ns, next: AtomicU64::new(0), origin: Instant::now() }
    }

    /// Claims the next slot at `now` (nanoseconds since `origin`).
    fn turn_at(&self, now: u64) -> Turn {
        if self.interval_ns == 0 {
            return Turn::Now;
        }
        let max_wait = MAX_WAIT.as_nanos() as u64;
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            // An idle pacer lends one second's budget at once (a burst), no more.
            let start = cur.max(now.saturating_sub(max_wait));
            let end = start + self.interval_ns;
            if end > now + max_wait {
                return Turn::Close;
            }
            match self.next.compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) if end <= now => return Turn::Now,
                Ok(_) => return Turn::After(Duration::from_nanos(end - now)),
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn turn(&self) -> Turn {
        self.turn_at(self.origin.elapsed().as_nanos() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn off_never_waits() {
        let p = Pacer::new(0);
        for _ in 0..10_000 {
            assert_eq!(p.turn_at(5 * MS), Turn::Now);
        }
    }

    #[test]
    fn a_burst_of_one_second_then_slots_then_close() {
        // 1000/s: one slot per millisecond.
        let p = Pacer::new(1000);
        let now = 10_000 * MS;
        // An idle pacer: one second's worth at once.
        for _ in 0..1000 {
            assert_eq!(p.turn_at(now), Turn::Now);
        }
        // Then each refusal waits one more slot, up to MAX_WAIT ...
        assert_eq!(p.turn_at(now), Turn::After(Duration::from_millis(1)));
        assert_eq!(p.turn_at(now), Turn::After(Duration::from_millis(2)));
        for _ in 0..998 {
            assert!(matches!(p.turn_at(now), Turn::After(_)));
        }
        // ... and beyond it the refusal is answered at once with the connection closed,
        // without taking a slot.
        assert_eq!(p.turn_at(now), Turn::Close);
        assert_eq!(p.turn_at(now), Turn::Close);
        // Time passing frees slots again.
        assert_eq!(p.turn_at(now + 5 * MS), Turn::After(Duration::from_millis(996)));
    }

    #[test]
    fn a_steady_rate_under_the_budget_never_waits() {
        let p = Pacer::new(1000);
        // 500/s for 10 s.
        for i in 0..5_000u64 {
            assert_eq!(p.turn_at(1_000 * MS + i * 2 * MS), Turn::Now, "refusal {i}");
        }
    }
}
