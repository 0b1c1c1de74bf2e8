//! The approval rules, written once for every store: whose approvals count, when a request is approved, and how
//! much a release group's approval still covers. The stores run them inside their transactions (`vote`,
//! `use_group`); the signing core runs them again before it signs an approved request.
//!
//! Both take the policy's approval as configured now, never the approvers named when a request was held: an
//! approver taken out of a policy (or removed) stops counting at once, for the requests that wait, for approved
//! requests not yet signed, and for the release groups their approval opened.

use super::Held;
use crate::config::{ApprovalConfig, ReleaseGroupConfig};

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
