#![allow(clippy::unwrap_used, clippy::expect_used)]

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;

use super::*;

/// A self-signed CA (rcgen) and its key as p256 signs with it.
fn ca(name: &str) -> (Vec<u8>, p256::ecdsa::SigningKey) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
    (cert.der().to_vec(), signing)
}

fn revocation(scope: Scope) -> Revocation {
    Revocation {
        scope,
        reason: "build compromised".into(),
        revoked_at: "2026-01-02T00:00:00Z".into(),
        revoked_by: None,
        signatures: Vec::new(),
    }
}

fn list(next_update: OffsetDateTime) -> RevocationList {
    RevocationList {
        version: 1,
        organization: "org".into(),
        request: None,
        issued_at: format_time(OffsetDateTime::now_utc() - time::Duration::minutes(5)),
        next_update: format_time(next_update),
        revoked_certificates: Vec::new(),
        revoked: vec![revocation(Scope::Request {
            request_id: "r-1".into(),
            client_request_id: Some("c-1".into()),
        })],
    }
}

fn sign(list: &RevocationList, cert: &[u8], key: &p256::ecdsa::SigningKey) -> SignedList {
    let bytes = serde_json::to_vec(list).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&bytes);
    SignedList::new(
        &bytes,
        "ECDSA-SHA-256".into(),
        signature.to_der().as_bytes(),
        &[cert.to_vec()],
    )
}

#[test]
fn a_request_revocation_covers_its_request_by_either_id_and_nothing_else() {
    let r = revocation(Scope::Request {
        request_id: "r-1".into(),
        client_request_id: Some("c-1".into()),
    });
    let with = |request| SignatureFacts {
        request: Some(request),
        ..SignatureFacts::default()
    };
    assert!(r.covers(&with("r-1")));
    assert!(r.covers(&with("c-1")));
    assert!(!r.covers(&with("r-2")));
    assert!(!r.covers(&SignatureFacts::default()));
}

#[test]
fn a_policy_revocation_covers_only_what_it_signed_after_the_moment() {
    let r = revocation(Scope::PolicySignedAfter {
        policy: "P/release".into(),
        signed_after: "2026-01-01T12:00:00Z".into(),
    });
    let at = |policy, time: &str| SignatureFacts {
        policy: Some(policy),
        signed_at: Some(parse_time(time).unwrap()),
        ..SignatureFacts::default()
    };
    assert!(r.covers(&at("P/release", "2026-01-01T12:00:01Z")));
    assert!(!r.covers(&at("P/release", "2026-01-01T11:59:59Z")));
    assert!(!r.covers(&at("P/other", "2026-01-02T00:00:00Z")));
    // The policy's signature whose time is unknown: fail closed.
    let unknown = SignatureFacts {
        policy: Some("P/release"),
        ..SignatureFacts::default()
    };
    assert!(r.covers(&unknown));
}

#[test]
fn a_release_group_or_signature_hash_revocation_covers_its_signatures() {
    let mut r = revocation(Scope::ReleaseGroup {
        release_group: "v1.2".into(),
    });
    let group = SignatureFacts {
        release_group: Some("v1.2"),
        ..SignatureFacts::default()
    };
    assert!(r.covers(&group));
    let sha = "ab".repeat(32);
    let by_hash = SignatureFacts {
        signature_sha256: Some(&sha),
        ..SignatureFacts::default()
    };
    assert!(!r.covers(&by_hash));
    r.signatures.push(sha.to_ascii_uppercase());
    assert!(r.covers(&by_hash));
}

#[test]
fn a_list_signed_by_a_ca_of_the_chain_verifies_and_round_trips() {
    let (cert, key) = ca("Issuing CA");
    let original = list(OffsetDateTime::now_utc() + time::Duration::hours(1));
    let signed = sign(&original, &cert, &key);
    let bytes = serde_json::to_vec(&signed).unwrap();
    let read = SignedList::parse(&bytes)
        .unwrap()
        .verify(std::slice::from_ref(&cert), OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(read, original);
}

#[test]
fn an_expired_list_fails_closed() {
    let (cert, key) = ca("Issuing CA");
    let signed = sign(
        &list(OffsetDateTime::now_utc() - time::Duration::seconds(1)),
        &cert,
        &key,
    );
    let error = signed.verify(&[cert], OffsetDateTime::now_utc()).unwrap_err();
    assert!(matches!(error, ListError::Expired { .. }), "{error}");
}

#[test]
fn a_list_signed_by_another_ca_or_tampered_with_is_refused() {
    let (cert, key) = ca("Issuing CA");
    let (other_cert, other_key) = ca("Someone else");
    let fresh = list(OffsetDateTime::now_utc() + time::Duration::hours(1));
    // Signed by a CA that is not in the signature's chain.
    let foreign = sign(&fresh, &other_cert, &other_key);
    let error = foreign
        .verify(std::slice::from_ref(&cert), OffsetDateTime::now_utc())
        .unwrap_err();
    assert!(matches!(error, ListError::UntrustedSigner { .. }), "{error}");
    // The trusted CA's certificate with another key's signature.
    let mut forged = sign(&fresh, &cert, &other_key);
    let error = forged
        .verify(std::slice::from_ref(&cert), OffsetDateTime::now_utc())
        .unwrap_err();
    assert!(matches!(error, ListError::BadSignature(_)), "{error}");
    // A revocation taken out of a correctly signed list.
    let mut emptied = fresh.clone();
    emptied.revoked.clear();
    forged = sign(&fresh, &cert, &key);
    forged.list = STANDARD.encode(serde_json::to_vec(&emptied).unwrap());
    let error = forged.verify(&[cert], OffsetDateTime::now_utc()).unwrap_err();
    assert!(matches!(error, ListError::BadSignature(_)), "{error}");
}
