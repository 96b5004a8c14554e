//! Refusal pacing: refused requests (4xx) are answered at most `rate` a second, process-wide,
//! so that a flood of requests the server refuses cheaply cannot crowd out the requests it
//! serves. A refusal beyond the budget waits for its turn (at most `MAX_WAIT`); when the
//! queue is longer than that, it is answered at once and its connection closed, so waiting
//! refusals stay bounded (`rate × MAX_WAIT`) and a flooding client has to reconnect.
//!
//! Successful answers (1xx–3xx) and server-side failures (5xx: an outage's 503 must be quick)
//! never wait. A closed-loop flooder is thereby slowed to the budget whatever its connection
//! count, while a client making an occasional mistake waits at most `MAX_WAIT` and only while
//! a flood is running.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::State;

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

/// The middleware: paces every 4xx answer.
pub async fn pace(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    // Successful answers (the token path) pay one status check, no state lookup.
    if !res.status().is_client_error() {
        return Ok(res);
    }
    let Some(state) = res.request().app_data::<web::Data<State>>().cloned() else { return Ok(res) };
    match state.pacer.turn() {
        Turn::Now => {}
        Turn::After(d) => {
            state.metrics.paced.with_label_values(&["delayed"]).inc();
            actix_web::rt::time::sleep(d).await;
        }
        Turn::Close => {
            state.metrics.paced.with_label_values(&["closed"]).inc();
            res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
        }
    }
    Ok(res)
}

/// Paces a refusal the middleware does not see as one (a 503 for a full login budget):
/// waits for its turn, or answers false when the queue is full (close the connection).
pub async fn pace_now(state: &State) -> bool {
    match state.pacer.turn() {
        Turn::Now => true,
        Turn::After(d) => {
            state.metrics.paced.with_label_values(&["delayed"]).inc();
            actix_web::rt::time::sleep(d).await;
            true
        }
        Turn::Close => {
            state.metrics.paced.with_label_values(&["closed"]).inc();
            false
        }
    }
}

/// A login refused before it takes a blocking thread because its hashing budget is full:
/// the refusal is paced like a 4xx (a flood cannot spin on it).
pub async fn login_overflow(state: &State, email: &str, ip: &str) -> Result<(), crate::service::Error> {
    let r = state.login.refuse_overflow(&state.hashing, email, ip, state.now());
    if r.is_err() {
        pace_now(state).await;
    }
    r
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
