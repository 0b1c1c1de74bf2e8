//! The signing policies a token may use: SignPath's `Cryptoki/MySigningPolicies`, and the check that a token is a
//! submitter of the policy a request names.

use common::protocol::MySigningPolicies;

use super::outcome::Answer;
use super::refusal::{refuse, Reason, Refusal};
use super::state::Policy;
use super::Core;

impl Core {
    /// The policies this token submits to, filtered by `ProjectSlug` and `SigningPolicySlug` when given.
    pub fn my_signing_policies(
        &self,
        token_id: &str,
        project: Option<&str>,
        policy: Option<&str>,
    ) -> Result<Answer, Refusal> {
        let list: Vec<_> = self
            .state
            .policies
            .iter()
            .filter(|p| p.submitters.contains(token_id))
            .filter(|p| project.is_none_or(|s| s.eq_ignore_ascii_case(&p.project)))
            .filter(|p| policy.is_none_or(|s| s.eq_ignore_ascii_case(&p.slug)))
            .map(|p| p.info.clone())
            .collect();
        Answer::json(&MySigningPolicies {
            signing_policies: list,
        })
    }

    /// The (project, slug) of the policy SignPath's `SigningPolicyId` names (the `id` in gateway.toml).
    pub fn policy_named_by_id(&self, id: &str) -> Result<(String, String), Refusal> {
        self.state
            .policies
            .iter()
            .find(|p| p.info.signing_policy_id.eq_ignore_ascii_case(id.trim()))
            .map(|p| (p.project.clone(), p.slug.clone()))
            .ok_or_else(|| {
                refuse(
                    Reason::UnknownPolicy,
                    format!("there is no signing policy with the id {id:?}"),
                )
            })
    }

    /// The policy `project/policy`, if this token is one of its submitters and its certificate is not revoked.
    pub fn authorize(&self, token_id: &str, project: &str, policy: &str) -> Result<&Policy, Refusal> {
        let found = self
            .state
            .policies
            .iter()
            .find(|p| p.project.eq_ignore_ascii_case(project) && p.slug.eq_ignore_ascii_case(policy))
            .ok_or_else(|| {
                refuse(
                    Reason::UnknownPolicy,
                    format!("there is no signing policy {project}/{policy}"),
                )
            })?;
        if !found.submitters.contains(token_id) {
            return Err(refuse(
                Reason::TokenNotAllowed,
                format!(
                    "this token is not a submitter of {project}/{policy}; ask an administrator to add it"
                ),
            ));
        }
        let file = self.state.revocations_file.as_deref();
        if let Some(revoked) = self.revoked_certificates.revocation_of(file, &found.issued) {
            let reason = revoked.reason.map_or("unspecified", |r| r.name());
            return Err(refuse(Reason::CertificateRevoked, format!(
                    "{project}/{policy} signs nothing: its certificate chain holds {} (serial {}), revoked on {} \
                     (reason {reason}); an administrator gives the policy a new key and certificate with \
                     `signpath-gateway policy rotate`",
                    revoked.subject, revoked.serial, revoked.revoked_at
                ),
            ));
        }
        Ok(found)
    }
}
