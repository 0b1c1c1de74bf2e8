//! The message cosign signs or verifies, as the plugin sees it: a digest cosign made itself, or the message on
//! stdin (`cosign sign-blob` streams a file of any size), hashed here as it arrives. The first bytes are kept for
//! the audit record: cosign's simple-signing payload and attestation envelopes are a few kilobytes.

use std::io::Read;

use sha2::Digest as _;

use common::keys::HashAlgorithm;

use crate::error::PluginError;
use crate::protocol::MessageOptions;

/// How much of the message is kept for [`common::metadata::oci_from_signed_payload`]; a larger message is a blob.
const KEPT_PREFIX: usize = 256 * 1024;

/// Go's `crypto.Hash` numbers (`crypto.SHA256` = 5, ...), as the protocol carries them.
pub fn hash_from_go(number: u32) -> Result<HashAlgorithm, PluginError> {
    match number {
        5 => Ok(HashAlgorithm::Sha256),
        6 => Ok(HashAlgorithm::Sha384),
        7 => Ok(HashAlgorithm::Sha512),
        other => Err(PluginError::UnsupportedHash(other)),
    }
}

/// The digest to sign or verify, and the message when it came whole (for the audit record).
#[derive(Debug)]
pub struct Message {
    pub hash: HashAlgorithm,
    pub digest: Vec<u8>,
    /// The message, when it is at most [`KEPT_PREFIX`] bytes; `None` for a larger one or none at all.
    pub payload: Option<Vec<u8>>,
}

/// Reads the message from `stdin` and settles the digest: cosign's digest when it passed one (checked against the
/// message when a message came too), else the hash of the message. `hash` is the message options' hash, else the
/// one the key was loaded with.
pub fn read(options: &MessageOptions, init_hash: u32, stdin: &mut dyn Read) -> Result<Message, PluginError> {
    let hash = hash_from_go(options.hash_func.unwrap_or(init_hash))?;
    let given = options
        .digest_bytes()
        .map_err(|e| PluginError::Request(format!("messageOptions.digest is not base64: {e}")))?;
    let (digest, length, prefix) = hash_stream(hash, stdin)?;
    let digest = match given {
        Some(given) if given.len() != hash.output_len() => {
            return Err(PluginError::DigestLength {
                hash,
                expected: hash.output_len(),
                actual: given.len(),
            })
        }
        // cosign's crypto.Signer path passes a digest and an empty message; sigstore-go's passes both.
        Some(given) if length > 0 && given != digest => return Err(PluginError::DigestMismatch(hash)),
        Some(given) => given,
        None => digest,
    };
    let payload = (length > 0 && length <= KEPT_PREFIX).then_some(prefix);
    Ok(Message {
        hash,
        digest,
        payload,
    })
}

/// The digest of everything `input` holds, its length, and its first [`KEPT_PREFIX`] bytes.
fn hash_stream(hash: HashAlgorithm, input: &mut dyn Read) -> Result<(Vec<u8>, usize, Vec<u8>), PluginError> {
    enum Hasher {
        Sha256(sha2::Sha256),
        Sha384(sha2::Sha384),
        Sha512(sha2::Sha512),
    }
    let mut hasher = match hash {
        HashAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
        HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        _ => Hasher::Sha256(sha2::Sha256::new()),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut prefix = Vec::new();
    let mut length = 0usize;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PluginError::Stdin(e)),
        };
        let chunk = &buffer[..read];
        match &mut hasher {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::Sha384(h) => h.update(chunk),
            Hasher::Sha512(h) => h.update(chunk),
        }
        let room = KEPT_PREFIX.saturating_sub(prefix.len());
        prefix.extend_from_slice(&chunk[..read.min(room)]);
        length = length.saturating_add(read);
    }
    let digest = match hasher {
        Hasher::Sha256(h) => h.finalize().to_vec(),
        Hasher::Sha384(h) => h.finalize().to_vec(),
        Hasher::Sha512(h) => h.finalize().to_vec(),
    };
    Ok((digest, length, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn options(digest: Option<&[u8]>, hash_func: Option<u32>) -> MessageOptions {
        MessageOptions {
            digest: digest.map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
            hash_func,
        }
    }

    #[test]
    fn a_message_on_stdin_is_hashed_with_the_keys_hash() {
        let message = read(&options(None, None), 6, &mut &b"payload"[..]).unwrap();
        assert_eq!(message.hash, HashAlgorithm::Sha384);
        assert_eq!(message.digest, HashAlgorithm::Sha384.digest(b"payload"));
        assert_eq!(message.payload.as_deref(), Some(&b"payload"[..]));
    }

    #[test]
    fn a_digest_alone_is_signed_as_given_and_one_that_disagrees_with_the_message_is_refused() {
        let digest = HashAlgorithm::Sha256.digest(b"payload");
        let alone = read(&options(Some(&digest), Some(5)), 5, &mut &b""[..]).unwrap();
        assert_eq!((alone.digest, alone.payload), (digest.clone(), None));
        let both = read(&options(Some(&digest), None), 5, &mut &b"payload"[..]).unwrap();
        assert_eq!(both.digest, digest);
        assert!(matches!(
            read(&options(Some(&digest), None), 5, &mut &b"other"[..]),
            Err(PluginError::DigestMismatch(HashAlgorithm::Sha256))
        ));
        assert!(matches!(
            read(&options(Some(&digest[..20]), None), 5, &mut &b""[..]),
            Err(PluginError::DigestLength { actual: 20, .. })
        ));
    }

    #[test]
    fn only_sha2_hashes_are_taken() {
        for number in [0, 3, 4, 8] {
            assert!(matches!(
                read(&options(None, Some(number)), 5, &mut &b"x"[..]),
                Err(PluginError::UnsupportedHash(n)) if n == number
            ));
        }
    }

    #[test]
    fn a_large_message_is_hashed_whole_and_not_kept() {
        let blob = vec![7u8; KEPT_PREFIX + 1];
        let message = read(&options(None, None), 5, &mut blob.as_slice()).unwrap();
        assert_eq!(message.digest, HashAlgorithm::Sha256.digest(&blob));
        assert_eq!(message.payload, None);
    }
}
