//! `signpath-gateway doctor` on a setup made by `init` (no problems, exit 0) and on broken ones: a TLS key others
//! can read, a wrong HSM PIN, a policy whose key is not in the HSM. Each problem is named with its fix, and the
//! exit status is non-zero.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use e2e_tests::gateway::{free_port, Gateway};

fn init(dir: &Path) {
    let out = Command::new(Gateway::binary())
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--port", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn doctor(dir: &Path) -> (bool, String) {
    let out = Command::new(Gateway::binary())
        .args(["doctor", "--config"])
        .arg(dir.join("gateway.toml"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn doctor_finds_no_problem_in_a_fresh_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    init(&dir);
    let (ok, out) = doctor(&dir);
    assert!(ok, "{out}");
    assert!(out.contains("logged in to token"), "{out}");
    assert!(out.contains("the TLS key matches its certificate"), "{out}");
    assert!(
        out.contains("the TLS certificate is valid for 127.0.0.1"),
        "{out}"
    );
    assert!(out.contains("no problems found"), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");
}

#[test]
fn doctor_names_each_problem_with_its_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    init(&dir);
    let key = dir.join("tls/server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = doctor(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("has mode 644: others can read it"), "{out}");
    assert!(
        out.contains(&format!("fix: Run `chmod 600 {}`.", key.display())),
        "{out}"
    );

    // A policy whose key label is not in the HSM.
    let config_path = dir.join("gateway.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replacen("key_label = \"ec-256\"", "key_label = \"missing\"", 1),
    )
    .unwrap();
    let (ok, out) = doctor(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Create the key labelled \"missing\" in the token"),
        "{out}"
    );

    // A policy whose certificate is for another key of the token.
    std::fs::write(
        &config_path,
        config.replacen("key_label = \"rsa-2048\"", "key_label = \"rsa-3072\"", 1),
    )
    .unwrap();
    let (ok, out) = doctor(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains("is a certificate for another key than \"rsa-3072\" in the HSM"),
        "{out}"
    );
    assert!(
        out.contains("policy demo/ec-256: its certificate is for key \"ec-256\""),
        "{out}"
    );

    // A wrong PIN.
    std::fs::write(dir.join("hsm-pin"), "not-the-pin").unwrap();
    let (ok, out) = doctor(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains("cannot log in to token \"signpath-gateway\""),
        "{out}"
    );
    assert!(
        out.contains("fix: Check [hsm] token_label and that the PIN file holds the token's user PIN."),
        "{out}"
    );
    assert!(!out.contains("not-the-pin"), "the PIN is never printed: {out}");
}
