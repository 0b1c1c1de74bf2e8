//! Every signing path runs the same origin check: a policy that verifies origin refuses a request without an
//! identity token naming the audience to fetch one for, whether the request is a `SignHash` or a file-based
//! `SubmitWithArtifact` (which used to leave the audience out).

use super::approvals::{reloaded, tarball};
use super::{audited, fixture, record, request};
use crate::signing::{ArtifactSubmission, Core, Reason, Refusal};

/// The fixture's core with demo/ec-256 verifying origin against an issuer whose tokens are never presented.
fn verifying_origin() -> Core {
    let jwks = fixture()._dir.path().join("origin-test-jwks.json");
    std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
    reloaded(|config| {
        config.trusted_issuers.push(
            serde_json::from_value(serde_json::json!({
                "name": "ci",
                "issuer": "https://ci.example",
                "audience": "https://gw.example",
                "jwks_file": jwks,
            }))
            .unwrap(),
        );
        let policy = config.projects[0]
            .policies
            .iter_mut()
            .find(|p| p.slug == "ec-256")
            .unwrap();
        policy.origin = Some(
            serde_json::from_value(serde_json::json!({
                "issuer": "ci",
                "conditions": {"repository": "acme/app"},
            }))
            .unwrap(),
        );
    })
}

fn assert_names_the_audience(refused: &Refusal, request_id: &str) {
    assert_eq!(refused.reason, Reason::OriginRejected, "{}", refused.detail);
    assert_eq!(
        refused.identity_token_audience.as_deref(),
        Some("https://gw.example")
    );
    let record = audited(request_id);
    assert_eq!(
        (record.status, record.error_type.as_deref()),
        (403, Some("origin-rejected"))
    );
}

#[test]
fn a_missing_identity_token_is_refused_naming_the_audience_on_the_hash_and_the_file_based_path() {
    let f = fixture();
    let core = verifying_origin();

    let mut hash = record(None);
    let id = hash.request_id.clone();
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut hash)
        .and_then(|token_id| {
            core.sign_hash(&token_id, &request("ec-256", &[3u8; 32], None), None, &mut hash)
        });
    assert_names_the_audience(&core.finish(hash, result).unwrap_err(), &id);

    let mut upload = record(None);
    let id = upload.request_id.clone();
    tarball(&core, &id, 1);
    let submission = ArtifactSubmission {
        project: "demo".into(),
        policy: "ec-256".into(),
        file_name: "images.tar".into(),
        sha256: "00".repeat(32),
        ..ArtifactSubmission::default()
    };
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut upload)
        .and_then(|token_id| core.submit_artifact(&token_id, &submission, None, &mut upload));
    assert_names_the_audience(&core.finish(upload, result).unwrap_err(), &id);
}
