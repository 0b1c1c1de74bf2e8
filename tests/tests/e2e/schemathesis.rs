//! schemathesis (PyPI, pinned in scripts/tools/schemathesis/requirements.txt) against the real gateway with
//! docs/openapi.yaml: the spec's examples, its coverage cases and property-based fuzzing of every operation, with
//! all of schemathesis's checks (no 5xx; every status, content type, header and body as the spec says; invalid
//! input refused; valid input accepted, with the exceptions tests/schemathesis.toml explains).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use e2e_tests::gateway::{sign_ec256, Gateway};
use e2e_tests::{require_tool, tools};

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_spec() {
    let st = require_tool!("st");
    let gateway = Gateway::start();
    // One signing request of this token, so that the GET operations have something to find.
    let signed = sign_ec256(
        &gateway.https_client(),
        &gateway.api_base(),
        gateway.api_token(),
        &[0u8; 32],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = tools::workspace_root();
    let output = gateway
        .command(&st)
        .env(
            "SIGNPATH_TEST_SIGNING_REQUEST_ID",
            signed["signingRequestId"].as_str().unwrap(),
        )
        .env("HOME", dir.path())
        .arg("--no-color")
        .arg("--config-file")
        .arg(root.join("tests/schemathesis.toml"))
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = tools::output_text(&output);
    assert!(output.status.success(), "schemathesis:\n{text}");
    // Every generated case passed ("N generated, N passed"); warnings (operations that found no data of their
    // own, such as the file routes' artifacts) are no failures.
    let cases = text
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or_else(|| panic!("no summary of test cases:\n{text}"));
    let counts: Vec<&str> = cases.split_whitespace().collect();
    assert!(
        counts.len() >= 4 && counts[0] == counts[2] && counts[3].starts_with("passed"),
        "{cases}\n{text}"
    );
    assert!(
        !text.contains(gateway.api_token()),
        "the token is filtered from the report"
    );

    // The gateway's own record of the run: many requests, none answered with a 5xx.
    let audit = gateway.audit_json();
    assert!(audit.len() > 200, "schemathesis sent {} requests", audit.len());
    for status in [200, 400, 401, 404] {
        assert!(
            audit.iter().any(|r| r["status"] == status),
            "no {status} among the answers"
        );
    }
    let server_errors: Vec<_> = audit
        .iter()
        .filter(|r| r["status"].as_u64().unwrap_or(0) >= 500)
        .collect();
    assert!(server_errors.is_empty(), "{server_errors:#?}");
}
