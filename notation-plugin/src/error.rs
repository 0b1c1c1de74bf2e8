//! The plugin's errors and their one translation into Notation's `errorCode`s ([`error_code`]).
//!
//! Every message says what to do next; none contains the API token (the library's errors never hold it, and the
//! plugin never puts it into one).

use common::config::ConfigError;
use common::keys::{KeyKind, KeySpec};

use crate::chain::ChainError;

/// Notation's error codes (plugin contract, "Error codes").
pub mod code {
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const UNSUPPORTED_CONTRACT_VERSION: &str = "UNSUPPORTED_CONTRACT_VERSION";
    pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
    pub const TIMEOUT: &str = "TIMEOUT";
    pub const THROTTLED: &str = "THROTTLED";
    pub const ERROR: &str = "ERROR";
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The command line or the request on stdin is malformed; the message names the field and the fix.
    #[error("{0}")]
    Request(String),

    #[error("contract version {0:?} is not supported: notation-signpath speaks Notation plugin contract version 1.0, which notation v1.x sends")]
    UnsupportedContractVersion(String),

    #[error("{key:?} must not be set in pluginConfig (--plugin-config): notation stores plugin config in signingkeys.json and prints it in debug logs; {}", where_it_belongs(.env))]
    TokenInPluginConfig { key: String, env: &'static str },

    #[error("{0}{hint}", hint = plugin_config_hint(.0))]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Gateway(#[from] common::Error),

    #[error(transparent)]
    Chain(#[from] ChainError),

    #[error("the certificate of {key_id} holds a {kind} key, which Notary does not allow; Notary signs with EC-256, EC-384, EC-521, RSA-2048, RSA-3072 or RSA-4096 keys, so use a signing policy with one of those")]
    UnsupportedKey { key_id: String, kind: KeyKind },

    #[error("the request's keySpec {requested} does not match {key_id}, whose certificate holds an {actual} key; run notation sign again so that describe-key reports {actual}")]
    KeySpecMismatch {
        key_id: String,
        requested: KeySpec,
        actual: KeySpec,
    },

    #[error("the key of {key_id} changed at the gateway to another key spec since notation-signpath cached it; its cache entry is renewed, run notation sign again")]
    KeyChanged { key_id: String },

    #[error("cannot build the signature envelope: {0}")]
    Envelope(String),
    #[error("cannot write the response to stdout: {0}")]
    Output(String),
}

/// Where a secret refused in pluginConfig goes instead.
fn where_it_belongs(env: &str) -> String {
    if env == common::config::API_TOKEN.env[0] {
        format!("set the token in {env} (or \"ApiToken\" in the file named by SIGNPATH_CONFIG_FILE) instead")
    } else {
        format!("set the identity token in {env} instead")
    }
}

/// Settings other than the token can also come from notation's `--plugin-config`; say so where one is missing.
fn plugin_config_hint(error: &ConfigError) -> String {
    match error {
        ConfigError::Missing { setting, .. } if *setting != common::config::API_TOKEN.key => {
            format!(", or pass --plugin-config {setting}=... to notation")
        }
        _ => String::new(),
    }
}

/// The `errorCode` for an error: the whole translation table, read top to bottom.
pub fn error_code(error: &PluginError) -> &'static str {
    use common::Error as E;
    match error {
        PluginError::Request(_)
        | PluginError::TokenInPluginConfig { .. }
        | PluginError::Config(_)
        | PluginError::Chain(_)
        | PluginError::UnsupportedKey { .. }
        | PluginError::KeySpecMismatch { .. } => code::VALIDATION_ERROR,
        PluginError::UnsupportedContractVersion(_) => code::UNSUPPORTED_CONTRACT_VERSION,
        PluginError::KeyChanged { .. } | PluginError::Envelope(_) | PluginError::Output(_) => code::ERROR,
        PluginError::Gateway(error) => match error {
            // A setting, a file a setting names, or the key id is wrong: the user fixes the request.
            E::Config(_)
            | E::InvalidApiUrl { .. }
            | E::File { .. }
            | E::PolicyKey { .. }
            | E::Certificate { .. }
            | E::Encoding(_)
            | E::Rejected { .. }
            | E::PolicyNotFound { .. }
            | E::NotFound { .. } => code::VALIDATION_ERROR,
            // An approver denied the request: as final as a token the policy refuses.
            E::Unauthenticated { .. }
            | E::Forbidden { .. }
            | E::ForeignIdentityTokenAudience { .. }
            | E::Denied { .. } => code::ACCESS_DENIED,
            E::Timeout { .. } | E::ApprovalTimeout { .. } => code::TIMEOUT,
            E::Throttled { .. } => code::THROTTLED,
            E::Tls(_)
            | E::TlsHandshake { .. }
            | E::Unreachable { .. }
            | E::NeverConnected { .. }
            | E::ForeignLocation { .. }
            | E::Unavailable { .. }
            | E::Server { .. }
            | E::InvalidResponse(_)
            | E::BadSignature { .. } => code::ERROR,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(error: common::Error) -> &'static str {
        error_code(&PluginError::Gateway(error))
    }

    #[test]
    fn denial_and_approval_timeout_map_to_access_denied_and_timeout() {
        let denied = common::Error::Denied {
            request_id: "r-1".into(),
            detail: "status Denied".into(),
        };
        assert!(denied.to_string().contains("r-1"));
        assert_eq!(gateway(denied), "ACCESS_DENIED");
        let waited = common::Error::ApprovalTimeout {
            request_id: "r-2".into(),
            web_link: Some("https://gw.example/approvals/r-2".into()),
            seconds: 600,
        };
        let message = waited.to_string();
        assert!(
            message.contains("r-2") && message.contains("https://gw.example/approvals/r-2"),
            "{message}"
        );
        assert_eq!(gateway(waited), "TIMEOUT");
    }

    #[test]
    fn http_failures_map_to_notation_codes() {
        let detail = || "d".to_owned();
        assert_eq!(
            gateway(common::Error::Unauthenticated { detail: detail() }),
            "ACCESS_DENIED"
        );
        assert_eq!(
            gateway(common::Error::Forbidden { detail: detail() }),
            "ACCESS_DENIED"
        );
        assert_eq!(
            gateway(common::Error::NotFound { detail: detail() }),
            "VALIDATION_ERROR"
        );
        assert_eq!(
            gateway(common::Error::Throttled {
                seconds: 1,
                detail: detail()
            }),
            "THROTTLED"
        );
        assert_eq!(
            gateway(common::Error::Timeout {
                attempts: 2,
                seconds: 1
            }),
            "TIMEOUT"
        );
        assert_eq!(
            gateway(common::Error::Server {
                status: 500,
                detail: detail()
            }),
            "ERROR"
        );
        assert_eq!(
            gateway(common::Error::PolicyNotFound {
                project: "p".into(),
                policy: "q".into()
            }),
            "VALIDATION_ERROR"
        );
    }

    #[test]
    fn missing_settings_are_validation_errors_that_name_the_variable() {
        let error = PluginError::Config(ConfigError::Missing {
            setting: "OrganizationId",
            env: "SIGNPATH_ORGANIZATION_ID",
        });
        assert_eq!(error_code(&error), "VALIDATION_ERROR");
        assert_eq!(
            error.to_string(),
            "OrganizationId is not set: set SIGNPATH_ORGANIZATION_ID (or \"OrganizationId\" in the file named by \
             SIGNPATH_CONFIG_FILE), or pass --plugin-config OrganizationId=... to notation"
        );
        let token = PluginError::Config(ConfigError::Missing {
            setting: "ApiToken",
            env: "SIGNPATH_API_TOKEN",
        });
        assert!(!token.to_string().contains("--plugin-config"));
        assert_eq!(
            error_code(&PluginError::UnsupportedContractVersion("2.0".into())),
            "UNSUPPORTED_CONTRACT_VERSION"
        );
    }
}
