//! The transparency log over HTTP (c2sp.org/tlog-tiles at the gateway's public URL, as Rekor v2 serves its log):
//! `GET /checkpoint` (the newest signed checkpoint), `GET /tile/<L>/<N>[.p/<W>]` (hash tiles), `GET
//! /tile/entries/<N>[.p/<W>]` (entry bundles), and `GET /log/entries/{requestId}` (a signature's leaf with its
//! inclusion proof and the checkpoint it is proven against). Everything here is public, as a log is: no token.
//! The reads write no audit record (a monitor polls the checkpoint every few seconds; reading signs nothing);
//! Rekor v2's upload, `POST /api/v2/log/entries` (`/api` folded off by `normalize`), writes one, as every API
//! request does, and answers only once its entry is in a signed checkpoint.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;

use super::call::Call;
use super::render::problem;
use super::CurrentCore;
use crate::signing::{refuse, Answer, Reason, Refusal};
use crate::store::log::KIND_REKOR;
use crate::tlog::rekor::{self, RekorError};
use crate::tlog::tiles::TilePath;
use crate::tlog::{tree, Sequencer, TlogError};

/// How long an upload waits for its entry to be sequenced (a few of the sequencer's turns).
const INTEGRATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The log's read routes; the log itself comes in as an extension (`serve` adds it).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/log/entries/{request_id}", get(entry))
}

/// The upload route; it runs through the core's call (body limit, audit record), so it needs its state.
pub fn upload_route() -> axum::routing::MethodRouter<Arc<crate::signing::LiveCore>> {
    axum::routing::post(add_entry)
}

/// Handles the `POST /api/v2/log/entries` route (Rekor v2): a `hashedRekordRequestV002` checked and logged, answered
/// 201 with its `TransparencyLogEntry` (inclusion proof and checkpoint) once sequenced.
async fn add_entry(
    CurrentCore(core): CurrentCore,
    Extension(log): Extension<Arc<Sequencer>>,
    call: Call,
) -> Response {
    call.run(&core, move |_, incoming, record| -> Result<Answer, Refusal> {
        let media_type = incoming.header("content-type").and_then(|v| v.split(';').next());
        if media_type.map(str::trim) != Some("application/json") {
            return Err(refuse(
                Reason::UnsupportedMediaType,
                "a Rekor v2 upload is a CreateEntryRequest as application/json",
            ));
        }
        let entry = rekor::checked_entry(&incoming.body).map_err(|e| match e {
            RekorError::Unsupported(_) => refuse(Reason::UnsupportedAlgorithm, e.to_string()),
            RekorError::Malformed(_) | RekorError::BadSignature => {
                refuse(Reason::MalformedRequest, e.to_string())
            }
        })?;
        record.hash_algorithm = Some("SHA-256".into());
        record.digest = Some(hex::encode(&entry.digest));
        let unavailable = |e: TlogError| {
            tracing::error!(error = %e, "a Rekor upload could not be logged");
            refuse(
                Reason::StoreUnavailable,
                "the transparency log cannot take the entry now; try again",
            )
        };
        log.store()
            .add(&record.request_id, KIND_REKOR, &entry.body)
            .map_err(|e| unavailable(e.into()))?;
        let integrated = log
            .integrated(&record.request_id, INTEGRATION_WAIT)
            .map_err(unavailable)?
            .ok_or_else(|| unavailable(TlogError::Tree("the entry was not sequenced in time".into())))?;
        let store = log.store();
        let proof = tree::inclusion(store, integrated.size, integrated.index).map_err(unavailable)?;
        let root = tree::root(store, integrated.size).map_err(unavailable)?;
        let proof: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
        record.metadata = Some(serde_json::json!({"logIndex": integrated.index}).to_string());
        let body = rekor::transparency_log_entry(
            log.key(),
            &entry.body,
            integrated.index,
            integrated.size,
            &root.0,
            &proof,
            &integrated.checkpoint,
        );
        let mut answer = Answer::done(body.to_string());
        answer.created = Some(format!("/log/entries/{}", record.request_id));
        Ok(answer)
    })
    .await
}

/// Handles the `GET /checkpoint` route: the newest checkpoint, a signed note.
async fn checkpoint(Extension(log): Extension<Arc<Sequencer>>) -> Response {
    let read = tokio::task::spawn_blocking(move || log.store().checkpoint()).await;
    match read {
        Ok(Ok(Some((_, note)))) => bytes(note.into_bytes(), "text/plain; charset=utf-8", "no-store"),
        Ok(Ok(None)) => refused(
            Reason::NoSuchRoute,
            "the log has no checkpoint yet; try again in a moment".into(),
        ),
        Ok(Err(e)) => failed(&TlogError::from(e)),
        Err(_) => failed(&TlogError::Store("the read was cut short".into())),
    }
}

/// Handles the `GET /tile/{*path}` route: a hash tile or an entry bundle, if the tree has it.
async fn tile(Extension(log): Extension<Arc<Sequencer>>, Path(path): Path<String>) -> Response {
    let path = format!("tile/{path}");
    let Some(tile) = TilePath::parse(&path) else {
        return refused(
            Reason::NoSuchRoute,
            format!("{path} is not a tile of this log (c2sp.org/tlog-tiles)"),
        );
    };
    let read = tokio::task::spawn_blocking(move || {
        let size = log.store().checkpoint()?.map_or(0, |(size, _)| size);
        tile.read(log.store(), size)
    })
    .await;
    match read {
        // A full tile never changes; a partial one grows into the next.
        Ok(Ok(Some(data))) if tile.is_full() => bytes(
            data,
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        ),
        Ok(Ok(Some(data))) => bytes(data, "application/octet-stream", "no-store"),
        Ok(Ok(None)) => refused(Reason::NoSuchRoute, format!("the log has no {path} yet")),
        Ok(Err(e)) => failed(&e),
        Err(_) => failed(&TlogError::Store("the read was cut short".into())),
    }
}

/// A signature's place in the log, as `GET /log/entries/{requestId}` answers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryProof {
    pub log_index: u64,
    /// The leaf (base64): the canonical JSON of the signature record's signing facts, or a Rekor entry.
    pub body: String,
    pub tree_size: u64,
    /// The tree's root at `tree_size` (base64).
    pub root_hash: String,
    /// The RFC 6962 audit path from the leaf to the root, leaf side first (base64 each).
    pub hashes: Vec<String>,
    /// The checkpoint of `tree_size` leaves, which signs `root_hash`.
    pub checkpoint: String,
}

/// Handles the `GET /log/entries/{requestId}` route.
async fn entry(Extension(log): Extension<Arc<Sequencer>>, Path(request_id): Path<String>) -> Response {
    let read = tokio::task::spawn_blocking(move || -> Result<Option<EntryProof>, TlogError> {
        let store = log.store();
        let Some(leaf) = store.leaf(&request_id)? else {
            return Ok(None);
        };
        let Some(index) = leaf.index else { return Ok(None) };
        let Some((size, checkpoint)) = store.checkpoint()? else {
            return Ok(None);
        };
        let proof = tree::inclusion(store, size, index)?;
        let root = tree::root(store, size)?;
        Ok(Some(EntryProof {
            log_index: index,
            body: STANDARD.encode(&leaf.body),
            tree_size: size,
            root_hash: STANDARD.encode(root.0),
            hashes: proof.iter().map(|h| STANDARD.encode(h.0)).collect(),
            checkpoint,
        }))
    })
    .await;
    match read {
        Ok(Ok(Some(proof))) => match serde_json::to_vec(&proof) {
            Ok(body) => bytes(body, "application/json", "no-store"),
            Err(e) => failed(&TlogError::Tree(e.to_string())),
        },
        Ok(Ok(None)) => refused(
            Reason::NoSuchRoute,
            "the log has no sequenced entry of this request (not a signature, or not sequenced yet: try again in a moment)".into(),
        ),
        Ok(Err(e)) => failed(&e),
        Err(_) => failed(&TlogError::Store("the read was cut short".into())),
    }
}

fn bytes(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn refused(reason: Reason, detail: String) -> Response {
    problem(&refuse(reason, detail), &uuid::Uuid::new_v4().to_string())
}

/// The log could not be read: logged in full, answered as the store's unavailability.
fn failed(e: &TlogError) -> Response {
    tracing::error!(error = %e, "the transparency log could not be read");
    let mut response = refused(
        Reason::StoreUnavailable,
        "the transparency log cannot be read now; try again".into(),
    );
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}
