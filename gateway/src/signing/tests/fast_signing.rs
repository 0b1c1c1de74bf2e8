//! Fast signing (`payload.json` through the file-based route) runs the typed `SignHash` request: the answer is the
//! payload with a signature that verifies, and a retry under the same Idempotency-Key gets the first answer.

use common::keys::SignatureScheme;

use super::{audited, fixture, record, verify, Answer, Refusal, BASE64};
use crate::signing::ArtifactSubmission;
use base64::Engine as _;

/// A fast-signing submission of `payload` to `demo/ec-256`, as the route runs it after the upload.
fn fast_sign(payload: &str, key: Option<&str>) -> (String, Result<Answer, Refusal>) {
    let f = fixture();
    let mut record = record(key);
    let id = record.request_id.clone();
    f.core.state.artifacts.create(&id).unwrap();
    std::fs::write(f.core.state.artifacts.unsigned(&id), payload).unwrap();
    let submission = ArtifactSubmission {
        project: "demo".into(),
        policy: "ec-256".into(),
        file_name: "payload.json".into(),
        size: payload.len() as u64,
        fast: true,
        ..ArtifactSubmission::default()
    };
    let result = f
        .core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
        .and_then(|token_id| f.core.submit_artifact(&token_id, &submission, None, &mut record));
    (id, f.core.finish(record, result))
}

fn payload(digest: &[u8]) -> String {
    format!(
        "{{\n  \"SignatureAlgorithm\": \"Ecdsa\",\n  \"Base64EncodedHash\": \"{}\"\n}}\n",
        BASE64.encode(digest)
    )
}

/// The `Signature` property the answer added to the payload.
fn signature(answer: &Answer) -> Vec<u8> {
    let signed: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    BASE64
        .decode(signed["Signature"].as_str().expect("a Signature"))
        .unwrap()
}

#[test]
fn a_fast_signing_request_is_answered_with_the_payload_and_a_signature_that_verifies() {
    let digest = [41u8; 32];
    let (id, answer) = fast_sign(&payload(&digest), None);
    let answer = answer.unwrap();
    assert!(
        answer
            .body
            .starts_with(payload(&digest).trim_end().trim_end_matches('}').trim_end()),
        "{}",
        answer.body
    );
    verify("ec-256", &digest, SignatureScheme::EcdsaIeee, &signature(&answer));
    let audited = audited(&id);
    assert_eq!(audited.outcome, "allowed");
    assert_eq!(audited.policy.as_deref(), Some("ec-256"));
}

#[test]
fn a_fast_signing_retry_with_its_idempotency_key_gets_the_first_signed_payload() {
    let key = uuid::Uuid::new_v4().to_string();
    let digest = [42u8; 32];
    let (_, first) = fast_sign(&payload(&digest), Some(&key));
    let first = first.unwrap();
    let (replay_id, again) = fast_sign(&payload(&digest), Some(&key));
    // ECDSA signatures are randomized: a second signature would be another answer.
    assert_eq!(
        again.unwrap().body,
        first.body,
        "the same signed payload, not a second signature"
    );
    assert_eq!(audited(&replay_id).algorithm.as_deref(), Some("replay"));
}
