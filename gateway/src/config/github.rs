//! `[github]`: SignPath's GitHub connector on this gateway (docs/github-actions.md). SignPath's GitHub Action posts
//! a GitHub artifact id, a workflow run and a GitHub token; the gateway reads the run and downloads the artifact
//! from GitHub's REST API at `api_url`. Off unless the section is present: the gateway then calls out to GitHub.

use serde::{Deserialize, Serialize};

/// `[github]` of gateway.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// GitHub's REST API: `https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The host of the repositories that API serves (`github.com`). A policy's origin rule is met by a run the
    /// connector verified only where the rule's trusted issuer speaks for repositories on this host.
    #[serde(default = "default_repository_host")]
    pub repository_host: String,
    /// How long one call to GitHub may take, the artifact's download included.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            api_url: default_api_url(),
            repository_host: default_repository_host(),
            timeout_seconds: default_timeout_seconds(),
        }
    }
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

fn default_repository_host() -> String {
    "github.com".into()
}

fn default_timeout_seconds() -> u64 {
    300
}

impl GithubConfig {
    /// The API's URL must be https: the GitHub token travels to it. Plain http only on loopback (a test's
    /// stand-in), by the same rule as an issuer's `jwks_url`.
    pub fn check(&self) -> Result<(), String> {
        check_fetch_url("[github] api_url", &self.api_url)?;
        if self.repository_host.trim().is_empty() {
            return Err("[github] repository_host is empty; GitHub's is github.com".into());
        }
        if self.timeout_seconds == 0 {
            return Err("[github] timeout_seconds must be at least 1".into());
        }
        Ok(())
    }

    /// `api_url` without a trailing `/`, for joining paths.
    pub fn api_base(&self) -> &str {
        self.api_url.trim_end_matches('/')
    }
}

/// A URL the gateway fetches from with something to protect (`what` names the setting): https, or plain http on a
/// loopback address only.
pub fn check_fetch_url(what: &str, url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{what} {url:?} must be https:// (http:// only on a loopback address)"
        )),
    }
}
