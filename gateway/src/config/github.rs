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
    /// `api_url` without a trailing `/`, for joining paths. Its rules (https, a host, a timeout) are checked with
    /// the rest of the file's in `config/validate.rs`.
    pub fn api_base(&self) -> &str {
        self.api_url.trim_end_matches('/')
    }
}
