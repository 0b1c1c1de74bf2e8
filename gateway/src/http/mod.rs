//! The HTTP layer: SignPath's API routes on axum's router, one file per SignPath resource (`cryptoki`,
//! `signing_requests`, `artifacts`, `resubmit`), SignPath's GitHub connector (`github_connector`), the approvers' pages (`web/`), and the server (`serve`: TLS, connections, limits,
//! shutdown). SignPath's case-insensitive paths and the optional `/Api` prefix are folded once, by the layer in
//! `normalize`, before routing. Handlers only parse, call the signing core, and render: every answer, a 404 or a
//! 405 included, is a JSON problem document (or a page) with an audit record.
//!
//! This folder owns HTTP. It may import `signing/` (the core), `store/` (record types) and `tlog/` (the transparency
//! log its routes serve, `transparency_log.rs`); nothing below it may
//! import this folder.

mod artifact_upload;
mod artifacts;
mod call;
mod crl;
mod cryptoki;
mod failed_auth;
mod fulcio;
mod github_connector;
mod health;
mod listener;
mod normalize;
mod reload;
mod render;
mod resubmit;
mod revocation_list;
mod revocations;
pub mod serve;
mod signing_requests;
mod timestamp;
mod transparency_log;
mod web;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use tower::ServiceExt as _;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody, TimeoutLayer};

pub use call::Peer;
use call::{Call, MAX_BODY};
pub use health::Operations;
pub use reload::watch as watch_configuration;

use crate::config::ServerConfig;
use crate::signing::{refuse, Core, LiveCore, Reason, Refusal};

/// The API and the approvers' pages, behind the path-normalizing layer and the server's time limits: a request
/// that takes longer than `request_timeout_seconds` as a whole (body read and signing included) is answered 408, a
/// body that pauses longer than `body_read_timeout_seconds` fails its read (and the request with it).
pub fn service(
    live: Arc<LiveCore>,
    limits: &ServerConfig,
    operations: Arc<Operations>,
) -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_seconds),
        ))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_read_timeout_seconds,
        )))
        .service(
            router(live, limits, operations)
                .map_request(normalize::normalize::<TimeoutBody<hyper::body::Incoming>>),
        )
}

fn router(live: Arc<LiveCore>, limits: &ServerConfig, operations: Arc<Operations>) -> Router {
    let guard = failed_auth::Guard {
        failures: Arc::new(failed_auth::FailedAuthentications::new(
            failed_auth::Limits::from_config(limits),
        )),
        live: live.clone(),
    };
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(failed_auth::audit_ended_blocks(guard.clone()));
    }
    Router::new()
        .route(
            "/v1/{org}/cryptoki/mysigningpolicies",
            api_route(get(cryptoki::my_signing_policies), "GET"),
        )
        .route(
            "/v1/{org}/signingrequests/signhash",
            api_route(post(signing_requests::sign_hash), "POST"),
        )
        .route(
            "/v1/{org}/signingrequests/{id}",
            api_route(get(signing_requests::signing_request), "GET"),
        )
        .route(
            "/v1/{org}/signingrequests",
            api_route(post(artifacts::submit), "POST"),
        )
        .route(
            "/v1/{org}/signingrequests/submitwithartifact",
            api_route(post(artifacts::submit), "POST"),
        )
        .route(
            "/v1/{org}/signingrequests/{id}/signedartifact",
            api_route(get(artifacts::signed_artifact), "GET"),
        )
        .route(
            "/v1/{org}/signingrequests/{id}/unsignedartifact",
            api_route(get(artifacts::unsigned_artifact), "GET"),
        )
        .route(
            "/v1/{org}/signingrequests/{id}/status",
            api_route(get(signing_requests::status), "GET"),
        )
        .route(
            "/v1/{org}/signingrequests/resubmit",
            api_route(post(resubmit::resubmit), "POST"),
        )
        // SignPath's GitHub connector (`connector-url` = the gateway): v2's routes, and v1's `/api/sign` (the
        // `/Api` prefix is folded off like the API's).
        .route(
            "/{org}/signingrequests",
            api_route(post(github_connector::submit), "POST"),
        )
        .route(
            "/{org}/signingrequests/{id}/status",
            api_route(get(signing_requests::status), "GET"),
        )
        .route(
            "/{org}/signingrequests/{id}/signedartifact",
            api_route(get(artifacts::signed_artifact), "GET"),
        )
        .route("/sign", api_route(post(github_connector::submit_v1), "POST"))
        .route(
            "/timestamp",
            post(timestamp::timestamp).layer(axum::middleware::from_fn_with_state(
                timestamp::query_rate(limits),
                timestamp::limit,
            )),
        )
        // Fulcio's API (`/api` is folded off) and the Sigstore documents: the keyless CA (docs/keyless.md).
        .route("/v2/signingCert", post(fulcio::signing_cert))
        .route("/v2/trustBundle", get(fulcio::trust_bundle))
        .route("/v2/configuration", get(fulcio::configuration))
        .route("/sigstore/trusted_root.json", get(fulcio::trusted_root))
        .route("/sigstore/signing_config.json", get(fulcio::signing_config))
        .merge(web::routes())
        .merge(health::routes())
        .route("/v2/log/entries", transparency_log::upload_route())
        .merge(transparency_log::routes())
        .fallback(not_found)
        .layer(Extension(operations.log.clone()))
        .layer(Extension(Arc::new(web::Sessions::default())))
        .layer(Extension(operations))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(live)
        .layer(axum::middleware::from_fn_with_state(guard, failed_auth::limit))
}

/// The signing core in force when the request started (the configuration may be reloaded meanwhile).
pub struct CurrentCore(pub Arc<Core>);

impl FromRequestParts<Arc<LiveCore>> for CurrentCore {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, live: &Arc<LiveCore>) -> Result<Self, Self::Rejection> {
        Ok(Self(live.current()))
    }
}

/// A route of the API: `allow` is its one method. Any other (HEAD included) is refused with 405 and `Allow`, after
/// the caller is authenticated, so a route's existence is no secret but its methods are told only to clients.
fn api_route(route: MethodRouter<Arc<LiveCore>>, allow: &'static str) -> MethodRouter<Arc<LiveCore>> {
    let refuse_method = move |CurrentCore(core): CurrentCore,
                              Path(params): Path<HashMap<String, String>>,
                              call: Call| async move {
        call.run(
            &core,
            move |core, incoming, record| -> Result<crate::signing::Answer, Refusal> {
                let organization = params.get("org").map(String::as_str).unwrap_or_default();
                core.authenticate(incoming.header("authorization"), organization, record)?;
                Err(Refusal {
                    allow: Some(allow),
                    ..refuse(
                        Reason::MethodNotAllowed,
                        format!("{} accepts {allow} only", incoming.path),
                    )
                })
            },
        )
        .await
    };
    route.head(refuse_method).fallback(refuse_method)
}

/// Every path no route takes: the approvers' pages answer for `/Web/...` (sign in first), the API with a 404.
async fn not_found(
    CurrentCore(core): CurrentCore,
    Extension(sessions): Extension<Arc<web::Sessions>>,
    call: Call,
) -> Response {
    if call.is_web() {
        return web::not_found(&core, sessions, call).await;
    }
    call.run(
        &core,
        |_, incoming, _| -> Result<crate::signing::Answer, Refusal> {
            Err(refuse(
                Reason::NoSuchRoute,
                format!("there is no route {}", incoming.path),
            ))
        },
    )
    .await
}
