//! Refusal pacing: refused requests (4xx) are answered at most `rate` a second, process-wide,
//! so that a flood of requests the server refuses cheaply cannot crowd out the requests it
//! serves. A refusal beyond the budget waits for its turn (at most `MAX_WAIT`); when the
//! queue is longer than that, it is answered at once and its connection closed, so waiting
//! refusals stay bounded (`rate × MAX_WAIT`) and a flooding client has to reconnect.
//!
//! Successful answers (1xx–3xx) and server-side failures (5xx: an outage's 503 must be quick)
//! never wait. A closed-loop flooder is thereby slowed to the budget whatever its connection
//! count, while a client making an occasional mistake waits at most `MAX_WAIT` and only while
//! a flood is running.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::pacer::Turn;
use crate::app::State;

/// The middleware: paces every 4xx answer.
pub async fn pace(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    // Successful answers (the token path) pay one status check, no state lookup.
    if !res.status().is_client_error() {
        return Ok(res);
    }
    let Some(state) = res.request().app_data::<web::Data<State>>().cloned() else { return Ok(res) };
    match state.pacer.turn() {
        Turn::Now => {}
        Turn::After(d) => {
            state.metrics.paced.with_label_values(&["delayed"]).inc();
            actix_web::rt::time::sleep(d).await;
        }
        Turn::Close => {
            state.metrics.paced.with_label_values(&["closed"]).inc();
            res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
        }
    }
    Ok(res)
}

/// Paces a refusal the middleware does not see as one (a 503 for a full login budget):
/// waits for its turn, or answers false when the queue is full (close the connection).
pub async fn pace_now(state: &State) -> bool {
    match state.pacer.turn() {
        Turn::Now => true,
        Turn::After(d) => {
            state.metrics.paced.with_label_values(&["delayed"]).inc();
            actix_web::rt::time::sleep(d).await;
            true
        }
        Turn::Close => {
            state.metrics.paced.with_label_values(&["closed"]).inc();
            false
        }
    }
}

/// A login refused before it takes a blocking thread because its hashing budget is full:
/// the refusal is paced like a 4xx (a flood cannot spin on it).
pub async fn login_overflow(state: &State, email: &str, ip: &str) -> Result<(), crate::service::Error> {
    let r = state.login.refuse_overflow(&state.hashing, email, ip, state.now());
    if r.is_err() {
        pace_now(state).await;
    }
    r
}
