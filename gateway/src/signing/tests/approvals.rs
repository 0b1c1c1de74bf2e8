//! Two attacks on approval, against the fixture's HSM and SQLite store with the configuration changed as a reload
//! changes it: a release group with one signature left covering a tarball of many images, and an approver removed
//! from the policy whose votes still count.

use std::path::Path;
use std::sync::Arc;

use sha2::Digest as _;

use super::{audited, fixture, record, request};
use crate::config::{
    ApprovalConfig, ApproverConfig, ArtifactConfigurationConfig, GatewayConfig, ReleaseGroupConfig,
};
use crate::signing::{Answer, ArtifactSubmission, Core, Reason, Refusal};
use crate::store::artifacts::ArtifactState;
use crate::store::Status;

/// The fixture's core after a reload of its configuration changed by `change` (the stores are shared).
pub(super) fn reloaded(change: impl FnOnce(&mut GatewayConfig)) -> Core {
    let f = fixture();
    let (mut config, base) = GatewayConfig::load(&f._dir.path().join("gw").join("gateway.toml")).unwrap();
    change(&mut config);
    let state = super::super::state::State::load(&config, &base, f.core.state.signer.clone()).unwrap();
    f.core.reconfigured(Arc::new(state))
}

/// Sets demo/ec-384's approval.
pub(super) fn approval(config: &mut GatewayConfig, approvers: &[&str], required: u32, max_signatures: u32) {
    let policy = config.projects[0]
        .policies
        .iter_mut()
        .find(|p| p.slug == "ec-384")
        .unwrap();
    policy.approval = Some(ApprovalConfig {
        approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
        required,
        release_group: Some(ReleaseGroupConfig {
            max_signatures,
            window_seconds: 3600,
        }),
    });
}

fn sign_hash(core: &Core, body: &[u8]) -> (String, Result<Answer, Refusal>) {
    let f = fixture();
    let mut record = record(None);
    let id = record.request_id.clone();
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
        .and_then(|token_id| core.sign_hash(&token_id, body, None, &mut record));
    (id, core.finish(record, result))
}

pub(super) fn poll(core: &Core, id: &str) -> Result<Answer, Refusal> {
    let f = fixture();
    let mut record = record(None);
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
        .and_then(|token_id| core.request_status(&token_id, id, false, &mut record));
    core.finish(record, result)
}

pub(super) fn vote(core: &Core, approver: &str, id: &str) -> Result<(), Refusal> {
    core.vote(approver, id, true, None, &mut record(None))
}

fn blob(dir: &Path, bytes: &[u8]) -> serde_json::Value {
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// An OCI image layout tarball of `images` single-platform images (their layers stripped, as `signpath-oci
/// strip` leaves them), written where the upload of request `id` goes.
pub(super) fn tarball(core: &Core, id: &str, images: usize) {
    let layout = tempfile::tempdir().unwrap();
    let dir = layout.path();
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut config = blob(dir, br#"{"architecture":"amd64","os":"linux"}"#);
    config["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let mut entries = Vec::new();
    for i in 0..images {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [],
            "annotations": {"image": i.to_string()},
        });
        let mut entry = blob(dir, manifest.to_string().as_bytes());
        entry["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        entry["annotations"] =
            serde_json::json!({"io.containerd.image.name": format!("registry.example/app-{i}:1.0")});
        entries.push(entry);
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    core.state.artifacts.create(id).unwrap();
    signpath_oci::tarball::pack_file(dir, &core.state.artifacts.unsigned(id)).unwrap();
}

/// Submits a tarball of `images` images to demo/ec-384 in release group `group`, as `SubmitWithArtifact` does;
/// whether it was held for approval (else it was signed at once).
pub(super) fn submit_tarball(core: &Core, group: &str, images: usize, configuration: &str) -> (String, bool) {
    let f = fixture();
    let mut record = record(None);
    let id = record.request_id.clone();
    tarball(core, &id, images);
    let submission = ArtifactSubmission {
        project: "demo".into(),
        policy: "ec-384".into(),
        artifact_configuration: Some(configuration.into()),
        release_group: Some(group.into()),
        file_name: "images.tar".into(),
        sha256: "00".repeat(32),
        ..ArtifactSubmission::default()
    };
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
        .and_then(|token_id| core.submit_artifact(&token_id, &submission, None, &mut record));
    core.finish(record, result).unwrap();
    let held = core.stores.approvals.get(&id).unwrap();
    let state = core.artifacts().get(&id).unwrap().unwrap().state;
    assert_eq!(
        state == ArtifactState::Waiting,
        held.is_some(),
        "held exactly when waiting"
    );
    (id, held.is_some())
}

#[test]
fn a_release_group_with_one_signature_left_does_not_cover_a_tarball_of_eight_images() {
    let core = reloaded(|config| {
        approval(config, &["alice", "bob"], 1, 2);
        let configuration = |slug: &str, cosign| ArtifactConfigurationConfig {
            slug: slug.into(),
            notary: crate::config::NotaryEnvelope::Jws,
            cosign,
            each_platform: false,
            signing_scheme: Default::default(),
        };
        config.projects[0].artifact_configurations =
            vec![configuration("notary", false), configuration("both", true)];
    });
    let group = format!("rel-{}", uuid::Uuid::new_v4());
    // One hash approved: the group's limit of 2 signatures has 1 left.
    let (first, held) = sign_hash(&core, &request("ec-384", &[20u8; 48], Some(&group)));
    assert!(held.unwrap().waiting.is_some());
    vote(&core, "alice", &first).unwrap();

    let (eight, held) = submit_tarball(&core, &group, 8, "notary");
    assert!(held, "8 signatures do not fit in the 1 left: held for approval");
    assert_eq!(core.stores.approvals.get(&eight).unwrap().unwrap().signatures, 8);
    assert!(audited(&eight).approval.unwrap().starts_with("waiting for"));
    let (two_formats, held) = submit_tarball(&core, &group, 1, "both");
    assert!(
        held,
        "one image with a Notary and a cosign signature is 2 signatures"
    );

    let (fits, held) = submit_tarball(&core, &group, 1, "notary");
    assert!(!held, "one image, one signature: covered by the group");
    assert!(audited(&fits)
        .approval
        .unwrap()
        .contains(&format!("release group {group}")));
    let (_, held) = submit_tarball(&core, &group, 1, "notary");
    assert!(held, "the group is used up");

    // Approving the 8-image tarball on its own signs it at its next poll.
    vote(&core, "bob", &eight).unwrap();
    poll(&core, &eight).unwrap();
    let signed = core.artifacts().get(&eight).unwrap().unwrap();
    assert_eq!(signed.state, ArtifactState::Completed);
    assert_eq!(
        core.stores.approvals.get(&two_formats).unwrap().unwrap().status,
        Status::Pending
    );
}

#[test]
fn a_removed_approver_neither_votes_nor_counts_towards_k_of_n() {
    let carol = ApproverConfig {
        name: "carol".into(),
        sha256: crate::config::TokenSha256([0xab; 32]),
        owner: None,
    };
    let before = reloaded(|config| approval(config, &["alice", "bob"], 2, 1));
    let (id, held) = sign_hash(&before, &request("ec-384", &[21u8; 48], None));
    assert!(held.unwrap().waiting.is_some());
    vote(&before, "alice", &id).unwrap();

    // Alice is taken out of the policy (carol takes her place) and removed; the gateway reloads.
    let after = reloaded(|config| {
        config.approvers.retain(|a| a.name != "alice");
        config.approvers.push(carol.clone());
        approval(config, &["bob", "carol"], 2, 1);
    });
    assert_eq!(
        vote(&after, "alice", &id).unwrap_err().reason,
        Reason::NotAnApprover
    );
    vote(&after, "bob", &id).unwrap();
    assert_eq!(
        after.stores.approvals.get(&id).unwrap().unwrap().status,
        Status::Pending,
        "alice's approval no longer counts: 1 of 2"
    );
    assert!(poll(&after, &id).unwrap().waiting.is_some(), "nothing signed");
    vote(&after, "carol", &id).unwrap();
    assert!(poll(&after, &id).unwrap().body.contains("signature"));

    // An approval alice gave alone is taken back before it is signed: the request waits again.
    let one = reloaded(|config| approval(config, &["alice", "bob"], 1, 1));
    let (approved, _) = sign_hash(&one, &request("ec-384", &[22u8; 48], None));
    vote(&one, "alice", &approved).unwrap();
    let without_alice = reloaded(|config| {
        config.approvers.retain(|a| a.name != "alice");
        approval(config, &["bob"], 1, 1);
    });
    let answer = poll(&without_alice, &approved).unwrap();
    assert!(answer.waiting.is_some() && !answer.body.contains("signature"));
    let reopened = without_alice.stores.approvals.get(&approved).unwrap().unwrap();
    assert_eq!(reopened.status, Status::Pending);
    vote(&without_alice, "bob", &approved).unwrap();
    assert!(poll(&without_alice, &approved)
        .unwrap()
        .body
        .contains("signature"));
}
