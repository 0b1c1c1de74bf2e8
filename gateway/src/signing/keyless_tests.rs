//! The keyless CA's decision without an HSM: which rule admits a verified token, the proof of possession, and
//! what the certificate says for a GitHub Actions job, a GitLab job, a person and any other subject.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use spki::EncodePublicKey;

use super::*;

fn token(issuer_name: &str, claims: Value) -> VerifiedToken {
    let claims: BTreeMap<String, Value> = serde_json::from_value(claims).unwrap();
    VerifiedToken {
        issuer_name: issuer_name.into(),
        repository_host: "github.com".into(),
        claims,
    }
}

fn github_job() -> VerifiedToken {
    token(
        "github",
        json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:acme/app:ref:refs/tags/v1",
            "repository": "acme/app",
            "repository_id": "42",
            "repository_owner": "acme",
            "repository_owner_id": "7",
            "repository_visibility": "private",
            "ref": "refs/tags/v1",
            "sha": "0123abcd",
            "workflow": "release",
            "workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1",
            "workflow_sha": "0123abcd",
            "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1",
            "job_workflow_sha": "0123abcd",
            "event_name": "push",
            "run_id": "1001",
            "run_attempt": "2",
            "runner_environment": "github-hosted",
        }),
    )
}

fn rule(issuer: &str, repositories: &[&str], refs: &[&str], workflows: &[&str]) -> KeylessRule {
    let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    KeylessRule {
        issuer: issuer.into(),
        repositories: list(repositories),
        refs: list(refs),
        workflows: list(workflows),
        approval: None,
    }
}

#[test]
fn a_token_is_admitted_by_a_rule_of_its_issuer_whose_lists_all_match() {
    let job = github_job();
    let rules = [
        rule("gitlab", &["acme/*"], &[], &[]),
        rule(
            "github",
            &["acme/*"],
            &["refs/tags/*"],
            &["acme/app/.github/workflows/release.yml@refs/tags/*"],
        ),
    ];
    assert_eq!(admitting_rule(&rules, &job).unwrap().issuer, "github");

    let refused = |rules: &[KeylessRule]| admitting_rule(rules, &job).unwrap_err();
    let other_issuer = refused(&[rule("gitlab", &["acme/*"], &[], &[])]);
    assert_eq!(other_issuer.reason, Reason::IdentityNotAllowed);
    assert_eq!(
        other_issuer.detail,
        "no [keyless] rule admits tokens of the trusted issuer github"
    );
    let other_repository = refused(&[rule("github", &["acme/other", "evil/*"], &[], &[])]);
    assert_eq!(
        other_repository.detail,
        "the repository \"acme/app\" is not one the [keyless] rules admit for issuer github"
    );
    let branch_only = refused(&[rule("github", &["acme/app"], &["refs/heads/main"], &[])]);
    assert_eq!(
        branch_only.detail,
        "the ref \"refs/tags/v1\" is not one the [keyless] rules admit for \"acme/app\""
    );
    let other_workflow = refused(&[rule(
        "github",
        &["acme/app"],
        &[],
        &["acme/app/.github/workflows/ci.yml@*"],
    )]);
    assert!(other_workflow
        .detail
        .starts_with("the workflow \"acme/app/.github/workflows/release.yml@refs/tags/v1\""));
    // No partial segments: `acme/app` does not admit `acme/app-evil`.
    let evil = token("github", json!({"repository": "acme/app-evil"}));
    assert!(admitting_rule(&[rule("github", &["acme/app"], &[], &[])], &evil).is_err());
}

#[test]
fn the_proof_of_possession_is_the_keys_signature_over_the_subject_or_email() {
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let public =
        PublicKey::from_spki_der(key.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
    let job = github_job();
    let signature: p256::ecdsa::DerSignature = key.sign(b"repo:acme/app:ref:refs/tags/v1");
    assert!(check_proof_of_possession(&public, &job, signature.as_bytes()).is_ok());

    let over_something_else: p256::ecdsa::DerSignature = key.sign(b"repo:acme/other:ref:refs/tags/v1");
    let refusal = check_proof_of_possession(&public, &job, over_something_else.as_bytes()).unwrap_err();
    assert_eq!(refusal.reason, Reason::ProofOfPossessionFailed);
    assert_eq!(
        refusal.detail,
        "the proof of possession is not the public key's signature of the token's subject \
         \"repo:acme/app:ref:refs/tags/v1\" (EC-256, ECDSA, DER, Sha256): sign that string with the key the \
         certificate is for"
    );
    let another_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let by_another: p256::ecdsa::DerSignature = another_key.sign(b"repo:acme/app:ref:refs/tags/v1");
    assert!(check_proof_of_possession(&public, &job, by_another.as_bytes()).is_err());
    assert!(check_proof_of_possession(&public, &job, b"not a signature").is_err());

    let person = token(
        "corp",
        json!({"sub": "1234", "email": "alice@example.com", "email_verified": true}),
    );
    let over_email: p256::ecdsa::DerSignature = key.sign(b"alice@example.com");
    assert!(check_proof_of_possession(&public, &person, over_email.as_bytes()).is_ok());
    let over_sub: p256::ecdsa::DerSignature = key.sign(b"1234");
    assert!(check_proof_of_possession(&public, &person, over_sub.as_bytes()).is_err());
}

#[test]
fn a_github_job_gets_its_workflow_as_san_and_fulcios_extensions() {
    let request = certificate_request(&github_job()).unwrap();
    assert_eq!(
        request.identity,
        Identity::Uri("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1".into())
    );
    let extensions: BTreeMap<u32, &str> = request
        .extensions
        .iter()
        .map(|(e, v)| (*e as u32, v.as_str()))
        .collect();
    let expected = BTreeMap::from([
        (1, "https://token.actions.githubusercontent.com"),
        (2, "push"),
        (3, "0123abcd"),
        (4, "release"),
        (5, "acme/app"),
        (6, "refs/tags/v1"),
        (8, "https://token.actions.githubusercontent.com"),
        (
            9,
            "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1",
        ),
        (10, "0123abcd"),
        (11, "github-hosted"),
        (12, "https://github.com/acme/app"),
        (13, "0123abcd"),
        (14, "refs/tags/v1"),
        (15, "42"),
        (16, "https://github.com/acme"),
        (17, "7"),
        (
            18,
            "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1",
        ),
        (19, "0123abcd"),
        (20, "push"),
        (21, "https://github.com/acme/app/actions/runs/1001/attempts/2"),
        (22, "private"),
    ]);
    assert_eq!(extensions, expected);
}

#[test]
fn gitlab_people_and_other_subjects_get_fulcios_principals() {
    let gitlab = token(
        "gitlab",
        json!({
            "iss": "https://gitlab.example", "sub": "project_path:acme/app:ref_type:branch:ref:main",
            "project_path": "acme/app", "ref": "main", "ref_type": "branch", "job_id": "9",
            "ci_config_ref_uri": "gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main",
            "pipeline_source": "push",
        }),
    );
    let request = certificate_request(&gitlab).unwrap();
    assert_eq!(
        request.identity,
        Identity::Uri("https://gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main".into())
    );
    assert!(request
        .extensions
        .contains(&(F::SourceRepositoryRef, "refs/heads/main".into())));
    assert!(request.extensions.contains(&(F::BuildTrigger, "push".into())));

    let person = token(
        "corp",
        json!({"iss": "https://id.example", "sub": "1", "email": "a@example.com", "email_verified": true}),
    );
    assert_eq!(
        certificate_request(&person).unwrap().identity,
        Identity::Email("a@example.com".into())
    );
    let unverified = token(
        "corp",
        json!({"iss": "https://id.example", "sub": "1", "email": "a@example.com"}),
    );
    assert_eq!(
        certificate_request(&unverified).unwrap_err().reason,
        Reason::IdentityNotAllowed
    );
    let service = token(
        "corp",
        json!({"iss": "https://id.example/realm", "sub": "deployer"}),
    );
    assert_eq!(
        certificate_request(&service).unwrap().identity,
        Identity::Username("deployer!id.example".into())
    );
}
