//! Notary's certificate-chain rules, checked before we sign, so that a chain notation would reject fails here
//! with a message that says which certificate is wrong and how to fix it, and costs no signing request.
//!
//! The rules (Notary Project signature specification, "Certificate requirements", as notation-core-go v1.3
//! enforces them): the chain runs from the leaf to a self-signed root, each certificate issued by the next (names
//! match and the issuer's key verifies the signature over the TBS certificate); every certificate is valid now;
//! the leaf has a critical key usage with digitalSignature and none of the encipherment, agreement or CA bits, and
//! no extended key usage for TLS, e-mail, time stamping or OCSP; every CA has basicConstraints cA=true (and a path
//! length it respects) and a critical key usage with keyCertSign.

use std::time::SystemTime;

use const_oid::db::rfc5280 as oids;
use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::spki::AlgorithmIdentifierOwned;

use common::keys::{HashAlgorithm, SignatureScheme};
use common::x509::ParsedCertificate;

/// What a CertificateChainFile fixes, for the messages that need it.
const CHAIN_FILE_HINT: &str =
    "set CertificateChainFile (SIGNPATH_CERTIFICATE_CHAIN_FILE) to a PEM file with the intermediate and root certificates, in that order";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("certificate {position} of the chain of {key_id} is not a DER X.509 certificate ({reason}); {CHAIN_FILE_HINT}")]
    Malformed {
        key_id: String,
        position: usize,
        reason: String,
    },

    #[error(
        "the certificate chain of {key_id} ends at {subject}, which is not self-signed: {CHAIN_FILE_HINT}"
    )]
    NoRoot { key_id: String, subject: String },

    #[error("the certificate chain of {key_id} is not in order: {subject} is not issued by {next}, the certificate after it ({reason}); the chain must run from the leaf to the root, each certificate issued by the next: {CHAIN_FILE_HINT}")]
    NotIssuedBy {
        key_id: String,
        subject: String,
        next: String,
        reason: String,
    },

    #[error("the certificate chain of {key_id} has the self-signed certificate {subject} before its end; only the root, the last certificate, may be self-signed: {CHAIN_FILE_HINT}")]
    SelfSignedBeforeEnd { key_id: String, subject: String },

    #[error("the certificate {subject} in the chain of {key_id} {problem}; renew it at the gateway (or in CertificateChainFile)")]
    NotValidNow {
        key_id: String,
        subject: String,
        problem: String,
    },

    #[error("the certificate {subject} of {key_id} cannot sign for Notary: {problem}; issue the policy a certificate with a critical key usage of digitalSignature and without TLS, e-mail, time-stamping or OCSP extended key usages")]
    Leaf {
        key_id: String,
        subject: String,
        problem: String,
    },

    #[error("the CA certificate {subject} in the chain of {key_id} cannot issue for Notary: {problem}; a CA needs basicConstraints cA=true and a critical key usage with keyCertSign")]
    Ca {
        key_id: String,
        subject: String,
        problem: String,
    },
}

/// Checks a chain (DER, leaf first) against Notary's rules at time `now`, every signature in it included.
pub fn validate(key_id: &str, chain: &[Vec<u8>], now: SystemTime) -> Result<(), ChainError> {
    check(key_id, chain, now, Signatures::Verify)
}

/// Checks a chain that passed [`validate`] before it was cached, at time `now`: every rule again (validity
/// period, profiles, names), except the certificates' signatures, which cannot have changed. Those are P-384
/// signatures in a typical chain, about a millisecond each, on every plugin run; notation itself verifies the
/// chain it gets back before it builds the envelope, so nothing is signed with a chain nobody checked.
pub fn revalidate_cached(key_id: &str, chain: &[Vec<u8>], now: SystemTime) -> Result<(), ChainError> {
    check(key_id, chain, now, Signatures::CheckedBefore)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signatures {
    Verify,
    CheckedBefore,
}

fn check(key_id: &str, chain: &[Vec<u8>], now: SystemTime, signatures: Signatures) -> Result<(), ChainError> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            ParsedCertificate::from_der(der).map_err(|e| ChainError::Malformed {
                key_id: key_id.to_owned(),
                position: i + 1,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(last) = certs.last() else {
        return Err(ChainError::NoRoot {
            key_id: key_id.to_owned(),
            subject: "nothing (the chain is empty)".to_owned(),
        });
    };
    for (i, cert) in certs.iter().enumerate() {
        let is_last = i + 1 == certs.len();
        if !is_last && is_self_signed(cert, signatures) {
            return Err(ChainError::SelfSignedBeforeEnd {
                key_id: key_id.to_owned(),
                subject: name(cert),
            });
        }
        if let Some(next) = certs.get(i + 1) {
            issued_by(cert, next, signatures).map_err(|reason| ChainError::NotIssuedBy {
                key_id: key_id.to_owned(),
                subject: name(cert),
                next: name(next),
                reason,
            })?;
        }
    }
    if !is_self_signed(last, signatures) {
        return Err(ChainError::NoRoot {
            key_id: key_id.to_owned(),
            subject: name(last),
        });
    }
    for cert in &certs {
        valid_at(cert, now).map_err(|problem| ChainError::NotValidNow {
            key_id: key_id.to_owned(),
            subject: name(cert),
            problem,
        })?;
    }
    leaf_profile(&certs[0]).map_err(|problem| ChainError::Leaf {
        key_id: key_id.to_owned(),
        subject: name(&certs[0]),
        problem,
    })?;
    for (i, cert) in certs.iter().enumerate().skip(1) {
        // Certificates between the leaf and this CA, all of them CAs: what a path length constraint limits.
        ca_profile(cert, i - 1).map_err(|problem| ChainError::Ca {
            key_id: key_id.to_owned(),
            subject: name(cert),
            problem,
        })?;
    }
    Ok(())
}

fn name(cert: &ParsedCertificate) -> String {
    let subject = cert.subject();
    if subject.is_empty() {
        "(empty subject)".to_owned()
    } else {
        subject
    }
}

fn is_self_signed(cert: &ParsedCertificate, signatures: Signatures) -> bool {
    cert.is_self_issued() && issued_by(cert, cert, signatures).is_ok()
}

/// Whether `issuer` issued `cert`: the names match byte for byte and `issuer`'s key verifies `cert`'s signature.
fn issued_by(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
    signatures: Signatures,
) -> Result<(), String> {
    if cert.issuer_der() != issuer.subject_der() {
        return Err(format!("its issuer is {}", cert.issuer()));
    }
    if signatures == Signatures::CheckedBefore {
        return Ok(());
    }
    let key = issuer
        .public_key()
        .map_err(|e| format!("the issuer's key cannot be read: {e}"))?;
    let (scheme, hash) = signature_algorithm(&cert.inner().signature_algorithm)?;
    let signature = cert
        .inner()
        .signature
        .as_bytes()
        .ok_or("its signature is not a whole number of bytes")?;
    key.verify_message(scheme, hash, tbs_bytes(cert.der())?, signature)
        .map_err(|e| format!("the issuer's key does not verify its signature: {e}"))
}

/// The exact DER of the TBS certificate: the first element inside the certificate's SEQUENCE.
fn tbs_bytes(der: &[u8]) -> Result<&[u8], String> {
    let malformed = |e: der::Error| format!("malformed certificate: {e}");
    let mut reader = SliceReader::new(der).map_err(malformed)?;
    let _outer: der::Header = reader.decode().map_err(malformed)?;
    reader.tlv_bytes().map_err(malformed)
}

/// The signature scheme and hash of a certificate's signatureAlgorithm.
fn signature_algorithm(
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<(SignatureScheme, HashAlgorithm), String> {
    const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
    let oid = algorithm.oid;
    let pkcs1 = |hash| Ok((SignatureScheme::RsaPkcs1, hash));
    let ecdsa = |hash| Ok((SignatureScheme::EcdsaAsn1, hash));
    match oid {
        o if o == const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION => pkcs1(HashAlgorithm::Sha256),
        o if o == const_oid::db::rfc5912::SHA_384_WITH_RSA_ENCRYPTION => pkcs1(HashAlgorithm::Sha384),
        o if o == const_oid::db::rfc5912::SHA_512_WITH_RSA_ENCRYPTION => pkcs1(HashAlgorithm::Sha512),
        o if o == const_oid::db::rfc5912::ECDSA_WITH_SHA_256 => ecdsa(HashAlgorithm::Sha256),
        o if o == const_oid::db::rfc5912::ECDSA_WITH_SHA_384 => ecdsa(HashAlgorithm::Sha384),
        o if o == const_oid::db::rfc5912::ECDSA_WITH_SHA_512 => ecdsa(HashAlgorithm::Sha512),
        o if o == RSA_PSS => {
            let params = algorithm
                .parameters
                .as_ref()
                .ok_or("RSASSA-PSS without parameters")?;
            let params: pkcs1::RsaPssParams<'_> =
                Any::decode_as(params).map_err(|e| format!("unreadable RSASSA-PSS parameters: {e}"))?;
            let hash = HashAlgorithm::from_oid(&params.hash.oid)
                .filter(|h| *h != HashAlgorithm::Sha1)
                .ok_or_else(|| format!("RSASSA-PSS with hash {}", params.hash.oid))?;
            if usize::from(params.salt_len) != hash.output_len() {
                return Err(format!(
                    "RSASSA-PSS with a {}-byte salt; only salt length = hash length is supported",
                    params.salt_len
                ));
            }
            Ok((SignatureScheme::RsaPss, hash))
        }
        o if o == const_oid::db::rfc5912::SHA_1_WITH_RSA_ENCRYPTION
            || o == const_oid::db::rfc5912::ECDSA_WITH_SHA_224
            || o == ObjectIdentifier::new_unwrap("1.2.840.10045.4.1") =>
        {
            Err("it is signed with SHA-1 or SHA-224, which Notary does not accept".to_owned())
        }
        other => Err(format!("its signature algorithm {other} is not supported")),
    }
}

fn valid_at(cert: &ParsedCertificate, now: SystemTime) -> Result<(), String> {
    let validity = &cert.inner().tbs_certificate.validity;
    if now < validity.not_before.to_system_time() {
        return Err(format!("is not valid before {}", validity.not_before));
    }
    if now > validity.not_after.to_system_time() {
        return Err(format!("expired on {}", validity.not_after));
    }
    Ok(())
}

type Extension<T> = Option<(bool, T)>;

fn extension<'a, T: Decode<'a> + const_oid::AssociatedOid>(
    cert: &'a ParsedCertificate,
    what: &str,
) -> Result<Extension<T>, String> {
    cert.inner()
        .tbs_certificate
        .get::<T>()
        .map_err(|e| format!("its {what} extension is unreadable or repeated ({e})"))
}

fn leaf_profile(cert: &ParsedCertificate) -> Result<(), String> {
    let Some((critical, usage)) = extension::<KeyUsage>(cert, "key usage")? else {
        return Err("it has no key usage extension".to_owned());
    };
    if !critical {
        return Err("its key usage extension is not critical".to_owned());
    }
    if !usage.digital_signature() {
        return Err("its key usage lacks digitalSignature".to_owned());
    }
    let forbidden = [
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let present: Vec<&str> = forbidden
        .iter()
        .filter(|(flag, _)| usage.0.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if !present.is_empty() {
        return Err(format!("its key usage includes {}", present.join(", ")));
    }
    if let Some((_, constraints)) = extension::<BasicConstraints>(cert, "basic constraints")? {
        if constraints.ca {
            return Err("it is a CA certificate (basicConstraints cA=true)".to_owned());
        }
    }
    if let Some((_, ExtendedKeyUsage(usages))) = extension::<ExtendedKeyUsage>(cert, "extended key usage")? {
        let excluded = [
            (oids::ID_KP_SERVER_AUTH, "serverAuth"),
            (oids::ID_KP_CLIENT_AUTH, "clientAuth"),
            (oids::ID_KP_EMAIL_PROTECTION, "emailProtection"),
            (oids::ID_KP_TIME_STAMPING, "timeStamping"),
            (oids::ID_KP_OCSP_SIGNING, "OCSPSigning"),
        ];
        let present: Vec<&str> = excluded
            .iter()
            .filter(|(oid, _)| usages.contains(oid))
            .map(|(_, name)| *name)
            .collect();
        if !present.is_empty() {
            return Err(format!("its extended key usage includes {}", present.join(", ")));
        }
    }
    Ok(())
}

/// `cas_below`: how many CA certificates stand between this one and the leaf.
fn ca_profile(cert: &ParsedCertificate, cas_below: usize) -> Result<(), String> {
    match extension::<BasicConstraints>(cert, "basic constraints")? {
        None => return Err("it has no basic constraints extension".to_owned()),
        Some((_, constraints)) if !constraints.ca => {
            return Err("its basic constraints say cA=false".to_owned())
        }
        Some((_, constraints)) => {
            if let Some(limit) = constraints.path_len_constraint {
                if cas_below > usize::from(limit) {
                    return Err(format!(
                        "its path length constraint {limit} allows fewer CAs below it than the chain has ({cas_below})"
                    ));
                }
            }
        }
    }
    match extension::<KeyUsage>(cert, "key usage")? {
        None => Err("it has no key usage extension".to_owned()),
        Some((false, _)) => Err("its key usage extension is not critical".to_owned()),
        Some((true, usage)) if !usage.key_cert_sign() => Err("its key usage lacks keyCertSign".to_owned()),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
