//! What a policy's certificate chain must be before it is put in force (`policy certificate import`): the leaf
//! holds the policy's HSM key and meets Notary's signing-certificate profile (critical KeyUsage with
//! digitalSignature, EKU codeSigning, not a CA, a Notary key spec, valid now), and the chain runs, signature by
//! signature, through CA certificates to a self-signed root. cosign needs only the key to match, which the first
//! check is.
//!
//! A policy's key signs whatever digest a submitter sends (`SignHash`), so its certificate must allow code signing
//! and nothing else: with clientAuth a submitter could authenticate as a TLS client, with OCSPSigning forge OCSP
//! answers for the issuing CA, with keyCertSign issue certificates. [`leaf_usage`] is that rule, for the import
//! and for `doctor`; [`tsa_usage`] is RFC 3161's for the TSA's certificate (timeStamping only, critical).

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
    #[error("the certificate's extended key usage lacks codeSigning (1.3.6.1.5.5.7.3.3), which Notary requires of a signing certificate")]
    CodeSigning,
    #[error("the certificate's extended key usage allows {extra} beside codeSigning; the policy's key signs any digest a submitter sends, so ask the CA for a certificate whose extended key usage is codeSigning only")]
    BeyondCodeSigning { extra: String },
    #[error("the policy's certificate is a CA certificate ({constraint}); Notary signs only with end-entity certificates, and a submitter could issue certificates with it: ask the CA for an end-entity certificate")]
    LeafIsCa { constraint: &'static str },
    #[error("the TSA's certificate {problem}; RFC 3161 requires an extended key usage of exactly timeStamping (1.3.6.1.5.5.7.3.8), marked critical")]
    TsaUsage { problem: String },
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
    leaf_usage(leaf)?;
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

/// The name of an extended key usage as RFC 5280 writes it, or its dotted OID.
fn usage_name(oid: &const_oid::ObjectIdentifier) -> String {
    let name = match *oid {
        rfc5280::ID_KP_SERVER_AUTH => "serverAuth",
        rfc5280::ID_KP_CLIENT_AUTH => "clientAuth",
        rfc5280::ID_KP_CODE_SIGNING => "codeSigning",
        rfc5280::ID_KP_EMAIL_PROTECTION => "emailProtection",
        rfc5280::ID_KP_TIME_STAMPING => "timeStamping",
        rfc5280::ID_KP_OCSP_SIGNING => "OCSPSigning",
        rfc5280::ANY_EXTENDED_KEY_USAGE => "anyExtendedKeyUsage",
        _ => return oid.to_string(),
    };
    format!("{name} ({oid})")
}

/// What a CA certificate has that an end-entity one must not: BasicConstraints CA:TRUE, or a KeyUsage that signs
/// certificates or CRLs.
fn ca_constraint(cert: &Certificate) -> Option<&'static str> {
    if matches!(extension::<BasicConstraints>(cert), Some((_, Ok(bc))) if bc.ca) {
        return Some("BasicConstraints CA:TRUE");
    }
    match extension::<KeyUsage>(cert) {
        Some((_, Ok(ku))) if ku.0.contains(KeyUsages::KeyCertSign) => Some("KeyUsage keyCertSign"),
        Some((_, Ok(ku))) if ku.0.contains(KeyUsages::CRLSign) => Some("KeyUsage cRLSign"),
        _ => None,
    }
}

/// A policy's certificate may sign code and nothing else: critical KeyUsage with digitalSignature, extended key
/// usage exactly codeSigning, not a CA.
pub fn leaf_usage(leaf: &Certificate) -> Result<(), ChainError> {
    match extension::<KeyUsage>(leaf) {
        Some((true, Ok(ku))) if ku.0.contains(KeyUsages::DigitalSignature) => {}
        _ => return Err(ChainError::KeyUsage),
    }
    let Some((_, Ok(eku))) = extension::<ExtendedKeyUsage>(leaf) else {
        return Err(ChainError::CodeSigning);
    };
    if !eku.0.contains(&rfc5280::ID_KP_CODE_SIGNING) {
        return Err(ChainError::CodeSigning);
    }
    let extra: Vec<String> = eku
        .0
        .iter()
        .filter(|p| **p != rfc5280::ID_KP_CODE_SIGNING)
        .map(usage_name)
        .collect();
    if !extra.is_empty() {
        return Err(ChainError::BeyondCodeSigning {
            extra: extra.join(", "),
        });
    }
    match ca_constraint(leaf) {
        Some(constraint) => Err(ChainError::LeafIsCa { constraint }),
        None => Ok(()),
    }
}

/// The TSA's certificate (RFC 3161 section 2.3): extended key usage exactly timeStamping, marked critical; not a CA.
pub fn tsa_usage(tsa: &Certificate) -> Result<(), ChainError> {
    let problem = match extension::<ExtendedKeyUsage>(tsa) {
        None => "has no extended key usage".to_owned(),
        Some((_, Err(e))) => format!("has an extended key usage that cannot be read ({e})"),
        Some((critical, Ok(eku))) => {
            if eku.0 != [rfc5280::ID_KP_TIME_STAMPING] {
                let usages: Vec<String> = eku.0.iter().map(usage_name).collect();
                format!("has the extended key usages {}", usages.join(", "))
            } else if !critical {
                "has an extended key usage that is not marked critical".to_owned()
            } else {
                return match ca_constraint(tsa) {
                    Some(constraint) => Err(ChainError::LeafIsCa { constraint }),
                    None => Ok(()),
                };
            }
        }
    };
    Err(ChainError::TsaUsage { problem })
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
    let (scheme, hash) = signature_algorithm(algorithm)
        .ok_or_else(|| format!("signature algorithm {algorithm} is not supported"))?;
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

/// The scheme and hash of an X.509 signature algorithm (certificates, CRLs, CSRs) the gateway verifies.
pub fn signature_algorithm(oid: &const_oid::ObjectIdentifier) -> Option<(SignatureScheme, HashAlgorithm)> {
    Some(match *oid {
        rfc5912::ECDSA_WITH_SHA_256 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha512),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha512),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
mod tests {
    use rcgen::{
        BasicConstraints as Bc, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, KeyPair,
        KeyUsagePurpose as Ku,
    };

    use super::*;

    /// A root CA and, under it, a leaf made by `shape`: the chain as `policy certificate import` reads it, and the
    /// leaf's public key (standing in for the HSM's).
    fn chain_with(shape: impl FnOnce(&mut CertificateParams)) -> (Vec<Vec<u8>>, Vec<u8>) {
        let root_key = KeyPair::generate().unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.distinguished_name.push(DnType::CommonName, "Test Root");
        root.is_ca = IsCa::Ca(Bc::Unconstrained);
        root.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign];
        let root = root.self_signed(&root_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "acme/release");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![Ku::DigitalSignature];
        leaf.extended_key_usages = vec![Eku::CodeSigning];
        shape(&mut leaf);
        let leaf = leaf.signed_by(&key, &root, &root_key).unwrap();
        let spki = Certificate::from_der(leaf.der())
            .unwrap()
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        (vec![leaf.der().to_vec(), root.der().to_vec()], spki)
    }

    fn import(shape: impl FnOnce(&mut CertificateParams)) -> Result<(), ChainError> {
        let (chain, spki) = chain_with(shape);
        policy_chain(&chain, &spki, SystemTime::now())
    }

    #[test]
    fn a_code_signing_only_leaf_is_put_in_force() {
        assert_eq!(import(|_| {}), Ok(()));
    }

    #[test]
    fn a_leaf_that_may_also_authenticate_clients_or_sign_ocsp_answers_is_refused() {
        let refused = import(|leaf| {
            leaf.extended_key_usages = vec![Eku::CodeSigning, Eku::ClientAuth, Eku::OcspSigning]
        })
        .unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, ChainError::BeyondCodeSigning { .. }),
            "{message}"
        );
        assert!(message.contains("clientAuth (1.3.6.1.5.5.7.3.2)"), "{message}");
        assert!(message.contains("OCSPSigning (1.3.6.1.5.5.7.3.9)"), "{message}");
        for extra in [
            Eku::TimeStamping,
            Eku::ServerAuth,
            Eku::Any,
            Eku::Other(vec![1, 2, 3, 4]),
        ] {
            let refused =
                import(|leaf| leaf.extended_key_usages = vec![Eku::CodeSigning, extra]).unwrap_err();
            assert!(
                matches!(refused, ChainError::BeyondCodeSigning { .. }),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_ca_certificate_is_refused_as_a_policy_certificate() {
        let refused = import(|leaf| leaf.is_ca = IsCa::Ca(Bc::Unconstrained)).unwrap_err();
        assert_eq!(
            refused,
            ChainError::LeafIsCa {
                constraint: "BasicConstraints CA:TRUE"
            }
        );
        assert!(refused.to_string().contains("CA:TRUE"));
        let refused =
            import(|leaf| leaf.key_usages = vec![Ku::DigitalSignature, Ku::KeyCertSign]).unwrap_err();
        assert_eq!(
            refused,
            ChainError::LeafIsCa {
                constraint: "KeyUsage keyCertSign"
            }
        );
        assert!(refused.to_string().contains("keyCertSign"));
    }

    #[test]
    fn a_tsa_certificate_has_exactly_time_stamping_and_critical() {
        let key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki = pkcs8::EncodePublicKey::to_public_key_der(key.verifying_key()).unwrap();
        let issued = crate::pki::tsa::issue("Test TSA Root", "Test TSA", spki.as_bytes()).unwrap();
        assert_eq!(tsa_usage(&issued.tsa), Ok(()));
        // rcgen marks the extended key usage non-critical.
        let (chain, _) = chain_with(|tsa| tsa.extended_key_usages = vec![Eku::TimeStamping]);
        let refused = tsa_usage(&Certificate::from_der(&chain[0]).unwrap()).unwrap_err();
        assert!(refused.to_string().contains("not marked critical"), "{refused}");
        let (chain, _) =
            chain_with(|tsa| tsa.extended_key_usages = vec![Eku::TimeStamping, Eku::CodeSigning]);
        let refused = tsa_usage(&Certificate::from_der(&chain[0]).unwrap()).unwrap_err();
        assert!(refused.to_string().contains("codeSigning"), "{refused}");
    }
}
