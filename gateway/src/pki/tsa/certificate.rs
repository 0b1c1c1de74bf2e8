//! The TSA certificate: issued once by `init` for a key the HSM holds, under a self-signed TSA root whose key is
//! made for this one issuance and then dropped, so nothing private about the TSA lies in files. The certificate
//! carries what notation and OpenSSL require of a TSA (RFC 3161 section 2.3): an extended key usage of
//! timeStamping only, marked critical, key usage digitalSignature, CA:FALSE.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Encode};
use p384::ecdsa::{DerSignature, SigningKey};
use pkcs8::EncodePublicKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::TsaError;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The TSA's certificate and the self-signed root it chains to.
#[derive(Debug)]
pub struct TsaCertificates {
    pub tsa: Certificate,
    pub root: Certificate,
}

/// RFC 3161 2.3 wants the TSA's extended key usage critical; x509-cert marks `ExtendedKeyUsage` non-critical, so
/// this wrapper says otherwise.
struct CriticalExtendedKeyUsage(ExtendedKeyUsage);

impl AssociatedOid for CriticalExtendedKeyUsage {
    const OID: ObjectIdentifier = ExtendedKeyUsage::OID;
}

impl Encode for CriticalExtendedKeyUsage {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.0.encoded_len()
    }

    fn encode(&self, encoder: &mut impl der::Writer) -> der::Result<()> {
        self.0.encode(encoder)
    }
}

impl AsExtension for CriticalExtendedKeyUsage {
    fn critical(&self, _: &Name, _: &[Extension]) -> bool {
        true
    }
}

fn bad(e: impl std::fmt::Display) -> TsaError {
    TsaError::Certificate(e.to_string())
}

fn serial() -> Result<SerialNumber, TsaError> {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte
    SerialNumber::new(&bytes).map_err(bad)
}

fn validity(lifetime: Duration) -> Result<Validity, TsaError> {
    let now = SystemTime::now();
    Ok(Validity {
        not_before: Time::try_from(now - Duration::from_secs(3600)).map_err(bad)?,
        not_after: Time::try_from(now + lifetime).map_err(bad)?,
    })
}

/// Issues a TSA certificate for `tsa_spki_der` (the HSM key's SubjectPublicKeyInfo) under a new self-signed root
/// named `root_name`. The root's key is dropped on return: re-keying the TSA means a new root.
pub fn issue(root_name: &str, tsa_name: &str, tsa_spki_der: &[u8]) -> Result<TsaCertificates, TsaError> {
    let root_key = SigningKey::random(&mut rand_core::OsRng);
    let root_spki = SubjectPublicKeyInfoOwned::from_der(
        root_key
            .verifying_key()
            .to_public_key_der()
            .map_err(bad)?
            .as_bytes(),
    )
    .map_err(bad)?;
    let root_subject = Name::from_str(&format!("CN={root_name},O=SignPath Gateway,C=AT")).map_err(bad)?;
    let root = CertificateBuilder::new(
        Profile::Root,
        serial()?,
        validity(20 * YEAR)?,
        root_subject.clone(),
        root_spki,
        &root_key,
    )
    .map_err(bad)?
    .build::<DerSignature>()
    .map_err(bad)?;

    // The Leaf profile: CA:FALSE, key identifiers, critical key usage digitalSignature (and nonRepudiation,
    // which notation and OpenSSL accept for a TSA).
    let profile = Profile::Leaf {
        issuer: root_subject,
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let mut builder = CertificateBuilder::new(
        profile,
        serial()?,
        validity(10 * YEAR)?,
        Name::from_str(&format!("CN={tsa_name},O=SignPath Gateway,C=AT")).map_err(bad)?,
        SubjectPublicKeyInfoOwned::from_der(tsa_spki_der).map_err(bad)?,
        &root_key,
    )
    .map_err(bad)?;
    builder
        .add_extension(&CriticalExtendedKeyUsage(ExtendedKeyUsage(vec![
            const_oid::db::rfc5280::ID_KP_TIME_STAMPING,
        ])))
        .map_err(bad)?;
    let tsa = builder.build::<DerSignature>().map_err(bad)?;
    Ok(TsaCertificates { tsa, root })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsa_certificate_has_critical_time_stamping_only() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let spki = key.verifying_key().to_public_key_der().expect("spki");
        let issued = issue("Test TSA Root", "Test TSA", spki.as_bytes()).expect("issue");
        let extensions = issued.tsa.tbs_certificate.extensions.expect("extensions");
        let eku = extensions
            .iter()
            .find(|e| e.extn_id == ExtendedKeyUsage::OID)
            .expect("EKU present");
        assert!(eku.critical);
        let usages = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).expect("EKU decodes");
        assert_eq!(usages.0, vec![const_oid::db::rfc5280::ID_KP_TIME_STAMPING]);
        assert_eq!(
            issued.tsa.tbs_certificate.issuer,
            issued.root.tbs_certificate.subject
        );
    }
}
