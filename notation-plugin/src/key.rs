//! A signing policy's key as the plugin uses it: from the per-user cache when a fresh entry exists, else from the
//! gateway (`MySigningPolicies`), checked against Notary's rules before anything is signed with it.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use common::client::GatewayClient;
use common::config::Config;
use common::keys::KeySpec;
use common::remote_key::RemoteKey;

use crate::cache::KeyCache;
use crate::chain::{self, ChainError};
use crate::error::PluginError;
use crate::settings::KeyId;

/// A policy key, where it came from, and its Notary key spec.
#[derive(Debug)]
pub struct PolicyKey {
    pub key: RemoteKey,
    pub spec: KeySpec,
    pub from_cache: bool,
}

/// Finds keys, with the cache in front of the gateway.
#[derive(Debug)]
pub struct KeySource<'a> {
    pub client: &'a GatewayClient,
    pub config: &'a Config,
    pub cache: KeyCache,
}

impl KeySource<'_> {
    fn entry_name(&self, key_id: &KeyId) -> String {
        KeyCache::entry_name(
            self.client.base_url().as_str(),
            &key_id.to_string(),
            self.config.certificate_chain_file.as_deref(),
        )
    }

    /// The key of `key_id`, with a Notary key spec and a chain Notary accepts.
    pub fn get(&self, key_id: &KeyId) -> Result<PolicyKey, PluginError> {
        let name = self.entry_name(key_id);
        let cached = self.cache.load(&name, SystemTime::now()).and_then(|info| {
            match RemoteKey::from_policy_info(info, None) {
                Ok(key)
                    if key.project.eq_ignore_ascii_case(&key_id.project)
                        && key.policy.eq_ignore_ascii_case(&key_id.policy) =>
                {
                    Some(key)
                }
                Ok(_) => None,
                Err(error) => {
                    tracing::debug!(%error, "key cache entry not usable");
                    None
                }
            }
        });
        let (key, from_cache) = match cached {
            Some(key) => {
                chain::revalidate_cached(&key_id.to_string(), &key.chain, SystemTime::now())?;
                (key, true)
            }
            None => {
                let (key, valid) = self.fetch(key_id)?;
                valid?;
                (key, false)
            }
        };
        tracing::info!(
            key_id = %key_id,
            kind = %key.kind(),
            certificates = key.chain.len(),
            source = if from_cache { "cache" } else { "gateway" },
            "policy key"
        );
        let spec = key.kind().key_spec().ok_or_else(|| PluginError::UnsupportedKey {
            key_id: key_id.to_string(),
            kind: key.kind(),
        })?;
        Ok(PolicyKey {
            key,
            spec,
            from_cache,
        })
    }

    /// Asks the gateway for the key and checks its chain against Notary's rules; a key whose chain passes is
    /// cached, chain included (so a CertificateChainFile is read once and a cache hit needs no signature checks).
    pub fn fetch(&self, key_id: &KeyId) -> Result<(RemoteKey, Result<(), ChainError>), PluginError> {
        let key = self.client.fetch_key(
            &key_id.project,
            &key_id.policy,
            self.config.certificate_chain_file.as_deref(),
        )?;
        let valid = chain::validate(&key_id.to_string(), &key.chain, SystemTime::now());
        if valid.is_ok() {
            let mut info = key.info.clone();
            info.certificate_chain = Some(key.chain.iter().map(|der| BASE64.encode(der)).collect());
            self.cache
                .store(&self.entry_name(key_id), &info, SystemTime::now());
        }
        Ok((key, valid))
    }

    /// Drops the cached entry of a key that proved stale.
    pub fn forget(&self, key_id: &KeyId) {
        self.cache.remove(&self.entry_name(key_id));
    }
}
