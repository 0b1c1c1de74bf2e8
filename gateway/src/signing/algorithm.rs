//! Which signature a request asks for, checked against the policy's key: the scheme (RSA PKCS#1 v1.5 or PSS,
//! ECDSA in IEEE P1363 or ASN.1 form), the hash, and a digest of that hash's length.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use common::protocol::{EcdsaSignatureFormat, PaddingMode, SignatureAlgorithm};

use super::refusal::{refuse, Reason, Refusal};
use super::state::Policy;
use crate::store::Record;

/// A request checked against its policy, ready for the HSM.
pub struct Prepared {
    pub scheme: SignatureScheme,
    pub hash: HashAlgorithm,
    pub digest: Vec<u8>,
}

pub fn prepare(
    policy: &Policy,
    data: &common::protocol::HashSigningData,
    record: &mut Record,
) -> Result<Prepared, Refusal> {
    let (scheme, hash) = choose_algorithm(policy.kind, data)?;
    record.algorithm = Some(scheme.to_string());
    record.hash_algorithm = Some(hash.notation_name().to_owned());
    if !policy.hash_algorithms.contains(&hash) {
        let allowed: Vec<&str> = policy.hash_algorithms.iter().map(|h| h.signpath_name()).collect();
        return Err(refuse(
            Reason::HashAlgorithmNotAllowed,
            format!(
                "signing policy {}/{} does not sign {} digests (it signs {}); hash with one of those",
                policy.project,
                policy.slug,
                hash.signpath_name(),
                allowed.join(", ")
            ),
        ));
    }
    let digest = BASE64
        .decode(data.hash.trim())
        .map_err(|e| refuse(Reason::InvalidHash, format!("hash is not base64: {e}")))?;
    record.digest = Some(hex::encode(&digest));
    if digest.len() != hash.output_len() {
        return Err(refuse(
            Reason::InvalidHash,
            format!(
                "a {hash} digest has {} bytes, this one has {}",
                hash.output_len(),
                digest.len()
            ),
        ));
    }
    Ok(Prepared { scheme, hash, digest })
}

/// The scheme and hash a request asks for, checked against the policy's key.
pub fn choose_algorithm(
    kind: KeyKind,
    data: &common::protocol::HashSigningData,
) -> Result<(SignatureScheme, HashAlgorithm), Refusal> {
    let unsupported = |detail: String| refuse(Reason::UnsupportedAlgorithm, detail);
    match (data.signature_algorithm, kind) {
        (SignatureAlgorithm::Rsa, KeyKind::Rsa { .. }) => {
            let options = data.rsa_options.clone().unwrap_or_default();
            let hash = match (&options.hash_algorithm_name, &options.hash_algorithm_oid) {
                (Some(name), _) => HashAlgorithm::from_signpath_name(name).ok_or_else(|| {
                    unsupported(format!(
                        "hashAlgorithmName {name:?} is not Sha1, Sha256, Sha384 or Sha512"
                    ))
                })?,
                (None, Some(oid)) => oid
                    .parse()
                    .ok()
                    .and_then(|oid| HashAlgorithm::from_oid(&oid))
                    .ok_or_else(|| {
                        unsupported(format!("hashAlgorithmOid {oid} is not a SHA-1 or SHA-2 OID"))
                    })?,
                (None, None) => {
                    return Err(unsupported(
                        "rsaOptions needs hashAlgorithmName or hashAlgorithmOid".into(),
                    ))
                }
            };
            let scheme = match options.padding_mode.unwrap_or(PaddingMode::Pkcs1) {
                PaddingMode::Pkcs1 => SignatureScheme::RsaPkcs1,
                PaddingMode::Pss => SignatureScheme::RsaPss,
            };
            Ok((scheme, hash))
        }
        (SignatureAlgorithm::Ecdsa, KeyKind::Ec(_)) => {
            let format = data
                .ecdsa_options
                .as_ref()
                .and_then(|o| o.signature_format)
                .unwrap_or(EcdsaSignatureFormat::Ieee);
            let len = BASE64.decode(data.hash.trim()).map(|d| d.len()).unwrap_or(0);
            // ECDSA names no hash: the digest's length does (SHA-1 for PKCS#11 callers that still send it).
            let hash = match len {
                20 => HashAlgorithm::Sha1,
                len => HashAlgorithm::from_output_len(len).unwrap_or(HashAlgorithm::Sha256),
            };
            let scheme = match format {
                EcdsaSignatureFormat::Ieee => SignatureScheme::EcdsaIeee,
                EcdsaSignatureFormat::Asn1 => SignatureScheme::EcdsaAsn1,
            };
            Ok((scheme, hash))
        }
        (requested, kind) => Err(unsupported(format!(
            "this policy holds a {kind} key; signatureAlgorithm {requested:?} cannot be used"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use common::keys::Curve;
    use common::protocol::{EcdsaOptions, HashSigningData, RsaOptions};

    fn data(algorithm: SignatureAlgorithm, hash_len: usize) -> HashSigningData {
        HashSigningData {
            signature_algorithm: algorithm,
            rsa_options: None,
            ecdsa_options: None,
            hash: BASE64.encode(vec![1u8; hash_len]),
            metadata: None,
        }
    }

    #[test]
    fn rsa_defaults_to_pkcs1_and_takes_a_name_or_an_oid() {
        let rsa = KeyKind::Rsa { bits: 2048 };
        let mut d = data(SignatureAlgorithm::Rsa, 48);
        d.rsa_options = Some(RsaOptions {
            hash_algorithm_name: Some("sha384".into()),
            ..Default::default()
        });
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap(),
            (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha384)
        );
        d.rsa_options = Some(RsaOptions {
            hash_algorithm_oid: Some("2.16.840.1.101.3.4.2.3".into()),
            padding_mode: Some(PaddingMode::Pss),
            ..Default::default()
        });
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap(),
            (SignatureScheme::RsaPss, HashAlgorithm::Sha512)
        );
        d.rsa_options = None;
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap_err().reason,
            Reason::UnsupportedAlgorithm
        );
    }

    #[test]
    fn ecdsa_takes_the_hash_from_the_digest_length_and_defaults_to_ieee() {
        let ec = KeyKind::Ec(Curve::P384);
        assert_eq!(
            choose_algorithm(ec, &data(SignatureAlgorithm::Ecdsa, 48)).unwrap(),
            (SignatureScheme::EcdsaIeee, HashAlgorithm::Sha384)
        );
        let mut d = data(SignatureAlgorithm::Ecdsa, 64);
        d.ecdsa_options = Some(EcdsaOptions {
            signature_format: Some(EcdsaSignatureFormat::Asn1),
        });
        assert_eq!(
            choose_algorithm(ec, &d).unwrap(),
            (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha512)
        );
    }

    #[test]
    fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let refusal =
            choose_algorithm(KeyKind::Ec(Curve::P256), &data(SignatureAlgorithm::Rsa, 32)).unwrap_err();
        assert_eq!(refusal.reason, Reason::UnsupportedAlgorithm);
    }
}
