//! Prometheus metrics (`GET /metrics`, off unless `[metrics]` configures a listen address or a token): what an
//! operator watches — step-up checks, verifications by method and outcome, code sends by channel and outcome,
//! lockouts, elevated tokens issued and spent, guard refusals, request latency by route, database errors.
//!
//! Counters are lock-free atomics (prometheus-client); a label set is created on first use. Labels are bounded:
//! routes are the router's path templates, outcomes are error codes, never a user, address or token.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::delivery::{Channel, DeliveryError};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    required: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    method: &'static str,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssueLabels {
    method: String,
    single_use: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    step_up_checks: Family<CheckLabels, Counter>,
    verifications: Family<OutcomeLabels, Counter>,
    sends: Family<SendLabels, Counter>,
    lockouts: Counter,
    tokens_issued: Family<IssueLabels, Counter>,
    tokens_spent: Counter,
    guard_refusals: Counter,
    requests: Family<RouteLabels, Histogram>,
    database_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 250 µs to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stepup");
        let step_up_checks = Family::default();
        registry.register(
            "step_up_checks",
            "Step-up checks (POST /stepUp/check), by answer",
            step_up_checks.clone(),
        );
        let verifications = Family::default();
        registry.register(
            "verifications",
            "Verification attempts by method and outcome (success, or the error code)",
            verifications.clone(),
        );
        let sends = Family::default();
        registry.register("code_sends", "One-time code sends by channel and outcome", sends.clone());
        let lockouts = Counter::default();
        registry.register(
            "mfa_lockouts",
            "Users locked out of MFA after too many failures",
            lockouts.clone(),
        );
        let tokens_issued = Family::default();
        registry.register(
            "elevated_tokens_issued",
            "Elevated access tokens issued, by method",
            tokens_issued.clone(),
        );
        let tokens_spent = Counter::default();
        registry.register(
            "elevated_tokens_spent",
            "Single-use elevated tokens spent at the guard",
            tokens_spent.clone(),
        );
        let guard_refusals = Counter::default();
        registry.register(
            "guard_refusals",
            "Calls the guard refused (elevated_access_token_required)",
            guard_refusals.clone(),
        );
        let requests =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Request latency by route and status",
            requests.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Requests that failed on a database error",
            database_errors.clone(),
        );
        Self {
            registry,
            step_up_checks,
            verifications,
            sends,
            lockouts,
            tokens_issued,
            tokens_spent,
            guard_refusals,
            requests,
            database_errors,
        }
    }

    /// A step-up check answered `required`.
    pub fn step_up_check(&self, required: bool) {
        self.step_up_checks.get_or_create(&CheckLabels { required }).inc();
    }

    /// A verification by `method` ended with `outcome` (`success` or an error code).
    pub fn verification(&self, method: &'static str, outcome: &str) {
        self.verifications.get_or_create(&OutcomeLabels { method, outcome: outcome.to_owned() }).inc();
    }

    /// A code send on `channel` ended (`error` none: delivered).
    pub fn code_sent(&self, channel: Channel, error: Option<&DeliveryError>) {
        let outcome = error.map_or("sent", DeliveryError::outcome);
        self.sends.get_or_create(&SendLabels { channel: channel.as_str(), outcome }).inc();
    }

    /// A user was locked out of MFA.
    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// An elevated token was issued after `method`.
    pub fn token_issued(&self, method: &str, single_use: bool) {
        self.tokens_issued.get_or_create(&IssueLabels { method: method.to_owned(), single_use }).inc();
    }

    /// A single-use token was spent.
    pub fn token_spent(&self) {
        self.tokens_spent.inc();
    }

    /// The guard refused a call.
    pub fn guard_refusal(&self) {
        self.guard_refusals.inc();
    }

    /// A request to `route` (the path template, or `unmatched`) with `method` (one of a fixed set) was answered
    /// `status` after `seconds`.
    pub fn request(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RouteLabels { method, route: route.to_owned(), status })
            .observe(seconds);
    }

    /// A request failed on a database error.
    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    /// The text exposition (OpenMetrics text, which Prometheus scrapes).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
