//! One API call as the routes see it: the request's parts and body, read once under the body limit, and the audit
//! record that every request gets, begun before anything is checked. [`Call::run`] hands the work to the signing
//! core on the blocking pool (the HSM and the stores block), audits the outcome and renders it; then counts it in
//! the metrics and logs one line for it (request id, route, policy, token id, outcome, latency: never a secret).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use common::protocol::IDEMPOTENCY_KEY;

use super::health::Operations;
use super::normalize::OriginalPath;
use super::render::{problem, Render};
use crate::metrics::Outcome;
use crate::signing::{refuse, AuditOutcome, Audited, Core, Reason, Refusal};
use crate::store::{now, Record};

/// The largest request body the API takes (`DefaultBodyLimit` on the router).
pub const MAX_BODY: usize = 64 * 1024;

/// The longest `Idempotency-Key` the gateway takes (docs/openapi.yaml).
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The client's address, set on each request by the connection that carried it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What a handler's work sees of the request.
#[derive(Debug)]
pub struct Incoming {
    pub method: Method,
    /// As the client sent it (before normalization).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request on its way through the API, with its audit record.
#[derive(Debug)]
pub struct Call {
    pub record: Record,
    incoming: Incoming,
    /// Why the request cannot be taken at all (body too large or unreadable, malformed Idempotency-Key).
    unreadable: Option<Refusal>,
    /// Whether the (normalized) path is one of the approvers' pages.
    web: bool,
    started: Instant,
    /// The route template that took the request (`/v1/{org}/signingrequests/signhash`), for metrics and logs:
    /// unlike the path, it is one of a few known values.
    route: String,
    operations: Option<Arc<Operations>>,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let received = now();
        let started = Instant::now();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
        let operations = request.extensions().get::<Arc<Operations>>().cloned();
        let path = request
            .extensions()
            .get::<OriginalPath>()
            .map_or_else(|| request.uri().path().to_owned(), |p| p.0.clone());
        let peer = request.extensions().get::<Peer>().map(|p| p.0.to_string());
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let headers = request.headers().clone();
        // The organization of a `/v1/{org}/...` route (or the GitHub connector's `/{org}/SigningRequests...`), recorded before the route is known to exist.
        let organization = match request.uri().path().split('/').collect::<Vec<_>>().as_slice() {
            ["", "v1", org, _, ..] => (*org).to_owned(),
            ["", org, "signingrequests", ..] if *org != "web" => (*org).to_owned(),
            _ => String::new(),
        };
        let canonical = request.uri().path();
        let web = canonical == "/web" || canonical.starts_with("/web/");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Some(None): the header is there but not 1 to 200 visible ASCII characters (docs/openapi.yaml).
        let idempotency_key = headers.get(IDEMPOTENCY_KEY).map(|value| {
            value
                .to_str()
                .ok()
                .filter(|key| (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()))
                .map(str::to_owned)
        });
        let record = Record {
            request_id: common::protocol::new_request_id(),
            received,
            organization,
            client_address: peer.unwrap_or_default(),
            // Stored within bounds (`Record::bounded`): the record is written before authentication, so its size
            // must not be the caller's choice.
            user_agent: header("user-agent").map(str::to_owned),
            method: method.to_string(),
            route: path.clone(),
            idempotency_key: idempotency_key.clone().flatten(),
            ..Record::default()
        };
        let (body, mut unreadable) = match Bytes::from_request(request, state).await {
            Ok(body) => (body, None),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => (
                Bytes::new(),
                Some(refuse(
                    Reason::BodyTooLarge,
                    format!("the request body is larger than {MAX_BODY} bytes"),
                )),
            ),
            Err(rejection) => (
                Bytes::new(),
                Some(refuse(
                    Reason::MalformedRequest,
                    format!("cannot read the body: {}", rejection.body_text()),
                )),
            ),
        };
        if let Some(None) = idempotency_key {
            unreadable = Some(refuse(
                Reason::MalformedRequest,
                format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            ));
        }
        Ok(Self {
            record,
            incoming: Incoming {
                method,
                path,
                query,
                headers,
                body,
            },
            unreadable,
            web,
            started,
            route,
            operations,
        })
    }
}

impl Call {
    /// Whether this is a request for one of the approvers' pages.
    pub fn is_web(&self) -> bool {
        self.web
    }

    /// Runs `work` on the blocking pool, audits its outcome (no record, no answer) and renders it.
    pub async fn run<T, F>(mut self, core: &Arc<Core>, work: F) -> Response
    where
        T: Audited + Render + Send + 'static,
        F: FnOnce(&Core, &Incoming, &mut Record) -> Result<T, Refusal> + Send + 'static,
    {
        let request_id = self.record.request_id.clone();
        let started = self.started;
        let route = std::mem::take(&mut self.route);
        let operations = self.operations.take();
        let core = core.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let Self {
                mut record,
                incoming,
                unreadable,
                ..
            } = self;
            let result = match unreadable {
                Some(refusal) => Err(refusal),
                None => work(&core, &incoming, &mut record),
            };
            let summary = Summary::of(&core, &record);
            let (result, audited) = core.conclude(record, result);
            (result, summary, audited)
        })
        .await;
        // The outcome the audit record says; a task that panicked wrote none and answers 500.
        let (outcome, summary, audited) = match outcome {
            Ok((outcome, summary, audited)) => (Ok(outcome), Some(summary), audited),
            Err(e) => (Err(e), None, AuditOutcome::Error),
        };
        let status = match &outcome {
            Ok(Ok(answer)) => answer.status(),
            Ok(Err(refusal)) => refusal.status(),
            Err(_) => Reason::Internal.status(),
        };
        if let Ok(Err(refusal)) = &outcome {
            if refusal.reason == Reason::HsmUnavailable {
                if let Some(operations) = &operations {
                    operations.metrics.hsm_error();
                }
            }
        }
        let summary = summary.unwrap_or_default();
        summary.report(
            &request_id,
            &route,
            status,
            audited,
            started,
            operations.as_deref(),
        );
        match outcome {
            Ok(Ok(answer)) => answer.render(),
            Ok(Err(refusal)) => problem(&refusal, &request_id),
            Err(_) => problem(
                &refuse(Reason::Internal, "the request failed inside the gateway"),
                &request_id,
            ),
        }
    }
}

/// What the metrics and the request log need of an audit record, taken before the record goes to the store.
#[derive(Debug, Default)]
struct Summary {
    method: String,
    project: Option<String>,
    policy: Option<String>,
    /// Whether the project and policy are configured ones (else they are what a client made up, and not labels).
    configured: bool,
    token_id: Option<String>,
    signed: bool,
}

impl Summary {
    fn of(core: &Core, record: &Record) -> Self {
        let configured = match (&record.project, &record.policy) {
            (Some(project), Some(policy)) => core
                .state
                .policies
                .iter()
                .any(|p| &p.project == project && &p.slug == policy),
            _ => false,
        };
        Self {
            method: record.method.clone(),
            project: record.project.clone(),
            policy: record.policy.clone(),
            configured,
            token_id: record.token_id.clone(),
            signed: record.signature_sha256.is_some(),
        }
    }

    /// Counts the request in the metrics and logs its line. `status` is the answer's; `audited` is the outcome
    /// the core decided and wrote in the audit record, so the line says what the record says (a timestamp reply
    /// that grants nothing is `refused`, though its status is 200).
    fn report(
        &self,
        request_id: &str,
        route: &str,
        status: u16,
        audited: AuditOutcome,
        started: Instant,
        operations: Option<&Operations>,
    ) {
        let elapsed = started.elapsed();
        let outcome = match audited {
            AuditOutcome::Allowed | AuditOutcome::Read => Outcome::Signed,
            AuditOutcome::Pending => Outcome::Pending,
            AuditOutcome::Refused => Outcome::Refused,
            AuditOutcome::Error => Outcome::Error,
        };
        if let Some(operations) = operations {
            let metrics = &operations.metrics;
            metrics.request_duration(route, elapsed);
            let submitted = self.method == "POST" && route.ends_with("/signingrequests/signhash");
            if submitted || (self.signed && outcome == Outcome::Signed) {
                let policy = match (&self.project, &self.policy) {
                    (Some(project), Some(policy)) if self.configured => {
                        Some((project.as_str(), policy.as_str()))
                    }
                    _ => None,
                };
                metrics.signing_request(policy, outcome);
            }
        }
        tracing::info!(
            target: "signpath_gateway::request",
            request_id,
            method = %self.method,
            route,
            status,
            project = self.project.as_deref().unwrap_or(""),
            policy = self.policy.as_deref().unwrap_or(""),
            token_id = self.token_id.as_deref().unwrap_or(""),
            outcome = audited.as_str(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
}
