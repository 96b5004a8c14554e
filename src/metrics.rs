//! Prometheus metrics: requests and latency by route and status, token issuance by grant
//! and outcome; and gauges of the tokens and the notification outbox, computed off the
//! request path by the maintenance thread (at most once a minute).
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The routes served most (the token grants, key set, forward-auth, introspection), as
/// (path, method label): their series are bound once, so that counting one of their
/// requests is an atomic add rather than a hash of its labels and a map lookup. Static
/// patterns only: for them the request path is the route pattern.
const HOT_ROUTES: &[(&str, &str)] = &[
    ("/oauth/token", "POST"),
    ("/.well-known/jwks.json", "GET"),
    ("/gateway/auth", "GET"),
    ("/oauth/introspect", "POST"),
    #[cfg(feature = "bench")]
    ("/bench/sign", "POST"),
];

/// The pre-bound series of one hot route: its latency and its 200 answers (other
/// statuses are rarer and go through the labelled vector).
pub struct HotRoute {
    path: &'static str,
    method: &'static str,
    ok: IntCounter,
    pub latency: Histogram,
}

impl HotRoute {
    /// Its route pattern (the `route` label).
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Counts one answer with `status`.
    pub fn count(&self, requests: &IntCounterVec, status: u16) {
        if status == 200 {
            self.ok.inc();
        } else {
            requests.with_label_values(&[self.path, self.method, &status.to_string()]).inc();
        }
    }
}

/// The `grant` labels of `tokend_tokens_issued_total` (`GrantType::label`, and `other`).
const GRANTS: [&str; 4] = ["client_credentials", "refresh_token", "token_exchange", "other"];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub issued: IntCounterVec,
    /// Refusals over the pacing budget: `delayed`, or answered with the connection `closed`.
    pub paced: IntCounterVec,
    /// Live API tokens by `owner_kind` (user, service_account).
    pub tokens_live: IntGaugeVec,
    /// Live API tokens expiring within 7 days.
    pub tokens_expiring: IntGauge,
    /// API tokens past their idle TTL (neither revoked nor expired).
    pub tokens_idle: IntGauge,
    /// Notification outbox rows still to deliver, by kind (webhook, email); refreshed by
    /// the maintenance thread at most once a minute, never on a request.
    pub outbox_depth: IntGaugeVec,
    /// Notification outbox rows given up on after 24 h of retries, by kind.
    pub outbox_failed: IntGaugeVec,
    /// When the token gauges above were last computed (unix seconds; 0: not yet).
    pub gauges_computed_at: IntGauge,
    hot: Vec<HotRoute>,
    /// `issued{outcome="success"}` by grant, in `GRANTS` order.
    issued_success: Vec<IntCounter>,
    /// Entries held by the token path's credential cache, set at each scrape.
    pub credential_cache_entries: IntGauge,
    /// 1 while the credential cache may serve (on PostgreSQL: this instance listens for
    /// other instances' changes), 0 otherwise; set at each scrape.
    pub credential_cache_on: IntGauge,
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
        let tokens_live =
            IntGaugeVec::new(Opts::new("tokend_api_tokens_live", "Live API tokens by owner kind"), &["owner_kind"])
                .expect("static metric definition");
        for kind in ["user", "service_account"] {
            tokens_live.with_label_values(&[kind]).set(0);
        }
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("static metric definition");
        let tokens_expiring = gauge("tokend_api_tokens_expiring_7d", "Live API tokens expiring within 7 days");
        let tokens_idle =
            gauge("tokend_api_tokens_idle", "API tokens past their idle TTL, neither revoked nor expired");
        let gauges_computed_at =
            gauge("tokend_gauges_computed_timestamp_seconds", "When the token gauges were computed");
        let credential_cache_entries =
            gauge("tokend_credential_cache_entries", "Verified credential lookups held in memory");
        let credential_cache_on = gauge(
            "tokend_credential_cache_on",
            "1 while the credential cache serves (PostgreSQL: while listening for other instances' changes)",
        );
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
        // Both kinds from the first scrape on (an empty outbox has no rows to set them from).
        for kind in ["webhook", "email"] {
            outbox_depth.with_label_values(&[kind]).set(0);
            outbox_failed.with_label_values(&[kind]).set(0);
        }
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(issued.clone()),
            Box::new(paced.clone()),
            Box::new(tokens_live.clone()),
            Box::new(tokens_expiring.clone()),
            Box::new(tokens_idle.clone()),
            Box::new(outbox_depth.clone()),
            Box::new(outbox_failed.clone()),
            Box::new(gauges_computed_at.clone()),
            Box::new(credential_cache_entries.clone()),
            Box::new(credential_cache_on.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        let hot = HOT_ROUTES
            .iter()
            .map(|&(path, method)| HotRoute {
                path,
                method,
                ok: requests.with_label_values(&[path, method, "200"]),
                latency: latency.with_label_values(&[path, method]),
            })
            .collect();
        let issued_success = GRANTS.iter().map(|g| issued.with_label_values(&[g, "success"])).collect();
        Metrics {
            hot,
            issued_success,
            registry,
            requests,
            latency,
            issued,
            paced,
            tokens_live,
            tokens_expiring,
            tokens_idle,
            outbox_depth,
            outbox_failed,
            gauges_computed_at,
            credential_cache_entries,
            credential_cache_on,
        }
    }

    /// The pre-bound series of a hot route, if `path` and `method` name one.
    pub fn hot_route(&self, path: &str, method: &str) -> Option<&HotRoute> {
        self.hot.iter().find(|h| h.path == path && h.method == method)
    }

    /// Counts one token-endpoint outcome of `grant` (a `GrantType::label` or `other`).
    pub fn count_issued(&self, grant: &str, outcome: &str) {
        match GRANTS.iter().position(|g| *g == grant) {
            Some(i) if outcome == "success" => self.issued_success[i].inc(),
            _ => self.issued.with_label_values(&[grant, outcome]).inc(),
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}
