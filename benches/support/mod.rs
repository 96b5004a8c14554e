//! Shared by the bench binaries (`load`, `abuse`): raw HTTP/1.1 requests and responses over
//! tokio TCP, percentiles, and a small seeded PRNG. Included with `#[path]`, so it is not
//! a bench target of its own.
#![allow(dead_code)]
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn post_form(host: &str, path: &str, auth: Option<&str>, body: &str) -> Vec<u8> {
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// A GET with an Authorization header.
pub fn get_with(host: &str, path: &str, auth: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n").into_bytes()
}

/// What the reader saw of one response.
pub struct Response {
    pub status: u16,
    pub retry_after: bool,
    /// The server said `Connection: close`.
    pub close: bool,
}

/// Reads one HTTP/1.1 response (Content-Length or chunked; no body after HEAD, 1xx is
/// skipped, 204 and 304 have none).
pub async fn read_response_full(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> std::io::Result<Response> {
    buf.clear();
    let mut tmp = [0u8; 16384];
    loop {
        let header_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (100..200).contains(&status) {
            buf.drain(..header_end);
            continue;
        }
        let r = Response {
            status,
            retry_after: head.lines().any(|l| l.starts_with("retry-after:")),
            close: head.lines().any(|l| l.starts_with("connection:") && l.contains("close")),
        };
        if head_request || status == 204 || status == 304 {
            return Ok(r);
        }
        if let Some(len) =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok())
        {
            while buf.len() < header_end + len {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&tmp[..n]);
            }
        } else if head.contains("transfer-encoding: chunked") {
            while !buf[header_end..].windows(5).any(|w| w == b"0\r\n\r\n") {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&tmp[..n]);
            }
        }
        return Ok(r);
    }
}

/// [`read_response_full`] for callers that only want the status.
pub async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    read_response_full(s, buf, false).await.map(|r| r.status)
}

pub fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// xorshift64*: reproducible, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// `min` to `min + extra - 1` characters.
    pub fn token_upto(&mut self, min: usize, extra: usize, alphabet: &[u8]) -> String {
        let n = min + self.below(extra);
        self.token(n, alphabet)
    }
    pub fn token(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }
}
