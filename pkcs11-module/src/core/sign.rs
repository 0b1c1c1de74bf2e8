//! One signing operation: from `C_SignInit` to the gateway's verified signature.
//!
//! The signature's length is known from the key alone (RSA: the modulus; ECDSA: twice the field), so a length
//! query or a too-small buffer is answered without a gateway call and leaves the operation active. The input is
//! checked and reduced to a digest before the call; only then does the operation leave the session (so no lock is
//! held across the network) and end, whatever the gateway answers.

use std::sync::Arc;

use sha2::Digest;

use common::client::GatewayClient;
use common::encoding::parse_digest_info;
use common::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};
use common::protocol::Metadata;

use crate::core::mechanism::Mechanism;
use crate::core::objects::PolicyKey;
use crate::error::{Error, Phase, Result};

/// Input of a single-part mechanism we collect over `C_SignUpdate` calls; larger than any DigestInfo.
const MAX_RAW_INPUT: usize = 1024;

#[derive(Debug, Clone)]
enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(hash: HashAlgorithm) -> Option<Self> {
        match hash {
            HashAlgorithm::Sha256 => Some(Self::Sha256(sha2::Sha256::new())),
            HashAlgorithm::Sha384 => Some(Self::Sha384(sha2::Sha384::new())),
            HashAlgorithm::Sha512 => Some(Self::Sha512(sha2::Sha512::new())),
            HashAlgorithm::Sha1 => None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
enum Input {
    /// Data of `CKM_ECDSA`, `CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS` (a digest or DigestInfo).
    Raw(Vec<u8>),
    /// Data of a hash-and-sign mechanism, hashed as it arrives.
    Hashing(Box<Hasher>),
}

/// What the gateway is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestToSign {
    pub scheme: SignatureScheme,
    pub hash: HashAlgorithm,
    pub digest: Vec<u8>,
}

#[derive(Debug)]
pub struct SignOperation {
    mechanism: Mechanism,
    key: Arc<PolicyKey>,
    client: Arc<GatewayClient>,
    input: Input,
    /// `C_SignUpdate` was called: only `C_SignFinal` may finish the operation.
    multi_part: bool,
}

impl SignOperation {
    pub fn new(mechanism: Mechanism, key: Arc<PolicyKey>, client: Arc<GatewayClient>) -> Result<Self> {
        if !mechanism.fits(key.remote.kind()) {
            return Err(Error::KeyTypeInconsistent {
                mechanism: format!("{mechanism:?}"),
                key: key.remote.kind(),
            });
        }
        // The PSS hash is a parameter: a hash the policy does not sign (SHA-1 unless it lists it) is refused here,
        // before any data, as tokens refuse parameters they cannot honour.
        if let Mechanism::RsaPss(hash) | Mechanism::RsaPssWith(hash) = mechanism {
            if !key.remote.info.signs(hash) {
                return Err(Error::MechanismParamInvalid(
                    "hashAlg names a hash the signing policy does not sign",
                ));
            }
        }
        let input = match mechanism.local_hash().and_then(Hasher::new) {
            Some(hasher) => Input::Hashing(Box::new(hasher)),
            None => Input::Raw(Vec::new()),
        };
        Ok(Self {
            mechanism,
            key,
            client,
            input,
            multi_part: false,
        })
    }

    /// The exact length of the signature this operation will produce.
    pub fn signature_len(&self) -> usize {
        self.key.remote.kind().signature_len()
    }

    pub fn is_multi_part(&self) -> bool {
        self.multi_part
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.multi_part = true;
        match &mut self.input {
            Input::Hashing(hasher) => hasher.update(data),
            Input::Raw(buffer) => {
                if buffer.len() + data.len() > MAX_RAW_INPUT {
                    return Err(Error::DataLenRange {
                        expected: "a digest or DigestInfo is at most 1024 bytes",
                        actual: buffer.len() + data.len(),
                    });
                }
                buffer.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// Reduces the collected input to the digest the gateway signs, checking it against the mechanism and key.
    pub fn digest_to_sign(&self) -> Result<DigestToSign> {
        let kind = self.key.remote.kind();
        let (scheme, hash, digest) = match (&self.input, self.mechanism) {
            (Input::Hashing(hasher), mechanism) => {
                let hash = mechanism.local_hash().unwrap_or(HashAlgorithm::Sha256);
                let scheme = match mechanism {
                    Mechanism::EcdsaWith(_) => SignatureScheme::EcdsaIeee,
                    Mechanism::RsaPssWith(_) => SignatureScheme::RsaPss,
                    _ => SignatureScheme::RsaPkcs1,
                };
                (scheme, hash, hasher.as_ref().clone().finalize())
            }
            (Input::Raw(data), Mechanism::RsaPkcs) => {
                if data.len() + 11 > kind.signature_len() {
                    return Err(Error::DataLenRange {
                        expected: "a DigestInfo shorter than the modulus less 11 bytes",
                        actual: data.len(),
                    });
                }
                let (hash, digest) = parse_digest_info(data).map_err(Error::DataInvalid)?;
                (SignatureScheme::RsaPkcs1, hash, digest)
            }
            (Input::Raw(data), Mechanism::RsaPss(hash)) => {
                if data.len() != hash.output_len() {
                    return Err(Error::DataLenRange {
                        expected: "the length of the hash named in the PSS parameters",
                        actual: data.len(),
                    });
                }
                (SignatureScheme::RsaPss, hash, data.clone())
            }
            (Input::Raw(data), _) => {
                let KeyKind::Ec(curve) = kind else {
                    return Err(Error::KeyTypeInconsistent {
                        mechanism: format!("{:?}", self.mechanism),
                        key: kind,
                    });
                };
                let (hash, digest) = ecdsa_input(data, curve)?;
                (SignatureScheme::EcdsaIeee, hash, digest)
            }
        };
        Ok(DigestToSign { scheme, hash, digest })
    }

    /// Asks the gateway; the signature comes back verified with the policy's public key.
    pub fn sign(&self, request: &DigestToSign) -> Result<Vec<u8>> {
        tracing::info!(
            key_id = %self.key.remote.key_id(),
            scheme = %request.scheme,
            hash = %request.hash,
            "signing"
        );
        self.key
            .remote
            .sign_digest(
                &self.client,
                request.scheme,
                request.hash,
                &request.digest,
                Some(metadata()),
            )
            .map_err(Error::gateway(Phase::Sign))
    }
}

/// `CKM_ECDSA` signs input of any length (PKCS#11 v2.40 §2.3.6): ECDSA takes its leftmost bits, as many as the
/// curve's order has, as an integer. The gateway signs digests of SHA-1 and SHA-2 lengths, so the input is brought
/// to one of those without changing that integer:
///
/// - 20, 32, 48 or 64 bytes go as they are (the HSM truncates a longer digest the same way);
/// - longer than P-256's or P-384's order (whole bytes): its leftmost 32 or 48 bytes;
/// - shorter than a digest length that fits the order: zeros in front, which leave the integer unchanged.
///
/// What remains cannot be expressed as a digest the gateway takes: nothing at all, and more than 64 bytes for
/// P-521 (whose order of 521 bits is longer than any digest).
fn ecdsa_input(data: &[u8], curve: Curve) -> Result<(HashAlgorithm, Vec<u8>)> {
    let out_of_range = || Error::DataLenRange {
        expected: "1 to 64 bytes, or any length with P-256 and P-384",
        actual: data.len(),
    };
    let digest_hash = |len: usize| match len {
        20 => Some(HashAlgorithm::Sha1),
        32 | 48 | 64 => HashAlgorithm::from_output_len(len),
        _ => None,
    };
    if let Some(hash) = digest_hash(data.len()) {
        return Ok((hash, data.to_vec()));
    }
    let order_bits = curve.bits() as usize;
    if data.len() * 8 > order_bits && order_bits % 8 == 0 {
        let truncated = &data[..order_bits / 8];
        let hash = HashAlgorithm::from_output_len(truncated.len()).ok_or_else(out_of_range)?;
        return Ok((hash, truncated.to_vec()));
    }
    let target = [32usize, 48, 64]
        .into_iter()
        .find(|&len| len >= data.len() && len * 8 <= order_bits)
        .filter(|_| !data.is_empty())
        .ok_or_else(out_of_range)?;
    let hash = HashAlgorithm::from_output_len(target).ok_or_else(out_of_range)?;
    let mut padded = vec![0u8; target - data.len()];
    padded.extend_from_slice(data);
    Ok((hash, padded))
}

/// Audit metadata: the calling process (PIN redacted by `common`) and, when a pipeline sets them, what is signed.
fn metadata() -> Metadata {
    Metadata {
        source_process: Some(common::metadata::current_source_process()),
        oci: common::metadata::oci_from_environment(),
        // The client adds the release group (ReleaseGroup) to every SignHash.
        release_group: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_input_of_any_length_keeps_the_integer_ecdsa_signs() {
        use Curve::{P256, P384, P521};
        let data: Vec<u8> = (1..=80).collect();
        let input = |len: usize, curve| ecdsa_input(&data[..len], curve);
        // Digest lengths go as they are, on any curve.
        for (len, hash) in [
            (20, HashAlgorithm::Sha1),
            (32, HashAlgorithm::Sha256),
            (48, HashAlgorithm::Sha384),
            (64, HashAlgorithm::Sha512),
        ] {
            for curve in Curve::ALL {
                assert_eq!(input(len, curve).unwrap(), (hash, data[..len].to_vec()));
            }
        }
        // Longer than the order: the leftmost bytes.
        assert_eq!(
            input(33, P256).unwrap(),
            (HashAlgorithm::Sha256, data[..32].to_vec())
        );
        assert_eq!(
            input(80, P384).unwrap(),
            (HashAlgorithm::Sha384, data[..48].to_vec())
        );
        // Shorter: zeros in front, to a length the order holds.
        let padded = |zeros: usize, len: usize| [vec![0; zeros], data[..len].to_vec()].concat();
        assert_eq!(input(31, P256).unwrap(), (HashAlgorithm::Sha256, padded(1, 31)));
        assert_eq!(input(1, P256).unwrap(), (HashAlgorithm::Sha256, padded(31, 1)));
        assert_eq!(input(47, P384).unwrap(), (HashAlgorithm::Sha384, padded(1, 47)));
        assert_eq!(input(63, P521).unwrap(), (HashAlgorithm::Sha512, padded(1, 63)));
        // Not expressible as a digest the gateway signs.
        for (len, curve) in [(0, P256), (65, P521), (66, P521), (80, P521)] {
            assert!(
                matches!(input(len, curve), Err(Error::DataLenRange { .. })),
                "{len} bytes on {curve:?}"
            );
        }
    }

    #[test]
    fn oci_metadata_only_when_set() {
        // The variable names are the contract with pipelines; other tests in this binary do not set them.
        assert!(metadata().oci.is_none());
        assert!(metadata().source_process.is_some());
    }
}
