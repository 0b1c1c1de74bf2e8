//! `gateway.toml`: where the gateway listens, which HSM holds the keys, and who may sign with which policy.
//! Relative paths are relative to the file's directory, so a whole setup moves as one folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// Address to listen on, e.g. `127.0.0.1:8443`.
    pub listen: String,
    /// The URL clients use (`ApiUrl`), for links in responses.
    pub public_url: String,
    pub organization_id: String,
    /// SQLite audit database.
    pub audit_db: PathBuf,
    pub tls: TlsConfig,
    pub hsm: HsmConfig,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsConfig {
    /// PEM server certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HsmConfig {
    /// The PKCS#11 module holding the keys (any HSM; SoftHSM2 by default).
    pub module: PathBuf,
    /// For SoftHSM2: its configuration file, exported as SOFTHSM2_CONF for this process only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softhsm2_conf: Option<PathBuf>,
    pub token_label: String,
    /// File holding the token's user PIN (mode 0600).
    pub pin_file: PathBuf,
}

/// An API token, stored as the SHA-256 of its value (tokens are 256-bit random, so a plain hash suffices).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenConfig {
    pub id: String,
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectConfig {
    pub slug: String,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyConfig {
    pub slug: String,
    /// Stable id reported as `signingPolicyId`.
    pub id: String,
    /// CKA_LABEL of the private key in the HSM.
    pub key_label: String,
    /// PEM files: the policy's certificate, then its CA certificates up to the root.
    pub certificate_chain: Vec<PathBuf>,
    /// Token ids that may submit signing requests to this policy.
    #[serde(default)]
    pub submitters: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not a valid gateway configuration: {reason}")]
    Parse { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<(Self, PathBuf), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, base))
    }

    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        crate::fsutil::write_private(path, text.as_bytes()).map_err(|e| ConfigError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// Resolves a configured path against the configuration's directory.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
