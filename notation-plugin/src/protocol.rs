//! The Notation plugin contract v1.0 as JSON types: what notation writes to our stdin and what we answer.
//!
//! Requests keep every field optional so that a missing field becomes our own `VALIDATION_ERROR` naming the field,
//! not a serde message; unknown fields are ignored, as the contract demands of plugins. Responses serialize their
//! fields in the contract's order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only contract version notation v1 speaks.
pub const CONTRACT_VERSION: &str = "1.0";

/// The one capability we implement: notation builds the envelope, we sign its bytes.
pub const CAPABILITY_RAW_SIGNER: &str = "SIGNATURE_GENERATOR.RAW";

/// With pluginConfig `envelope=true`: the plugin builds the envelope (`envelope.rs`).
pub const CAPABILITY_ENVELOPE_GENERATOR: &str = "SIGNATURE_GENERATOR.ENVELOPE";

/// `verify-signature`'s check of request revocations (`verify.rs`).
pub const CAPABILITY_REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";

/// `verify-signature`'s match of the signing certificate against the trust policy's `trustedIdentities`
/// (`identity.rs`); notation then skips its own for these envelopes.
pub const CAPABILITY_TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";

/// The pluginConfig key that asks for envelope generation.
pub const ENVELOPE_CONFIG: &str = "envelope";

/// Whether pluginConfig asks for envelope generation (`envelope=true`).
pub fn envelope_requested(plugin_config: Option<&BTreeMap<String, String>>) -> bool {
    plugin_config
        .and_then(|c| c.iter().find(|(k, _)| k.eq_ignore_ascii_case(ENVELOPE_CONFIG)))
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
}

/// `get-plugin-metadata` request (notation sends `{}` from `plugin list`/`install`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataRequest {
    /// Read only for `envelope=true`, which trades the RAW capability for ENVELOPE.
    #[serde(default)]
    pub plugin_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse {
    pub name: &'static str,
    pub description: &'static str,
    pub version: &'static str,
    pub url: &'static str,
    pub supported_contract_versions: Vec<&'static str>,
    pub capabilities: Vec<&'static str>,
}

/// `describe-key` request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyRequest {
    #[serde(default)]
    pub contract_version: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub plugin_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyResponse {
    pub key_id: String,
    pub key_spec: &'static str,
}

/// `generate-signature` request. `payload` is the whole to-be-signed byte string (the JWS signing input or the
/// COSE Sig_structure), standard base64.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureRequest {
    #[serde(default)]
    pub contract_version: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub key_spec: Option<String>,
    #[serde(default)]
    pub hash_algorithm: Option<String>,
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub plugin_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureResponse {
    pub key_id: String,
    /// Standard base64 of the raw signature (RSASSA-PSS, or ECDSA r||s).
    pub signature: String,
    pub signing_algorithm: &'static str,
    /// Standard base64 DER certificates, leaf first, ending at the self-signed root.
    pub certificate_chain: Vec<String>,
}

/// The error object written to stderr, with exit code 1.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse<'a> {
    pub error_code: &'a str,
    pub error_message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_request_fields_are_ignored() {
        let request: DescribeKeyRequest =
            serde_json::from_str(r#"{"contractVersion":"1.0","keyId":"a/b","future":{"x":1}}"#).unwrap();
        assert_eq!(request.key_id.as_deref(), Some("a/b"));
        assert!(request.plugin_config.is_none());
    }

    #[test]
    fn responses_use_the_contract_names_in_order() {
        let response = GenerateSignatureResponse {
            key_id: "a/b".into(),
            signature: "c2ln".into(),
            signing_algorithm: "ECDSA-SHA-256",
            certificate_chain: vec!["bGVhZg==".into()],
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"keyId":"a/b","signature":"c2ln","signingAlgorithm":"ECDSA-SHA-256","certificateChain":["bGVhZg=="]}"#
        );
        let error = ErrorResponse {
            error_code: "ERROR",
            error_message: "m",
        };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"errorCode":"ERROR","errorMessage":"m"}"#
        );
    }
}
