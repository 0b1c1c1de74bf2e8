//! The signing core's lifecycle without a socket: a real SoftHSM2 token made by `init`, the SQLite stores, and
//! the core called as the HTTP layer calls it (authenticate, then the route's work, then `finish`). Each test
//! checks the answer or the refusal, and the audit record the store holds for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::keys::{HashAlgorithm, SignatureScheme};
use common::protocol::{problem_types as pt, SignHashResponse};
use common::pubkey::PublicKey;
use common::x509::ParsedCertificate;

use super::{Answer, Core, Reason, Refusal};

/// Release groups that count signatures, and approvers removed while requests wait.
mod approvals;
/// A file-based request's documents, and its signing where its layout is not on this gateway's disk.
mod artifact_requests;
/// One outcome per request, in the audit record and the log line.
mod audit;
/// Fast signing runs the typed `SignHash` request.
mod fast_signing;
/// One origin check for every signing path.
mod origin;
use crate::config::{ApprovalConfig, GatewayConfig, ReleaseGroupConfig};
use crate::store::{Record, Stores};

struct Fixture {
    core: Core,
    organization: String,
    /// Submits to every policy.
    token: String,
    /// Submits to `demo/ec-384` (approval) only.
    other: String,
    _dir: tempfile::TempDir,
}

/// One gateway setup per test binary: SoftHSM2 is initialized once per process.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let setup = dir.path().join("gw");
        crate::init::run(&setup, 0, 0, Path::new(crate::init::DEFAULT_SOFTHSM_MODULE)).unwrap();
        let config_path = setup.join("gateway.toml");
        use crate::cli::access::{add_approver, add_token};
        add_approver(&config_path, "alice", None).unwrap();
        // Bob is the person behind the `other` token: he cannot approve its requests.
        add_approver(&config_path, "bob", Some("Bob")).unwrap();
        let other = add_token(&config_path, "other", &["demo/ec-384".into()], Some("bob")).unwrap();
        let (mut config, base) = GatewayConfig::load(&config_path).unwrap();
        for policy in &mut config.projects[0].policies {
            if policy.slug == "rsa-2048" {
                policy.hash_algorithms.push(common::keys::HashAlgorithm::Sha1);
            }
            if policy.slug == "ec-384" {
                policy.approval = Some(ApprovalConfig {
                    approvers: vec!["alice".into(), "bob".into()],
                    required: 1,
                    release_group: Some(ReleaseGroupConfig {
                        max_signatures: 3,
                        window_seconds: 3600,
                    }),
                });
            }
        }
        config.save(&config_path).unwrap();
        let env = std::fs::read_to_string(setup.join("env")).unwrap();
        let token = env
            .lines()
            .find_map(|l| l.strip_prefix("export SIGNPATH_API_TOKEN='"))
            .unwrap()
            .trim_end_matches('\'')
            .to_owned();
        let pin = std::fs::read_to_string(base.join("hsm-pin")).unwrap();
        let signer = Arc::new(
            crate::hsm::Signer::new(
                crate::hsm::open(&config.hsm.module).unwrap(),
                &config.hsm.token_label,
                pin.trim(),
            )
            .unwrap(),
        );
        let state = super::state::State::load(&config, &base, signer).unwrap();
        let stores = Stores::sqlite(&base.join("audit.db")).unwrap();
        Fixture {
            core: Core::new(Arc::new(state), stores),
            organization: config.organization_id.clone(),
            token,
            other,
            _dir: dir,
        }
    })
}

fn record(idempotency_key: Option<&str>) -> Record {
    Record {
        request_id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: idempotency_key.map(str::to_owned),
        ..Record::default()
    }
}

fn request(policy: &str, digest: &[u8], group: Option<&str>) -> Vec<u8> {
    let algorithm = if policy.starts_with("rsa") { "Rsa" } else { "Ecdsa" };
    let mut data = serde_json::json!({
        "signatureAlgorithm": algorithm,
        "hash": BASE64.encode(digest),
    });
    if algorithm == "Rsa" {
        data["rsaOptions"] = serde_json::json!({"hashAlgorithmName": "Sha256"});
    }
    if let Some(group) = group {
        data["metadata"] = serde_json::json!({"releaseGroup": group});
    }
    serde_json::to_vec(&serde_json::json!({
        "projectSlug": "demo",
        "signingPolicySlug": policy,
        "hashSigningData": data,
    }))
    .unwrap()
}

/// A SignHash as the route runs it; the request id, and the answer after the audit record was written.
fn sign_hash(token: &str, body: &[u8], key: Option<&str>) -> (String, Result<Answer, Refusal>) {
    let f = fixture();
    let mut record = record(key);
    let id = record.request_id.clone();
    let result = f
        .core
        .authenticate(Some(&format!("Bearer {token}")), &f.organization, &mut record)
        .and_then(|token_id| f.core.sign_hash(&token_id, body, None, &mut record));
    (id, f.core.finish(record, result))
}

fn poll(token: &str, id: &str) -> Result<Answer, Refusal> {
    let f = fixture();
    let mut record = record(None);
    let result = f
        .core
        .authenticate(Some(&format!("Bearer {token}")), &f.organization, &mut record)
        .and_then(|token_id| f.core.request_status(&token_id, id, false, &mut record));
    f.core.finish(record, result)
}

fn audited(request_id: &str) -> Record {
    fixture()
        .core
        .stores
        .audit
        .records(None)
        .unwrap()
        .into_iter()
        .find(|r| r.request_id == request_id)
        .expect("every request has an audit record")
}

fn refusal(result: Result<Answer, Refusal>) -> Refusal {
    result.expect_err("the request must be refused")
}

fn signature(answer: &Answer) -> Vec<u8> {
    let response: SignHashResponse = serde_json::from_str(&answer.body).unwrap();
    BASE64
        .decode(response.hash_signing_result.expect("a signature").signature)
        .unwrap()
}

fn verify(policy: &str, digest: &[u8], scheme: SignatureScheme, signature: &[u8]) {
    let info = &fixture()
        .core
        .state
        .policies
        .iter()
        .find(|p| p.slug == policy)
        .unwrap()
        .info;
    let leaf = ParsedCertificate::from_der(&BASE64.decode(&info.certificate_bytes).unwrap()).unwrap();
    let key: PublicKey = leaf.public_key().unwrap();
    key.verify_digest(scheme, HashAlgorithm::Sha256, digest, signature)
        .expect("the signature verifies with the policy's certificate");
}

#[test]
fn a_digest_is_signed_with_the_policys_key_and_audited() {
    let digest = [7u8; 32];
    let (id, result) = sign_hash(&fixture().token, &request("ec-256", &digest, None), None);
    let answer = result.unwrap();
    assert!(answer.waiting.is_none());
    verify("ec-256", &digest, SignatureScheme::EcdsaIeee, &signature(&answer));
    let (_, rsa) = sign_hash(&fixture().token, &request("rsa-2048", &digest, None), None);
    verify(
        "rsa-2048",
        &digest,
        SignatureScheme::RsaPkcs1,
        &signature(&rsa.unwrap()),
    );
    let record = audited(&id);
    assert_eq!((record.outcome.as_str(), record.status), ("allowed", 200));
    assert_eq!(record.digest.as_deref(), Some(hex::encode(digest).as_str()));
    assert!(record.signature_sha256.is_some());
}

#[test]
fn each_refusal_has_its_reason_and_record() {
    let f = fixture();
    let body = request("ec-256", &[1u8; 32], None);
    let cases: [(&str, &str, Vec<u8>, Reason); 5] = [
        (
            "not-a-token",
            &f.organization,
            body.clone(),
            Reason::Unauthenticated,
        ),
        (&f.token, "another-org", body.clone(), Reason::ForeignOrganization),
        (&f.other, &f.organization, body.clone(), Reason::TokenNotAllowed),
        (
            &f.token,
            &f.organization,
            request("no-such", &[1u8; 32], None),
            Reason::UnknownPolicy,
        ),
        (
            &f.token,
            &f.organization,
            request("ec-256", &[1u8; 31], None),
            Reason::InvalidHash,
        ),
    ];
    for (token, organization, body, reason) in cases {
        let mut record = record(None);
        let id = record.request_id.clone();
        let result = f
            .core
            .authenticate(Some(&format!("Bearer {token}")), organization, &mut record)
            .and_then(|token_id| f.core.sign_hash(&token_id, &body, None, &mut record));
        let refused = refusal(f.core.finish(record, result));
        assert_eq!(refused.reason, reason, "{}", refused.detail);
        let record = audited(&id);
        assert_eq!(
            (record.outcome.as_str(), record.status),
            ("refused", reason.status())
        );
        assert_eq!(
            record.error_type.as_deref(),
            Some(pt::short(reason.problem_type()))
        );
        assert!(record.signature_sha256.is_none());
    }
    let (_, malformed) = sign_hash(&f.token, b"{not json", None);
    assert_eq!(refusal(malformed).reason, Reason::MalformedRequest);
}

#[test]
fn sha1_is_signed_only_where_the_policy_lists_it() {
    let f = fixture();
    // A 20-byte ECDSA digest is SHA-1's; demo/ec-256 keeps the default list (the SHA-2 family).
    let (id, result) = sign_hash(&f.token, &request("ec-256", &[7u8; 20], None), None);
    let refused = refusal(result);
    assert_eq!(refused.reason, Reason::HashAlgorithmNotAllowed);
    assert!(
        refused
            .detail
            .contains("does not sign Sha1 digests (it signs Sha256, Sha384, Sha512)"),
        "{}",
        refused.detail
    );
    let record = audited(&id);
    assert_eq!((record.status, record.outcome.as_str()), (400, "refused"));
    assert_eq!(record.hash_algorithm.as_deref(), Some("SHA-1"));

    // RSA names its hash: refused on a policy without Sha1, signed on one that lists it.
    let sha1_rsa = |policy: &str| {
        let mut body: serde_json::Value = serde_json::from_slice(&request(policy, &[9u8; 20], None)).unwrap();
        body["hashSigningData"]["rsaOptions"]["hashAlgorithmName"] = "Sha1".into();
        sign_hash(&f.token, &serde_json::to_vec(&body).unwrap(), None).1
    };
    assert_eq!(
        refusal(sha1_rsa("rsa-3072")).reason,
        Reason::HashAlgorithmNotAllowed
    );
    let answer = sha1_rsa("rsa-2048").expect("rsa-2048 lists Sha1");
    let info = &f
        .core
        .state
        .policies
        .iter()
        .find(|p| p.slug == "rsa-2048")
        .unwrap()
        .info;
    let leaf = ParsedCertificate::from_der(&BASE64.decode(&info.certificate_bytes).unwrap()).unwrap();
    let key: PublicKey = leaf.public_key().unwrap();
    key.verify_digest(
        SignatureScheme::RsaPkcs1,
        HashAlgorithm::Sha1,
        &[9u8; 20],
        &signature(&answer),
    )
    .expect("a SHA-1 PKCS#1 v1.5 signature with rsa-2048's key");
}

#[test]
fn an_idempotent_retry_gets_the_first_answer_and_another_body_is_refused() {
    let f = fixture();
    let key = uuid::Uuid::new_v4().to_string();
    let body = request("ec-256", &[2u8; 32], None);
    let (_, first) = sign_hash(&f.token, &body, Some(&key));
    let first = first.unwrap();
    let (replay_id, again) = sign_hash(&f.token, &body, Some(&key));
    assert_eq!(
        again.unwrap().body,
        first.body,
        "the same signature, not a second one"
    );
    assert_eq!(audited(&replay_id).algorithm.as_deref(), Some("replay"));
    let (_, other_body) = sign_hash(&f.token, &request("ec-256", &[3u8; 32], None), Some(&key));
    assert_eq!(refusal(other_body).reason, Reason::IdempotencyKeyReused);
    // The key is the token's own: another token's request with the same key is a request of its own.
    let (_, other_token) = sign_hash(&f.other, &request("ec-384", &[2u8; 48], None), Some(&key));
    assert!(other_token.unwrap().waiting.is_some());
}

#[test]
fn concurrent_requests_with_one_key_are_signed_once_and_all_get_that_answer() {
    let f = fixture();
    let key = uuid::Uuid::new_v4().to_string();
    let body = request("ec-256", &[5u8; 32], None);
    let start = std::sync::Barrier::new(8);
    let answers: Vec<(String, String)> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let (id, answer) = sign_hash(&f.token, &body, Some(&key));
                    (id, answer.unwrap().body)
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    // ECDSA signatures are randomized: a second signature would be another answer.
    assert!(
        answers.iter().all(|(_, body)| body == &answers[0].1),
        "{answers:?}"
    );
    let signed: Vec<String> = answers
        .iter()
        .filter_map(|(id, _)| audited(id).signature_sha256)
        .collect();
    assert_eq!(signed.len(), 1, "one of the requests signed, the others replayed");
}

#[test]
fn approval_holds_the_request_until_an_approver_agrees_and_signs_it_once() {
    let f = fixture();
    let digest = [4u8; 48];
    let (id, held) = sign_hash(&f.token, &request("ec-384", &digest, None), None);
    let held = held.unwrap();
    assert_eq!(
        held.waiting,
        Some(format!("/v1/{}/SigningRequests/{id}", f.organization))
    );
    assert_eq!(audited(&id).outcome, "pending");
    assert!(poll(&f.token, &id).unwrap().waiting.is_some(), "still waiting");
    assert_eq!(
        poll(&f.other, &id).unwrap_err().reason,
        Reason::UnknownSigningRequest,
        "not the other token's request"
    );

    let mut vote = record(None);
    f.core.vote("mallory", &id, true, None, &mut vote).unwrap_err();
    f.core.vote("alice", &id, true, None, &mut vote).unwrap();
    let signed = poll(&f.token, &id).unwrap();
    let signature = signature(&signed);
    let scheme = SignatureScheme::EcdsaIeee;
    let key = fixture()
        .core
        .state
        .policies
        .iter()
        .find(|p| p.slug == "ec-384")
        .unwrap();
    let leaf = ParsedCertificate::from_der(&BASE64.decode(&key.info.certificate_bytes).unwrap()).unwrap();
    leaf.public_key()
        .unwrap()
        .verify_digest(scheme, HashAlgorithm::Sha384, &digest, &signature)
        .unwrap();
    assert_eq!(
        poll(&f.token, &id).unwrap().body,
        signed.body,
        "signed once, answered again"
    );

    let (denied_id, _) = sign_hash(&f.token, &request("ec-384", &[5u8; 48], None), None);
    f.core
        .vote("bob", &denied_id, false, Some("not this one"), &mut record(None))
        .unwrap();
    let denied: SignHashResponse = serde_json::from_str(&poll(&f.token, &denied_id).unwrap().body).unwrap();
    assert_eq!(denied.status.as_deref(), Some("Denied"));
    assert!(denied.hash_signing_result.is_none());
}

#[test]
fn an_approved_release_group_covers_later_requests_of_its_group_only() {
    let f = fixture();
    let group = format!("rel-{}", uuid::Uuid::new_v4());
    let (first, held) = sign_hash(&f.token, &request("ec-384", &[6u8; 48], Some(&group)), None);
    assert!(held.unwrap().waiting.is_some());
    f.core
        .vote("alice", &first, true, None, &mut record(None))
        .unwrap();
    let (covered, answer) = sign_hash(&f.token, &request("ec-384", &[7u8; 48], Some(&group)), None);
    assert!(answer.unwrap().waiting.is_none(), "covered by the approved group");
    assert!(audited(&covered)
        .approval
        .unwrap()
        .contains(&format!("release group {group}")));
    let (_, elsewhere) = sign_hash(
        &f.token,
        &request("ec-384", &[8u8; 48], Some("another-group")),
        None,
    );
    assert!(elsewhere.unwrap().waiting.is_some(), "another group waits");
    // Another submitter of the same policy naming the approved group is not covered: it waits for an approval of
    // its own, and nothing is signed.
    let (intruder, answer) = sign_hash(&f.other, &request("ec-384", &[10u8; 48], Some(&group)), None);
    let answer = answer.unwrap();
    assert!(answer.waiting.is_some(), "another token's request waits");
    assert!(!answer.body.contains("signature"));
    assert_eq!(audited(&intruder).outcome, "pending");
}

/// The audit store of the fixture, made to fail on demand.
struct FlakyAudit {
    inner: Arc<dyn crate::store::AuditStore>,
    failing: std::sync::atomic::AtomicBool,
}

impl crate::store::AuditStore for FlakyAudit {
    fn append(
        &self,
        record: &Record,
        answer: Option<crate::store::IdempotentAnswer>,
    ) -> Result<(), crate::store::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::store::StoreError("disk full".into()));
        }
        self.inner.append(record, answer)
    }

    fn idempotent(
        &self,
        token_id: &str,
        key: &str,
    ) -> Result<Option<crate::store::StoredAnswer>, crate::store::StoreError> {
        self.inner.idempotent(token_id, key)
    }

    fn claim_key(
        &self,
        token_id: &str,
        key: &str,
        holder: &str,
        lease: std::time::Duration,
    ) -> Result<bool, crate::store::StoreError> {
        self.inner.claim_key(token_id, key, holder, lease)
    }

    fn release_key(&self, token_id: &str, key: &str, holder: &str) -> Result<(), crate::store::StoreError> {
        self.inner.release_key(token_id, key, holder)
    }

    fn signing_request(
        &self,
        token_id: &str,
        request_id: &str,
    ) -> Result<Option<String>, crate::store::StoreError> {
        self.inner.signing_request(token_id, request_id)
    }

    fn records(&self, limit: Option<u32>) -> Result<Vec<Record>, crate::store::StoreError> {
        self.inner.records(limit)
    }
}

#[test]
fn an_approved_request_is_completed_only_after_the_record_of_its_signature_is_durable() {
    let f = fixture();
    let (id, held) = sign_hash(&f.token, &request("ec-384", &[9u8; 48], None), None);
    assert!(held.unwrap().waiting.is_some());
    f.core.vote("bob", &id, true, None, &mut record(None)).unwrap();
    let audit = Arc::new(FlakyAudit {
        inner: f.core.stores.audit.clone(),
        failing: std::sync::atomic::AtomicBool::new(true),
    });
    let flaky = Core::new(
        f.core.state.clone(),
        Stores {
            audit: audit.clone(),
            approvals: f.core.stores.approvals.clone(),
            revocations: None,
            artifacts: None,
            request_revocations: f.core.stores.request_revocations.clone(),
            log: f.core.stores.log.clone(),
        },
    );
    let poll_with = |core: &Core| {
        let mut record = record(None);
        let result = core
            .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut record)
            .and_then(|token_id| core.request_status(&token_id, &id, false, &mut record));
        core.finish(record, result)
    };
    let refused = poll_with(&flaky).unwrap_err();
    assert_eq!(
        refused.reason,
        Reason::StoreUnavailable,
        "no durable record, no signature"
    );
    let status = f.core.stores.approvals.get(&id).unwrap().unwrap().status;
    assert_eq!(
        status,
        crate::store::Status::Approved,
        "given back, not completed"
    );
    audit.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let signed = poll_with(&flaky).unwrap();
    assert!(signed.body.contains("signature"));
    let status = f.core.stores.approvals.get(&id).unwrap().unwrap().status;
    assert_eq!(status, crate::store::Status::Completed);
}

#[test]
fn an_approver_cannot_approve_a_request_of_their_own_token() {
    let f = fixture();
    let (id, held) = sign_hash(&f.other, &request("ec-384", &[11u8; 48], None), None);
    assert!(held.unwrap().waiting.is_some());
    let mut vote = record(None);
    let vote_id = vote.request_id.clone();
    let result = f.core.vote("bob", &id, true, None, &mut vote);
    let refused = f
        .core
        .finish(vote, result.map(|()| Answer::done(String::new())))
        .unwrap_err();
    assert_eq!(refused.reason, Reason::OwnRequest);
    assert!(refused.detail.contains("owns token"), "{}", refused.detail);
    let audited_vote = audited(&vote_id);
    assert_eq!(
        (audited_vote.outcome.as_str(), audited_vote.status),
        ("refused", 403),
        "the attempt is audited"
    );
    let held = f.core.stores.approvals.get(&id).unwrap().unwrap();
    assert_eq!(held.status, crate::store::Status::Pending);
    assert!(held.approved_by.is_empty());
    // Another approver can.
    f.core.vote("alice", &id, true, None, &mut record(None)).unwrap();
}

#[test]
fn a_lookup_and_a_poll_are_audited_as_reads_not_as_signatures() {
    let f = fixture();
    let mut lookup = record(None);
    lookup.method = "GET".into();
    let id = lookup.request_id.clone();
    let result = f
        .core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut lookup)
        .and_then(|token_id| f.core.my_signing_policies(&token_id, Some("demo"), None));
    f.core.finish(lookup, result).expect("a lookup");
    assert_eq!(
        (audited(&id).outcome.as_str(), audited(&id).status),
        ("read", 200)
    );

    let digest = [9u8; 32];
    let (signed, result) = sign_hash(&f.token, &request("ec-256", &digest, None), None);
    result.expect("signed");
    assert_eq!(audited(&signed).outcome, "allowed");
    let mut poll = record(None);
    poll.method = "GET".into();
    let polled = poll.request_id.clone();
    let result = f
        .core
        .authenticate(Some(&format!("Bearer {}", f.token)), &f.organization, &mut poll)
        .and_then(|token_id| f.core.request_status(&token_id, &signed, true, &mut poll));
    let _ = f.core.finish(poll, result);
    assert_eq!(audited(&polled).outcome, "read");
}
