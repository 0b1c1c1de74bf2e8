//! Approvers' votes on held signing requests, from the web page or the command line, each audited as its own
//! record, and the approval in force that decides them: a policy's approvers as configured now (less those
//! removed through another replica), never the list from when a request was held. A removed approver's votes stop
//! counting at once, and an approved request they carried goes back to waiting before it is signed.

use super::refusal::{refuse, store_failure, store_unavailable, Reason, Refusal};
use super::Core;
use crate::config::{ApprovalConfig, KEYLESS_PROJECT};
use crate::store::{rules, Held, Record, VoteError};

impl Core {
    /// Records `approver`'s approval or denial of request `id`, and what it decided in `record`.
    pub fn vote(
        &self,
        approver: &str,
        id: &str,
        approve: bool,
        reason: Option<&str>,
        record: &mut Record,
    ) -> Result<(), Refusal> {
        let held = self
            .stores
            .approvals
            .get(id)
            .map_err(store_unavailable)?
            .ok_or_else(|| vote_refusal(&VoteError::NotFound(id.to_owned())))?;
        record.project = Some(held.project.clone());
        record.policy = Some(held.policy.clone());
        record.digest = Some(held.digest.clone());
        if self.state.is_own_token(approver, &held.token_id) {
            return Err(refuse(
                Reason::OwnRequest,
                format!(
                    "{approver} owns token {} that submitted signing request {id}; \
                     another approver must decide on it",
                    held.token_id
                ),
            ));
        }
        let not_an_approver = || {
            vote_refusal(&VoteError::NotAnApprover {
                approver: approver.to_owned(),
                project: held.project.clone(),
                policy: held.policy.clone(),
            })
        };
        if !self.is_approver_in_force(approver) {
            return Err(not_an_approver());
        }
        let approval = self
            .approval_in_force(&held.project, &held.policy)
            .ok_or_else(not_an_approver)?;
        let held = self
            .stores
            .approvals
            .vote(id, approver, approve, reason, &approval)
            .map_err(|e| vote_refusal(&e))?;
        record.release_group = held.release_group.clone();
        record.approval = Some(format!(
            "{} {} by {approver}{}",
            if approve { "approved" } else { "denied" },
            held.request_id,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
        Ok(())
    }

    /// The approval of policy `project/policy` in force now: as configured, less the approvers removed through
    /// another replica. None if the policy does not (or no longer) exist or require approval. The CI runs of
    /// `[keyless]` rules are held as project [`KEYLESS_PROJECT`], policy the rule's issuer.
    pub fn approval_in_force(&self, project: &str, policy: &str) -> Option<ApprovalConfig> {
        let mut approval = if project == KEYLESS_PROJECT {
            self.state.keyless.as_ref()?.approval(policy)?.clone()
        } else {
            self.state
                .policies
                .iter()
                .find(|p| p.project == project && p.slug == policy)?
                .approval
                .clone()?
        };
        approval.approvers.retain(|a| self.is_approver_in_force(a));
        Some(approval)
    }

    /// Every `(project, policy)` whose requests wait for approval under this configuration: the policies with an
    /// approval, then `keyless/<issuer>` for the `[keyless]` rules with one.
    pub fn approval_scopes(&self) -> Vec<(String, String)> {
        let policies = self
            .state
            .policies
            .iter()
            .filter(|p| p.approval.is_some())
            .map(|p| (p.project.clone(), p.slug.clone()));
        let mut scopes: Vec<(String, String)> = policies.collect();
        for issuer in self.state.keyless.iter().flat_map(|k| k.approved_issuers()) {
            let scope = (KEYLESS_PROJECT.to_owned(), issuer.to_owned());
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// Whether an approved request's approvals still meet its policy's approval in force. If they do not (an
    /// approver who approved it was removed), it goes back to waiting for approval and is not signed. A policy
    /// that no longer requires approval lets it through.
    pub(super) fn still_approved(&self, held: &Held) -> Result<bool, Refusal> {
        let Some(approval) = self.approval_in_force(&held.project, &held.policy) else {
            return Ok(true);
        };
        if rules::is_approved(&approval, &held.approved_by) {
            return Ok(true);
        }
        self.stores
            .approvals
            .reopen(&held.request_id)
            .map_err(|_| store_failure())?;
        tracing::info!(request_id = %held.request_id, "approved request waits again: an approver who approved it was removed");
        Ok(false)
    }
}

/// A vote the store refused, in the caller's terms (on the web page and, in its audit record, on the command line).
pub fn vote_refusal(e: &VoteError) -> Refusal {
    match e {
        VoteError::NotFound(_) => refuse(Reason::UnknownSigningRequest, e.to_string()),
        VoteError::NotAnApprover { .. } => refuse(Reason::NotAnApprover, e.to_string()),
        VoteError::OwnRequest { .. } => refuse(Reason::OwnRequest, e.to_string()),
        VoteError::Decided { .. } | VoteError::AlreadyVoted { .. } => {
            refuse(Reason::AlreadyDecided, e.to_string())
        }
        VoteError::Store(e) => store_unavailable(e),
    }
}
