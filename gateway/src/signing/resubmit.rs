//! SignPath's resubmission (`POST SigningRequests/Resubmit`, the PowerShell module's
//! `Submit-SigningRequest -Resubmit`): a new file-based request from one of the token's earlier ones, under another
//! policy of the same project. The artifact, its parameters and its origin are copied; the new policy's rights,
//! origin rule and approval apply as to any submission (https://docs.signpath.io/signing-code#resubmit).

use super::outcome::Answer;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::{ArtifactSubmission, Core};
use crate::store::Record;

/// A resubmission as the HTTP layer parsed it.
#[derive(Debug, Clone, Default)]
pub struct Resubmission {
    pub original_id: String,
    pub policy: String,
    pub description: Option<String>,
}

impl Core {
    /// Resubmits request `resubmission.original_id` of token `token_id` under `resubmission.policy`. The origin of
    /// the original counts where the gateway verified it (a GitHub workflow run); one proven by an identity token
    /// needs a token again (`origin_token`), as the original's has expired.
    pub fn resubmit(
        &self,
        token_id: &str,
        resubmission: &Resubmission,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let original_id = resubmission.original_id.trim();
        let original = self
            .state
            .artifacts
            .get(original_id)
            .map_err(|_| store_failure())?
            .filter(|r| r.token_id == token_id)
            .ok_or_else(|| {
                refuse(
                    Reason::UnknownSigningRequest,
                    format!("no file-based signing request {original_id} of this token to resubmit"),
                )
            })?;
        if original.deleted {
            return Err(refuse(
                Reason::ArtifactDeleted,
                "the artifacts of the original signing request have been deleted after the retention period; submit the artifact again",
            ));
        }
        self.authorize_upload(
            token_id,
            &original.project,
            &resubmission.policy,
            Some(&original.artifact_configuration),
        )?;
        let request_id = record.request_id.clone();
        let artifacts = &self.state.artifacts;
        artifacts
            .create(&request_id)
            .and_then(|_| {
                std::fs::copy(artifacts.unsigned(original_id), artifacts.unsigned(&request_id))
                    .map(drop)
                    .map_err(|e| crate::store::StoreError(e.to_string()))
            })
            .map_err(|e| {
                tracing::error!(error = %e, "cannot copy the original artifact");
                artifacts.discard(&request_id);
                store_failure()
            })?;
        let submission = ArtifactSubmission {
            project: original.project.clone(),
            policy: resubmission.policy.clone(),
            artifact_configuration: Some(original.artifact_configuration.clone()),
            description: resubmission
                .description
                .clone()
                .filter(|d| !d.is_empty())
                .or(original.description.clone()),
            parameters: original.parameters.clone(),
            origin: original.origin.clone(),
            file_name: original.file_name.clone(),
            size: original.size,
            sha256: original.sha256.clone(),
            archive: original.archive.clone(),
            github_run: original.github_run.clone(),
            ..ArtifactSubmission::default()
        };
        let answer = self.submit_artifact(token_id, &submission, origin_token, record)?;
        // The audit record names the request it was resubmitted from, as SignPath's audit log does.
        let mut metadata: serde_json::Value = record
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        metadata["originalSigningRequestId"] = serde_json::json!(original_id);
        record.metadata = Some(metadata.to_string());
        Ok(answer)
    }
}
