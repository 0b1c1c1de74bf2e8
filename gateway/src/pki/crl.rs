//! Certificate revocation lists (RFC 5280 §5) for the gateway's own CAs, signed by the CA's key in the HSM, in the
//! shape notation v1.3 checks: v2, the issuer's name, thisUpdate and nextUpdate, an authority key identifier equal
//! to the issuer's subject key identifier, a CRL number, and per entry the reason code and invalidity date (none
//! critical). Built from x509-cert's CRL types; only the signature comes from the HSM.

use std::time::SystemTime;

use const_oid::db::rfc5280::{ID_CE_INVALIDITY_DATE, ID_CE_SUBJECT_KEY_IDENTIFIER};
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::demo::PkiError;
use super::hsm_key::HsmKey;
use super::revocations::Revoked;

/// A CRL of `issuer` listing `revoked`, valid from `this_update` to `next_update`; DER.
pub fn build(
    issuer: &Certificate,
    key: &HsmKey<'_>,
    revoked: &[&Revoked],
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, PkiError> {
    let subject = &issuer.tbs_certificate.subject;
    let mut entries = Vec::new();
    for r in revoked {
        let mut extensions = Vec::new();
        if let Some(reason) = r.reason {
            extensions.push(reason.crl_reason().to_extension(subject, &[])?);
        }
        if let Some(date) = r.invalidity_date()? {
            extensions.push(Extension {
                extn_id: ID_CE_INVALIDITY_DATE,
                critical: false,
                extn_value: OctetString::new(GeneralizedTime::from_system_time(date)?.to_der()?)?,
            });
        }
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&r.serial_bytes()?)?,
            revocation_date: Time::try_from(r.revoked_at()?)?,
            crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
        });
    }
    let number = this_update
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs()
        .to_be_bytes();
    let mut crl_extensions = vec![CrlNumber(der::asn1::Uint::new(&number)?).to_extension(subject, &[])?];
    if let Some(key_id) = subject_key_identifier(issuer)? {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(key_id),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        crl_extensions.push(aki.to_extension(subject, &[])?);
    }
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: key.algorithm(),
        issuer: subject.clone(),
        this_update: Time::try_from(this_update)?,
        next_update: Some(Time::try_from(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(crl_extensions),
    };
    let signature = key.sign_message(&tbs.to_der()?)?;
    let crl = CertificateList {
        signature_algorithm: key.algorithm(),
        tbs_cert_list: tbs,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(crl.to_der()?)
}

fn subject_key_identifier(cert: &Certificate) -> Result<Option<OctetString>, PkiError> {
    let Some(extensions) = &cert.tbs_certificate.extensions else {
        return Ok(None);
    };
    match extensions
        .iter()
        .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
    {
        Some(e) => Ok(Some(SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())?.0)),
        None => Ok(None),
    }
}
