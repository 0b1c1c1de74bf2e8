//! SignPath's file-based `SigningRequests` routes: submit an artifact (`SubmitWithArtifact`, and the older
//! multipart `POST SigningRequests` with `IsFastSigningRequest` for hashes) and download a request's artifacts
//! (`SignedArtifact`, `UnsignedArtifact`). Polling (`GET SigningRequests/{id}`) is the hash path's route: the core
//! answers for either kind of request.

use std::sync::Arc;

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
use crate::signing::{refuse, Answer, Audited, Cancel, Core, Reason, Refusal};
use crate::store::Record;

/// What a submission leaves behind if its request is dropped (answered 408 by the request timeout, or its client
/// gone) before the core has taken it over: the upload's directory is removed and the request gets its audit record,
/// through the core like every other. Dropped at any point, it also cancels the work under way, which stops at
/// its next check (the walk of an OCI layout) and is audited as refused.
struct Abandoned {
    core: Arc<Core>,
    /// The request's record while the upload is read; `None` once the core has the request.
    record: Option<Record>,
    cancel: Cancel,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.cancel.cancel();
        let Some(record) = self.record.take() else {
            return;
        };
        let core = self.core.clone();
        let clean_up = move || {
            core.state.artifacts.discard(&record.request_id);
            let _ = core.finish(
                record,
                Err::<Answer, _>(refuse(
                    Reason::RequestTimedOut,
                    "the request ended (request_timeout_seconds, or the client went away) before its artifact was received; the partial upload was deleted",
                )),
            );
        };
        // Drop runs on the runtime's thread; removing files and writing the audit record block.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(clean_up)),
            Err(_) => clean_up(),
        }
    }
}

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
    let mut upload_record = call.record.clone();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Kept to the end of this handler: dropped with it (a timeout), it cleans up and cancels the work.
    let mut abandoned = Abandoned {
        core: core.clone(),
        record: None,
        cancel: Cancel::default(),
    };
    // A caller that does not authenticate sends nothing to disk; the core refuses it again below, and audits it.
    let upload = match core.authenticate(authorization, &organization, &mut upload_record) {
        Ok(token_id) => {
            abandoned.record = Some(upload_record);
            let received = receive(&core, &token_id, &parts.headers, body, &call.record.request_id).await;
            abandoned.record = None;
            Some(received.map(|mut submission| {
                submission.cancel = abandoned.cancel.clone();
                submission
            }))
        }
        Err(_) => None,
    };
    let response = call
        .run(&core, move |core, incoming, record| {
            let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
            let upload = upload.ok_or_else(|| refuse(Reason::Unauthenticated, "the token is not valid"))?;
            let submission = upload?;
            core.submit_artifact(
                &token_id,
                &submission,
                incoming.header(ORIGIN_TOKEN_HEADER),
                record,
            )
        })
        .await;
    drop(abandoned);
    response
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
