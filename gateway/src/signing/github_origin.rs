//! A GitHub workflow run the gateway verified through GitHub's API (`github_artifact`) as origin evidence: the
//! claims it stands for, and a policy's origin rule checked against them with the rule's one matcher
//! (`origin::glob_matches`). Used at submission and again when a request is resubmitted to another policy.

use std::collections::BTreeMap;

use super::refusal::{refuse, Reason, Refusal};
use super::state::State;
use crate::config::OriginConfig;

/// The claims of a verified run an origin rule may name: what GitHub's API says of a workflow run. `ref` is not
/// among them: the run's `head_branch` names a branch or a tag alike, so a rule on `ref` needs the identity token.
pub const RUN_CLAIMS: &[&str] = &[
    "repository",
    "repository_id",
    "repository_owner_id",
    "run_id",
    "run_attempt",
    "sha",
    "event",
    "workflow",
    "actor",
];

/// Checks a verified run against a policy's origin rule: the rule's issuer must speak for repositories on GitHub's
/// host, and each condition must name one of [`RUN_CLAIMS`] and match it (`origin::glob_matches`, the rule's one
/// matcher). The audited claims as JSON.
pub(super) fn meet_rule(
    state: &State,
    rule: &OriginConfig,
    run: &BTreeMap<String, String>,
) -> Result<String, Refusal> {
    let rejected = |detail: String| refuse(Reason::OriginRejected, detail);
    let github_host = state
        .github
        .as_ref()
        .map(|g| g.repository_host.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let issuer_host = state.origins.repository_host(rule).unwrap_or_default();
    if github_host.is_empty() || !issuer_host.eq_ignore_ascii_case(&github_host) {
        return Err(rejected(format!(
            "this signing policy verifies origin with the trusted issuer {:?}, whose repositories are on {issuer_host:?}; \
             the GitHub connector verifies workflow runs of {github_host:?}",
            rule.issuer
        )));
    }
    for (claim, expected) in &rule.conditions {
        if !RUN_CLAIMS.contains(&claim.as_str()) {
            return Err(rejected(format!(
                "this signing policy's origin rule names the claim {claim}, which GitHub's API does not tell of a \
                 workflow run; the GitHub connector verifies {}. Sign through the identity-token route \
                 (SIGNPATH_ID_TOKEN) for this policy",
                RUN_CLAIMS.join(", ")
            )));
        }
        let actual = run.get(claim).map(String::as_str).unwrap_or_default();
        if !super::origin::glob_matches(expected, actual) {
            return Err(rejected(format!(
                "the workflow run's {claim} is {actual:?}; this signing policy requires {expected:?}"
            )));
        }
    }
    Ok(audited(run))
}

/// A verified run as the audit record keeps it.
pub(super) fn audited(run: &BTreeMap<String, String>) -> String {
    serde_json::to_string(run).unwrap_or_default()
}
