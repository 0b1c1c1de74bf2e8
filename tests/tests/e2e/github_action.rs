//! SignPath's real GitHub Action (SignPath/github-action-submit-signing-request, v2.x or v1.x) run with node as a
//! runner runs a step (`INPUT_*`, `GITHUB_OUTPUT`, `RUNNER_TEMP`, `NODE_EXTRA_CA_CERTS`), with `connector-url` set to
//! the gateway and GitHub's API stood in for (`e2e_tests::github`), in the setup of `github_connector`. The action
//! is not a package any registry serves, so the test runs when `SIGNPATH_GITHUB_ACTION_DIR` names a checkout of it
//! (its `action.yml` and `index.js`) and says why it did not run otherwise.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::Command;

use super::github_connector::{assert_token_kept, github, start, verify_tarball, REPOSITORY};
use e2e_tests::gateway::Gateway;
use e2e_tests::github::GithubApi;
use e2e_tests::{require_tool, tools};

/// Where the real action is, or why this test does not run.
fn action_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SIGNPATH_GITHUB_ACTION_DIR").map(PathBuf::from) else {
        eprintln!(
            "SKIPPED: SIGNPATH_GITHUB_ACTION_DIR is not set; set it to a checkout of \
             SignPath/github-action-submit-signing-request (its action.yml and index.js) to run the real action"
        );
        return None;
    };
    assert!(
        dir.join("index.js").is_file(),
        "{} has no index.js",
        dir.display()
    );
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("SKIPPED: node is not installed; the action runs on node");
        return None;
    }
    Some(dir)
}

/// Runs the action in `dir` as a runner runs a step: its inputs as `INPUT_*` (the defaults of action.yml given,
/// as the runner gives them), the job's variables, and the gateway's CA through `NODE_EXTRA_CA_CERTS`. The exit
/// code, stdout, and the outputs written to `GITHUB_OUTPUT`.
fn run_action(
    dir: &Path,
    gateway: &Gateway,
    github: &GithubApi,
    work: &Path,
    inputs: &[(&str, &str)],
) -> (bool, String, String) {
    let output_file = work.join("github-output");
    std::fs::write(&output_file, "").unwrap();
    let runner_temp = work.join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let mut command = Command::new("node");
    command
        .arg(dir.join("index.js"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_WORKSPACE", work)
        .env("RUNNER_TEMP", &runner_temp)
        .env("GITHUB_RUN_ID", "7")
        .env("GITHUB_REPOSITORY", REPOSITORY)
        .env("NODE_EXTRA_CA_CERTS", gateway.tls_ca());
    let defaults = [
        ("connector-url", gateway.api_url().to_owned()),
        ("api-token", gateway.api_token().to_owned()),
        ("organization-id", gateway.organization_id().to_owned()),
        ("project-slug", "demo".to_owned()),
        ("github-token", github.token.clone()),
        ("wait-for-completion", "true".to_owned()),
        ("wait-for-completion-timeout-in-seconds", "120".to_owned()),
        ("service-unavailable-timeout-in-seconds", "60".to_owned()),
        ("download-signed-artifact-timeout-in-seconds", "60".to_owned()),
        ("skip-decompress", "false".to_owned()),
    ];
    for (name, value) in &defaults {
        command.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    for (name, value) in inputs {
        command.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    let out = command.output().unwrap();
    let outputs = std::fs::read_to_string(&output_file).unwrap();
    (
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("::error::"),
        tools::output_text(&out),
        outputs,
    )
}

#[test]
fn the_real_action_signs_through_the_gateway_when_its_checkout_is_given() {
    let Some(dir) = action_dir() else { return };
    require_tool!("notation");
    let github = github();
    let gateway = start(&github);
    let work = tempfile::tempdir().unwrap();
    let v2 = std::fs::read_to_string(dir.join("action.yml"))
        .unwrap()
        .contains("skip-decompress");

    let out_dir = work.path().join("signed");
    let (ok, log, outputs) = run_action(
        &dir,
        &gateway,
        &github,
        work.path(),
        &[
            ("signing-policy-slug", "rsa-2048"),
            ("github-artifact-id", "70"),
            ("output-artifact-directory", out_dir.to_str().unwrap()),
        ],
    );
    assert!(ok, "the action failed:\n{log}");
    assert!(outputs.contains("signing-request-id"), "{outputs}");
    verify_tarball(
        &gateway,
        work.path(),
        &std::fs::read(out_dir.join("image.tar")).unwrap(),
    );

    if v2 {
        let raw_dir = work.path().join("raw");
        let (ok, log, _) = run_action(
            &dir,
            &gateway,
            &github,
            work.path(),
            &[
                ("signing-policy-slug", "rsa-3072"),
                ("github-artifact-id", "71"),
                ("skip-decompress", "true"),
                ("output-artifact-directory", raw_dir.to_str().unwrap()),
            ],
        );
        assert!(ok, "the action failed:\n{log}");
        verify_tarball(
            &gateway,
            work.path(),
            &std::fs::read(raw_dir.join("image.tar")).unwrap(),
        );
    }

    // Without wait-for-completion the action ends once the artifact is on the gateway, the request held.
    let (ok, log, _) = run_action(
        &dir,
        &gateway,
        &github,
        work.path(),
        &[
            ("signing-policy-slug", "ec-256"),
            ("github-artifact-id", "70"),
            ("wait-for-completion", "false"),
        ],
    );
    assert!(ok, "the action failed:\n{log}");

    // A refused request fails the step with the gateway's message.
    let (ok, log, _) = run_action(
        &dir,
        &gateway,
        &github,
        work.path(),
        &[("signing-policy-slug", "rsa-2048"), ("github-artifact-id", "80")],
    );
    assert!(!ok, "the action succeeded:\n{log}");
    assert!(
        log.contains("::error::GitHub says artifact 80 was made by workflow run 8, not by run 7"),
        "{log}"
    );
    assert!(!log.contains(&github.token), "{log}");
    assert_token_kept(&gateway, &github);
}
