//! SignPath's fast signing of hashes through the file-based route, as its older clients (jsign, the PowerShell
//! module) use it: `IsFastSigningRequest=true` with a `payload.json` artifact naming the algorithm and the
//! digest. The typed request goes through `SignHash`'s own steps (`sign_request`: authorization, origin,
//! approval, idempotency, audit) and is answered at once with the payload itself plus `Signature`, as SignPath
//! documents it: "the response artifact has the same format and values as the request artifact with the
//! additional property 'Signature'".

use common::protocol::{
    EcdsaOptions, EcdsaSignatureFormat, HashSigningData, Metadata, PaddingMode, RsaOptions, SignHashRequest,
    SignatureAlgorithm,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::artifacts::ArtifactSubmission;
use super::outcome::Answer;
use super::refusal::{refuse, Reason, Refusal};
use super::sign_hash::Signing;
use super::Core;
use crate::store::Record;

/// A `payload.json` is a few hundred bytes; anything much larger is not one.
const MAX_PAYLOAD: u64 = 64 * 1024;

/// SignPath's hash-signing artifact (`payload.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Payload {
    signature_algorithm: String,
    #[serde(default)]
    rsa_hash_algorithm: Option<String>,
    #[serde(default)]
    ecdsa_signature_format: Option<String>,
    base64_encoded_hash: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

impl Core {
    /// Signs the hash of a `payload.json` artifact and answers the payload with its `Signature` (or, when the
    /// policy needs approval, where the request waits, as `SignHash` does).
    pub(super) fn fast_sign(
        &self,
        token_id: &str,
        submission: &ArtifactSubmission,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let invalid = |detail: String| refuse(Reason::InvalidArtifact, detail);
        if submission.size > MAX_PAYLOAD {
            return Err(invalid(format!(
                "a fast signing request's artifact is a payload.json of at most {MAX_PAYLOAD} bytes; this one has {}",
                submission.size
            )));
        }
        let path = self.state.artifacts.unsigned(&record.request_id);
        let text = std::fs::read_to_string(&path)
            .map_err(|_| invalid("the fast signing artifact is not UTF-8 JSON (payload.json)".into()))?;
        let payload: Payload = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("the fast signing artifact is not a payload.json: {e}")))?;
        let (signature_algorithm, padding) = match payload.signature_algorithm.as_str() {
            "RsaPkcs1" => (SignatureAlgorithm::Rsa, Some(PaddingMode::Pkcs1)),
            "RsaPss" => (SignatureAlgorithm::Rsa, Some(PaddingMode::Pss)),
            "Ecdsa" => (SignatureAlgorithm::Ecdsa, None),
            other => {
                return Err(refuse(
                    Reason::UnsupportedAlgorithm,
                    format!("SignatureAlgorithm {other:?} is not RsaPkcs1, RsaPss or Ecdsa"),
                ))
            }
        };
        let ecdsa_options = match payload.ecdsa_signature_format.as_deref() {
            None | Some("Ieee") => None,
            Some("Asn1") => Some(EcdsaOptions {
                signature_format: Some(EcdsaSignatureFormat::Asn1),
            }),
            Some(other) => {
                return Err(refuse(
                    Reason::UnsupportedAlgorithm,
                    format!("EcdsaSignatureFormat {other:?} is not Ieee or Asn1"),
                ))
            }
        };
        let request = SignHashRequest {
            project_slug: submission.project.clone(),
            signing_policy_slug: submission.policy.clone(),
            artifact_configuration_slug: submission.artifact_configuration.clone(),
            description: submission.description.clone(),
            hash_signing_data: HashSigningData {
                signature_algorithm,
                rsa_options: padding.map(|padding_mode| RsaOptions {
                    hash_algorithm_name: None,
                    hash_algorithm_oid: payload.rsa_hash_algorithm.clone(),
                    padding_mode: Some(padding_mode),
                }),
                ecdsa_options: ecdsa_options.filter(|_| signature_algorithm == SignatureAlgorithm::Ecdsa),
                hash: payload.base64_encoded_hash.clone(),
                metadata: submission.release_group.as_ref().map(|group| Metadata {
                    release_group: Some(group.clone()),
                    ..Metadata::default()
                }),
            },
        };
        let body_hash = request_hash(&request)?;
        let signing = self.sign_request(token_id, &request, body_hash, origin_token, record)?;
        if let Some(metadata) = &payload.metadata {
            record.metadata = Some(metadata.to_string());
        }
        match signing {
            // Held for approval (SignHash's waiting document), or the stored answer to an earlier request with
            // this Idempotency-Key (the signed payload it was answered with).
            Signing::Answered(answer) => Ok(answer),
            Signing::Signed(signed) => {
                let body = with_signature(&text, signed.signature()?)
                    .ok_or_else(|| invalid("the fast signing artifact is not a JSON object".into()))?;
                Ok(signed.answer(body))
            }
        }
    }
}

/// The hex SHA-256 of the `SignHash` request's JSON, as a client sending the same request to the `SignHash` route
/// would have it hashed (the key idempotency compares), written straight into the hash: no document is built.
fn request_hash(request: &SignHashRequest) -> Result<String, Refusal> {
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, request).map_err(|e| refuse(Reason::Internal, e.to_string()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The payload as it was sent, byte for byte, with `"Signature"` added as its last property.
fn with_signature(payload: &str, signature: &str) -> Option<String> {
    let body = payload.trim_end().strip_suffix('}')?.trim_end();
    let separator = if body.trim_start().ends_with('{') { "" } else { "," };
    Some(format!("{body}{separator}\"Signature\":\"{signature}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::with_signature;

    #[test]
    fn the_answer_is_the_payload_as_sent_with_its_signature_last() {
        let payload =
            "{\n    \"SignatureAlgorithm\": \"RsaPkcs1\",\n    \"Base64EncodedHash\": \"AA==\"\n}\n";
        assert_eq!(
            with_signature(payload, "c2ln").as_deref(),
            Some("{\n    \"SignatureAlgorithm\": \"RsaPkcs1\",\n    \"Base64EncodedHash\": \"AA==\",\"Signature\":\"c2ln\"}")
        );
        assert_eq!(with_signature("[1]", "c2ln"), None);
    }
}
