//! The approval of a CI run by the `[keyless]` rule that admits it (docs/keyless.md, "Approval"): the run's first
//! certificate request is held for the rule's approvers as a held request of project `keyless`, policy the rule's
//! issuer, whose id is derived from the run, so every later request of the same run finds it. The approvers vote
//! on it as on a policy's request (`votes.rs`, the web page, `approve`); once it is approved, every certificate
//! request of the run gets its certificate, for any key it proves it holds: cosign makes a fresh key each time.

use sha2::Digest as _;

use super::origin::VerifiedToken;
use super::refusal::{refuse, store_failure, store_unavailable, Reason, Refusal};
use super::Core;
use crate::config::KEYLESS_PROJECT;
use crate::store::{Held, NewHeld, Record, Status};

/// A CI run as its verified token names it: the issuer, the repository, the run and its attempt, and the workflow
/// of the job. GitHub Actions: `repository`, `run_id`, `run_attempt`, `job_workflow_ref`; GitLab CI:
/// `project_path`, `pipeline_id`, `ci_config_ref_uri` (a retried job is in the same pipeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    issuer: String,
    repository: String,
    run: String,
    attempt: Option<String>,
    workflow: String,
}

impl Run {
    /// The run `token` was issued for, or a refusal: a rule with approval admits CI runs only.
    pub(super) fn of(token: &VerifiedToken) -> Result<Self, Refusal> {
        let claim = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| token.claim(name).filter(|v| !v.is_empty()))
        };
        let (Some(repository), Some(run), Some(workflow)) = (
            claim(&["repository", "project_path"]),
            claim(&["run_id", "pipeline_id"]),
            claim(&["job_workflow_ref", "ci_config_ref_uri"]),
        ) else {
            return Err(refuse(
                Reason::IdentityNotAllowed,
                format!(
                    "the [keyless] rule for issuer {} requires a person's approval of the CI run, and the identity \
                     token names no run (repository, run_id and job_workflow_ref on GitHub; project_path, \
                     pipeline_id and ci_config_ref_uri on GitLab)",
                    token.issuer_name
                ),
            ));
        };
        Ok(Self {
            issuer: token.claim("iss").unwrap_or_default(),
            repository,
            run,
            attempt: claim(&["run_attempt"]),
            workflow,
        })
    }

    /// The id of the run's held request: the same for every token of the run, another for every other run (a new
    /// attempt is another run). A UUID, as every signing request id is.
    pub(super) fn request_id(&self) -> String {
        let identity = serde_json::json!([
            self.issuer,
            self.repository,
            self.run,
            self.attempt,
            self.workflow
        ]);
        let digest = sha2::Sha256::digest(identity.to_string().as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
    }

    /// The run as the approvers' page shows it.
    pub(super) fn describe(&self) -> String {
        let attempt = self
            .attempt
            .as_deref()
            .map(|a| format!(" attempt {a}"))
            .unwrap_or_default();
        format!(
            "{} run {}{attempt} ({})",
            self.repository, self.run, self.workflow
        )
    }
}

impl Core {
    /// Whether the CI run of `token`, admitted by a rule of `issuer` that requires approval, is approved: Ok if it
    /// is (under the approval in force now), else a refusal that says where it stands. Its first request holds it.
    pub(super) fn keyless_run_approved(
        &self,
        issuer: &str,
        token: &VerifiedToken,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let run = Run::of(token)?;
        let id = run.request_id();
        record.project = Some(KEYLESS_PROJECT.to_owned());
        record.policy = Some(issuer.to_owned());
        let held = match self.stores.approvals.get(&id).map_err(store_unavailable)? {
            Some(held) => held,
            None => return Err(self.hold_run(issuer, &run, &id, token, record)),
        };
        match held.status {
            Status::Pending => Err(self.run_waiting(issuer, &run, &id, record)),
            Status::Denied => Err(refuse(
                Reason::RunDenied,
                format!(
                    "CI run {} was denied by {}{} ({}): it gets no certificate; a new run is held for approval anew",
                    run.describe(),
                    held.denied_by.as_deref().unwrap_or("an approver"),
                    held.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                    self.web_link(&id),
                ),
            )),
            Status::Approved | Status::Signing | Status::Completed => {
                if !self.still_approved(&held)? {
                    return Err(self.run_waiting(issuer, &run, &id, record));
                }
                record.approval = Some(format!(
                    "CI run {id} approved by {}",
                    held.approved_by.join(", ")
                ));
                Ok(())
            }
        }
    }

    /// Holds the run's first request for the approvers, and says so.
    fn hold_run(
        &self,
        issuer: &str,
        run: &Run,
        id: &str,
        token: &VerifiedToken,
        record: &mut Record,
    ) -> Refusal {
        let Some(approval) = self.approval_in_force(KEYLESS_PROJECT, issuer) else {
            return refuse(Reason::Internal, "the [keyless] rule's approval is not in force");
        };
        let request = serde_json::json!({
            "issuer": run.issuer,
            "repository": run.repository,
            "run": run.run,
            "attempt": run.attempt,
            "workflow": run.workflow,
            "ref": token.claim("ref"),
        });
        let held = self.stores.approvals.hold(&NewHeld {
            request_id: id,
            token_id: &format!("ci:{}", run.repository),
            project: KEYLESS_PROJECT,
            policy: issuer,
            request_json: &request.to_string(),
            required: approval.required,
            approvers: &approval.approvers,
            release_group: None,
            binding: None,
            image: Some(&run.describe()),
            digest: &token.claim("sha").unwrap_or_default(),
            signatures: 1,
        });
        if let Err(e) = held {
            // Another request of the same run may have held it first.
            if !matches!(self.stores.approvals.get(id), Ok(Some(Held { .. }))) {
                tracing::error!(error = %e, "approval database");
                return store_failure();
            }
        }
        tracing::info!(request_id = %id, run = %run.describe(), "keyless CI run waits for approval");
        self.run_waiting(issuer, run, id, record)
    }

    /// The refusal of a request of a run that waits for approval: where to approve it, and what to do then.
    fn run_waiting(&self, issuer: &str, run: &Run, id: &str, record: &mut Record) -> Refusal {
        let (required, approvers) = self
            .approval_in_force(KEYLESS_PROJECT, issuer)
            .map(|a| (a.required, a.approvers.join(", ")))
            .unwrap_or_default();
        record.approval = Some(format!("waiting for {required} of {approvers}"));
        refuse(
            Reason::ApprovalRequired,
            format!(
                "CI run {} waits for approval by {required} of {approvers} (keyless/{issuer}): approve it at {}, \
                 then run the signing step again in this run; a new run, or a new attempt of it, is held anew",
                run.describe(),
                self.web_link(id),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn token(claims: serde_json::Value) -> VerifiedToken {
        VerifiedToken {
            issuer_name: "github".into(),
            repository_host: "github.com".into(),
            claims: serde_json::from_value(claims).unwrap(),
        }
    }

    fn job(run_id: &str, attempt: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:acme/app:ref:refs/tags/v1",
            "repository": "acme/app",
            "run_id": run_id,
            "run_attempt": attempt,
            "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1",
        })
    }

    #[test]
    fn every_token_of_a_run_finds_the_same_held_request_and_another_run_or_attempt_another() {
        let id = |claims| Run::of(&token(claims)).unwrap().request_id();
        let first = id(job("1001", "1"));
        assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
        let mut later = job("1001", "1");
        later["jti"] = "another token of the same run".into();
        assert_eq!(id(later), first);
        assert_ne!(id(job("1002", "1")), first);
        assert_ne!(id(job("1001", "2")), first);
        let mut fork = job("1001", "1");
        fork["repository"] = "evil/app".into();
        assert_ne!(id(fork), first);
        assert_eq!(
            Run::of(&token(job("1001", "2"))).unwrap().describe(),
            "acme/app run 1001 attempt 2 (acme/app/.github/workflows/release.yml@refs/tags/v1)"
        );
    }

    #[test]
    fn a_token_that_names_no_run_cannot_be_approved() {
        let person = token(serde_json::json!({"iss": "https://id.example", "sub": "alice"}));
        let refusal = Run::of(&person).unwrap_err();
        assert_eq!(refusal.reason, Reason::IdentityNotAllowed);
        assert!(refusal.detail.contains("names no run"), "{}", refusal.detail);
    }
}
