//! tokend-load: drives a running server over real HTTP/1.1 keep-alive connections for a
//! fixed time and prints requests/s, p50/p99/p99.9 latency and errors per scenario.
//!
//!   cargo bench --bench load -- --url http://127.0.0.1:8080 --email admin@localhost \
//!       --password PW [--connections 64] [--seconds 10]
//!       [--scenarios cc,refresh,exchange,pat_cc,jwks,introspect,gateway,gateway-basic,sign]
//!
//! `pat_cc` is client_credentials with a personal token as the client secret; `gateway` is
//! forward-auth (`GET /gateway/auth`) with the same PAT as Bearer every time,
//! `gateway-basic` with it as the Basic password: after the first call, cache hits.
//!   cargo bench --bench load -- --peer --url http://127.0.0.1:3000     (panva oidc-provider: cc, jwks)
//!
//! The `sign` scenario (`POST /bench/sign`, the ceiling: the `cc` request, parsed the same
//! way, with the credential check skipped) needs a server built
//! with `cargo build --release --features bench` and started with
//! TOKEND_BENCH_SIGN_ROUTE=true; a default build answers it 404 (bench/compare.sh does both).
//!
//! One current-thread runtime, so the load generator uses one core and leaves the other
//! to the server on a 2-core machine. `--json` prints one JSON object per scenario.
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[path = "support/mod.rs"]
mod support;
use support::{b64, get, get_with, pct, post_form, read_response};

struct Args {
    url: String,
    email: String,
    password: String,
    connections: usize,
    seconds: u64,
    scenarios: Vec<String>,
    peer: bool,
    json: bool,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        email: "admin@localhost".into(),
        password: String::new(),
        connections: 64,
        seconds: 10,
        scenarios: vec![],
        peer: false,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v(),
            "--email" => a.email = v(),
            "--password" => a.password = v(),
            "--connections" => a.connections = v().parse().expect("--connections N"),
            "--seconds" => a.seconds = v().parse().expect("--seconds N"),
            "--scenarios" => a.scenarios = v().split(',').map(str::to_string).collect(),
            "--peer" => a.peer = true,
            "--json" => a.json = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios = if a.peer {
            vec!["cc".into(), "jwks".into()]
        } else {
            ["cc", "refresh", "exchange", "pat_cc", "jwks", "introspect", "gateway", "gateway-basic", "sign"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
    }
    a
}

/// A fixed request, sent again and again on each connection.
struct Scenario {
    name: String,
    request: Vec<u8>,
}

fn setup_tokend(a: &Args, host: &str) -> Vec<Scenario> {
    let api = |method: &str, path: &str, bearer: Option<&str>, body: Value| -> Value {
        let mut r = ureq::request(method, &format!("{}{path}", a.url));
        if let Some(b) = bearer {
            r = r.set("Authorization", &format!("Bearer {b}"));
        }
        match r.send_json(body) {
            Ok(r) => r.into_json().expect("json"),
            Err(ureq::Error::Status(c, r)) => panic!("{method} {path}: {c} {}", r.into_string().unwrap_or_default()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    };
    let login = api("POST", "/api/v1/login", None, json!({"email": a.email, "password": a.password}));
    let at = login["access_token"].as_str().expect("login").to_string();
    let app =
        api("POST", "/api/v1/apps", Some(&at), json!({"name": "load", "roles": ["org:member"], "introspect": true}));
    let (cid, secret) =
        (app["client_id"].as_str().unwrap().to_string(), app["client_secret"].as_str().unwrap().to_string());
    let pat =
        api("POST", "/api/v1/me/tokens", Some(&at), json!({"name": "load", "ttl_days": 1, "roles": ["org:member"]}));
    let (pat_id, pat) = (pat["id"].as_str().unwrap().to_string(), pat["token"].as_str().unwrap().to_string());
    let basic = format!("Basic {}", b64(&format!("{cid}:{secret}")));
    // The PAT as a client secret (client_credentials, the way Prometheus sends it).
    let pat_basic = format!("Basic {}", b64(&format!("{pat_id}:{pat}")));
    // An access token to introspect: exchanged from the PAT.
    let exchanged: Value = ureq::post(&format!("{}/oauth/token", a.url))
        .send_form(&[("grant_type", "refresh_token"), ("refresh_token", &pat)])
        .expect("exchange")
        .into_json()
        .unwrap();
    let access = exchanged["access_token"].as_str().unwrap().to_string();
    // client_credentials as a client sends it (a scope naming the role it wants); the
    // `sign` ceiling receives exactly these bytes, so `cc / sign` is the cost of the
    // credential check alone.
    let cc_body = "grant_type=client_credentials&scope=org%3Amember";
    let mut out = Vec::new();
    for s in &a.scenarios {
        let request = match s.as_str() {
            "cc" => post_form(host, "/oauth/token", Some(&basic), cc_body),
            "pat_cc" => post_form(host, "/oauth/token", Some(&pat_basic), "grant_type=client_credentials"),
            "refresh" => post_form(host, "/oauth/token", None, &format!("grant_type=refresh_token&refresh_token={pat}")),
            "exchange" => post_form(
                host,
                "/oauth/token",
                None,
                &format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={pat}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"),
            ),
            "jwks" => get(host, "/.well-known/jwks.json"),
            "introspect" => post_form(host, "/oauth/introspect", Some(&basic), &format!("token={access}")),
            "sign" => post_form(host, "/bench/sign", Some(&basic), cc_body),
            "gateway" => get_with(host, "/gateway/auth", &format!("Bearer {pat}")),
            "gateway-basic" => get_with(host, "/gateway/auth", &format!("Basic {}", b64(&format!("prometheus:{pat}")))),
            other => panic!("unknown scenario {other}"),
        };
        out.push(Scenario { name: s.clone(), request });
    }
    out
}

fn setup_peer(a: &Args, host: &str) -> Vec<Scenario> {
    let basic = format!("Basic {}", b64("bench-client:bench-secret-0123456789abcdef"));
    a.scenarios
        .iter()
        .map(|s| Scenario {
            name: s.clone(),
            request: match s.as_str() {
                "cc" => post_form(host, "/token", Some(&basic), "grant_type=client_credentials&scope=read"),
                "jwks" => get(host, "/jwks"),
                other => panic!("the peer has no scenario {other}"),
            },
        })
        .collect()
}

struct ConnResult {
    latencies_us: Vec<u32>,
    non2xx: u64,
    io_errors: u64,
}

async fn connection(addr: String, request: Vec<u8>, until: Instant) -> ConnResult {
    let mut r = ConnResult { latencies_us: Vec::with_capacity(100_000), non2xx: 0, io_errors: 0 };
    let mut buf = Vec::with_capacity(4096);
    'outer: while Instant::now() < until {
        let mut s = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(_) => {
                r.io_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        while Instant::now() < until {
            let t = Instant::now();
            if s.write_all(&request).await.is_err() {
                r.io_errors += 1;
                continue 'outer;
            }
            match read_response(&mut s, &mut buf).await {
                Ok(status) => {
                    r.latencies_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    if !(200..300).contains(&status) && status != 304 {
                        r.non2xx += 1;
                    }
                }
                Err(_) => {
                    r.io_errors += 1;
                    continue 'outer;
                }
            }
        }
    }
    r
}

fn main() {
    let a = args();
    let host = a.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let scenarios = if a.peer { setup_peer(&a, &host) } else { setup_tokend(&a, &host) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if !a.json {
        println!(
            "{:<11} {:>6} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}",
            "scenario", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "non2xx", "io_err"
        );
    }
    for sc in scenarios {
        // Short warm-up, then the measured run.
        let _ = rt.block_on(run(&host, &sc.request, a.connections, Duration::from_secs(1)));
        let (total, mut lat, non2xx, io) =
            rt.block_on(run(&host, &sc.request, a.connections, Duration::from_secs(a.seconds)));
        lat.sort_unstable();
        let rps = total as f64 / a.seconds as f64;
        let (p50, p99, p999) = (pct(&lat, 0.50), pct(&lat, 0.99), pct(&lat, 0.999));
        if a.json {
            println!(
                "{}",
                json!({"scenario": sc.name, "connections": a.connections, "rps": rps, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "non2xx": non2xx, "io_errors": io})
            );
        } else {
            println!(
                "{:<11} {:>6} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>8}",
                sc.name, a.connections, rps, p50, p99, p999, non2xx, io
            );
        }
    }
}

async fn run(host: &str, request: &[u8], conns: usize, d: Duration) -> (u64, Vec<u32>, u64, u64) {
    let until = Instant::now() + d;
    let tasks: Vec<_> =
        (0..conns).map(|_| tokio::spawn(connection(host.to_string(), request.to_vec(), until))).collect();
    let (mut total, mut lat, mut non2xx, mut io) = (0u64, Vec::new(), 0u64, 0u64);
    for t in tasks {
        let r = t.await.expect("connection task");
        total += r.latencies_us.len() as u64;
        lat.extend(r.latencies_us);
        non2xx += r.non2xx;
        io += r.io_errors;
    }
    (total, lat, non2xx, io)
}
