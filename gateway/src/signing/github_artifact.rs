//! SignPath's GitHub connector, the core of it: SignPath's GitHub Action never uploads a file; it names a GitHub
//! artifact, the workflow run that made it and the repository, with a GitHub token. The gateway reads the run from
//! GitHub's REST API (`GET /repos/{owner}/{repo}/actions/runs/{run_id}`: it must be a run of that repository) and
//! the artifact's record (it must come from that run), checks the run against the policy's origin rule, downloads
//! the artifact (a ZIP, as `actions/upload-artifact` makes it, or the file itself when uploaded with
//! `archive: false`) into the request's directory, and hands it to the file-based path (`artifacts`) like an
//! upload. The signed artifact goes back in a ZIP when it came in one (`artifact_zip`). GitHub's API itself is in
//! `github_api`.
//!
//! The GitHub token is used for these calls only: it is never stored, logged or audited, and GitHub's own redirect
//! of the download to its storage drops it (a redirect to another host never carries `Authorization`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::artifact_zip::{too_large, unpack};
use super::github_api::{download, run_claims, Artifact, GithubApi, WorkflowRun};
use super::github_origin::meet_rule;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::{ArtifactSubmission, Core};
use crate::config::GithubConfig;

/// A secret from the request body (the GitHub token, v1's API token): never shown by `Debug`.
#[derive(Clone, Deserialize)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A user-defined parameter as the action sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

/// The body SignPath's GitHub Action posts: v2 to `{connector}/{organizationId}/SigningRequests`, v1 to
/// `{connector}/api/sign` with the API token and the organization in the body instead of the header and the path.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorRequest {
    #[serde(deserialize_with = "text")]
    pub artifact_id: String,
    #[serde(deserialize_with = "text")]
    pub git_hub_workflow_run_id: String,
    pub git_hub_repository: String,
    pub git_hub_token: Secret,
    pub sign_path_project_slug: String,
    pub sign_path_signing_policy_slug: String,
    #[serde(default)]
    pub sign_path_artifact_configuration_slug: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// v1 only.
    #[serde(default)]
    pub sign_path_api_token: Option<Secret>,
    /// v1 only.
    #[serde(default)]
    pub sign_path_organization_id: Option<String>,
}

/// An id the action sends as a string (`GITHUB_RUN_ID`, the artifact id input) or a client sends as a number.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

impl ConnectorRequest {
    /// Parses the action's JSON body, in SignPath's terms when it is not one.
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        serde_json::from_slice(body).map_err(|e| {
            refuse(
                Reason::MalformedRequest,
                format!("the body is not the GitHub connector's signing request: {e}"),
            )
        })
    }

    fn artifact_configuration(&self) -> Option<&str> {
        self.sign_path_artifact_configuration_slug
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The repository, run and artifact a request names, checked to be what GitHub's API paths can carry.
struct Target {
    repository: String,
    run_id: u64,
    artifact_id: u64,
}

impl Target {
    fn of(request: &ConnectorRequest) -> Result<Self, Refusal> {
        let bad = |detail: String| refuse(Reason::MalformedRequest, detail);
        let repository = request.git_hub_repository.trim();
        let well_formed = repository.split_once('/').is_some_and(|(owner, name)| {
            [owner, name].iter().all(|part| {
                !part.is_empty()
                    && *part != "."
                    && *part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        });
        if !well_formed {
            return Err(bad(format!(
                "gitHubRepository {repository:?} is not owner/repository (GITHUB_REPOSITORY)"
            )));
        }
        let number = |name: &str, value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("{name} {value:?} is not a GitHub id (a number)")))
        };
        Ok(Self {
            repository: repository.to_owned(),
            run_id: number("gitHubWorkflowRunId", &request.git_hub_workflow_run_id)?,
            artifact_id: number("artifactId", &request.artifact_id)?,
        })
    }
}

impl Core {
    /// The GitHub connector's submission: checks the token's rights, the run and the artifact with GitHub's API,
    /// and downloads the artifact into the directory of request `request_id`. The result goes to
    /// [`Core::submit_artifact`] like an upload. On any failure the request's directory is removed.
    pub async fn fetch_github_artifact(
        &self,
        token_id: &str,
        request: &ConnectorRequest,
        request_id: &str,
    ) -> Result<ArtifactSubmission, Refusal> {
        let result = self.fetch(token_id, request, request_id).await;
        if result.is_err() {
            self.state.artifacts.discard(request_id);
        }
        result
    }

    async fn fetch(
        &self,
        token_id: &str,
        request: &ConnectorRequest,
        request_id: &str,
    ) -> Result<ArtifactSubmission, Refusal> {
        let github = self.state.github.as_ref().ok_or_else(|| {
            refuse(
                Reason::GithubConnectorOff,
                "this gateway does not serve SignPath's GitHub connector: its gateway.toml has no [github] section",
            )
        })?;
        let target = Target::of(request)?;
        let (project, policy) = (
            request.sign_path_project_slug.as_str(),
            request.sign_path_signing_policy_slug.as_str(),
        );
        self.authorize_upload(token_id, project, policy, request.artifact_configuration())?;
        let api = GithubApi::new(github, request.git_hub_token.expose())?;
        let repository = &target.repository;
        let run: WorkflowRun = api
            .json(&format!("/repos/{repository}/actions/runs/{}", target.run_id))
            .await?;
        if run.id != target.run_id || !run.repository.full_name.eq_ignore_ascii_case(repository) {
            return Err(refuse(
                Reason::OriginRejected,
                format!(
                    "GitHub says workflow run {} belongs to {}, not to {repository}",
                    target.run_id, run.repository.full_name
                ),
            ));
        }
        if let Some(rule) = &self.authorize(token_id, project, policy)?.origin {
            meet_rule(&self.state, rule, &run_claims(&run, None))?;
        }
        let artifact: Artifact = api
            .json(&format!(
                "/repos/{repository}/actions/artifacts/{}",
                target.artifact_id
            ))
            .await?;
        let from_run = artifact.workflow_run.as_ref().and_then(|r| r.id);
        if from_run != Some(target.run_id) {
            return Err(refuse(
                Reason::OriginRejected,
                format!(
                    "GitHub says artifact {} was made by workflow run {}, not by run {}",
                    target.artifact_id,
                    from_run.map_or_else(|| "(none)".to_owned(), |id| id.to_string()),
                    target.run_id
                ),
            ));
        }
        let store = &self.state.artifacts;
        if artifact.expired {
            return Err(refuse(
                Reason::ArtifactDeleted,
                format!("GitHub artifact {} ({}) has expired", artifact.id, artifact.name),
            ));
        }
        if artifact.size_in_bytes > store.max_size {
            return Err(too_large(store.max_size));
        }
        store.create(request_id).map_err(|e| {
            tracing::error!(error = %e, "cannot create the artifact directory");
            store_failure()
        })?;
        let received = store.received(request_id);
        download(
            &api,
            &format!("/repos/{repository}/actions/artifacts/{}/zip", target.artifact_id),
            &received,
            store.max_size,
        )
        .await?;
        let unsigned = store.unsigned(request_id);
        let max_size = store.max_size;
        let name = artifact.name.clone();
        let unpacked = tokio::task::spawn_blocking(move || unpack(&received, &unsigned, &name, max_size))
            .await
            .map_err(|_| refuse(Reason::Internal, "unpacking the artifact failed"))??;
        let run_claims = run_claims(&run, Some(&artifact));
        Ok(ArtifactSubmission {
            project: project.to_owned(),
            policy: policy.to_owned(),
            artifact_configuration: request.artifact_configuration().map(str::to_owned),
            description: Some(format!(
                "GitHub artifact {} of {repository}, workflow run {}",
                artifact.name, run.id
            )),
            parameters: request
                .parameters
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect(),
            origin: signpath_origin(github, &run),
            file_name: unpacked.file_name,
            size: unpacked.size,
            sha256: unpacked.sha256,
            archive: unpacked.archive,
            github_run: Some(run_claims),
            ..ArtifactSubmission::default()
        })
    }
}

/// The run as SignPath's `origin` of a signing request names it (`RepositoryData.*`, `BuildData.Url`).
fn signpath_origin(github: &GithubConfig, run: &WorkflowRun) -> BTreeMap<String, String> {
    let mut origin = BTreeMap::new();
    origin.insert(
        "RepositoryData.Url".to_owned(),
        format!(
            "https://{}/{}",
            github.repository_host.trim(),
            run.repository.full_name
        ),
    );
    origin.insert(
        "RepositoryData.SourceControlManagementType".to_owned(),
        "git".to_owned(),
    );
    origin.insert("RepositoryData.CommitId".to_owned(), run.head_sha.clone());
    if let Some(branch) = &run.head_branch {
        origin.insert("RepositoryData.BranchName".to_owned(), branch.clone());
    }
    if let Some(url) = &run.html_url {
        origin.insert("BuildData.Url".to_owned(), url.clone());
    }
    origin
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
mod tests {
    use super::*;

    #[test]
    fn the_actions_body_parses_and_its_token_is_never_shown() {
        let body = br#"{"artifactId":"42","gitHubWorkflowRunId":"7","gitHubRepository":"acme/app",
            "gitHubToken":"ghs_secret","signPathProjectSlug":"demo","signPathSigningPolicySlug":"ec-256",
            "signPathArtifactConfigurationSlug":"","parameters":[{"name":"ImageReference","value":"r/a:1"}]}"#;
        let request = ConnectorRequest::parse(body).unwrap();
        assert_eq!(request.artifact_configuration(), None);
        let target = Target::of(&request).unwrap();
        assert_eq!((target.run_id, target.artifact_id), (7, 42));
        assert!(!format!("{request:?}").contains("ghs_secret"));
        let missing = ConnectorRequest::parse(br#"{"artifactId":"1"}"#).unwrap_err();
        assert!(missing.detail.contains("missing field"), "{}", missing.detail);
    }

    #[test]
    fn a_repository_that_is_not_owner_slash_name_is_refused_before_any_call() {
        for repository in [
            "acme",
            "acme/app/x",
            "../app",
            "acme/..",
            "acme/a pp",
            "acme/app?x=1",
        ] {
            let body = serde_json::json!({"artifactId": "1", "gitHubWorkflowRunId": "2",
                "gitHubRepository": repository, "gitHubToken": "t", "signPathProjectSlug": "p",
                "signPathSigningPolicySlug": "s"});
            let request = ConnectorRequest::parse(body.to_string().as_bytes()).unwrap();
            let refusal = Target::of(&request).err().unwrap();
            assert_eq!(refusal.reason, Reason::MalformedRequest, "{repository}");
        }
    }
}
