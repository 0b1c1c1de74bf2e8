//! The demonstration PKI `init` makes: a self-signed root → an intermediate → one code-signing leaf per HSM key, shaped to
//! pass Notary's certificate rules (leaf: critical KeyUsage digitalSignature (and nonRepudiation), EKU codeSigning; CAs: critical
//! basic constraints and keyCertSign; subjects with C, ST and O). The root and intermediate keys are P-384 keys in
//! the HSM like every other key; certificates below the root name the CRL their issuer publishes (`crl`).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::{Decode, EncodePem};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::hsm_key::{HsmKey, HsmSignature};

pub type PkiError = crate::error::BoxError;

const DAY: u64 = 24 * 3600;

/// A CA of the gateway: its certificate and its key in the HSM.
#[derive(Debug)]
pub struct Ca<'a> {
    pub key: HsmKey<'a>,
    pub cert: Certificate,
}

fn validity(days: u64) -> Result<Validity, PkiError> {
    let now = SystemTime::now();
    Ok(Validity {
        not_before: Time::try_from(now - Duration::from_secs(3600))?,
        not_after: Time::try_from(now + Duration::from_secs(days * DAY))?,
    })
}

pub(crate) fn serial() -> Result<SerialNumber, PkiError> {
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

/// The CRL distribution point extension naming one http URL (notation fetches CRLs over http only).
fn crl_distribution_point(url: &str) -> Result<CrlDistributionPoints, PkiError> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(url)?),
        ])),
        reasons: None,
        crl_issuer: None,
    }]))
}

pub fn root<'a>(common_name: &str, key: HsmKey<'a>) -> Result<Ca<'a>, PkiError> {
    let cert = {
        let builder = CertificateBuilder::new(
            Profile::Root,
            serial()?,
            validity(3650)?,
            name(common_name)?,
            SubjectPublicKeyInfoOwned::from_der(key.spki_der())?,
            &key,
        )?;
        builder.build::<HsmSignature>()?
    };
    Ok(Ca { key, cert })
}

/// An intermediate under `issuer`, naming the issuer's CRL at `crl_url`.
pub fn intermediate<'a>(
    common_name: &str,
    key: HsmKey<'a>,
    issuer: &Ca<'_>,
    crl_url: &str,
) -> Result<Ca<'a>, PkiError> {
    let profile = Profile::SubCA {
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        path_len_constraint: Some(0),
    };
    let mut builder = CertificateBuilder::new(
        profile,
        serial()?,
        validity(3650)?,
        name(common_name)?,
        SubjectPublicKeyInfoOwned::from_der(key.spki_der())?,
        &issuer.key,
    )?;
    builder.add_extension(&crl_distribution_point(crl_url)?)?;
    let cert = builder.build::<HsmSignature>()?;
    Ok(Ca { key, cert })
}

/// A code-signing leaf for a public key held elsewhere (the HSM), naming the issuer's CRL at `crl_url`.
pub fn leaf(
    common_name: &str,
    spki_der: &[u8],
    issuer: &Ca<'_>,
    crl_url: &str,
) -> Result<Certificate, PkiError> {
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
    builder.add_extension(&crl_distribution_point(crl_url)?)?;
    Ok(builder.build::<HsmSignature>()?)
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
