//! What only the SQLite approval store does: a claim left by a gateway that died while signing is given back
//! when the gateway starts again (PostgreSQL, shared by replicas, gives back only claims past their lease). The
//! rules both stores keep are in `store/approvals_tests.rs`, run against each.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_claim_of_a_gateway_that_died_while_signing_is_given_back_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteApprovals::open(&dir.path().join("db")).unwrap();
    let approvers = ["alice".to_owned()];
    a.hold(&NewHeld {
        request_id: "r1",
        token_id: "tok",
        project: "demo",
        policy: "ec-256",
        request_json: "{}",
        required: 1,
        approvers: &approvers,
        release_group: None,
        binding: None,
        image: None,
        digest: "00",
        signatures: 1,
    })
    .unwrap();
    let one = ApprovalConfig {
        approvers: approvers.to_vec(),
        required: 1,
        release_group: None,
    };
    assert_eq!(
        a.vote("r1", "alice", true, None, &one).unwrap().status,
        Status::Approved
    );
    assert!(a.claim("r1").unwrap());
    let restarted = SqliteApprovals::open(&dir.path().join("db")).unwrap();
    assert_eq!(restarted.recover().unwrap(), 1);
    assert!(restarted.claim("r1").unwrap());
    assert!(!restarted.claim("r1").unwrap(), "claimed once only");
    restarted.complete("r1", "{}").unwrap();
    assert_eq!(
        restarted.recover().unwrap(),
        0,
        "a completed request stays completed"
    );
}
