//! The clients remove the exact secrets they hold from what they send (issue 13): `pkcs11-tool` given the
//! `OrganizationId:ApiToken` PIN on its command line, in a form no pattern list catches (`-pPIN`, an attached
//! short option), signs through the module; the gateway's audit log, read with `signpath-gateway audit --json`,
//! has the command line with `***` where the PIN was, and the module's log has no token either.
//!
//! The token is on argv here on purpose: that is the attack. It is a throwaway token of a throwaway gateway.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::path::Path;
use std::process::Command;

use e2e_tests::gateway::Gateway;
use e2e_tests::{require_tool, tools};

/// pkcs11-tool with the module and only what locates the gateway in its environment: no token.
fn pkcs11_tool(gateway: &Gateway, logs: &Path) -> Command {
    let mut command = Command::new(tools::tool("pkcs11-tool"));
    command
        .arg("--module")
        .arg(tools::release_artifact("libsignpath_pkcs11.so"))
        .env_clear()
        .env("HOME", logs)
        .env("SIGNPATH_API_URL", gateway.api_url())
        .env("SIGNPATH_TLS_CA_BUNDLE", gateway.tls_ca())
        .env("SIGNPATH_LOG_FILE_DIRECTORY", logs)
        .env("SIGNPATH_LOG_FILE_LEVEL", "verbose");
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", tools::output_text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_pin_on_the_command_line_never_reaches_the_audit_log() {
    require_tool!("pkcs11-tool");
    let gateway = Gateway::start();
    let token = gateway.api_token().to_owned();
    let pin = format!("{}:{token}", gateway.organization_id());
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let attached = format!("-p{pin}");

    let objects = run(pkcs11_tool(&gateway, d).args(["--login", &attached, "-O"]));
    let label = objects
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(str::trim)
        .find(|l| l.contains("ec-256"))
        .unwrap()
        .to_owned();
    std::fs::write(d.join("digest"), [7u8; 32]).unwrap();
    run(pkcs11_tool(&gateway, d)
        .current_dir(d)
        .args(["--login", &attached, "--sign", "-m", "ECDSA", "--id"])
        .arg(hex::encode(label.as_bytes()))
        .args(["-i", "digest", "-o", "signature"]));
    assert_eq!(std::fs::read(d.join("signature")).unwrap().len(), 64);

    let records = gateway.audit_json();
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(&token), "the token is in the audit log");
    // The command line was sent (the audit record holds it, however nested), with the PIN replaced.
    assert!(text.contains("--login -p*** --sign -m ECDSA"), "{text}");
    let log = std::fs::read_to_string(d.join("SignPath.CryptoProviders.Cryptoki.txt")).unwrap();
    assert!(!log.is_empty());
    assert!(!log.contains(&token), "the token is in the module's log");
}
