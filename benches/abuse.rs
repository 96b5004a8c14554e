//! tokend-abuse: the token path under abuse, and an HTTP fuzz of every route (issue #11).
//!
//!   cargo bench --bench abuse -- --url http://127.0.0.1:18080 --email admin@localhost \
//!       --password PW --pid PID [--mode abuse|flood|fuzz|all] [--seconds 10] [--connections 64]
//!       [--fuzz-requests 100000] [--fuzz-seconds 240] [--fuzz-connections 16]
//!
//! The server must run with TOKEND_TRUSTED_PROXIES=127.0.0.1 (the login flood comes from
//! six X-Forwarded-For addresses) and TOKEND_AUDIENCES set; `bench/abuse.sh` does all that.
//! Loopback only, bounded in time (abuse) and in count and time (fuzz).
//!
//! abuse: (A) the token path alone — `refresh_token` with a personal token and
//! `client_credentials`, half the connections each; (B) the login flood alone — 6 addresses
//! × 32 connections of wrong passwords — with 2 connections timing `GET /api/v1/me` under a
//! valid owner login; (C) the token path again while the login flood, a metrics-cardinality
//! flood (random methods on random paths, raw TCP) and an audit flood (a member's refused
//! DELETE/PATCH/POST with 7,000-character ids) run. Token path and probe run on their own
//! thread (one current-thread runtime), the floods on another. RSS from /proc/PID/status.
//!
//! flood: (D) a distributed anonymous login flood (a new X-Forwarded-For address per
//! request, IPv4 and IPv6 /64s) while the owner logs in with the right password from its
//! usual address (the success rate, target ≥ 95 %) and from fresh addresses, and /me is
//! timed; (E) the audit rows one member writes a second (exchange + revoke in a loop, its
//! revoked token from many addresses).
//!
//! fuzz: ≥ N requests over all routes of /openapi.json plus unknown ones, every method (and
//! invented ones), random content types and bodies (JSON-ish, form-ish, binary, up to
//! 80 KiB, empty), with/without the owner's bearer. Fails (exit 1) on any response ≥ 500
//! other than 503 + Retry-After from a password-hashing route, on a dead server, or on RSS
//! growth ≥ 32 MiB.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[path = "support/mod.rs"]
mod support;
use support::{b64, post_form, read_response_full, Rng};

struct Args {
    url: String,
    email: String,
    password: String,
    pid: u32,
    mode: String,
    seconds: u64,
    connections: usize,
    fuzz_requests: u64,
    fuzz_seconds: u64,
    fuzz_connections: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:18080".into(),
        email: "admin@localhost".into(),
        password: String::new(),
        pid: 0,
        mode: "all".into(),
        seconds: 10,
        connections: 64,
        fuzz_requests: 100_000,
        fuzz_seconds: 240,
        fuzz_connections: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v(),
            "--email" => a.email = v(),
            "--password" => a.password = v(),
            "--pid" => a.pid = v().parse().expect("--pid PID"),
            "--mode" => a.mode = v(),
            "--seconds" => a.seconds = v().parse().expect("--seconds N"),
            "--connections" => a.connections = v().parse().expect("--connections N"),
            "--fuzz-requests" => a.fuzz_requests = v().parse().expect("--fuzz-requests N"),
            "--fuzz-seconds" => a.fuzz_seconds = v().parse().expect("--fuzz-seconds N"),
            "--fuzz-connections" => a.fuzz_connections = v().parse().expect("--fuzz-connections N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.url.starts_with("http://127.") || a.url.starts_with("http://localhost"), "loopback only");
    assert!(a.pid != 0, "--pid PID of the server (for RSS)");
    a
}

/// VmRSS of the server in KiB (0 when the process is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (`/proc/PID/stat`), of the server and of this one.
struct Cpu(f64, f64);

fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) are split by spaces: utime, stime are
    // fields 14 and 15 of the line, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

impl Cpu {
    fn now(pid: u32) -> Cpu {
        Cpu(cpu_seconds(&pid.to_string()), cpu_seconds("self"))
    }
    fn since(self, pid: u32) -> (f64, f64) {
        let n = Cpu::now(pid);
        (n.0 - self.0, n.1 - self.1)
    }
}

/// Samples RSS every 50 ms until dropped; answers the peak.
struct RssPeak {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl RssPeak {
    fn start(pid: u32) -> RssPeak {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = rss_kib(pid);
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak.max(rss_kib(pid))
        });
        RssPeak { stop, handle: Some(handle) }
    }
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------
// Set-up through the API

struct Setup {
    owner_at: String,
    member_at: String,
    /// The member's personal token, and another one the member revoked.
    member_pat: String,
    member_revoked_pat: String,
    basic: String,
    client_id: String,
    pat: String,
    ids: Vec<String>,
}

fn api(url: &str, method: &str, path: &str, bearer: Option<&str>, xff: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = ureq::request(method, &format!("{url}{path}")).timeout(Duration::from_secs(30));
    if let Some(b) = bearer {
        r = r.set("Authorization", &format!("Bearer {b}"));
    }
    if let Some(x) = xff {
        r = r.set("X-Forwarded-For", x);
    }
    match r.send_json(body) {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn must(r: (u16, Value), what: &str) -> Value {
    assert!((200..300).contains(&r.0), "{what}: {} {}", r.0, r.1);
    r.1
}

fn setup(a: &Args) -> Setup {
    let u = a.url.as_str();
    let login =
        must(api(u, "POST", "/api/v1/login", None, None, json!({"email": a.email, "password": a.password})), "login");
    let owner_at = login["access_token"].as_str().expect("login").to_string();
    let app = must(
        api(
            u,
            "POST",
            "/api/v1/apps",
            Some(&owner_at),
            None,
            json!({"name": "abuse", "roles": ["org:member"], "introspect": true}),
        ),
        "app",
    );
    let (cid, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let basic = format!("Basic {}", b64(&format!("{cid}:{secret}")));
    let pat = must(
        api(
            u,
            "POST",
            "/api/v1/me/tokens",
            Some(&owner_at),
            None,
            json!({"name": "abuse", "ttl_days": 1, "roles": ["org:member"]}),
        ),
        "pat",
    );
    let pat_id = pat["id"].as_str().unwrap_or_default().to_string();
    let pat = pat["token"].as_str().unwrap().to_string();
    // A member with a password: created, reset code, redeemed, logged in.
    let email = format!("member-{}@abuse.test", std::process::id());
    let user = must(
        api(u, "POST", "/api/v1/users", Some(&owner_at), None, json!({"email": email, "roles": ["org:member"]})),
        "member",
    );
    let uid = user["id"].as_str().unwrap().to_string();
    let code =
        must(api(u, "POST", &format!("/api/v1/users/{uid}/password-reset"), Some(&owner_at), None, json!({})), "reset");
    let code = code["code"].as_str().unwrap();
    must(
        api(
            u,
            "POST",
            "/api/v1/password-reset",
            None,
            None,
            json!({"code": code, "new_password": "member-password-123"}),
        ),
        "redeem",
    );
    let ml = must(
        api(u, "POST", "/api/v1/login", None, None, json!({"email": email, "password": "member-password-123"})),
        "member login",
    );
    let member_at = ml["access_token"].as_str().unwrap().to_string();
    let app_id = app["id"].as_str().unwrap_or(cid).to_string();
    let member_pat = |name: &str| {
        must(
            api(
                u,
                "POST",
                "/api/v1/me/tokens",
                Some(&member_at),
                None,
                json!({"name": name, "ttl_days": 1, "roles": ["org:member"]}),
            ),
            "member pat",
        )
    };
    let live = member_pat("loop");
    let doomed = member_pat("doomed");
    let doomed_id = doomed["id"].as_str().unwrap();
    must(api(u, "DELETE", &format!("/api/v1/me/tokens/{doomed_id}"), Some(&member_at), None, Value::Null), "revoke");
    Setup {
        owner_at,
        member_at,
        member_pat: live["token"].as_str().unwrap().to_string(),
        member_revoked_pat: doomed["token"].as_str().unwrap().to_string(),
        basic,
        client_id: cid.to_string(),
        pat,
        ids: vec![app_id, pat_id, uid, cid.to_string()],
    }
}

// ---------------------------------------------------------------------------------------
// Connections

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    bad: u64,
    io_errors: u64,
    timeouts: u64,
    statuses: BTreeMap<u16, u64>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.latencies_us.extend(o.latencies_us);
        self.ok += o.ok;
        self.bad += o.bad;
        self.io_errors += o.io_errors;
        self.timeouts += o.timeouts;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }
    fn total(&self) -> u64 {
        self.ok + self.bad
    }
    fn p(&mut self, q: f64) -> f64 {
        self.latencies_us.sort_unstable();
        support::pct(&self.latencies_us, q)
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One keep-alive connection in a closed loop until `until`: `make` builds each request,
/// `good` says which statuses count as success. Reconnects after errors and closes.
async fn closed_loop(
    host: String,
    until: Instant,
    seed: u64,
    timed: bool,
    good: fn(u16) -> bool,
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
) -> Tally {
    let mut t = Tally::default();
    if timed {
        t.latencies_us.reserve(50_000);
    }
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::with_capacity(4096);
    'outer: while Instant::now() < until {
        let mut s = match TcpStream::connect(&host).await {
            Ok(s) => s,
            Err(_) => {
                t.io_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        while Instant::now() < until {
            let req = make(&mut rng);
            let head = req.starts_with(b"HEAD ");
            let start = Instant::now();
            let r = tokio::time::timeout(REQUEST_TIMEOUT, async {
                s.write_all(&req).await?;
                read_response_full(&mut s, &mut buf, head).await
            })
            .await;
            match r {
                Ok(Ok(resp)) => {
                    if timed {
                        t.latencies_us.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    *t.statuses.entry(resp.status).or_default() += 1;
                    if good(resp.status) {
                        t.ok += 1
                    } else {
                        t.bad += 1
                    }
                    if resp.close {
                        continue 'outer;
                    }
                }
                Ok(Err(_)) => {
                    t.io_errors += 1;
                    continue 'outer;
                }
                Err(_) => {
                    t.timeouts += 1;
                    continue 'outer;
                }
            }
        }
    }
    t
}

fn is_2xx(s: u16) -> bool {
    (200..300).contains(&s)
}

fn any_status(_: u16) -> bool {
    true
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::spawn(f)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The token path: half the connections `refresh_token` (PAT), half `client_credentials`.
fn token_path(host: &str, s: &Setup, conns: usize, d: Duration) -> (Tally, Tally) {
    let refresh = post_form(host, "/oauth/token", None, &format!("grant_type=refresh_token&refresh_token={}", s.pat));
    let cc = post_form(host, "/oauth/token", Some(&s.basic), "grant_type=client_credentials");
    let host = host.to_string();
    rt().block_on(async move {
        let until = Instant::now() + d;
        let mut tasks = Vec::new();
        for i in 0..conns {
            let req = if i % 2 == 0 { refresh.clone() } else { cc.clone() };
            tasks.push(tokio::spawn(closed_loop(host.clone(), until, i as u64, true, is_2xx, move |_| req.clone())));
        }
        let (mut r, mut c) = (Tally::default(), Tally::default());
        for (i, t) in tasks.into_iter().enumerate() {
            let x = t.await.unwrap();
            if i % 2 == 0 {
                r.merge(x)
            } else {
                c.merge(x)
            }
        }
        (r, c)
    })
}

/// GET /api/v1/me with the owner's login token on `conns` connections.
fn me_probe(host: &str, bearer: &str, conns: usize, d: Duration) -> Tally {
    let req = format!("GET /api/v1/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n").into_bytes();
    let host = host.to_string();
    rt().block_on(async move {
        let until = Instant::now() + d;
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let req = req.clone();
                tokio::spawn(closed_loop(host.clone(), until, i as u64, true, |s| s == 200, move |_| req.clone()))
            })
            .collect();
        let mut t = Tally::default();
        for x in tasks {
            t.merge(x.await.unwrap());
        }
        t
    })
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~";

/// The floods, each on its own set of connections, until `until`. Answers per flood tallies.
/// What the floods beside the login flood need (run (C) only).
struct Others {
    member_at: String,
    client_id: String,
    routes: Arc<Vec<Route>>,
    ids: Arc<Vec<String>>,
}

async fn floods(host: String, email: String, others: Option<Others>, until: Instant) -> BTreeMap<&'static str, Tally> {
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<Tally>)> = Vec::new();
    // (a) login flood: 6 addresses × 32 connections, wrong passwords for the owner's account.
    for addr in 1..=6u64 {
        for c in 0..32u64 {
            let (h, e) = (host.clone(), email.clone());
            tasks.push((
                "login",
                tokio::spawn(closed_loop(host.clone(), until, addr * 1000 + c, false, any_status, move |rng| {
                    let body = json!({"email": e, "password": format!("wrong-{}", rng.token(12, ALNUM))}).to_string();
                    format!(
                        "POST /api/v1/login HTTP/1.1\r\nHost: {h}\r\nX-Forwarded-For: 203.0.113.{addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                })),
            ));
        }
    }
    if let Some(o) = others {
        let member = o.member_at.clone();
        // (b) metrics cardinality: invented methods on random paths.
        for c in 0..16u64 {
            let h = host.clone();
            tasks.push((
                "cardinality",
                tokio::spawn(closed_loop(host.clone(), until, 7000 + c, false, any_status, move |rng| {
                    let n = 3 + rng.below(10);
                    let method = rng.token(n, UPPER);
                    let p1 = rng.token_upto(1, 16, ALNUM);
                    let p2 = rng.token_upto(1, 16, ALNUM);
                    let prefix = *rng.pick(&["", "/api/v1", "/oauth", "/api/v1/apps", "/.well-known"]);
                    format!("{method} {prefix}/{p1}/{p2} HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes()
                })),
            ));
        }
        // (c) audit flood: a member's refused mutating calls with 7,000-character ids.
        for c in 0..16u64 {
            let (h, m) = (host.clone(), member.clone());
            tasks.push((
                "audit",
                tokio::spawn(closed_loop(host.clone(), until, 9000 + c, false, any_status, move |rng| {
                    let id = rng.token(7000, ALNUM);
                    let (method, path) = match rng.below(5) {
                        0 => ("DELETE", format!("/api/v1/apps/{id}")),
                        1 => ("PATCH", format!("/api/v1/apps/{id}")),
                        2 => ("POST", format!("/api/v1/apps/{id}/secret")),
                        3 => ("DELETE", format!("/api/v1/users/{id}")),
                        _ => ("DELETE", format!("/api/v1/service-accounts/{id}")),
                    };
                    format!(
                        "{method} {path} HTTP/1.1\r\nHost: {h}\r\nAuthorization: Bearer {m}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                    )
                    .into_bytes()
                })),
            ));
        }
        // (d) bad-secret flood: client_credentials with the app's client id and a wrong
        // secret, an unknown client id, or a made-up personal token, from 8 addresses.
        for c in 0..16u64 {
            let (h, cid) = (host.clone(), o.client_id.clone());
            tasks.push((
                "bad-secret",
                tokio::spawn(closed_loop(host.clone(), until, 11_000 + c, false, any_status, move |rng| {
                    let (auth, body) = match rng.below(3) {
                        0 => (Some(format!("{cid}:tkd_cs_{}", rng.token(40, ALNUM))), "grant_type=client_credentials".into()),
                        1 => (Some(format!("cid_{}:{}", rng.token(16, ALNUM), rng.token(40, ALNUM))), "grant_type=client_credentials".into()),
                        _ => (None, format!("grant_type=refresh_token&refresh_token=tkd_pat_{}", rng.token(40, ALNUM))),
                    };
                    let auth = auth.map(|a| format!("Authorization: Basic {}\r\n", b64(&a))).unwrap_or_default();
                    format!(
                        "POST /oauth/token HTTP/1.1\r\nHost: {h}\r\nX-Forwarded-For: 198.51.100.{}\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                        c % 8,
                        body.len()
                    )
                    .into_bytes()
                })),
            ));
        }
        // (e) HTTP fuzz: the fuzz mode's requests (every route of /openapi.json, random
        // methods, ids, headers and bodies) as the member, with a wrong Basic pair.
        for c in 0..16u64 {
            let (h, m, routes, ids) = (host.clone(), member.clone(), o.routes.clone(), o.ids.clone());
            let basic = format!("Basic {}", b64("fuzz:not-a-secret"));
            tasks.push((
                "fuzz",
                tokio::spawn(closed_loop(host.clone(), until, 13_000 + c, false, any_status, move |rng| {
                    fuzz_request(rng, &h, &routes, &ids, &m, &basic).0
                })),
            ));
        }
    }
    // ABUSE_FLOODS=login,fuzz,… keeps only those (to see what each one costs).
    if let Ok(only) = std::env::var("ABUSE_FLOODS") {
        let keep: Vec<&str> = only.split(',').map(str::trim).collect();
        tasks.retain(|(k, t)| {
            keep.contains(k) || {
                t.abort();
                false
            }
        });
    }
    let mut out: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for (k, t) in tasks {
        out.entry(k).or_default().merge(t.await.unwrap());
    }
    out
}

fn flood_thread(
    a: &Args,
    s: &Setup,
    with_others: bool,
    d: Duration,
) -> std::thread::JoinHandle<BTreeMap<&'static str, Tally>> {
    let host = host_of(&a.url);
    let email = a.email.clone();
    let others = with_others.then(|| Others {
        member_at: s.member_at.clone(),
        client_id: s.client_id.clone(),
        routes: Arc::new(routes(&a.url)),
        ids: Arc::new(s.ids.clone()),
    });
    on_thread(move || {
        let until = Instant::now() + d;
        rt().block_on(floods(host, email, others, until))
    })
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn statuses(t: &Tally) -> String {
    let mut s: Vec<String> = t.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    if t.io_errors > 0 {
        s.push(format!("io:{}", t.io_errors));
    }
    if t.timeouts > 0 {
        s.push(format!("timeout:{}", t.timeouts));
    }
    s.join(" ")
}

fn abuse(a: &Args, s: &Setup) {
    let host = host_of(&a.url);
    let d = Duration::from_secs(a.seconds);
    let conns = a.connections;
    println!("== abuse: {conns} token-path connections, {}s per run; load {}", a.seconds, loadavg());

    // (A) alone, after a 2 s warm-up.
    let _ = token_path(&host, s, conns, Duration::from_secs(2));
    let rss_a0 = rss_kib(a.pid);
    let peak = RssPeak::start(a.pid);
    let cpu_a = Cpu::now(a.pid);
    let (mut ra, mut ca) = token_path(&host, s, conns, d);
    let cpu_a = cpu_a.since(a.pid);
    let (rss_a_peak, rss_a1) = (peak.finish(), rss_kib(a.pid));
    let load_a = loadavg();

    // (B) login flood alone, /me probe.
    let rss_b0 = rss_kib(a.pid);
    let peak = RssPeak::start(a.pid);
    let fl = flood_thread(a, s, false, d);
    let (h2, at) = (host.clone(), s.owner_at.clone());
    let mut me = on_thread(move || me_probe(&h2, &at, 2, d)).join().unwrap();
    let fb = fl.join().unwrap();
    let (rss_b_peak, rss_b1) = (peak.finish(), rss_kib(a.pid));
    let load_b = loadavg();

    // (C) token path with every flood.
    let rss_c0 = rss_kib(a.pid);
    let peak = RssPeak::start(a.pid);
    let cpu_c = Cpu::now(a.pid);
    let fl = flood_thread(a, s, true, d);
    let (mut rc, mut cc) = token_path(&host, s, conns, d);
    let fc = fl.join().unwrap();
    let cpu_c = cpu_c.since(a.pid);
    let (rss_c_peak, rss_c1) = (peak.finish(), rss_kib(a.pid));
    let load_c = loadavg();

    let secs = a.seconds as f64;
    let mut all_a = Tally::default();
    all_a.merge(std::mem::take(&mut ra));
    all_a.merge(std::mem::take(&mut ca));
    let mut all_c = Tally::default();
    all_c.merge(std::mem::take(&mut rc));
    all_c.merge(std::mem::take(&mut cc));
    let line = |name: &str, t: &mut Tally, load: &str| {
        println!(
            "{name:<34} {:>9.0} {:>8.2} {:>8.2} {:>7} {}",
            t.total() as f64 / secs,
            t.p(0.5),
            t.p(0.99),
            t.bad + t.io_errors + t.timeouts,
            load
        )
    };
    println!("\n{:<34} {:>9} {:>8} {:>8} {:>7} load(1/5/15)", "run", "req/s", "p50 ms", "p99 ms", "errors");
    line("token path alone", &mut all_a, &load_a);
    line("token path + abuse mix", &mut all_c, &load_c);
    line("GET /me during login flood", &mut me, &load_b);
    println!("\nflood traffic (status:count):");
    for (run, f) in [("login flood alone", &fb), ("with token path", &fc)] {
        for (k, t) in f {
            println!("  {run:<18} {k:<12} {:>8.0} req/s  {}", t.total() as f64 / secs, statuses(t));
        }
    }
    // Where the two cores went: the server, and this process (the load generator and the
    // floods run on the same machine and take their share from the server).
    println!("\nCPU seconds per wall second: server / load tool (token path + floods)");
    println!("  token path alone        {:.2} / {:.2}", cpu_a.0 / secs, cpu_a.1 / secs);
    println!("  token path + abuse mix  {:.2} / {:.2}", cpu_c.0 / secs, cpu_c.1 / secs);
    println!("\nserver RSS (MiB): before / peak / after");
    println!("  token path alone        {:.1} / {:.1} / {:.1}", mib(rss_a0), mib(rss_a_peak), mib(rss_a1));
    println!("  login flood alone       {:.1} / {:.1} / {:.1}", mib(rss_b0), mib(rss_b_peak), mib(rss_b1));
    println!("  token path + abuse mix  {:.1} / {:.1} / {:.1}", mib(rss_c0), mib(rss_c_peak), mib(rss_c1));

    let (rps_a, rps_c) = (all_a.total() as f64 / secs, all_c.total() as f64 / secs);
    let (p99_a, p99_c) = (all_a.p(0.99), all_c.p(0.99));
    let growth_b = mib(rss_b_peak.saturating_sub(rss_b0));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("\ntargets:");
    println!("  login flood RSS growth < 64 MiB: {growth_b:.1} MiB (peak - before) — {}", verdict(growth_b < 64.0));
    println!("  /me p99 < 50 ms during the login flood: {:.2} ms — {}", me.p(0.99), verdict(me.p(0.99) < 50.0));
    println!("  /me errors: {}", me.bad + me.io_errors + me.timeouts);
    println!(
        "  token path under abuse ≥ 80% of alone: {:.0}% — {}",
        100.0 * rps_c / rps_a,
        verdict(rps_c >= 0.8 * rps_a)
    );
    println!("  token path p99 ≤ 2× alone: {:.2}× — {}", p99_c / p99_a, verdict(p99_c <= 2.0 * p99_a));
    let errs = all_a.bad + all_a.io_errors + all_a.timeouts + all_c.bad + all_c.io_errors + all_c.timeouts;
    println!("  0 errors on valid token calls: {errs} — {}", verdict(errs == 0));
}

// ---------------------------------------------------------------------------------------
// Distributed login flood and audit amplification (issue #18, items 7 and 8)

/// A login request from `xff` (None: the client's own address).
fn login_request(host: &str, email: &str, password: &str, xff: Option<&str>) -> Vec<u8> {
    let body = json!({"email": email, "password": password}).to_string();
    let xff = xff.map(|x| format!("X-Forwarded-For: {x}\r\n")).unwrap_or_default();
    format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: {host}\r\n{xff}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A fresh address for every request: random IPv4 in 10/8, or a random IPv6 /64.
fn random_address(rng: &mut Rng) -> String {
    if rng.below(2) == 0 {
        format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254))
    } else {
        format!("2001:db8:{:x}:{:x}::1", rng.below(65536), rng.below(65536))
    }
}

/// The audit log's row count, read by the owner.
fn audit_rows(url: &str, owner_at: &str) -> i64 {
    let r = must(api(url, "GET", "/api/v1/audit?page_size=1", Some(owner_at), None, Value::Null), "audit");
    r["total_count"].as_i64().unwrap_or(0)
}

/// (D) distributed anonymous login flood: `conns` connections of wrong passwords for random
/// emails, each request from another address; meanwhile the owner logs in with the right
/// password from its usual address (known-good) and from fresh addresses, and /me is timed.
/// (E) one member writing audit rows as fast as it can: exchange and revoke in a loop, and
/// its revoked token presented from many addresses.
fn distributed(a: &Args, s: &Setup) {
    let host = host_of(&a.url);
    let d = Duration::from_secs(a.seconds);
    let secs = a.seconds as f64;
    let conns = a.connections;
    println!(
        "\n== distributed login flood: {conns} connections, a new address per request, {}s; load {}",
        a.seconds,
        loadavg()
    );
    let rss0 = rss_kib(a.pid);
    let peak = RssPeak::start(a.pid);
    let (h, until) = (host.clone(), Instant::now() + d);
    let flood = on_thread(move || {
        rt().block_on(async move {
            let tasks: Vec<_> = (0..conns as u64)
                .map(|c| {
                    let h2 = h.clone();
                    tokio::spawn(closed_loop(h.clone(), until, 31_000 + c, false, any_status, move |rng| {
                        let email = format!("u{}@flood.test", rng.token(10, ALNUM));
                        let addr = random_address(rng);
                        login_request(&h2, &email, "wrong-password-xyz", Some(&addr))
                    }))
                })
                .collect();
            let mut t = Tally::default();
            for x in tasks {
                t.merge(x.await.unwrap());
            }
            t
        })
    });
    let (h, e, p) = (host.clone(), a.email.clone(), a.password.clone());
    let known = on_thread(move || {
        let req = login_request(&h, &e, &p, None);
        rt().block_on(closed_loop(h.clone(), until, 1, true, is_2xx, move |_| req.clone()))
    });
    let (h, e, p) = (host.clone(), a.email.clone(), a.password.clone());
    let fresh = on_thread(move || {
        let h2 = h.clone();
        rt().block_on(closed_loop(h, until, 2, false, is_2xx, move |rng| {
            let addr = random_address(rng);
            login_request(&h2, &e, &p, Some(&addr))
        }))
    });
    let (h, at) = (host.clone(), s.owner_at.clone());
    let mut me = on_thread(move || me_probe(&h, &at, 2, d)).join().unwrap();
    let (flood, mut known, fresh) = (flood.join().unwrap(), known.join().unwrap(), fresh.join().unwrap());
    let (rss_peak, rss1) = (peak.finish(), rss_kib(a.pid));
    let rate = |t: &Tally| 100.0 * t.ok as f64 / (t.total() + t.io_errors + t.timeouts).max(1) as f64;
    println!("  flood                {:>8.0} req/s  {}", flood.total() as f64 / secs, statuses(&flood));
    let known_p99 = known.p(0.99);
    println!(
        "  valid logins, known-good address: {} of {} ({:.1} %), p99 {:.1} ms  {}",
        known.ok,
        known.total() + known.io_errors + known.timeouts,
        rate(&known),
        known_p99,
        statuses(&known)
    );
    println!(
        "  valid logins, a fresh address each: {} of {} ({:.1} %)  {}",
        fresh.ok,
        fresh.total() + fresh.io_errors + fresh.timeouts,
        rate(&fresh),
        statuses(&fresh)
    );
    println!("  GET /me p99 {:.2} ms, errors {}", me.p(0.99), me.bad + me.io_errors + me.timeouts);
    println!("  server RSS before / peak / after: {:.1} / {:.1} / {:.1} MiB", mib(rss0), mib(rss_peak), mib(rss1));

    // (E) one member, audit amplification.
    let before = audit_rows(&a.url, &s.owner_at);
    let until = Instant::now() + d;
    let loops: Vec<_> = (0..4)
        .map(|i| {
            let (url, pat, revoked) = (a.url.clone(), s.member_pat.clone(), s.member_revoked_pat.clone());
            on_thread(move || {
                let mut rng = Rng(97 + i);
                let mut n = 0u64;
                while Instant::now() < until {
                    if i == 3 {
                        // The revoked token, from another address each time.
                        let xff = random_address(&mut rng);
                        let _ = ureq::post(&format!("{url}/oauth/token"))
                            .set("X-Forwarded-For", &xff)
                            .send_form(&[("grant_type", "refresh_token"), ("refresh_token", &revoked)]);
                    } else {
                        let r = ureq::post(&format!("{url}/oauth/token"))
                            .send_form(&[("grant_type", "refresh_token"), ("refresh_token", &pat)]);
                        let at = r
                            .ok()
                            .and_then(|r| r.into_json::<Value>().ok())
                            .and_then(|v| v["access_token"].as_str().map(str::to_string));
                        if let Some(at) = at {
                            let _ = ureq::post(&format!("{url}/oauth/revoke")).send_form(&[("token", &at)]);
                        }
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let attempts: u64 = loops.into_iter().map(|t| t.join().unwrap()).sum();
    let written = audit_rows(&a.url, &s.owner_at) - before;
    println!(
        "  one member, exchange + revoke (3 loops) and its revoked token from new addresses (1 loop): {attempts} \
         attempts, {written} audit rows = {:.1} rows/s",
        written as f64 / secs
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("\ntargets:");
    println!(
        "  valid-login success under the distributed flood ≥ 95 %: {:.1} % — {}",
        rate(&known),
        verdict(rate(&known) >= 95.0)
    );
    println!("  /me p99 < 50 ms during the distributed flood: {:.2} ms — {}", me.p(0.99), verdict(me.p(0.99) < 50.0));
    println!(
        "  audit rows one member writes: {:.1}/s (bounded: ≤ 30 revocations + 5 refusals per credential a minute) — {}",
        written as f64 / secs,
        verdict((written as f64) <= 60.0 * (secs / 60.0).ceil() + 10.0)
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Fuzz

const KEYS: &[&str] = &[
    "email",
    "password",
    "name",
    "roles",
    "ttl_days",
    "grant_type",
    "code",
    "new_password",
    "introspect",
    "disabled",
    "org",
    "refresh_token",
    "token",
    "audience",
    "scope",
    "client_id",
    "client_secret",
    "subject_token",
    "subject_token_type",
    "expires_at",
    "description",
    "query",
    "filters",
    "current_password",
    "max_ttl_days",
    "token_type_hint",
    "resource",
    "id",
    "sort",
    "limit",
    "cursor",
];
const WORDS: &[&str] = &[
    "",
    "a",
    "org:admin",
    "org:owner",
    "org:member",
    "client_credentials",
    "refresh_token",
    "password",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:token-type:refresh_token",
    "-1",
    "0",
    "99999999999999999999",
    "null",
    "true",
    "\u{0}",
    "é",
    "😀",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "tkd_pat_xxxxxxxx",
    "tkd_app_x",
    "admin@localhost",
    "https://api.example.test",
    "*",
];

fn json_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!(rng.below(100) as i64 - 10),
        4 => json!(*rng.pick(WORDS)),
        5 => json!(rng.token_upto(0, 300, ALNUM)),
        6 => Value::Array((0..rng.below(5)).map(|_| json_value(rng, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                m.insert(rng.pick(KEYS).to_string(), json_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn body(rng: &mut Rng) -> (Vec<u8>, &'static str) {
    match rng.below(6) {
        0 => (Vec::new(), "empty"),
        1 | 2 => {
            let mut b = json_value(rng, 0).to_string().into_bytes();
            if rng.below(5) == 0 {
                let cut = rng.below(b.len() + 1);
                b.truncate(cut); // broken JSON
            }
            (b, "json")
        }
        3 => {
            let pairs: Vec<String> = (0..rng.below(8))
                .map(|_| {
                    let v = if rng.below(2) == 0 { rng.pick(WORDS).to_string() } else { rng.token_upto(0, 80, ALNUM) };
                    format!(
                        "{}={}",
                        rng.pick(KEYS),
                        percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC)
                    )
                })
                .collect();
            (pairs.join("&").into_bytes(), "form")
        }
        4 => ((0..rng.below(4096)).map(|_| rng.next() as u8).collect(), "binary"),
        _ => {
            let n = 16 * 1024 + rng.below(64 * 1024 + 1);
            let b = match rng.below(3) {
                0 => (0..n).map(|_| rng.next() as u8).collect(),
                1 => {
                    let mut s = String::from("{\"name\":\"");
                    s.push_str(&"a".repeat(n));
                    s.push_str("\"}");
                    s.into_bytes()
                }
                _ => format!("grant_type=refresh_token&refresh_token={}", "x".repeat(n)).into_bytes(),
            };
            (b, "huge")
        }
    }
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=xyz"),
    Some("text/plain"),
    Some("application/octet-stream"),
    Some("application/json; charset=utf-16"),
    Some("application/merge-patch+json"),
    Some("foo/bar;;;=\""),
    Some(""),
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
const UNKNOWN: &[&str] = &[
    "/",
    "//",
    "/api",
    "/api/v1",
    "/api/v1/",
    "/api/v2/me",
    "/api/v1/nope",
    "/api/v1/me/tokens/x/y/z",
    "/oauth",
    "/oauth/authorize",
    "/oauth/token/",
    "/.well-known/",
    "/metrics/x",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/v1/apps/%ff%fe",
    "/api/v1/users/%00",
    "/bench/sign",
    "/readyz?x=%zz",
];

struct Route {
    path: String,
    methods: Vec<String>,
}

/// Every route of the server's /openapi.json with its methods.
fn routes(url: &str) -> Vec<Route> {
    let spec: Value =
        ureq::get(&format!("{url}/openapi.json")).call().expect("openapi").into_json().expect("openapi json");
    spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(p, v)| Route {
            path: p.clone(),
            methods: v
                .as_object()
                .map(|m| m.keys().filter(|k| *k != "parameters").cloned().collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// A fuzz request: bytes, the path (for the report), whether it is HEAD.
fn fuzz_request(
    rng: &mut Rng,
    host: &str,
    routes: &[Route],
    ids: &[String],
    bearer: &str,
    basic: &str,
) -> (Vec<u8>, String) {
    let (template, own): (String, &[String]) = if rng.below(8) == 0 {
        (rng.pick(UNKNOWN).to_string(), &[])
    } else {
        let r = rng.pick(routes);
        (r.path.clone(), &r.methods)
    };
    // Fill {params}: a real id, a random one, a 7,000-character one, or encoded garbage.
    let mut path = String::new();
    let mut rest = template.as_str();
    while let Some(i) = rest.find('{') {
        path.push_str(&rest[..i]);
        let j = rest[i..].find('}').map(|j| i + j + 1).unwrap_or(rest.len());
        let v = match rng.below(5) {
            0 | 1 => rng.pick(ids).clone(),
            2 => rng.token_upto(1, 40, ALNUM),
            3 => rng.token(7000, ALNUM),
            _ => (*rng.pick(&["%00", "%ff", "..", "%2F", "a%20b", "org:member", "%E2%82%AC"])).to_string(),
        };
        path.push_str(&v);
        rest = &rest[j..];
    }
    path.push_str(rest);
    if rng.below(6) == 0 {
        path.push_str(&format!(
            "?{}={}&limit={}&sort={}",
            rng.pick(KEYS),
            rng.token_upto(0, 30, ALNUM),
            *rng.pick(&["-1", "0", "1", "1000000", "x", ""]),
            *rng.pick(&["name", "-created_at", "last_used_at", "x;drop", ""])
        ));
    }
    let method = if !own.is_empty() && rng.below(2) == 0 {
        rng.pick(own).to_ascii_uppercase()
    } else if rng.below(10) == 0 {
        rng.token_upto(3, 8, UPPER)
    } else {
        rng.pick(METHODS).to_string()
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    match rng.below(10) {
        0..=3 => {}
        4..=7 => head.push_str(&format!("Authorization: Bearer {bearer}\r\n")),
        8 => head.push_str(&format!("Authorization: Bearer {}\r\n", rng.token_upto(1, 200, ALNUM))),
        _ => head.push_str(&format!("Authorization: {basic}\r\n")),
    }
    if rng.below(2) == 0 {
        head.push_str(&format!("X-Forwarded-For: 192.0.2.{}\r\n", rng.below(256)));
    }
    if let Some(ct) = rng.pick(CONTENT_TYPES) {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    let (b, _) = body(rng);
    head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
    let mut req = head.into_bytes();
    req.extend_from_slice(&b);
    (req, format!("{method} {}", template))
}

/// Paths of the routes that hash passwords (503 + Retry-After allowed there).
fn hashes(template: &str) -> bool {
    template.ends_with(" /api/v1/login")
        || template.ends_with(" /api/v1/me/password")
        || template.ends_with(" /api/v1/password-reset")
}

#[derive(Default)]
struct FuzzTally {
    statuses: BTreeMap<u16, u64>,
    sent: u64,
    hash_503_retry: u64,
    bad_5xx: Vec<String>,
    bad_5xx_count: u64,
    closed: u64,
    timeouts: u64,
    by_kind: BTreeMap<String, u64>,
}

fn fuzz(a: &Args, s: &Setup) -> bool {
    let host = host_of(&a.url);
    let routes = routes(&a.url);
    let n_routes = routes.len();
    let routes = Arc::new(routes);
    println!(
        "\n== fuzz: ≥{} requests over {n_routes} routes + {} unknown paths, {} connections, at most {}s; load {}",
        a.fuzz_requests,
        UNKNOWN.len(),
        a.fuzz_connections,
        a.fuzz_seconds,
        loadavg()
    );
    let rss0 = rss_kib(a.pid);
    let peak = RssPeak::start(a.pid);
    let started = Instant::now();
    let bearer = Arc::new(Mutex::new(s.owner_at.clone()));
    let relogins = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let target = a.fuzz_requests;
    let until = Instant::now() + Duration::from_secs(a.fuzz_seconds);
    let ids = Arc::new(s.ids.clone());
    let basic = s.basic.clone();
    let (url, email, password) = (a.url.clone(), a.email.clone(), a.password.clone());
    let tally = rt().block_on(async {
        // Keeps a valid owner bearer: the fuzz may log the session out (POST /logout,
        // /me/sessions/revoke); then log in again from a fresh X-Forwarded-For address
        // (the fuzz's own failed logins throttle the ones it used).
        let keeper = {
            let (bearer, relogins, url, host) = (bearer.clone(), relogins.clone(), url.clone(), host.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let b = bearer.lock().unwrap().clone();
                    let (u, e, p, h) = (url.clone(), email.clone(), password.clone(), host.clone());
                    n += 1;
                    let fresh = tokio::task::spawn_blocking(move || {
                        let _ = h;
                        let (st, _) = api(&u, "GET", "/api/v1/me", Some(&b), None, Value::Null);
                        if st == 200 {
                            return None;
                        }
                        let xff = format!("198.51.100.{}", n % 250 + 1);
                        let (st, v) =
                            api(&u, "POST", "/api/v1/login", None, Some(&xff), json!({"email": e, "password": p}));
                        (st == 200).then(|| v["access_token"].as_str().unwrap_or_default().to_string())
                    })
                    .await
                    .unwrap_or(None);
                    if let Some(f) = fresh {
                        *bearer.lock().unwrap() = f;
                        relogins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let mut tasks = Vec::new();
        for c in 0..a.fuzz_connections {
            let (host, routes, ids, bearer, basic, sent) =
                (host.clone(), routes.clone(), ids.clone(), bearer.clone(), basic.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let mut t = FuzzTally::default();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x1000_0001));
                let mut buf = Vec::with_capacity(8192);
                'outer: while Instant::now() < until && sent.load(Ordering::Relaxed) < target {
                    let Ok(mut sock) = TcpStream::connect(&host).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = sock.set_nodelay(true);
                    while Instant::now() < until && sent.fetch_add(1, Ordering::Relaxed) < target {
                        let b = bearer.lock().unwrap().clone();
                        let (req, what) = fuzz_request(&mut rng, &host, &routes, &ids, &b, &basic);
                        t.sent += 1;
                        let is_head = req.starts_with(b"HEAD ");
                        let r = tokio::time::timeout(REQUEST_TIMEOUT, async {
                            sock.write_all(&req).await?;
                            read_response_full(&mut sock, &mut buf, is_head).await
                        })
                        .await;
                        match r {
                            Ok(Ok(resp)) => {
                                *t.statuses.entry(resp.status).or_default() += 1;
                                if resp.status >= 500 {
                                    if resp.status == 503 && resp.retry_after && hashes(&what) {
                                        t.hash_503_retry += 1;
                                    } else {
                                        t.bad_5xx_count += 1;
                                        if t.bad_5xx.len() < 10 {
                                            t.bad_5xx.push(format!("{} {what} ({} bytes)", resp.status, req.len()));
                                        }
                                    }
                                }
                                let m = what.split(' ').next().unwrap_or("");
                                let m = if METHODS.contains(&m) { m } else { "invented" };
                                *t.by_kind.entry(m.to_string()).or_default() += 1;
                                if resp.close {
                                    continue 'outer;
                                }
                            }
                            // The server may answer (413, 400) and close before reading a
                            // huge or malformed body: counted, not a failure.
                            Ok(Err(_)) => {
                                t.closed += 1;
                                continue 'outer;
                            }
                            Err(_) => {
                                t.timeouts += 1;
                                continue 'outer;
                            }
                        }
                    }
                }
                t
            }));
        }
        let mut all = FuzzTally::default();
        for x in tasks {
            let t = x.await.unwrap();
            all.sent += t.sent;
            all.hash_503_retry += t.hash_503_retry;
            all.bad_5xx_count += t.bad_5xx_count;
            all.closed += t.closed;
            all.timeouts += t.timeouts;
            all.bad_5xx.extend(t.bad_5xx);
            for (k, v) in t.statuses {
                *all.statuses.entry(k).or_default() += v;
            }
            for (k, v) in t.by_kind {
                *all.by_kind.entry(k).or_default() += v;
            }
        }
        keeper.abort();
        all
    });
    let secs = started.elapsed().as_secs_f64();
    let rss_peak = peak.finish();
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = rss_kib(a.pid);
    let alive = std::path::Path::new(&format!("/proc/{}", a.pid)).exists()
        && ureq::get(&format!("{}/healthz", a.url)).call().map(|r| r.status() == 200).unwrap_or(false);
    let answered: u64 = tally.statuses.values().sum();
    println!(
        "sent {} requests in {secs:.1}s ({:.0}/s), {answered} answered; load {}",
        tally.sent,
        tally.sent as f64 / secs,
        loadavg()
    );
    println!("by status: {}", tally.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" "));
    println!("by method: {}", tally.by_kind.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" "));
    println!(
        "closed by the server before an answer: {}; timeouts (>{}s): {}; owner re-logins: {}",
        tally.closed,
        REQUEST_TIMEOUT.as_secs(),
        tally.timeouts,
        relogins.load(Ordering::Relaxed)
    );
    println!("503 + Retry-After on a hashing route (acceptable): {}", tally.hash_503_retry);
    println!("other responses ≥ 500: {}", tally.bad_5xx_count);
    for b in &tally.bad_5xx {
        println!("  {b}");
    }
    let growth = mib(rss_peak.saturating_sub(rss0));
    println!(
        "RSS before / peak / after: {:.1} / {:.1} / {:.1} MiB (growth {growth:.1} MiB); server alive: {alive}",
        mib(rss0),
        mib(rss_peak),
        mib(rss1)
    );
    let pass =
        tally.bad_5xx_count == 0 && alive && growth < 32.0 && tally.sent >= a.fuzz_requests && tally.timeouts == 0;
    println!("fuzz: {}", if pass { "PASS" } else { "FAIL" });
    pass
}

fn main() {
    let a = args();
    let s = setup(&a);
    let mut ok = true;
    if a.mode == "abuse" || a.mode == "all" {
        abuse(&a, &s);
    }
    if a.mode == "flood" || a.mode == "all" {
        distributed(&a, &s);
    }
    if a.mode == "fuzz" || a.mode == "all" {
        ok &= fuzz(&a, &s);
    }
    if !ok {
        std::process::exit(1);
    }
}
