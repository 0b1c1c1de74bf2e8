//! SignPath's `SigningRequests` resource on the hash-signing path: submit a digest (`SignHash`) and poll a
//! request (`{id}`, `{id}/Status`).

use axum::extract::Path;
use axum::response::Response;
use common::protocol::ORIGIN_TOKEN_HEADER;

use super::call::Call;
use super::CurrentCore;
use crate::signing::{refuse, Reason};

/// Handles the `POST /v1/{org}/SigningRequests/SignHash` route.
pub async fn sign_hash(
    CurrentCore(core): CurrentCore,
    Path(organization): Path<String>,
    call: Call,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
        if !incoming
            .header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
        {
            return Err(refuse(
                Reason::UnsupportedMediaType,
                "send the request as Content-Type: application/json",
            ));
        }
        core.sign_hash(
            &token_id,
            &incoming.body,
            incoming.header(ORIGIN_TOKEN_HEADER),
            record,
        )
    })
    .await
}

/// Handles the `GET /v1/{org}/SigningRequests/{id}` route: the request, with its signature once it has one.
pub async fn signing_request(core: CurrentCore, path: Path<(String, String)>, call: Call) -> Response {
    poll(core, path, call, false).await
}

/// Handles the `GET /v1/{org}/SigningRequests/{id}/Status` route: where the request stands.
pub async fn status(core: CurrentCore, path: Path<(String, String)>, call: Call) -> Response {
    poll(core, path, call, true).await
}

async fn poll(
    CurrentCore(core): CurrentCore,
    Path((organization, id)): Path<(String, String)>,
    call: Call,
    status_only: bool,
) -> Response {
    call.run(&core, move |core, incoming, record| {
        let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
        core.request_status(&token_id, &id, status_only, record)
    })
    .await
}
