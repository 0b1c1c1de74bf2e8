//! The three commands of a `SIGNATURE_GENERATOR.RAW` plugin. Each takes the bytes notation wrote to stdin and
//! returns the JSON to write to stdout; the caller turns an error into the error JSON on stderr.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;
use common::keys::{HashAlgorithm, KeyKind, KeySpec, SignatureScheme};
use common::protocol::{Metadata, OciMetadata};

use crate::cache::KeyCache;
use crate::error::PluginError;
use crate::key::{KeySource, PolicyKey};
use crate::payload;
use crate::protocol::{
    DescribeKeyRequest, DescribeKeyResponse, GenerateSignatureRequest, GenerateSignatureResponse,
    MetadataRequest, MetadataResponse, CAPABILITY_RAW_SIGNER, CONTRACT_VERSION,
};
use crate::settings::{self, KeyId};

/// The plugin's name: notation installs it as `plugins/signpath/notation-signpath` and requires the two to match.
pub const PLUGIN_NAME: &str = "signpath";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variables a pipeline may set to name the image in the gateway's audit log (notation does not tell
/// a plugin which registry or tag it signs for).
pub const OCI_REGISTRY_ENV: &str = "SIGNPATH_OCI_REGISTRY";
pub const OCI_REPOSITORY_ENV: &str = "SIGNPATH_OCI_REPOSITORY";
pub const OCI_TAG_ENV: &str = "SIGNPATH_OCI_TAG";

/// `get-plugin-metadata`: static, no configuration, no network. Empty stdin is taken as `{}`, for people trying
/// the plugin by hand.
///
/// Signing: `SIGNATURE_GENERATOR.RAW` (notation builds the envelope), or with pluginConfig `envelope=true`
/// `SIGNATURE_GENERATOR.ENVELOPE` instead (the plugin builds it, naming itself as the verification plugin; notation
/// prefers RAW when both are listed, so only one is). Verification: `SIGNATURE_VERIFIER.TRUSTED_IDENTITY` and
/// `SIGNATURE_VERIFIER.REVOCATION_CHECK`, which notation uses only for envelopes that name this plugin (`verify.rs`).
pub fn get_plugin_metadata(input: &[u8]) -> Result<MetadataResponse, PluginError> {
    let mut envelope = false;
    if !input.iter().all(u8::is_ascii_whitespace) {
        let request: MetadataRequest = parse("get-plugin-metadata", input)?;
        envelope = crate::protocol::envelope_requested(request.plugin_config.as_ref());
    }
    let signer = if envelope {
        crate::protocol::CAPABILITY_ENVELOPE_GENERATOR
    } else {
        CAPABILITY_RAW_SIGNER
    };
    Ok(MetadataResponse {
        name: PLUGIN_NAME,
        description: env!("CARGO_PKG_DESCRIPTION"),
        version: VERSION,
        url: env!("CARGO_PKG_REPOSITORY"),
        supported_contract_versions: vec![CONTRACT_VERSION],
        capabilities: vec![
            signer,
            crate::protocol::CAPABILITY_TRUSTED_IDENTITY,
            crate::protocol::CAPABILITY_REVOCATION_CHECK,
        ],
    })
}

/// `describe-key`: the key spec of the policy's certificate. Fetches the key (or finds it in the cache) and checks
/// its chain now, so that a key notation cannot use fails before anything is signed.
pub fn describe_key(input: &[u8]) -> Result<DescribeKeyResponse, PluginError> {
    const COMMAND: &str = "describe-key";
    let request: DescribeKeyRequest = parse(COMMAND, input)?;
    check_contract_version(COMMAND, request.contract_version.as_deref())?;
    let key_id = key_id(COMMAND, request.key_id.as_deref())?;
    let session = Session::open(request.plugin_config.as_ref())?;
    let key = session.keys().get(&key_id)?;
    tracing::info!(key_id = %key_id, key_spec = %key.spec, "describe-key");
    Ok(DescribeKeyResponse {
        key_id: key_id.to_string(),
        key_spec: key.spec.notation_name(),
    })
}

/// `generate-signature`: hashes the payload, has the gateway sign the digest (RSASSA-PSS or ECDSA r||s), verifies
/// the answer with the leaf's key and returns it with the chain.
pub fn generate_signature(input: &[u8]) -> Result<GenerateSignatureResponse, PluginError> {
    const COMMAND: &str = "generate-signature";
    let request: GenerateSignatureRequest = parse(COMMAND, input)?;
    check_contract_version(COMMAND, request.contract_version.as_deref())?;
    let key_id = key_id(COMMAND, request.key_id.as_deref())?;
    let key_spec = request_key_spec(request.key_spec.as_deref())?;
    let hash = request_hash(key_spec, request.hash_algorithm.as_deref())?;
    let payload = required(
        COMMAND,
        "payload",
        request.payload.as_deref(),
        "the bytes to sign, standard base64",
    )?;
    let payload = BASE64.decode(payload).map_err(|e| {
        PluginError::Request(format!(
            "payload is not standard base64 ({e}); send the bytes to sign as standard base64 with padding"
        ))
    })?;

    let session = Session::open(request.plugin_config.as_ref())?;
    let keys = session.keys();
    let mut key = keys.get(&key_id)?;
    if key.spec != key_spec {
        return Err(PluginError::KeySpecMismatch {
            key_id: key_id.to_string(),
            requested: key_spec,
            actual: key.spec,
        });
    }
    let digest = hash.digest(&payload);
    let metadata = audit_metadata(&payload);
    let sign = |key: &PolicyKey| {
        let scheme = match key.key.kind() {
            KeyKind::Rsa { .. } => SignatureScheme::RsaPss,
            KeyKind::Ec(_) => SignatureScheme::EcdsaIeee,
        };
        key.key
            .sign_digest(&session.client, scheme, hash, &digest, Some(metadata.clone()))
    };
    let signature = match sign(&key) {
        Ok(signature) => signature,
        Err(error @ common::Error::BadSignature { .. }) if key.from_cache => {
            // A wrong signature with a cached key: the policy's key may have been renewed (`policy rotate`) since.
            // Fetch it again; if it changed and is still of the key spec notation asked for, sign once more with
            // the new key, so the first notation sign after a rotation succeeds (with the new chain).
            keys.forget(&key_id);
            let (current, valid) = keys.fetch(&key_id)?;
            if current.public_key == key.key.public_key {
                return Err(error.into());
            }
            valid?;
            let renewed = PolicyKey {
                spec: current
                    .kind()
                    .key_spec()
                    .ok_or_else(|| PluginError::UnsupportedKey {
                        key_id: key_id.to_string(),
                        kind: current.kind(),
                    })?,
                key: current,
                from_cache: false,
            };
            if renewed.spec != key_spec {
                // notation chose the envelope's algorithm from the old key spec: only a new run can use the new.
                return Err(PluginError::KeyChanged {
                    key_id: key_id.to_string(),
                });
            }
            tracing::info!(key_id = %key_id, "the policy's key changed since it was cached; signing again with the new key");
            key = renewed;
            sign(&key)?
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(
        key_id = %key_id,
        key_spec = %key.spec,
        hash = %hash,
        digest = %hex::encode(&digest),
        "generate-signature: signed"
    );
    Ok(GenerateSignatureResponse {
        key_id: key_id.to_string(),
        signature: BASE64.encode(signature),
        signing_algorithm: key.spec.notation_signing_algorithm(),
        certificate_chain: key.key.chain.iter().map(|der| BASE64.encode(der)).collect(),
    })
}

/// What a command needs beyond its request: the configuration and a gateway client.
pub(crate) struct Session {
    pub(crate) config: Config,
    pub(crate) client: GatewayClient,
}

impl Session {
    pub(crate) fn open(plugin_config: Option<&BTreeMap<String, String>>) -> Result<Self, PluginError> {
        let config = settings::load_config(plugin_config)?;
        let client =
            GatewayClient::new(&config, ClientOptions::new("NotationPlugin", VERSION)).map_err(|error| {
                match error {
                    // A missing OrganizationId or token: reported as a setting, with notation's way to pass it.
                    common::Error::Config(error) => PluginError::Config(error),
                    other => PluginError::Gateway(other),
                }
            })?;
        Ok(Self { config, client })
    }

    pub(crate) fn keys(&self) -> KeySource<'_> {
        KeySource {
            client: &self.client,
            config: &self.config,
            cache: KeyCache::for_user(),
        }
    }
}

pub(crate) fn parse<T: DeserializeOwned>(command: &str, input: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(input).map_err(|e| {
        PluginError::Request(format!(
            "the {command} request on stdin is not valid JSON ({e}); notation-signpath is run by notation, which \
             writes one JSON object to its stdin"
        ))
    })
}

pub(crate) fn required<'a>(
    command: &str,
    field: &str,
    value: Option<&'a str>,
    what: &str,
) -> Result<&'a str, PluginError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(PluginError::Request(format!(
            "the {command} request has no {field}; send {what}"
        ))),
    }
}

pub(crate) fn check_contract_version(command: &str, version: Option<&str>) -> Result<(), PluginError> {
    let version = required(command, "contractVersion", version, "\"contractVersion\":\"1.0\"")?;
    if version != CONTRACT_VERSION {
        return Err(PluginError::UnsupportedContractVersion(version.to_owned()));
    }
    Ok(())
}

pub(crate) fn key_id(command: &str, key_id: Option<&str>) -> Result<KeyId, PluginError> {
    settings::parse_key_id(required(
        command,
        "keyId",
        key_id,
        "the key id that notation's --id passes, Project/Policy (for example demo/ec-256)",
    )?)
}

fn spec_names() -> String {
    KeySpec::ALL.map(KeySpec::notation_name).join(", ")
}

fn request_key_spec(value: Option<&str>) -> Result<KeySpec, PluginError> {
    let name = required(
        "generate-signature",
        "keySpec",
        value,
        &format!("one of {}", spec_names()),
    )?;
    KeySpec::from_notation_name(name)
        .ok_or_else(|| PluginError::Request(format!("keySpec {name:?} is not one of {}", spec_names())))
}

/// The request's hash algorithm, which must be the one Notary pairs with the key spec.
fn request_hash(spec: KeySpec, value: Option<&str>) -> Result<HashAlgorithm, PluginError> {
    let name = required(
        "generate-signature",
        "hashAlgorithm",
        value,
        "one of SHA-256, SHA-384, SHA-512",
    )?;
    let hash = HashAlgorithm::from_notation_name(name).ok_or_else(|| {
        PluginError::Request(format!(
            "hashAlgorithm {name:?} is not one of SHA-256, SHA-384, SHA-512"
        ))
    })?;
    if hash != spec.hash() {
        return Err(PluginError::Request(format!(
            "hashAlgorithm {hash} does not match keySpec {spec}, which Notary pairs with {}; send \"hashAlgorithm\":\"{}\"",
            spec.hash(),
            spec.hash()
        )));
    }
    Ok(hash)
}

/// The audit metadata sent with the digest: who asks (the command line, secrets removed) and what is signed
/// (the manifest's digest and media type from the payload; registry, repository and tag when the pipeline names
/// them in the environment).
pub(crate) fn audit_metadata(payload: &[u8]) -> Metadata {
    let target = payload::target_artifact(payload);
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let oci = OciMetadata {
        registry: env(OCI_REGISTRY_ENV),
        repository: env(OCI_REPOSITORY_ENV),
        tag: env(OCI_TAG_ENV),
        digest: target.as_ref().and_then(|t| t.digest.clone()),
        media_type: target.and_then(|t| t.media_type),
    };
    Metadata {
        source_process: Some(common::metadata::current_source_process()),
        oci: (oci != OciMetadata::default()).then_some(oci),
        // The client adds the release group (ReleaseGroup) to every SignHash.
        release_group: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_code;

    fn code(result: Result<impl std::fmt::Debug, PluginError>) -> (&'static str, String) {
        let error = result.unwrap_err();
        (error_code(&error), error.to_string())
    }

    #[test]
    fn metadata_is_static_and_tolerates_empty_input() {
        for input in [
            &b""[..],
            b"{}",
            b" \n",
            br#"{"pluginConfig":{"OrganizationId":"x"}}"#,
        ] {
            let response = get_plugin_metadata(input).unwrap();
            assert_eq!(response.name, "signpath");
            assert_eq!(response.version, VERSION);
            assert!(!response.version.starts_with('v'));
        }
        assert_eq!(code(get_plugin_metadata(b"nope")).0, "VALIDATION_ERROR");
    }

    #[test]
    fn requests_are_checked_before_any_configuration_is_read() {
        let (c, m) = code(describe_key(br#"{"keyId":"demo/ec-256"}"#));
        assert_eq!(c, "VALIDATION_ERROR");
        assert!(m.contains("contractVersion"), "{m}");
        let (c, _) = code(describe_key(
            br#"{"contractVersion":"2.0","keyId":"demo/ec-256"}"#,
        ));
        assert_eq!(c, "UNSUPPORTED_CONTRACT_VERSION");
        let (c, m) = code(generate_signature(
            br#"{"contractVersion":"1.0","keyId":"demo/ec-256","keySpec":"EC-256","hashAlgorithm":"SHA-384","payload":"em9w"}"#,
        ));
        assert_eq!(c, "VALIDATION_ERROR");
        assert_eq!(
            m,
            "hashAlgorithm SHA-384 does not match keySpec EC-256, which Notary pairs with SHA-256; send \"hashAlgorithm\":\"SHA-256\""
        );
        let (_, m) = code(generate_signature(
            br#"{"contractVersion":"1.0","keyId":"demo/ec-256","keySpec":"EC-256","hashAlgorithm":"SHA-256","payload":"!!"}"#,
        ));
        assert!(m.starts_with("payload is not standard base64"), "{m}");
    }
}
