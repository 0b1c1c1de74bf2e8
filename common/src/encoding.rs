//! Signature-adjacent encodings: PKCS#1 DigestInfo and ECDSA r||s ⇄ DER.
//!
//! cosign hands a PKCS#11 module `CKM_RSA_PKCS` over a DER DigestInfo, while the gateway's API wants the hash
//! algorithm and the bare digest; Notary and PKCS#11 want ECDSA as fixed-length r||s while some verifiers want DER.

use der::asn1::{Null, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierRef;

use crate::keys::{Curve, HashAlgorithm};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodingError {
    #[error("the data to sign is not a DER DigestInfo: {0}")]
    NotDigestInfo(String),
    #[error("the DigestInfo names hash algorithm {0}, which is not SHA-1, SHA-256, SHA-384 or SHA-512")]
    UnsupportedHash(String),
    #[error("the DigestInfo's {hash} digest has {actual} bytes; it must have {expected}")]
    DigestLength {
        hash: HashAlgorithm,
        expected: usize,
        actual: usize,
    },
    #[error("an ECDSA {curve} signature must have {expected} bytes as r||s, got {actual}")]
    RawSignatureLength {
        curve: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("not a DER ECDSA signature for {curve}: {reason}")]
    BadDerSignature { curve: &'static str, reason: String },
}

#[derive(Sequence)]
struct DigestInfo<'a> {
    digest_algorithm: AlgorithmIdentifierRef<'a>,
    digest: OctetStringRef<'a>,
}

/// Splits a DER DigestInfo into the hash algorithm and the digest, checking the digest's length.
pub fn parse_digest_info(data: &[u8]) -> Result<(HashAlgorithm, Vec<u8>), EncodingError> {
    let info = DigestInfo::from_der(data).map_err(|e| EncodingError::NotDigestInfo(e.to_string()))?;
    // Parameters must be absent or NULL (RFC 8017 §9.2 note 1 allows both).
    if let Some(params) = info.digest_algorithm.parameters {
        if params.decode_as::<Null>().is_err() {
            return Err(EncodingError::NotDigestInfo(
                "hash algorithm parameters are not NULL".into(),
            ));
        }
    }
    let oid = info.digest_algorithm.oid;
    let hash =
        HashAlgorithm::from_oid(&oid).ok_or_else(|| EncodingError::UnsupportedHash(oid.to_string()))?;
    let digest = info.digest.as_bytes();
    if digest.len() != hash.output_len() {
        return Err(EncodingError::DigestLength {
            hash,
            expected: hash.output_len(),
            actual: digest.len(),
        });
    }
    Ok((hash, digest.to_vec()))
}

/// Encodes a DigestInfo with NULL parameters, the form every PKCS#1 v1.5 signer emits.
pub fn encode_digest_info(hash: HashAlgorithm, digest: &[u8]) -> Vec<u8> {
    // A NULL and a digest of at most 64 bytes always encode; `expect` documents that, it cannot fire.
    let info = DigestInfo {
        digest_algorithm: AlgorithmIdentifierRef {
            oid: hash.oid(),
            parameters: Some(der::asn1::AnyRef::NULL),
        },
        digest: OctetStringRef::new(digest).expect("a digest fits in an OCTET STRING"),
    };
    info.to_der().expect("a DigestInfo always encodes")
}

#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts a DER ECDSA signature to fixed-length r||s, each half left-padded to the curve's size.
pub fn ecdsa_der_to_raw(curve: Curve, der_sig: &[u8]) -> Result<Vec<u8>, EncodingError> {
    let bad = |reason: String| EncodingError::BadDerSignature {
        curve: curve.name(),
        reason,
    };
    let value = EcdsaSigValue::from_der(der_sig).map_err(|e| bad(e.to_string()))?;
    let n = curve.field_len();
    let mut out = vec![0u8; 2 * n];
    for (i, part) in [value.r, value.s].iter().enumerate() {
        let bytes = part.as_bytes();
        if bytes.len() > n {
            return Err(bad(format!(
                "an integer has {} bytes, more than {n}",
                bytes.len()
            )));
        }
        out[i * n + n - bytes.len()..(i + 1) * n].copy_from_slice(bytes);
    }
    Ok(out)
}

/// Converts fixed-length r||s to a DER `SEQUENCE { r INTEGER, s INTEGER }`.
pub fn ecdsa_raw_to_der(curve: Curve, raw: &[u8]) -> Result<Vec<u8>, EncodingError> {
    let n = curve.field_len();
    if raw.len() != 2 * n {
        return Err(EncodingError::RawSignatureLength {
            curve: curve.name(),
            expected: 2 * n,
            actual: raw.len(),
        });
    }
    let bad = |e: der::Error| EncodingError::BadDerSignature {
        curve: curve.name(),
        reason: e.to_string(),
    };
    let value = EcdsaSigValue {
        r: UintRef::new(&raw[..n]).map_err(bad)?,
        s: UintRef::new(&raw[n..]).map_err(bad)?,
    };
    value.to_der().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_sha256_digest_info_parses() {
        // The 51-byte DigestInfo crypto11 (cosign) sends with CKM_RSA_PKCS.
        let mut data = hex::decode("3031300d060960864801650304020105000420").unwrap();
        data.extend_from_slice(&[7u8; 32]);
        assert_eq!(
            parse_digest_info(&data).unwrap(),
            (HashAlgorithm::Sha256, vec![7u8; 32])
        );
        assert_eq!(encode_digest_info(HashAlgorithm::Sha256, &[7u8; 32]), data);
    }

    #[test]
    fn digest_info_with_wrong_length_is_refused() {
        let data = encode_digest_info(HashAlgorithm::Sha384, &[1u8; 32]);
        assert_eq!(
            parse_digest_info(&data),
            Err(EncodingError::DigestLength {
                hash: HashAlgorithm::Sha384,
                expected: 48,
                actual: 32
            })
        );
        assert!(matches!(
            parse_digest_info(&[1u8; 32]),
            Err(EncodingError::NotDigestInfo(_))
        ));
    }

    #[test]
    fn ecdsa_round_trip_keeps_leading_zeros() {
        let mut raw = vec![0u8; 132];
        raw[1] = 0x80; // r starts with a zero byte and a high bit
        raw[66] = 0x01;
        raw[131] = 0x02;
        let der_sig = ecdsa_raw_to_der(Curve::P521, &raw).unwrap();
        assert_eq!(ecdsa_der_to_raw(Curve::P521, &der_sig).unwrap(), raw);
        assert!(ecdsa_raw_to_der(Curve::P256, &raw).is_err());
    }
}
