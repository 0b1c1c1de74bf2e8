//! Origin verification: a request to a policy with `origin` must carry an OIDC identity token of a trusted CI
//! (GitHub Actions, GitLab, ...), signed by one of the issuer's keys (JWKS from a file or a URL), for our audience,
//! unexpired, whose claims meet the policy's conditions. The verified claims go into the audit record.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::Value;

use crate::config::{resolve, IssuerConfig, OriginConfig};

/// Claims copied into the audit record when present (GitHub and GitLab names).
const AUDITED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "repository",
    "repository_id",
    "repository_owner_id",
    "project_path",
    "project_id",
    "namespace_id",
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
    #[error("this signing policy requires an identity token of {issuer} for the audience {audience:?}; send the CI's OIDC token (SIGNPATH_ID_TOKEN)")]
    Missing { issuer: String, audience: String },
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
    #[error("identity tokens of {iss} are not admitted here: no rule names a trusted issuer with that iss")]
    NotAdmitted { iss: String },
}

/// An issuer's keys are fetched again at most this often, however many unknown key ids arrive.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// An unknown key id is refused without a fetch for this long.
const UNKNOWN_KID_MEMORY: Duration = Duration::from_secs(600);
/// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
const LEEWAY: u64 = 30;

struct Issuer {
    config: IssuerConfig,
    /// The `aud` its tokens must carry: the configured one, else the gateway's URL.
    audience: String,
    /// The host of its repositories, for `Origin.RepositoryData.Url` (see [`IssuerConfig::repository_host`]).
    repository_host: String,
    keys: RwLock<JwkSet>,
    /// When the keys were last fetched from `jwks_url`, and the key ids that were not among them.
    fetches: Mutex<Fetches>,
}

#[derive(Default)]
struct Fetches {
    last: Option<Instant>,
    unknown: HashMap<String, Instant>,
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
        // `GatewayConfig::load` refused an issuer without either, and a jwks_url that is not https.
        (None, Some(url)) => fetch_jwks(url),
        (None, None) => Err("it has neither jwks_file nor jwks_url".into()),
    }
}

impl Origins {
    /// The issuers of `configs` with their keys; an issuer without `audience` verifies tokens for the gateway's
    /// URL, `public_url`, in the form clients fetch them for.
    pub fn load(base: &Path, configs: &[IssuerConfig], public_url: &str) -> Result<Self, String> {
        let mut issuers = BTreeMap::new();
        for c in configs {
            let keys = load_keys(base, c).map_err(|e| format!("trusted issuer {}: {e}", c.name))?;
            issuers.insert(
                c.name.clone(),
                Issuer {
                    audience: c.audience_or(public_url),
                    repository_host: c.repository_host(),
                    config: c.clone(),
                    keys: RwLock::new(keys),
                    fetches: Mutex::new(Fetches {
                        last: c.jwks_url.as_ref().map(|_| Instant::now()),
                        unknown: HashMap::new(),
                    }),
                },
            );
        }
        Ok(Self { issuers })
    }

    /// The host of the repositories whose tokens the rule's issuer mints (`github.com` for GitHub Actions).
    pub fn repository_host(&self, rule: &OriginConfig) -> Option<&str> {
        self.issuers
            .get(&rule.issuer)
            .map(|issuer| issuer.repository_host.as_str())
    }

    /// The `iss` and the audience of the trusted issuer `name`, as clients must mint its tokens.
    pub fn issuer_and_audience(&self, name: &str) -> Option<(&str, &str)> {
        self.issuers
            .get(name)
            .map(|i| (i.config.issuer.as_str(), i.audience.as_str()))
    }

    /// Verifies `token` for a policy's origin rule; the audited claims as JSON.
    pub fn verify(&self, rule: &OriginConfig, token: Option<&str>) -> Result<String, OriginError> {
        let issuer = self.issuers.get(&rule.issuer).ok_or_else(|| OriginError::Keys {
            issuer: rule.issuer.clone(),
            reason: "it is not among the trusted issuers".into(),
        })?;
        let token = token.ok_or_else(|| OriginError::Missing {
            issuer: issuer.config.issuer.clone(),
            audience: issuer.audience.clone(),
        })?;
        let claims = issuer.verified_claims(token)?;
        for (claim, expected) in &rule.conditions {
            let actual = claim_text(&claims, claim).unwrap_or_default();
            if !glob_matches(expected, &actual) {
                return Err(OriginError::Condition {
                    claim: claim.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(audited(&claims))
    }

    /// Verifies `token` as a token of the trusted issuer among `names` whose `iss` it names (the keyless CA's
    /// rules name several): its signature, audience and times, as [`Origins::verify`] checks them. Which issuer
    /// is read from the token before it is verified, only to pick the keys that verify it.
    pub fn verify_any(&self, names: &[&str], token: &str) -> Result<VerifiedToken, OriginError> {
        let iss = unverified_issuer(token)?;
        let (name, issuer) = names
            .iter()
            .filter_map(|name| self.issuers.get_key_value(*name))
            .find(|(_, issuer)| issuer.config.issuer == iss)
            .ok_or(OriginError::NotAdmitted { iss })?;
        let claims = issuer.verified_claims(token)?;
        Ok(VerifiedToken {
            issuer_name: name.clone(),
            repository_host: issuer.repository_host.clone(),
            claims,
        })
    }
}

/// An identity token that passed: the trusted issuer that verified it and its claims.
#[derive(Debug)]
pub struct VerifiedToken {
    /// The [`IssuerConfig`] name.
    pub issuer_name: String,
    /// The host of the issuer's repositories (`github.com` for GitHub Actions).
    pub repository_host: String,
    pub claims: BTreeMap<String, Value>,
}

impl VerifiedToken {
    /// The claim as text: a string as it is, another value as JSON; None when absent.
    pub fn claim(&self, name: &str) -> Option<String> {
        claim_text(&self.claims, name)
    }

    /// The claims the audit record keeps, as JSON.
    pub fn audited(&self) -> String {
        audited(&self.claims)
    }
}

fn claim_text(claims: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The claims of [`AUDITED_CLAIMS`] present in `claims`, as JSON.
fn audited(claims: &BTreeMap<String, Value>) -> String {
    let audited: BTreeMap<&str, &Value> = AUDITED_CLAIMS
        .iter()
        .filter_map(|c| claims.get(*c).map(|v| (*c, v)))
        .collect();
    serde_json::to_string(&audited).unwrap_or_default()
}

/// The `iss` a token names, read without verifying it.
fn unverified_issuer(token: &str) -> Result<String, OriginError> {
    use base64::Engine as _;
    let invalid = || OriginError::Invalid("it is not a JWT (header.payload.signature)".into());
    let payload = token.split('.').nth(1).ok_or_else(invalid)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let claims: BTreeMap<String, Value> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    match claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        _ => Err(OriginError::Invalid("it names no issuer (iss)".into())),
    }
}

impl Issuer {
    /// Verifies `token` with this issuer's keys (fetched again for an unknown key id, within limits): its
    /// signature, issuer, audience and times; its claims.
    fn verified_claims(&self, token: &str) -> Result<BTreeMap<String, Value>, OriginError> {
        let header = decode_header(token).map_err(|e| OriginError::Invalid(e.to_string()))?;
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| OriginError::Invalid("its header names no key (kid)".into()))?;
        let key = {
            let find = |set: &JwkSet| set.find(&kid).map(DecodingKey::from_jwk);
            let found = find(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
            match found {
                Some(k) => k,
                // An unknown key id: the issuer may have rotated its keys; fetch them again, at most once a minute
                // and not for a key id already found missing, so a stream of made-up key ids costs no fetches.
                None => match &self.config.jwks_url {
                    Some(url) if self.may_fetch_for(&kid) => {
                        let fresh = fetch_jwks(url).map_err(|reason| OriginError::Keys {
                            issuer: self.config.issuer.clone(),
                            reason,
                        })?;
                        let k = find(&fresh);
                        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                        match k {
                            Some(k) => k,
                            None => {
                                self.remember_unknown(&kid);
                                return Err(OriginError::Invalid(format!("the issuer has no key {kid}")));
                            }
                        }
                    }
                    _ => return Err(OriginError::Invalid(format!("the issuer has no key {kid}"))),
                },
            }
        }
        .map_err(|e| OriginError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let claims = decode::<BTreeMap<String, Value>>(token, &key, &validation)
            .map_err(|e| OriginError::Invalid(e.to_string()))?
            .claims;
        check_issued_at(&claims)?;
        Ok(claims)
    }

    /// Whether an unknown `kid` may trigger a fetch now: not within a minute of the last fetch, and not for a
    /// key id the last fetches did not have.
    fn may_fetch_for(&self, kid: &str) -> bool {
        let mut fetches = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        fetches
            .unknown
            .retain(|_, since| now.duration_since(*since) < UNKNOWN_KID_MEMORY);
        if fetches.unknown.contains_key(kid)
            || fetches
                .last
                .is_some_and(|last| now.duration_since(last) < REFETCH_INTERVAL)
        {
            return false;
        }
        fetches.last = Some(now);
        true
    }

    fn remember_unknown(&self, kid: &str) {
        let mut fetches = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of made-up key ids cannot grow the table without limit (the minute limit still holds).
        if fetches.unknown.len() < 10_000 {
            fetches.unknown.insert(kid.to_owned(), Instant::now());
        }
    }
}

/// `iat` in the future (beyond the leeway) means a token minted on a wrong clock or for later: refused, as `nbf`.
fn check_issued_at(claims: &BTreeMap<String, Value>) -> Result<(), OriginError> {
    let now = jsonwebtoken::get_current_timestamp();
    match claims.get("iat").map(Value::as_f64) {
        None => Ok(()),
        Some(Some(iat)) if iat <= (now + LEEWAY) as f64 => Ok(()),
        Some(Some(_)) => Err(OriginError::Invalid(
            "the token is issued in the future (iat)".into(),
        )),
        Some(None) => Err(OriginError::Invalid("its iat is not a number".into())),
    }
}

/// Glob matching of a condition, by `/`-separated segments: a `*` segment matches exactly one segment, and a
/// trailing `/*` anything below (one segment or more); every other segment must be equal. So `acme/*` matches
/// `acme/app` and `acme/app/sub`, `refs/tags/*` every tag, and nothing matches across a partial segment
/// (`acme/app` never matches `acme/app-evil`).
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let value: Vec<&str> = value.split('/').collect();
    let trailing = pattern.len() > 1 && pattern.last() == Some(&"*");
    if trailing {
        let fixed = &pattern[..pattern.len() - 1];
        value.len() > fixed.len() && segments_match(fixed, &value[..fixed.len()])
    } else {
        pattern.len() == value.len() && segments_match(&pattern, &value)
    }
}

fn segments_match(pattern: &[&str], value: &[&str]) -> bool {
    pattern
        .iter()
        .zip(value)
        .all(|(p, v)| (*p == "*" && !v.is_empty()) || p == v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_whole_segments_only() {
        assert!(glob_matches("acme/app", "acme/app"));
        assert!(!glob_matches("acme/app", "acme/app-evil"));
        assert!(glob_matches("acme/*", "acme/app"));
        assert!(glob_matches("acme/*", "acme/app/sub"));
        assert!(!glob_matches("acme/*", "acme"));
        assert!(!glob_matches("acme/*", "acme-evil/app"));
        assert!(glob_matches("refs/tags/*", "refs/tags/v1.2.3"));
        assert!(!glob_matches("refs/tags/*", "refs/heads/main"));
        assert!(glob_matches("acme/*/app", "acme/team/app"));
        assert!(!glob_matches("acme/*/app", "acme/team/sub/app"));
    }

    #[test]
    fn an_unknown_key_id_is_fetched_for_at_most_once_a_minute() {
        let issuer = Issuer {
            config: IssuerConfig {
                name: "ci".into(),
                issuer: "https://ci.example".into(),
                audience: Some("gw".into()),
                repository_host: None,
                jwks_file: None,
                jwks_url: Some("https://ci.example/jwks".into()),
            },
            audience: "gw".into(),
            repository_host: "ci.example".into(),
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
            fetches: Mutex::new(Fetches::default()),
        };
        assert!(issuer.may_fetch_for("k1"), "the first unknown kid may fetch");
        issuer.remember_unknown("k1");
        assert!(
            !issuer.may_fetch_for("k2"),
            "a second one within the minute may not"
        );
        assert!(!issuer.may_fetch_for("k1"));
        issuer.fetches.lock().expect("lock").last = Some(Instant::now() - REFETCH_INTERVAL);
        assert!(
            !issuer.may_fetch_for("k1"),
            "a remembered unknown kid never fetches"
        );
        assert!(issuer.may_fetch_for("k2"), "a new kid after a minute may");
    }

    #[test]
    fn a_future_iat_is_refused() {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |iat: u64| BTreeMap::from([("iat".to_owned(), Value::from(iat))]);
        assert!(check_issued_at(&claims(now)).is_ok());
        assert!(check_issued_at(&claims(now + 10)).is_ok(), "within the leeway");
        assert!(check_issued_at(&claims(now + 365 * 86_400)).is_err());
    }
}
