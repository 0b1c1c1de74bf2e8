//! The CRL listener: plain HTTP (notation fetches CRLs over http only, and a CRL is signed, so it needs no TLS),
//! on `[pki] crl_listen`, serving `GET /crl/{ca}.crl` as `application/pkix-crl`, and the request revocation list
//! beside them (`revocation_list.rs`), and nothing else. It shares no
//! route, token or state with the API beside the HSM pool. It has limits of its own, as the API does (`listener`):
//! at most `[server] crl_max_connections` open at once (apart from the API's, within the open-file budget), the
//! header-read timeout (which also closes idle connections) and the request timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutLayer;

use super::listener::{http1, Accepted, CappedListener};
use crate::config::ServerConfig;
use crate::pki::publisher::Publisher;

/// Serves the CRLs until the process ends.
pub async fn serve(
    publisher: Arc<Publisher>,
    lists: Arc<crate::signing::revocation_list::ListPublisher>,
    mut listener: CappedListener,
    limits: ServerConfig,
) {
    let router = Router::new()
        .route("/crl/{file}", get(crl))
        .with_state(publisher)
        .merge(super::revocation_list::routes(lists))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_seconds),
        ));
    while let Ok(Accepted { permit, stream, .. }) = listener.accept().await {
        let router = router.clone();
        let connection = http1(&limits).serve_connection(
            TokioIo::new(stream),
            service_fn(move |request| router.clone().oneshot(request)),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    tracing::error!("the CRL listener stopped");
}

/// Handles the `GET /crl/{ca}.crl` route.
async fn crl(State(publisher): State<Arc<Publisher>>, Path(file): Path<String>) -> Response {
    let Some(ca) = file.strip_suffix(".crl").map(str::to_owned) else {
        return not_found();
    };
    let found = tokio::task::spawn_blocking(move || publisher.crl(&ca)).await;
    match found {
        Ok(Ok(Some(der))) => (
            [
                (header::CONTENT_TYPE, "application/pkix-crl"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            der.as_ref().clone(),
        )
            .into_response(),
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot sign the CRL");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the CRL task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such CRL; CRLs are at /crl/{ca}.crl\n").into_response()
}
