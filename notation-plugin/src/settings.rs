//! From a Notation request to SignPath settings: the key id `Project/Policy`, the configuration (pluginConfig over
//! `SIGNPATH_*` over the JSON file), and the log file, which is the only place the plugin ever logs to.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::config::{Config, ProcessEnvironment};

use crate::error::PluginError;

/// pluginConfig keys that would carry a secret (the API token under SignPath's name and its pre-4.2 name, the CI's
/// identity token), and the environment variable each belongs in instead.
const SECRET_KEYS: [(&str, &str); 3] = [
    ("ApiToken", "SIGNPATH_API_TOKEN"),
    ("CIUserToken", "SIGNPATH_API_TOKEN"),
    ("IdToken", "SIGNPATH_ID_TOKEN"),
];

pub use common::remote_key::KeyId;

/// The key id notation passes (its `--id`), or an error that says what to pass.
pub fn parse_key_id(key_id: &str) -> Result<KeyId, PluginError> {
    KeyId::parse(key_id).ok_or_else(|| {
        PluginError::Request(format!(
            "key id {key_id:?} is not Project/Policy: pass notation's --id as the SignPath project slug and \
             signing policy slug separated by \"/\", for example demo/ec-256"
        ))
    })
}

/// The configuration for one request. Refuses a token in pluginConfig, then starts file logging.
pub fn load_config(plugin_config: Option<&BTreeMap<String, String>>) -> Result<Config, PluginError> {
    let overrides = plugin_config.cloned().unwrap_or_default();
    for key in overrides.keys() {
        if let Some((_, env)) = SECRET_KEYS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
        {
            return Err(PluginError::TokenInPluginConfig {
                key: key.clone(),
                env,
            });
        }
    }
    let config = Config::load(&overrides, &ProcessEnvironment)?;
    init_logging(&config);
    Ok(config)
}

static LOGGING: OnceLock<()> = OnceLock::new();

fn init_logging(config: &Config) {
    LOGGING.get_or_init(|| common::logging::init(config, "Notation", false));
}

/// Starts file logging from the environment alone, for a failure that came before a configuration was read (a bad
/// request, an unreadable configuration file). Without a usable configuration there is no log.
pub fn ensure_logging() {
    if LOGGING.get().is_none() {
        if let Ok(config) = Config::from_environment() {
            init_logging(&config);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_project_slash_policy() {
        assert_eq!(
            parse_key_id("demo/ec-256").unwrap(),
            KeyId {
                project: "demo".into(),
                policy: "ec-256".into()
            }
        );
        for bad in ["", "demo", "/ec-256", "demo/", "a/b/c", " demo/ec-256", "demo/ "] {
            let error = parse_key_id(bad).unwrap_err();
            assert!(
                error.to_string().contains("for example demo/ec-256"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn a_token_in_plugin_config_is_refused_whatever_its_case() {
        let config = BTreeMap::from([("apitoken".to_owned(), "secret".to_owned())]);
        let error = load_config(Some(&config)).unwrap_err();
        assert!(matches!(error, PluginError::TokenInPluginConfig { .. }));
        assert!(!error.to_string().contains("secret"));
        assert!(error.to_string().contains("SIGNPATH_API_TOKEN"));
    }

    #[test]
    fn an_identity_token_in_plugin_config_is_refused() {
        let config = BTreeMap::from([("IdToken".to_owned(), "eyJ.secret.jwt".to_owned())]);
        let error = load_config(Some(&config)).unwrap_err();
        assert_eq!(crate::error::error_code(&error), "VALIDATION_ERROR");
        assert!(!error.to_string().contains("eyJ"));
        assert!(error.to_string().contains("SIGNPATH_ID_TOKEN"), "{error}");
    }
}
