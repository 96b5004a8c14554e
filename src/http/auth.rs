//! Bearer authentication for `/api/v1`: verify the access token (signature with the key's
//! own algorithm, typ, iss, aud = the management audience, exp/nbf with a small leeway), then check that
//! the user, service account, app, API token or login session behind it is still live.
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use crate::app::State;
use crate::error::ApiError;
use crate::service::{authz::bearer, Principal};

pub struct Caller(pub Principal);

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
/// untrusted address in X-Forwarded-For (see [`forwarded_client`]).
pub fn client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else { return "unknown".into() };
    let trusted = req.app_data::<web::Data<State>>().map(|s| s.cfg.trusted_proxies.as_slice()).unwrap_or_default();
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    // Raw bytes, not `to_str()`: a client's non-ASCII garbage must not make the whole
    // header (and the hop its proxy appended to it) unreadable.
    let headers: Vec<&[u8]> = req.headers().get_all("x-forwarded-for").map(|v| v.as_bytes()).collect();
    forwarded_client(peer, &headers, trusted).to_string()
}

/// One X-Forwarded-For entry: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
pub fn parse_forwarded_entry(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return if port_ok { inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6) } else { None };
    }
    // `ip:port` is IPv4 only: a bare IPv6 address with a port is ambiguous.
    let (host, port) = s.rsplit_once(':')?;
    if valid_port(port) {
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        None
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

/// Walks X-Forwarded-For right to left (each proxy appends the address it saw), skipping
/// trusted hops. The first untrusted address is the client. An entry that does not parse
/// (`unknown`, garbage, an empty field) ends the walk: the answer is then the last address
/// that was trusted (the peer or the nearest trusted hop), never something further left,
/// which the client itself may have written.
pub fn forwarded_client(peer: IpAddr, headers: &[&[u8]], trusted: &[IpAddr]) -> IpAddr {
    let mut last_trusted = peer;
    if !trusted.contains(&peer) {
        return peer;
    }
    for header in headers.iter().rev() {
        for entry in header.rsplit(|b| *b == b',') {
            match parse_forwarded_entry(entry) {
                Some(ip) if trusted.contains(&ip) => last_trusted = ip,
                Some(ip) => return ip,
                None => return last_trusted,
            }
        }
    }
    last_trusted
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The caller of an `/api/v1` request: the rules are `service::authz::bearer`'s (verify on
/// this worker, resolve on the blocking pool, the failure rule on a refusal).
pub async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let state = req
        .app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no state"))?;
    let ip = client_ip(req);
    let token = bearer(req);
    let now = state.now();
    let r = match bearer::verify(&state.keys, &state.cfg, token, now) {
        Ok(claims) => {
            let (st, ip) = (state.clone(), ip.clone());
            crate::app::blocking(move || {
                let mut conn = st.db.read()?;
                bearer::resolve(&mut conn, &claims, &st.usage, &ip, now)
            })
            .await
        }
        Err(e) => Err(e),
    };
    let p = r.map_err(|e| bearer::refused(e, &state.token_throttle, &state.cfg, &ip, token, now))?;
    // For the audit of refused calls (see http::audit_refused).
    actix_web::HttpMessage::extensions_mut(req).insert(p.clone());
    Ok(p)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(Caller) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entry_forms() {
        assert_eq!(parse_forwarded_entry(b"203.0.113.7"), Some(ip("203.0.113.7")));
        assert_eq!(parse_forwarded_entry(b" 203.0.113.7 "), Some(ip("203.0.113.7")));
        assert_eq!(parse_forwarded_entry(b"203.0.113.7:8443"), Some(ip("203.0.113.7")));
        assert_eq!(parse_forwarded_entry(b"2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_forwarded_entry(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_forwarded_entry(b"[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        for bad in [
            &b"unknown"[..],
            b"",
            b" ",
            b"_hidden",
            b"203.0.113.7:",
            b"203.0.113.7:99999",
            b"203.0.113.7:80:80",
            b"[2001:db8::1",
            b"[2001:db8::1]x",
            b"[2001:db8::1]:",
            b"[203.0.113.7]",
            b"2001:db8::1:443x",
            b"\xff\xfe",
            b"300.1.1.1",
        ] {
            assert_eq!(parse_forwarded_entry(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn walk_right_to_left() {
        let proxy = ip("10.0.0.1");
        let inner = ip("10.0.0.2");
        let trusted = [proxy, inner];
        let walk = |h: &[&[u8]]| forwarded_client(proxy, h, &trusted);
        // Untrusted peer: the header is ignored.
        assert_eq!(forwarded_client(ip("192.0.2.9"), &[b"203.0.113.7"], &trusted), ip("192.0.2.9"));
        // No header: the peer.
        assert_eq!(walk(&[]), proxy);
        // The nearest untrusted hop, not the client's claim further left.
        assert_eq!(walk(&[b"198.51.100.1, 203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(walk(&[b"198.51.100.1, 203.0.113.7:5000, 10.0.0.2"]), ip("203.0.113.7"));
        assert_eq!(walk(&[b"[2001:db8::7]:5000, [10.0.0.2]"]), proxy, "[v4] is not a valid entry: stop");
        assert_eq!(walk(&[b"198.51.100.1, [2001:db8::7]:5000"]), ip("2001:db8::7"));
        assert_eq!(walk(&[b"2001:db8::7"]), ip("2001:db8::7"));
        // Several headers are one list, in order.
        assert_eq!(walk(&[b"198.51.100.1", b"203.0.113.7, 10.0.0.2"]), ip("203.0.113.7"));
        // Unparseable entries stop the walk at the last trusted address.
        assert_eq!(walk(&[b"198.51.100.1, unknown"]), proxy, "never skip past garbage to the client's claim");
        assert_eq!(walk(&[b"198.51.100.1, unknown, 10.0.0.2"]), inner, "the nearest trusted hop");
        assert_eq!(walk(&[b"198.51.100.1,,10.0.0.2"]), inner, "an empty field stops too");
        assert_eq!(walk(&[b"198.51.100.1, \xff\xfe"]), proxy);
        // Garbage the client wrote, left of the hop its proxy appended, is never reached.
        assert_eq!(walk(&[b"\xff garbage, 203.0.113.7"]), ip("203.0.113.7"));
        // Only trusted hops: the furthest of them.
        assert_eq!(walk(&[b"10.0.0.2, 10.0.0.1"]), inner);
    }
}
