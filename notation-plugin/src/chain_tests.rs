//! Chains built here with x509-cert's builder and P-256 keys: one good chain, and one wrong in each way Notary
//! rejects.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::*;

const KEY_ID: &str = "demo/ec-256";
const DAY: Duration = Duration::from_secs(86_400);

struct Issued {
    key: SigningKey,
    name: Name,
    der: Vec<u8>,
}

fn new_key() -> SigningKey {
    SigningKey::random(&mut rand_core::OsRng)
}

fn validity(from: SystemTime, to: SystemTime) -> Validity {
    Validity {
        not_before: Time::try_from(from).unwrap(),
        not_after: Time::try_from(to).unwrap(),
    }
}

fn this_year() -> Validity {
    let now = SystemTime::now();
    validity(now - DAY, now + 365 * DAY)
}

/// Issues a certificate for a new key; `issuer` None makes it self-signed.
fn issue(
    subject: &str,
    profile: impl FnOnce(Option<Name>) -> Profile,
    issuer: Option<&Issued>,
    validity: Validity,
    extra: impl FnOnce(&mut CertificateBuilder<'_, SigningKey>),
) -> Issued {
    let key = new_key();
    let name = Name::from_str(subject).unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
    let signer = issuer.map_or(&key, |i| &i.key);
    let mut builder = CertificateBuilder::new(
        profile(issuer.map(|i| i.name.clone())),
        SerialNumber::from(7u32),
        validity,
        name.clone(),
        spki,
        signer,
    )
    .unwrap();
    extra(&mut builder);
    let der = builder.build::<DerSignature>().unwrap().to_der().unwrap();
    Issued { key, name, der }
}

/// The same certificate with edited extensions, signed again by `issuer`: for shapes the builder's profiles
/// do not make.
fn reissue(cert: &Issued, issuer: &Issued, edit: impl FnOnce(&mut Vec<Extension>)) -> Issued {
    let mut parsed = Certificate::from_der(&cert.der).unwrap();
    edit(parsed.tbs_certificate.extensions.get_or_insert_with(Vec::new));
    let tbs = parsed.tbs_certificate.to_der().unwrap();
    let signature: DerSignature = issuer.key.sign(&tbs);
    parsed.signature = BitString::from_bytes(signature.as_bytes()).unwrap();
    Issued {
        key: cert.key.clone(),
        name: cert.name.clone(),
        der: parsed.to_der().unwrap(),
    }
}

fn new_root() -> Issued {
    issue(
        "CN=Root,O=Test,C=US",
        |_| Profile::Root,
        None,
        this_year(),
        |_| {},
    )
}

fn sub_ca(issuer: &Issued, path_len: Option<u8>) -> Issued {
    issue(
        "CN=Intermediate,O=Test,C=US",
        |i| Profile::SubCA {
            issuer: i.unwrap(),
            path_len_constraint: path_len,
        },
        Some(issuer),
        this_year(),
        |_| {},
    )
}

fn leaf_profile(issuer: Option<Name>) -> Profile {
    Profile::Leaf {
        issuer: issuer.unwrap(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    }
}

fn new_leaf(issuer: &Issued) -> Issued {
    issue(
        "CN=Leaf,O=Test,C=US",
        leaf_profile,
        Some(issuer),
        this_year(),
        |_| {},
    )
}

fn check(chain: &[&Issued]) -> Result<(), ChainError> {
    let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.der.clone()).collect();
    validate(KEY_ID, &ders, SystemTime::now())
}

#[test]
fn leaf_intermediate_root_is_accepted() {
    let root = new_root();
    let ca = sub_ca(&root, Some(0));
    let leaf = new_leaf(&ca);
    check(&[&leaf, &ca, &root]).unwrap();
}

#[test]
fn chain_without_root_names_the_last_certificate_and_the_fix() {
    let root = new_root();
    let ca = sub_ca(&root, None);
    let leaf = new_leaf(&ca);
    let error = check(&[&leaf, &ca]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the certificate chain of demo/ec-256 ends at CN=Intermediate,O=Test,C=US, which is not self-signed: \
         set CertificateChainFile (SIGNPATH_CERTIFICATE_CHAIN_FILE) to a PEM file with the intermediate and root \
         certificates, in that order"
    );
    assert!(matches!(check(&[&leaf]), Err(ChainError::NoRoot { .. })));
}

#[test]
fn wrong_order_and_foreign_issuers_are_rejected() {
    let root = new_root();
    let ca = sub_ca(&root, None);
    let leaf = new_leaf(&ca);
    let error = check(&[&leaf, &root, &ca]).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "the certificate chain of demo/ec-256 is not in order: CN=Leaf,O=Test,C=US is not issued by \
             CN=Root,O=Test,C=US, the certificate after it (its issuer is CN=Intermediate,O=Test,C=US)"
        ),
        "{error}"
    );
    let error = check(&[&root, &root]).unwrap_err();
    assert!(matches!(error, ChainError::SelfSignedBeforeEnd { .. }), "{error}");

    // Same names, another key: the names match but the signature does not verify.
    let impostor = new_root();
    let error = check(&[&leaf, &ca, &impostor]).unwrap_err();
    match &error {
        ChainError::NotIssuedBy { subject, reason, .. } => {
            assert_eq!(subject, "CN=Intermediate,O=Test,C=US");
            assert!(reason.contains("does not verify"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn expired_and_future_certificates_are_rejected() {
    let now = SystemTime::now();
    let root = new_root();
    let expired = issue(
        "CN=Old,O=Test,C=US",
        leaf_profile,
        Some(&root),
        validity(now - 10 * DAY, now - DAY),
        |_| {},
    );
    let error = check(&[&expired, &root]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("CN=Old,O=Test,C=US in the chain of demo/ec-256 expired on"),
        "{error}"
    );
    let future = issue(
        "CN=New,O=Test,C=US",
        leaf_profile,
        Some(&root),
        validity(now + DAY, now + 10 * DAY),
        |_| {},
    );
    assert!(check(&[&future, &root])
        .unwrap_err()
        .to_string()
        .contains("is not valid before"));
}

#[test]
fn leaf_with_tls_usage_or_encipherment_is_rejected() {
    let root = new_root();
    let tls = issue(
        "CN=Tls,O=Test,C=US",
        leaf_profile,
        Some(&root),
        this_year(),
        |b| {
            b.add_extension(&ExtendedKeyUsage(vec![oids::ID_KP_SERVER_AUTH]))
                .unwrap();
        },
    );
    let error = check(&[&tls, &root]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("its extended key usage includes serverAuth"),
        "{error}"
    );

    let encipher = issue(
        "CN=Enc,O=Test,C=US",
        |i| Profile::Leaf {
            issuer: i.unwrap(),
            enable_key_agreement: true,
            enable_key_encipherment: false,
        },
        Some(&root),
        this_year(),
        |_| {},
    );
    let error = check(&[&encipher, &root]).unwrap_err();
    assert!(
        error.to_string().contains("its key usage includes keyAgreement"),
        "{error}"
    );
}

#[test]
fn leaf_without_a_critical_key_usage_is_rejected() {
    let root = new_root();
    let leaf = new_leaf(&root);
    let bare = reissue(&leaf, &root, |extensions| {
        extensions.retain(|e| e.extn_id != oids::ID_CE_KEY_USAGE)
    });
    let error = check(&[&bare, &root]).unwrap_err();
    assert!(
        error.to_string().contains("it has no key usage extension"),
        "{error}"
    );

    let lax = reissue(&leaf, &root, |extensions| {
        for e in extensions
            .iter_mut()
            .filter(|e| e.extn_id == oids::ID_CE_KEY_USAGE)
        {
            e.critical = false;
        }
    });
    let error = check(&[&lax, &root]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("its key usage extension is not critical"),
        "{error}"
    );
}

#[test]
fn ca_without_ca_constraints_or_key_cert_sign_is_rejected() {
    let root = new_root();
    // A "CA" issued as a leaf: cA=false.
    let not_ca = issue(
        "CN=NotCa,O=Test,C=US",
        leaf_profile,
        Some(&root),
        this_year(),
        |_| {},
    );
    let leaf = new_leaf(&not_ca);
    let error = check(&[&leaf, &not_ca, &root]).unwrap_err();
    assert!(
        error.to_string().contains("its basic constraints say cA=false"),
        "{error}"
    );

    let ca = sub_ca(&root, None);
    let manual_ca = reissue(&ca, &root, |extensions| {
        for e in extensions
            .iter_mut()
            .filter(|e| e.extn_id == oids::ID_CE_KEY_USAGE)
        {
            let usage = KeyUsage(KeyUsages::DigitalSignature.into()).to_der().unwrap();
            e.extn_value = OctetString::new(usage).unwrap();
        }
    });
    let leaf = new_leaf(&manual_ca);
    let error = check(&[&leaf, &manual_ca, &root]).unwrap_err();
    assert!(
        error.to_string().contains("its key usage lacks keyCertSign"),
        "{error}"
    );
}

#[test]
fn path_length_constraints_are_honoured() {
    let root = new_root();
    let upper = sub_ca(&root, Some(0));
    let lower = issue(
        "CN=Lower,O=Test,C=US",
        |i| Profile::SubCA {
            issuer: i.unwrap(),
            path_len_constraint: None,
        },
        Some(&upper),
        this_year(),
        |_| {},
    );
    let leaf = new_leaf(&lower);
    let error = check(&[&leaf, &lower, &upper, &root]).unwrap_err();
    assert!(error.to_string().contains("path length constraint 0"), "{error}");
}

#[test]
fn garbage_is_reported_with_its_position() {
    let root = new_root();
    let error = validate(KEY_ID, &[root.der.clone(), b"junk".to_vec()], SystemTime::now()).unwrap_err();
    assert!(
        matches!(error, ChainError::Malformed { position: 2, .. }),
        "{error}"
    );
}

#[test]
fn a_self_signed_leaf_alone_is_accepted() {
    let key = new_key();
    let name = Name::from_str("CN=Self,O=Test,C=US").unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
    let builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: name.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        SerialNumber::from(1u32),
        this_year(),
        name,
        spki,
        &key,
    )
    .unwrap();
    let der = builder.build::<DerSignature>().unwrap().to_der().unwrap();
    validate(KEY_ID, &[der], SystemTime::now()).unwrap();
}

#[test]
fn a_cached_chain_is_checked_again_except_for_its_signatures() {
    let ders = |chain: &[&Issued]| chain.iter().map(|c| c.der.clone()).collect::<Vec<_>>();
    let root = new_root();
    let ca = sub_ca(&root, None);
    let leaf = new_leaf(&ca);
    // An impostor root with the same name: only the signature check tells it apart. The chain never reaches the
    // cache (validate refuses it before it is stored), which is what lets revalidate_cached skip the check.
    let impostor = new_root();
    let forged = ders(&[&leaf, &ca, &impostor]);
    assert!(matches!(
        validate(KEY_ID, &forged, SystemTime::now()),
        Err(ChainError::NotIssuedBy { .. })
    ));
    assert!(revalidate_cached(KEY_ID, &forged, SystemTime::now()).is_ok());

    // Everything else is checked as before: time, order, names, profiles.
    let good = ders(&[&leaf, &ca, &root]);
    assert!(revalidate_cached(KEY_ID, &good, SystemTime::now()).is_ok());
    let later = SystemTime::now() + 400 * DAY;
    assert!(matches!(
        revalidate_cached(KEY_ID, &good, later),
        Err(ChainError::NotValidNow { .. })
    ));
    assert!(matches!(
        revalidate_cached(KEY_ID, &ders(&[&leaf, &root, &ca]), SystemTime::now()),
        Err(ChainError::NotIssuedBy { .. })
    ));
    assert!(matches!(
        revalidate_cached(KEY_ID, &ders(&[&ca, &root]), SystemTime::now()),
        Err(ChainError::Leaf { .. })
    ));
}
