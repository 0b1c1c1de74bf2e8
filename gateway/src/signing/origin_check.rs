//! The origin check every signing path runs (`SignHash`, fast signing through it, and file-based requests):
//! where a policy verifies origin, the request's identity token is verified against the policy's rule, its
//! verified claims go into the audit record, and the request's CI identity decides which release-group approval
//! may cover it. One function, so the paths cannot drift apart: the file-based path used to refuse a missing token
//! without naming the audience to fetch one for, which the hash path named. An artifact the GitHub connector
//! fetched brings a workflow run it verified with GitHub's API instead of a token (`github_origin.rs`).

use std::collections::BTreeMap;

use super::github_origin;
use super::origin::OriginError;
use super::refusal::{refuse, Reason, Refusal};
use super::state::Policy;
use super::Core;
use crate::config::{OriginConfig, REPOSITORY_CLAIMS};
use crate::store::Record;

impl Core {
    /// The CI identity of a request to `policy` that verifies origin (None where the policy does not), after its
    /// identity token, or the GitHub workflow run the connector verified (`github_run`), passed the policy's rule;
    /// the verified claims are recorded (a verified run's also where the policy asks for none).
    pub(super) fn check_origin(
        &self,
        policy: &Policy,
        origin_token: Option<&str>,
        github_run: Option<&BTreeMap<String, String>>,
        record: &mut Record,
    ) -> Result<Option<String>, Refusal> {
        let Some(rule) = &policy.origin else {
            record.origin = github_run.map(github_origin::audited);
            return Ok(None);
        };
        let verified = match github_run {
            Some(run) => github_origin::meet_rule(&self.state, rule, run)?,
            None => self
                .state
                .origins
                .verify(rule, origin_token)
                .map_err(origin_refusal)?,
        };
        let identity = ci_identity(rule, &verified);
        record.origin = Some(verified);
        Ok(Some(identity))
    }
}

/// An identity token that did not pass, in the caller's terms. A missing one names the audience the token must be
/// issued for, so a client on a CI that mints tokens on request (GitHub Actions) can fetch one and retry.
fn origin_refusal(error: OriginError) -> Refusal {
    let audience = match &error {
        OriginError::Missing { audience, .. } => Some(audience.clone()),
        _ => None,
    };
    Refusal {
        identity_token_audience: audience,
        ..refuse(Reason::OriginRejected, error.to_string())
    }
}

/// The claims that name where a request came from: the repository (by name and, where the CI has one, by its
/// immutable id) and every claim the policy's rule checks (ref, workflow, ...). A release group's approval covers
/// only requests with the same identity, so an approval for one pipeline is not a pass for another.
fn ci_identity(rule: &OriginConfig, verified_claims: &str) -> String {
    let claims: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(verified_claims).unwrap_or_default();
    let identity: std::collections::BTreeMap<&str, &serde_json::Value> = claims
        .iter()
        .filter(|(name, _)| REPOSITORY_CLAIMS.contains(&name.as_str()) || rule.conditions.contains_key(*name))
        .map(|(name, value)| (name.as_str(), value))
        .collect();
    serde_json::to_string(&identity).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_token_is_refused_naming_the_audience_and_an_invalid_one_is_not() {
        let missing = origin_refusal(OriginError::Missing {
            issuer: "github".into(),
            audience: "https://gw.example".into(),
        });
        assert_eq!(missing.reason, Reason::OriginRejected);
        assert_eq!(
            missing.identity_token_audience.as_deref(),
            Some("https://gw.example")
        );
        let invalid = origin_refusal(OriginError::Invalid("expired".into()));
        assert_eq!(invalid.reason, Reason::OriginRejected);
        assert_eq!(invalid.identity_token_audience, None);
    }

    #[test]
    fn the_ci_identity_is_the_repository_and_the_claims_the_rule_checks() {
        let rule: OriginConfig = serde_json::from_value(serde_json::json!({
            "issuer": "github",
            "conditions": {"repository": "acme/app", "ref": "refs/tags/*"},
        }))
        .unwrap();
        let claims = r#"{"iss":"https://token.actions.githubusercontent.com","repository":"acme/app","repository_id":"42","ref":"refs/tags/v1","run_id":"7","project_id":"9"}"#;
        assert_eq!(
            ci_identity(&rule, claims),
            r#"{"project_id":"9","ref":"refs/tags/v1","repository":"acme/app","repository_id":"42"}"#
        );
    }
}
