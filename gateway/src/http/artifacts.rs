//! SignPath's file-based `SigningRequests` routes: submit an artifact (`SubmitWithArtifact`, and the older
//! multipart `POST SigningRequests` with `IsFastSigningRequest` for hashes) and download a request's artifacts
//! (`SignedArtifact`, `UnsignedArtifact`). Polling (`GET SigningRequests/{id}`) is the hash path's route: the core
//! answers for either kind of request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use common::protocol::ORIGIN_TOKEN_HEADER;

use super::artifact_upload::receive;
use super::call::Call;
use super::render::Render;
use super::CurrentCore;
use crate::signing::{refuse, Answer, Audited, Cancel, Core, Reason, Refusal};
use crate::store::artifacts::ArtifactReader;
use crate::store::Record;

/// What a submission leaves behind if its request is dropped (answered 408 by the request timeout, or its client
/// gone) before the core has taken it over: the upload's directory is removed and the request gets its audit record,
/// through the core like every other. Dropped at any point, it also cancels the work under way, which stops at
/// its next check (the walk of an OCI layout) and is audited as refused.
pub(super) struct Abandoned {
    pub(super) core: Arc<Core>,
    /// The request's record while the upload is read; `None` once the core has the request.
    pub(super) record: Option<Record>,
    pub(super) cancel: Cancel,
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
    let call = call_of_head(&parts).await;
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

/// The call of a request whose body its handler reads itself (an artifact streamed to disk, a form): its audit
/// record begun from the head alone.
pub(super) async fn call_of_head(parts: &Parts) -> Call {
    let mut head = Request::new(Body::empty());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.headers_mut() = parts.headers.clone();
    *head.extensions_mut() = parts.extensions.clone();
    match Call::from_request(head, &()).await {
        Ok(call) => call,
        Err(never) => match never {},
    }
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
            let (artifact, name) = core.artifact_file(&token_id, &id, signed, record)?;
            Ok(Download { artifact, name })
        },
    )
    .await
}

/// An artifact on its way to the client, streamed from where it is kept.
struct Download {
    artifact: ArtifactReader,
    /// The artifact's name, for `Content-Disposition` (SignPath's GitHub Action saves the file under it).
    name: String,
}

impl Audited for Download {
    fn status(&self) -> u16 {
        200
    }
}

impl Render for Download {
    fn render(self) -> Response {
        let length = self.artifact.length;
        let mut response = Response::new(Body::from_stream(self.artifact.into_stream()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if let Ok(value) = HeaderValue::from_str(&content_disposition(&self.name)) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        response
    }
}

/// `attachment` with the file name twice (RFC 6266): `filename` in printable ASCII for every client, `filename*`
/// exact in UTF-8 (RFC 8187), which clients that know it prefer. Written here rather than with a crate: the
/// encoding is RFC 8187's `attr-char` set and nothing more.
fn content_disposition(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = if base.is_empty() { "artifact" } else { base };
    let plain: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in base.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn the_file_name_goes_plain_and_exact() {
        assert_eq!(
            content_disposition("image.tar"),
            "attachment; filename=\"image.tar\"; filename*=UTF-8''image.tar"
        );
        assert_eq!(
            content_disposition("my \"app\" ü.zip"),
            "attachment; filename=\"my _app_ _.zip\"; filename*=UTF-8''my%20%22app%22%20%C3%BC.zip"
        );
        assert_eq!(
            content_disposition("../../etc/passwd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
    }
}
