//! Prometheus metrics: requests and latency by route and status, token issuance by grant
//! and outcome.
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub issued: IntCounterVec,
    /// Refusals over the pacing budget: `delayed`, or answered with the connection `closed`.
    pub paced: IntCounterVec,
    /// Notification outbox rows still to deliver, by kind (webhook, email); refreshed by
    /// the maintenance thread at most once a minute, never on a request.
    pub outbox_depth: IntGaugeVec,
    /// Notification outbox rows given up on after 24 h of retries, by kind.
    pub outbox_failed: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("tokend_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new("tokend_http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["route", "method"],
        )
        .expect("static metric definition");
        let issued = IntCounterVec::new(
            Opts::new("tokend_tokens_issued_total", "Token endpoint outcomes by grant"),
            &["grant", "outcome"],
        )
        .expect("static metric definition");
        let paced = IntCounterVec::new(
            Opts::new("tokend_refusals_paced_total", "4xx answers over TOKEND_REFUSALS_PER_SECOND"),
            &["action"],
        )
        .expect("static metric definition");
        let outbox_depth = IntGaugeVec::new(
            Opts::new("tokend_webhook_outbox_depth", "Notifications waiting for delivery, by kind (webhook, email)"),
            &["kind"],
        )
        .expect("static metric definition");
        let outbox_failed = IntGaugeVec::new(
            Opts::new("tokend_webhook_deliveries_failed", "Notifications given up on after 24 h of retries, by kind"),
            &["kind"],
        )
        .expect("static metric definition");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(issued.clone()),
            Box::new(paced.clone()),
            Box::new(outbox_depth.clone()),
            Box::new(outbox_failed.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics { registry, requests, latency, issued, paced, outbox_depth, outbox_failed }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}
