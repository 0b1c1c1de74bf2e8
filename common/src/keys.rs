//! Key and algorithm types both clients and the gateway share: Notary key specs, hash algorithms, curves.
//!
//! The Notary signature specification fixes one algorithm per key spec (RSA → RSASSA-PSS, EC → ECDSA, with the
//! hash sized to the key); PKCS#11 and cosign are freer (RSA PKCS#1 v1.5, any SHA-2 with any key), so the types
//! here describe keys and hashes separately and [`KeySpec`] carries Notary's pairing.

use std::fmt;

use const_oid::ObjectIdentifier;
use sha2::Digest;

/// A hash algorithm the gateway can be asked to sign a digest of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// Only for legacy PKCS#11 callers with RSA PKCS#1 v1.5; never chosen by our clients.
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => const_oid::db::rfc5912::ID_SHA_1,
            Self::Sha256 => const_oid::db::rfc5912::ID_SHA_256,
            Self::Sha384 => const_oid::db::rfc5912::ID_SHA_384,
            Self::Sha512 => const_oid::db::rfc5912::ID_SHA_512,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// SignPath's `hashAlgorithmName` spelling (`Sha256`).
    pub fn signpath_name(self) -> &'static str {
        match self {
            Self::Sha1 => "Sha1",
            Self::Sha256 => "Sha256",
            Self::Sha384 => "Sha384",
            Self::Sha512 => "Sha512",
        }
    }

    /// Parses SignPath's `hashAlgorithmName`, case-insensitively (its server binds names that way).
    pub fn from_signpath_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|h| h.signpath_name().eq_ignore_ascii_case(name))
    }

    /// The Notation plugin protocol's spelling (`SHA-256`).
    pub fn notation_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    pub fn from_notation_name(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| h.notation_name() == name)
    }

    /// The SHA-2 hash whose output has this length (ECDSA requests carry no hash name).
    pub fn from_output_len(len: usize) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| h.output_len() == len)
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.notation_name())
    }
}

/// The NIST curves Notary allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub const ALL: [Curve; 3] = [Self::P256, Self::P384, Self::P521];

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::P256 => const_oid::db::rfc5912::SECP_256_R_1,
            Self::P384 => const_oid::db::rfc5912::SECP_384_R_1,
            Self::P521 => const_oid::db::rfc5912::SECP_521_R_1,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.oid() == *oid)
    }

    pub fn bits(self) -> u32 {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }

    pub fn from_bits(bits: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.bits() == bits)
    }

    /// Bytes of one coordinate or scalar; a raw (IEEE P1363) signature is twice this.
    pub fn field_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }
}

/// What a key is, independent of how it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Rsa { bits: u32 },
    Ec(Curve),
}

impl KeyKind {
    /// Length in bytes of every signature this key makes (RSA: modulus length; ECDSA: raw r||s).
    pub fn signature_len(self) -> usize {
        match self {
            Self::Rsa { bits } => (bits as usize).div_ceil(8),
            Self::Ec(curve) => 2 * curve.field_len(),
        }
    }

    /// The Notary key spec, if this key is one Notary allows.
    pub fn key_spec(self) -> Option<KeySpec> {
        KeySpec::ALL.into_iter().find(|s| s.kind() == self)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Ec(curve) => write!(f, "EC-{}", curve.bits()),
        }
    }
}

/// The six key specs of the Notary signature specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ec256,
    Ec384,
    Ec521,
}

impl KeySpec {
    pub const ALL: [KeySpec; 6] = [
        Self::Ec256,
        Self::Ec384,
        Self::Ec521,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
    ];

    pub fn kind(self) -> KeyKind {
        match self {
            Self::Rsa2048 => KeyKind::Rsa { bits: 2048 },
            Self::Rsa3072 => KeyKind::Rsa { bits: 3072 },
            Self::Rsa4096 => KeyKind::Rsa { bits: 4096 },
            Self::Ec256 => KeyKind::Ec(Curve::P256),
            Self::Ec384 => KeyKind::Ec(Curve::P384),
            Self::Ec521 => KeyKind::Ec(Curve::P521),
        }
    }

    /// Notation's `keySpec` string (`RSA-2048`, `EC-256`).
    pub fn notation_name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::Ec256 => "EC-256",
            Self::Ec384 => "EC-384",
            Self::Ec521 => "EC-521",
        }
    }

    pub fn from_notation_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.notation_name() == name)
    }

    /// The slug our gateway's `init` gives the policy holding a key of this spec (`rsa-2048`).
    pub fn policy_slug(self) -> String {
        self.notation_name().to_ascii_lowercase()
    }

    /// The hash Notary pairs with this key spec.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::Rsa2048 | Self::Ec256 => HashAlgorithm::Sha256,
            Self::Rsa3072 | Self::Ec384 => HashAlgorithm::Sha384,
            Self::Rsa4096 | Self::Ec521 => HashAlgorithm::Sha512,
        }
    }

    /// Notation's `signingAlgorithm` string (`RSASSA-PSS-SHA-256`, `ECDSA-SHA-256`).
    pub fn notation_signing_algorithm(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSASSA-PSS-SHA-256",
            Self::Rsa3072 => "RSASSA-PSS-SHA-384",
            Self::Rsa4096 => "RSASSA-PSS-SHA-512",
            Self::Ec256 => "ECDSA-SHA-256",
            Self::Ec384 => "ECDSA-SHA-384",
            Self::Ec521 => "ECDSA-SHA-512",
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.notation_name())
    }
}

/// How a digest is turned into a signature, with the output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 over a DigestInfo of the given hash.
    RsaPkcs1,
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    RsaPss,
    /// ECDSA, fixed-length r||s (IEEE P1363).
    EcdsaIeee,
    /// ECDSA, DER `SEQUENCE { r, s }`.
    EcdsaAsn1,
}

impl SignatureScheme {
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RsaPkcs1 | Self::RsaPss)
    }

    pub fn fits(self, kind: KeyKind) -> bool {
        self.is_rsa() == matches!(kind, KeyKind::Rsa { .. })
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RsaPkcs1 => "RSA PKCS#1 v1.5",
            Self::RsaPss => "RSA PSS",
            Self::EcdsaIeee => "ECDSA (r||s)",
            Self::EcdsaAsn1 => "ECDSA (DER)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs_round_trip_and_pair_with_notary_hashes() {
        for spec in KeySpec::ALL {
            assert_eq!(KeySpec::from_notation_name(spec.notation_name()), Some(spec));
            assert_eq!(spec.kind().key_spec(), Some(spec));
        }
        assert_eq!(KeySpec::Rsa3072.hash(), HashAlgorithm::Sha384);
        assert_eq!(KeySpec::Ec521.hash(), HashAlgorithm::Sha512);
        assert_eq!(KeySpec::Ec256.policy_slug(), "ec-256");
    }

    #[test]
    fn signature_lengths() {
        assert_eq!(KeySpec::Ec521.kind().signature_len(), 132);
        assert_eq!(KeySpec::Ec384.kind().signature_len(), 96);
        assert_eq!(KeySpec::Rsa3072.kind().signature_len(), 384);
    }

    #[test]
    fn hash_names() {
        assert_eq!(
            HashAlgorithm::from_signpath_name("sha384"),
            Some(HashAlgorithm::Sha384)
        );
        assert_eq!(
            HashAlgorithm::from_oid(&HashAlgorithm::Sha512.oid()),
            Some(HashAlgorithm::Sha512)
        );
        assert_eq!(HashAlgorithm::from_notation_name("SHA-1"), None);
        assert_eq!(HashAlgorithm::Sha256.digest(b"abc").len(), 32);
    }
}
