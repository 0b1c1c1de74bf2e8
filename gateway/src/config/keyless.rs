//! `[keyless]`: the gateway as a Fulcio-compatible certificate authority (docs/keyless.md). A CI job (or a person)
//! sends an OIDC identity token, a public key and a proof that it holds the key; the gateway answers a code-signing
//! certificate valid for ten minutes, issued by the keyless intermediate whose key is in the HSM. Which tokens may
//! get one is said here, by rules over the token's verified claims; the rules between these values and the rest of
//! gateway.toml are checked in `validate.rs`. A rule with `approval` names approvers, as a policy's `[approval]`
//! does: a CI run it admits gets certificates once they approved the run, through the same held requests and votes
//! as a policy's signing requests (project [`KEYLESS_PROJECT`], policy the rule's issuer).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::ApprovalConfig;

/// The project of the held requests of keyless CI runs (their policy is the rule's issuer name), so that votes,
/// the approvers' page and `pending` treat them as a policy's requests. No `[[projects]]` may take this slug.
pub const KEYLESS_PROJECT: &str = "keyless";

/// `[keyless]`: the keyless intermediate and who may get a certificate from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeylessConfig {
    /// CKA_LABEL of the keyless intermediate's private key in the HSM.
    pub key_label: String,
    /// PEM files: the keyless intermediate's certificate, then its CA certificates up to the organization's root.
    pub certificate_chain: Vec<PathBuf>,
    /// Who may get a certificate: a token passes if one rule matches it; without rules, none does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<KeylessRule>,
}

/// One rule: tokens of `issuer` whose claims match every list that is given (each list: any one of its patterns,
/// matched as origin conditions are, by whole `/`-separated segments: `acme/*`, `refs/tags/*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeylessRule {
    /// The [`super::IssuerConfig`] name (`[[trusted_issuers]]`) whose tokens this rule admits.
    pub issuer: String,
    /// The repository (`repository` on GitHub, `project_path` on GitLab); at least one.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// The git ref (`ref`: `refs/heads/main`, `refs/tags/*`); any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// The workflow that runs (`job_workflow_ref` on GitHub, `ci_config_ref_uri` on GitLab); any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<String>,
    /// A person approves each CI run first (`approval = { approvers = ["alice"], required = 1 }`, k of n as a
    /// policy's): the run's first certificate request is held, and the run gets certificates once approved.
    /// `approval = false` is no approval; `approval = true`, which named no approvers, is refused.
    #[serde(
        default,
        deserialize_with = "approval",
        skip_serializing_if = "Option::is_none"
    )]
    pub approval: Option<ApprovalConfig>,
}

impl KeylessConfig {
    /// The approval of the runs of `issuer`'s rules (the policy of their held requests): the approval its rules
    /// name (`validate.rs` makes the rules of one issuer name the same one). None if none of them asks for one.
    pub fn approval(&self, issuer: &str) -> Option<&ApprovalConfig> {
        rule_approval(&self.rules, issuer)
    }
}

/// [`KeylessConfig::approval`] over the rules alone, for the signing core, which keeps only the rules.
pub fn rule_approval<'r>(rules: &'r [KeylessRule], issuer: &str) -> Option<&'r ApprovalConfig> {
    rules
        .iter()
        .filter(|rule| rule.issuer == issuer)
        .find_map(|rule| rule.approval.as_ref())
}

/// `approval = false`, or the approvers' table; `approval = true` named no one, so it is refused with what to write.
fn approval<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ApprovalConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Approval {
        Flag(bool),
        Approvers(ApprovalConfig),
    }
    match Approval::deserialize(deserializer) {
        Ok(Approval::Flag(false)) => Ok(None),
        Ok(Approval::Flag(true)) => Err(serde::de::Error::custom(
            "approval = true names no approvers: name who approves a CI run, as a policy's approval does \
             (approval = { approvers = [\"alice\"], required = 1 })",
        )),
        Ok(Approval::Approvers(approval)) => Ok(Some(approval)),
        Err(_) => Err(serde::de::Error::custom(
            "approval is false or a table of approvers and required \
             (approval = { approvers = [\"alice\"], required = 1 })",
        )),
    }
}
