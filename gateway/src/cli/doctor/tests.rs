//! `doctor` refuses what `serve` refuses, in the same words: each rule `serve` applies when it loads gateway.toml
//! (those `signing::state::State::load` applied alone before are the point: `doctor` passed them), and the
//! values parsed into types.

#![allow(clippy::unwrap_used)]

use super::*;

const APPROVER: &str = "[[approvers]]\nname = \"alice\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";

/// gateway.toml of a setup with one policy whose lines are `policy`, then `rest`.
fn setup(policy: &str, rest: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let text = format!(
        "listen = \"127.0.0.1:8443\"\npublic_url = \"https://127.0.0.1:8443\"\norganization_id = \"org\"\n\
         audit_db = \"audit.db\"\n[tls]\ncertificate = \"tls.pem\"\nkey = \"tls.key\"\n\
         [hsm]\nmodule = \"softhsm2.so\"\ntoken_label = \"t\"\npin_file = \"pin\"\n\
         [[projects]]\nslug = \"demo\"\n[[projects.policies]]\nslug = \"release\"\nid = \"p1\"\nkey_label = \"k\"\n\
         {policy}\n{rest}"
    );
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const CHAIN: &str = "certificate_chain = [\"c.pem\"]";

/// What `serve` refuses the file with (its first step, `GatewayConfig::load`), which `doctor` must report word for
/// word.
fn serve_and_doctor_refuse_alike(policy: &str, rest: &str, expected: &str) {
    let (_dir, path) = setup(policy, rest);
    let served = GatewayConfig::load(&path).unwrap_err().to_string();
    assert!(served.contains(expected), "serve: {served}");
    let report = diagnose(&path);
    assert!(
        report.problems.iter().any(|p| p.what == served),
        "doctor does not report {served:?}: {:#?}",
        report.problems
    );
    assert!(
        !report.passed.iter().any(|p| p.contains("keeps every rule")),
        "{:#?}",
        report.passed
    );
}

#[test]
fn doctor_refuses_an_approval_of_more_than_its_approvers_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.approval]\napprovers = [\"alice\"]\nrequired = 2"),
        APPROVER,
        "approval requires 2 of 1 approvers",
    );
}

#[test]
fn doctor_refuses_an_approval_of_no_one_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.approval]\napprovers = [\"alice\"]\nrequired = 0"),
        APPROVER,
        "approval requires 0 of 1 approvers",
    );
}

#[test]
fn doctor_refuses_an_unknown_approver_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.approval]\napprovers = [\"alice\", \"mallory\"]\nrequired = 1"),
        APPROVER,
        "there is no approver \"mallory\"",
    );
}

#[test]
fn doctor_refuses_an_unknown_trusted_issuer_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.origin]\nissuer = \"ci\"\nconditions = {{ repository = \"acme/app\" }}"),
        "",
        "policy demo/release: there is no trusted issuer \"ci\"",
    );
}

#[test]
fn doctor_refuses_an_unknown_hash_algorithm_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\nhash_algorithms = [\"Sha256\", \"Md5\"]"),
        "",
        "hash_algorithms: \"Md5\" is not Sha256, Sha384, Sha512 or Sha1",
    );
}

#[test]
fn doctor_refuses_an_empty_hash_algorithm_list_as_serve_does() {
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\nhash_algorithms = []"),
        "",
        "policy demo/release: hash_algorithms is empty",
    );
}

#[test]
fn doctor_refuses_a_policy_without_a_certificate_as_serve_does() {
    serve_and_doctor_refuse_alike(
        "certificate_chain = []",
        "",
        "policy demo/release: certificate_chain is empty",
    );
}

#[test]
fn doctor_refuses_a_token_hash_that_is_not_hex_as_serve_does() {
    serve_and_doctor_refuse_alike(
        CHAIN,
        "[[tokens]]\nid = \"t\"\nname = \"ci\"\nsha256 = \"not hex\"\n",
        "in [[tokens]]: sha256 is not 64 hex digits",
    );
    serve_and_doctor_refuse_alike(
        CHAIN,
        "[[approvers]]\nname = \"alice\"\nsha256 = \"00\"\n",
        "in [[approvers]]: sha256 is not 64 hex digits",
    );
}

#[test]
fn doctor_refuses_a_trusted_issuer_without_keys_or_with_an_http_jwks_url_as_serve_does() {
    serve_and_doctor_refuse_alike(
        CHAIN,
        "[[trusted_issuers]]\nname = \"ci\"\nissuer = \"https://ci.example\"\n",
        "trusted issuer ci: set jwks_file or jwks_url",
    );
    serve_and_doctor_refuse_alike(
        CHAIN,
        "[[trusted_issuers]]\nname = \"ci\"\nissuer = \"https://ci.example\"\njwks_file = \"jwks.json\"\njwks_url = \"http://ci.example/jwks\"\n",
        "jwks_url \"http://ci.example/jwks\" must be https://",
    );
}

#[test]
fn doctor_refuses_an_origin_rule_that_binds_no_repository_as_serve_does() {
    let issuer =
        "[[trusted_issuers]]\nname = \"ci\"\nissuer = \"https://ci.example\"\njwks_file = \"jwks.json\"\n";
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.origin]\nissuer = \"ci\"\nconditions = {{ ref = \"refs/heads/main\" }}"),
        issuer,
        "the origin rule for issuer ci binds no repository",
    );
    serve_and_doctor_refuse_alike(
        &format!("{CHAIN}\n[projects.policies.origin]\nissuer = \"ci\"\nconditions = {{ repository = \"acme/app*\" }}"),
        issuer,
        "`*` stands for a whole path segment",
    );
}

#[test]
fn doctor_refuses_a_signing_scheme_without_a_notary_signature_as_serve_does() {
    serve_and_doctor_refuse_alike(
        CHAIN,
        "[[projects.artifact_configurations]]\nslug = \"images\"\nnotary = \"none\"\ncosign = true\nsigning_scheme = \"notary.x509.signingAuthority\"\n",
        "artifact configuration demo/images: signing_scheme",
    );
}

#[test]
fn doctor_lists_every_broken_rule_where_serve_names_the_first() {
    let (_dir, path) = setup("certificate_chain = []\nhash_algorithms = []", "");
    let served = GatewayConfig::load(&path).unwrap_err().to_string();
    let report = diagnose(&path);
    let rules: Vec<&str> = report
        .problems
        .iter()
        .map(|p| p.what.as_str())
        .filter(|what| what.contains("is not a valid gateway configuration"))
        .collect();
    assert_eq!(rules.len(), 2, "{rules:#?}");
    assert_eq!(rules[0], served);
}

#[test]
fn a_file_that_keeps_every_rule_passes_them_in_doctor() {
    let (_dir, path) = setup(CHAIN, "");
    GatewayConfig::load(&path).unwrap();
    let report = diagnose(&path);
    assert!(
        report
            .passed
            .iter()
            .any(|p| p.contains("keeps every rule `serve` applies")),
        "{:#?}",
        report.passed
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.what.contains("is not a valid gateway configuration")),
        "{:#?}",
        report.problems
    );
}
