//! What Rekor v2's two upload kinds share (`rekor.rs`'s hashedrekord, `dsse.rs`'s DSSE): the error in the
//! client's terms, a verifier (a public key or a certificate) and its ECDSA P-256 key, and the checked entry whose
//! canonical JSON body becomes the log's leaf.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;
use serde_json::json;

/// The one key type taken, as Sigstore's `PublicKeyDetails` names it.
pub const KEY_DETAILS: &str = "PKIX_ECDSA_P256_SHA_256";

/// What is wrong with an upload, in the client's terms.
#[derive(Debug, thiserror::Error)]
pub enum RekorError {
    #[error("the body is not a Rekor v2 CreateEntryRequest: {0}")]
    Malformed(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the signature does not verify with the given key over what it signs")]
    BadSignature,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verifier {
    public_key: Option<RawBytes>,
    x509_certificate: Option<RawBytes>,
    key_details: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBytes {
    raw_bytes: String,
}

/// A checked upload: the entry body to log (canonical JSON, RFC 8785: sorted keys, no white space) and the digest
/// it is of (a DSSE entry's: its payload's SHA-256).
#[derive(Debug, Clone)]
pub struct CheckedEntry {
    pub body: Vec<u8>,
    pub digest: Vec<u8>,
}

pub(super) fn base64_field(name: &str, value: &str) -> Result<Vec<u8>, RekorError> {
    STANDARD
        .decode(value)
        .map_err(|e| RekorError::Malformed(format!("{name} is not base64: {e}")))
}

/// An entry body as the log's leaf: its canonical JSON, within the size a leaf may have.
pub(super) fn leaf_body(body: &serde_json::Value) -> Result<Vec<u8>, RekorError> {
    let body = serde_json::to_vec(body).map_err(|e| RekorError::Malformed(e.to_string()))?;
    // An entry bundle prefixes each leaf with its length as a uint16 (c2sp.org/tlog-tiles).
    if body.len() > usize::from(u16::MAX) {
        return Err(RekorError::Malformed(format!(
            "the entry would be {} bytes; a leaf of this log is at most {}",
            body.len(),
            u16::MAX
        )));
    }
    Ok(body)
}

/// The ECDSA P-256 key of a verifier (its public key, or its certificate's), and the verifier as the entry body
/// states it.
pub(super) fn verifier_key(
    verifier: &Verifier,
) -> Result<(p256::ecdsa::VerifyingKey, serde_json::Value), RekorError> {
    if verifier.key_details != KEY_DETAILS {
        return Err(RekorError::Unsupported(format!(
            "keyDetails {}: this log takes {KEY_DETAILS} keys only",
            verifier.key_details
        )));
    }
    let (spki, verifier_json) = match (&verifier.public_key, &verifier.x509_certificate) {
        (Some(key), None) => {
            let der = base64_field("publicKey.rawBytes", &key.raw_bytes)?;
            (
                der,
                json!({"publicKey": {"rawBytes": key.raw_bytes}, "keyDetails": KEY_DETAILS}),
            )
        }
        (None, Some(certificate)) => {
            let der = base64_field("x509Certificate.rawBytes", &certificate.raw_bytes)?;
            (
                spki_of_certificate(&der)?,
                json!({"x509Certificate": {"rawBytes": certificate.raw_bytes}, "keyDetails": KEY_DETAILS}),
            )
        }
        _ => {
            return Err(RekorError::Malformed(
                "the verifier needs exactly one of publicKey and x509Certificate".into(),
            ))
        }
    };
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
        .map_err(|e| RekorError::Unsupported(format!("the key is not an ECDSA P-256 public key: {e}")))?;
    Ok((key, verifier_json))
}

fn spki_of_certificate(der: &[u8]) -> Result<Vec<u8>, RekorError> {
    use der::{Decode as _, Encode as _};
    let certificate = x509_cert::Certificate::from_der(der)
        .map_err(|e| RekorError::Malformed(format!("x509Certificate is not a DER certificate: {e}")))?;
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| RekorError::Malformed(e.to_string()))
}
