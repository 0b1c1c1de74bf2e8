#![allow(clippy::unwrap_used)]

use common::revocation_list::{format_time, Revocation, Scope};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;

use super::*;

/// A CA (rcgen, P-256) and its key as p256 signs with it.
fn ca() -> (Vec<u8>, p256::ecdsa::SigningKey) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (
        cert.der().to_vec(),
        p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
    )
}

/// A list file revoking request `c-revoked`, valid until `next_update`, signed by `key`.
fn list_file(
    dir: &std::path::Path,
    cert: &[u8],
    key: &p256::ecdsa::SigningKey,
    next_update: OffsetDateTime,
) -> String {
    list_file_revoking(dir, cert, key, next_update, Vec::new())
}

/// [`list_file`] that also names `revoked_certificates` (serials, hex).
fn list_file_revoking(
    dir: &std::path::Path,
    cert: &[u8],
    key: &p256::ecdsa::SigningKey,
    next_update: OffsetDateTime,
    revoked_certificates: Vec<String>,
) -> String {
    let list = RevocationList {
        version: 1,
        organization: "org".into(),
        request: None,
        issued_at: format_time(OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        next_update: format_time(next_update),
        revoked: vec![Revocation {
            scope: Scope::Request {
                request_id: "r-revoked".into(),
                client_request_id: Some("c-revoked".into()),
            },
            reason: "build compromised".into(),
            revoked_at: "2026-01-02T00:00:00Z".into(),
            revoked_by: None,
            signatures: Vec::new(),
        }],
        revoked_certificates,
    };
    let bytes = serde_json::to_vec(&list).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&bytes);
    let signed = SignedList::new(
        &bytes,
        "ECDSA-SHA-256".into(),
        signature.to_der().as_bytes(),
        &[cert.to_vec()],
    );
    let path = dir.join("revocations.json");
    std::fs::write(&path, serde_json::to_vec(&signed).unwrap()).unwrap();
    path.display().to_string()
}

/// The request notation sends for a signature of request `id`, whose chain is a leaf then `ca`.
fn request(id: &str, ca: &[u8], config: &[(&str, &str)]) -> Vec<u8> {
    let config: BTreeMap<&str, &str> = config.iter().copied().collect();
    serde_json::to_vec(&serde_json::json!({
        "contractVersion": "1.0",
        "signature": {
            "criticalAttributes": {
                "contentType": "application/vnd.cncf.notary.payload.v1+json",
                "signingScheme": "notary.x509",
                "extendedAttributes": {
                    "io.signpath.signingRequest": id,
                    "io.signpath.signingPolicy": "demo/ec-256",
                    "io.signpath.signedAt": "2026-01-01T00:00:00Z"
                }
            },
            "unprocessedAttributes": ["io.signpath.signingRequest", "io.signpath.signingPolicy", "io.signpath.signedAt"],
            "certificateChain": [BASE64.encode(b"leaf, not parsed"), BASE64.encode(ca)]
        },
        "trustPolicy": {"trustedIdentities": ["*"], "signatureVerification": [CAPABILITY_REVOCATION_CHECK]},
        "pluginConfig": config
    }))
    .unwrap()
}

fn result(response: &VerifySignatureResponse) -> &VerificationResult {
    &response.verification_results[CAPABILITY_REVOCATION_CHECK]
}

#[test]
fn a_revoked_request_fails_and_another_of_the_same_key_passes_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca();
    let file = list_file(
        dir.path(),
        &cert,
        &key,
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let revoked = verify_signature(&request("c-revoked", &cert, &[(REVOCATION_LIST, &file)])).unwrap();
    assert_eq!(
        result(&revoked),
        &VerificationResult {
            success: false,
            reason: Some(
                "signing request r-revoked was revoked at 2026-01-02T00:00:00Z: build compromised".into()
            )
        }
    );
    let other = verify_signature(&request("c-other", &cert, &[(REVOCATION_LIST, &file)])).unwrap();
    assert_eq!(
        result(&other),
        &VerificationResult {
            success: true,
            reason: None
        }
    );
    // Our attributes are reported processed, so notation accepts them as critical.
    assert_eq!(other.processed_attributes.len(), 3);
}

#[test]
fn an_expired_or_foreign_list_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca();
    let expired = list_file(
        dir.path(),
        &cert,
        &key,
        OffsetDateTime::now_utc() - time::Duration::seconds(1),
    );
    let response = verify_signature(&request("c-other", &cert, &[(REVOCATION_LIST, &expired)])).unwrap();
    let reason = result(&response).reason.clone().unwrap();
    assert!(!result(&response).success);
    assert!(reason.contains("the revocation list expired at"), "{reason}");
    // A list signed by a CA that is not in the signature's chain.
    let (other_cert, other_key) = ca();
    let foreign = list_file(
        dir.path(),
        &other_cert,
        &other_key,
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let response = verify_signature(&request("c-other", &cert, &[(REVOCATION_LIST, &foreign)])).unwrap();
    assert!(!result(&response).success);
    assert!(result(&response)
        .reason
        .clone()
        .unwrap()
        .contains("not a CA of the signature's certificate chain"));
}

#[test]
fn with_no_source_the_check_fails_and_says_so() {
    let (cert, _) = ca();
    let response = verify_signature(&request("c-other", &cert, &[])).unwrap();
    assert!(!result(&response).success);
    assert!(result(&response)
        .reason
        .clone()
        .unwrap()
        .starts_with("no revocation source"));
}

#[test]
fn an_unreachable_gateway_falls_back_to_the_list_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca();
    let file = list_file(
        dir.path(),
        &cert,
        &key,
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    // Port 9 on the loopback: nothing listens there.
    let config = [
        (REVOCATION_URL, "http://127.0.0.1:9"),
        (REVOCATION_LIST, file.as_str()),
    ];
    let response = verify_signature(&request("c-revoked", &cert, &config)).unwrap();
    assert!(!result(&response).success);
    assert!(result(&response).reason.clone().unwrap().contains("was revoked"));
}

#[test]
fn a_chain_holding_a_certificate_the_list_names_revoked_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca();
    let parsed = <x509_cert::Certificate as der::Decode>::from_der(&cert).unwrap();
    let serial = hex::encode(parsed.tbs_certificate.serial_number.as_bytes());
    let file = list_file_revoking(
        dir.path(),
        &cert,
        &key,
        OffsetDateTime::now_utc() + time::Duration::hours(1),
        vec![serial.to_ascii_uppercase()],
    );
    // Not a revoked request, but its chain holds the revoked CA certificate.
    let response = verify_signature(&request("c-other", &cert, &[(REVOCATION_LIST, &file)])).unwrap();
    assert!(!result(&response).success);
    let reason = result(&response).reason.clone().unwrap();
    assert!(
        reason.contains(&format!("(serial {serial}) of the signature's chain is revoked")),
        "{reason}"
    );
}
