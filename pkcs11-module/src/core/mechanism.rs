//! The signing mechanisms the module offers and how each maps onto the gateway's hash signing.
//!
//! The gateway signs digests, so every mechanism comes down to (scheme, hash, digest): `CKM_ECDSA` and
//! `CKM_RSA_PKCS_PSS` receive the digest, `CKM_RSA_PKCS` receives a DER DigestInfo (what cosign and OpenSSL send),
//! and the `CKM_SHA*_…` mechanisms hash the data here, so only the digest leaves the machine.

use cryptoki_sys::*;

use common::keys::{HashAlgorithm, KeyKind};

use crate::error::{Error, Result};

/// The parameters of a `CK_MECHANISM`, as the FFI layer read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    None,
    Pss {
        hash_alg: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: CK_ULONG,
    },
    /// Parameters of a length that fits no structure we know.
    Other {
        len: usize,
    },
}

/// A mechanism a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismRequest {
    pub mechanism: CK_MECHANISM_TYPE,
    pub params: Params,
}

/// A validated signing mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `CKM_ECDSA`: the input is a digest.
    Ecdsa,
    /// `CKM_ECDSA_SHA256/384/512`: the input is hashed here.
    EcdsaWith(HashAlgorithm),
    /// `CKM_RSA_PKCS`: the input is a DER DigestInfo.
    RsaPkcs,
    /// `CKM_SHA256/384/512_RSA_PKCS`.
    RsaPkcsWith(HashAlgorithm),
    /// `CKM_RSA_PKCS_PSS`: the input is a digest of this hash.
    RsaPss(HashAlgorithm),
    /// `CKM_SHA256/384/512_RSA_PKCS_PSS`.
    RsaPssWith(HashAlgorithm),
}

/// The EC mechanisms, for a key's `CKA_ALLOWED_MECHANISMS`.
pub const EC_MECHANISMS: [CK_MECHANISM_TYPE; 4] =
    [CKM_ECDSA, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512];

/// The RSA mechanisms, for a key's `CKA_ALLOWED_MECHANISMS`.
pub const RSA_MECHANISMS: [CK_MECHANISM_TYPE; 8] = [
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];

/// Every mechanism `C_GetMechanismList` reports.
pub fn all() -> Vec<CK_MECHANISM_TYPE> {
    EC_MECHANISMS.iter().chain(&RSA_MECHANISMS).copied().collect()
}

/// `C_GetMechanismInfo`: key sizes in bits (the curves and RSA sizes the gateway's policies hold) and flags.
/// `CKF_HW` because the key lives in the gateway's HSM (pkcs11-tool picks only hardware mechanisms by default).
pub fn info(mechanism: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    if EC_MECHANISMS.contains(&mechanism) {
        Ok(CK_MECHANISM_INFO {
            ulMinKeySize: 256,
            ulMaxKeySize: 521,
            flags: CKF_SIGN | CKF_HW | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
        })
    } else if RSA_MECHANISMS.contains(&mechanism) {
        Ok(CK_MECHANISM_INFO {
            ulMinKeySize: 2048,
            ulMaxKeySize: 4096,
            flags: CKF_SIGN | CKF_HW,
        })
    } else {
        Err(Error::MechanismInvalid(mechanism))
    }
}

fn hash_of_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlgorithm> {
    match mechanism {
        CKM_SHA_1 => Some(HashAlgorithm::Sha1),
        CKM_SHA256 => Some(HashAlgorithm::Sha256),
        CKM_SHA384 => Some(HashAlgorithm::Sha384),
        CKM_SHA512 => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

fn mgf1_of(hash: HashAlgorithm) -> CK_RSA_PKCS_MGF_TYPE {
    match hash {
        HashAlgorithm::Sha1 => CKG_MGF1_SHA1,
        HashAlgorithm::Sha256 => CKG_MGF1_SHA256,
        HashAlgorithm::Sha384 => CKG_MGF1_SHA384,
        HashAlgorithm::Sha512 => CKG_MGF1_SHA512,
    }
}

/// The gateway's PSS uses MGF1 with the message hash and a salt as long as the hash; other parameters would
/// produce a signature the caller cannot verify the way it asked.
fn pss_hash(params: Params, required: Option<HashAlgorithm>) -> Result<HashAlgorithm> {
    let Params::Pss {
        hash_alg,
        mgf,
        salt_len,
    } = params
    else {
        return Err(Error::MechanismParamInvalid("PSS needs CK_RSA_PKCS_PSS_PARAMS"));
    };
    let hash = hash_of_mechanism(hash_alg).ok_or(Error::MechanismParamInvalid(
        "hashAlg must be CKM_SHA_1, CKM_SHA256, CKM_SHA384 or CKM_SHA512",
    ))?;
    if required.is_some_and(|r| r != hash) {
        return Err(Error::MechanismParamInvalid(
            "hashAlg must be the mechanism's hash",
        ));
    }
    if mgf != mgf1_of(hash) {
        return Err(Error::MechanismParamInvalid(
            "mgf must be MGF1 with the same hash as hashAlg",
        ));
    }
    if usize::try_from(salt_len).ok() != Some(hash.output_len()) {
        return Err(Error::MechanismParamInvalid("sLen must equal the hash length"));
    }
    Ok(hash)
}

fn no_params(params: Params) -> Result<()> {
    match params {
        Params::None => Ok(()),
        _ => Err(Error::MechanismParamInvalid("this mechanism takes no parameters")),
    }
}

impl Mechanism {
    pub fn parse(request: MechanismRequest) -> Result<Self> {
        let MechanismRequest { mechanism, params } = request;
        let mechanism = match mechanism {
            CKM_ECDSA => Self::Ecdsa,
            CKM_ECDSA_SHA256 => Self::EcdsaWith(HashAlgorithm::Sha256),
            CKM_ECDSA_SHA384 => Self::EcdsaWith(HashAlgorithm::Sha384),
            CKM_ECDSA_SHA512 => Self::EcdsaWith(HashAlgorithm::Sha512),
            CKM_RSA_PKCS => Self::RsaPkcs,
            CKM_SHA256_RSA_PKCS => Self::RsaPkcsWith(HashAlgorithm::Sha256),
            CKM_SHA384_RSA_PKCS => Self::RsaPkcsWith(HashAlgorithm::Sha384),
            CKM_SHA512_RSA_PKCS => Self::RsaPkcsWith(HashAlgorithm::Sha512),
            CKM_RSA_PKCS_PSS => return Ok(Self::RsaPss(pss_hash(params, None)?)),
            CKM_SHA256_RSA_PKCS_PSS => {
                return Ok(Self::RsaPssWith(pss_hash(params, Some(HashAlgorithm::Sha256))?))
            }
            CKM_SHA384_RSA_PKCS_PSS => {
                return Ok(Self::RsaPssWith(pss_hash(params, Some(HashAlgorithm::Sha384))?))
            }
            CKM_SHA512_RSA_PKCS_PSS => {
                return Ok(Self::RsaPssWith(pss_hash(params, Some(HashAlgorithm::Sha512))?))
            }
            other => return Err(Error::MechanismInvalid(other)),
        };
        no_params(params)?;
        Ok(mechanism)
    }

    pub fn fits(self, kind: KeyKind) -> bool {
        let rsa = matches!(kind, KeyKind::Rsa { .. });
        match self {
            Self::Ecdsa | Self::EcdsaWith(_) => !rsa,
            Self::RsaPkcs | Self::RsaPkcsWith(_) | Self::RsaPss(_) | Self::RsaPssWith(_) => rsa,
        }
    }

    /// The hash this module computes over the input, for the hash-and-sign mechanisms.
    pub fn local_hash(self) -> Option<HashAlgorithm> {
        match self {
            Self::EcdsaWith(h) | Self::RsaPkcsWith(h) | Self::RsaPssWith(h) => Some(h),
            Self::Ecdsa | Self::RsaPkcs | Self::RsaPss(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pss(
        mechanism: CK_MECHANISM_TYPE,
        hash_alg: CK_ULONG,
        mgf: CK_ULONG,
        salt_len: CK_ULONG,
    ) -> Result<Mechanism> {
        Mechanism::parse(MechanismRequest {
            mechanism,
            params: Params::Pss {
                hash_alg,
                mgf,
                salt_len,
            },
        })
    }

    #[test]
    fn pss_parameters_must_match_the_gateway() {
        assert_eq!(
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32).unwrap(),
            Mechanism::RsaPss(HashAlgorithm::Sha256)
        );
        assert_eq!(
            pss(CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48).unwrap(),
            Mechanism::RsaPssWith(HashAlgorithm::Sha384)
        );
        for bad in [
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 0),
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA1, 32),
            pss(CKM_SHA512_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32),
            pss(CKM_RSA_PKCS_PSS, CKM_ECDSA, CKG_MGF1_SHA256, 32),
        ] {
            assert!(matches!(bad, Err(Error::MechanismParamInvalid(_))), "{bad:?}");
        }
        let missing = Mechanism::parse(MechanismRequest {
            mechanism: CKM_RSA_PKCS_PSS,
            params: Params::None,
        });
        assert!(matches!(missing, Err(Error::MechanismParamInvalid(_))));
    }

    #[test]
    fn mechanisms_fit_their_key_types() {
        let ecdsa = Mechanism::parse(MechanismRequest {
            mechanism: CKM_ECDSA,
            params: Params::None,
        })
        .unwrap();
        assert!(ecdsa.fits(KeyKind::Ec(common::keys::Curve::P256)));
        assert!(!ecdsa.fits(KeyKind::Rsa { bits: 2048 }));
        let unknown = Mechanism::parse(MechanismRequest {
            mechanism: CKM_SHA256,
            params: Params::None,
        });
        assert!(matches!(unknown, Err(Error::MechanismInvalid(CKM_SHA256))));
    }

    #[test]
    fn every_listed_mechanism_has_info() {
        for m in all() {
            let info = info(m).unwrap();
            assert_ne!(info.flags & CKF_SIGN, 0);
            assert_ne!(info.flags & CKF_HW, 0);
        }
        assert!(info(CKM_SHA256).is_err());
    }
}
