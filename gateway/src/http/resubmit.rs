//! SignPath's `POST /v1/{org}/SigningRequests/Resubmit`: a form (`multipart/form-data`, as SignPath's PowerShell
//! module sends it) naming the original request (`originalSigningRequestId`), the policy to sign with
//! (`signingPolicySlug`) and optionally a `description`; part names case-insensitive. The core copies the original
//! and submits it (`signing::resubmit`).

use axum::extract::{Path, Request};
use axum::http::header;
use axum::response::Response;
use common::protocol::ORIGIN_TOKEN_HEADER;

use super::artifacts::call_of_head;
use super::call::MAX_BODY;
use super::CurrentCore;
use crate::signing::{refuse, Reason, Refusal, Resubmission};

/// Handles the `POST /v1/{org}/SigningRequests/Resubmit` route.
pub async fn resubmit(
    CurrentCore(core): CurrentCore,
    Path(organization): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let call = call_of_head(&parts).await;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let form = read_form(&content_type, body).await;
    call.run(&core, move |core, incoming, record| {
        let token_id = core.authenticate(incoming.header("authorization"), &organization, record)?;
        core.resubmit(&token_id, &form?, incoming.header(ORIGIN_TOKEN_HEADER), record)
    })
    .await
}

async fn read_form(content_type: &str, body: axum::body::Body) -> Result<Resubmission, Refusal> {
    let malformed = |detail: String| refuse(Reason::MalformedRequest, detail);
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        refuse(
            Reason::UnsupportedMediaType,
            "send the resubmission as Content-Type: multipart/form-data with the parts originalSigningRequestId and signingPolicySlug",
        )
    })?;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(MAX_BODY as u64));
    let mut form = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut resubmission = Resubmission::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| malformed(format!("cannot read the multipart form: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let value = field
            .text()
            .await
            .map_err(|e| malformed(format!("cannot read the form part {name:?}: {e}")))?;
        match name.to_ascii_lowercase().as_str() {
            "originalsigningrequestid" => resubmission.original_id = value,
            "signingpolicyslug" => resubmission.policy = value,
            "description" => resubmission.description = Some(value),
            _ => {
                return Err(malformed(format!(
                    "the form has a part {name:?} that SignPath's Resubmit does not know"
                )))
            }
        }
    }
    for (value, part) in [
        (&resubmission.original_id, "originalSigningRequestId"),
        (&resubmission.policy, "signingPolicySlug"),
    ] {
        if value.trim().is_empty() {
            return Err(malformed(format!("the form has no {part} part")));
        }
    }
    Ok(resubmission)
}
