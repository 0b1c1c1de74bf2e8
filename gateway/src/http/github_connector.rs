//! SignPath's GitHub connector on the gateway, for SignPath's GitHub Action with `connector-url` set to the
//! gateway's URL (docs/github-actions.md). v2 posts to `{connector}/{organizationId}/SigningRequests` (API token
//! as bearer), polls `.../SigningRequests/{id}/Status` and downloads `.../SignedArtifact`; v1 posts to
//! `{connector}/api/sign` (API token and organization in the body) and then polls the SignPath API on the host of
//! the `signingRequestUrl` it is given, which is this gateway's `/v1/...` routes.
//!
//! The core fetches the artifact from GitHub (`signing::github_artifact`) and submits it on the file-based path;
//! this file parses, renders in the connector's shapes, and nothing else. The GitHub token in the body is passed
//! to the core for GitHub's API and goes nowhere else: not in the audit record, not in a log line.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use common::protocol::PROBLEM_JSON;
use serde_json::{json, Value};

use super::artifacts::{call_of_head, Abandoned};
use super::call::MAX_BODY;
use super::CurrentCore;
use crate::signing::github_artifact::ConnectorRequest;
use crate::signing::{refuse, Cancel, Core, Reason};

/// Handles v2's `POST {connector}/{organizationId}/SigningRequests`.
pub async fn submit(
    CurrentCore(core): CurrentCore,
    Path(organization): Path<String>,
    request: Request,
) -> Response {
    connector_submit(core, Some(organization), request).await
}

/// Handles v1's `POST {connector}/api/sign`.
pub async fn submit_v1(CurrentCore(core): CurrentCore, request: Request) -> Response {
    connector_submit(core, None, request).await
}

/// Submits the GitHub artifact a connector request names: `organization` from the path (v2) or, when `None`, from
/// the body with the API token (v1).
async fn connector_submit(core: Arc<Core>, organization: Option<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut call = call_of_head(&parts).await;
    let parsed = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => ConnectorRequest::parse(&bytes),
        Err(_) => Err(refuse(
            Reason::BodyTooLarge,
            format!("the request body is larger than {MAX_BODY} bytes, or could not be read"),
        )),
    };
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (organization, authorization) = match (organization, &parsed) {
        (Some(organization), _) => (organization, header),
        (None, Ok(request)) => (
            request.sign_path_organization_id.clone().unwrap_or_default(),
            request
                .sign_path_api_token
                .as_ref()
                .map(|token| format!("Bearer {}", token.expose())),
        ),
        (None, Err(_)) => (String::new(), None),
    };
    call.record.organization.clone_from(&organization);
    let mut fetch_record = call.record.clone();
    // Kept to the end of this handler: dropped with it (a timeout, the client gone), it removes what was
    // downloaded and audits the request.
    let mut abandoned = Abandoned {
        core: core.clone(),
        record: None,
        cancel: Cancel::default(),
    };
    // Nothing is fetched for a caller that does not authenticate; the core refuses it again below, and audits it.
    let fetched = match &parsed {
        Ok(request) => match core.authenticate(authorization.as_deref(), &organization, &mut fetch_record) {
            Ok(token_id) => {
                abandoned.record = Some(fetch_record);
                let fetched = core
                    .fetch_github_artifact(&token_id, request, &call.record.request_id)
                    .await;
                abandoned.record = None;
                Some(fetched)
            }
            Err(_) => None,
        },
        Err(_) => None,
    };
    let response = call
        .run(&core, move |core, _incoming, record| {
            parsed?;
            let token_id = core.authenticate(authorization.as_deref(), &organization, record)?;
            let submission =
                fetched.ok_or_else(|| refuse(Reason::Unauthenticated, "the token is not valid"))??;
            let mut answer = core.submit_artifact(&token_id, &submission, None, record)?;
            let id = record.request_id.clone();
            answer.body = json!({
                "signingRequestId": id,
                "signingRequestUrl": core.web_link(&id),
                "validationResult": {"errors": []},
                "logs": [{
                    "level": "Information",
                    "message": format!(
                        "The gateway verified the workflow run with GitHub and took {} ({})",
                        submission.description.as_deref().unwrap_or_default(),
                        submission.file_name
                    ),
                }],
            })
            .to_string();
            Ok(answer)
        })
        .await;
    drop(abandoned);
    connector_error(response).await
}

/// A refusal in the connector's shape: the problem document with `error` (the message the action fails the step
/// with), `validationResult` and `logs` beside its fields. Other answers pass unchanged.
async fn connector_error(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut document) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let detail = document["detail"].as_str().unwrap_or_default().to_owned();
    document["error"] = json!(detail);
    document["validationResult"] = json!({"errors": []});
    document["logs"] = json!([]);
    let body = document.to_string();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(parts, Body::from(body))
}
