//! The approval rules, written once for every store: who may vote on a held request and what the vote does
//! ([`vote_effect`]), whose approvals count, when a request is approved, and how much a release group's approval
//! still covers. The stores run them inside their transactions (`vote`, `use_group`) and keep only the reading and
//! writing in their SQL; the signing core runs them again before it signs an approved request.
//!
//! Both take the policy's approval as configured now, never the approvers named when a request was held: an
//! approver taken out of a policy (or removed) stops counting at once, for the requests that wait, for approved
//! requests not yet signed, and for the release groups their approval opened.

use super::{Held, Status, VoteError};
use crate::config::{ApprovalConfig, ReleaseGroupConfig};

/// What a vote the rules allow does to the held request it is cast on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteEffect {
    /// A denial: one is enough, the request is denied.
    Denies,
    /// The approval that makes `required` approvals of approvers the policy names now: the request is approved.
    Approves,
    /// An approval that is counted, with more still required: the request keeps waiting.
    Counts,
}

/// The four rules of a vote on `held` by `approver`, under the policy's `approval` as configured now: only an
/// approver the policy names votes; a request already decided takes no vote; an approver votes once; and the vote
/// denies, approves (k of n) or is counted. Both stores call this inside the transaction that records the vote.
pub fn vote_effect(
    held: &Held,
    approver: &str,
    approve: bool,
    approval: &ApprovalConfig,
) -> Result<VoteEffect, VoteError> {
    if !approval.approvers.iter().any(|a| a == approver) {
        return Err(VoteError::NotAnApprover {
            approver: approver.to_owned(),
            project: held.project.clone(),
            policy: held.policy.clone(),
        });
    }
    if held.status != Status::Pending {
        return Err(VoteError::Decided {
            id: held.request_id.clone(),
            status: held.status,
        });
    }
    if held.approved_by.iter().any(|a| a == approver) {
        return Err(VoteError::AlreadyVoted {
            approver: approver.to_owned(),
            id: held.request_id.clone(),
        });
    }
    Ok(if !approve {
        VoteEffect::Denies
    } else if is_approved(approval, &with_approval(held, approver)) {
        VoteEffect::Approves
    } else {
        VoteEffect::Counts
    })
}

/// The approvals of `approved_by` that count under `approval`: those of approvers it names.
pub fn counted(approval: &ApprovalConfig, approved_by: &[String]) -> usize {
    approved_by
        .iter()
        .filter(|a| approval.approvers.contains(a))
        .count()
}

/// Whether `approved_by` meets `approval` (its `required` approvals, counted as [`counted`] counts them).
pub fn is_approved(approval: &ApprovalConfig, approved_by: &[String]) -> bool {
    counted(approval, approved_by) >= approval.required as usize
}

/// The approvals of `held` with `approver`'s added, as a vote that approves counts them.
pub fn with_approval(held: &Held, approver: &str) -> Vec<String> {
    let mut approved_by = held.approved_by.clone();
    approved_by.push(approver.to_owned());
    approved_by
}

/// The oldest decision time (Unix seconds) whose release-group approval is still within its window at `now`.
pub fn window_start(limits: &ReleaseGroupConfig, now: i64) -> i64 {
    now.saturating_sub(i64::try_from(limits.window_seconds).unwrap_or(i64::MAX))
}

/// Whether the approved request `covering`, whose release group has already covered `used` signatures of later
/// requests, covers `wanted` more: it still meets `approval`, and its own signatures, those used and those wanted
/// stay within `max_signatures`. The limit counts signatures (images × formats), not requests, so one request of
/// many images cannot ride on a group with one signature left; a request that does not fit waits for an approval
/// of its own.
pub fn group_covers(approval: &ApprovalConfig, covering: &Held, used: u64, wanted: u32) -> bool {
    let Some(limits) = &approval.release_group else {
        return false;
    };
    is_approved(approval, &covering.approved_by)
        && u64::from(covering.signatures)
            .saturating_add(used)
            .saturating_add(u64::from(wanted))
            <= u64::from(limits.max_signatures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Status;

    fn approval(approvers: &[&str], required: u32, max_signatures: u32) -> ApprovalConfig {
        ApprovalConfig {
            approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
            required,
            release_group: Some(ReleaseGroupConfig {
                max_signatures,
                window_seconds: 3600,
            }),
        }
    }

    fn approved(by: &[&str], signatures: u32) -> Held {
        Held {
            request_id: "r".into(),
            token_id: "t".into(),
            project: "demo".into(),
            policy: "ec-256".into(),
            request_json: String::new(),
            status: Status::Approved,
            required: 1,
            approvers: Vec::new(),
            approved_by: by.iter().map(|a| (*a).to_owned()).collect(),
            denied_by: None,
            reason: None,
            release_group: Some("rel".into()),
            binding: None,
            image: None,
            digest: "00".into(),
            signatures,
            created: 0,
            response: None,
        }
    }

    #[test]
    fn only_approvers_the_policy_names_now_count() {
        let now = approval(&["bob", "carol"], 2, 10);
        assert_eq!(counted(&now, &["alice".into(), "bob".into()]), 1);
        assert!(!is_approved(&now, &["alice".into(), "bob".into()]));
        assert!(is_approved(&now, &["bob".into(), "carol".into()]));
    }

    #[test]
    fn a_vote_is_taken_once_from_an_approver_on_a_waiting_request_and_k_of_n_decides() {
        let two = approval(&["alice", "bob"], 2, 10);
        let mut waiting = approved(&[], 1);
        waiting.status = Status::Pending;
        assert!(matches!(
            vote_effect(&waiting, "mallory", true, &two),
            Err(VoteError::NotAnApprover { .. })
        ));
        assert_eq!(
            vote_effect(&waiting, "alice", true, &two).unwrap(),
            VoteEffect::Counts
        );
        assert_eq!(
            vote_effect(&waiting, "alice", false, &two).unwrap(),
            VoteEffect::Denies
        );
        waiting.approved_by = vec!["alice".into()];
        assert!(matches!(
            vote_effect(&waiting, "alice", true, &two),
            Err(VoteError::AlreadyVoted { .. })
        ));
        assert_eq!(
            vote_effect(&waiting, "bob", true, &two).unwrap(),
            VoteEffect::Approves
        );
        // An approval from an approver taken out of the policy does not count towards k.
        waiting.approved_by = vec!["carol".into()];
        assert_eq!(
            vote_effect(&waiting, "bob", true, &two).unwrap(),
            VoteEffect::Counts
        );
        let decided = approved(&["alice", "bob"], 1);
        assert!(matches!(
            vote_effect(&decided, "bob", false, &two),
            Err(VoteError::Decided { .. })
        ));
    }

    #[test]
    fn a_release_group_covers_signatures_not_requests() {
        let limits = approval(&["alice"], 1, 2);
        let one_hash = approved(&["alice"], 1);
        assert!(group_covers(&limits, &one_hash, 0, 1), "one signature left");
        assert!(
            !group_covers(&limits, &one_hash, 0, 8),
            "8 images do not fit in 1"
        );
        assert!(!group_covers(&limits, &one_hash, 1, 1), "used up");
        let removed = approval(&["bob"], 1, 2);
        assert!(
            !group_covers(&removed, &one_hash, 0, 1),
            "its approver was removed"
        );
        let no_group = ApprovalConfig {
            release_group: None,
            ..limits
        };
        assert!(!group_covers(&no_group, &one_hash, 0, 1));
    }
}
