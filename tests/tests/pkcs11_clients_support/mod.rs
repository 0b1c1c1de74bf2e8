//! What `pkcs11_clients.rs` drives the clients with: running a tool against the test binary's gateway and
//! failing with its output, pkcs11-tool and openssl commands, a policy's key id as the token lists it, exporting
//! its public key to PEM, signing with pkcs11-tool, and opening a temporary home to an unprivileged user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e_tests::tools;

use crate::pkcs11_support::{gateway, module_path};

/// Runs a command in `dir` with the gateway's environment; fails the test with its output unless it succeeds.
pub fn run(dir: &Path, command: &mut Command) -> String {
    gateway();
    let output: Output = command.current_dir(dir).output().expect("start the tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{text}",
        output.status
    );
    text
}

/// OpenSC's pkcs11-tool with the module under test.
pub fn pkcs11_tool() -> Command {
    let mut command = Command::new(tools::tool("pkcs11-tool"));
    command.arg("--module").arg(module_path());
    command
}

/// A key id as pkcs11-tool's `--id` takes it: the label's bytes in hex.
pub fn hex_id(label: &str) -> String {
    hex::encode(label.as_bytes())
}

/// The openssl command line tool.
pub fn openssl() -> Command {
    Command::new(tools::tool("openssl"))
}

/// A policy's full key id (`Project/ec-256`), as the token lists it.
pub fn key_id(dir: &Path, policy: &str) -> String {
    let objects = run(dir, pkcs11_tool().args(["--login", "--pin", "CONFIG", "-O"]));
    objects
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(str::trim)
        .find(|l| l.ends_with(&format!("/{policy}")))
        .unwrap_or_else(|| panic!("no {policy} policy in:\n{objects}"))
        .to_owned()
}

/// Exports a policy's public key with pkcs11-tool to `<file>.der` and converts it with openssl to `<file>.pem`.
pub fn export_public_key(d: &Path, id: &str, file: &str) {
    run(
        d,
        pkcs11_tool()
            .args(["--pin", "CONFIG", "-r", "-y", "pubkey", "--id", &hex_id(id), "-o"])
            .arg(format!("{file}.der")),
    );
    run(
        d,
        openssl()
            .args(["pkey", "-pubin", "-inform", "DER", "-in"])
            .arg(format!("{file}.der"))
            .arg("-out")
            .arg(format!("{file}.pem")),
    );
}

/// Signs `input` into `out` with pkcs11-tool, the policy `id` and the mechanism arguments given.
pub fn pkcs11_tool_sign(d: &Path, id: &str, mechanism: &[&str], input: &str, out: &str) {
    let mut command = pkcs11_tool();
    command
        .args([
            "--pin",
            "CONFIG",
            "--sign",
            "--id",
            &hex_id(id),
            "-i",
            input,
            "-o",
            out,
        ])
        .args(mechanism);
    run(d, &mut command);
}

/// Lets the unprivileged user read the temporary home (tempfile creates it 0700).
pub fn run_readable_by_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(dir) {
        let mode = if entry.is_dir() {
            0o755
        } else {
            0o644 | (std::fs::metadata(&entry).expect("stat").permissions().mode() & 0o111)
        };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).expect("read the directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(walk(&path));
        } else {
            all.push(path);
        }
    }
    all
}
