//! What a policy's certificate chain must be before it is put in force (`policy certificate import`): the leaf
//! holds the policy's HSM key and meets Notary's signing-certificate profile (critical KeyUsage with
//! digitalSignature, EKU codeSigning, not a CA, a Notary key spec, valid now), and the chain runs, signature by
//! signature, through CA certificates to a self-signed root. cosign needs only the key to match, which the first
//! check is.

use std::time::SystemTime;

use common::keys::{HashAlgorithm, SignatureScheme};
use common::x509::ParsedCertificate;
use const_oid::db::{rfc5280, rfc5912};
use const_oid::AssociatedOid;
use der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// Why a chain cannot be put in force, in the operator's words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("the file holds no certificate; give the PEM chain the CA issued: the policy's certificate first, then its CAs up to the root")]
    Empty,
    #[error("certificate {position} cannot be read: {reason}")]
    Malformed { position: usize, reason: String },
    #[error("the certificate's public key is not the policy's key in the HSM (subject {subject}); was it issued for this policy's CSR?")]
    KeyMismatch { subject: String },
    #[error("the certificate's key is {kind}, which Notary does not allow (EC-256, EC-384, EC-521, RSA-2048, RSA-3072, RSA-4096)")]
    KeySpec { kind: String },
    #[error("the certificate has no critical KeyUsage with digitalSignature, which Notary requires of a signing certificate")]
    KeyUsage,
    #[error("the certificate's extended key usage lacks codeSigning (1.3.6.1.5.5.7.3.3), or allows more than code signing")]
    CodeSigning,
    #[error("the policy's certificate is a CA certificate (BasicConstraints CA:TRUE); Notary signs only with end-entity certificates")]
    LeafIsCa,
    #[error("the certificate is not valid now (valid from {not_before} to {not_after})")]
    NotValidNow { not_before: String, not_after: String },
    #[error("certificate {position} ({subject}) is not issued by the next one in the file ({issuer}); list the chain in order, leaf first")]
    Order {
        position: usize,
        subject: String,
        issuer: String,
    },
    #[error("certificate {position}'s signature does not verify with its issuer's key: {reason}")]
    Signature { position: usize, reason: String },
    #[error("certificate {position} ({subject}) issues certificates but is not a CA (BasicConstraints CA:TRUE and KeyUsage keyCertSign)")]
    NotCa { position: usize, subject: String },
    #[error("the chain ends at {subject}, which is not a self-signed root; append the root certificate")]
    NoRoot { subject: String },
}

fn extension<T: AssociatedOid + for<'a> Decode<'a>>(
    cert: &Certificate,
) -> Option<(bool, Result<T, der::Error>)> {
    let e = cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == T::OID)?;
    Some((e.critical, T::from_der(e.extn_value.as_bytes())))
}

/// Checks `chain` (leaf first) for the policy whose HSM key has the SubjectPublicKeyInfo `hsm_spki`.
pub fn policy_chain(chain: &[Vec<u8>], hsm_spki: &[u8], now: SystemTime) -> Result<(), ChainError> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| ChainError::Malformed {
                position: i + 1,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = certs.first().ok_or(ChainError::Empty)?;
    let subject = leaf.tbs_certificate.subject.to_string();
    let leaf_spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| ChainError::Malformed {
            position: 1,
            reason: e.to_string(),
        })?;
    if leaf_spki != hsm_spki {
        return Err(ChainError::KeyMismatch { subject });
    }
    let parsed = ParsedCertificate::from_der(&chain[0]).map_err(|e| ChainError::Malformed {
        position: 1,
        reason: e.to_string(),
    })?;
    let kind = parsed
        .public_key()
        .map_err(|e| ChainError::Malformed {
            position: 1,
            reason: e.to_string(),
        })?
        .kind();
    if kind.key_spec().is_none() {
        return Err(ChainError::KeySpec {
            kind: kind.to_string(),
        });
    }
    match extension::<KeyUsage>(leaf) {
        Some((true, Ok(ku))) if ku.0.contains(KeyUsages::DigitalSignature) => {}
        _ => return Err(ChainError::KeyUsage),
    }
    match extension::<ExtendedKeyUsage>(leaf) {
        Some((_, Ok(eku)))
            if eku.0.contains(&rfc5280::ID_KP_CODE_SIGNING)
                && !eku.0.iter().any(|p| {
                    [
                        rfc5280::ANY_EXTENDED_KEY_USAGE,
                        rfc5280::ID_KP_TIME_STAMPING,
                        rfc5280::ID_KP_SERVER_AUTH,
                        rfc5280::ID_KP_EMAIL_PROTECTION,
                    ]
                    .contains(p)
                }) => {}
        _ => return Err(ChainError::CodeSigning),
    }
    if let Some((_, Ok(bc))) = extension::<BasicConstraints>(leaf) {
        if bc.ca {
            return Err(ChainError::LeafIsCa);
        }
    }
    let validity = &leaf.tbs_certificate.validity;
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return Err(ChainError::NotValidNow {
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    for (i, pair) in certs.windows(2).enumerate() {
        let (cert, issuer) = (&pair[0], &pair[1]);
        if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
            return Err(ChainError::Order {
                position: i + 1,
                subject: cert.tbs_certificate.subject.to_string(),
                issuer: issuer.tbs_certificate.subject.to_string(),
            });
        }
        signed_by(cert, issuer).map_err(|reason| ChainError::Signature {
            position: i + 1,
            reason,
        })?;
        if !is_ca(issuer) {
            return Err(ChainError::NotCa {
                position: i + 2,
                subject: issuer.tbs_certificate.subject.to_string(),
            });
        }
    }
    let root = certs.last().ok_or(ChainError::Empty)?;
    let self_signed =
        root.tbs_certificate.issuer == root.tbs_certificate.subject && signed_by(root, root).is_ok();
    if certs.len() < 2 || !self_signed {
        return Err(ChainError::NoRoot {
            subject: root.tbs_certificate.subject.to_string(),
        });
    }
    Ok(())
}

fn is_ca(cert: &Certificate) -> bool {
    let basic = matches!(extension::<BasicConstraints>(cert), Some((_, Ok(bc))) if bc.ca);
    let usage =
        matches!(extension::<KeyUsage>(cert), Some((_, Ok(ku))) if ku.0.contains(KeyUsages::KeyCertSign));
    basic && usage
}

/// Whether `cert`'s signature verifies with `issuer`'s public key; why not otherwise.
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
    let algorithm = &cert.signature_algorithm.oid;
    let (scheme, hash) = match *algorithm {
        rfc5912::ECDSA_WITH_SHA_256 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha512),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha512),
        _ => return Err(format!("signature algorithm {algorithm} is not supported")),
    };
    let issuer_der = issuer.to_der().map_err(|e| e.to_string())?;
    let key = ParsedCertificate::from_der(&issuer_der)
        .and_then(|c| c.public_key())
        .map_err(|e| e.to_string())?;
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| "the signature is not a whole number of bytes".to_owned())?;
    key.verify_message(scheme, hash, &tbs, signature)
        .map_err(|e| e.to_string())
}
