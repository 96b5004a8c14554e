//! Last-used times of API tokens, kept in memory on the hot path and flushed to the
//! database every few seconds and at shutdown. A crash loses at most one interval of
//! last-used times; revocations never go through here.
//!
//! Every exchange touches a token, so the times are kept in shards chosen by token id:
//! workers exchanging different tokens take different locks instead of one global mutex.
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;

use diesel::Connection;

use crate::store::{self, AnyConnection};

/// Enough that two workers (or a few dozen) rarely meet on one lock; small enough that a
/// flush visiting each shard costs nothing.
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    /// Not yet written: token id → (time, ip).
    pending: HashMap<String, (i64, String)>,
    /// The last flushed batch, kept readable for one more interval: a reader that read the
    /// database row before the flush committed still finds the time here.
    recent: HashMap<String, i64>,
}

#[derive(Default)]
pub struct Usage {
    shards: [Mutex<Shard>; SHARDS],
}

impl Usage {
    /// The shard of a token id (FNV-1a: a few instructions a byte, and ids are random).
    fn shard(&self, token_id: &str) -> MutexGuard<'_, Shard> {
        let h = token_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        self.lock(h as usize % SHARDS)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i].lock()
    }

    pub fn touch(&self, token_id: &str, now: i64, ip: &str) {
        let mut s = self.shard(token_id);
        match s.pending.get_mut(token_id) {
            Some(v) => {
                v.0 = now.max(v.0);
                if v.1 != ip {
                    v.1 = ip.to_string();
                }
            }
            None => {
                s.pending.insert(token_id.to_string(), (now, ip.to_string()));
            }
        }
    }

    /// The freshest last-used time this process knows of (0 if none). Both maps of the
    /// shard are read under its one lock, which flush() also holds while it moves a time
    /// from `pending` to `recent`: no reader sees it in neither.
    pub fn last_used(&self, token_id: &str) -> i64 {
        let s = self.shard(token_id);
        let pending = s.pending.get(token_id).map(|v| v.0);
        let recent = s.recent.get(token_id).copied();
        pending.unwrap_or(0).max(recent.unwrap_or(0))
    }

    /// The not-yet-flushed last use (time, ip), if any.
    pub fn pending(&self, token_id: &str) -> Option<(i64, String)> {
        self.shard(token_id).pending.get(token_id).cloned()
    }

    /// Writes pending times in one transaction; never moves a time backwards (another
    /// instance may have written a newer one). A time stays in `pending` until its write
    /// committed and it is in `recent`, so no reader ever misses it.
    pub fn flush(&self, conn: &mut AnyConnection) -> Result<usize, diesel::result::Error> {
        let batches: Vec<HashMap<String, (i64, String)>> = (0..SHARDS).map(|i| self.lock(i).pending.clone()).collect();
        let n: usize = batches.iter().map(HashMap::len).sum();
        if n > 0 {
            conn.transaction(|conn| {
                for (id, (at, ip)) in batches.iter().flatten() {
                    store::tokens::touch(conn, id, *at, ip)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?;
        }
        for (i, batch) in batches.into_iter().enumerate() {
            let mut s = self.lock(i);
            for (k, (at, _)) in &batch {
                if s.pending.get(k).is_some_and(|v| v.0 <= *at) {
                    s.pending.remove(k);
                }
            }
            s.recent = batch.into_iter().map(|(k, v)| (k, v.0)).collect();
        }
        Ok(n)
    }
}
