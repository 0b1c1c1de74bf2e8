//! A gateway that never answered (issue 20): `notation-signpath` against a port nobody listens on gives up after
//! `UnreachableTimeoutInSeconds`, not the ten minutes of `ServiceUnavailableTimeoutInSeconds`, with an error that
//! names the URL and the setting, and logs each retry with its reason and the time left.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::gateway::free_port;
use e2e_tests::tools;

const ORGANIZATION: &str = "8f5c2a51-7d1e-4c2b-9a55-0c1d2e3f4a5b";

struct Outcome {
    code: i32,
    stderr: serde_json::Value,
    took: Duration,
    log: String,
}

/// `describe-key` against a closed loopback port with SignPath's 600 s service budget, and `extra` settings.
fn describe_key_against_closed_port(port: u16, extra: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(tools::release_artifact("notation-signpath"))
        .arg("describe-key")
        .env_clear()
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("SIGNPATH_LOG_FILE_DIRECTORY", dir.path().join("logs"))
        .env("SIGNPATH_API_URL", format!("http://127.0.0.1:{port}"))
        .env("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP", "true")
        .env("SIGNPATH_ORGANIZATION_ID", ORGANIZATION)
        .env("SIGNPATH_API_TOKEN", "unreachable-test-token")
        .env("SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS", "600")
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"contractVersion":"1.0","keyId":"demo/ec-256"}"#)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    let log = std::fs::read_to_string(dir.path().join("logs/SignPath.CryptoProviders.Notation.txt")).unwrap();
    Outcome {
        code: output.status.code().unwrap(),
        stderr: serde_json::from_slice(&output.stderr).unwrap(),
        took,
        log,
    }
}

fn assert_names_url_and_setting(outcome: &Outcome, port: u16) {
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.stderr["errorCode"], "ERROR", "{}", outcome.stderr);
    let message = outcome.stderr["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "could not reach the signing gateway at http://127.0.0.1:{port}/v1/{ORGANIZATION}/Cryptoki/MySigningPolicies after "
        )),
        "{message}"
    );
    assert!(
        message.contains("no attempt ever connected, so the client stopped after UnreachableTimeoutInSeconds (SIGNPATH_UNREACHABLE_TIMEOUT_IN_SECONDS): check ApiUrl (SIGNPATH_API_URL)"),
        "{message}"
    );
}

#[test]
fn a_closed_port_fails_after_the_unreachable_budget_not_the_service_budget() {
    let port = free_port();
    let outcome = describe_key_against_closed_port(port, &[("SIGNPATH_UNREACHABLE_TIMEOUT_IN_SECONDS", "3")]);
    assert_names_url_and_setting(&outcome, port);
    assert!(
        outcome.took >= Duration::from_secs(1) && outcome.took < Duration::from_secs(15),
        "took {:?}",
        outcome.took
    );
    // Every retry is in the log, at info, with its reason and the time left.
    let retries: Vec<&str> = outcome
        .log
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect();
    assert!(!retries.is_empty(), "{}", outcome.log);
    for line in &retries {
        assert!(line.contains(" INFO "), "{line}");
        assert!(
            line.contains("Connection refused") || line.contains("connection refused"),
            "{line}"
        );
        assert!(line.contains("s left of UnreachableTimeoutInSeconds"), "{line}");
    }
    assert!(!outcome.log.contains("unreachable-test-token"));
}

#[test]
fn by_default_a_gateway_never_reached_fails_within_about_twenty_seconds() {
    let port = free_port();
    let outcome = describe_key_against_closed_port(port, &[]);
    assert_names_url_and_setting(&outcome, port);
    assert!(
        outcome.took >= Duration::from_secs(10) && outcome.took < Duration::from_secs(45),
        "took {:?}",
        outcome.took
    );
}
