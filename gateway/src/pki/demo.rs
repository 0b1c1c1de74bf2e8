//! The demonstration PKI `init` makes: a self-signed root → an intermediate → one code-signing leaf per HSM key, shaped to
//! pass Notary's certificate rules (leaf: critical KeyUsage digitalSignature (and nonRepudiation), EKU codeSigning; CAs: critical
//! basic constraints and keyCertSign; subjects with C, ST and O). The root and intermediate keys are software
//! P-384 keys kept 0600 under `DIR/ca`: this is a demonstration PKI; a site brings its own certificates.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::{Decode, EncodePem};
use p384::ecdsa::{DerSignature, SigningKey};
use pkcs8::EncodePublicKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

pub type PkiError = Box<dyn std::error::Error + Send + Sync>;

const DAY: u64 = 24 * 3600;

pub struct Ca {
    pub key: SigningKey,
    pub cert: Certificate,
}

fn validity(days: u64) -> Result<Validity, PkiError> {
    let now = SystemTime::now();
    Ok(Validity {
        not_before: Time::try_from(now - Duration::from_secs(3600))?,
        not_after: Time::try_from(now + Duration::from_secs(days * DAY))?,
    })
}

fn serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte
    Ok(SerialNumber::new(&bytes)?)
}

fn name(common_name: &str) -> Result<Name, PkiError> {
    // RFC 4514 order: most specific first.
    Ok(Name::from_str(&format!(
        "CN={common_name},O=SignPath Gateway Demo,ST=Vienna,C=AT"
    ))?)
}

fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    Ok(SubjectPublicKeyInfoOwned::from_der(
        key.verifying_key().to_public_key_der()?.as_bytes(),
    )?)
}

pub fn root(common_name: &str) -> Result<Ca, PkiError> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let builder = CertificateBuilder::new(
        Profile::Root,
        serial()?,
        validity(3650)?,
        name(common_name)?,
        spki_of(&key)?,
        &key,
    )?;
    let cert = builder.build::<DerSignature>()?;
    Ok(Ca { key, cert })
}

pub fn intermediate(common_name: &str, issuer: &Ca) -> Result<Ca, PkiError> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let profile = Profile::SubCA {
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        path_len_constraint: Some(0),
    };
    let builder = CertificateBuilder::new(
        profile,
        serial()?,
        validity(3650)?,
        name(common_name)?,
        spki_of(&key)?,
        &issuer.key,
    )?;
    let cert = builder.build::<DerSignature>()?;
    Ok(Ca { key, cert })
}

/// A code-signing leaf for a public key held elsewhere (the HSM).
pub fn leaf(common_name: &str, spki_der: &[u8], issuer: &Ca) -> Result<Certificate, PkiError> {
    // The Leaf profile adds basic constraints (CA:FALSE), key identifiers and a critical KeyUsage of
    // digitalSignature and nonRepudiation (contentCommitment), which Notary allows.
    let profile = Profile::Leaf {
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)?;
    let mut builder = CertificateBuilder::new(
        profile,
        serial()?,
        validity(365)?,
        name(common_name)?,
        spki,
        &issuer.key,
    )?;
    builder.add_extension(&ExtendedKeyUsage(vec![
        const_oid::db::rfc5280::ID_KP_CODE_SIGNING,
    ]))?;
    Ok(builder.build::<DerSignature>()?)
}

pub fn pem(cert: &Certificate) -> Result<String, PkiError> {
    Ok(cert.to_pem(der::pem::LineEnding::LF)?)
}

/// The TLS server certificate for 127.0.0.1 and localhost, under its own CA (not the signing PKI).
pub struct Tls {
    pub ca_pem: String,
    pub server_chain_pem: String,
    pub server_key_pem: String,
}

pub fn tls() -> Result<Tls, PkiError> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SignPath Gateway Demo TLS CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "signpath-gateway");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&key, &ca, &ca_key)?;
    Ok(Tls {
        ca_pem: ca.pem(),
        server_chain_pem: format!("{}{}", server.pem(), ca.pem()),
        server_key_pem: key.serialize_pem(),
    })
}
