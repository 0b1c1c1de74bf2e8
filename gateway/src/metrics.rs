//! The gateway's metrics, served on `/metrics` in the OpenMetrics text format Prometheus scrapes. The metric
//! families live in one registry of the `prometheus-client` crate (the Prometheus project's own Rust client), so
//! the exposition (escaping, `_total` and `_bucket` suffixes, `# EOF`) is not ours to get wrong.
//!
//! This module owns the metric names and their labels only. It must never import `http/`, `signing/`, `store/` or
//! the HSM: the layers record into it, not the other way round. Labels take values from a small known set (the
//! configured policies, the outcomes, the route templates), never from what a client sent, so a client cannot
//! grow the registry.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What became of a signing request: `signed`, `pending` (held for approval), `refused` (the client's fault or the
/// policy's decision) or `error` (the gateway's fault: HSM, database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Signed,
    Pending,
    Refused,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Pending => "pending",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SigningLabels {
    project: String,
    policy: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s: a signature takes a few milliseconds, a slow HSM or a busy database seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    signing_requests: Family<SigningLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram>,
    approvals_waiting: Gauge,
    hsm_errors: Counter,
    hsm_signatures: Counter,
    hsm_signature_duration: Histogram,
    database_errors: Counter,
    audit_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signpath_gateway");
        let signing_requests = Family::<SigningLabels, Counter>::default();
        registry.register(
            "signing_requests",
            "Signing requests (SignHash, and approved requests signed when polled) by project, policy and outcome",
            signing_requests.clone(),
        );
        let request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's headers to its audited answer, by route template",
            request_duration.clone(),
        );
        let approvals_waiting = Gauge::default();
        registry.register(
            "approvals_waiting",
            "Signing requests held for approval, counted when scraped",
            approvals_waiting.clone(),
        );
        let hsm_errors = Counter::default();
        registry.register(
            "hsm_errors",
            "Failures of the HSM: signing requests it could not serve and failed readiness checks",
            hsm_errors.clone(),
        );
        let hsm_signatures = Counter::default();
        registry.register(
            "hsm_signatures",
            "Signatures the HSM made (signing requests, time stamps, certificates, CRLs), counted when the HSM \
             returns one, whether or not its answer was handed out",
            hsm_signatures.clone(),
        );
        let hsm_signature_duration = latency_histogram();
        registry.register(
            "hsm_signature_duration_seconds",
            "Time the HSM took for each signature counted in hsm_signatures (C_SignInit and C_Sign on a pooled \
             session)",
            hsm_signature_duration.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Failed operations of the audit and approval stores",
            database_errors.clone(),
        );
        let audit_commit = latency_histogram();
        registry.register(
            "audit_commit_duration_seconds",
            "Time to commit one audit record durably (an answer waits for it)",
            audit_commit.clone(),
        );
        Self {
            registry,
            signing_requests,
            request_duration,
            approvals_waiting,
            hsm_errors,
            hsm_signatures,
            hsm_signature_duration,
            database_errors,
            audit_commit,
        }
    }

    /// Counts one signing request of a configured policy (`None`: the policy does not exist or was not named).
    pub fn signing_request(&self, policy: Option<(&str, &str)>, outcome: Outcome) {
        let (project, policy) = policy.unwrap_or(("", ""));
        self.signing_requests
            .get_or_create(&SigningLabels {
                project: project.to_owned(),
                policy: policy.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Observes one request's latency; `route` is a route template such as `/v1/{org}/signingrequests/signhash`.
    pub fn request_duration(&self, route: &str, elapsed: Duration) {
        self.request_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_approvals_waiting(&self, count: u64) {
        self.approvals_waiting
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn hsm_error(&self) {
        self.hsm_errors.inc();
    }

    /// Counts one signature the HSM made, and the time it took.
    pub fn hsm_signature(&self, elapsed: Duration) {
        self.hsm_signatures.inc();
        self.hsm_signature_duration.observe(elapsed.as_secs_f64());
    }

    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    pub fn audit_commit(&self, elapsed: Duration) {
        self.audit_commit.observe(elapsed.as_secs_f64());
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoding error would leave a partial text, still parseable.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exported_with_their_labels() {
        let metrics = Metrics::new();
        metrics.signing_request(Some(("demo", "ec-256")), Outcome::Signed);
        metrics.signing_request(Some(("demo", "ec-256")), Outcome::Signed);
        metrics.signing_request(None, Outcome::Refused);
        let text = metrics.render();
        assert!(
            text.contains(
                "signpath_gateway_signing_requests_total{project=\"demo\",policy=\"ec-256\",outcome=\"signed\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
