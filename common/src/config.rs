//! SignPath's Crypto Provider configuration, so a SignPath user switches to our tools without changing a setting.
//!
//! Sources, highest first: per-call overrides (Notation `--plugin-config Key=Value`, same names as the JSON
//! file), `SIGNPATH_*` environment variables, the JSON file named by `SIGNPATH_CONFIG_FILE`
//! (`CryptoProvidersConfig.json`), then defaults. JSON keys are matched case-insensitively, as SignPath's .NET
//! binder does; nested settings are written `Log.File.Level` in overrides. `docs/configuration.md` lists them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::ApiToken;

/// One setting: its JSON path, its environment variable(s) and its default.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static [&'static str],
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

macro_rules! settings {
    ($($const:ident = $key:literal, [$($env:literal),*], $default:expr, $doc:literal;)*) => {
        $(pub const $const: Setting = Setting { key: $key, env: &[$($env),*], default: $default, doc: $doc };)*
        /// Every setting, in documentation order.
        pub const ALL_SETTINGS: &[Setting] = &[$($const),*];
    };
}

settings! {
    API_URL = "ApiUrl", ["SIGNPATH_API_URL"], Some("https://app.signpath.io/Api"),
        "Base URL of the SignPath API or of a signing gateway.";
    ORGANIZATION_ID = "OrganizationId", ["SIGNPATH_ORGANIZATION_ID"], None,
        "Organization id (a UUID).";
    API_TOKEN = "ApiToken", ["SIGNPATH_API_TOKEN", "SIGNPATH_CI_USER_TOKEN"], None,
        "API token of a CI user or a personal token. Never pass it on a command line.";
    PROJECT_SLUG = "ProjectSlug", ["SIGNPATH_PROJECT_SLUG"], None,
        "Project, for tools that give no key id.";
    SIGNING_POLICY_SLUG = "SigningPolicySlug", ["SIGNPATH_SIGNING_POLICY_SLUG"], None,
        "Signing policy, for tools that give no key id.";
    HTTP_PROXY = "HttpProxy", ["SIGNPATH_HTTP_PROXY", "http_proxy"], None,
        "Proxy as host:port or http://host:port.";
    SERVICE_UNAVAILABLE_TIMEOUT = "ServiceUnavailableTimeoutInSeconds",
        ["SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS"], Some("600"),
        "Total time spent retrying an unavailable service (network errors, 429, 502, 503, 504).";
    UNREACHABLE_TIMEOUT = "UnreachableTimeoutInSeconds", ["SIGNPATH_UNREACHABLE_TIMEOUT_IN_SECONDS"], Some("20"),
        "Extension: while no attempt has ever connected to the gateway (connection refused, no such host), give up after this many seconds instead of ServiceUnavailableTimeoutInSeconds; a mistyped ApiUrl or a stopped gateway then fails quickly.";
    HTTP_REQUEST_TIMEOUT = "HttpRequestTimeoutInSeconds", ["SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS"], Some("30"),
        "Time allowed for one HTTP request.";
    LOG_CONSOLE_LEVEL = "Log.Console.Level", ["SIGNPATH_LOG_CONSOLE_LEVEL"], Some("none"),
        "none, fatal, error, warning, info, debug or verbose. Ignored by the Notation plugin, whose console belongs to notation.";
    LOG_CONSOLE_OUTPUT_STREAM = "Log.Console.OutputStream", ["SIGNPATH_LOG_CONSOLE_OUTPUT_STREAM"], Some("stderr"),
        "stderr or stdout.";
    LOG_FILE_LEVEL = "Log.File.Level", ["SIGNPATH_LOG_FILE_LEVEL"], Some("info"),
        "Level of the log file (same values as Log.Console.Level).";
    LOG_FILE_DIRECTORY = "Log.File.Directory", ["SIGNPATH_LOG_FILE_DIRECTORY"], None,
        "Directory of the log file SignPath.CryptoProviders.<Interface>.txt; by default $XDG_STATE_HOME/signpath or ~/.local/state/signpath, private to the user.";
    CRYPTOKI_TOKEN_LABEL = "Cryptoki.TokenLabel", ["SIGNPATH_CRYPTOKI_TOKEN_LABEL"], Some("SignPath"),
        "Extension: the PKCS#11 token label.";
    TLS_CA_BUNDLE = "TlsCaBundle", ["SIGNPATH_TLS_CA_BUNDLE"], None,
        "Extension: PEM file of CA certificates trusted for the gateway's TLS certificate, besides the system's.";
    TLS_CLIENT_CERTIFICATE_FILE = "TlsClientCertificateFile", ["SIGNPATH_TLS_CLIENT_CERTIFICATE_FILE"], None,
        "Extension: PEM client certificate (and chain) for mutual TLS.";
    TLS_CLIENT_KEY_FILE = "TlsClientKeyFile", ["SIGNPATH_TLS_CLIENT_KEY_FILE"], None,
        "Extension: PEM private key of the mutual-TLS client certificate.";
    CERTIFICATE_CHAIN_FILE = "CertificateChainFile", ["SIGNPATH_CERTIFICATE_CHAIN_FILE"], None,
        "Extension: PEM file with the CA certificates (intermediates, then root) above the policy's leaf, for gateways that return only the leaf (SignPath).";
    ALLOW_INSECURE_LOOPBACK_HTTP = "AllowInsecureLoopbackHttp", ["SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP"], Some("false"),
        "Extension: allow plain http:// when the API URL's host is a loopback address. Anything else must be https.";
    APPROVAL_WAIT_TIMEOUT = "ApprovalWaitTimeoutInSeconds", ["SIGNPATH_APPROVAL_WAIT_TIMEOUT_IN_SECONDS"], Some("600"),
        "Extension: how long a client waits for a signing request that needs approval.";
    RELEASE_GROUP = "ReleaseGroup", ["SIGNPATH_RELEASE_GROUP"], None,
        "Extension: a release group id shared by the signatures of one release; one approval covers the group, within the policy's limits.";
    ID_TOKEN = "IdToken", ["SIGNPATH_ID_TOKEN"], None,
        "Extension: the CI's OIDC identity token (GitLab `id_tokens`, or a GitHub Actions ID token), for policies that verify where requests come from. Never pass it on a command line.";
    IDENTITY_TOKEN_AUDIENCE = "IdentityTokenAudience", ["SIGNPATH_IDENTITY_TOKEN_AUDIENCE"], None,
        "Extension: on GitHub Actions, the audience of the identity tokens the client fetches for a policy that verifies origin; by default the gateway's URL (ApiUrl without a trailing / or /Api). A gateway that asks for another audience gets no token.";
}

/// What a GitHub Actions job with `permissions: id-token: write` has, to ask for identity tokens. Not settings, but
/// read through the same [`Environment`] so that a test can give them.
pub const ID_TOKEN_REQUEST_URL_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const ID_TOKEN_REQUEST_TOKEN_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// GitHub Actions' token endpoint for this job and the bearer token it takes (a secret).
#[derive(Clone)]
pub struct IdTokenRequest {
    pub url: String,
    pub token: ApiToken,
}

impl std::fmt::Debug for IdTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenRequest").finish_non_exhaustive()
    }
}

/// Environment variable that names the JSON configuration file.
pub const CONFIG_FILE_ENV: &str = "SIGNPATH_CONFIG_FILE";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{setting} is not set: set {env} (or \"{setting}\" in the file named by SIGNPATH_CONFIG_FILE)")]
    Missing {
        setting: &'static str,
        env: &'static str,
    },
    #[error("{setting} has an invalid value: {reason}")]
    Invalid { setting: &'static str, reason: String },
    #[error("cannot read the configuration file {path} (SIGNPATH_CONFIG_FILE): {reason}")]
    File { path: String, reason: String },
}

/// Log levels as SignPath names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    None,
    Fatal,
    Error,
    Warning,
    Info,
    Debug,
    Verbose,
}

impl LogLevel {
    fn parse(setting: &'static str, value: &str) -> Result<Self, ConfigError> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "none" | "off" => Self::None,
            "fatal" | "critical" => Self::Fatal,
            "error" => Self::Error,
            "warning" | "warn" => Self::Warning,
            "info" | "information" => Self::Info,
            "debug" => Self::Debug,
            "verbose" | "trace" => Self::Verbose,
            _ => {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: format!(
                        "{value:?} is not one of none, fatal, error, warning, info, debug, verbose"
                    ),
                })
            }
        })
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_url: String,
    pub organization_id: Option<String>,
    pub api_token: Option<ApiToken>,
    pub project_slug: Option<String>,
    pub signing_policy_slug: Option<String>,
    pub http_proxy: Option<String>,
    pub service_unavailable_timeout: Duration,
    /// The shorter budget while no attempt has connected (never longer than `service_unavailable_timeout`).
    pub unreachable_timeout: Duration,
    pub http_request_timeout: Duration,
    pub log_console_level: LogLevel,
    pub log_console_to_stdout: bool,
    pub log_file_level: LogLevel,
    pub log_file_directory: PathBuf,
    pub token_label: String,
    pub tls_ca_bundle: Option<PathBuf>,
    pub tls_client_certificate_file: Option<PathBuf>,
    pub tls_client_key_file: Option<PathBuf>,
    pub certificate_chain_file: Option<PathBuf>,
    pub allow_insecure_loopback_http: bool,
    pub approval_wait_timeout: Duration,
    pub release_group: Option<String>,
    /// A secret like the API token: redacted in Debug output, never logged.
    pub id_token: Option<ApiToken>,
    /// `IdentityTokenAudience`: the audience of identity tokens fetched on GitHub Actions, when not the gateway's
    /// URL ([`Config::identity_token_audience`]).
    pub identity_token_audience_setting: Option<String>,
    /// Where this job asks GitHub Actions for identity tokens, when it may.
    pub id_token_request: Option<IdTokenRequest>,
    /// The file that was read, if any (for messages and permission checks).
    pub config_file: Option<PathBuf>,
}

/// Where values come from; a seam so tests need not touch the process environment.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

struct Sources<'a> {
    overrides: BTreeMap<String, String>,
    env: &'a dyn Environment,
    file: Option<serde_json::Value>,
}

impl Sources<'_> {
    fn get(&self, setting: &Setting) -> Option<String> {
        let lower = setting.key.to_ascii_lowercase();
        if let Some(v) = self.overrides.get(&lower) {
            return Some(v.clone());
        }
        for name in setting.env {
            if let Some(v) = self.env.var(name).filter(|v| !v.is_empty()) {
                return Some(v);
            }
        }
        if let Some(v) = self.file.as_ref().and_then(|f| lookup(f, setting.key)) {
            return Some(v);
        }
        setting.default.map(str::to_owned)
    }
}

/// Case-insensitive lookup of a dotted path in the JSON file; numbers and booleans become their text.
fn lookup(root: &serde_json::Value, path: &str) -> Option<String> {
    let mut node = root;
    for segment in path.split('.') {
        let object = node.as_object()?;
        node = object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(segment))
            .map(|(_, v)| v)?;
    }
    match node {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Config {
    /// Reads the configuration from the process environment and `SIGNPATH_CONFIG_FILE`.
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::load(&BTreeMap::new(), &ProcessEnvironment)
    }

    /// Reads the configuration with per-call overrides (setting name → value, e.g. Notation's pluginConfig).
    /// Unknown override keys are ignored, as SignPath's plugin does.
    pub fn load(overrides: &BTreeMap<String, String>, env: &dyn Environment) -> Result<Self, ConfigError> {
        let overrides: BTreeMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let config_file = env
            .var(CONFIG_FILE_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let file = match &config_file {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        let sources = Sources { overrides, env, file };
        let text = |s: &Setting| sources.get(s);
        let seconds = |s: &'static Setting| -> Result<Duration, ConfigError> {
            let value = text(s).unwrap_or_default();
            value
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| ConfigError::Invalid {
                    setting: s.key,
                    reason: format!("{value:?} is not a whole number of seconds"),
                })
        };
        let flag = |s: &'static Setting| -> Result<bool, ConfigError> {
            match text(s).unwrap_or_default().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                other => Err(ConfigError::Invalid {
                    setting: s.key,
                    reason: format!("{other:?} is not true or false"),
                }),
            }
        };
        let level = |s: &'static Setting| LogLevel::parse(s.key, &text(s).unwrap_or_default());
        let path = |s: &Setting| text(s).map(PathBuf::from);
        let stream = text(&LOG_CONSOLE_OUTPUT_STREAM)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let log_console_to_stdout = match stream.as_str() {
            "stdout" => true,
            "stderr" => false,
            other => {
                return Err(ConfigError::Invalid {
                    setting: LOG_CONSOLE_OUTPUT_STREAM.key,
                    reason: format!("{other:?} is not stderr or stdout"),
                })
            }
        };
        Ok(Config {
            api_url: text(&API_URL).unwrap_or_default(),
            organization_id: text(&ORGANIZATION_ID),
            api_token: text(&API_TOKEN).map(ApiToken::from),
            project_slug: text(&PROJECT_SLUG),
            signing_policy_slug: text(&SIGNING_POLICY_SLUG),
            http_proxy: text(&HTTP_PROXY),
            service_unavailable_timeout: seconds(&SERVICE_UNAVAILABLE_TIMEOUT)?,
            unreachable_timeout: seconds(&UNREACHABLE_TIMEOUT)?,
            http_request_timeout: seconds(&HTTP_REQUEST_TIMEOUT)?,
            log_console_level: level(&LOG_CONSOLE_LEVEL)?,
            log_console_to_stdout,
            log_file_level: level(&LOG_FILE_LEVEL)?,
            log_file_directory: path(&LOG_FILE_DIRECTORY).unwrap_or_else(|| default_log_directory(env)),
            token_label: text(&CRYPTOKI_TOKEN_LABEL).unwrap_or_default(),
            tls_ca_bundle: path(&TLS_CA_BUNDLE),
            tls_client_certificate_file: path(&TLS_CLIENT_CERTIFICATE_FILE),
            tls_client_key_file: path(&TLS_CLIENT_KEY_FILE),
            certificate_chain_file: path(&CERTIFICATE_CHAIN_FILE),
            allow_insecure_loopback_http: flag(&ALLOW_INSECURE_LOOPBACK_HTTP)?,
            approval_wait_timeout: seconds(&APPROVAL_WAIT_TIMEOUT)?,
            release_group: text(&RELEASE_GROUP).filter(|g| !g.trim().is_empty()),
            id_token: text(&ID_TOKEN)
                .filter(|t| !t.trim().is_empty())
                .map(ApiToken::from),
            identity_token_audience_setting: text(&IDENTITY_TOKEN_AUDIENCE)
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty()),
            id_token_request: id_token_request(env),
            config_file,
        })
    }

    /// The audience of the identity tokens this client fetches, and the setting that chose it: `IdentityTokenAudience`,
    /// else the gateway's URL ([`crate::protocol::identity_token_audience_of`] of `ApiUrl`). The client's choice,
    /// never the server's: a token for another audience is a credential wherever that audience is trusted.
    pub fn identity_token_audience(&self) -> (String, &'static Setting) {
        match &self.identity_token_audience_setting {
            Some(audience) => (audience.clone(), &IDENTITY_TOKEN_AUDIENCE),
            None => (
                crate::protocol::identity_token_audience_of(&self.api_url),
                &API_URL,
            ),
        }
    }

    /// The organization id, or an error that says which variable to set.
    pub fn require_organization_id(&self) -> Result<&str, ConfigError> {
        self.organization_id.as_deref().ok_or(ConfigError::Missing {
            setting: ORGANIZATION_ID.key,
            env: ORGANIZATION_ID.env[0],
        })
    }

    /// The API token, or an error that says which variable to set.
    pub fn require_api_token(&self) -> Result<&ApiToken, ConfigError> {
        self.api_token.as_ref().ok_or(ConfigError::Missing {
            setting: API_TOKEN.key,
            env: API_TOKEN.env[0],
        })
    }

    /// Whether the configuration file can be read by users other than its owner (it may hold the token).
    pub fn config_file_is_shared(&self) -> bool {
        use std::os::unix::fs::PermissionsExt;
        self.config_file
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.permissions().mode() & 0o044 != 0)
    }
}

/// Both GitHub Actions variables, when set and not blank.
fn id_token_request(env: &dyn Environment) -> Option<IdTokenRequest> {
    let var = |name| env.var(name).filter(|v| !v.trim().is_empty());
    Some(IdTokenRequest {
        url: var(ID_TOKEN_REQUEST_URL_VAR)?.trim().to_owned(),
        token: ApiToken::from(var(ID_TOKEN_REQUEST_TOKEN_VAR)?),
    })
}

/// `$XDG_STATE_HOME/signpath`, else `~/.local/state/signpath`: a directory of this user's, not a shared one such as
/// `/tmp/SignPathLogs`, where another user could plant a symlink. Without either variable, no log directory.
fn default_log_directory(env: &dyn Environment) -> PathBuf {
    let absolute = |v: String| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(state) = env.var("XDG_STATE_HOME").and_then(absolute) {
        return state.join("signpath");
    }
    env.var("HOME")
        .and_then(absolute)
        .map(|home| home.join(".local/state/signpath"))
        .unwrap_or_default()
}

fn read_file(path: &Path) -> Result<serde_json::Value, ConfigError> {
    let err = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    // The file may start with a UTF-8 BOM when written by Windows tools.
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| err(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(err("the top level must be a JSON object".into()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_match_signpath() {
        let config = Config::load(&BTreeMap::new(), &env_of(&[])).unwrap();
        assert_eq!(config.api_url, "https://app.signpath.io/Api");
        assert_eq!(config.service_unavailable_timeout, Duration::from_secs(600));
        assert_eq!(config.http_request_timeout, Duration::from_secs(30));
        assert_eq!(config.log_file_level, LogLevel::Info);
        assert_eq!(config.log_console_level, LogLevel::None);
        assert!(!config.allow_insecure_loopback_http);
        assert_eq!(
            config.require_api_token().unwrap_err().to_string(),
            "ApiToken is not set: set SIGNPATH_API_TOKEN (or \"ApiToken\" in the file named by SIGNPATH_CONFIG_FILE)"
        );
    }

    #[test]
    fn the_identity_token_audience_is_the_gateways_url_unless_set() {
        let config = Config::load(
            &BTreeMap::new(),
            &env_of(&[("SIGNPATH_API_URL", "https://GW.example:8443/Api/")]),
        )
        .unwrap();
        let (audience, setting) = config.identity_token_audience();
        assert_eq!(
            (audience.as_str(), setting.key),
            ("https://gw.example:8443", "ApiUrl")
        );
        let config = Config::load(
            &BTreeMap::new(),
            &env_of(&[
                ("SIGNPATH_API_URL", "https://gw.example:8443/Api"),
                ("SIGNPATH_IDENTITY_TOKEN_AUDIENCE", " signpath-gateway "),
            ]),
        )
        .unwrap();
        let (audience, setting) = config.identity_token_audience();
        assert_eq!(
            (audience.as_str(), setting.key),
            ("signpath-gateway", "IdentityTokenAudience")
        );
    }

    #[test]
    fn github_actions_token_requests_are_read_only_when_both_variables_are_set() {
        let both = Config::load(
            &BTreeMap::new(),
            &env_of(&[
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "https://pipelines.example/idtoken?api-version=2.0",
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-secret"),
            ]),
        )
        .unwrap();
        let request = both.id_token_request.as_ref().unwrap();
        assert_eq!(request.url, "https://pipelines.example/idtoken?api-version=2.0");
        assert!(!format!("{both:?}").contains("request-secret"));
        let one = Config::load(
            &BTreeMap::new(),
            &env_of(&[(
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://pipelines.example/idtoken",
            )]),
        )
        .unwrap();
        assert!(one.id_token_request.is_none());
    }

    #[test]
    fn logs_default_to_a_per_user_state_directory() {
        let config = Config::load(&BTreeMap::new(), &env_of(&[("HOME", "/home/ana")])).unwrap();
        assert_eq!(
            config.log_file_directory,
            Path::new("/home/ana/.local/state/signpath")
        );
        let env = env_of(&[("HOME", "/home/ana"), ("XDG_STATE_HOME", "/state")]);
        let config = Config::load(&BTreeMap::new(), &env).unwrap();
        assert_eq!(config.log_file_directory, Path::new("/state/signpath"));
        let env = env_of(&[
            ("HOME", "/home/ana"),
            ("SIGNPATH_LOG_FILE_DIRECTORY", "/var/log/sp"),
        ]);
        let config = Config::load(&BTreeMap::new(), &env).unwrap();
        assert_eq!(config.log_file_directory, Path::new("/var/log/sp"));
        assert_eq!(config.unreachable_timeout, Duration::from_secs(20));
    }

    #[test]
    fn overrides_beat_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("CryptoProvidersConfig.json");
        std::fs::write(
            &file,
            r#"{"apiurl":"https://file","OrganizationId":"file-org","ApiToken":"file-token",
                "Log":{"File":{"Level":"debug"}},"HttpRequestTimeoutInSeconds":7}"#,
        )
        .unwrap();
        let path = file.display().to_string();
        let env = move |name: &str| match name {
            CONFIG_FILE_ENV => Some(path.clone()),
            "SIGNPATH_ORGANIZATION_ID" => Some("env-org".to_owned()),
            _ => None,
        };
        let overrides = BTreeMap::from([("organizationid".to_owned(), "override-org".to_owned())]);
        let config = Config::load(&overrides, &env).unwrap();
        assert_eq!(config.api_url, "https://file");
        assert_eq!(config.organization_id.as_deref(), Some("override-org"));
        assert_eq!(config.api_token.as_ref().unwrap().expose_secret(), "file-token");
        assert_eq!(config.log_file_level, LogLevel::Debug);
        assert_eq!(config.http_request_timeout, Duration::from_secs(7));
        let config = Config::load(&BTreeMap::new(), &env).unwrap();
        assert_eq!(config.organization_id.as_deref(), Some("env-org"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = Config::load(
            &BTreeMap::new(),
            &env_of(&[("SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS", "soon")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "HttpRequestTimeoutInSeconds has an invalid value: \"soon\" is not a whole number of seconds"
        );
        let err = Config::load(
            &BTreeMap::new(),
            &env_of(&[(CONFIG_FILE_ENV, "/nonexistent/x.json")]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }));
    }

    #[test]
    fn legacy_token_variable_is_accepted() {
        let config =
            Config::load(&BTreeMap::new(), &env_of(&[("SIGNPATH_CI_USER_TOKEN", "legacy")])).unwrap();
        assert_eq!(config.require_api_token().unwrap().expose_secret(), "legacy");
    }
}

#[cfg(test)]
mod documentation {
    use super::ALL_SETTINGS;

    #[test]
    fn every_setting_is_documented() {
        let doc = include_str!("../../docs/configuration.md");
        for setting in ALL_SETTINGS {
            assert!(
                doc.contains(&format!("| `{}` |", setting.key)),
                "{} is not in docs/configuration.md",
                setting.key
            );
            for env in setting.env {
                assert!(
                    doc.contains(&format!("`{env}`")),
                    "{env} is not in docs/configuration.md"
                );
            }
        }
    }
}
