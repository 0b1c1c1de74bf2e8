//! GitHub's REST API as the GitHub connector calls it (`github_artifact`): a workflow run, an artifact's record,
//! the artifact's download, each with the request's GitHub token, which goes nowhere else. A refusal says what
//! GitHub answered in the action's user's terms (the token's rights, a run or artifact that is not there); GitHub
//! unreachable or failing is a 503 the action retries.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::artifact_zip::too_large;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use crate::config::GithubConfig;

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}`, the fields the connector reads.
#[derive(Debug, Deserialize)]
pub(super) struct WorkflowRun {
    pub(super) id: u64,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) head_branch: Option<String>,
    pub(super) head_sha: String,
    #[serde(default)]
    pub(super) event: Option<String>,
    #[serde(default)]
    pub(super) run_attempt: Option<u64>,
    #[serde(default)]
    pub(super) html_url: Option<String>,
    pub(super) repository: Repository,
    #[serde(default)]
    pub(super) actor: Option<Actor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Repository {
    pub(super) id: u64,
    pub(super) full_name: String,
    pub(super) owner: Actor,
}

#[derive(Debug, Deserialize)]
pub(super) struct Actor {
    #[serde(default)]
    pub(super) id: Option<u64>,
    #[serde(default)]
    pub(super) login: Option<String>,
}

/// `GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}`, the fields the connector reads.
#[derive(Debug, Deserialize)]
pub(super) struct Artifact {
    pub(super) id: u64,
    pub(super) name: String,
    #[serde(default)]
    pub(super) size_in_bytes: u64,
    #[serde(default)]
    pub(super) expired: bool,
    pub(super) workflow_run: Option<ArtifactRun>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ArtifactRun {
    pub(super) id: Option<u64>,
}

/// GitHub's REST API with the request's token.
pub(super) struct GithubApi<'a> {
    client: reqwest::Client,
    config: &'a GithubConfig,
    token: &'a str,
}

impl<'a> GithubApi<'a> {
    pub(super) fn new(config: &'a GithubConfig, token: &'a str) -> Result<Self, Refusal> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(std::time::Duration::from_secs(config.timeout_seconds))
            .user_agent(concat!("signpath-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot build the GitHub client");
                refuse(Reason::Internal, "the gateway cannot call GitHub")
            })?;
        Ok(Self {
            client,
            config,
            token,
        })
    }

    pub(super) async fn get(&self, path: &str) -> Result<reqwest::Response, Refusal> {
        let url = format!("{}{path}", self.config.api_base());
        let response = self
            .client
            .get(&url)
            .bearer_auth(self.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let what = format!("GitHub's API answered {} to GET {path}", status.as_u16());
        Err(match status.as_u16() {
            401 => refuse(
                Reason::OriginRejected,
                format!("{what}: the GitHub token is not valid (github-token)"),
            ),
            403 | 404 => refuse(
                Reason::OriginRejected,
                format!(
                    "{what}: there is no such run or artifact in that repository, or the GitHub token may not \
                     read it (github-token needs actions: read and contents: read)"
                ),
            ),
            429 | 500..=599 => refuse(Reason::ArtifactSourceUnavailable,  format!("{what}; try again later")),
            _ => refuse(Reason::OriginRejected,  what),
        })
    }

    pub(super) async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Refusal> {
        self.get(path).await?.json().await.map_err(|e| {
            refuse(
                Reason::ArtifactSourceUnavailable,
                format!("GitHub's answer to GET {path} is not what its API documents: {e}"),
            )
        })
    }

    pub(super) fn unreachable(&self, error: &reqwest::Error) -> Refusal {
        // reqwest's error names the URL (no token in it) and the cause.
        tracing::warn!(error = %error, "GitHub's API did not answer");
        refuse(
            Reason::ArtifactSourceUnavailable,
            format!(
                "GitHub's API at {} did not answer; try again later",
                self.config.api_base()
            ),
        )
    }
}

/// What the gateway verified of the run, as the claims an origin rule names (see [`RUN_CLAIMS`]) plus where the
/// run and its artifact are.
pub(super) fn run_claims(run: &WorkflowRun, artifact: Option<&Artifact>) -> BTreeMap<String, String> {
    let mut claims = BTreeMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            claims.insert(name.to_owned(), value);
        }
    };
    put("repository", Some(run.repository.full_name.clone()));
    put("repository_id", Some(run.repository.id.to_string()));
    put(
        "repository_owner_id",
        run.repository.owner.id.map(|id| id.to_string()),
    );
    put("run_id", Some(run.id.to_string()));
    put("run_attempt", run.run_attempt.map(|a| a.to_string()));
    put("sha", Some(run.head_sha.clone()));
    put("event", run.event.clone());
    put("workflow", run.name.clone());
    put("actor", run.actor.as_ref().and_then(|a| a.login.clone()));
    put("head_branch", run.head_branch.clone());
    put("run_url", run.html_url.clone());
    put(
        "verified_by",
        Some("GitHub API (the GitHub connector)".to_owned()),
    );
    if let Some(artifact) = artifact {
        put("artifact_id", Some(artifact.id.to_string()));
        put("artifact_name", Some(artifact.name.clone()));
    }
    claims
}

/// Streams the artifact's download to `path`, within `limit` bytes.
pub(super) async fn download(api: &GithubApi<'_>, path: &str, to: &Path, limit: u64) -> Result<(), Refusal> {
    let mut response = api.get(path).await?;
    let write_failed = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot write the GitHub artifact");
        store_failure()
    };
    let mut file = tokio::fs::File::create(to).await.map_err(write_failed)?;
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| api.unreachable(&e))? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(write_failed)?;
    }
    file.sync_all().await.map_err(write_failed)
}
