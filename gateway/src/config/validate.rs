//! The rules of gateway.toml that its types cannot state, checked in one pass after the parse (as ripgrep turns its
//! low-level arguments into high-level ones once): an approval's k of n and the approvers it names, the trusted
//! issuer an origin rule names and whether the rule binds a repository, a policy's certificate chain and hash
//! algorithms, an artifact configuration's signing scheme, a trusted issuer's JWKS source, the GitHub connector's
//! API, and the keyless CA's rules (`[keyless]`).
//!
//! `GatewayConfig::load` applies them, and `serve`, the reload and every command that only reads the file call it;
//! `doctor` reports every finding of the same pass ([`findings`]) with the same words, so it cannot pass a
//! configuration `serve` refuses. Files, the HSM and the network are checked where they are used, not here.
//! Owns these rules only; it must never import `signing/`, `http/` or `store/`.

use signpath_oci::notary::SigningScheme;

use super::{
    ApprovalConfig, GatewayConfig, GithubConfig, IssuerConfig, KeylessConfig, NotaryEnvelope, OriginConfig,
    KEYLESS_PROJECT,
};

/// The claims that name a repository: GitHub's `repository` and immutable `repository_id`, GitLab's
/// `project_path` and immutable `project_id`. A rule must bind one of them, or any repository on the CI could
/// send tokens for our audience.
pub const REPOSITORY_CLAIMS: &[&str] = &["repository", "repository_id", "project_path", "project_id"];

/// A rule of gateway.toml that the parsed file breaks, named in the file's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("policy {project}/{policy}: certificate_chain is empty: list the policy's certificate, then its CAs up to the root")]
    NoCertificate { project: String, policy: String },
    #[error("policy {project}/{policy}: hash_algorithms is empty: list the hashes it signs (Sha256, Sha384, Sha512, Sha1)")]
    NoHashAlgorithms { project: String, policy: String },
    #[error("policy {project}/{policy}: approval requires {required} of {approvers} approvers: required is at least 1 and at most the number of approvers")]
    ApprovalCount {
        project: String,
        policy: String,
        required: u32,
        approvers: usize,
    },
    #[error("policy {project}/{policy}: there is no approver {approver:?}: add them (`signpath-gateway approver add`) or take them out of the policy's approvers")]
    UnknownApprover {
        project: String,
        policy: String,
        approver: String,
    },
    #[error("policy {project}/{policy}: there is no trusted issuer {issuer:?}: add it to [[trusted_issuers]] or correct the origin rule's issuer")]
    UnknownIssuer {
        project: String,
        policy: String,
        issuer: String,
    },
    #[error("policy {project}/{policy}: origin condition {claim} = {pattern:?}: `*` stands for a whole path segment (`refs/tags/*`, `acme/*`), not part of one")]
    PartialSegment {
        project: String,
        policy: String,
        claim: String,
        pattern: String,
    },
    #[error("policy {project}/{policy}: the origin rule for issuer {issuer} binds no repository: add a condition on repository or repository_id (GitHub), project_path or project_id (GitLab)")]
    BindsNoRepository {
        project: String,
        policy: String,
        issuer: String,
    },
    #[error("artifact configuration {project}/{configuration}: signing_scheme = \"{scheme}\" applies to Notary Project signatures, and notary = \"none\" makes none")]
    SchemeWithoutNotary {
        project: String,
        configuration: String,
        scheme: SigningScheme,
    },
    #[error("trusted issuer {issuer}: set jwks_file or jwks_url")]
    NoKeys { issuer: String },
    #[error("trusted issuer {issuer}: jwks_url {url:?} is not a URL: {reason}")]
    JwksUrlUnparsable {
        issuer: String,
        url: String,
        reason: String,
    },
    #[error(
        "trusted issuer {issuer}: jwks_url {url:?} must be https:// (http:// only on a loopback address)"
    )]
    JwksUrlInsecure { issuer: String, url: String },
    #[error("[github] api_url {url:?} is not a URL: {reason}")]
    GithubApiUrlUnparsable { url: String, reason: String },
    #[error("[github] api_url {url:?} must be https:// (http:// only on a loopback address): the GitHub token travels to it")]
    GithubApiUrlInsecure { url: String },
    #[error("[github] repository_host is empty; GitHub's is github.com")]
    GithubNoRepositoryHost,
    #[error("[github] timeout_seconds must be at least 1")]
    GithubNoTimeout,
    #[error("[keyless] certificate_chain is empty: list the keyless intermediate's certificate, then its CAs up to the root")]
    KeylessNoCertificate,
    #[error("[keyless] rule {rule}: there is no trusted issuer {issuer:?}: add it to [[trusted_issuers]] or correct the rule's issuer")]
    KeylessUnknownIssuer { rule: usize, issuer: String },
    #[error("[keyless] rule {rule} (issuer {issuer}) binds no repository: list the repositories it admits (`acme/app`, `acme/*`)")]
    KeylessBindsNoRepository { rule: usize, issuer: String },
    #[error("[keyless] rule {rule}: {list} pattern {pattern:?}: `*` stands for a whole path segment (`refs/tags/*`, `acme/*`), not part of one")]
    KeylessPartialSegment {
        rule: usize,
        list: &'static str,
        pattern: String,
    },
    #[error("[keyless] rule {rule}: approval requires {required} of {approvers} approvers: required is at least 1 and at most the number of approvers")]
    KeylessApprovalCount {
        rule: usize,
        required: u32,
        approvers: usize,
    },
    #[error("[keyless] rule {rule}: there is no approver {approver:?}: add them (`signpath-gateway approver add`) or take them out of the rule's approvers")]
    KeylessUnknownApprover { rule: usize, approver: String },
    #[error("[keyless] rule {rule}: approval has a release_group: a keyless approval is of one CI run, which gets certificates while it runs; take release_group out")]
    KeylessReleaseGroup { rule: usize },
    #[error("[keyless] the rules of issuer {issuer} name different approvals: a CI run is approved as keyless/{issuer}, so the rules of one issuer that ask for approval name the same approvers and required")]
    KeylessApprovalsDiffer { issuer: String },
    #[error("project {KEYLESS_PROJECT}: the slug is the keyless CA's (its held CI runs are keyless/<issuer>): name the project otherwise")]
    KeylessReservedProject,
}

/// The first rule `config` breaks: what `serve`, the reload and the commands refuse the file with.
pub fn validate(config: &GatewayConfig) -> Result<(), Invalid> {
    findings(config).into_iter().next().map_or(Ok(()), Err)
}

/// Every rule `config` breaks, in the file's order: issuers, then each project's policies and artifact
/// configurations.
pub fn findings(config: &GatewayConfig) -> Vec<Invalid> {
    let mut found = Vec::new();
    for issuer in &config.trusted_issuers {
        found.extend(jwks_source(issuer));
    }
    if let Some(github) = &config.github {
        found.extend(github_connector(github));
    }
    if let Some(keyless) = &config.keyless {
        found.extend(keyless_rules(keyless, config));
        if config.projects.iter().any(|p| p.slug == KEYLESS_PROJECT) {
            found.push(Invalid::KeylessReservedProject);
        }
    }
    for project in &config.projects {
        for policy in &project.policies {
            let (p, s) = (project.slug.clone(), policy.slug.clone());
            if policy.certificate_chain.is_empty() {
                found.push(Invalid::NoCertificate {
                    project: p.clone(),
                    policy: s.clone(),
                });
            }
            if policy.hash_algorithms.is_empty() {
                found.push(Invalid::NoHashAlgorithms {
                    project: p.clone(),
                    policy: s.clone(),
                });
            }
            if let Some(approval) = &policy.approval {
                if !count_fits(approval) {
                    found.push(Invalid::ApprovalCount {
                        project: p.clone(),
                        policy: s.clone(),
                        required: approval.required,
                        approvers: approval.approvers.len(),
                    });
                }
                for approver in unknown_approvers(approval, config) {
                    found.push(Invalid::UnknownApprover {
                        project: p.clone(),
                        policy: s.clone(),
                        approver: approver.clone(),
                    });
                }
            }
            if let Some(origin) = &policy.origin {
                if !config.trusted_issuers.iter().any(|i| i.name == origin.issuer) {
                    found.push(Invalid::UnknownIssuer {
                        project: p.clone(),
                        policy: s.clone(),
                        issuer: origin.issuer.clone(),
                    });
                }
                found.extend(origin_rule(origin, &p, &s));
            }
        }
        for configuration in &project.artifact_configurations {
            if configuration.notary == NotaryEnvelope::None && !configuration.signing_scheme.is_default() {
                found.push(Invalid::SchemeWithoutNotary {
                    project: project.slug.clone(),
                    configuration: configuration.slug.clone(),
                    scheme: configuration.signing_scheme,
                });
            }
        }
    }
    found
}

/// An approval's k of n: at least one approval, and no more than it names approvers.
fn count_fits(approval: &ApprovalConfig) -> bool {
    approval.required >= 1 && approval.required as usize <= approval.approvers.len()
}

/// The approvers `approval` names that `[[approvers]]` does not.
fn unknown_approvers<'a>(approval: &'a ApprovalConfig, config: &GatewayConfig) -> Vec<&'a String> {
    approval
        .approvers
        .iter()
        .filter(|name| !config.approvers.iter().any(|a| &a.name == *name))
        .collect()
}

/// Whether `pattern` uses `*` inside a segment (`acme-*`), which `glob_matches` would take literally.
fn partial_segment(pattern: &str) -> bool {
    pattern
        .split('/')
        .any(|segment| segment.contains('*') && segment != "*")
}

/// Whether a repository pattern names at least its first segment (an owner or group), so that not every
/// repository of the CI can match.
fn binds_repository(pattern: &str) -> bool {
    pattern
        .split('/')
        .next()
        .is_some_and(|first| !first.is_empty() && first != "*")
}

/// The keyless CA has a chain, and each rule names a trusted issuer, binds repositories and uses `*` only as whole
/// segments; an approval is a policy's k of n of approvers that exist, without a release group, and the rules of one
/// issuer name the same one (its runs are held as `keyless/<issuer>`): rule numbers count from 1, in the file's
/// order.
fn keyless_rules(keyless: &KeylessConfig, config: &GatewayConfig) -> Vec<Invalid> {
    let issuers = &config.trusted_issuers;
    let mut found = Vec::new();
    if keyless.certificate_chain.is_empty() {
        found.push(Invalid::KeylessNoCertificate);
    }
    for (i, rule) in keyless.rules.iter().enumerate() {
        let number = i + 1;
        if !issuers.iter().any(|issuer| issuer.name == rule.issuer) {
            found.push(Invalid::KeylessUnknownIssuer {
                rule: number,
                issuer: rule.issuer.clone(),
            });
        }
        if rule.repositories.is_empty() || !rule.repositories.iter().all(|p| binds_repository(p)) {
            found.push(Invalid::KeylessBindsNoRepository {
                rule: number,
                issuer: rule.issuer.clone(),
            });
        }
        if let Some(approval) = &rule.approval {
            if !count_fits(approval) {
                found.push(Invalid::KeylessApprovalCount {
                    rule: number,
                    required: approval.required,
                    approvers: approval.approvers.len(),
                });
            }
            for approver in unknown_approvers(approval, config) {
                found.push(Invalid::KeylessUnknownApprover {
                    rule: number,
                    approver: approver.clone(),
                });
            }
            if approval.release_group.is_some() {
                found.push(Invalid::KeylessReleaseGroup { rule: number });
            }
        }
        let approval =
            |r: &super::KeylessRule| r.approval.as_ref().map(|a| (a.approvers.clone(), a.required));
        let differs = |other: &super::KeylessRule| {
            other.issuer == rule.issuer && approval(other).is_some() && approval(other) != approval(rule)
        };
        let first = !keyless.rules[..i]
            .iter()
            .any(|r| r.issuer == rule.issuer && r.approval.is_some());
        if rule.approval.is_some() && first && keyless.rules[i..].iter().any(differs) {
            found.push(Invalid::KeylessApprovalsDiffer {
                issuer: rule.issuer.clone(),
            });
        }
        let lists = [
            ("repositories", &rule.repositories),
            ("refs", &rule.refs),
            ("workflows", &rule.workflows),
        ];
        for (list, patterns) in lists {
            for pattern in patterns.iter().filter(|p| partial_segment(p)) {
                found.push(Invalid::KeylessPartialSegment {
                    rule: number,
                    list,
                    pattern: pattern.clone(),
                });
            }
        }
    }
    found
}

/// An origin rule binds a repository, and its patterns use `*` only as whole path segments (see
/// `signing::origin::glob_matches`).
fn origin_rule(rule: &OriginConfig, project: &str, policy: &str) -> Vec<Invalid> {
    let mut found: Vec<Invalid> = rule
        .conditions
        .iter()
        .filter(|(_, pattern)| partial_segment(pattern))
        .map(|(claim, pattern)| Invalid::PartialSegment {
            project: project.to_owned(),
            policy: policy.to_owned(),
            claim: claim.clone(),
            pattern: pattern.clone(),
        })
        .collect();
    let binds = REPOSITORY_CLAIMS.iter().any(|claim| {
        rule.conditions
            .get(*claim)
            .is_some_and(|pattern| binds_repository(pattern))
    });
    if !binds {
        found.push(Invalid::BindsNoRepository {
            project: project.to_owned(),
            policy: policy.to_owned(),
            issuer: rule.issuer.clone(),
        });
    }
    found
}

/// An issuer has keys to check tokens with, and a JWKS URL is https: over http anyone on the path could hand the
/// gateway their own keys. Plain http is accepted on loopback only (a test's local issuer). The URL is checked
/// beside a `jwks_file` too: an unknown key id fetches it then.
fn jwks_source(issuer: &IssuerConfig) -> Option<Invalid> {
    let Some(url) = &issuer.jwks_url else {
        return issuer.jwks_file.is_none().then(|| Invalid::NoKeys {
            issuer: issuer.name.clone(),
        });
    };
    match fetch_url(url)? {
        Err(reason) => Some(Invalid::JwksUrlUnparsable {
            issuer: issuer.name.clone(),
            url: url.clone(),
            reason,
        }),
        Ok(()) => Some(Invalid::JwksUrlInsecure {
            issuer: issuer.name.clone(),
            url: url.clone(),
        }),
    }
}

/// The GitHub connector's API is https (the GitHub token travels to it), names a repository host and has a
/// timeout.
fn github_connector(github: &GithubConfig) -> Vec<Invalid> {
    let mut found = Vec::new();
    match fetch_url(&github.api_url) {
        None => {}
        Some(Err(reason)) => found.push(Invalid::GithubApiUrlUnparsable {
            url: github.api_url.clone(),
            reason,
        }),
        Some(Ok(())) => found.push(Invalid::GithubApiUrlInsecure {
            url: github.api_url.clone(),
        }),
    }
    if github.repository_host.trim().is_empty() {
        found.push(Invalid::GithubNoRepositoryHost);
    }
    if github.timeout_seconds == 0 {
        found.push(Invalid::GithubNoTimeout);
    }
    found
}

/// The one rule for a URL the gateway fetches from with something to protect: https, or plain http on a
/// loopback address only (a test's stand-in). `None` when it holds; `Some(Err(reason))` when it is no URL;
/// `Some(Ok(()))` when it is insecure.
fn fetch_url(url: &str) -> Option<Result<(), String>> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(Err(e.to_string())),
    };
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => None,
        "http" if loopback => None,
        _ => Some(Ok(())),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
