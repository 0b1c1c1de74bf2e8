//! The routes an operator's tools call, not SignPath clients: `/healthz` (the process answers), `/readyz` (it can
//! sign now: not draining, an HSM session answers, the database answers; 503 otherwise, so a load balancer takes
//! the replica out) and `/metrics` (Prometheus scrapes it). They need no token, write no audit record (a probe
//! every few seconds would bury the log) and tell nothing about a request or a secret.
//!
//! This file may import the HSM's `Signer`, `store/` and `metrics` to ask them how they are; the signing core does
//! not know these routes exist.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use crate::hsm::Signer;
use crate::metrics::Metrics;
use crate::signing::LiveCore;
use crate::store::{HeldQuery, Stage, Stores};
use crate::tlog::Sequencer;

/// What the operator routes look at: the metrics, the HSM and the stores, and whether the server drains; and the
/// transparency log, which its own routes (`transparency_log.rs`) read.
#[derive(Debug)]
pub struct Operations {
    pub metrics: Arc<Metrics>,
    signer: Arc<Signer>,
    stores: Stores,
    draining: AtomicBool,
    pub log: Arc<Sequencer>,
}

impl Operations {
    pub fn new(metrics: Arc<Metrics>, signer: Arc<Signer>, stores: Stores, log: Arc<Sequencer>) -> Self {
        Self {
            metrics,
            signer,
            stores,
            draining: AtomicBool::new(false),
            log,
        }
    }

    /// From now on `/readyz` answers 503: the server is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The readiness checks, each `Ok` or the reason it fails (logged, not answered: the reason may name paths).
    fn checks(&self) -> Readiness {
        let hsm = self.signer.check().map_err(|e| {
            self.metrics.hsm_error();
            tracing::warn!(error = %e, "readiness: the HSM does not answer");
        });
        let database = self
            .stores
            .approvals
            .list(&HeldQuery {
                policies: None,
                stage: Some(Stage::Waiting),
                offset: 0,
                limit: 1,
            })
            .map(drop)
            .map_err(|e| tracing::warn!(error = %e, "readiness: the database does not answer"));
        Readiness {
            draining: self.draining(),
            hsm: hsm.is_ok(),
            database: database.is_ok(),
        }
    }
}

struct Readiness {
    draining: bool,
    hsm: bool,
    database: bool,
}

impl Readiness {
    fn ready(&self) -> bool {
        !self.draining && self.hsm && self.database
    }
}

pub fn routes() -> Router<Arc<LiveCore>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Handles `GET /healthz`: 200 while the process serves HTTP, draining or not.
async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "alive"}))
}

/// Handles `GET /readyz`: 200 when the gateway can sign now, else 503 naming the failing checks. Draining is
/// answered at once, without touching the HSM or the database.
async fn readyz(Extension(operations): Extension<Arc<Operations>>) -> Response {
    let readiness = if operations.draining() {
        Readiness {
            draining: true,
            hsm: true,
            database: true,
        }
    } else {
        let checked = operations.clone();
        match tokio::task::spawn_blocking(move || checked.checks()).await {
            Ok(readiness) => readiness,
            Err(_) => Readiness {
                draining: operations.draining(),
                hsm: false,
                database: false,
            },
        }
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let body = serde_json::json!({
        "status": if readiness.ready() { "ready" } else { "not ready" },
        "draining": readiness.draining,
        "checks": {"hsm": word(readiness.hsm), "database": word(readiness.database)},
    });
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body)
}

/// Handles `GET /metrics`: every metric in the OpenMetrics text format, the approvals gauge counted now by the
/// database. Anyone may scrape, so a scrape costs one count, however many requests wait and however large they are.
async fn metrics(Extension(operations): Extension<Arc<Operations>>) -> Response {
    let counted = operations.clone();
    let waiting = tokio::task::spawn_blocking(move || {
        counted
            .stores
            .approvals
            .count(None)
            .map(|counts| counts.iter().map(|c| c.waiting).sum::<u64>())
    })
    .await;
    if let Ok(Ok(waiting)) = waiting {
        operations.metrics.set_approvals_waiting(waiting);
    }
    let mut response = Response::new(Body::from(operations.metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
