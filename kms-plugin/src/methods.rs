//! One method call of the KMS plugin protocol, from its arguments to its answer, over the clients' shared
//! configuration (`SIGNPATH_*`, `SIGNPATH_CONFIG_FILE`) and gateway client (retries, idempotency, waiting for
//! approval). Every signature is verified with the policy's public key before it is returned.
//!
//! cosign verifies what it gets the way its other KMS providers' signatures are verified: ECDSA as ASN.1 DER, RSA
//! as PKCS#1 v1.5 with the hash (Go's `signature.LoadVerifier` for an `*rsa.PublicKey`), so those are the schemes
//! asked of the gateway.

use std::io::Read;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;
use common::keys::{KeyKind, SignatureScheme};
use common::protocol::Metadata;
use common::remote_key::{KeyId, RemoteKey};

use crate::error::PluginError;
use crate::message::{self, Message};
use crate::protocol::{
    bytes, DefaultAlgorithmResp, MessageCarrier, PluginArgs, PluginResp, PublicKeyResp, SignMessageResp,
    SupportedAlgorithmsResp, VerifySignatureResp,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long before cosign's deadline the plugin stops waiting for an approval, to answer before it is killed.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// The key specs signing policies hold, in sigstore's algorithm names (`pkg/signature/algorithm_registry.go`).
const ALGORITHMS: [&str; 6] = [
    "ecdsa-sha2-256-nistp256",
    "ecdsa-sha2-384-nistp384",
    "ecdsa-sha2-512-nistp521",
    "rsa-sign-pkcs1-2048-sha256",
    "rsa-sign-pkcs1-3072-sha256",
    "rsa-sign-pkcs1-4096-sha256",
];

/// Runs the method `args` names; `stdin` is read only by the methods that take a message.
pub fn call(args: PluginArgs, stdin: &mut dyn Read) -> Result<PluginResp, PluginError> {
    let reference = args.init_options.key_resource_id.clone();
    let init_hash = args.init_options.hash_func;
    let init_deadline = args.init_options.ctx_deadline.clone();
    let answer = match args.method_name.as_str() {
        "defaultAlgorithm" => PluginResp {
            default_algorithm: Some(DefaultAlgorithmResp {
                default_algorithm: ALGORITHMS[0].to_owned(),
            }),
            ..PluginResp::default()
        },
        "supportedAlgorithms" => PluginResp {
            supported_algorithms: Some(SupportedAlgorithmsResp {
                supported_algorithms: ALGORITHMS.map(str::to_owned).to_vec(),
            }),
            ..PluginResp::default()
        },
        "createKey" => return Err(PluginError::CreateKey(reference)),
        "publicKey" => {
            let policy = Policy::connect(&reference, None)?;
            let key = policy.fetch_key()?;
            let pem = key.certificate.public_key_pem().map_err(|source| {
                policy.gateway_error(common::Error::Certificate {
                    key_id: key.key_id(),
                    source,
                })
            })?;
            PluginResp {
                public_key: Some(PublicKeyResp {
                    public_key_pem: bytes(pem.as_bytes()),
                }),
                ..PluginResp::default()
            }
        }
        "signMessage" => {
            let options = args.sign_message.and_then(|a| a.sign_options).unwrap_or_default();
            let message = read_message(&options, init_hash, stdin)?;
            let deadline = options.rpc_options.ctx_deadline.clone().or(init_deadline);
            let policy = Policy::connect(&reference, deadline.as_deref())?;
            let signature = policy.sign(&message)?;
            PluginResp {
                sign_message: Some(SignMessageResp {
                    signature: bytes(&signature),
                }),
                ..PluginResp::default()
            }
        }
        "verifySignature" => {
            let arguments = args.verify_signature.unwrap_or_default();
            let signature = BASE64
                .decode(arguments.signature.as_deref().unwrap_or_default().trim())
                .map_err(|e| PluginError::Request(format!("verifySignature.signature is not base64: {e}")))?;
            let options = arguments.verify_options.unwrap_or_default();
            let message = read_message(&options, init_hash, stdin)?;
            let policy = Policy::connect(&reference, None)?;
            policy.verify(&message, &signature)?;
            PluginResp {
                verify_signature: Some(VerifySignatureResp {}),
                ..PluginResp::default()
            }
        }
        other => return Err(PluginError::UnknownMethod(other.to_owned())),
    };
    Ok(answer)
}

fn read_message(
    options: &MessageCarrier,
    init_hash: u32,
    stdin: &mut dyn Read,
) -> Result<Message, PluginError> {
    message::read(&options.message_options, init_hash, stdin)
}

/// The signing policy `--key signpath://Project/Policy` names, with the configuration and client to reach it.
struct Policy {
    key_id: KeyId,
    config: Config,
    client: GatewayClient,
    /// The approval wait ends at cosign's deadline rather than at ApprovalWaitTimeoutInSeconds.
    wait_cut_by_cosign: bool,
}

impl Policy {
    /// `deadline`: when cosign kills the plugin (RFC 3339), for a call that may wait for an approval.
    fn connect(reference: &str, deadline: Option<&str>) -> Result<Self, PluginError> {
        let key_id =
            KeyId::parse(reference).ok_or_else(|| PluginError::KeyReference(reference.to_owned()))?;
        let mut config = Config::from_environment()?;
        common::logging::init(&config, "CosignKms", true);
        let cosign_limit = deadline.and_then(|d| time_left(d, time::OffsetDateTime::now_utc()));
        let wait_cut_by_cosign = cosign_limit.is_some_and(|limit| limit < config.approval_wait_timeout);
        if let Some(limit) = cosign_limit.filter(|_| wait_cut_by_cosign) {
            config.approval_wait_timeout = limit;
        }
        let client = GatewayClient::new(&config, ClientOptions::new("CosignKmsPlugin", VERSION)).map_err(
            |source| PluginError::Gateway {
                key: key_id.to_string(),
                source,
            },
        )?;
        Ok(Self {
            key_id,
            config,
            client,
            wait_cut_by_cosign,
        })
    }

    fn gateway_error(&self, source: common::Error) -> PluginError {
        PluginError::Gateway {
            key: self.key_id.to_string(),
            source,
        }
    }

    fn fetch_key(&self) -> Result<RemoteKey, PluginError> {
        self.client
            .fetch_key(
                &self.key_id.project,
                &self.key_id.policy,
                self.config.certificate_chain_file.as_deref(),
            )
            .map_err(|e| self.gateway_error(e))
    }

    /// Asks the gateway to sign the digest; the signature comes back verified with the policy's public key.
    fn sign(&self, message: &Message) -> Result<Vec<u8>, PluginError> {
        let key = self.fetch_key()?;
        let scheme = scheme_for(key.kind());
        // The image cosign names in its payload; else what the pipeline set, as for the PKCS#11 module.
        let oci = message
            .payload
            .as_deref()
            .and_then(common::metadata::oci_from_signed_payload)
            .map(|mut oci| {
                oci.tag = common::metadata::oci_from_environment().and_then(|env| env.tag);
                oci
            })
            .or_else(common::metadata::oci_from_environment);
        let metadata = Metadata {
            source_process: Some(common::metadata::current_source_process()),
            oci,
            // The client adds the release group (ReleaseGroup) to every SignHash.
            release_group: None,
        };
        tracing::info!(key_id = %self.key_id, %scheme, hash = %message.hash, "signing");
        key.sign_digest(
            &self.client,
            scheme,
            message.hash,
            &message.digest,
            Some(metadata),
        )
        .map_err(|source| match source {
            common::Error::ApprovalTimeout { .. } if self.wait_cut_by_cosign => {
                PluginError::ApprovalPastCosignTimeout {
                    key: self.key_id.to_string(),
                    source,
                }
            }
            source => self.gateway_error(source),
        })
    }

    /// Checks `signature` with the policy's public key, as cosign checks one with the exported key.
    fn verify(&self, message: &Message, signature: &[u8]) -> Result<(), PluginError> {
        let key = self.fetch_key()?;
        key.public_key
            .verify_digest(scheme_for(key.kind()), message.hash, &message.digest, signature)
            .map_err(|e| PluginError::InvalidSignature {
                key: self.key_id.to_string(),
                reason: e.to_string(),
            })
    }
}

/// The time from `now` to cosign's `deadline` less [`DEADLINE_MARGIN`] (at least one second); `None` when the
/// deadline is not RFC 3339.
fn time_left(deadline: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let deadline =
        time::OffsetDateTime::parse(deadline, &time::format_description::well_known::Rfc3339).ok()?;
    let left = Duration::try_from(deadline - now).unwrap_or(Duration::ZERO);
    Some(left.saturating_sub(DEADLINE_MARGIN).max(Duration::from_secs(1)))
}

fn scheme_for(kind: KeyKind) -> SignatureScheme {
    match kind {
        KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1,
        KeyKind::Ec(_) => SignatureScheme::EcdsaAsn1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::InitOptions;

    fn args(method: &str, key: &str) -> PluginArgs {
        PluginArgs {
            init_options: InitOptions {
                protocol_version: "v1".into(),
                key_resource_id: key.into(),
                hash_func: 5,
                ctx_deadline: None,
            },
            method_name: method.into(),
            sign_message: None,
            verify_signature: None,
        }
    }

    #[test]
    fn create_key_is_refused_with_what_to_do_instead() {
        let error = call(args("createKey", "demo/new"), &mut std::io::empty()).unwrap_err();
        let message = error.message();
        assert!(message.contains("signpath://demo/new"), "{message}");
        assert!(
            message.contains("cosign public-key --key signpath://Project/Policy"),
            "{message}"
        );
    }

    #[test]
    fn a_key_that_is_not_project_slash_policy_is_named_before_any_gateway_call() {
        for bad in ["demo", "demo/a/b", "/ec-256", ""] {
            let error = call(args("publicKey", bad), &mut std::io::empty()).unwrap_err();
            assert!(
                matches!(&error, PluginError::KeyReference(k) if k == bad),
                "{bad:?}: {error}"
            );
            assert!(error
                .message()
                .contains(&format!("--key signpath://{bad} is not")));
        }
    }

    #[test]
    fn cosigns_deadline_bounds_the_wait_less_a_margin() {
        let now = time::macros::datetime!(2026-01-01 00:00:00 UTC);
        // Go writes nanoseconds and a zone offset when it has them.
        assert_eq!(
            time_left("2026-01-01T00:03:00.000000001Z", now),
            Some(Duration::from_secs(177) + Duration::from_nanos(1))
        );
        assert_eq!(
            time_left("2026-01-01T01:00:10+01:00", now),
            Some(Duration::from_secs(7))
        );
        // A deadline already passed still leaves one second to answer; one that is not a time is ignored.
        assert_eq!(
            time_left("2025-12-31T23:00:00Z", now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(time_left("soon", now), None);
    }

    #[test]
    fn algorithms_are_answered_without_configuration() {
        let answer = call(args("supportedAlgorithms", ""), &mut std::io::empty()).unwrap();
        assert_eq!(answer.supported_algorithms.unwrap().supported_algorithms.len(), 6);
        let answer = call(args("defaultAlgorithm", ""), &mut std::io::empty()).unwrap();
        assert_eq!(
            answer.default_algorithm.unwrap().default_algorithm,
            "ecdsa-sha2-256-nistp256"
        );
        assert!(matches!(
            call(args("rotateKey", "demo/ec-256"), &mut std::io::empty()),
            Err(PluginError::UnknownMethod(m)) if m == "rotateKey"
        ));
    }
}
