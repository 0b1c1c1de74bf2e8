//! AWS-LC's verdict on a signature over a digest: the PKCS#11 module checks every signature the gateway returns,
//! and RustCrypto's arithmetic made that check the largest part of the module's CPU (P-256: 0.34 ms against
//! AWS-LC's 0.09 ms; RSA-3072: its `num-bigint-dig` Montgomery loop, about 0.5 ms). ring verifies messages only;
//! AWS-LC (`aws-lc-rs`) verifies a digest as it is. Only the module (feature `aws-lc`) builds it.
//!
//! Owns nothing but that verdict. Imports only `super` (the key) and `crate::keys`; it must never import the
//! client, the protocol or anything that talks to a gateway.

use super::PublicKey;
use crate::keys::{HashAlgorithm, SignatureScheme};

impl PublicKey {
    /// AWS-LC's verdict on `signature` over `digest`, or None where this build has no AWS-LC or AWS-LC has no
    /// algorithm for this key, scheme and digest. Only a yes counts: anything AWS-LC refuses gets RustCrypto's
    /// verdict in [`PublicKey::verify_digest`], so a build with the feature accepts no signature a build without it
    /// refuses (the same rule as ring's path in [`PublicKey::verify_message`]).
    #[cfg(feature = "aws-lc")]
    pub(super) fn verify_digest_with_aws_lc(
        &self,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        use aws_lc_rs::{digest as d, signature as s};
        use HashAlgorithm::{Sha1, Sha256, Sha384, Sha512};
        use SignatureScheme::{EcdsaAsn1, EcdsaIeee, RsaPkcs1, RsaPss};
        let rsa_in_range = self.rsa_2048_to_8192();
        let (algorithm, digest_algorithm): (&'static dyn s::VerificationAlgorithm, _) = match (self, scheme) {
            // ECDSA signs the digest as an integer, whatever hash made it: the algorithm follows its length.
            (Self::P256(_), EcdsaAsn1) if digest.len() == 32 => (&s::ECDSA_P256_SHA256_ASN1, &d::SHA256),
            (Self::P256(_), EcdsaIeee) if digest.len() == 32 => (&s::ECDSA_P256_SHA256_FIXED, &d::SHA256),
            (Self::P384(_), EcdsaAsn1) if digest.len() == 48 => (&s::ECDSA_P384_SHA384_ASN1, &d::SHA384),
            (Self::P384(_), EcdsaIeee) if digest.len() == 48 => (&s::ECDSA_P384_SHA384_FIXED, &d::SHA384),
            // RSA's padding names the hash (PKCS#1 v1.5's DigestInfo, PSS's MGF1); PSS's salt is the digest's
            // length, as `Pss::new` fixes it on the RustCrypto path.
            (Self::Rsa(_), RsaPkcs1) if rsa_in_range => match hash {
                Sha1 => (
                    &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                    &d::SHA1_FOR_LEGACY_USE_ONLY,
                ),
                Sha256 => (&s::RSA_PKCS1_2048_8192_SHA256, &d::SHA256),
                Sha384 => (&s::RSA_PKCS1_2048_8192_SHA384, &d::SHA384),
                Sha512 => (&s::RSA_PKCS1_2048_8192_SHA512, &d::SHA512),
            },
            (Self::Rsa(_), RsaPss) if rsa_in_range => match hash {
                Sha1 => return None,
                Sha256 => (&s::RSA_PSS_2048_8192_SHA256, &d::SHA256),
                Sha384 => (&s::RSA_PSS_2048_8192_SHA384, &d::SHA384),
                Sha512 => (&s::RSA_PSS_2048_8192_SHA512, &d::SHA512),
            },
            _ => return None,
        };
        // A digest of the wrong length for its hash is refused here, and RustCrypto says why.
        let digest = d::Digest::import_less_safe(digest, digest_algorithm).ok()?;
        let key_bytes = match self {
            Self::Rsa(_) => self.signpath_public_key_bytes(),
            _ => self.ec_point()?,
        };
        let key = s::UnparsedPublicKey::new(algorithm, key_bytes);
        Some(key.verify_digest(&digest, signature).is_ok())
    }

    #[cfg(not(feature = "aws-lc"))]
    pub(super) fn verify_digest_with_aws_lc(
        &self,
        _: SignatureScheme,
        _: HashAlgorithm,
        _: &[u8],
        _: &[u8],
    ) -> Option<bool> {
        None
    }
}

#[cfg(all(test, feature = "aws-lc"))]
mod tests {
    use super::super::VerifyError;
    use super::*;
    use rsa::{Pkcs1v15Sign, Pss};
    use signature::hazmat::PrehashSigner;
    use signature::SignatureEncoding;

    /// AWS-LC says yes to what RustCrypto accepts and no to a tampered digest or signature; `verify_digest`
    /// agrees with it on every case.
    fn agree(key: &PublicKey, scheme: SignatureScheme, hash: HashAlgorithm, digest: &[u8], signature: &[u8]) {
        let case = format!("{scheme:?} {hash:?}");
        assert_eq!(
            key.verify_digest_with_aws_lc(scheme, hash, digest, signature),
            Some(true),
            "{case}"
        );
        assert_eq!(
            key.verify_digest(scheme, hash, digest, signature),
            Ok(()),
            "{case}"
        );
        let mut other = digest.to_vec();
        other[0] ^= 1;
        assert_eq!(
            key.verify_digest_with_aws_lc(scheme, hash, &other, signature),
            Some(false),
            "{case}"
        );
        assert_eq!(
            key.verify_digest(scheme, hash, &other, signature),
            Err(VerifyError::Invalid),
            "{case}"
        );
        let mut bad = signature.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            key.verify_digest_with_aws_lc(scheme, hash, digest, &bad),
            Some(false),
            "{case}"
        );
        assert!(key.verify_digest(scheme, hash, digest, &bad).is_err(), "{case}");
    }

    #[test]
    fn aws_lc_and_rustcrypto_agree_on_ecdsa_digests() {
        let digest256 = [7u8; 32];
        let k256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pub256 = PublicKey::P256(*k256.verifying_key());
        let raw: p256::ecdsa::Signature = k256.sign_prehash(&digest256).unwrap();
        let digest384 = [8u8; 48];
        let k384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pub384 = PublicKey::P384(*k384.verifying_key());
        let raw384: p384::ecdsa::Signature = k384.sign_prehash(&digest384).unwrap();
        let (ieee, asn1) = (SignatureScheme::EcdsaIeee, SignatureScheme::EcdsaAsn1);
        agree(&pub256, ieee, HashAlgorithm::Sha256, &digest256, &raw.to_vec());
        agree(
            &pub256,
            asn1,
            HashAlgorithm::Sha256,
            &digest256,
            &raw.to_der().to_vec(),
        );
        agree(&pub384, ieee, HashAlgorithm::Sha384, &digest384, &raw384.to_vec());
        agree(
            &pub384,
            asn1,
            HashAlgorithm::Sha384,
            &digest384,
            &raw384.to_der().to_vec(),
        );
        // A SHA-256 digest on P-384 has no AWS-LC algorithm here: RustCrypto alone decides.
        assert_eq!(
            pub384.verify_digest_with_aws_lc(ieee, HashAlgorithm::Sha256, &digest256, &raw384.to_vec()),
            None
        );
    }

    #[test]
    fn aws_lc_and_rustcrypto_agree_on_rsa_digests() {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let key = PublicKey::Rsa(private.to_public_key());
        let (pkcs1, pss) = (SignatureScheme::RsaPkcs1, SignatureScheme::RsaPss);
        let d256 = HashAlgorithm::Sha256.digest(b"manifest");
        let d384 = HashAlgorithm::Sha384.digest(b"manifest");
        let d512 = HashAlgorithm::Sha512.digest(b"manifest");
        let d1 = HashAlgorithm::Sha1.digest(b"manifest");
        let sign = |padding: Pkcs1v15Sign, digest: &[u8]| private.sign(padding, digest).unwrap();
        let mut rng = rand_core::OsRng;
        let sign_pss = |padding: Pss, digest: &[u8], rng: &mut rand_core::OsRng| {
            private.sign_with_rng(rng, padding, digest).unwrap()
        };
        let s1 = sign(Pkcs1v15Sign::new::<sha1::Sha1>(), &d1);
        agree(&key, pkcs1, HashAlgorithm::Sha1, &d1, &s1);
        let s256 = sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &d256);
        agree(&key, pkcs1, HashAlgorithm::Sha256, &d256, &s256);
        let s384 = sign(Pkcs1v15Sign::new::<sha2::Sha384>(), &d384);
        agree(&key, pkcs1, HashAlgorithm::Sha384, &d384, &s384);
        let s512 = sign(Pkcs1v15Sign::new::<sha2::Sha512>(), &d512);
        agree(&key, pkcs1, HashAlgorithm::Sha512, &d512, &s512);
        let p256 = sign_pss(Pss::new::<sha2::Sha256>(), &d256, &mut rng);
        agree(&key, pss, HashAlgorithm::Sha256, &d256, &p256);
        let p512 = sign_pss(Pss::new::<sha2::Sha512>(), &d512, &mut rng);
        agree(&key, pss, HashAlgorithm::Sha512, &d512, &p512);
        // The hash is part of the padding: a SHA-256 PKCS#1 signature is no SHA-384 one, on either path.
        assert_eq!(
            key.verify_digest_with_aws_lc(pkcs1, HashAlgorithm::Sha384, &d384, &s256),
            Some(false)
        );
        // AWS-LC has no PSS with SHA-1, and no keys under 2048 bits: RustCrypto alone decides those.
        let p1 = sign_pss(Pss::new::<sha1::Sha1>(), &d1, &mut rng);
        assert_eq!(
            key.verify_digest_with_aws_lc(pss, HashAlgorithm::Sha1, &d1, &p1),
            None
        );
        assert_eq!(key.verify_digest(pss, HashAlgorithm::Sha1, &d1, &p1), Ok(()));
        let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let small_key = PublicKey::Rsa(small.to_public_key());
        let small_sig = small.sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &d256).unwrap();
        assert_eq!(
            small_key.verify_digest_with_aws_lc(pkcs1, HashAlgorithm::Sha256, &d256, &small_sig),
            None
        );
        assert_eq!(
            small_key.verify_digest(pkcs1, HashAlgorithm::Sha256, &d256, &small_sig),
            Ok(())
        );
    }
}
