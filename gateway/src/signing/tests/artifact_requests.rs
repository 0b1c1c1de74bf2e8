//! File-based signing requests as a client polls them: the documents are SignPath's, byte for byte, and a held
//! request is signed by a gateway that has only its upload (as a replica that did not take the submission has,
//! once it fetched the upload from the shared store), not the layout unpacked at submission.

use super::approvals::{approval, poll, reloaded, submit_tarball, vote};
use super::{fixture, record};
use crate::signing::{Answer, Core, Refusal};
use crate::store::artifacts::ArtifactState;

/// `GET SigningRequests/{id}/Status` of request `id`.
fn poll_status(core: &Core, id: &str) -> Result<Answer, Refusal> {
    let f = fixture();
    let mut record = record(None);
    let result = core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
        .and_then(|token_id| core.request_status(&token_id, id, true, &mut record));
    core.finish(record, result)
}

#[test]
fn a_file_based_requests_status_and_data_are_signpaths_documents() {
    let core = reloaded(|config| approval(config, &["alice"], 1, 100));
    let (id, held) = submit_tarball(&core, "documents", 1, "jws");
    assert!(held);
    let public_url = &core.state.public_url;
    let organization = &core.state.organization_id;
    let web_link = format!("{public_url}/Web/SigningRequests/{id}");
    assert_eq!(
        poll_status(&core, &id).unwrap().body,
        format!(
            r#"{{"status":"WaitingForApproval","isFinalStatus":false,"workflowStatus":"WaitingForApproval","webLink":"{web_link}","hasArtifactBeenDownloadedBySignPathInCaseOfArtifactRetrieval":true}}"#
        )
    );
    let policy_id = &core
        .state
        .policies
        .iter()
        .find(|p| p.slug == "ec-384")
        .unwrap()
        .info
        .signing_policy_id;
    let links = format!("{public_url}/v1/{organization}/SigningRequests/{id}");
    assert_eq!(
        poll(&core, &id).unwrap().body,
        format!(
            concat!(
                r#"{{"status":"WaitingForApproval","isFinalStatus":false,"workflowStatus":"WaitingForApproval","#,
                r#""description":null,"projectSlug":"demo","artifactConfigurationSlug":"jws","#,
                r#""signingPolicyId":"{policy_id}","signingPolicySlug":"ec-384","#,
                r#""unsignedArtifactLink":"{links}/UnsignedArtifact","signedArtifactLink":"{links}/SignedArtifact","#,
                r#""parameters":{{}},"webLink":"{web_link}","signingRequestId":"{id}"}}"#
            ),
            policy_id = policy_id,
            links = links,
            web_link = web_link,
            id = id
        )
    );
}

#[test]
fn an_approved_request_is_signed_from_its_upload_where_its_unpacked_layout_is_not() {
    let core = reloaded(|config| approval(config, &["alice"], 1, 100));
    let (id, held) = submit_tarball(&core, "elsewhere", 2, "Default");
    assert!(held);
    // What a replica that did not take the submission lacks: the layout unpacked at submission.
    let staging = core.state.artifacts.staging(&id);
    assert!(staging.is_dir(), "the held request's layout waits here");
    std::fs::remove_dir_all(&staging).unwrap();
    vote(&core, "alice", &id).unwrap();
    let answer = poll(&core, &id).unwrap();
    assert!(answer.body.contains(r#""status":"Completed""#), "{}", answer.body);
    assert_eq!(
        core.artifacts().get(&id).unwrap().unwrap().state,
        ArtifactState::Completed
    );
    let signed = core.state.artifacts.signed(&id);
    let index = signpath_oci::tarball::read_index(&signed).unwrap();
    assert!(
        index.len() > 2,
        "the signed tarball holds the two images and their signatures: {index:?}"
    );
    assert!(!staging.exists(), "the unpacked layout is gone once signed");
}
