//! What `pkcs11_module.rs` needs beyond the shared PKCS#11 support: taking turns with the module's
//! process-wide state, PSS parameters per hash, and the checks of the objects a token shows for each policy
//! (certificate, private and public key) and for the CAs above them.
#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::sync::{Mutex, MutexGuard};

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, CertificateType, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki_sys::*;

use common::keys::{HashAlgorithm, KeyKind};
use common::x509::ParsedCertificate;

use crate::pkcs11_support::raw::Raw;
use crate::pkcs11_support::{gateway, Key};

/// Takes this test's turn with the module, which starts uninitialized even if the previous test failed midway.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let turn = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gateway();
    Raw::load().finalize();
    turn
}

/// PSS parameters as clients pass them: MGF1 and a salt as long as the hash.
pub fn pss(hash: HashAlgorithm) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        HashAlgorithm::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (hash.output_len() as u64).into(),
    }
}

/// The policy's certificate: one object with the key's CKA_ID, holding the key, with the attributes clients read.
pub fn assert_certificate_object(session: &Session, key: &Key) {
    let id = key.label.as_bytes().to_vec();
    let certificates = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.clone()),
        ])
        .unwrap();
    assert_eq!(
        certificates.len(),
        1,
        "{}: one certificate with the key's CKA_ID",
        key.label
    );
    let attributes = session
        .get_attributes(
            certificates[0],
            &[
                AttributeType::Value,
                AttributeType::Label,
                AttributeType::CertificateType,
                AttributeType::Subject,
                AttributeType::Issuer,
                AttributeType::SerialNumber,
                AttributeType::Token,
            ],
        )
        .unwrap();
    let value = attributes.iter().find_map(|a| match a {
        Attribute::Value(v) => Some(v.clone()),
        _ => None,
    });
    let certificate = ParsedCertificate::from_der(&value.unwrap()).unwrap();
    assert_eq!(
        certificate.public_key().unwrap(),
        key.public,
        "{}: certificate holds the key",
        key.label
    );
    assert!(attributes.contains(&Attribute::Label(id.clone())));
    assert!(attributes.contains(&Attribute::CertificateType(CertificateType::X_509)));
    assert!(attributes.contains(&Attribute::Subject(certificate.subject_der())));
    assert!(attributes.contains(&Attribute::Issuer(certificate.issuer_der())));
    assert!(attributes.contains(&Attribute::SerialNumber(certificate.serial_der())));
    assert!(attributes.contains(&Attribute::Token(true)));
}

/// The policy's private key (and an RSA policy's public key) with the attributes clients read and nothing secret.
pub fn assert_private_key_objects(session: &Session, key: &Key) {
    let id = key.label.as_bytes().to_vec();
    // What crypto11, SunPKCS11, libp11 and p11tool read from the private key.
    let private = session
        .get_attributes(
            key.private,
            &[
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sign,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysAuthenticate,
                AttributeType::Derive,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
            ],
        )
        .unwrap();
    let key_type = match key.public.kind() {
        KeyKind::Rsa { .. } => KeyType::RSA,
        KeyKind::Ec(_) => KeyType::EC,
    };
    for expected in [
        Attribute::Id(id.clone()),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::AlwaysAuthenticate(false),
        Attribute::Derive(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
    ] {
        assert!(
            private.contains(&expected),
            "{}: private key has {expected:?}",
            key.label
        );
    }
    let secret = match key.public.kind() {
        KeyKind::Rsa { .. } => AttributeType::PrivateExponent,
        KeyKind::Ec(_) => AttributeType::Value,
    };
    assert!(matches!(
        session.get_attribute_info(key.private, &[secret]).unwrap()[..],
        [AttributeInfo::Sensitive]
    ));
    if let KeyKind::Rsa { bits } = key.public.kind() {
        let public = session
            .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)])
            .unwrap();
        let attributes = session
            .get_attributes(public[0], &[AttributeType::ModulusBits, AttributeType::Verify])
            .unwrap();
        assert!(attributes.contains(&Attribute::ModulusBits((bits as u64).into())));
        assert!(attributes.contains(&Attribute::Verify(true)));
    }
}

/// The CA certificates above the policies' ones are objects too, the gateway's root once, labelled by subject.
pub fn assert_ca_certificates_on_token(session: &Session) {
    // The CA certificates above the policies', for SunPKCS11's chains (raw: cryptoki has no CKA_CERTIFICATE_CATEGORY).
    let raw = Raw::load();
    let authorities = raw
        .find(
            session.handle(),
            &[
                (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
                (
                    CKA_CERTIFICATE_CATEGORY,
                    CK_CERTIFICATE_CATEGORY_AUTHORITY.to_ne_bytes().to_vec(),
                ),
            ],
        )
        .unwrap();
    assert!(!authorities.is_empty(), "the chain's CA certificates are objects");
    let root = ParsedCertificate::from_der(&gateway().root_ca_der()).unwrap();
    let root_objects = raw
        .find(
            session.handle(),
            &[
                (CKA_CLASS, CKO_CERTIFICATE.to_ne_bytes().to_vec()),
                (CKA_VALUE, root.der().to_vec()),
            ],
        )
        .unwrap();
    assert!(authorities.contains(&root_objects[0]));
    let (_, label) = raw.attributes(session.handle(), root_objects[0], &[(CKA_LABEL, Some(1024))]);
    assert_eq!(
        String::from_utf8(label[0].1.clone()).unwrap(),
        root.subject(),
        "a CA is labelled with its subject"
    );
    assert_eq!(
        root_objects.len(),
        1,
        "the gateway's root CA is on the token once"
    );
}
