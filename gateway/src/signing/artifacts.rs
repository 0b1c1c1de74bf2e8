//! File-based signing requests (SignPath's `SubmitWithArtifact` and the older multipart `SigningRequests`): an
//! uploaded artifact, already on disk, goes through the same checks as a hash (authorization, origin, approval and
//! release groups, audit), is signed when allowed (an OCI image layout tarball, see `oci_artifact`), and its
//! request is polled and its artifacts downloaded by id. A fast-signing `payload.json` is answered at once
//! (`fast_signing`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::approval_gate::{Gate, Hold};
use super::oci_artifact::{check_layout, sign_checked_layout, signature_count, HsmSigner, LayoutRefusal};
use super::outcome::Answer;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::state::Policy;
use super::Core;
use crate::config::ArtifactConfigurationConfig;
use crate::store::artifacts::{unix_now, ArtifactRequest, ArtifactState};
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
        if submission.fast || result.is_err() {
            self.state.artifacts.discard(&request_id);
        }
        result
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
        let artifacts = &self.state.artifacts;
        let staging = artifacts.staging(&request_id);
        let reference = submission
            .parameters
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(common::protocol::IMAGE_REFERENCE_PARAMETER))
            .map(|(_, value)| value.as_str());
        let images = check_layout(
            &artifacts.unsigned(&request_id),
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
        };
        record.digest = Some(format!("sha256:{}", submission.sha256));
        record.metadata = Some(artifact_metadata(&request).to_string());

        let binding = self.check_origin(policy, origin_token, record)?;
        let request_json = json!({"artifactRequest": request_id}).to_string();
        let shown = request.images.join(", ");
        let digest = format!("sha256:{}", submission.sha256);
        let hold = Hold {
            request_json: &request_json,
            image: Some(&shown),
            digest: &digest,
            signatures: signature_count(&images, &configuration),
        };
        // The record is written first: a held request must be found by its id as soon as it is held.
        self.state.artifacts.put(&request).map_err(|_| store_failure())?;
        if self.approval_gate(policy, token_id, binding.as_deref(), hold, record)? == Gate::Sign {
            self.sign_artifact(policy, &configuration, &mut request, record)?;
        }
        let location = format!(
            "{}/v1/{}/SigningRequests/{request_id}",
            self.state.public_url, self.state.organization_id
        );
        let mut answer = Answer::json(&json!({
            "signingRequestId": request_id,
            "webLink": self.web_link(&request_id),
        }))?;
        answer.created = Some(location);
        self.state.artifacts.sweep();
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
                notary: "jws".into(),
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

    /// Signs the checked layout of `request` into its signed artifact and records it `Completed`.
    fn sign_artifact(
        &self,
        policy: &Policy,
        configuration: &ArtifactConfigurationConfig,
        request: &mut ArtifactRequest,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let artifacts = &self.state.artifacts;
        let staging = artifacts.staging(&request.request_id);
        let signer = HsmSigner {
            hsm: &self.state.signer,
            policy,
        };
        let signed = artifacts.signed(&request.request_id);
        let signatures = sign_checked_layout(&staging, &request.images, &signer, configuration, &signed)
            .map_err(|e| {
                tracing::error!(error = %e, request_id = %request.request_id, "signing the artifact failed");
                refuse(
                    Reason::HsmUnavailable,
                    "the artifact could not be signed; try again later",
                )
            })?;
        let _ = std::fs::remove_dir_all(&staging);
        record.algorithm = Some(format!("oci ({})", configuration.slug));
        let mut metadata = artifact_metadata(request);
        metadata["signatures"] = json!(signatures);
        record.metadata = Some(metadata.to_string());
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
            .state
            .artifacts
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
            ArtifactState::Completed => "Completed",
            ArtifactState::Failed => "Failed",
            ArtifactState::Waiting => "WaitingForApproval",
        };
        if request.state == ArtifactState::Waiting {
            let held = self.stores.approvals.get(id).map_err(|_| store_failure())?;
            match held.as_ref().map(|h| h.status) {
                Some(Status::Denied) => status = "Denied",
                Some(Status::Approved)
                    if held.as_ref().map_or(Ok(false), |h| self.still_approved(h))?
                        && self.stores.approvals.claim(id).map_err(|_| store_failure())? =>
                {
                    let Some(held) = held else { return Ok(None) };
                    record.approval = Some(format!("approved by {}", held.approved_by.join(", ")));
                    match self.sign_approved_artifact(&mut request, record) {
                        Ok(()) => {
                            status = "Completed";
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
        let final_status = matches!(status, "Completed" | "Failed" | "Denied");
        let workflow = match status {
            "Failed" => "ProcessingFailed",
            other => other,
        };
        let base = format!(
            "{}/v1/{}/SigningRequests/{id}",
            self.state.public_url, self.state.organization_id
        );
        let mut body = json!({
            "status": status,
            "workflowStatus": workflow,
            "isFinalStatus": final_status,
            "webLink": self.web_link(id),
        });
        if !status_only {
            body["signingRequestId"] = json!(id);
            body["description"] = json!(request.description);
            body["projectSlug"] = json!(request.project);
            body["signingPolicyId"] = json!(request.policy_id);
            body["signingPolicySlug"] = json!(request.policy);
            body["artifactConfigurationSlug"] = json!(request.artifact_configuration);
            body["parameters"] = json!(request.parameters);
            if !request.deleted {
                body["unsignedArtifactLink"] = json!(format!("{base}/UnsignedArtifact"));
                body["signedArtifactLink"] = json!(format!("{base}/SignedArtifact"));
            }
        }
        let mut answer = Answer::json(&body)?;
        answer.completes = completes;
        Ok(Some(answer))
    }

    fn sign_approved_artifact(
        &self,
        request: &mut ArtifactRequest,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let policy = self.authorize(&request.token_id, &request.project, &request.policy)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());
        let configuration = self.artifact_configuration(policy, Some(&request.artifact_configuration))?;
        self.sign_artifact(policy, &configuration, request, record)
    }

    /// The file of `GET .../SignedArtifact` (`signed`) or `.../UnsignedArtifact` of one of this token's requests.
    pub fn artifact_file(
        &self,
        token_id: &str,
        id: &str,
        signed: bool,
        record: &mut Record,
    ) -> Result<PathBuf, Refusal> {
        let request = self
            .state
            .artifacts
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
        if !signed {
            return Ok(self.state.artifacts.unsigned(id));
        }
        if request.state != ArtifactState::Completed {
            return Err(refuse(
                Reason::ArtifactNotSigned,
                "the signing request is not completed (poll GET SigningRequests/{id} until isFinalStatus); only a completed request has a signed artifact",
            ));
        }
        record.digest = Some(format!("sha256:{}", request.sha256));
        Ok(self.state.artifacts.signed(id))
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
