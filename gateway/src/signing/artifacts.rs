//! File-based signing requests (SignPath's `SubmitWithArtifact` and the older multipart `SigningRequests`): an
//! uploaded artifact, already on disk, goes through the same checks as a hash (authorization, origin, approval and
//! release groups, audit), is signed when allowed (an OCI image layout tarball, see `oci_artifact`), and its
//! request is polled and its artifacts downloaded by id, on any replica (`store::artifacts::Artifacts` keeps them
//! where every replica finds them). A fast-signing `payload.json` is answered at once (`fast_signing`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::protocol::{
    RequestStatus, SigningRequestData, SigningRequestStatus, SubmittedSigningRequest, WorkflowStatus,
};
use serde_json::json;

use super::approval_gate::{Gate, Hold};
use super::oci_artifact::{check_layout, sign_checked_layout, signature_count, HsmSigner, LayoutRefusal};
use super::outcome::Answer;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::state::Policy;
use super::Core;
use crate::config::ArtifactConfigurationConfig;
use crate::store::artifacts::{
    unix_now, ArtifactFile, ArtifactReader, ArtifactRequest, ArtifactState, Artifacts,
};
use crate::store::{Record, Status};

/// A file-based signing request as the HTTP layer parsed it; the artifact is already at
/// `state.artifacts.unsigned(request_id)`.
#[derive(Debug, Clone, Default)]
pub struct ArtifactSubmission {
    pub project: String,
    pub policy: String,
    pub artifact_configuration: Option<String>,
    pub description: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub origin: BTreeMap<String, String>,
    pub release_group: Option<String>,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub fast: bool,
    /// Set when the request is dropped (its timeout, or its client gone): work on it stops at its next check.
    pub cancel: Cancel,
    /// The ZIP archive the artifact came in, to answer the signed artifact in (`github_artifact`).
    pub archive: Option<String>,
    /// The GitHub workflow run the gateway verified through GitHub's API (`github_artifact`), the origin evidence
    /// in place of an identity token.
    pub github_run: Option<BTreeMap<String, String>>,
}

/// A request's cancellation, shared between the HTTP layer (which sets it when the request is dropped) and the
/// work the core does for it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

impl Core {
    /// `POST /v1/{org}/SigningRequests[/SubmitWithArtifact]` after authentication and the upload. Answers 201
    /// with the request's URL (signed at once, or held for approval), or, for a fast-signing request, the signed
    /// `payload.json`. A refused submission leaves nothing on disk.
    pub fn submit_artifact(
        &self,
        token_id: &str,
        submission: &ArtifactSubmission,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let request_id = record.request_id.clone();
        let result = self
            .check_claimed_origin(token_id, submission, origin_token, record)
            .and_then(|()| {
                if submission.fast {
                    self.fast_sign(token_id, submission, origin_token, record)
                } else {
                    self.submit_layout(token_id, submission, origin_token, record)
                }
            });
        if submission.fast {
            self.state.artifacts.discard(&request_id);
        } else if result.is_err() {
            self.artifacts().discard(&request_id);
        }
        result
    }

    /// The artifacts of file-based requests: this gateway's directory, and the store every replica shares.
    pub fn artifacts(&self) -> Artifacts<'_> {
        Artifacts::new(&self.state.artifacts, self.stores.artifacts.as_ref())
    }

    /// Whether token `token_id` may submit an artifact to `project/policy` (with `artifact_configuration`, if named):
    /// asked by the HTTP layer as the artifact part begins, so a token that may not sign with the policy never
    /// makes the gateway store its upload.
    pub fn authorize_upload(
        &self,
        token_id: &str,
        project: &str,
        policy: &str,
        artifact_configuration: Option<&str>,
    ) -> Result<(), Refusal> {
        let policy = self.authorize(token_id, project, policy)?;
        self.artifact_configuration(policy, artifact_configuration)
            .map(drop)
    }

    /// Where the policy verifies origin, the form's `Origin.*` parts must agree with the identity token
    /// (`claimed_origin`). A missing or invalid token is left to the path's own origin check, which refuses it.
    fn check_claimed_origin(
        &self,
        token_id: &str,
        submission: &ArtifactSubmission,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        if submission.origin.is_empty() {
            return Ok(());
        }
        let policy = self.authorize(token_id, &submission.project, &submission.policy)?;
        let Some(rule) = &policy.origin else {
            return Ok(());
        };
        let Ok(verified) = self.state.origins.verify(rule, origin_token) else {
            return Ok(());
        };
        let host = self.state.origins.repository_host(rule).unwrap_or_default();
        super::claimed_origin::check(&submission.origin, &verified, host).map_err(|reason| {
            record.project = Some(policy.project.clone());
            record.policy = Some(policy.slug.clone());
            record.origin = Some(verified.clone());
            refuse(Reason::OriginRejected, reason)
        })
    }

    fn submit_layout(
        &self,
        token_id: &str,
        submission: &ArtifactSubmission,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        record.project = Some(submission.project.clone());
        record.policy = Some(submission.policy.clone());
        record.release_group = submission.release_group.clone();
        let policy = self.authorize(token_id, &submission.project, &submission.policy)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());
        let configuration =
            self.artifact_configuration(policy, submission.artifact_configuration.as_deref())?;
        let request_id = record.request_id.clone();
        let artifacts = self.artifacts();
        let staging = artifacts.here().staging(&request_id);
        let reference = submission
            .parameters
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(common::protocol::IMAGE_REFERENCE_PARAMETER))
            .map(|(_, value)| value.as_str());
        let images = check_layout(
            &artifacts.here().unsigned(&request_id),
            &staging,
            reference,
            submission.cancel.flag(),
        )
        .map_err(|refusal| match refusal {
            LayoutRefusal::Invalid(reason) => refuse(Reason::InvalidArtifact, format!(
                    "{} is not an OCI image layout tarball the gateway can sign: {reason}",
                    submission.file_name
                ),
            ),
            LayoutRefusal::TooLarge(reason) => refuse(Reason::ArtifactTooLarge, format!(
                    "{} is more than the gateway signs in one request: {reason}",
                    submission.file_name
                ),
            ),
            LayoutRefusal::Cancelled => refuse(
                Reason::RequestTimedOut,
                "the request ended (request_timeout_seconds, or the client went away) while its layout was checked",
            ),
        })?;
        let mut request = ArtifactRequest {
            request_id: request_id.clone(),
            token_id: token_id.to_owned(),
            project: policy.project.clone(),
            policy: policy.slug.clone(),
            policy_id: policy.info.signing_policy_id.clone(),
            artifact_configuration: configuration.slug.clone(),
            file_name: submission.file_name.clone(),
            description: submission.description.clone(),
            parameters: submission.parameters.clone(),
            origin: submission.origin.clone(),
            size: submission.size,
            sha256: submission.sha256.clone(),
            submitted: unix_now(),
            images: images.iter().map(|i| i.reference.clone()).collect(),
            state: ArtifactState::Waiting,
            failure: None,
            deleted: false,
            archive: submission.archive.clone(),
            github_run: submission.github_run.clone(),
        };
        record.digest = Some(format!("sha256:{}", submission.sha256));
        record.metadata = Some(artifact_metadata(&request).to_string());

        let binding = self.check_origin(policy, origin_token, submission.github_run.as_ref(), record)?;
        let request_json = json!({"artifactRequest": request_id}).to_string();
        let shown = request.images.join(", ");
        let digest = format!("sha256:{}", submission.sha256);
        let hold = Hold {
            request_json: &request_json,
            image: Some(&shown),
            digest: &digest,
            signatures: signature_count(&images, &configuration),
        };
        // The upload, then the record, are written first: a held request must be found by its id, with its
        // artifact, as soon as it is held, on any replica.
        artifacts.keep(&request_id, ArtifactFile::Unsigned).map_err(|e| {
            tracing::error!(error = %e, "cannot store the artifact");
            store_failure()
        })?;
        artifacts.put(&request).map_err(|_| store_failure())?;
        if self.approval_gate(policy, token_id, binding.as_deref(), hold, record)? == Gate::Sign {
            self.sign_artifact(policy, &configuration, &mut request, record)?;
        }
        artifacts.release(&request_id);
        let location = format!(
            "{}/v1/{}/SigningRequests/{request_id}",
            self.state.public_url, self.state.organization_id
        );
        let mut answer = Answer::json(&SubmittedSigningRequest {
            web_link: Some(self.web_link(&request_id)),
            signing_request_id: request_id.clone(),
        })?;
        answer.created = Some(location);
        artifacts.sweep();
        Ok(answer)
    }

    /// The artifact configuration `slug` names (case-insensitively) in the policy's project, or its first; without
    /// any, a Notary Project JWS signature on each image.
    fn artifact_configuration(
        &self,
        policy: &Policy,
        slug: Option<&str>,
    ) -> Result<ArtifactConfigurationConfig, Refusal> {
        let mut configured = self
            .state
            .artifact_configurations
            .iter()
            .filter(|(project, _)| project.eq_ignore_ascii_case(&policy.project))
            .map(|(_, c)| c);
        let found = match slug {
            Some(slug) => configured.find(|c| c.slug.eq_ignore_ascii_case(slug)),
            None => configured.next(),
        };
        match (found, slug) {
            (Some(c), _) => Ok(c.clone()),
            (None, None) => Ok(ArtifactConfigurationConfig {
                slug: "Default".into(),
                notary: crate::config::NotaryEnvelope::Jws,
                cosign: false,
                each_platform: false,
                signing_scheme: Default::default(),
            }),
            (None, Some(slug)) if slug.eq_ignore_ascii_case("default") => {
                self.artifact_configuration(policy, None)
            }
            (None, Some(slug)) => Err(refuse(
                Reason::UnknownArtifactConfiguration,
                format!(
                    "project {} has no artifact configuration {slug:?}",
                    policy.project
                ),
            )),
        }
    }

    /// Signs the checked layout of `request` into its signed artifact, stores it and records the request
    /// `Completed`.
    fn sign_artifact(
        &self,
        policy: &Policy,
        configuration: &ArtifactConfigurationConfig,
        request: &mut ArtifactRequest,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let artifacts = self.artifacts();
        let staging = artifacts.here().staging(&request.request_id);
        let signer = HsmSigner {
            hsm: &self.state.signer,
            policy,
        };
        let signed = artifacts.here().signed(&request.request_id);
        let signatures = sign_checked_layout(&staging, &request.images, &signer, configuration, &signed)
            .map_err(|e| {
                tracing::error!(error = %e, request_id = %request.request_id, "signing the artifact failed");
                refuse(
                    Reason::HsmUnavailable,
                    "the artifact could not be signed; try again later",
                )
            })?;
        let _ = std::fs::remove_dir_all(&staging);
        if request.archive.is_some() {
            super::artifact_zip::zip_signed(&signed, &request.file_name).map_err(|e| {
                tracing::error!(error = %e, request_id = %request.request_id, "cannot pack the signed artifact");
                store_failure()
            })?;
        }
        record.algorithm = Some(format!("oci ({})", configuration.slug));
        let mut metadata = artifact_metadata(request);
        metadata["signatures"] = json!(signatures);
        record.metadata = Some(metadata.to_string());
        artifacts
            .keep(&request.request_id, ArtifactFile::Signed)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot store the signed artifact");
                store_failure()
            })?;
        request.state = ArtifactState::Completed;
        artifacts.put(request).map_err(|_| store_failure())
    }

    /// `GET /v1/{org}/SigningRequests/{id}` (or `/Status`) of a file-based request, if `id` is one of this
    /// token's; the first poll after its approval signs it.
    pub(super) fn artifact_status(
        &self,
        token_id: &str,
        id: &str,
        status_only: bool,
        record: &mut Record,
    ) -> Result<Option<Answer>, Refusal> {
        let Some(mut request) = self
            .artifacts()
            .get(id)
            .map_err(|_| store_failure())?
            .filter(|r| r.token_id == token_id)
        else {
            return Ok(None);
        };
        record.project = Some(request.project.clone());
        record.policy = Some(request.policy.clone());
        let mut completes = None;
        let mut status = match request.state {
            ArtifactState::Completed => RequestStatus::Completed,
            ArtifactState::Failed => RequestStatus::Failed,
            ArtifactState::Waiting => RequestStatus::WaitingForApproval,
        };
        if request.state == ArtifactState::Waiting {
            let held = self.stores.approvals.get(id).map_err(|_| store_failure())?;
            match held.as_ref().map(|h| h.status) {
                Some(Status::Denied) => status = RequestStatus::Denied,
                Some(Status::Approved)
                    if held.as_ref().map_or(Ok(false), |h| self.still_approved(h))?
                        && self.stores.approvals.claim(id).map_err(|_| store_failure())? =>
                {
                    let Some(held) = held else { return Ok(None) };
                    record.approval = Some(format!("approved by {}", held.approved_by.join(", ")));
                    match self.sign_approved_artifact(&mut request, record) {
                        Ok(()) => {
                            status = RequestStatus::Completed;
                            completes = Some(id.to_owned());
                        }
                        Err(refusal) => {
                            self.stores.approvals.unclaim(id).map_err(|_| store_failure())?;
                            return Err(refusal);
                        }
                    }
                }
                _ => {}
            }
        }
        let web_link = Some(self.web_link(id));
        let mut answer = if status_only {
            let mut document = SigningRequestStatus::new(status, web_link);
            document.workflow_status = Some(workflow_status(status));
            // The artifact came with the request: the gateway has held it from the start.
            document.artifact_retrieved = Some(true);
            Answer::json(&document)?
        } else {
            let base = format!(
                "{}/v1/{}/SigningRequests/{id}",
                self.state.public_url, self.state.organization_id
            );
            let link = |file: &str| (!request.deleted).then(|| format!("{base}/{file}"));
            Answer::json(&SigningRequestData {
                status,
                is_final_status: status.is_final(),
                workflow_status: workflow_status(status),
                description: request.description.clone(),
                project_id: None,
                project_slug: request.project.clone(),
                project_name: None,
                artifact_configuration_id: None,
                artifact_configuration_slug: request.artifact_configuration.clone(),
                artifact_configuration_name: None,
                signing_policy_id: request.policy_id.clone(),
                signing_policy_slug: request.policy.clone(),
                signing_policy_name: None,
                unsigned_artifact_link: link("UnsignedArtifact"),
                signed_artifact_link: link("SignedArtifact"),
                origin: None,
                parameters: request.parameters.clone(),
                web_link,
                signing_request_id: Some(id.to_owned()),
            })?
        };
        answer.completes = completes;
        Ok(Some(answer))
    }

    /// Signs an approved request, on whichever replica polled it: the layout checked at submission is unpacked
    /// again here if it is not here (the request was submitted to another replica, or held long enough for this
    /// gateway to let go of its working files).
    fn sign_approved_artifact(
        &self,
        request: &mut ArtifactRequest,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let policy = self.authorize(&request.token_id, &request.project, &request.policy)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());
        let configuration = self.artifact_configuration(policy, Some(&request.artifact_configuration))?;
        let artifacts = self.artifacts();
        let signed = unpack_held(&artifacts, &request.request_id)
            .and_then(|()| self.sign_artifact(policy, &configuration, request, record));
        artifacts.release(&request.request_id);
        signed
    }

    /// The file of `GET .../SignedArtifact` (`signed`) or `.../UnsignedArtifact` of one of this token's requests,
    /// and the name to download it as (the artifact's; the ZIP's it came in, for a signed GitHub artifact).
    pub fn artifact_file(
        &self,
        token_id: &str,
        id: &str,
        signed: bool,
        record: &mut Record,
    ) -> Result<(ArtifactReader, String), Refusal> {
        let artifacts = self.artifacts();
        let request = artifacts
            .get(id)
            .map_err(|_| store_failure())?
            .filter(|r| r.token_id == token_id)
            .ok_or_else(|| {
                refuse(
                    Reason::UnknownSigningRequest,
                    format!("no file-based signing request {id} of this token"),
                )
            })?;
        record.project = Some(request.project.clone());
        record.policy = Some(request.policy.clone());
        if request.deleted {
            return Err(refuse(
                Reason::ArtifactDeleted,
                "the artifacts of this signing request have been deleted after the retention period",
            ));
        }
        let open = |file| {
            artifacts.open(id, file).map_err(|e| {
                tracing::error!(error = %e, request_id = id, "cannot open the artifact");
                store_failure()
            })
        };
        if !signed {
            return Ok((open(ArtifactFile::Unsigned)?, request.file_name));
        }
        if request.state != ArtifactState::Completed {
            return Err(refuse(
                Reason::ArtifactNotSigned,
                "the signing request is not completed (poll GET SigningRequests/{id} until isFinalStatus); only a completed request has a signed artifact",
            ));
        }
        record.digest = Some(format!("sha256:{}", request.sha256));
        let name = request.archive.unwrap_or(request.file_name);
        Ok((open(ArtifactFile::Signed)?, name))
    }
}

/// The checked layout of held request `request_id`, unpacked in this gateway's directory from its upload (fetched
/// from the shared store if it was submitted elsewhere) unless it is there already.
fn unpack_held(artifacts: &Artifacts<'_>, request_id: &str) -> Result<(), Refusal> {
    let staging = artifacts.here().staging(request_id);
    if staging.is_dir() {
        return Ok(());
    }
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, request_id, "cannot unpack the held artifact");
        store_failure()
    };
    let tarball = artifacts.fetch_unsigned(request_id).map_err(|e| failed(&e))?;
    std::fs::create_dir_all(&staging).map_err(|e| failed(&e))?;
    signpath_oci::tarball::unpack_file(&tarball, &staging).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        failed(&e)
    })
}

/// The workflow status of a file-based request at `status`: the gateway neither retrieves artifacts nor scans
/// them, so a request is processed straight from waiting for approval; a failure is SignPath's `ProcessingFailed`.
fn workflow_status(status: RequestStatus) -> WorkflowStatus {
    match status {
        RequestStatus::InProgress => WorkflowStatus::Processing,
        RequestStatus::WaitingForApproval => WorkflowStatus::WaitingForApproval,
        RequestStatus::Completed => WorkflowStatus::Completed,
        RequestStatus::Failed => WorkflowStatus::ProcessingFailed,
        RequestStatus::Denied => WorkflowStatus::Denied,
        RequestStatus::Canceled => WorkflowStatus::Canceled,
        RequestStatus::Unknown => WorkflowStatus::Unknown,
    }
}

/// What the audit record says about an artifact: the file, its hash, and every image with its digest.
fn artifact_metadata(request: &ArtifactRequest) -> serde_json::Value {
    json!({"artifact": {
        "fileName": request.file_name,
        "sha256": request.sha256,
        "size": request.size,
        "artifactConfiguration": request.artifact_configuration,
        "images": request.images,
    },
    "description": request.description,
    "parameters": request.parameters,
    "origin": request.origin})
}
