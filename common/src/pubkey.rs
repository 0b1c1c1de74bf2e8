//! Public keys and signature verification over a digest.
//!
//! Every signature the gateway returns is checked here against the policy's public key before a client hands it
//! on: a wrong signature becomes an error, never a broken artifact in a registry.

use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use signature::hazmat::PrehashVerifier;
use spki::SubjectPublicKeyInfoRef;

use crate::encoding::{ecdsa_raw_to_der, EncodingError};
use crate::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};

// The module's fast path: AWS-LC's verdict on a signature over a digest (feature `aws-lc`).
mod aws_lc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the public key is not a valid SubjectPublicKeyInfo: {0}")]
    Malformed(String),
    #[error(
        "unsupported public key algorithm {0}; only RSA and ECDSA on P-256, P-384 and P-521 are supported"
    )]
    Unsupported(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("a {scheme} signature cannot come from a {kind} key")]
    SchemeMismatch { scheme: SignatureScheme, kind: KeyKind },
    #[error("the {kind} signature has {actual} bytes; it must have {expected}")]
    Length {
        kind: KeyKind,
        expected: usize,
        actual: usize,
    },
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error("the signature does not verify with the policy's public key")]
    Invalid,
}

/// A verifying key of one of the kinds our policies hold.
#[derive(Clone)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.kind())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.signpath_public_key_bytes() == other.signpath_public_key_bytes()
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Parses DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Self::from_spki(&spki)
    }

    pub fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Self, KeyError> {
        let malformed = |e: &dyn std::fmt::Display| KeyError::Malformed(e.to_string());
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| malformed(&"unaligned key bits"))?;
        match spki.algorithm.oid {
            const_oid::db::rfc5912::RSA_ENCRYPTION => {
                let key = pkcs1::RsaPublicKey::from_der(key_bytes).map_err(|e| malformed(&e))?;
                let n = rsa::BigUint::from_bytes_be(key.modulus.as_bytes());
                let e = rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes());
                Ok(Self::Rsa(RsaPublicKey::new(n, e).map_err(|e| malformed(&e))?))
            }
            const_oid::db::rfc5912::ID_EC_PUBLIC_KEY => {
                let curve_oid = spki.algorithm.parameters_oid().map_err(|_| {
                    KeyError::Unsupported("EC key with explicit or missing curve parameters".into())
                })?;
                let curve = Curve::from_oid(&curve_oid)
                    .ok_or_else(|| KeyError::Unsupported(format!("curve {curve_oid}")))?;
                Self::from_ec_point(curve, key_bytes)
            }
            other => Err(KeyError::Unsupported(other.to_string())),
        }
    }

    /// An EC key from its SEC1 encoded point.
    pub fn from_ec_point(curve: Curve, point: &[u8]) -> Result<Self, KeyError> {
        let malformed = |e: signature::Error| KeyError::Malformed(format!("bad {} point: {e}", curve.name()));
        Ok(match curve {
            Curve::P256 => Self::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed)?),
            Curve::P384 => Self::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed)?),
            Curve::P521 => Self::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(malformed)?),
        })
    }

    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(key) => KeyKind::Rsa {
                bits: u32::try_from(key.n().bits()).unwrap_or(u32::MAX),
            },
            Self::P256(_) => KeyKind::Ec(Curve::P256),
            Self::P384(_) => KeyKind::Ec(Curve::P384),
            Self::P521(_) => KeyKind::Ec(Curve::P521),
        }
    }

    /// Uncompressed SEC1 point of an EC key (what PKCS#11 wraps in CKA_EC_POINT).
    pub fn ec_point(&self) -> Option<Vec<u8>> {
        match self {
            Self::Rsa(_) => None,
            Self::P256(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
            Self::P384(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
            Self::P521(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
        }
    }

    /// Big-endian modulus and public exponent of an RSA key.
    pub fn rsa_parameters(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        match self {
            Self::Rsa(key) => Some((key.n().to_bytes_be(), key.e().to_bytes_be())),
            _ => None,
        }
    }

    /// PKCS#1 `RSAPublicKey` DER for RSA, SEC1 point for EC: SignPath's `publicKeyBytes`.
    pub fn signpath_public_key_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(key) => {
                let n = key.n().to_bytes_be();
                let e = key.e().to_bytes_be();
                match (pkcs1::UintRef::new(&n), pkcs1::UintRef::new(&e)) {
                    (Ok(modulus), Ok(public_exponent)) => pkcs1::RsaPublicKey {
                        modulus,
                        public_exponent,
                    }
                    .to_der()
                    .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            _ => self.ec_point().unwrap_or_default(),
        }
    }

    /// Verifies `signature` over `message`, which is hashed here with `hash`: what a certificate's signature
    /// covers (its TBS bytes). ECDSA on P-256 and P-384 and RSA from 2048 to 8192 bits go through ring, several
    /// times faster than the pure-Rust arithmetic of [`Self::verify_digest`] (it matters: the plugin checks a chain
    /// of P-384 signatures on every run). ring has no P-521 and no keys outside those sizes; those, and anything
    /// ring refuses, get the verdict of `verify_digest`, so both paths accept exactly the same signatures.
    pub fn verify_message(
        &self,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        if self.verify_with_ring(scheme, hash, message, signature) == Some(true) {
            return Ok(());
        }
        self.verify_digest(scheme, hash, &hash.digest(message), signature)
    }

    /// ring's verdict, or None where ring has no algorithm for this key, scheme and hash.
    fn verify_with_ring(
        &self,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        use ring::signature as r;
        use HashAlgorithm::{Sha256, Sha384, Sha512};
        use SignatureScheme::{EcdsaAsn1, EcdsaIeee, RsaPkcs1, RsaPss};
        let rsa_in_range = self.rsa_2048_to_8192();
        let algorithm: Option<&'static dyn r::VerificationAlgorithm> = match (self, scheme, hash) {
            (Self::P256(_), EcdsaAsn1, Sha256) => Some(&r::ECDSA_P256_SHA256_ASN1),
            (Self::P256(_), EcdsaAsn1, Sha384) => Some(&r::ECDSA_P256_SHA384_ASN1),
            (Self::P256(_), EcdsaIeee, Sha256) => Some(&r::ECDSA_P256_SHA256_FIXED),
            (Self::P384(_), EcdsaAsn1, Sha256) => Some(&r::ECDSA_P384_SHA256_ASN1),
            (Self::P384(_), EcdsaAsn1, Sha384) => Some(&r::ECDSA_P384_SHA384_ASN1),
            (Self::P384(_), EcdsaIeee, Sha384) => Some(&r::ECDSA_P384_SHA384_FIXED),
            (Self::Rsa(_), RsaPkcs1, Sha256) if rsa_in_range => Some(&r::RSA_PKCS1_2048_8192_SHA256),
            (Self::Rsa(_), RsaPkcs1, Sha384) if rsa_in_range => Some(&r::RSA_PKCS1_2048_8192_SHA384),
            (Self::Rsa(_), RsaPkcs1, Sha512) if rsa_in_range => Some(&r::RSA_PKCS1_2048_8192_SHA512),
            (Self::Rsa(_), RsaPss, Sha256) if rsa_in_range => Some(&r::RSA_PSS_2048_8192_SHA256),
            (Self::Rsa(_), RsaPss, Sha384) if rsa_in_range => Some(&r::RSA_PSS_2048_8192_SHA384),
            (Self::Rsa(_), RsaPss, Sha512) if rsa_in_range => Some(&r::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
        let key = r::UnparsedPublicKey::new(algorithm?, self.signpath_public_key_bytes());
        Some(key.verify(message, signature).is_ok())
    }

    /// Verifies `signature` over `digest` (already hashed with `hash`) with the given scheme.
    pub fn verify_digest(
        &self,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let kind = self.kind();
        if !scheme.fits(kind) {
            return Err(VerifyError::SchemeMismatch { scheme, kind });
        }
        if scheme != SignatureScheme::EcdsaAsn1 && signature.len() != kind.signature_len() {
            return Err(VerifyError::Length {
                kind,
                expected: kind.signature_len(),
                actual: signature.len(),
            });
        }
        if self.verify_digest_with_aws_lc(scheme, hash, digest, signature) == Some(true) {
            return Ok(());
        }
        // ECDSA takes the digest as an integer; RustCrypto refuses digests shorter than half the field (SHA-256 on
        // P-521), which OpenSSL and HSMs sign. Leading zero bytes leave the integer unchanged.
        let padded;
        let digest = match kind {
            KeyKind::Ec(curve) if digest.len() * 2 < curve.field_len() => {
                padded = [
                    vec![0u8; curve.field_len().div_ceil(2) - digest.len()],
                    digest.to_vec(),
                ]
                .concat();
                padded.as_slice()
            }
            _ => digest,
        };
        let ok = match self {
            Self::Rsa(key) => {
                let padding = |scheme| -> Result<bool, VerifyError> {
                    Ok(match (scheme, hash) {
                        (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha1) => key
                            .verify(Pkcs1v15Sign::new::<sha1::Sha1>(), digest, signature)
                            .is_ok(),
                        (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha256) => key
                            .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), digest, signature)
                            .is_ok(),
                        (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha384) => key
                            .verify(Pkcs1v15Sign::new::<sha2::Sha384>(), digest, signature)
                            .is_ok(),
                        (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha512) => key
                            .verify(Pkcs1v15Sign::new::<sha2::Sha512>(), digest, signature)
                            .is_ok(),
                        // Pss::new fixes the salt length to the hash length, as Notary's COSE verifier demands.
                        (_, HashAlgorithm::Sha1) => {
                            key.verify(Pss::new::<sha1::Sha1>(), digest, signature).is_ok()
                        }
                        (_, HashAlgorithm::Sha256) => {
                            key.verify(Pss::new::<sha2::Sha256>(), digest, signature).is_ok()
                        }
                        (_, HashAlgorithm::Sha384) => {
                            key.verify(Pss::new::<sha2::Sha384>(), digest, signature).is_ok()
                        }
                        (_, HashAlgorithm::Sha512) => {
                            key.verify(Pss::new::<sha2::Sha512>(), digest, signature).is_ok()
                        }
                    })
                };
                padding(scheme)?
            }
            Self::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(&to_der(Curve::P256, scheme, signature)?);
                sig.is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
            }
            Self::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(&to_der(Curve::P384, scheme, signature)?);
                sig.is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
            }
            Self::P521(key) => {
                let sig = p521::ecdsa::Signature::from_der(&to_der(Curve::P521, scheme, signature)?);
                sig.is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Invalid)
        }
    }
}

impl PublicKey {
    /// Whether this is an RSA key of 2048 to 8192 bits: the sizes ring's and AWS-LC's RSA algorithms take (the
    /// fast paths fall back to RustCrypto outside them).
    fn rsa_2048_to_8192(&self) -> bool {
        matches!(self.kind(), KeyKind::Rsa { bits } if (2048..=8192).contains(&bits))
    }
}

fn to_der(curve: Curve, scheme: SignatureScheme, signature: &[u8]) -> Result<Vec<u8>, VerifyError> {
    Ok(match scheme {
        SignatureScheme::EcdsaAsn1 => signature.to_vec(),
        _ => ecdsa_raw_to_der(curve, signature)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use signature::{SignatureEncoding, Signer};

    fn spki_of(der: Vec<u8>) -> PublicKey {
        PublicKey::from_spki_der(&der).unwrap()
    }

    /// ring (fast path) and RustCrypto (fallback) must give the same verdicts: a good signature verifies through
    /// both entry points, a tampered message or signature fails through both.
    fn agree(
        key: &PublicKey,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) {
        let ring_path = !matches!(key, PublicKey::P521(_));
        assert_eq!(
            key.verify_with_ring(scheme, hash, message, signature),
            ring_path.then_some(true)
        );
        assert_eq!(key.verify_message(scheme, hash, message, signature), Ok(()));
        assert_eq!(
            key.verify_digest(scheme, hash, &hash.digest(message), signature),
            Ok(())
        );
        let other = [message, b"!"].concat();
        assert_eq!(
            key.verify_message(scheme, hash, &other, signature),
            Err(VerifyError::Invalid)
        );
        assert_eq!(
            key.verify_with_ring(scheme, hash, &other, signature),
            ring_path.then_some(false)
        );
        let mut bad = signature.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(key.verify_message(scheme, hash, message, &bad).is_err());
    }

    #[test]
    fn ecdsa_p256_p384_and_p521_messages_verify_on_both_paths() {
        use spki::EncodePublicKey;
        let message = b"tbs certificate bytes";
        let k256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pub256 = spki_of(k256.verifying_key().to_public_key_der().unwrap().into_vec());
        let sig: p256::ecdsa::DerSignature = k256.sign(message);
        agree(
            &pub256,
            SignatureScheme::EcdsaAsn1,
            HashAlgorithm::Sha256,
            message,
            &sig.to_vec(),
        );
        let raw: p256::ecdsa::Signature = k256.sign(message);
        agree(
            &pub256,
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            message,
            &raw.to_vec(),
        );

        let k384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pub384 = spki_of(k384.verifying_key().to_public_key_der().unwrap().into_vec());
        let sig: p384::ecdsa::DerSignature = k384.sign(message);
        agree(
            &pub384,
            SignatureScheme::EcdsaAsn1,
            HashAlgorithm::Sha384,
            message,
            &sig.to_vec(),
        );

        // P-521 has no ring path: the fallback alone decides.
        let k521 = p521::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let raw: p521::ecdsa::Signature = k521.sign(message);
        let pub521 = PublicKey::P521(p521::ecdsa::VerifyingKey::from(&k521));
        agree(
            &pub521,
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha512,
            message,
            &raw.to_vec(),
        );
    }

    #[test]
    fn rsa_pkcs1_and_pss_messages_verify_on_both_paths() {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let key = PublicKey::Rsa(private.to_public_key());
        let message = b"tbs certificate bytes";
        let digest = HashAlgorithm::Sha256.digest(message);
        let pkcs1 = private
            .sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
            .unwrap();
        agree(
            &key,
            SignatureScheme::RsaPkcs1,
            HashAlgorithm::Sha256,
            message,
            &pkcs1,
        );
        let pss = private
            .sign_with_rng(&mut rand_core::OsRng, Pss::new::<sha2::Sha256>(), &digest)
            .unwrap();
        agree(
            &key,
            SignatureScheme::RsaPss,
            HashAlgorithm::Sha256,
            message,
            &pss,
        );
    }
}
