//! The rules of `validate.rs`: what each finds, and the exact words of each finding (what `serve` and `doctor`
//! print).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{
    default_hash_algorithms, ApprovalConfig, ApproverConfig, ArtifactConfigurationConfig, HsmConfig,
    PolicyConfig, ProjectConfig, TlsConfig, TokenSha256,
};

fn config() -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".into(),
        public_url: "https://127.0.0.1:0".into(),
        organization_id: "org".into(),
        audit_db: "audit.db".into(),
        tls: TlsConfig {
            certificate: "tls.pem".into(),
            key: "tls.key".into(),
        },
        hsm: HsmConfig {
            module: "softhsm2.so".into(),
            softhsm2_conf: None,
            token_label: "t".into(),
            pin_file: "pin".into(),
        },
        tokens: Vec::new(),
        projects: vec![ProjectConfig {
            slug: "demo".into(),
            policies: vec![PolicyConfig {
                slug: "release".into(),
                id: "p1".into(),
                key_label: "k".into(),
                certificate_chain: vec!["c.pem".into()],
                submitters: Vec::new(),
                hash_algorithms: default_hash_algorithms(),
                approval: None,
                origin: None,
            }],
            artifact_configurations: Vec::new(),
        }],
        approvers: vec![ApproverConfig {
            name: "alice".into(),
            sha256: TokenSha256([0; 32]),
            owner: None,
        }],
        trusted_issuers: vec![issuer(Some("https://ci.example/jwks"))],
        server: Default::default(),
        pki: None,
        timestamping: None,
        artifacts: Default::default(),
        github: None,
        keyless: None,
    }
}

fn issuer(jwks_url: Option<&str>) -> IssuerConfig {
    IssuerConfig {
        name: "ci".into(),
        issuer: "https://ci.example".into(),
        audience: None,
        repository_host: None,
        jwks_file: None,
        jwks_url: jwks_url.map(String::from),
    }
}

fn origin(conditions: &[(&str, &str)]) -> OriginConfig {
    OriginConfig {
        issuer: "ci".into(),
        conditions: conditions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The findings of the configuration after `edit`.
fn found(edit: impl FnOnce(&mut GatewayConfig)) -> Vec<Invalid> {
    let mut config = config();
    edit(&mut config);
    findings(&config)
}

fn policy(config: &mut GatewayConfig) -> &mut PolicyConfig {
    &mut config.projects[0].policies[0]
}

#[test]
fn a_configuration_that_keeps_every_rule_has_no_finding() {
    assert_eq!(found(|_| {}), []);
    assert_eq!(validate(&config()), Ok(()));
}

#[test]
fn an_approval_needs_between_one_and_all_of_its_approvers_and_each_must_exist() {
    let approval = |approvers: &[&str], required| ApprovalConfig {
        approvers: approvers.iter().map(|a| a.to_string()).collect(),
        required,
        release_group: None,
    };
    assert_eq!(found(|c| policy(c).approval = Some(approval(&["alice"], 1))), []);
    for (approvers, required) in [(&["alice"][..], 2), (&["alice"][..], 0), (&[][..], 1)] {
        assert_eq!(
            found(|c| policy(c).approval = Some(approval(approvers, required))),
            [Invalid::ApprovalCount {
                project: "demo".into(),
                policy: "release".into(),
                required,
                approvers: approvers.len(),
            }]
        );
    }
    assert_eq!(
        found(|c| policy(c).approval = Some(approval(&["alice", "mallory"], 1))),
        [Invalid::UnknownApprover {
            project: "demo".into(),
            policy: "release".into(),
            approver: "mallory".into(),
        }]
    );
}

#[test]
fn an_origin_rule_names_a_trusted_issuer_and_binds_a_repository() {
    let rule = |conditions: &[(&str, &str)]| found(|c| policy(c).origin = Some(origin(conditions)));
    for good in [
        &[("repository", "acme/app")][..],
        &[("repository", "acme/*")],
        &[("repository_id", "123456")],
        &[("project_id", "42")],
        &[("project_path", "group/project")],
    ] {
        assert_eq!(rule(good), [], "{good:?}");
    }
    let binds_nothing = Invalid::BindsNoRepository {
        project: "demo".into(),
        policy: "release".into(),
        issuer: "ci".into(),
    };
    for bad in [&[][..], &[("ref", "refs/heads/main")], &[("repository", "*")]] {
        assert_eq!(rule(bad), std::slice::from_ref(&binds_nothing), "{bad:?}");
    }
    assert_eq!(
        rule(&[("repository", "acme/app*")]),
        [Invalid::PartialSegment {
            project: "demo".into(),
            policy: "release".into(),
            claim: "repository".into(),
            pattern: "acme/app*".into(),
        }]
    );
    let mut unknown = origin(&[("repository", "acme/app")]);
    unknown.issuer = "gitlab".into();
    assert_eq!(
        found(|c| policy(c).origin = Some(unknown)),
        [Invalid::UnknownIssuer {
            project: "demo".into(),
            policy: "release".into(),
            issuer: "gitlab".into(),
        }]
    );
}

#[test]
fn a_policy_has_a_certificate_and_signs_some_hash() {
    assert_eq!(
        found(|c| {
            policy(c).certificate_chain.clear();
            policy(c).hash_algorithms.clear();
        }),
        [
            Invalid::NoCertificate {
                project: "demo".into(),
                policy: "release".into(),
            },
            Invalid::NoHashAlgorithms {
                project: "demo".into(),
                policy: "release".into(),
            }
        ]
    );
}

#[test]
fn a_signing_scheme_needs_a_notary_signature() {
    let configuration = |notary| ArtifactConfigurationConfig {
        slug: "images".into(),
        notary,
        cosign: true,
        each_platform: false,
        signing_scheme: SigningScheme::X509SigningAuthority,
    };
    assert_eq!(
        found(|c| c.projects[0].artifact_configurations = vec![configuration(NotaryEnvelope::Cose)]),
        []
    );
    assert_eq!(
        found(|c| c.projects[0].artifact_configurations = vec![configuration(NotaryEnvelope::None)]),
        [Invalid::SchemeWithoutNotary {
            project: "demo".into(),
            configuration: "images".into(),
            scheme: SigningScheme::X509SigningAuthority,
        }]
    );
}

#[test]
fn jwks_urls_are_https_except_on_loopback_even_beside_a_jwks_file() {
    for good in [
        "https://token.actions.githubusercontent.com/.well-known/jwks",
        "http://127.0.0.1:8080/jwks",
        "http://localhost:8080/jwks",
        "http://[::1]:8080/jwks",
    ] {
        assert_eq!(jwks_source(&issuer(Some(good))), None, "{good}");
    }
    for bad in ["http://issuer.example/jwks", "file:///etc/jwks.json"] {
        assert_eq!(
            jwks_source(&issuer(Some(bad))),
            Some(Invalid::JwksUrlInsecure {
                issuer: "ci".into(),
                url: bad.into(),
            })
        );
    }
    // A jwks_file is read at start, and the URL beside it fetched for an unknown key id: both are checked.
    let mut both = issuer(Some("http://issuer.example/jwks"));
    both.jwks_file = Some("jwks.json".into());
    assert!(matches!(
        jwks_source(&both),
        Some(Invalid::JwksUrlInsecure { .. })
    ));
    both.jwks_url = None;
    assert_eq!(jwks_source(&both), None);
    assert_eq!(
        jwks_source(&issuer(None)),
        Some(Invalid::NoKeys { issuer: "ci".into() })
    );
    assert!(matches!(
        jwks_source(&issuer(Some("not a url"))),
        Some(Invalid::JwksUrlUnparsable { .. })
    ));
}

#[test]
fn the_github_connectors_api_is_https_by_the_jwks_rule_and_has_a_host_and_a_timeout() {
    let with = |api_url: &str, host: &str, timeout_seconds: u64| {
        found(|c| {
            c.github = Some(GithubConfig {
                api_url: api_url.into(),
                repository_host: host.into(),
                timeout_seconds,
            })
        })
    };
    assert_eq!(with("https://api.github.com", "github.com", 300), vec![]);
    assert_eq!(with("http://127.0.0.1:9000", "github.com", 300), vec![]);
    assert_eq!(
        with("http://github.example/api/v3", "github.example", 300),
        vec![Invalid::GithubApiUrlInsecure {
            url: "http://github.example/api/v3".into()
        }]
    );
    assert_eq!(
        with("https://api.github.com", " ", 0),
        vec![Invalid::GithubNoRepositoryHost, Invalid::GithubNoTimeout]
    );
    assert!(matches!(
        with("api.github.com", "github.com", 300).as_slice(),
        [Invalid::GithubApiUrlUnparsable { .. }]
    ));
}

#[test]
fn every_finding_is_found_in_one_pass_and_validate_names_the_first() {
    let mut config = config();
    policy(&mut config).hash_algorithms.clear();
    config.trusted_issuers = vec![issuer(None)];
    assert_eq!(findings(&config).len(), 2);
    assert_eq!(validate(&config), Err(Invalid::NoKeys { issuer: "ci".into() }));
}

#[test]
fn each_finding_says_what_is_wrong_in_the_files_words() {
    let (project, policy) = ("demo".to_owned(), "release".to_owned());
    let cases = [
        (
            Invalid::NoCertificate { project: project.clone(), policy: policy.clone() },
            "policy demo/release: certificate_chain is empty: list the policy's certificate, then its CAs up to the root",
        ),
        (
            Invalid::NoHashAlgorithms { project: project.clone(), policy: policy.clone() },
            "policy demo/release: hash_algorithms is empty: list the hashes it signs (Sha256, Sha384, Sha512, Sha1)",
        ),
        (
            Invalid::ApprovalCount { project: project.clone(), policy: policy.clone(), required: 3, approvers: 2 },
            "policy demo/release: approval requires 3 of 2 approvers: required is at least 1 and at most the number of approvers",
        ),
        (
            Invalid::UnknownApprover { project: project.clone(), policy: policy.clone(), approver: "mallory".into() },
            "policy demo/release: there is no approver \"mallory\": add them (`signpath-gateway approver add`) or take them out of the policy's approvers",
        ),
        (
            Invalid::UnknownIssuer { project: project.clone(), policy: policy.clone(), issuer: "gitlab".into() },
            "policy demo/release: there is no trusted issuer \"gitlab\": add it to [[trusted_issuers]] or correct the origin rule's issuer",
        ),
        (
            Invalid::PartialSegment {
                project: project.clone(),
                policy: policy.clone(),
                claim: "repository".into(),
                pattern: "acme/app*".into(),
            },
            "policy demo/release: origin condition repository = \"acme/app*\": `*` stands for a whole path segment (`refs/tags/*`, `acme/*`), not part of one",
        ),
        (
            Invalid::BindsNoRepository { project: project.clone(), policy: policy.clone(), issuer: "ci".into() },
            "policy demo/release: the origin rule for issuer ci binds no repository: add a condition on repository or repository_id (GitHub), project_path or project_id (GitLab)",
        ),
        (
            Invalid::SchemeWithoutNotary {
                project: project.clone(),
                configuration: "images".into(),
                scheme: SigningScheme::X509SigningAuthority,
            },
            "artifact configuration demo/images: signing_scheme = \"notary.x509.signingAuthority\" applies to Notary Project signatures, and notary = \"none\" makes none",
        ),
        (Invalid::NoKeys { issuer: "ci".into() }, "trusted issuer ci: set jwks_file or jwks_url"),
        (
            Invalid::JwksUrlUnparsable { issuer: "ci".into(), url: "x".into(), reason: "relative URL without a base".into() },
            "trusted issuer ci: jwks_url \"x\" is not a URL: relative URL without a base",
        ),
        (
            Invalid::JwksUrlInsecure { issuer: "ci".into(), url: "http://ci.example/jwks".into() },
            "trusted issuer ci: jwks_url \"http://ci.example/jwks\" must be https:// (http:// only on a loopback address)",
        ),
    ];
    for (invalid, message) in cases {
        assert_eq!(invalid.to_string(), message);
    }
    let error = crate::config::ConfigError::Invalid {
        path: "/etc/signpath/gateway.toml".into(),
        invalid: Invalid::NoKeys { issuer: "ci".into() },
    };
    assert_eq!(
        error.to_string(),
        "/etc/signpath/gateway.toml is not a valid gateway configuration: trusted issuer ci: set jwks_file or jwks_url"
    );
}

#[test]
fn keyless_rules_name_a_trusted_issuer_bind_repositories_and_glob_whole_segments() {
    let mut c = config();
    let rule = |issuer: &str, repositories: &[&str], refs: &[&str]| crate::config::KeylessRule {
        issuer: issuer.into(),
        repositories: repositories.iter().map(|r| (*r).to_owned()).collect(),
        refs: refs.iter().map(|r| (*r).to_owned()).collect(),
        workflows: Vec::new(),
        approval: None,
    };
    c.keyless = Some(crate::config::KeylessConfig {
        key_label: "ca/keyless".into(),
        certificate_chain: Vec::new(),
        rules: vec![
            rule("ci", &["acme/*"], &["refs/tags/*"]),
            rule("gitlab", &["acme/app"], &[]),
            rule("ci", &[], &[]),
            rule("ci", &["*/app"], &["refs/tags/v*"]),
        ],
    });
    let found: Vec<String> = findings(&c).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "[keyless] certificate_chain is empty: list the keyless intermediate's certificate, then its CAs up to the root",
            "[keyless] rule 2: there is no trusted issuer \"gitlab\": add it to [[trusted_issuers]] or correct the rule's issuer",
            "[keyless] rule 3 (issuer ci) binds no repository: list the repositories it admits (`acme/app`, `acme/*`)",
            "[keyless] rule 4 (issuer ci) binds no repository: list the repositories it admits (`acme/app`, `acme/*`)",
            "[keyless] rule 4: refs pattern \"refs/tags/v*\": `*` stands for a whole path segment (`refs/tags/*`, `acme/*`), not part of one",
        ]
    );
}

#[test]
fn a_keyless_rules_approval_is_a_policys_k_of_n_one_per_issuer_and_the_keyless_project_is_reserved() {
    let approval = |approvers: &[&str], required| ApprovalConfig {
        approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
        required,
        release_group: None,
    };
    let rule = |repository: &str, approval| crate::config::KeylessRule {
        issuer: "ci".into(),
        repositories: vec![repository.to_owned()],
        refs: Vec::new(),
        workflows: Vec::new(),
        approval,
    };
    let keyless = |rules| {
        Some(crate::config::KeylessConfig {
            key_label: "ca/keyless".into(),
            certificate_chain: vec!["keyless.pem".into()],
            rules,
        })
    };
    let mut c = config();
    c.keyless = keyless(vec![
        rule("acme/app", Some(approval(&["alice"], 1))),
        rule("acme/lib", None),
        rule("acme/tool", Some(approval(&["alice"], 1))),
    ]);
    assert_eq!(findings(&c), []);
    assert_eq!(
        c.approval("keyless", "ci").map(|a| a.approvers.clone()),
        Some(vec!["alice".to_owned()])
    );

    let mut grouped = approval(&["alice", "mallory"], 3);
    grouped.release_group = Some(crate::config::ReleaseGroupConfig {
        max_signatures: 2,
        window_seconds: 60,
    });
    c.keyless = keyless(vec![
        rule("acme/app", Some(grouped)),
        rule("acme/tool", Some(approval(&["alice"], 1))),
    ]);
    c.projects[0].slug = "keyless".into();
    let found: Vec<String> = findings(&c).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "[keyless] rule 1: approval requires 3 of 2 approvers: required is at least 1 and at most the number of approvers",
            "[keyless] rule 1: there is no approver \"mallory\": add them (`signpath-gateway approver add`) or take them out of the rule's approvers",
            "[keyless] rule 1: approval has a release_group: a keyless approval is of one CI run, which gets certificates while it runs; take release_group out",
            "[keyless] the rules of issuer ci name different approvals: a CI run is approved as keyless/ci, so the rules of one issuer that ask for approval name the same approvers and required",
            "project keyless: the slug is the keyless CA's (its held CI runs are keyless/<issuer>): name the project otherwise",
        ]
    );
}
