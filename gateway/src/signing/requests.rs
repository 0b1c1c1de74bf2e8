//! Polling a signing request (SignPath's `GET SigningRequests/{id}` and `.../Status`): a completed request answers
//! its stored signature; a held one answers where it stands, and the first poll after its approval signs it, once.

use common::protocol::{RequestStatus, SignHashRequest, SignHashResponse, SigningRequestStatus};

use super::algorithm::prepare;
use super::outcome::Answer;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::Core;
use crate::store::{Held, Record, Status};

impl Core {
    /// `GET /v1/{org}/SigningRequests/{id}` (or `.../Status` when `status_only`): where a request of this token
    /// stands, and its signature once it has one.
    pub fn request_status(
        &self,
        token_id: &str,
        id: &str,
        status_only: bool,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let not_found = || {
            refuse(
                Reason::UnknownSigningRequest,
                format!("no signing request {id} of this token"),
            )
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        if let Some(answer) = self.artifact_status(token_id, id, status_only, record)? {
            return Ok(answer);
        }
        if let Some(held) = self
            .stores
            .approvals
            .get(id)
            .map_err(|_| store_failure())?
            .filter(|h| h.token_id == token_id)
        {
            return self.held_status(held, status_only, record);
        }
        let stored = self
            .stores
            .audit
            .signing_request(token_id, id)
            .map_err(|_| store_failure())?
            .ok_or_else(not_found)?;
        if status_only {
            return Answer::json(&SigningRequestStatus::new(RequestStatus::Completed, None));
        }
        Ok(Answer::done(stored))
    }

    /// A request that needed approval, as its client polls it: still waiting (202), denied, or approved, in which
    /// case the first poll that claims it signs it, once, and every later poll gets that answer.
    fn held_status(&self, held: Held, status_only: bool, record: &mut Record) -> Result<Answer, Refusal> {
        record.project = Some(held.project.clone());
        record.policy = Some(held.policy.clone());
        record.release_group = held.release_group.clone();
        let web_link = Some(self.web_link(&held.request_id));
        let status = match held.status {
            Status::Pending | Status::Approved | Status::Signing => RequestStatus::WaitingForApproval,
            Status::Denied => RequestStatus::Denied,
            Status::Completed => RequestStatus::Completed,
        };
        if status_only {
            return Answer::json(&SigningRequestStatus::new(status, web_link));
        }
        match held.status {
            Status::Completed => {
                let response = held.response.unwrap_or_default();
                Ok(Answer::done(response))
            }
            Status::Denied => {
                record.approval = Some(format!(
                    "denied by {}{}",
                    held.denied_by.as_deref().unwrap_or("an approver"),
                    held.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
                let response = SignHashResponse {
                    signing_request_id: held.request_id.clone(),
                    web_link,
                    status: Some("Denied".into()),
                    hash_signing_data: None,
                    hash_signing_result: None,
                };
                Answer::json(&response)
            }
            // One signature per approved request whichever replica is polled: `claim` is one conditional UPDATE
            // (`Approved` to `Signing`), so of two polls at once, here or on another replica, exactly one takes the
            // request and signs; the other answers that it is still waiting, and its next poll gets the stored
            // signature. No idempotency-key claim is needed on top of it.
            // An approval that no longer stands (an approver who gave it was removed) sends the request back to
            // waiting instead.
            Status::Approved
                if self.still_approved(&held)?
                    && self
                        .stores
                        .approvals
                        .claim(&held.request_id)
                        .map_err(|_| store_failure())? =>
            {
                match self.sign_approved(&held, record) {
                    // Completed by `finish`, once the record of this signature is durable.
                    Ok(mut answer) => {
                        answer.completes = Some(held.request_id.clone());
                        Ok(answer)
                    }
                    Err(refusal) => {
                        self.stores
                            .approvals
                            .unclaim(&held.request_id)
                            .map_err(|_| store_failure())?;
                        Err(refusal)
                    }
                }
            }
            _ => self.waiting(&held.request_id, web_link),
        }
    }

    /// Signs a held request its approvers approved; the audit record of this poll carries the signature.
    fn sign_approved(&self, held: &Held, record: &mut Record) -> Result<Answer, Refusal> {
        let request: SignHashRequest =
            serde_json::from_str(&held.request_json).map_err(|e| refuse(Reason::Internal, e.to_string()))?;
        let policy = self.authorize(&held.token_id, &held.project, &held.policy)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());
        record.approval = Some(format!("approved by {}", held.approved_by.join(", ")));
        // The record of the signature names what was signed, as the request's own record does.
        record.metadata = request
            .hash_signing_data
            .metadata
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok());
        let prepared = prepare(policy, &request.hash_signing_data, record)?;
        let response = self.sign_prepared(policy, &request, &prepared, &held.request_id, record)?;
        Answer::json(&response)
    }

    /// The answer to a request that waits for approval: where it stands and where to poll.
    pub(super) fn waiting(&self, request_id: &str, web_link: Option<String>) -> Result<Answer, Refusal> {
        let response = SignHashResponse {
            signing_request_id: request_id.to_owned(),
            web_link,
            status: Some("WaitingForApproval".into()),
            hash_signing_data: None,
            hash_signing_result: None,
        };
        let mut answer = Answer::json(&response)?;
        answer.waiting = Some(format!(
            "/v1/{}/SigningRequests/{request_id}",
            self.state.organization_id
        ));
        Ok(answer)
    }
}
