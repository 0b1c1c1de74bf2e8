//! The approval store suite: k of n, denials, approvers taken out of a policy, release groups and listings, written
//! once against [`ApprovalStore`] and run against both stores, SQLite and PostgreSQL (a throwaway server started
//! by the end-to-end tests' fixture), each case on a fresh database. What one store does that the other does not
//! (SQLite's recovery of claims after a restart, PostgreSQL's claim lease) is tested beside that store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::{ApprovalStore, GroupUse, HeldCount, HeldQuery, NewHeld, Stage, Status, Stores, VoteError};
use crate::config::{ApprovalConfig, ReleaseGroupConfig};

/// One case of the suite, given a store on a fresh database.
type Case = fn(&dyn ApprovalStore);

/// Every case of the suite, by name.
const SUITE: &[(&str, Case)] = &[
    (
        "k_of_n_approves_one_denial_aborts_and_strangers_cannot_vote",
        k_of_n_approves_one_denial_aborts_and_strangers_cannot_vote,
    ),
    (
        "an_approver_taken_out_of_the_policy_neither_votes_nor_counts",
        an_approver_taken_out_of_the_policy_neither_votes_nor_counts,
    ),
    (
        "an_approved_release_group_covers_up_to_its_limit",
        an_approved_release_group_covers_up_to_its_limit,
    ),
    (
        "a_release_group_counts_signatures_not_requests",
        a_release_group_counts_signatures_not_requests,
    ),
    (
        "every_held_request_is_listed_by_policy_and_page_with_counts",
        every_held_request_is_listed_by_policy_and_page_with_counts,
    ),
];

#[test]
fn the_sqlite_store_keeps_every_approval_rule() {
    for (name, case) in SUITE {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::sqlite(&dir.path().join("audit.db")).unwrap();
        eprintln!("sqlite: {name}");
        case(stores.approvals.as_ref());
    }
}

#[test]
fn the_postgresql_store_keeps_every_approval_rule() {
    let Some(bin) = e2e_tests::postgres::bin_dir() else {
        panic!("PostgreSQL's server binaries are not installed (apt-get install postgresql); the store suite runs against both stores");
    };
    let pg = e2e_tests::postgres::Postgres::start(&bin);
    for (i, (name, case)) in SUITE.iter().enumerate() {
        let database = format!("suite_{i}");
        pg.psql(&format!("CREATE DATABASE {database}"));
        let url = pg.url().replace("/postgres", &format!("/{database}"));
        let stores = Stores::open(Path::new("."), Path::new(&url)).unwrap();
        eprintln!("postgresql: {name}");
        case(stores.approvals.as_ref());
    }
}

fn held(a: &dyn ApprovalStore, id: &str, group: Option<&str>, signatures: u32) {
    held_in(a, id, "ec-256", group, signatures);
}

fn held_in(a: &dyn ApprovalStore, id: &str, policy: &str, group: Option<&str>, signatures: u32) {
    let approvers = ["alice".to_owned(), "bob".to_owned()];
    a.hold(&NewHeld {
        request_id: id,
        token_id: "tok",
        project: "demo",
        policy,
        request_json: "{}",
        required: 1,
        approvers: &approvers,
        release_group: group,
        binding: None,
        image: None,
        digest: "00",
        signatures,
    })
    .unwrap();
}

/// The policy's approval as configured now.
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

fn k_of_n_approves_one_denial_aborts_and_strangers_cannot_vote(a: &dyn ApprovalStore) {
    let two = approval(&["alice", "bob"], 2, 1);
    held(a, "r1", None, 1);
    assert!(matches!(
        a.vote("r1", "mallory", true, None, &two),
        Err(VoteError::NotAnApprover { .. })
    ));
    assert_eq!(
        a.vote("r1", "alice", true, None, &two).unwrap().status,
        Status::Pending
    );
    assert!(matches!(
        a.vote("r1", "alice", true, None, &two),
        Err(VoteError::AlreadyVoted { .. })
    ));
    assert!(!a.claim("r1").unwrap(), "not approved yet");
    assert_eq!(
        a.vote("r1", "bob", true, None, &two).unwrap().status,
        Status::Approved
    );
    assert!(a.claim("r1").unwrap());
    assert!(!a.claim("r1").unwrap(), "claimed once only");
    a.complete("r1", "{}").unwrap();
    assert_eq!(a.get("r1").unwrap().unwrap().status, Status::Completed);

    held(a, "r2", None, 1);
    a.vote("r2", "alice", true, None, &two).unwrap();
    let denied = a.vote("r2", "bob", false, Some("not this one"), &two).unwrap();
    assert_eq!(denied.status, Status::Denied);
    assert_eq!(denied.reason.as_deref(), Some("not this one"));
    assert!(matches!(
        a.vote("r2", "alice", true, None, &two),
        Err(VoteError::Decided { .. })
    ));
}

fn an_approver_taken_out_of_the_policy_neither_votes_nor_counts(a: &dyn ApprovalStore) {
    held(a, "r1", None, 1);
    let before = approval(&["alice", "bob", "carol"], 2, 1);
    a.vote("r1", "alice", true, None, &before).unwrap();
    // Alice is taken out of the policy: her vote no longer counts, and she cannot vote again.
    let after = approval(&["bob", "carol"], 2, 1);
    assert!(matches!(
        a.vote("r1", "alice", false, None, &after),
        Err(VoteError::NotAnApprover { .. })
    ));
    assert_eq!(
        a.vote("r1", "bob", true, None, &after).unwrap().status,
        Status::Pending,
        "alice's approval no longer counts towards 2"
    );
    assert_eq!(
        a.vote("r1", "carol", true, None, &after).unwrap().status,
        Status::Approved
    );
    // An approved request whose approvals no longer meet the policy goes back to waiting, until it is claimed.
    assert!(a.reopen("r1").unwrap());
    assert_eq!(a.get("r1").unwrap().unwrap().status, Status::Pending);
    assert!(!a.reopen("r1").unwrap(), "only an approved request reopens");
}

fn group_use<'a>(group: &'a str, token: &'a str, binding: Option<&'a str>, id: &'a str) -> GroupUse<'a> {
    GroupUse {
        project: "demo",
        policy: "ec-256",
        group,
        token_id: token,
        binding,
        request_id: id,
        signatures: 1,
    }
}

fn an_approved_release_group_covers_up_to_its_limit(a: &dyn ApprovalStore) {
    let limits = approval(&["alice", "bob"], 1, 3);
    let use_group = |g: &GroupUse<'_>| a.use_group(g, &limits).unwrap();
    assert_eq!(use_group(&group_use("rel-1", "tok", None, "x0")), None);
    held(a, "g1", Some("rel-1"), 1);
    assert_eq!(
        use_group(&group_use("rel-1", "tok", None, "x1")),
        None,
        "not approved"
    );
    a.vote("g1", "alice", true, None, &limits).unwrap();
    assert_eq!(
        use_group(&group_use("rel-2", "tok", None, "x2")),
        None,
        "another group"
    );
    assert_eq!(
        use_group(&group_use("rel-1", "another-token", None, "y1")),
        None,
        "another token's request is not covered by this token's approval"
    );
    assert_eq!(
        use_group(&group_use(
            "rel-1",
            "tok",
            Some("{\"repository\":\"evil/app\"}"),
            "y2"
        )),
        None,
        "another CI identity is not covered"
    );
    assert_eq!(
        use_group(&group_use("rel-1", "tok", None, "x3")).as_deref(),
        Some("g1")
    );
    assert_eq!(
        use_group(&group_use("rel-1", "tok", None, "x4")).as_deref(),
        Some("g1")
    );
    assert_eq!(
        use_group(&group_use("rel-1", "tok", None, "x5")),
        None,
        "3 signatures used"
    );
    let expired = ApprovalConfig {
        release_group: Some(ReleaseGroupConfig {
            max_signatures: 10,
            window_seconds: 0,
        }),
        ..limits.clone()
    };
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        a.use_group(&group_use("rel-1", "tok", None, "x6"), &expired)
            .unwrap(),
        None,
        "window over"
    );
}

fn a_release_group_counts_signatures_not_requests(a: &dyn ApprovalStore) {
    let limits = approval(&["alice"], 1, 4);
    held(a, "g1", Some("rel"), 1);
    a.vote("g1", "alice", true, None, &limits).unwrap();
    let images = |id: &'static str, signatures: u32| GroupUse {
        signatures,
        ..group_use("rel", "tok", None, id)
    };
    assert_eq!(
        a.use_group(&images("t8", 8), &limits).unwrap(),
        None,
        "8 signatures do not fit in the 3 left"
    );
    assert_eq!(
        a.use_group(&images("t2", 2), &limits).unwrap().as_deref(),
        Some("g1")
    );
    assert_eq!(a.use_group(&images("t2b", 2), &limits).unwrap(), None, "1 left");
    assert_eq!(
        a.use_group(&images("t1", 1), &limits).unwrap().as_deref(),
        Some("g1")
    );
    // Alice is removed: the group her approval opened covers nothing more.
    let bigger = approval(&["alice"], 1, 100);
    assert_eq!(
        a.use_group(&images("t1b", 1), &bigger).unwrap().as_deref(),
        Some("g1")
    );
    let without_alice = approval(&["bob"], 1, 100);
    assert_eq!(a.use_group(&images("t1c", 1), &without_alice).unwrap(), None);
}

fn every_held_request_is_listed_by_policy_and_page_with_counts(a: &dyn ApprovalStore) {
    for i in 0..150 {
        held_in(a, &format!("busy-{i:03}"), "busy", None, 1);
    }
    held_in(a, "quiet-0", "quiet", None, 1);
    let one = approval(&["alice", "bob"], 1, 1);
    a.vote("busy-000", "alice", true, None, &one).unwrap();
    let quiet = [("demo".to_owned(), "quiet".to_owned())];
    let query = |policies, stage, offset| HeldQuery {
        policies,
        stage,
        offset,
        limit: 100,
    };
    let ids =
        |q: HeldQuery<'_>| -> Vec<String> { a.list(&q).unwrap().into_iter().map(|h| h.request_id).collect() };
    assert_eq!(ids(query(Some(&quiet), None, 0)), ["quiet-0"]);
    let first = ids(query(None, Some(Stage::Waiting), 0));
    let second = ids(query(None, Some(Stage::Waiting), 100));
    assert_eq!((first.len(), second.len()), (100, 50));
    assert_eq!(first[0], "quiet-0", "newest first");
    assert!(!first.iter().chain(&second).any(|id| id == "busy-000"));
    assert_eq!(ids(query(None, Some(Stage::Decided), 0)), ["busy-000"]);
    assert_eq!(
        a.count(None).unwrap(),
        [
            HeldCount {
                project: "demo".into(),
                policy: "busy".into(),
                waiting: 149,
                decided: 1
            },
            HeldCount {
                project: "demo".into(),
                policy: "quiet".into(),
                waiting: 1,
                decided: 0
            }
        ]
    );
    assert_eq!(a.count(Some(&quiet)).unwrap().len(), 1);
}
