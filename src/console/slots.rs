//! Short-lived, per-session state of the console, kept in this process's memory (keyed by
//! the session's hash, never logged): a secret waiting to be shown once, the message of
//! the next page (flash), and the "sudo" window of a fresh password.
//!
//! One store per server (`State::console`), so servers in one process (tests) keep theirs
//! apart.
//!
//! Why memory: every entry lives minutes, losing one on a restart only means "shown once"
//! or "enter your password again". Behind a load balancer with several instances the
//! secret page must reach the instance that made it (sticky sessions), else it says the
//! secret was already shown.
use parking_lot::Mutex;
use std::collections::HashMap;

use super::views::parts::Snippet;

/// How long a new secret waits to be shown (a redirect away: seconds in practice).
pub const SECRET_TTL: i64 = 300;
/// How long a flash message waits for the next page.
pub const FLASH_TTL: i64 = 120;
/// How long a password entered for a sensitive action (or the sign-in) stays fresh.
pub const SUDO_TTL: i64 = 300;
/// At most this many waiting secrets per session (a loop of creates fills no memory).
const MAX_SECRETS_PER_SESSION: usize = 20;

/// The message shown on the next page, naming what happened, and the row it concerns.
#[derive(Clone, Debug)]
pub struct Flash {
    pub message: String,
    /// The `data-id` of the table row to highlight.
    pub row: Option<String>,
}

/// A secret page's content, made by the POST and shown by the GET that follows it.
pub struct ShownSecret {
    /// The navigation section of the page.
    pub nav: &'static str,
    pub title: String,
    pub what: &'static str,
    pub secret: String,
    pub extra: Option<(&'static str, String)>,
    /// Facts beside it: expiry, roles.
    pub facts: Vec<(&'static str, String)>,
    pub usage: Vec<Snippet>,
    pub back: String,
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<(String, String), (i64, ShownSecret)>,
    flash: HashMap<String, (i64, Flash)>,
    sudo: HashMap<String, i64>,
}

/// The console's short-lived per-session entries of one server.
#[derive(Default)]
pub struct Slots(Mutex<Inner>);

impl Inner {
    /// Drops what has expired (called on every insert, so memory follows live sessions).
    fn prune(&mut self, now: i64) {
        self.secrets.retain(|_, (exp, _)| *exp > now);
        self.flash.retain(|_, (exp, _)| *exp > now);
        self.sudo.retain(|_, exp| *exp > now);
    }
}

impl Slots {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.0.lock()
    }

    /// Keeps a secret for session `sid`; the answer names its slot (random, for the URL).
    pub fn put_secret(&self, sid: &str, s: ShownSecret, now: i64) -> String {
        let slot = crate::secrets::random_id("", 16);
        let mut g = self.lock();
        g.prune(now);
        if g.secrets.keys().filter(|(k, _)| k == sid).count() >= MAX_SECRETS_PER_SESSION {
            g.secrets.retain(|(k, _), _| k != sid);
        }
        g.secrets.insert((sid.to_string(), slot.clone()), (now + SECRET_TTL, s));
        slot
    }

    /// Takes the secret of a slot (once: the next call answers None).
    pub fn take_secret(&self, sid: &str, slot: &str, now: i64) -> Option<ShownSecret> {
        let (exp, s) = self.lock().secrets.remove(&(sid.to_string(), slot.to_string()))?;
        (exp > now).then_some(s)
    }

    /// Sets the message of session `sid`'s next page.
    pub fn put_flash(&self, sid: &str, message: String, row: Option<String>, now: i64) {
        let mut g = self.lock();
        g.prune(now);
        g.flash.insert(sid.to_string(), (now + FLASH_TTL, Flash { message, row }));
    }

    /// Takes the waiting message of session `sid`, if any.
    pub fn take_flash(&self, sid: &str, now: i64) -> Option<Flash> {
        let (exp, f) = self.lock().flash.remove(sid)?;
        (exp > now).then_some(f)
    }

    /// Records a fresh password for session `sid` (sign-in, or the sudo prompt).
    pub fn grant_sudo(&self, sid: &str, now: i64) {
        let mut g = self.lock();
        g.prune(now);
        g.sudo.insert(sid.to_string(), now + SUDO_TTL);
    }

    /// Whether session `sid` entered its password within the last `SUDO_TTL` seconds.
    pub fn has_sudo(&self, sid: &str, now: i64) -> bool {
        self.lock().sudo.get(sid).is_some_and(|exp| *exp > now)
    }

    /// Forgets a session's entries (sign-out).
    pub fn forget(&self, sid: &str) {
        let mut g = self.lock();
        g.secrets.retain(|(k, _), _| k != sid);
        g.flash.remove(sid);
        g.sudo.remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> ShownSecret {
        ShownSecret {
            nav: "my-tokens",
            title: "t".into(),
            what: "token",
            secret: s.into(),
            extra: None,
            facts: vec![],
            usage: vec![],
            back: "/".into(),
        }
    }

    #[test]
    fn secrets_are_taken_once_by_their_session_only() {
        let s = Slots::default();
        let slot = s.put_secret("sid-a", secret("s1"), 1000);
        assert!(s.take_secret("sid-b", &slot, 1000).is_none(), "another session");
        assert_eq!(s.take_secret("sid-a", &slot, 1001).unwrap().secret, "s1");
        assert!(s.take_secret("sid-a", &slot, 1001).is_none(), "once");
        let slot = s.put_secret("sid-a", secret("s2"), 1000);
        assert!(s.take_secret("sid-a", &slot, 1000 + SECRET_TTL).is_none(), "expired");
    }

    #[test]
    fn flash_and_sudo() {
        let s = Slots::default();
        s.put_flash("sid-f", "Revoked “x”".into(), Some("t1".into()), 10);
        assert_eq!(s.take_flash("sid-f", 11).unwrap().row.as_deref(), Some("t1"));
        assert!(s.take_flash("sid-f", 11).is_none());
        assert!(!s.has_sudo("sid-s", 10));
        s.grant_sudo("sid-s", 10);
        assert!(s.has_sudo("sid-s", 10 + SUDO_TTL - 1));
        assert!(!s.has_sudo("sid-s", 10 + SUDO_TTL));
        s.forget("sid-s");
        assert!(!s.has_sudo("sid-s", 11));
    }
}
