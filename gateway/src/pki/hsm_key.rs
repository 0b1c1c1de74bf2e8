//! A private key in the HSM as the signer x509-cert's builders take (certificates, CSRs), and as the signer of
//! CRLs: the to-be-signed bytes are hashed here and the digest is signed in the token, so no private key ever
//! leaves it. Written here because no crate adapts PKCS#11 keys to RustCrypto's `signature` traits for every key
//! kind the gateway holds (ECDSA P-256/384/521 and RSA).

use common::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};
use common::pubkey::PublicKey;
use const_oid::db::rfc5912;
use cryptoki::object::ObjectHandle;
use der::asn1::BitString;
use der::Decode;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding,
};

use crate::hsm::{HsmError, Signer};

/// One HSM key: the pool that reaches it, its handle, and its public half.
pub struct HsmKey<'a> {
    signer: &'a Signer,
    handle: ObjectHandle,
    kind: KeyKind,
    public: SpkiKey,
}

impl std::fmt::Debug for HsmKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A public key as its DER SubjectPublicKeyInfo: the builders only need to encode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpkiKey(pub Vec<u8>);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::from_der(&self.0)?)
    }
}

/// A signature as the HSM made it: DER for ECDSA, the raw block for RSA PKCS#1 v1.5.
#[derive(Debug, Clone)]
pub struct HsmSignature(Vec<u8>);

impl SignatureBitStringEncoding for HsmSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl<'a> HsmKey<'a> {
    /// The key labelled `label` (private and public objects share the label).
    pub fn open(signer: &'a Signer, label: &str) -> Result<Self, HsmError> {
        let spki = signer.public_key(label)?;
        let kind = PublicKey::from_spki_der(&spki)
            .map_err(|e| HsmError::PublicKey(e.to_string()))?
            .kind();
        Ok(Self {
            signer,
            handle: signer.find_key(label)?,
            kind,
            public: SpkiKey(spki),
        })
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.public.0
    }

    /// The key's kind and the hash [`Self::sign_message`] uses with it, for documents that name their algorithm.
    pub fn kind_and_hash(&self) -> (KeyKind, HashAlgorithm) {
        (self.kind, self.hash())
    }

    /// The hash certificates, CSRs and CRLs signed with this key use: the one Notary pairs with the key size.
    fn hash(&self) -> HashAlgorithm {
        match self.kind {
            KeyKind::Ec(Curve::P256) | KeyKind::Rsa { bits: 0..=2048 } => HashAlgorithm::Sha256,
            KeyKind::Ec(Curve::P384) | KeyKind::Rsa { bits: 2049..=3072 } => HashAlgorithm::Sha384,
            KeyKind::Ec(Curve::P521) | KeyKind::Rsa { .. } => HashAlgorithm::Sha512,
        }
    }

    /// The AlgorithmIdentifier of this key's signatures (RFC 5758 ECDSA, RFC 4055 RSA PKCS#1 v1.5).
    pub fn algorithm(&self) -> AlgorithmIdentifierOwned {
        let (oid, null) = match (self.kind, self.hash()) {
            (KeyKind::Ec(_), HashAlgorithm::Sha256) => (rfc5912::ECDSA_WITH_SHA_256, false),
            (KeyKind::Ec(_), HashAlgorithm::Sha384) => (rfc5912::ECDSA_WITH_SHA_384, false),
            (KeyKind::Ec(_), _) => (rfc5912::ECDSA_WITH_SHA_512, false),
            (KeyKind::Rsa { .. }, HashAlgorithm::Sha256) => (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, true),
            (KeyKind::Rsa { .. }, HashAlgorithm::Sha384) => (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, true),
            (KeyKind::Rsa { .. }, _) => (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, true),
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: null.then(|| der::asn1::Null.into()),
        }
    }

    /// Signs `message` (hashed here) in the HSM.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let hash = self.hash();
        let scheme = match self.kind {
            KeyKind::Ec(_) => SignatureScheme::EcdsaAsn1,
            KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1,
        };
        self.signer
            .sign(self.handle, self.kind, scheme, hash, &hash.digest(message))
    }
}

impl signature::Keypair for HsmKey<'_> {
    type VerifyingKey = SpkiKey;

    fn verifying_key(&self) -> SpkiKey {
        self.public.clone()
    }
}

impl DynSignatureAlgorithmIdentifier for HsmKey<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm())
    }
}

impl signature::Signer<HsmSignature> for HsmKey<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<HsmSignature, signature::Error> {
        self.sign_message(message)
            .map(HsmSignature)
            .map_err(signature::Error::from_source)
    }
}
