//! Secrets never come from notation's `--plugin-config` (issue 13): notation stores plugin config in plain text in
//! `signingkeys.json` and prints it with `--debug`. The CI identity token is refused there as the API token is,
//! with the exact error JSON, before any configuration is read or any request made.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::io::Write;
use std::process::{Command, Stdio};

use e2e_tests::tools;

#[test]
fn an_identity_token_in_plugin_config_is_a_validation_error() {
    let home = tempfile::tempdir().unwrap();
    let request = serde_json::json!({
        "contractVersion": "1.0",
        "keyId": "demo/ec-256",
        "pluginConfig": {"OrganizationId": "org", "IdToken": "eyJhbGciOiJSUzI1NiJ9.claims.signature"},
    });
    let mut child = Command::new(tools::release_artifact("notation-signpath"))
        .arg("describe-key")
        .env_clear()
        .env("HOME", home.path())
        .env("SIGNPATH_API_URL", "https://127.0.0.1:9")
        .env("SIGNPATH_API_TOKEN", "plugin-config-test-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(
        error,
        serde_json::json!({
            "errorCode": "VALIDATION_ERROR",
            "errorMessage": "\"IdToken\" must not be set in pluginConfig (--plugin-config): notation stores plugin \
                config in signingkeys.json and prints it in debug logs; set the identity token in SIGNPATH_ID_TOKEN \
                instead",
        })
    );
}
