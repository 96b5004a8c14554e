//! The HTTP middleware: request metrics, the audit of refused calls, and the error
//! shaping that gives actix's own errors (404, 405, 413) the format of their scope.
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::{blocking, State};
use crate::error::{oauth_body, problem_body, OAuthCode};

/// Shapes errors under `/oauth` as RFC 6749 bodies.
pub async fn oauth_errors(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    Ok(shape_errors(res.map_into_boxed_body(), true))
}

/// Under `/api/v1`: audits refused calls, then shapes errors as problem+json.
pub async fn api_errors(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    audit_refused(&res).await;
    Ok(shape_errors(res.map_into_boxed_body(), false))
}

/// Every refused mutating call of an authenticated caller becomes an audit event
/// (successful ones are recorded by the service in the same transaction as the change):
/// object ids and paths cut to 64 characters, and at most a few rows per caller a minute,
/// the rest counted into one summary row. (The console's middleware calls it too.)
pub(crate) async fn audit_refused<B>(res: &ServiceResponse<B>) {
    use crate::service::events::audit::truncate;
    use crate::service::events::{Action, Entry, Outcome};
    use actix_web::HttpMessage;
    let status = res.status();
    let req = res.request();
    if !(status.is_client_error() || status.is_server_error()) || req.method() == actix_web::http::Method::GET {
        return;
    }
    let Some(p) = req.extensions().get::<crate::service::Principal>().cloned() else { return };
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else { return };
    let (write, summary) = state.refused.admit_for(&p.id, &p.org_id, p.acct.into(), p.ip.as_deref(), state.now());
    if !write && summary.is_none() {
        return;
    }
    let route = req.match_pattern();
    let action = format!("{} {}", audit_method(req.method()), truncate(route.as_deref().unwrap_or(req.path())));
    let object = req.match_info().iter().last().map(|(_, v)| truncate(v).into_owned());
    let outcome = if status == actix_web::http::StatusCode::FORBIDDEN { Outcome::Denied } else { Outcome::Failure };
    let code = status.as_u16();
    let result = blocking(move || -> Result<(), crate::service::Error> {
        let mut conn = state.db.write()?;
        let now = state.now();
        if let Some(s) = summary {
            s.record(&mut conn, now)?;
        }
        if !write {
            return Ok(());
        }
        let mut ev = Entry::new(&p.org_id, p.acct.into(), &p.id, Action::Refused(action))
            .from_ip(p.ip.as_deref())
            .outcome(outcome)
            .detail(serde_json::json!({ "status": code, "via_token": p.token_id }));
        ev.object_id = object.as_deref();
        crate::service::events::emit(&mut conn, ev, now)
    })
    .await;
    if let Err(e) = result {
        log::warn!("auditing a refused call failed: {e}");
    }
}

/// The method as written in audit actions: a standard one, or "OTHER".
fn audit_method(m: &actix_web::http::Method) -> &'static str {
    match method_label(m) {
        "other" => "OTHER",
        l => l,
    }
}

/// Gives errors from actix itself (404, 405, 413: bodiless or plain text) the format of their scope.
fn shape_errors(res: ServiceResponse<BoxBody>, oauth: bool) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let want = if oauth { "application/json" } else { "application/problem+json" };
    let shaped =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(want));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return res;
    }
    let (req, mut resp) = res.into_parts();
    let (ct, body) = if oauth {
        ("application/json", oauth_body(OAuthCode::InvalidRequest, status.canonical_reason().unwrap_or("error")))
    } else {
        (
            "application/problem+json",
            problem_body(status, status.canonical_reason().unwrap_or("error"), None).to_string(),
        )
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
    let resp = resp.set_body(BoxBody::new(body));
    ServiceResponse::new(req, resp)
}

/// The `method` label: the standard methods, everything else one value, so that clients
/// inventing methods cannot grow the metrics without bound.
pub fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The request id header: accepted from the client when sane, else generated; answered
/// on every response and carried to the request's log lines (`crate::logging`).
pub const REQUEST_ID: &str = "x-request-id";

/// Counts and times every request by its route pattern (never the raw path) and a
/// bounded method label; gives it a request id.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use crate::logging;
    let start = Instant::now();
    let state = req.app_data::<web::Data<State>>().cloned();
    let method = method_label(req.method());
    // A hot route's pre-bound series, found from the path alone: no pattern String to
    // build, no labels to hash (`Metrics::hot_route`).
    let hot = state.as_ref().and_then(|s| s.metrics.hot_route(req.path(), method));
    let route: std::borrow::Cow<'static, str> = match hot {
        Some(h) => h.path().into(),
        None => req.match_pattern().unwrap_or_else(|| "unmatched".into()).into(),
    };
    let id = match req.headers().get(REQUEST_ID).and_then(|v| logging::accept_request_id(v.as_bytes())) {
        Some(v) => v.to_string(),
        None => logging::new_request_id(),
    };
    let value = header::HeaderValue::from_str(&id).ok();
    let mut res = logging::with_request_id(id, async {
        let res = next.call(req).await;
        // The access log, off by default (`RUST_LOG=tokend::access=debug`): one line per
        // request, with its request id; a disabled level costs one comparison.
        if let Ok(r) = &res {
            log::debug!(target: "tokend::access", "{method} {route} {} {:.3}s", r.status().as_u16(), start.elapsed().as_secs_f64());
        }
        res
    })
    .await?;
    if let Some(v) = value {
        res.headers_mut().insert(header::HeaderName::from_static(REQUEST_ID), v);
    }
    let elapsed = start.elapsed().as_secs_f64();
    match (&state, hot) {
        (Some(s), Some(h)) => {
            h.count(&s.metrics.requests, res.status().as_u16());
            h.latency.observe(elapsed);
        }
        (Some(s), None) => {
            let status = res.status().as_u16().to_string();
            s.metrics.requests.with_label_values(&[&route, method, &status]).inc();
            s.metrics.latency.with_label_values(&[&route, method]).observe(elapsed);
        }
        (None, _) => {}
    }
    Ok(res)
}

/// The request body must arrive within `TOKEND_REQUEST_TIMEOUT_SECONDS` of the request head;
/// a body that stops arriving fails its read (answered 400 or 408 by the extractor, and
/// the connection is closed) instead of holding the connection and a worker's slot.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_web::dev::Payload;
    use actix_web::HttpMessage;
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else { return next.call(req).await };
    let deadline =
        actix_web::rt::time::Instant::now() + std::time::Duration::from_secs(state.cfg.request_timeout_seconds);
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
        return next.call(req).await;
    }
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    let stream = DeadlinePayload {
        inner: Some(payload),
        sleep: Box::pin(actix_web::rt::time::sleep_until(deadline)),
        timed_out: timed_out.clone(),
    };
    req.set_payload(Payload::Stream { payload: Box::pin(stream) });
    let mut res = next.call(req).await?;
    if timed_out.get() {
        res.response_mut().head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

/// A request body that fails with `TimedOut` once `sleep` (the body deadline) has passed
/// before its next chunk arrived; ends after that. Written against `futures_core::Stream`
/// (actix's own payload trait) so that no stream-combinator crate is needed.
struct DeadlinePayload {
    inner: Option<actix_web::dev::Payload>,
    sleep: std::pin::Pin<Box<actix_web::rt::time::Sleep>>,
    timed_out: std::rc::Rc<std::cell::Cell<bool>>,
}

impl futures_core::Stream for DeadlinePayload {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(item) = std::pin::Pin::new(inner).poll_next(cx) {
            if item.is_none() {
                this.inner = None;
            }
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.inner = None;
            this.timed_out.set(true);
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body did not arrive in time");
            return Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(e))));
        }
        Poll::Pending
    }
}
