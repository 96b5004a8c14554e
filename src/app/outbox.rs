//! The notification worker: claims due rows of the outbox, delivers them (webhooks over
//! HTTP, signed the Standard Webhooks way; email over SMTP with lettre), records each
//! attempt and schedules retries. Runs on its own thread (`spawn_worker`) so that a slow
//! receiver never delays the maintenance tasks; tests call [`deliver_due`] and
//! [`scan_expiry`] directly with the fixed clock.
use parking_lot::Mutex;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::Connection;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use serde_json::Value;

use super::State;
use crate::config::Config;
use crate::error::BootError;
use crate::service::events::webhooks::{self as rules, LOG_KEEP};
use crate::service::{self, new_id};
use crate::store::models::{Delivery, OutboxRow};
use crate::store::webhooks::{self as q, Outcome};
use crate::whsec::{self, Sealer};

/// Rows claimed by one pass.
const BATCH: i64 = 32;
/// How long a claim holds its rows; a row whose instance died is due again after it.
const LEASE_SECONDS: i64 = 300;
/// Deliveries in flight at once in one instance.
const CONCURRENCY: usize = 4;
/// Deliveries of one org in flight at once across instances (fair claiming): one org's
/// slow receivers occupy at most this many of the worker's slots.
pub const PER_ORG_IN_FLIGHT: i64 = 2;
/// Connect, read and write timeouts of a webhook call and of an SMTP session.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most of a receiver's answer that is read (the rest is ignored).
const BODY_CAP: u64 = 64 * 1024;
/// Longest error kept in the delivery log.
const ERROR_CHARS: usize = 300;
/// Tokens looked at by one expiry scan.
const SCAN_LIMIT: i64 = 500;
/// Delivered and failed rows are kept this long.
const KEEP_SECONDS: i64 = 30 * 86_400;

/// What the worker needs beyond the database: the key that opens signing secrets, the
/// SMTP transport (when `TOKEND_SMTP_URL` is set) and the SSRF rule.
pub struct Notifier {
    pub sealer: Sealer,
    mailer: Option<SmtpTransport>,
    from: Mailbox,
    allow_private: bool,
}

impl Notifier {
    pub fn from_config(cfg: &Config) -> Result<Notifier, BootError> {
        let sealer = Sealer::open_dir(&cfg.keys_dir).map_err(|e| BootError::Notify(e.to_string()))?;
        let mailer = match &cfg.smtp_url {
            None => None,
            Some(u) => Some(
                SmtpTransport::from_url(&u.0)
                    .map_err(|_| BootError::Notify("TOKEND_SMTP_URL is not a usable SMTP URL".into()))?
                    .timeout(Some(TIMEOUT))
                    .build(),
            ),
        };
        let from = cfg.smtp_from.parse().map_err(|_| BootError::Notify("TOKEND_SMTP_FROM is not an address".into()))?;
        Ok(Notifier { sealer, mailer, from, allow_private: cfg.webhook_allow_private })
    }

    /// Whether email is sent (`TOKEND_SMTP_URL` set).
    pub fn email(&self) -> bool {
        self.mailer.is_some()
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    /// Email rows dropped because no SMTP server is configured.
    pub dropped: usize,
}

/// The result of one attempt.
struct Attempt {
    status: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    /// No point retrying (the webhook is gone or disabled, the address is malformed).
    fatal: bool,
    /// Not an attempt: the row is dropped (email without SMTP).
    drop: bool,
    /// Whether the attempt goes in a webhook's delivery log.
    log: bool,
}

impl Attempt {
    fn ok(status: Option<i64>, started: Instant) -> Attempt {
        Attempt { status, duration_ms: ms(started), error: None, fatal: false, drop: false, log: true }
    }
    fn failed(status: Option<i64>, started: Instant, error: impl Into<String>) -> Attempt {
        let e: String = error.into();
        let error = Some(e.chars().take(ERROR_CHARS).collect());
        Attempt { status, duration_ms: ms(started), error, fatal: false, drop: false, log: true }
    }
    fn fatal(error: &str, log: bool) -> Attempt {
        Attempt { status: None, duration_ms: 0, error: Some(error.into()), fatal: true, drop: false, log }
    }
}

fn ms(started: Instant) -> i64 {
    started.elapsed().as_millis().min(i64::MAX as u128) as i64
}

/// One pass: claims up to a batch of due rows, delivers them with bounded concurrency and
/// records every attempt. Several instances may run passes at once: each row is claimed by
/// one of them.
pub fn deliver_due(st: &State) -> service::Result<Pass> {
    let now = st.now();
    let claim = new_id();
    let rows = {
        let mut conn = st.db.write()?;
        q::claim(&mut conn, now, now + LEASE_SECONDS, &claim, BATCH, PER_ORG_IN_FLIGHT)?
    };
    let mut pass = Pass { claimed: rows.len(), ..Pass::default() };
    if rows.is_empty() {
        return Ok(pass);
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Attempt)>> = Mutex::new(Vec::with_capacity(rows.len()));
    std::thread::scope(|s| {
        for _ in 0..CONCURRENCY.min(rows.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(row) = rows.get(i) else { break };
                let a = attempt(st, row);
                done.lock().push((i, a));
            });
        }
    });
    let done = done.into_inner();
    let mut conn = st.db.write()?;
    for (i, a) in done {
        let row = &rows[i];
        let now = st.now();
        let attempts = row.attempts + 1;
        let error = a.error.clone().unwrap_or_default();
        let recorded = conn.transaction(|c| -> service::Result<bool> {
            if a.drop {
                q::discard(c, &row.id, &claim)?;
                return Ok(true);
            }
            let outcome = if a.error.is_none() {
                Outcome::Delivered
            } else {
                match (a.fatal, rules::next_attempt(row.created_at, attempts, now, jitter())) {
                    (false, Some(at)) => Outcome::Retry { next_attempt_at: at, error: &error },
                    _ => Outcome::Failed { error: &error },
                }
            };
            let kind = match outcome {
                Outcome::Delivered => 0,
                Outcome::Retry { .. } => 1,
                Outcome::Failed { .. } => 2,
            };
            if !q::finish(c, &row.id, &claim, attempts, now, outcome)? {
                return Ok(false);
            }
            // A sealed secret (an invitation link) is kept only while it may still be sent.
            if kind != 1 {
                if let Some(blank) = service::events::outbox::unsealed_payload(&row.payload) {
                    q::set_payload(c, &row.id, &blank)?;
                }
            }
            if let (Some(hook), true) = (&row.webhook_id, a.log) {
                let d = Delivery {
                    id: new_id(),
                    webhook_id: hook.clone(),
                    org_id: row.org_id.clone(),
                    outbox_id: row.id.clone(),
                    event_id: row.event_id.clone(),
                    event_type: row.event_type.clone(),
                    attempt: attempts,
                    at: now,
                    status_code: a.status,
                    duration_ms: a.duration_ms,
                    outcome: if a.error.is_none() { "success" } else { "failure" }.into(),
                    error: a.error.clone(),
                };
                q::log_delivery(c, &d, LOG_KEEP)?;
            }
            match kind {
                0 => pass.delivered += 1,
                1 => pass.retried += 1,
                _ => pass.failed += 1,
            }
            Ok(true)
        });
        match recorded {
            Ok(true) if a.drop => pass.dropped += 1,
            Ok(true) => {}
            Ok(false) => {
                log::warn!("outbox row {} was taken over by another instance before its result was recorded", row.id)
            }
            Err(e) => log::warn!("recording the delivery of outbox row {} failed (it will be retried): {e}", row.id),
        }
    }
    Ok(pass)
}

/// Up to 10 % more delay, so that receivers recovering from an outage are not hit by every
/// retry at once.
fn jitter() -> f64 {
    let b = uuid::Uuid::new_v4().as_u128() as u16;
    f64::from(b) / 65_536.0
}

fn attempt(st: &State, row: &OutboxRow) -> Attempt {
    match row.kind.as_str() {
        "webhook" => send_webhook(st, row),
        "email" => send_email(&st.notify, row),
        other => Attempt::fatal(&format!("unknown outbox kind {other:?}"), false),
    }
}

fn send_webhook(st: &State, row: &OutboxRow) -> Attempt {
    let n = &st.notify;
    let Some(id) = &row.webhook_id else { return Attempt::fatal("no webhook named", false) };
    let hook = match st.db.read().map_err(service::Error::from).and_then(|mut c| Ok(q::get(&mut c, id)?)) {
        Ok(Some(h)) => h,
        Ok(None) => return Attempt::fatal("the webhook was deleted", false),
        Err(e) => return Attempt::failed(None, Instant::now(), format!("database: {e}")),
    };
    if !hook.enabled && row.event_type != crate::service::events::EventKind::WebhookTest.as_str() {
        return Attempt::fatal("the webhook is disabled", true);
    }
    let Ok(secret) = n.sealer.open(&hook.id, &hook.secret_sealed) else {
        return Attempt::fatal("the signing secret does not open with this key directory's webhook key", true);
    };
    let ts = st.now();
    let signature = whsec::sign(&secret, &row.event_id, ts, row.payload.as_bytes());
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(TIMEOUT)
        .timeout_read(TIMEOUT)
        .timeout_write(TIMEOUT)
        .redirects(0)
        .user_agent(concat!("tokend-webhooks/", env!("CARGO_PKG_VERSION")))
        .resolver(Guard { allow_private: n.allow_private })
        .build();
    let started = Instant::now();
    let r = agent
        .post(&hook.url)
        .set("content-type", "application/json")
        .set("webhook-id", &row.event_id)
        .set("webhook-timestamp", &ts.to_string())
        .set("webhook-signature", &signature)
        .send_string(&row.payload);
    match r {
        Ok(resp) => {
            let status = i64::from(resp.status());
            let _ = std::io::copy(&mut resp.into_reader().take(BODY_CAP), &mut std::io::sink());
            if (200..300).contains(&status) {
                Attempt::ok(Some(status), started)
            } else {
                Attempt::failed(Some(status), started, format!("answered HTTP {status}"))
            }
        }
        Err(ureq::Error::Status(code, resp)) => {
            let _ = std::io::copy(&mut resp.into_reader().take(BODY_CAP), &mut std::io::sink());
            Attempt::failed(Some(i64::from(code)), started, format!("answered HTTP {code}"))
        }
        Err(ureq::Error::Transport(t)) => Attempt::failed(None, started, transport_error(&t)),
    }
}

/// A transport error without the URL (its query may carry the receiver's own token).
fn transport_error(t: &ureq::Transport) -> String {
    let mut s = format!("{:?}", t.kind());
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

/// Resolves a webhook's host and keeps only addresses an org admin may reach: not
/// loopback, private, link-local, shared, multicast or reserved, unless
/// `TOKEND_WEBHOOK_ALLOW_PRIVATE`. The connection goes to the checked addresses, so a
/// name that resolves differently a moment later (DNS rebinding) gains nothing.
struct Guard {
    allow_private: bool,
}

impl ureq::Resolver for Guard {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(all);
        }
        let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
        if public.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "refused: the host resolves only to loopback, private, link-local or reserved addresses \
                 (TOKEND_WEBHOOK_ALLOW_PRIVATE is off)",
            ));
        }
        Ok(public)
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), translated
            // (::ffff:0:a.b.c.d) and 6to4 (2002:aabb:ccdd::/48) reach that IPv4 address.
            let v4 = |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            if s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) {
                return is_public(v4(s[6], s[7]));
            }
            if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
                return is_public(v4(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(v4(s[1], s[2]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // Teredo (2001::/32): tunnels to an IPv4 address it obfuscates.
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

fn send_email(n: &Notifier, row: &OutboxRow) -> Attempt {
    let Some(mailer) = &n.mailer else {
        return Attempt { status: None, duration_ms: 0, error: None, fatal: false, drop: true, log: false };
    };
    let Some(to) = row.recipient.as_deref().and_then(|r| r.parse::<Mailbox>().ok()) else {
        return Attempt::fatal("the recipient is not a valid address", false);
    };
    let mut payload: Value = serde_json::from_str(&row.payload).unwrap_or_default();
    // A secret sealed in the row (an invitation link) is opened only here, in memory.
    if let Some(sealed) = payload.get("sealed").and_then(Value::as_str).map(str::to_string) {
        let aad = service::events::outbox::sealed_aad(&row.id);
        let Ok(link) = n.sealer.open(&aad, &sealed) else {
            return Attempt::fatal("the sealed link does not open with this key directory's webhook key", false);
        };
        payload["data"]["link"] = Value::String(link);
    }
    let (subject, body) = render_email(&row.event_type, &payload);
    let msg = match Message::builder()
        .from(n.from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
    {
        Ok(m) => m,
        Err(e) => return Attempt::fatal(&format!("building the message: {e}"), false),
    };
    let started = Instant::now();
    match mailer.send(&msg) {
        Ok(resp) => Attempt::ok(Some(i64::from(u16::from(resp.code()))), started),
        Err(e) if e.is_permanent() => {
            let mut a = Attempt::failed(None, started, format!("SMTP: {e}"));
            a.fatal = true;
            a
        }
        Err(e) => Attempt::failed(None, started, format!("SMTP: {e}")),
    }
}

/// Subject and text of a notification email.
pub fn render_email(event_type: &str, payload: &Value) -> (String, String) {
    if event_type == "token.revoked" && payload["data"]["reason"] == "leak_report" {
        return render_leak_email(&payload["data"]);
    }
    if event_type == "user.invitation" || event_type == "user.password_reset" {
        return render_code_email(event_type, &payload["data"]);
    }
    let t = &payload["data"]["token"];
    let name = t["name"].as_str().unwrap_or("(unnamed)");
    let whose = if t["owner_kind"] == "service_account" {
        format!("The token \"{name}\" of the service account {}", t["owner"].as_str().unwrap_or(""))
    } else {
        format!("Your token \"{name}\"")
    };
    let facts = format!(
        "Token: {name} ({})\nExpires: {}\nToken id: {}\n",
        t["hint"].as_str().unwrap_or(""),
        t["expires_at"].as_str().unwrap_or(""),
        t["id"].as_str().unwrap_or("")
    );
    match event_type {
        "token.expiring" => {
            let days = payload["data"]["days_left"].as_i64().unwrap_or(0);
            let unit = if days == 1 { "day" } else { "days" };
            (
                format!("Token \"{name}\" expires in {days} {unit}"),
                format!("{whose} expires in {days} {unit}. Create a new one before then.\n\n{facts}"),
            )
        }
        "token.expired" => (format!("Token \"{name}\" has expired"), format!("{whose} has expired.\n\n{facts}")),
        "token.revoked" => (
            format!("Token \"{name}\" was revoked"),
            format!("{whose} was revoked by an administrator. It no longer works.\n\n{facts}"),
        ),
        other => (format!("tokend: {other}"), format!("{other}\n\n{facts}")),
    }
}

/// An invitation or a password reset: the one-time link (opened from its seal), whom it
/// is from, until when it works.
fn render_code_email(event_type: &str, d: &Value) -> (String, String) {
    let link = d["link"].as_str().unwrap_or("(the link could not be opened)");
    let until = d["expires_at"].as_str().unwrap_or("");
    let by = d["by"].as_str().map(|b| format!(" by {b}")).unwrap_or_default();
    if event_type == "user.invitation" {
        (
            "You are invited to tokend".to_string(),
            format!(
                "You have been invited to tokend{by}.\n\n\
                 Open this link to choose your password (it works once, until {until}):\n\n{link}\n\n\
                 If you did not expect this, ignore this email.\n"
            ),
        )
    } else {
        (
            "Reset your tokend password".to_string(),
            format!(
                "A password reset was started for you{by}. Your sign-ins have ended.\n\n\
                 Open this link to choose a new password (it works once, until {until}):\n\n{link}\n\n\
                 If you did not expect this, tell your administrator.\n"
            ),
        )
    }
}

/// A secret revoked because a leak report found it in public: what, where, what to do.
fn render_leak_email(d: &Value) -> (String, String) {
    let url = d["leak"]["url"].as_str().filter(|u| !u.is_empty()).unwrap_or("(no URL was reported)");
    let source = d["leak"]["source"].as_str().filter(|s| !s.is_empty()).unwrap_or("unknown");
    let (what, facts) = if d["credential"] == "app_secret" {
        let name = d["app"]["name"].as_str().unwrap_or("(unnamed)");
        (
            format!("The client secret of the app \"{name}\""),
            format!(
                "App: {name}\nClient id: {}\nSecret: {}\n",
                d["app"]["client_id"].as_str().unwrap_or(""),
                d["app"]["hint"].as_str().unwrap_or("")
            ),
        )
    } else {
        let t = &d["token"];
        let name = t["name"].as_str().unwrap_or("(unnamed)");
        let what = if t["owner_kind"] == "service_account" {
            format!("The token \"{name}\" of the service account {}", t["owner"].as_str().unwrap_or(""))
        } else {
            format!("Your token \"{name}\"")
        };
        (
            what,
            format!(
                "Token: {name} ({})\nToken id: {}\n",
                t["hint"].as_str().unwrap_or(""),
                t["id"].as_str().unwrap_or("")
            ),
        )
    };
    (
        "A leaked tokend secret was revoked".to_string(),
        format!(
            "{what} was found in public and has been revoked: it no longer works.\n\n\
             Found at: {url}\nSource: {source}\n\n{facts}\n\
             Remove it from where it was published, then create a new one for whatever used it.\n"
        ),
    )
}

/// The expiry scan (see `service::events::webhooks::scan_expiry`), then old finished rows purged.
pub fn scan_expiry(st: &State) -> service::Result<usize> {
    let mut conn = st.db.write()?;
    let now = st.now();
    let queued = rules::scan_expiry(&mut conn, now, st.notify.email(), SCAN_LIMIT)?;
    q::purge(&mut conn, now - KEEP_SECONDS)?;
    Ok(queued)
}

/// Sets the outbox gauges from the database (a maintenance task, once a minute).
pub fn refresh_gauges(st: &State) -> service::Result<()> {
    let mut conn = st.db.read()?;
    for (kind, pending, failed) in q::depth(&mut conn)? {
        st.metrics.outbox_depth.with_label_values(&[&kind]).set(pending);
        st.metrics.outbox_failed.with_label_values(&[&kind]).set(failed);
    }
    Ok(())
}

/// The worker thread: a delivery pass every `TOKEND_OUTBOX_INTERVAL_SECONDS` (passes repeat
/// at once while they find full batches), the expiry scan every minute. Stops with
/// `state.stopping`.
pub fn spawn_worker(state: web::Data<State>) -> std::thread::JoinHandle<()> {
    let every = Duration::from_secs(state.cfg.outbox_interval_seconds.max(1));
    std::thread::Builder::new()
        .name("tokend-outbox".into())
        .spawn(move || {
            let tick = Duration::from_millis(250);
            let mut last_pass = Instant::now();
            let mut last_scan: Option<Instant> = None;
            while !state.stopping.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                if last_scan.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_scan = Some(Instant::now());
                    if let Err(e) = scan_expiry(&state) {
                        log::warn!("expiry scan failed, will retry: {e}");
                    }
                }
                if last_pass.elapsed() < every {
                    continue;
                }
                last_pass = Instant::now();
                // Pass after pass while there is work (a pass takes at most a few rows of
                // each org), but the expiry scan still runs every minute.
                let scan_due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                loop {
                    match deliver_due(&state) {
                        Ok(p) if p.claimed > 0 && !state.stopping.load(Ordering::Relaxed) && !scan_due(last_scan) => {
                            continue
                        }
                        Ok(_) => break,
                        Err(e) => {
                            log::warn!("notification delivery pass failed, will retry: {e}");
                            break;
                        }
                    }
                }
            }
        })
        .expect("spawning the outbox worker thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "255.255.255.255",
            // IPv4 inside IPv6 (issue #18 item 14).
            "::10.0.0.1",
            "::127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            "2002:0a00:0001::1",
            "2002:a9fe:a9fe::",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001::1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2002:0101:0101::1", "::ffff:0:1.1.1.1"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn the_guard_refuses_loopback_unless_allowed() {
        use ureq::Resolver;
        let e = Guard { allow_private: false }.resolve("127.0.0.1:80").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(Guard { allow_private: true }.resolve("127.0.0.1:80").unwrap().len(), 1);
    }
}
