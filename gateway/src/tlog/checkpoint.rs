//! Checkpoints: the tree's size and root as a c2sp.org/tlog-checkpoint, signed as a c2sp.org/signed-note by the
//! log's key, ECDSA P-256 in the HSM. The note's key name is the log's origin (the checkpoint's first line); its
//! key ID is what Sigstore's clients expect of an ECDSA log key (as Rekor v2 signs): the first four bytes of the
//! SHA-256 of the key's SubjectPublicKeyInfo, whose whole SHA-256 is the log's ID in a trusted root.

use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest, Sha256};
use signed_note::{Note, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use super::TlogError;

/// The log's public key and the name its checkpoints carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub origin: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

impl LogKey {
    /// The log ID: the SHA-256 of the public key (Sigstore's `logId.keyId` of the log).
    pub fn log_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki).into()
    }

    /// The signed-note key ID: the log ID's first four bytes.
    pub fn key_id(&self) -> u32 {
        let id = self.log_id();
        u32::from_be_bytes([id[0], id[1], id[2], id[3]])
    }

    /// Checks a checkpoint note's signature by this key and its origin; the checkpoint it carries.
    pub fn verify(&self, note: &[u8]) -> Result<Checkpoint, TlogError> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki)
            .map_err(|e| TlogError::Checkpoint(format!("the log key is not ECDSA P-256: {e}")))?;
        let parsed =
            Note::from_bytes(note).map_err(|e| TlogError::Checkpoint(format!("not a signed note: {e}")))?;
        let verifiers = VerifierList::new(vec![Box::new(NoteVerifier {
            name: self.origin.clone(),
            id: self.key_id(),
            key,
        })]);
        parsed.verify(&verifiers).map_err(|e| {
            TlogError::Checkpoint(format!(
                "the checkpoint is not signed by the log key of {}: {e}",
                self.origin
            ))
        })?;
        let checkpoint = Checkpoint::from_bytes(parsed.text())
            .map_err(|e| TlogError::Checkpoint(format!("the signed note is no checkpoint: {e}")))?;
        if checkpoint.origin() != self.origin {
            return Err(TlogError::Checkpoint(format!(
                "the checkpoint is of log {}, not {}",
                checkpoint.origin(),
                self.origin
            )));
        }
        Ok(checkpoint)
    }
}

/// The checkpoint text of a tree (unsigned).
pub fn text(origin: &str, size: u64, root: Hash) -> Result<Vec<u8>, TlogError> {
    Checkpoint::new(origin, size, root, "")
        .map(|c| c.to_bytes())
        .map_err(|e| TlogError::Checkpoint(format!("origin {origin:?}: {e}")))
}

/// Signs a message with the log's key: the ASN.1 DER ECDSA signature (SHA-256), or why not.
pub type Sign<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// Signs a checkpoint text as a note; `sign` makes the ASN.1 DER ECDSA signature (SHA-256) of the text.
pub fn sign(key: &LogKey, text: &[u8], sign: &Sign<'_>) -> Result<String, TlogError> {
    let signer = NoteSigner { key, sign };
    let mut note = Note::new(text, &[]).map_err(|e| TlogError::Checkpoint(e.to_string()))?;
    note.add_sigs(&[&signer])
        .map_err(|e| TlogError::Checkpoint(format!("cannot sign the checkpoint: {e}")))?;
    String::from_utf8(note.to_bytes()).map_err(|e| TlogError::Checkpoint(e.to_string()))
}

struct NoteSigner<'a> {
    key: &'a LogKey,
    sign: &'a Sign<'a>,
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        &self.key.origin
    }

    fn key_id(&self) -> u32 {
        self.key.key_id()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        (self.sign)(msg).map_err(signature::Error::from_source)
    }
}

struct NoteVerifier {
    name: String,
    id: u32,
    key: p256::ecdsa::VerifyingKey,
}

impl signed_note::Verifier for NoteVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        p256::ecdsa::DerSignature::from_bytes(sig)
            .and_then(|sig| self.key.verify(msg, &sig))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    fn key(seed: u8) -> (p256::ecdsa::SigningKey, LogKey) {
        let secret = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("key");
        let spki = secret
            .verifying_key()
            .to_public_key_der()
            .expect("spki")
            .into_vec();
        (
            secret,
            LogKey {
                origin: "gateway.example/log".into(),
                spki,
            },
        )
    }

    fn signed(secret: &p256::ecdsa::SigningKey, log: &LogKey, size: u64) -> String {
        let text = text(&log.origin, size, tlog_tiles::EMPTY_HASH).expect("text");
        sign(log, &text, &|m| {
            let sig: p256::ecdsa::DerSignature = secret.sign(m);
            Ok(sig.as_bytes().to_vec())
        })
        .expect("sign")
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_its_key_only() {
        let (secret, log) = key(1);
        let note = signed(&secret, &log, 0);
        assert!(note.starts_with(
            "gateway.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— gateway.example/log "
        ));
        let checkpoint = log.verify(note.as_bytes()).expect("verifies");
        assert_eq!(checkpoint.size(), 0);

        let (_, other) = key(2);
        let refused = other.verify(note.as_bytes()).unwrap_err();
        assert!(
            refused.to_string().contains("not signed by the log key"),
            "{refused}"
        );

        let tampered = note.replacen("\n0\n", "\n1\n", 1);
        assert!(log.verify(tampered.as_bytes()).is_err());
    }
}
