//! The request revocation list on the CRL listener, beside the CRLs and like them plain HTTP (the documents are
//! signed by the issuing CA; `signing/revocation_list.rs`):
//! - `GET /revocations`: the whole list (`application/vnd.signpath.revocation-list.v1+json`);
//! - `GET /revocations/requests/{id}`: the online answer for one signing request (the gateway's id or the
//!   client's), the revocations that cover it, signed and naming it; 404 if the audit log has no such request that
//!   signed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::revocation_list::MEDIA_TYPE;

use crate::signing::revocation_list::{Answer, ListPublisher};

/// The routes, for the CRL listener's router.
pub fn routes(publisher: Arc<ListPublisher>) -> Router {
    Router::new()
        .route("/revocations", get(list))
        .route("/revocations/requests/{id}", get(request))
        .with_state(publisher)
}

fn signed(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, MEDIA_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot publish the revocation list");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the revocation list cannot be signed now; see the gateway's log\n",
    )
        .into_response()
}

/// Handles the `GET /revocations` route.
async fn list(State(publisher): State<Arc<ListPublisher>>) -> Response {
    match tokio::task::spawn_blocking(move || publisher.list()).await {
        Ok(Ok(bytes)) => signed(bytes.as_ref().clone()),
        Ok(Err(e)) => unavailable(&e),
        Err(e) => unavailable(&e),
    }
}

/// Handles the `GET /revocations/requests/{id}` route.
async fn request(State(publisher): State<Arc<ListPublisher>>, Path(id): Path<String>) -> Response {
    if id.is_empty() || id.len() > 200 {
        return (
            StatusCode::BAD_REQUEST,
            "a signing request id is 1 to 200 characters\n",
        )
            .into_response();
    }
    let asked = id.clone();
    match tokio::task::spawn_blocking(move || publisher.answer(&asked)).await {
        Ok(Ok(Answer::Signed(bytes))) => signed(bytes),
        Ok(Ok(Answer::Unknown)) => (
            StatusCode::NOT_FOUND,
            format!("the gateway's audit log has no signing request {id} that signed\n"),
        )
            .into_response(),
        Ok(Err(e)) => unavailable(&e),
        Err(e) => unavailable(&e),
    }
}
