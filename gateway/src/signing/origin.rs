//! Origin verification: a request to a policy with `origin` must carry an OIDC identity token of a trusted CI
//! (GitHub Actions, GitLab, ...), signed by one of the issuer's keys (JWKS from a file or a URL), for our audience,
//! unexpired, whose claims meet the policy's conditions. The verified claims go into the audit record.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::Value;

use crate::config::{resolve, IssuerConfig, OriginConfig};

/// Claims copied into the audit record when present (GitHub and GitLab names).
const AUDITED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "repository",
    "project_path",
    "ref",
    "ref_type",
    "sha",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "environment",
    "pipeline_source",
    "run_id",
    "pipeline_id",
    "actor",
    "user_login",
];

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("this signing policy requires an identity token of {issuer}; send the CI's OIDC token (SIGNPATH_ID_TOKEN)")]
    Missing { issuer: String },
    #[error("the identity token is not valid: {0}")]
    Invalid(String),
    #[error("the identity token's claim {claim} is {actual:?}; this signing policy requires {expected:?}")]
    Condition {
        claim: String,
        expected: String,
        actual: String,
    },
    #[error("the gateway cannot check identity tokens of {issuer}: {reason}")]
    Keys { issuer: String, reason: String },
}

struct Issuer {
    config: IssuerConfig,
    keys: RwLock<JwkSet>,
}

/// The trusted issuers and their keys.
pub struct Origins {
    issuers: BTreeMap<String, Issuer>,
}

impl std::fmt::Debug for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.issuers.keys()).finish()
    }
}

fn fetch_jwks(url: &str) -> Result<JwkSet, String> {
    let client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(url).send().map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response.json().map_err(|e| format!("{url} is not a JWKS: {e}"))
}

fn load_keys(base: &Path, config: &IssuerConfig) -> Result<JwkSet, String> {
    match (&config.jwks_file, &config.jwks_url) {
        (Some(file), _) => {
            let path = resolve(base, file);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{} is not a JWKS: {e}", path.display()))
        }
        (None, Some(url)) => fetch_jwks(url),
        (None, None) => Err("set jwks_file or jwks_url".into()),
    }
}

impl Origins {
    pub fn load(base: &Path, configs: &[IssuerConfig]) -> Result<Self, String> {
        let mut issuers = BTreeMap::new();
        for c in configs {
            let keys = load_keys(base, c).map_err(|e| format!("trusted issuer {}: {e}", c.name))?;
            issuers.insert(
                c.name.clone(),
                Issuer {
                    config: c.clone(),
                    keys: RwLock::new(keys),
                },
            );
        }
        Ok(Self { issuers })
    }

    pub fn knows(&self, name: &str) -> bool {
        self.issuers.contains_key(name)
    }

    /// Verifies `token` for a policy's origin rule; the audited claims as JSON.
    pub fn verify(&self, rule: &OriginConfig, token: Option<&str>) -> Result<String, OriginError> {
        let issuer = self.issuers.get(&rule.issuer).ok_or_else(|| OriginError::Keys {
            issuer: rule.issuer.clone(),
            reason: "it is not among the trusted issuers".into(),
        })?;
        let token = token.ok_or_else(|| OriginError::Missing {
            issuer: issuer.config.issuer.clone(),
        })?;
        let header = decode_header(token).map_err(|e| OriginError::Invalid(e.to_string()))?;
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| OriginError::Invalid("its header names no key (kid)".into()))?;
        let key = {
            let find = |set: &JwkSet| set.find(&kid).map(DecodingKey::from_jwk);
            let found = find(&issuer.keys.read().unwrap_or_else(|p| p.into_inner()));
            match found {
                Some(k) => k,
                // An unknown key id: the issuer may have rotated its keys; fetch them again once.
                None => match &issuer.config.jwks_url {
                    Some(url) => {
                        let fresh = fetch_jwks(url).map_err(|reason| OriginError::Keys {
                            issuer: issuer.config.issuer.clone(),
                            reason,
                        })?;
                        let k = find(&fresh);
                        *issuer.keys.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                        k.ok_or_else(|| OriginError::Invalid(format!("the issuer has no key {kid}")))?
                    }
                    None => return Err(OriginError::Invalid(format!("the issuer has no key {kid}"))),
                },
            }
        }
        .map_err(|e| OriginError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let claims = decode::<BTreeMap<String, Value>>(token, &key, &validation)
            .map_err(|e| OriginError::Invalid(e.to_string()))?
            .claims;
        for (claim, expected) in &rule.conditions {
            let actual = match claims.get(claim) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let ok = match expected.strip_suffix('*') {
                Some(prefix) => actual.starts_with(prefix),
                None => actual == *expected,
            };
            if !ok {
                return Err(OriginError::Condition {
                    claim: claim.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let audited: BTreeMap<&str, &Value> = AUDITED_CLAIMS
            .iter()
            .filter_map(|c| claims.get(*c).map(|v| (*c, v)))
            .collect();
        Ok(serde_json::to_string(&audited).unwrap_or_default())
    }
}
