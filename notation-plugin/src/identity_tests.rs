#![allow(clippy::unwrap_used)]

use std::str::FromStr as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::*;

/// A self-signed certificate (DER) whose subject is `attributes`, in this order.
fn leaf(attributes: &[(rcgen::DnType, &str)]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in attributes {
        params.distinguished_name.push(kind.clone(), *value);
    }
    params.self_signed(&key).unwrap().der().to_vec()
}

fn acme() -> Vec<u8> {
    use rcgen::DnType::*;
    leaf(&[
        (CountryName, "US"),
        (StateOrProvinceName, "WA"),
        (LocalityName, "Seattle"),
        (OrganizationName, "Acme, Inc."),
        (CommonName, "release signer"),
    ])
}

fn identities(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| (*e).to_owned()).collect()
}

const ACME_SUBJECT: &str = r"CN=release signer,O=Acme\, Inc.,L=Seattle,ST=WA,C=US";

#[test]
fn a_subset_of_the_leafs_subject_matches_in_any_order_with_escapes_and_the_s_alias() {
    let cert = acme();
    for entry in [
        r"x509.subject: C=US, ST=WA, O=Acme\, Inc.",
        r"x509.subject:O=Acme\2C Inc.;S=WA;C=US",
        r"x509.subject: CN=release signer , L=Seattle, O=Acme\, Inc., ST=WA, C=US",
    ] {
        assert_eq!(check(&identities(&[entry]), Some(&cert)), Ok(()), "{entry}");
    }
    // One matching entry among others is enough; entries of another kind are left to other verifiers.
    let mixed = identities(&[
        "x509.subject: C=US, ST=WA, O=Other",
        "example.com/identity: anything",
        r"x509.subject: C=US, ST=WA, O=Acme\, Inc.",
    ]);
    assert_eq!(check(&mixed, Some(&cert)), Ok(()));
}

#[test]
fn a_differing_or_missing_value_fails_naming_the_subject_and_the_identities() {
    let cert = acme();
    let trusted = identities(&[
        "x509.subject: C=US, ST=WA, O=Other",
        "x509.subject: C=US, ST=WA, O=Acme, OU=Build",
    ]);
    assert_eq!(
        check(&trusted, Some(&cert)),
        Err(format!(
            "the signing certificate's subject {ACME_SUBJECT} matches none of the trust policy's trusted identities \
             [\"x509.subject: C=US, ST=WA, O=Other\", \"x509.subject: C=US, ST=WA, O=Acme, OU=Build\"]"
        ))
    );
    // Values compare exactly, as notation's do.
    let case = identities(&[r"x509.subject: C=us, ST=WA, O=Acme\, Inc."]);
    assert!(check(&case, Some(&cert)).is_err());
}

#[test]
fn the_wildcard_trusts_any_identity() {
    assert_eq!(check(&identities(&["*"]), Some(&acme())), Ok(()));
    assert_eq!(check(&identities(&["*"]), Some(b"not a certificate")), Ok(()));
}

#[test]
fn a_malformed_entry_fails_with_its_fault() {
    let cert = acme();
    let fault = |entry: &str| check(&identities(&[entry]), Some(&cert)).unwrap_err();
    assert_eq!(
        fault("C=US, ST=WA, O=Acme"),
        "the trusted identity \"C=US, ST=WA, O=Acme\" has no ':' separating its type from its value \
         (write \"x509.subject: C=..., ST=..., O=...\" or \"*\")"
    );
    assert_eq!(
        fault("x509.subject: C=US, O=Acme"),
        "the trusted identity \"x509.subject: C=US, O=Acme\" is malformed: it has no ST; a DN must hold C, ST (or S) \
         and O at least"
    );
    assert_eq!(
        fault("x509.subject: C=US+ST=WA, O=Acme"),
        "the trusted identity \"x509.subject: C=US+ST=WA, O=Acme\" is malformed: it has a multi-valued RDN ('+'), \
         which notation does not support"
    );
    assert!(fault("x509.subject: C=US, ST=WA, O=#0c0441636d65").contains("'#' hex"));
    assert!(fault("x509.subject: C=US, ST=WA, O=A, O=B").contains("names the attribute O twice"));
    assert!(fault(r"x509.subject: C=US, ST=WA, O=Acme\").contains("lone '\\'"));
    assert!(
        fault(r"x509.subject: C=US, ST=WA, O=Ac\zzme").contains("neither a special character nor two hex")
    );
    assert!(fault("x509.subject: C=US, ST=WA, Acme").contains("no '='"));
    assert!(fault("x509.subject:  ").contains("has no distinguished name"));
    assert_eq!(
        check(&identities(&["example.com/identity: x"]), Some(&cert)).unwrap_err(),
        "the trust policy names no x509.subject identity to match the signing certificate against: \
         [\"example.com/identity: x\"]"
    );
}

#[test]
fn a_multi_valued_rdn_of_the_leaf_matches_its_attributes_in_any_order() {
    let name = x509_cert::name::Name::from_str("O=Acme+OU=Build,ST=WA,C=US").unwrap();
    let subject = certificate_subject(&name).unwrap();
    for entry in [
        "C=US, ST=WA, O=Acme, OU=Build",
        "OU=Build, O=Acme, ST=WA, C=US",
        "C=US, ST=WA, O=Acme",
    ] {
        assert!(
            is_subset(&parse_distinguished_name(entry).unwrap(), &subject),
            "{entry}"
        );
    }
    assert!(!is_subset(
        &parse_distinguished_name("C=US, ST=WA, O=Acme, OU=Ops").unwrap(),
        &subject
    ));
}

#[test]
fn a_leaf_subject_notation_cannot_read_fails() {
    let twice = x509_cert::name::Name::from_str("OU=A,OU=B,O=Acme,ST=WA,C=US").unwrap();
    assert!(certificate_subject(&twice)
        .unwrap_err()
        .contains("names OU more than once"));
    let without_state = leaf(&[
        (rcgen::DnType::CountryName, "US"),
        (rcgen::DnType::OrganizationName, "Acme"),
    ]);
    assert_eq!(
        check(&identities(&["x509.subject: C=US, ST=WA, O=Acme"]), Some(&without_state)).unwrap_err(),
        "the signing certificate's subject O=Acme,C=US cannot be matched: it has no ST; a DN must hold C, ST (or S) \
         and O at least"
    );
}

#[test]
fn verify_signature_answers_the_trusted_identity_capability_under_its_own_key() {
    use crate::verify::{verify_signature, CAPABILITY_TRUSTED_IDENTITY};
    let answer = |trusted: &str| {
        let request = serde_json::json!({
            "contractVersion": "1.0",
            "signature": {
                "criticalAttributes": {"contentType": "application/vnd.cncf.notary.payload.v1+json", "signingScheme": "notary.x509"},
                "unprocessedAttributes": [],
                "certificateChain": [BASE64.encode(acme())]
            },
            "trustPolicy": {"trustedIdentities": [trusted], "signatureVerification": [CAPABILITY_TRUSTED_IDENTITY]}
        });
        let response = verify_signature(&serde_json::to_vec(&request).unwrap()).unwrap();
        serde_json::to_string(&response).unwrap()
    };
    assert_eq!(
        answer(r"x509.subject: C=US, ST=WA, O=Acme\, Inc."),
        r#"{"verificationResults":{"SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":true}},"processedAttributes":[]}"#
    );
    assert_eq!(
        answer("x509.subject: C=US, ST=WA, O=Other"),
        r#"{"verificationResults":{"SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":false,"reason":"the signing certificate's subject CN=release signer,O=Acme\\, Inc.,L=Seattle,ST=WA,C=US matches none of the trust policy's trusted identities [\"x509.subject: C=US, ST=WA, O=Other\"]"}},"processedAttributes":[]}"#
    );
}
