//! Last-used times of API tokens, kept in memory on the hot path and flushed to the
//! database every few seconds and at shutdown. A crash loses at most one interval of
//! last-used times; revocations never go through here.
use parking_lot::Mutex;
use std::collections::HashMap;

use diesel::Connection;

use crate::store::{self, AnyConnection};

#[derive(Default)]
pub struct Usage {
    pending: Mutex<HashMap<String, (i64, String)>>,
    /// The last flushed batch, kept readable for one more interval: a reader that read the
    /// database row before the flush committed still finds the time here.
    recent: Mutex<HashMap<String, i64>>,
}

impl Usage {
    pub fn touch(&self, token_id: &str, now: i64, ip: &str) {
        let mut p = self.pending.lock();
        match p.get_mut(token_id) {
            Some(v) => {
                v.0 = now.max(v.0);
                if v.1 != ip {
                    v.1 = ip.to_string();
                }
            }
            None => {
                p.insert(token_id.to_string(), (now, ip.to_string()));
            }
        }
    }

    /// The freshest last-used time this process knows of (0 if none). Reads `pending`
    /// before `recent`, the reverse of the order in which flush() moves a time between them.
    pub fn last_used(&self, token_id: &str) -> i64 {
        let pending = self.pending.lock().get(token_id).map(|v| v.0);
        let recent = self.recent.lock().get(token_id).copied();
        pending.unwrap_or(0).max(recent.unwrap_or(0))
    }

    /// The not-yet-flushed last use (time, ip), if any.
    pub fn pending(&self, token_id: &str) -> Option<(i64, String)> {
        self.pending.lock().get(token_id).cloned()
    }

    /// Writes pending times in one transaction; never moves a time backwards (another
    /// instance may have written a newer one). A time stays in `pending` until its write
    /// committed and it is in `recent`, so no reader ever misses it.
    pub fn flush(&self, conn: &mut AnyConnection) -> Result<usize, diesel::result::Error> {
        let batch: HashMap<String, (i64, String)> = self.pending.lock().clone();
        if batch.is_empty() {
            self.recent.lock().clear();
            return Ok(0);
        }
        conn.transaction(|conn| {
            for (id, (at, ip)) in &batch {
                store::tokens::touch(conn, id, *at, ip)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        *self.recent.lock() = batch.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        let mut p = self.pending.lock();
        for (k, (at, _)) in &batch {
            if p.get(k).is_some_and(|v| v.0 <= *at) {
                p.remove(k);
            }
        }
        Ok(batch.len())
    }
}
