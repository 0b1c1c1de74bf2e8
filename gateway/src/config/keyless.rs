//! `[keyless]`: the gateway as a Fulcio-compatible certificate authority (docs/keyless.md). A CI job (or a person)
//! sends an OIDC identity token, a public key and a proof that it holds the key; the gateway answers a code-signing
//! certificate valid for ten minutes, issued by the keyless intermediate whose key is in the HSM. Which tokens may
//! get one is said here, by rules over the token's verified claims; the rules between these values and the rest of
//! gateway.toml are checked in `validate.rs`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// A person must approve first: certificates are not issued for this rule's tokens (docs/keyless.md says why a
    /// certificate request is not held for approval), so that a rule can be kept but closed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}
