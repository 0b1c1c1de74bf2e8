//! A [`Signer`] that signs through the gateway's SignHash API with the other clients' configuration (SIGNPATH_*,
//! SIGNPATH_CONFIG_FILE) and client. Each digest goes with audit metadata naming the image and digest.

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;
use common::protocol::{Metadata, OciMetadata};
use common::remote_key::RemoteKey;
use signpath_oci::reference::Reference;
use signpath_oci::signer::{DigestToSign, Signer, SignerError};

pub struct GatewaySigner {
    client: GatewayClient,
    key: RemoteKey,
}

impl GatewaySigner {
    /// Reads the configuration and fetches the policy's key and chain; `key` is `Project/Policy`.
    pub fn connect(key: Option<&str>) -> Result<Self, String> {
        let config = Config::from_environment().map_err(|e| e.to_string())?;
        let (project, policy) = match key {
            Some(key) => key
                .split_once('/')
                .map(|(p, s)| (p.to_owned(), s.to_owned()))
                .ok_or_else(|| format!("--key {key:?} is not Project/Policy"))?,
            None => match (&config.project_slug, &config.signing_policy_slug) {
                (Some(p), Some(s)) => (p.clone(), s.clone()),
                _ => {
                    return Err(
                        "no signing policy: give --key Project/Policy or set SIGNPATH_PROJECT_SLUG and \
                         SIGNPATH_SIGNING_POLICY_SLUG"
                            .into(),
                    )
                }
            },
        };
        let client = GatewayClient::new(
            &config,
            ClientOptions::new("signpath-oci", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|e| e.to_string())?;
        let key = client
            .fetch_key(&project, &policy, config.certificate_chain_file.as_deref())
            .map_err(|e| e.to_string())?;
        Ok(Self { client, key })
    }
}

impl Signer for GatewaySigner {
    fn certificate_chain(&self) -> Result<Vec<Vec<u8>>, SignerError> {
        Ok(self.key.chain.clone())
    }

    fn sign_digest(&self, request: &DigestToSign<'_>) -> Result<Vec<u8>, SignerError> {
        let reference = Reference::parse(&request.target.reference).ok();
        let metadata = Metadata {
            source_process: Some(common::metadata::current_source_process()),
            oci: Some(OciMetadata {
                registry: reference.as_ref().and_then(|r| r.registry.clone()),
                repository: reference.as_ref().map(|r| r.repository.clone()),
                tag: reference.as_ref().and_then(|r| r.tag.clone()),
                digest: Some(request.target.descriptor.digest.to_string()),
                media_type: Some(request.target.descriptor.media_type.clone()),
            }),
            release_group: None,
        };
        self.key
            .sign_digest(
                &self.client,
                request.scheme,
                request.hash,
                request.digest,
                Some(metadata),
            )
            .map_err(|e| SignerError(Box::new(e)))
    }
}
