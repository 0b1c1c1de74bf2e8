//! The values of gateway.toml that are one of a set or have a fixed form, parsed into types when the file is read:
//! a wrong one is refused with its line and table, like an unknown key, and nothing after the parse handles a
//! string that could still be wrong. The rules between values (an approver a policy names exists, ...) are
//! `validate.rs`'s.

use std::fmt;

use common::keys::HashAlgorithm;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use signpath_oci::notary::SignatureFormat;

/// `notary`: the Notary Project signature envelope an artifact configuration makes, or none. Read in any case
/// (`JWS` is `jws`), as before it was a type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotaryEnvelope {
    #[default]
    Jws,
    Cose,
    None,
}

impl NotaryEnvelope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Jws => "jws",
            Self::Cose => "cose",
            Self::None => "none",
        }
    }

    /// The signature format this envelope is made in; `None` for `notary = "none"`.
    pub fn format(self) -> Option<SignatureFormat> {
        match self {
            Self::Jws => Some(SignatureFormat::Jws),
            Self::Cose => Some(SignatureFormat::Cose),
            Self::None => None,
        }
    }
}

impl fmt::Display for NotaryEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for NotaryEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for NotaryEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        [Self::Jws, Self::Cose, Self::None]
            .into_iter()
            .find(|envelope| envelope.name().eq_ignore_ascii_case(&text))
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "notary = {text:?}: the Notary Project envelope is \"jws\", \"cose\" or \"none\""
                ))
            })
    }
}

/// `hash_algorithms`: SignPath's names (`Sha256`, any case) read as [`HashAlgorithm`]s, written as SignPath spells
/// them. Used as `#[serde(with = "hash_algorithm_names")]`.
pub mod hash_algorithm_names {
    use super::*;

    pub fn serialize<S: Serializer>(algorithms: &[HashAlgorithm], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(algorithms.iter().map(|h| h.signpath_name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<HashAlgorithm>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|name| {
                HashAlgorithm::from_signpath_name(name).ok_or_else(|| {
                    D::Error::custom(format!(
                        "hash_algorithms: {name:?} is not Sha256, Sha384, Sha512 or Sha1"
                    ))
                })
            })
            .collect()
    }
}

/// The `sha256` of a token or an approver's token: the SHA-256 of the token's value, 64 hex digits in the file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenSha256(pub [u8; 32]);

impl fmt::Display for TokenSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSha256({self})")
    }
}

impl Serialize for TokenSha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TokenSha256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&text, &mut hash).map_err(|_| {
            D::Error::custom(
                "sha256 is not 64 hex digits: it holds the SHA-256 of the token (`token add` and `approver add` \
                 write it)",
            )
        })?;
        Ok(Self(hash))
    }
}
