//! Rekor v2's upload (`POST /api/v2/log/entries`), as stock cosign and sigstore-go send it: a `CreateEntryRequest`
//! in protobuf JSON, either a `hashedRekordRequestV002` (a digest, its signature and the public key or certificate
//! that verifies it; cosign's blobs) or a `dsseRequestV002` (`dsse.rs`: a DSSE envelope and its verifiers; cosign's
//! images and attestations), checked, and turned into the entry body Rekor v2 logs; and the
//! `TransparencyLogEntry` that answers it, with the inclusion proof and the checkpoint that holds it. What both
//! kinds share (the verifier, the error, the leaf) is `entry_body.rs`.
//!
//! The types are serde types of our own: the `sigstore_protobuf_specs` crate has no Rekor v2 request or entry
//! messages (they live in rekor-tiles' own protos), and the few fields here are simpler to state than to adapt.
//! Only ECDSA P-256 with SHA-256 is taken (what `cosign generate-key-pair` and Fulcio-style keyless keys use);
//! another key type is refused with a reason.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use serde::Deserialize;
use serde_json::json;

use super::entry_body::{base64_field, leaf_body, verifier_key, Verifier};
pub use super::entry_body::{CheckedEntry, RekorError};
use super::LogKey;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateEntryRequest {
    hashed_rekord_request_v002: Option<HashedRekordRequest>,
    dsse_request_v002: Option<super::dsse::DsseRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HashedRekordRequest {
    digest: String,
    signature: Signature,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Signature {
    content: String,
    verifier: Verifier,
}

/// Checks a `CreateEntryRequest` and makes its entry body.
pub fn checked_entry(request: &[u8]) -> Result<CheckedEntry, RekorError> {
    let request: CreateEntryRequest =
        serde_json::from_slice(request).map_err(|e| RekorError::Malformed(e.to_string()))?;
    let hashed = match (request.hashed_rekord_request_v002, request.dsse_request_v002) {
        (Some(hashed), None) => hashed,
        (None, Some(dsse)) => return super::dsse::checked_entry(dsse),
        _ => {
            return Err(RekorError::Malformed(
                "exactly one of hashedRekordRequestV002 and dsseRequestV002 is needed".into(),
            ))
        }
    };
    let digest = base64_field("digest", &hashed.digest)?;
    if digest.len() != 32 {
        return Err(RekorError::Malformed(format!(
            "the digest is {} bytes; a SHA-256 digest is 32",
            digest.len()
        )));
    }
    let signature = base64_field("signature.content", &hashed.signature.content)?;
    let (key, verifier_json) = verifier_key(&hashed.signature.verifier)?;
    let parsed = p256::ecdsa::DerSignature::from_bytes(&signature)
        .map_err(|_| RekorError::Malformed("the signature is not an ASN.1 DER ECDSA signature".into()))?;
    key.verify_prehash(&digest, &parsed)
        .map_err(|_| RekorError::BadSignature)?;
    // serde_json's maps are ordered by key, so this is already RFC 8785's order; every value is ASCII.
    let body = json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": hashed.digest},
            "signature": {"content": hashed.signature.content, "verifier": verifier_json},
        }},
    });
    Ok(CheckedEntry {
        body: leaf_body(&body)?,
        digest,
    })
}

/// The `TransparencyLogEntry` (protobuf JSON, as sigstore-go reads it) of an integrated entry.
pub fn transparency_log_entry(
    key: &LogKey,
    body: &[u8],
    index: u64,
    size: u64,
    root: &[u8; 32],
    proof: &[[u8; 32]],
    checkpoint: &str,
) -> serde_json::Value {
    json!({
        "logIndex": index.to_string(),
        "logId": {"keyId": STANDARD.encode(key.log_id())},
        "kindVersion": {"kind": kind_of(body), "version": "0.0.2"},
        "inclusionProof": {
            "logIndex": index.to_string(),
            "rootHash": STANDARD.encode(root),
            "treeSize": size.to_string(),
            "hashes": proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
            "checkpoint": {"envelope": checkpoint},
        },
        "canonicalizedBody": STANDARD.encode(body),
    })
}

/// The kind an entry body names (`hashedrekord`, `dsse`).
fn kind_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b["kind"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::entry_body::KEY_DETAILS;
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    use p256::pkcs8::EncodePublicKey as _;
    use sha2::Digest as _;

    fn request(digest: &[u8], signature: &[u8], spki: &[u8], details: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"hashedRekordRequestV002": {
            "digest": STANDARD.encode(digest),
            "signature": {"content": STANDARD.encode(signature),
                "verifier": {"publicKey": {"rawBytes": STANDARD.encode(spki)}, "keyDetails": details}}}}))
        .expect("json")
    }

    fn signed() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let secret = p256::ecdsa::SigningKey::from_slice(&[3; 32]).expect("key");
        let digest = sha2::Sha256::digest(b"artifact").to_vec();
        let signature: p256::ecdsa::Signature = secret.sign_prehash(&digest).expect("sign");
        let spki = secret
            .verifying_key()
            .to_public_key_der()
            .expect("spki")
            .into_vec();
        (digest, signature.to_der().as_bytes().to_vec(), spki)
    }

    #[test]
    fn a_signed_digest_becomes_a_canonical_hashedrekord_entry() {
        let (digest, signature, spki) = signed();
        let entry = checked_entry(&request(&digest, &signature, &spki, KEY_DETAILS)).expect("taken");
        let text = String::from_utf8(entry.body).expect("utf-8");
        assert!(text.starts_with(r#"{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":""#), "{text}");
        assert!(
            text.contains(r#""verifier":{"keyDetails":"PKIX_ECDSA_P256_SHA_256","publicKey":{"rawBytes":""#),
            "{text}"
        );
        assert_eq!(entry.digest, digest);
    }

    #[test]
    fn bad_uploads_are_refused_with_their_reason() {
        let (digest, signature, spki) = signed();
        let mut other = digest.clone();
        other[0] ^= 1;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not a Rekor v2 CreateEntryRequest"),
            (br#"{"dsseRequestV002": {}}"#.to_vec(), "missing field `envelope`"),
            (br#"{"somethingElse": 1}"#.to_vec(), "unknown field"),
            (request(&other, &signature, &spki, KEY_DETAILS), "does not verify"),
            (
                request(&digest[..20], &signature, &spki, KEY_DETAILS),
                "a SHA-256 digest is 32",
            ),
            (
                request(&digest, &signature, &spki, "PKIX_ED25519"),
                "PKIX_ECDSA_P256_SHA_256 keys only",
            ),
            (
                request(&digest, b"junk", &spki, KEY_DETAILS),
                "not an ASN.1 DER ECDSA signature",
            ),
            (
                request(&digest, &signature, b"junk", KEY_DETAILS),
                "not an ECDSA P-256 public key",
            ),
        ];
        for (body, reason) in cases {
            let refused = checked_entry(&body).unwrap_err().to_string();
            assert!(refused.contains(reason), "{reason}: {refused}");
        }
    }
}
