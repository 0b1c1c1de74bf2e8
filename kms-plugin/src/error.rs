//! The plugin's one error type. cosign shows an error as `plugin returned error: <message>`, so each message names
//! the key as the user wrote it (`signpath://Project/Policy`) and says what to do next; it never holds a secret.

use common::config::ConfigError;

/// The scheme cosign strips before it calls the plugin; messages put it back.
pub const SCHEME: &str = "signpath://";

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Request(String),

    #[error(
        "protocol version {0:?} is not supported: sigstore-kms-signpath speaks v1 (cosign v2.5 and later)"
    )]
    UnsupportedProtocol(String),

    #[error("unknown method {0:?}")]
    UnknownMethod(String),

    #[error("--key {SCHEME}{0} is not {SCHEME}Project/Policy: give the SignPath project slug and signing policy slug separated by \"/\", for example {SCHEME}demo/ec-256")]
    KeyReference(String),

    #[error("--key {SCHEME}{0}: keys are made on the signing gateway, where a signing policy holds one; use an existing policy, and `cosign public-key --key {SCHEME}Project/Policy` exports its public key")]
    CreateKey(String),

    #[error("hash function {0} is not SHA-256, SHA-384 or SHA-512 (Go crypto.Hash 5, 6 or 7)")]
    UnsupportedHash(u32),

    #[error("cannot read the message from stdin: {0}")]
    Stdin(std::io::Error),

    #[error("the digest cosign passed has {actual} bytes; a {hash} digest has {expected}")]
    DigestLength {
        hash: common::keys::HashAlgorithm,
        expected: usize,
        actual: usize,
    },

    #[error("the digest cosign passed is not the {0} of the message on stdin; nothing was signed")]
    DigestMismatch(common::keys::HashAlgorithm),

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{SCHEME}{key}: {source}")]
    Gateway { key: String, source: common::Error },

    /// The approval wait was cut short to answer before cosign's deadline (its `--timeout`) kills the plugin.
    #[error("{SCHEME}{key}: {source}; cosign's --timeout (default 3m0s) ends before ApprovalWaitTimeoutInSeconds does: give cosign a longer one, for example --timeout 15m")]
    ApprovalPastCosignTimeout { key: String, source: common::Error },

    #[error("the signature does not verify with the public key of {SCHEME}{key}: {reason}")]
    InvalidSignature { key: String, reason: String },
}

impl PluginError {
    /// What goes into `errorMessage`: the message, without any secret this process holds.
    pub fn message(&self) -> String {
        common::secret::scrub(&self.to_string())
    }
}
