//! Approvers' votes on held signing requests, from the web page or the command line, each audited as its own
//! record.

use common::protocol::problem_types as pt;

use super::outcome::{refuse, Kind, Refusal};
use super::Core;
use crate::store::{Record, VoteError};

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
        if let Some(held) = self.stores.approvals.get(id).map_err(store_unavailable)? {
            record.project = Some(held.project.clone());
            record.policy = Some(held.policy.clone());
            record.digest = Some(held.digest.clone());
            if self.state.is_own_token(approver, &held.token_id) {
                return Err(refuse(
                    Kind::Forbidden,
                    pt::FORBIDDEN,
                    format!(
                        "{approver} owns token {} that submitted signing request {id}; \
                         another approver must decide on it",
                        held.token_id
                    ),
                ));
            }
        }
        let held = self
            .stores
            .approvals
            .vote(id, approver, approve, reason)
            .map_err(|e| match e {
                VoteError::NotFound(_) => {
                    refuse(Kind::NotFound, pt::SIGNING_REQUEST_NOT_FOUND, e.to_string())
                }
                VoteError::NotAnApprover { .. } | VoteError::OwnRequest { .. } => {
                    refuse(Kind::Forbidden, pt::FORBIDDEN, e.to_string())
                }
                VoteError::Decided { .. } | VoteError::AlreadyVoted { .. } => {
                    refuse(Kind::Conflict, pt::REQUEST_DENIED, e.to_string())
                }
                VoteError::Store(e) => store_unavailable(e),
            })?;
        record.project = Some(held.project.clone());
        record.policy = Some(held.policy.clone());
        record.release_group = held.release_group.clone();
        record.digest = Some(held.digest.clone());
        record.approval = Some(format!(
            "{} {} by {approver}{}",
            if approve { "approved" } else { "denied" },
            held.request_id,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
        Ok(())
    }
}

/// The approval store failed: logged here, and the caller told to try again later.
pub fn store_unavailable<E: std::fmt::Display>(e: E) -> Refusal {
    tracing::error!(error = %e, "approval database");
    refuse(
        Kind::Unavailable,
        pt::INTERNAL,
        "the approval database is not available; try again later",
    )
}
