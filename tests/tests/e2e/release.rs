//! `scripts/release` and `scripts/verify-release` end to end, against a fresh gateway and a local registry: every
//! artifact, SBOM and the checksums are signed through our gateway with our clients (cosign through the module,
//! notation through the plugin for the OCI artifacts), and the stock cosign, notation, oras and openssl accept
//! them with the gateway's root alone. A changed file, a swapped signature and another root are refused.
//!
//! The release is made with `--no-build` from CI's release build (the full form builds first: docs/release.md).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};

fn script(name: &str) -> Command {
    let mut command = Command::new(tools::workspace_root().join("scripts").join(name));
    command.env(
        "PATH",
        format!(
            "{}:{}",
            tools::tools_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    command
}

fn ok(output: Output, what: &str) -> String {
    let text = tools::output_text(&output);
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

fn verify(dir: &Path, root: &Path) -> Output {
    script("verify-release")
        .args(["--plain-http", "--root"])
        .arg(root)
        .arg(dir)
        .output()
        .expect("run scripts/verify-release")
}

/// Asserts verify-release refuses the release with a message containing `expected`.
fn refused(dir: &Path, root: &Path, expected: &str) {
    let output = verify(dir, root);
    let text = tools::output_text(&output);
    assert!(!output.status.success(), "verify-release accepted it:\n{text}");
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
}

#[test]
fn a_release_signed_through_our_gateway_verifies_with_stock_tools_and_tampering_is_refused() {
    for tool in [
        "cosign",
        "notation",
        "oras",
        "cargo-deb",
        "cargo-cyclonedx",
        "docker-registry",
    ] {
        require_tool!(tool);
    }
    let gateway = Gateway::start();
    let registry = Registry::start();
    let out = tempfile::Builder::new()
        .prefix("signpath-release-")
        .tempdir()
        .expect("temporary directory");
    let dir = out.path().join("release");
    let repository = format!("{}/signpath/releases", registry.localhost_host());

    ok(
        script("release")
            .args([
                "--key",
                "demo/ec-256",
                "--no-build",
                "--plain-http",
                "--registry",
                &repository,
                "--out",
            ])
            .arg(&dir)
            .envs(gateway.env_vars())
            .output()
            .expect("run scripts/release"),
        "scripts/release",
    );

    // The files: six artifacts, four SBOMs, the chain, the checksums, and a signature for each.
    let version = env!("CARGO_PKG_VERSION");
    let listed: Vec<String> = std::fs::read_to_string(dir.join("SHA256SUMS"))
        .expect("SHA256SUMS")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    let sboms = [
        "notation-signpath",
        "sigstore-kms-signpath",
        "signpath-pkcs11",
        "signpath-gateway",
    ]
    .map(|c| format!("{c}_{version}.cdx.json"));
    for sbom in &sboms {
        assert!(listed.contains(sbom), "{sbom} not in {listed:?}");
        let bom: Value =
            serde_json::from_slice(&std::fs::read(dir.join(sbom)).expect("SBOM")).expect("SBOM JSON");
        assert_eq!(bom["bomFormat"], "CycloneDX", "{sbom}");
        assert!(
            !bom["components"].as_array().is_none_or(Vec::is_empty),
            "{sbom} lists no dependencies"
        );
    }
    let debs = listed.iter().filter(|f| f.ends_with(".deb")).count();
    let archives = listed.iter().filter(|f| f.ends_with(".tar.gz")).count();
    assert_eq!((debs, archives), (4, 2), "{listed:?}");
    assert!(listed.iter().any(|f| f == "signing-chain.pem"));
    for file in listed.iter().map(String::as_str).chain(["SHA256SUMS"]) {
        assert!(
            dir.join(format!("{file}.sig")).is_file(),
            "{file} has no signature"
        );
    }
    let oci = std::fs::read_to_string(dir.join("oci-artifacts.txt")).expect("oci-artifacts.txt");
    // Each archive, .deb and SBOM is pushed as an OCI artifact: 2 + 4 + 4.
    assert_eq!(oci.lines().count(), 10, "{oci}");
    assert!(
        oci.lines().all(|l| l.contains(&format!(" {repository}@sha256:"))),
        "{oci}"
    );

    // The stock tools accept it with the gateway's root alone.
    let root = gateway.root_ca_pem();
    let verified = ok(verify(&dir, &root), "scripts/verify-release");
    assert!(
        verified.contains("cosign: SHA256SUMS and its 11 files verified"),
        "{verified}"
    );
    assert!(
        verified.contains("notation: 10 OCI artifacts verified"),
        "{verified}"
    );

    // Another root with the gateway's root's name is refused.
    let other_root = out.path().join("other-root.pem");
    std::fs::write(&other_root, other_root_pem()).expect("write the other root");
    refused(&dir, &other_root, "not at the published root");

    // A changed artifact is refused by its checksum, and by its signature when the checksum is changed too.
    let deb = listed
        .iter()
        .find(|f| f.starts_with("signpath-gateway_"))
        .expect("the gateway's .deb");
    let original = std::fs::read(dir.join(deb)).expect("the .deb");
    let mut changed = original.clone();
    changed.push(0);
    std::fs::write(dir.join(deb), &changed).expect("change the .deb");
    refused(&dir, &root, "does not match SHA256SUMS");
    std::fs::write(dir.join(deb), &original).expect("restore the .deb");

    // A signature that belongs to another file is refused.
    let signature = dir.join(format!("{deb}.sig"));
    let saved = std::fs::read(&signature).expect("the signature");
    std::fs::copy(dir.join(format!("{}.sig", sboms[0])), &signature).expect("swap the signature");
    refused(&dir, &root, &format!("the signature of {deb} does not verify"));
    std::fs::write(&signature, saved).expect("restore the signature");

    ok(verify(&dir, &root), "scripts/verify-release after restoring");
}

/// A self-signed CA certificate with the gateway root's name but another key.
fn other_root_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SignPath Gateway Demo Root");
    params.self_signed(&key).expect("a certificate").pem()
}
