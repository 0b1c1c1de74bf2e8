//! The wire types of sigstore's KMS plugin protocol, version `v1` (sigstore/sigstore
//! `pkg/signature/kms/cliplugin/common/interface.go` and `options.go`): what cosign passes as argv[2] and what it
//! reads from stdout.
//!
//! Go's `[]byte` travels as standard base64 with padding; `crypto.Hash` as its number. Fields this plugin does not
//! use are ignored, so a newer cosign that adds options still talks to it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The protocol version this plugin speaks, cosign's argv[1].
pub const PROTOCOL_VERSION: &str = "v1";

/// argv[2]: the options every call carries and the method's own arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginArgs {
    pub init_options: InitOptions,
    pub method_name: String,
    #[serde(default)]
    pub sign_message: Option<SignMessageArgs>,
    #[serde(default)]
    pub verify_signature: Option<VerifySignatureArgs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitOptions {
    #[serde(default)]
    pub protocol_version: String,
    /// What follows `signpath://` in `--key`: `Project/Policy`.
    #[serde(rename = "keyResourceID")]
    pub key_resource_id: String,
    /// The hash cosign loaded the key with (Go's `crypto.Hash`; cosign passes SHA-256).
    #[serde(default)]
    pub hash_func: u32,
    /// When cosign's context ends (its `--timeout`), RFC 3339: cosign kills the plugin then.
    #[serde(default)]
    pub ctx_deadline: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignMessageArgs {
    #[serde(default)]
    pub sign_options: Option<MessageCarrier>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureArgs {
    /// Base64 of the signature.
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub verify_options: Option<MessageCarrier>,
}

/// `SignOptions` and `VerifyOptions`: the message options, and the call's deadline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCarrier {
    #[serde(default)]
    pub rpc_options: RpcOptions,
    #[serde(default)]
    pub message_options: MessageOptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcOptions {
    /// RFC 3339, as Go's `time.Time` writes it.
    #[serde(default)]
    pub ctx_deadline: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOptions {
    /// Base64 of a digest cosign already made; `null` or empty when the message comes on stdin alone.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub hash_func: Option<u32>,
}

impl MessageOptions {
    /// The digest, decoded; `None` when there is none.
    pub fn digest_bytes(&self) -> Result<Option<Vec<u8>>, base64::DecodeError> {
        match self.digest.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => BASE64.decode(text).map(Some),
        }
    }
}

/// What the plugin prints on stdout: an error, or the answer of the method that was called.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginResp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_algorithm: Option<DefaultAlgorithmResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_algorithms: Option<SupportedAlgorithmsResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_message: Option<SignMessageResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_signature: Option<VerifySignatureResp>,
}

impl PluginResp {
    pub fn error(message: String) -> Self {
        Self {
            error_message: Some(message),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultAlgorithmResp {
    pub default_algorithm: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedAlgorithmsResp {
    pub supported_algorithms: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyResp {
    /// Base64 of the PEM text.
    #[serde(rename = "publicKeyPEM")]
    pub public_key_pem: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignMessageResp {
    /// Base64 of the signature.
    pub signature: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifySignatureResp {}

/// Base64 as Go's `encoding/json` writes a `[]byte`.
pub fn bytes(data: &[u8]) -> String {
    BASE64.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_sign_arguments_parse_with_a_null_digest() {
        // As cosign v2.6.1 sends them for `cosign sign --key signpath://demo/ec-256` (the message on stdin).
        let args: PluginArgs = serde_json::from_str(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"demo/ec-256","hashFunc":5,
                "rpcOptions":{"keyVersion":"","remoteVerification":false}},
                "methodName":"signMessage",
                "signMessage":{"signOptions":{"rpcOptions":{"ctxDeadline":"2026-01-01T00:03:00Z","keyVersion":"",
                "remoteVerification":false},"messageOptions":{"digest":null}}}}"#,
        )
        .unwrap();
        assert_eq!(args.init_options.key_resource_id, "demo/ec-256");
        assert_eq!(args.init_options.hash_func, 5);
        let options = args.sign_message.unwrap().sign_options.unwrap();
        assert_eq!(
            options.rpc_options.ctx_deadline.as_deref(),
            Some("2026-01-01T00:03:00Z")
        );
        let options = options.message_options;
        assert_eq!(options.digest_bytes().unwrap(), None);
        assert_eq!(options.hash_func, None);
    }

    #[test]
    fn answers_carry_only_what_was_asked() {
        let signed = PluginResp {
            sign_message: Some(SignMessageResp {
                signature: bytes(b"sig"),
            }),
            ..PluginResp::default()
        };
        assert_eq!(
            serde_json::to_string(&signed).unwrap(),
            r#"{"signMessage":{"signature":"c2ln"}}"#
        );
        assert_eq!(
            serde_json::to_string(&PluginResp::error("no".into())).unwrap(),
            r#"{"errorMessage":"no"}"#
        );
        let verified = PluginResp {
            verify_signature: Some(VerifySignatureResp {}),
            ..PluginResp::default()
        };
        assert_eq!(
            serde_json::to_string(&verified).unwrap(),
            r#"{"verifySignature":{}}"#
        );
    }
}
