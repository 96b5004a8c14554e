//! Sliding-window failure counters (per process): login attempts per account and per IP,
//! failed token-endpoint calls per IP. Successful calls pay one atomic load while nothing
//! has failed recently.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Throttle {
    failures: Mutex<HashMap<String, Vec<i64>>>,
    /// Number of keys with recorded failures; zero means nothing to check.
    tracked: AtomicUsize,
    window: i64,
}

impl Throttle {
    pub fn new(window_seconds: i64) -> Throttle {
        Throttle { failures: Mutex::new(HashMap::new()), tracked: AtomicUsize::new(0), window: window_seconds }
    }

    /// Ok, or the seconds until the oldest failure of a key over its limit leaves the window.
    pub fn check(&self, keys: &[(&str, usize)], now: i64) -> Result<(), u64> {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 100_000 {
            f.retain(|_, v| v.last().is_some_and(|t| *t > now - self.window));
            self.tracked.store(f.len(), Ordering::Relaxed);
        }
        for (k, limit) in keys {
            if let Some(v) = f.get_mut(*k) {
                v.retain(|t| *t > now - self.window);
                if v.len() >= *limit {
                    return Err((v[0] + self.window - now).max(1) as u64);
                }
            }
        }
        Ok(())
    }

    pub fn fail(&self, keys: &[(&str, usize)], now: i64) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (k, _) in keys {
            f.entry(k.to_string()).or_default().push(now);
        }
        self.tracked.store(f.len(), Ordering::Relaxed);
    }

    pub fn clear(&self, key: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.remove(key);
        self.tracked.store(f.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_window_passes() {
        let t = Throttle::new(60);
        let keys = [("ip:1", 3)];
        for _ in 0..3 {
            assert!(t.check(&keys, 100).is_ok());
            t.fail(&keys, 100);
        }
        assert_eq!(t.check(&keys, 110), Err(50));
        assert!(t.check(&[("ip:2", 3)], 110).is_ok());
        assert!(t.check(&keys, 161).is_ok());
        t.clear("ip:1");
        assert!(t.check(&keys, 110).is_ok());
    }
}
