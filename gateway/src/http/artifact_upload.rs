//! Receiving a file-based signing request: SignPath's multipart form (part names case-insensitive, PascalCase as
//! its PowerShell module and jsign send them, camelCase as its current docs write them), parsed as it streams
//! with the artifact written to the request's directory and hashed on the way, so no artifact is ever held in
//! memory whole. A body larger than the artifact limit is refused from its `Content-Length`, before any byte of
//! it is read, and an artifact that grows past the limit while streaming is refused and deleted.
//!
//! Nothing is written before the token is known to be a submitter of the policy the form names (and the artifact
//! configuration, if named, exists): the parts naming them come before the artifact, as SignPath's clients send
//! them, and a form whose artifact comes first is refused (400) rather than stored on the strength of any token.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::signing::{refuse, ArtifactSubmission, Core, Reason, Refusal};

/// The form fields beside the artifact are short; a longer one is not a SignPath field.
const MAX_FIELD: usize = 64 * 1024;
/// Room for the form's fields and boundaries beside the artifact itself.
const FORM_OVERHEAD: u64 = 1024 * 1024;
const MAX_FIELDS: usize = 256;

/// Reads the form of request `request_id` of token `token_id` (authenticated by the caller) into an
/// [`ArtifactSubmission`], its artifact into the artifact store once the token is authorized for the policy the
/// form names. On any failure the request's directory is removed.
pub async fn receive(
    core: &Core,
    token_id: &str,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<ArtifactSubmission, Refusal> {
    let store = &core.state.artifacts;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        refuse(
            Reason::UnsupportedMediaType,
            "send the signing request as Content-Type: multipart/form-data with the artifact in the Artifact part",
        )
    })?;
    let too_large = || {
        refuse(
            Reason::BodyTooLarge,
            format!(
                "the artifact is larger than this gateway's limit of {} bytes",
                store.max_size
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > store.max_size.saturating_add(FORM_OVERHEAD)) {
        return Err(too_large());
    }
    let result = read_form(core, token_id, body, boundary, request_id).await;
    if result.is_err() {
        store.discard(request_id);
    }
    result
}

async fn read_form(
    core: &Core,
    token_id: &str,
    body: Body,
    boundary: String,
    request_id: &str,
) -> Result<ArtifactSubmission, Refusal> {
    let store = &core.state.artifacts;
    let malformed = |detail: String| refuse(Reason::MalformedRequest, detail);
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(store.max_size.saturating_add(FORM_OVERHEAD)));
    let mut form = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut submission = ArtifactSubmission::default();
    let (mut project, mut policy, mut policy_id, mut artifact) = (None, None, None, false);
    let mut fields = 0;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| form_error(&e, store.max_size))?
    {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(malformed(format!("the form has more than {MAX_FIELDS} parts")));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let lower = name.to_ascii_lowercase();
        if lower == "artifact" {
            if artifact {
                return Err(malformed("the form has more than one Artifact part".into()));
            }
            artifact = true;
            submission.file_name = field.file_name().unwrap_or("artifact").to_owned();
            (submission.project, submission.policy) = named_policy(core, &policy_id, &project, &policy)?;
            core.authorize_upload(
                token_id,
                &submission.project,
                &submission.policy,
                submission.artifact_configuration.as_deref(),
            )?;
            store.create(request_id).map_err(|e| {
                tracing::error!(error = %e, "cannot create the artifact directory");
                crate::signing::store_failure()
            })?;
            let path = store.unsigned(request_id);
            let mut file = tokio::fs::File::create(&path).await.map_err(|e| {
                tracing::error!(error = %e, "cannot write the artifact");
                crate::signing::store_failure()
            })?;
            let mut hash = sha2::Sha256::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| form_error(&e, store.max_size))? {
                submission.size += chunk.len() as u64;
                if submission.size > store.max_size {
                    return Err(refuse(
                        Reason::BodyTooLarge,
                        format!(
                            "the artifact is larger than this gateway's limit of {} bytes",
                            store.max_size
                        ),
                    ));
                }
                hash.update(&chunk);
                file.write_all(&chunk).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot write the artifact");
                    crate::signing::store_failure()
                })?;
            }
            file.sync_all()
                .await
                .map_err(|_| crate::signing::store_failure())?;
            submission.sha256 = hex::encode(hash.finalize());
            continue;
        }
        let value = read_text(&mut field, &name).await?;
        if artifact
            && matches!(
                lower.as_str(),
                "projectslug" | "signingpolicyslug" | "signingpolicyid"
            )
        {
            return Err(malformed(format!(
                "the form's {name} part comes after its Artifact part; send the parts that name the policy first"
            )));
        }
        match lower.as_str() {
            "projectslug" => project = Some(value),
            "signingpolicyslug" => policy = Some(value),
            "artifactconfigurationslug" => submission.artifact_configuration = Some(value).filter(|v| !v.is_empty()),
            "description" => submission.description = Some(value),
            "releasegroup" => submission.release_group = Some(value).filter(|v| !v.is_empty()),
            "isfastsigningrequest" => submission.fast = value.eq_ignore_ascii_case("true"),
            "signingpolicyid" => policy_id = Some(value),
            "artifactconfigurationid" => {
                return Err(malformed(format!(
                    "{name}: this gateway names artifact configurations by slug; send ArtifactConfigurationSlug, or \
                     nothing for the project's default"
                )))
            }
            _ => {
                if let Some(parameter) = name
                    .get(..11)
                    .filter(|p| p.eq_ignore_ascii_case("parameters."))
                    .map(|_| &name[11..])
                    .or_else(|| {
                        name.get(..11)
                            .filter(|p| p.eq_ignore_ascii_case("parameters["))
                            .and_then(|_| name[11..].strip_suffix(']'))
                    })
                {
                    submission.parameters.insert(parameter.to_owned(), value);
                } else if name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("origin.")) {
                    submission.origin.insert(name[7..].to_owned(), value);
                } else {
                    return Err(malformed(format!("the form has a part {name:?} that SignPath's API does not know")));
                }
            }
        }
    }
    if !artifact {
        return Err(malformed("the form has no Artifact part".into()));
    }
    Ok(submission)
}

/// The (project, policy) the parts read so far name: by `SigningPolicyId`, or by `ProjectSlug` and
/// `SigningPolicySlug`, never both (SignPath: "use either slugs or IDs, don't mix").
fn named_policy(
    core: &Core,
    policy_id: &Option<String>,
    project: &Option<String>,
    policy: &Option<String>,
) -> Result<(String, String), Refusal> {
    let malformed = |detail: &str| refuse(Reason::MalformedRequest, detail);
    match (policy_id, project, policy) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(malformed(
            "the form names the policy both by SigningPolicyId and by slugs; send one or the other",
        )),
        (Some(id), None, None) => core.policy_named_by_id(id),
        (None, Some(project), Some(policy)) => Ok((project.clone(), policy.clone())),
        (None, _, _) => Err(malformed(
            "the form's Artifact part comes before its ProjectSlug and SigningPolicySlug parts (or SigningPolicyId); \
             send the parts that name the policy first, as SignPath's clients do: the gateway checks the token's \
             rights before it stores an artifact",
        )),
    }
}

/// A text part, up to [`MAX_FIELD`] bytes; a file part other than the artifact (`Origin.BuildData.BuildSettingsFile`)
/// is kept by name and size only.
async fn read_text(field: &mut multer::Field<'_>, name: &str) -> Result<String, Refusal> {
    let file_name = field.file_name().map(str::to_owned);
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| refuse(Reason::MalformedRequest, format!("cannot read the form: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_FIELD {
            return Err(refuse(
                Reason::BodyTooLarge,
                format!("the form part {name:?} is longer than {MAX_FIELD} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if let Some(file_name) = file_name {
        return Ok(format!("{file_name} ({} bytes)", bytes.len()));
    }
    String::from_utf8(bytes).map_err(|_| {
        refuse(
            Reason::MalformedRequest,
            format!("the form part {name:?} is not UTF-8 text"),
        )
    })
}

fn form_error(error: &multer::Error, limit: u64) -> Refusal {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => refuse(
            Reason::BodyTooLarge,
            format!("the artifact is larger than this gateway's limit of {limit} bytes"),
        ),
        other => refuse(
            Reason::MalformedRequest,
            format!("cannot read the multipart form: {other}"),
        ),
    }
}
