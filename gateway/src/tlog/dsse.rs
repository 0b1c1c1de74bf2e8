//! Rekor v2's DSSE upload (`dsseRequestV002`), as cosign sends it for an image or an attestation signed with
//! `--new-bundle-format`: a DSSE envelope (its payload, payload type and signatures) and the verifiers (public keys
//! or certificates) that verify them. Every signature of the envelope must verify, over DSSE's pre-authentication
//! encoding, with one of the verifiers; the entry body is Rekor v2's `dsseV002`: the payload's SHA-256 and each
//! signature with its verifier, in the order of their raw bytes (as rekor-tiles canonicalizes it, so a client that
//! compares its envelope with the logged body finds the same entry).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::entry_body::{base64_field, leaf_body, verifier_key, CheckedEntry, RekorError, Verifier};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DsseRequest {
    envelope: Envelope,
    verifiers: Vec<Verifier>,
}

/// `io.intoto.Envelope` in protobuf JSON: bytes as base64.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvelopeSignature {
    sig: String,
    #[serde(default)]
    #[allow(dead_code)] // read so that a client's key id is accepted; the verifiers, not it, decide
    keyid: String,
}

/// DSSE's pre-authentication encoding: what each signature of the envelope signs.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// Checks a DSSE upload and makes its entry body; the digest is the payload's SHA-256.
pub fn checked_entry(request: DsseRequest) -> Result<CheckedEntry, RekorError> {
    let payload = base64_field("envelope.payload", &request.envelope.payload)?;
    if request.envelope.signatures.is_empty() {
        return Err(RekorError::Malformed("the envelope has no signature".into()));
    }
    if request.verifiers.is_empty() {
        return Err(RekorError::Malformed("the request names no verifier".into()));
    }
    let verifiers = request
        .verifiers
        .iter()
        .map(verifier_key)
        .collect::<Result<Vec<_>, _>>()?;
    let signed = pae(&request.envelope.payload_type, &payload);
    let mut signatures = Vec::new();
    for signature in &request.envelope.signatures {
        let raw = base64_field("envelope.signatures.sig", &signature.sig)?;
        let parsed = p256::ecdsa::DerSignature::from_bytes(&raw)
            .map_err(|_| RekorError::Malformed("a signature is not an ASN.1 DER ECDSA signature".into()))?;
        let (_, verifier) = verifiers
            .iter()
            .find(|(key, _)| key.verify(&signed, &parsed).is_ok())
            .ok_or(RekorError::BadSignature)?;
        signatures.push((raw, verifier.clone()));
    }
    signatures.sort_by(|a, b| a.0.cmp(&b.0));
    let digest = Sha256::digest(&payload).to_vec();
    // serde_json's maps are ordered by key, so this is already RFC 8785's order; every value is ASCII.
    let body = json!({
        "apiVersion": "0.0.2",
        "kind": "dsse",
        "spec": {"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256", "digest": STANDARD.encode(&digest)},
            "signatures": signatures
                .iter()
                .map(|(raw, verifier)| json!({"content": STANDARD.encode(raw), "verifier": verifier}))
                .collect::<Vec<_>>(),
        }},
    });
    Ok(CheckedEntry {
        body: leaf_body(&body)?,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::super::entry_body::KEY_DETAILS;
    use super::*;

    fn upload(request: &[u8]) -> Result<CheckedEntry, RekorError> {
        let request: DsseRequest =
            serde_json::from_slice(request).map_err(|e| RekorError::Malformed(e.to_string()))?;
        checked_entry(request)
    }
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

    fn request(payload: &[u8], signatures: &[Vec<u8>], spki: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "envelope": {
                "payload": STANDARD.encode(payload),
                "payloadType": PAYLOAD_TYPE,
                "signatures": signatures.iter().map(|s| json!({"sig": STANDARD.encode(s), "keyid": ""})).collect::<Vec<_>>(),
            },
            "verifiers": [{"publicKey": {"rawBytes": STANDARD.encode(spki)}, "keyDetails": KEY_DETAILS}],
        }))
        .expect("json")
    }

    fn key() -> (p256::ecdsa::SigningKey, Vec<u8>) {
        let secret = p256::ecdsa::SigningKey::from_slice(&[5; 32]).expect("key");
        let spki = secret
            .verifying_key()
            .to_public_key_der()
            .expect("spki")
            .into_vec();
        (secret, spki)
    }

    fn sign(secret: &p256::ecdsa::SigningKey, payload: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = secret.sign(&pae(PAYLOAD_TYPE, payload));
        signature.to_der().as_bytes().to_vec()
    }

    #[test]
    fn the_pre_authentication_encoding_is_dsses() {
        // The example of the DSSE specification (protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_becomes_a_canonical_dsse_entry_with_its_signatures_in_byte_order() {
        let (secret, spki) = key();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let mut first = sign(&secret, payload);
        let mut second = sign(&secret, payload);
        if first > second {
            std::mem::swap(&mut first, &mut second);
        }
        let entry = upload(&request(payload, &[second.clone(), first.clone()], &spki)).expect("taken");
        let body: serde_json::Value = serde_json::from_slice(&entry.body).expect("json");
        assert_eq!(body["kind"], "dsse");
        assert_eq!(body["apiVersion"], "0.0.2");
        let spec = &body["spec"]["dsseV002"];
        assert_eq!(
            spec["payloadHash"]["digest"],
            STANDARD.encode(Sha256::digest(payload))
        );
        assert_eq!(spec["signatures"][0]["content"], STANDARD.encode(&first));
        assert_eq!(spec["signatures"][1]["content"], STANDARD.encode(&second));
        assert_eq!(spec["signatures"][0]["verifier"]["keyDetails"], KEY_DETAILS);
        assert_eq!(entry.digest, Sha256::digest(payload).to_vec());
        let text = String::from_utf8(entry.body).expect("utf-8");
        assert!(
            text.starts_with(r#"{"apiVersion":"0.0.2","kind":"dsse","spec":{"dsseV002":{"payloadHash":"#),
            "{text}"
        );
    }

    #[test]
    fn an_envelope_a_verifier_does_not_verify_is_refused() {
        let (secret, spki) = key();
        let payload = b"payload";
        let signature = sign(&secret, payload);
        let refused = |body: Vec<u8>| upload(&body).unwrap_err().to_string();
        assert!(refused(request(
            b"another payload",
            std::slice::from_ref(&signature),
            &spki
        ))
        .contains("does not verify"));
        assert!(refused(request(payload, &[], &spki)).contains("no signature"));
        assert!(refused(request(payload, &[b"junk".to_vec()], &spki)).contains("not an ASN.1 DER"));
        let other = p256::ecdsa::SigningKey::from_slice(&[6; 32]).expect("key");
        let other_signature = sign(&other, payload);
        assert!(refused(request(payload, &[signature, other_signature], &spki)).contains("does not verify"));
    }
}
