//! Issue #11, reliability: bounded password hashing, throttles that cannot lock anyone
//! out, bounded metric cardinality, refused-call audit without amplification, robust
//! X-Forwarded-For, idempotent concurrent start-up, and 503 while the database is away.
//! Real HTTP through the harness; both backends where the database matters.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use common::Backend;

// ---------------------------------------------------------------- raw HTTP

/// Reads one HTTP/1.1 response (status and body) from a keep-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<u8>) {
    let mut status_line = String::new();
    r.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let (mut len, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().unwrap();
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body).unwrap();
    }
    (status, body)
}

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn token(&mut self, min: usize, max: usize) -> String {
        let n = min + (self.next() as usize) % (max - min + 1);
        (0..n).map(|_| (b'A' + (self.next() % 26) as u8) as char).collect()
    }
}

fn metrics_text(s: &common::Server) -> String {
    ureq::get(&s.url("/metrics")).call().unwrap().into_string().unwrap()
}

// ---------------------------------------------------------------- 4. metric cardinality

/// 10,000 requests with invented methods add no series: the method label is one of the
/// standard methods or "other".
#[test]
fn random_methods_do_not_grow_metrics() {
    let s = Backend::Sqlite.start();
    let addr = s.base.trim_start_matches("http://").to_string();
    let send = |methods: Vec<String>| {
        let stream = TcpStream::connect(&addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        for m in methods {
            // One write per request (several small ones meet Nagle and delayed ACKs).
            w.write_all(format!("{m} /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
            let (status, _) = read_response(&mut r);
            assert!((400..500).contains(&status) || status == 200, "{m}: {status}");
        }
    };
    // Warm-up: the "other" series and /metrics itself exist before the measurement.
    send(vec!["WARMUP".into(), "GET".into()]);
    metrics_text(&s);
    let before = metrics_text(&s);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let batches: Vec<Vec<String>> = (0..4).map(|_| (0..2500).map(|_| rng.token(3, 12)).collect()).collect();
    std::thread::scope(|sc| {
        for b in batches {
            sc.spawn(|| send(b));
        }
    });
    let after = metrics_text(&s);
    assert!(after.len() < before.len() + 1024, "metrics grew from {} to {} bytes", before.len(), after.len());
    assert!(after.contains("method=\"other\""), "invented methods are counted as other");
    assert!(!after.contains("WARMUP"), "no raw method name in the metrics");
}
