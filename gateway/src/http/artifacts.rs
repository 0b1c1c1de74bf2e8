//! SignPath's file-based `SigningRequests` routes: submit an artifact (`SubmitWithArtifact`, and the older
//! multipart `POST SigningRequests` with `IsFastSigningRequest` for hashes) and download a request's artifacts
//! (`SignedArtifact`, `UnsignedArtifact`). Polling (`GET SigningRequests/{id}`) is the hash path's route: the core
//! answers for either kind of request.

use axum::body::Body;
use axum::extract::{FromRequest, Path, Request};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use common::protocol::ORIGIN_TOKEN_HEADER;
use tokio_util::io::ReaderStream;

use super::artifact_upload::receive;
use super::call::Call;
use super::render::Render;
use super::CurrentCore;
use crate::signing::{Audited, Refusal};

/// Handles the `POST /v1/{org}/SigningRequests/SubmitWithArtifact` and `POST /v1/{org}/SigningRequests` routes.
pub async fn submit(
    CurrentCore(core): CurrentCore,
    Path(organization): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // The audit record is begun from the request's head; the body is the artifact, streamed to disk by `receive`.
    let mut head = Request::new(Body::empty());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.headers_mut() = parts.headers.clone();
    *head.extensions_mut() = parts.extensions.clone();
    let call = match Call::from_request(head, &()).await {
        Ok(call) => call,
        Err(never) => match never {},
    };
    let upload = receive(
        &core,
        &organization,
        &parts.headers,
        body,
        &call.record.request_id,
    )
    .await;
    call.run(&core, move |core, incoming, record| {
        let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
        let submission = upload?;
        core.submit_artifact(
            &token_id,
            &submission,
            incoming.header(ORIGIN_TOKEN_HEADER),
            record,
        )
    })
    .await
}

/// Handles the `GET /v1/{org}/SigningRequests/{id}/SignedArtifact` route (400 until the request is completed).
pub async fn signed_artifact(
    CurrentCore(core): CurrentCore,
    Path((organization, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    download(core, organization, id, true, call).await
}

/// Handles the `GET /v1/{org}/SigningRequests/{id}/UnsignedArtifact` route.
pub async fn unsigned_artifact(
    CurrentCore(core): CurrentCore,
    Path((organization, id)): Path<(String, String)>,
    call: Call,
) -> Response {
    download(core, organization, id, false, call).await
}

async fn download(
    core: std::sync::Arc<crate::signing::Core>,
    organization: String,
    id: String,
    signed: bool,
    call: Call,
) -> Response {
    call.run(
        &core,
        move |core, incoming, record| -> Result<Download, Refusal> {
            let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
            let path = core.artifact_file(&token_id, &id, signed, record)?;
            let file = std::fs::File::open(&path).map_err(|e| {
                tracing::error!(error = %e, path = %path.display(), "cannot open the artifact");
                crate::signing::store_failure()
            })?;
            let length = file.metadata().map(|m| m.len()).unwrap_or_default();
            Ok(Download { file, length })
        },
    )
    .await
}

/// An artifact on its way to the client, streamed from its file.
struct Download {
    file: std::fs::File,
    length: u64,
}

impl Audited for Download {
    fn status(&self) -> u16 {
        200
    }
}

impl Render for Download {
    fn render(self) -> Response {
        let stream = ReaderStream::new(tokio::fs::File::from_std(self.file));
        let mut response = Response::new(Body::from_stream(stream));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.length));
        response
    }
}
