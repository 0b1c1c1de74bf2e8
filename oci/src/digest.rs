//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and hashing while a blob streams from one place to another,
//! so that no blob is ever held in memory whole.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

const COPY_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// Text that is not a digest this crate supports. It lives here, below [`crate::error::Error`] (which carries it
/// and names digests in its variants), so that digests need nothing from the crate's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a digest this tool supports (sha256:<64 hex> or sha512:<128 hex>)")]
pub struct InvalidDigest(pub String);

/// A validated digest; its text form is what descriptors and blob paths use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// Parses the two path components under `blobs/` (`sha256`, `<hex>`).
    pub fn from_path_parts(algorithm: &str, hex: &str) -> Result<Self, InvalidDigest> {
        format!("{algorithm}:{hex}").parse()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The raw digest bytes.
    pub fn bytes(&self) -> Vec<u8> {
        // The hex was validated on construction.
        hex::decode(&self.hex).unwrap_or_default()
    }

    /// Hashes everything `reader` yields into `writer`; returns the bytes copied and their digest.
    pub fn copy(
        algorithm: Algorithm,
        mut reader: impl Read,
        mut writer: impl Write,
    ) -> std::io::Result<(u64, Digest)> {
        let mut hasher = Hasher::new(algorithm);
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buffer[..n]);
            writer.write_all(&buffer[..n])?;
            total += n as u64;
        }
        Ok((total, hasher.finish()))
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(s: &str) -> Result<Self, InvalidDigest> {
        let invalid = || InvalidDigest(s.to_owned());
        let (algorithm, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(invalid()),
        };
        let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hex.len() != algorithm.hex_len() || !hex.chars().all(lower_hex) {
            return Err(invalid());
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Self::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_text_is_validated() {
        let d = Digest::sha256(b"{}");
        assert_eq!(
            d.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d));
        for bad in [
            "sha256:abc",
            "md5:00",
            "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A",
            "x",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_hashes_what_it_writes() {
        let mut out = Vec::new();
        let (n, d) = Digest::copy(Algorithm::Sha256, &b"{}"[..], &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((n, out.as_slice(), d), (2, &b"{}"[..], Digest::sha256(b"{}")));
    }
}
