//! Certificates as the clients need them: parse DER and PEM, read the public key, name and fingerprint.
//!
//! Chain rules specific to Notary live with the plugin; this module only reads certificates.

use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::Certificate;

use crate::pubkey::{KeyError, PublicKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    #[error("not a DER X.509 certificate: {0}")]
    Malformed(String),
    #[error("no PEM certificate found in {0}")]
    NoPem(String),
    #[error("the certificate's public key: {0}")]
    Key(#[from] KeyError),
}

/// A parsed certificate that keeps its exact DER bytes (Notary and PKCS#11 compare and hand on bytes, never a
/// re-encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    der: Vec<u8>,
    cert: Certificate,
}

impl ParsedCertificate {
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert = Certificate::from_der(der).map_err(|e| CertificateError::Malformed(e.to_string()))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn inner(&self) -> &Certificate {
        &self.cert
    }

    pub fn public_key(&self) -> Result<PublicKey, CertificateError> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| {
                CertificateError::Malformed(format!("cannot re-encode the SubjectPublicKeyInfo: {e}"))
            })?;
        Ok(PublicKey::from_spki_der(&spki)?)
    }

    /// The certificate's SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`), the form cosign and
    /// OpenSSL read a public key in.
    pub fn public_key_pem(&self) -> Result<String, CertificateError> {
        let encode_error = |e: &dyn std::fmt::Display| {
            CertificateError::Malformed(format!("cannot encode the SubjectPublicKeyInfo: {e}"))
        };
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| encode_error(&e))?;
        der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &spki).map_err(|e| encode_error(&e))
    }

    /// DER of the subject Name (PKCS#11 CKA_SUBJECT).
    pub fn subject_der(&self) -> Vec<u8> {
        self.cert.tbs_certificate.subject.to_der().unwrap_or_default()
    }

    /// DER of the issuer Name (PKCS#11 CKA_ISSUER).
    pub fn issuer_der(&self) -> Vec<u8> {
        self.cert.tbs_certificate.issuer.to_der().unwrap_or_default()
    }

    /// DER INTEGER of the serial number (PKCS#11 CKA_SERIAL_NUMBER).
    pub fn serial_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .serial_number
            .to_der()
            .unwrap_or_default()
    }

    /// RFC 4514 form of the subject, for messages.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    pub fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }

    /// Lower-case hex SHA-256 of the DER: the fingerprint Notary and our audit log use.
    pub fn sha256_fingerprint(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.der))
    }
}

/// Every certificate in a PEM text, in order, as DER.
pub fn pem_certificates(pem: &[u8], source: &str) -> Result<Vec<Vec<u8>>, CertificateError> {
    let mut reader = pem;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut reader)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| CertificateError::Malformed(format!("{source}: {e}")))?;
    if certs.is_empty() {
        return Err(CertificateError::NoPem(source.to_owned()));
    }
    Ok(certs)
}
