//! The keyless certificate's encoding, signed with a software key (the HSM signs the same TBS bytes in
//! production): validity, EKU, SAN, and each Fulcio extension's OID and DER form.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use der::asn1::OctetString;
use der::Encode;
use p384::ecdsa::{DerSignature, SigningKey};
use spki::EncodePublicKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};

use super::*;

fn ca() -> (SigningKey, Certificate) {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let spki =
        SubjectPublicKeyInfoOwned::from_der(key.verifying_key().to_public_key_der().unwrap().as_bytes())
            .unwrap();
    let now = SystemTime::now();
    let validity = Validity {
        not_before: Time::try_from(now - Duration::from_secs(60)).unwrap(),
        not_after: Time::try_from(now + Duration::from_secs(3600)).unwrap(),
    };
    let name = Name::from_str("CN=Keyless Test,O=Test").unwrap();
    let builder =
        CertificateBuilder::new(Profile::Root, serial().unwrap(), validity, name, spki, &key).unwrap();
    let cert = builder.build::<DerSignature>().unwrap();
    (key, cert)
}

fn client_key() -> Vec<u8> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    key.verifying_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn extension<'c>(cert: &'c Certificate, oid: &str) -> Option<&'c x509_cert::ext::Extension> {
    let oid = ObjectIdentifier::new_unwrap(oid);
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
}

#[test]
fn a_keyless_certificate_is_a_ten_minute_code_signing_leaf_with_fulcios_extensions() {
    let (ca_key, ca_cert) = ca();
    let spki = client_key();
    let request = Request {
        identity: Identity::Uri(
            "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1".into(),
        ),
        extensions: vec![
            (
                FulcioExtension::IssuerV1,
                "https://token.actions.githubusercontent.com".into(),
            ),
            (
                FulcioExtension::Issuer,
                "https://token.actions.githubusercontent.com".into(),
            ),
            (
                FulcioExtension::SourceRepositoryUri,
                "https://github.com/acme/app".into(),
            ),
            (FulcioExtension::SourceRepositoryRef, "refs/tags/v1".into()),
            (FulcioExtension::BuildTrigger, "push".into()),
        ],
    };
    let now = SystemTime::now();
    let cert = issue_with::<_, DerSignature>(&ca_cert.tbs_certificate.subject, &ca_key, &spki, &request, now)
        .unwrap();
    let tbs = &cert.tbs_certificate;

    assert!(tbs.subject.0.is_empty(), "an empty subject, as Fulcio's");
    assert_eq!(tbs.issuer, ca_cert.tbs_certificate.subject);
    assert_eq!(tbs.subject_public_key_info.to_der().unwrap(), spki);
    let seconds = |t: &Time| t.to_unix_duration().as_secs();
    assert_eq!(
        seconds(&tbs.validity.not_after) - seconds(&tbs.validity.not_before),
        600
    );
    assert!(
        crate::pki::check::signed_by(&cert, &ca_cert).is_ok(),
        "signed by the CA"
    );

    let eku = extension(&cert, "2.5.29.37").unwrap();
    assert_eq!(
        ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).unwrap().0,
        vec![const_oid::db::rfc5280::ID_KP_CODE_SIGNING]
    );
    let basic = extension(&cert, "2.5.29.19").unwrap();
    assert!(
        !BasicConstraints::from_der(basic.extn_value.as_bytes())
            .unwrap()
            .ca
    );
    let san = extension(&cert, "2.5.29.17").unwrap();
    assert!(san.critical, "the SAN is critical when the subject is empty");
    assert_eq!(
        SubjectAltName::from_der(san.extn_value.as_bytes()).unwrap().0,
        vec![GeneralName::UniformResourceIdentifier(
            Ia5String::new("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1").unwrap()
        )]
    );

    // v1 (.1): the bare string; v2 (.8 and above): a DER UTF8String (tag 0x0c, length, bytes).
    let issuer_v1 = extension(&cert, "1.3.6.1.4.1.57264.1.1").unwrap();
    assert_eq!(
        issuer_v1.extn_value.as_bytes(),
        b"https://token.actions.githubusercontent.com"
    );
    let issuer_v2 = extension(&cert, "1.3.6.1.4.1.57264.1.8").unwrap();
    let mut expected = vec![0x0c, 43];
    expected.extend_from_slice(b"https://token.actions.githubusercontent.com");
    assert_eq!(issuer_v2.extn_value.as_bytes(), expected.as_slice());
    let repository = extension(&cert, "1.3.6.1.4.1.57264.1.12").unwrap();
    assert_eq!(
        Utf8StringRef::from_der(repository.extn_value.as_bytes())
            .unwrap()
            .as_str(),
        "https://github.com/acme/app"
    );
    let trigger = extension(&cert, "1.3.6.1.4.1.57264.1.20").unwrap();
    assert!(!trigger.critical);
    assert_eq!(
        trigger.extn_value,
        OctetString::new(vec![0x0c, 4, b'p', b'u', b's', b'h']).unwrap()
    );
}

#[test]
fn emails_and_usernames_are_their_own_san_forms() {
    let (ca_key, ca_cert) = ca();
    let san_of = |identity: Identity| {
        let request = Request {
            identity,
            extensions: Vec::new(),
        };
        let cert = issue_with::<_, DerSignature>(
            &ca_cert.tbs_certificate.subject,
            &ca_key,
            &client_key(),
            &request,
            SystemTime::now(),
        )
        .unwrap();
        let san = extension(&cert, "2.5.29.17").unwrap();
        SubjectAltName::from_der(san.extn_value.as_bytes()).unwrap().0
    };
    assert_eq!(
        san_of(Identity::Email("alice@example.com".into())),
        vec![GeneralName::Rfc822Name(
            Ia5String::new("alice@example.com").unwrap()
        )]
    );
    match &san_of(Identity::Username("alice!ci.example".into()))[..] {
        [GeneralName::OtherName(other)] => {
            assert_eq!(
                other.type_id,
                ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7")
            );
            assert_eq!(
                other.value.decode_as::<Utf8StringRef<'_>>().unwrap().as_str(),
                "alice!ci.example"
            );
        }
        other => panic!("not an otherName: {other:?}"),
    }
}

#[test]
fn each_extension_has_its_arc() {
    const ARC: &str = "1.3.6.1.4.1.57264.1";
    assert_eq!(FulcioExtension::Issuer.oid().to_string(), format!("{ARC}.8"));
    assert_eq!(
        FulcioExtension::RunInvocationUri.oid().to_string(),
        format!("{ARC}.21")
    );
    assert_eq!(
        FulcioExtension::SourceRepositoryVisibilityAtSigning
            .oid()
            .to_string(),
        format!("{ARC}.22")
    );
    assert_eq!(
        FulcioExtension::GithubWorkflowRef.oid().to_string(),
        format!("{ARC}.6")
    );
}

#[test]
fn a_csrs_key_is_taken_only_when_its_self_signature_verifies() {
    use x509_cert::builder::RequestBuilder;
    let key = SigningKey::random(&mut rand_core::OsRng);
    let builder = RequestBuilder::new(Name::from_str("CN=ignored").unwrap(), &key).unwrap();
    let request = builder.build::<DerSignature>().unwrap();
    let der = request.to_der().unwrap();
    assert_eq!(
        csr_public_key(&der).unwrap(),
        key.verifying_key().to_public_key_der().unwrap().as_bytes()
    );

    // The same request naming another key: its signature no longer proves possession of the key it names.
    let mut swapped = request.clone();
    swapped.info.public_key = SubjectPublicKeyInfoOwned::from_der(&client_key()).unwrap();
    let error = csr_public_key(&swapped.to_der().unwrap()).unwrap_err();
    assert!(matches!(error, CsrError::Signature(_)), "{error}");
    assert!(matches!(
        csr_public_key(b"not a request"),
        Err(CsrError::Malformed(_))
    ));
}
