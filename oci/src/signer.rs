//! The one thing this crate needs from whoever holds the key: sign a digest. The gateway implements [`Signer`]
//! with its HSM; the `signpath-oci` CLI with the gateway's SignHash API. Everything around the signature
//! (envelopes, manifests, the layout) is built here, and every signature is checked against the signing
//! certificate's public key before it is written.

use common::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use common::x509::ParsedCertificate;

pub use crate::error::SignerError;
use crate::error::{Error, Result};
use crate::layout::Descriptor;

/// What is being signed, so a signer can audit it (and refuse it).
#[derive(Debug, Clone)]
pub struct SigningTarget {
    /// The image reference as the user named it.
    pub reference: String,
    /// The signed manifest or index.
    pub descriptor: Descriptor,
    /// Which signature: `notary` or `cosign`.
    pub purpose: &'static str,
}

/// One digest to sign.
#[derive(Debug, Clone)]
pub struct DigestToSign<'a> {
    pub scheme: SignatureScheme,
    pub hash: HashAlgorithm,
    /// The digest, `hash` of `message`.
    pub digest: &'a [u8],
    /// The bytes the digest was made of (the JWS signing input, the COSE Sig_structure, the cosign payload), for
    /// signers that hash themselves.
    pub message: &'a [u8],
    pub target: &'a SigningTarget,
}

/// A key that signs digests.
pub trait Signer {
    /// The signing certificate first, then its issuers up to and including the root (Notary Project envelopes
    /// carry the whole chain), DER-encoded.
    fn certificate_chain(&self) -> std::result::Result<Vec<Vec<u8>>, SignerError>;

    /// Signs `request.digest`: RSA PSS with salt length = hash length, RSA PKCS#1 v1.5, or ECDSA as raw r||s or
    /// DER, as `request.scheme` says.
    fn sign_digest(&self, request: &DigestToSign<'_>) -> std::result::Result<Vec<u8>, SignerError>;
}

/// A signer's chain with its leaf parsed: the key kind decides the algorithms.
#[derive(Debug, Clone)]
pub(crate) struct SigningKey {
    pub chain: Vec<Vec<u8>>,
    pub leaf: ParsedCertificate,
    pub kind: KeyKind,
}

impl SigningKey {
    pub fn of(signer: &dyn Signer) -> Result<Self> {
        let chain = signer.certificate_chain().map_err(|source| Error::Signing {
            target: "the certificate chain".into(),
            source,
        })?;
        let leaf_der = chain
            .first()
            .ok_or_else(|| Error::CertificateChain("the signer returned no certificate".into()))?;
        let leaf =
            ParsedCertificate::from_der(leaf_der).map_err(|e| Error::CertificateChain(e.to_string()))?;
        let kind = leaf
            .public_key()
            .map_err(|e| Error::CertificateChain(e.to_string()))?
            .kind();
        Ok(Self { chain, leaf, kind })
    }

    /// Hashes `message`, has the signer sign it, and checks the signature with the leaf's public key.
    pub fn sign(
        &self,
        signer: &dyn Signer,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        message: &[u8],
        target: &SigningTarget,
    ) -> Result<Vec<u8>> {
        let digest = hash.digest(message);
        let what = || format!("{} ({})", target.descriptor.digest, target.purpose);
        let signature = signer
            .sign_digest(&DigestToSign {
                scheme,
                hash,
                digest: &digest,
                message,
                target,
            })
            .map_err(|source| Error::Signing {
                target: what(),
                source,
            })?;
        let public_key = self
            .leaf
            .public_key()
            .map_err(|e| Error::CertificateChain(e.to_string()))?;
        public_key
            .verify_digest(scheme, hash, &digest, &signature)
            .map_err(|e| Error::SignatureCheck {
                target: what(),
                reason: e.to_string(),
            })?;
        Ok(signature)
    }
}
