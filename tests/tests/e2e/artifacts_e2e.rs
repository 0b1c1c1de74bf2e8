//! Non-container artifacts, both ways the product promises them:
//!
//! - files signed as files: `cosign sign-blob` through `libsignpath_pkcs11.so` with EC and RSA policies, checked
//!   by `cosign verify-blob` and, independently, by `openssl dgst -verify`;
//! - files pushed with `oras push` as OCI artifacts of their own type (a Helm chart, a CycloneDX SBOM, a tarball),
//!   signed by `notation sign --plugin signpath` in JWS and COSE and checked by `notation verify` against the
//!   gateway's root, and pulled back byte for byte.
//!
//! notation 1.3 has no blob signing; notation 2's `notation blob sign` drives the same plugin protocol
//! (generate-signature), so it needs no change in the plugin: it will be one more test here.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use e2e_tests::gateway::Gateway;
use e2e_tests::notation::Notation;
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};

/// Runs a command that must succeed; its stdout.
fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        tools::output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// cosign with the gateway's client settings in its own environment (the module reads them; the PIN is the
/// literal `CONFIG`), kept off the public Sigstore services as cosign_e2e.rs keeps it.
struct Cosign {
    binary: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cosign {
    fn new(binary: PathBuf, gateway: &Gateway) -> Self {
        Self {
            binary,
            home: tempfile::tempdir().expect("cosign's home"),
            env: gateway.env_vars(),
        }
    }

    /// The `pkcs11:` URI of the policy `demo/<policy>`.
    fn key_uri(&self, policy: &str) -> String {
        format!(
            "pkcs11:token=SignPath;object=demo%2F{policy}?module-path={}&pin-value=CONFIG",
            tools::release_artifact("libsignpath_pkcs11.so").display()
        )
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env_remove("COSIGN_PKCS11_PIN")
            .env_remove("COSIGN_PKCS11_MODULE_PATH")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn run(&self, command: &mut Command) -> String {
        stdout_of(command)
    }

    /// The policy key's public key, PEM, as cosign exports it from the token.
    fn public_key(&self, policy: &str) -> String {
        let key = self.key_uri(policy);
        self.run(self.command().args(["public-key", "--key", &key]))
    }
}

#[test]
fn cosign_signs_files_with_ec_and_rsa_policies_and_independent_verifiers_accept_them() {
    let cosign_bin = require_tool!("cosign");
    let openssl = require_tool!("openssl");
    let gateway = Gateway::start();
    let cosign = Cosign::new(cosign_bin, &gateway);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"a release tarball's bytes").expect("write the file");

    // cosign's words for a signature that does not match, per key type.
    for (policy, mismatch) in [
        (
            "ec-256",
            "invalid signature when validating ASN.1 encoded signature",
        ),
        ("rsa-3072", "crypto/rsa: verification error"),
    ] {
        let signature = dir.path().join(format!("{policy}.sig"));
        let key = cosign.key_uri(policy);
        cosign.run(
            cosign
                .command()
                .args([
                    "sign-blob",
                    "--yes",
                    "--tlog-upload=false",
                    "--key",
                    &key,
                    "--output-signature",
                ])
                .arg(&signature)
                .arg(&file),
        );
        let public_key = dir.path().join(format!("{policy}.pub"));
        std::fs::write(&public_key, cosign.public_key(policy)).expect("write the public key");

        let verified = cosign_verify_blob(&cosign, &public_key, &signature, &file);
        assert!(verified.is_ok(), "{policy}: {verified:?}");

        // OpenSSL, which shares no code with cosign or us, checks the same signature over the file's SHA-256.
        let der = dir.path().join(format!("{policy}.sig.der"));
        let signature_b64 = std::fs::read_to_string(&signature).expect("read the signature");
        std::fs::write(&der, base64_decode(signature_b64.trim())).expect("write the DER signature");
        let checked = stdout_of(
            Command::new(&openssl)
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public_key)
                .arg("-signature")
                .arg(&der)
                .arg(&file),
        );
        assert_eq!(checked.trim(), "Verified OK", "{policy}");

        // One byte changed: both refuse.
        let tampered = dir.path().join("tampered.tar.gz");
        std::fs::write(&tampered, b"a release tarball's bytez").expect("write the file");
        let refused = cosign_verify_blob(&cosign, &public_key, &signature, &tampered);
        assert!(
            refused.as_ref().is_err_and(|text| text.contains(mismatch)),
            "{policy}: {refused:?}"
        );
        let refused = Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public_key)
            .arg("-signature")
            .arg(&der)
            .arg(&tampered)
            .output()
            .expect("run openssl");
        assert!(
            !refused.status.success(),
            "{policy}: {}",
            tools::output_text(&refused)
        );
        assert_eq!(
            String::from_utf8_lossy(&refused.stdout).trim(),
            "Verification failure"
        );
    }
}

fn cosign_verify_blob(cosign: &Cosign, key: &Path, signature: &Path, file: &Path) -> Result<String, String> {
    let output = cosign
        .command()
        .args(["verify-blob", "--insecure-ignore-tlog=true", "--key"])
        .arg(key)
        .arg("--signature")
        .arg(signature)
        .arg(file)
        .output()
        .expect("run cosign verify-blob");
    let text = tools::output_text(&output);
    if output.status.success() && text.contains("Verified OK") {
        Ok(text)
    } else {
        Err(text)
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("cosign writes base64")
}

/// One file pushed as an OCI artifact: what oras is told, and what the manifest must say back.
struct Artifact {
    repository: &'static str,
    file: &'static str,
    content: &'static [u8],
    media_type: &'static str,
    /// `--artifact-type` for oras; `None` when the type is the config's media type (a Helm chart's).
    artifact_type: Option<&'static str>,
    /// `--config FILE:TYPE` for oras (Helm's chart metadata).
    config: Option<(&'static str, &'static [u8], &'static str)>,
}

const ARTIFACTS: [Artifact; 3] = [
    Artifact {
        repository: "charts/app",
        file: "app-0.1.0.tgz",
        content: b"a Helm chart's gzipped tar would be here",
        media_type: "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        artifact_type: None,
        config: Some((
            "chart.json",
            br#"{"name":"app","version":"0.1.0","apiVersion":"v2"}"#,
            "application/vnd.cncf.helm.config.v1+json",
        )),
    },
    Artifact {
        repository: "sboms/app",
        file: "app.cdx.json",
        content: br#"{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[]}"#,
        media_type: "application/vnd.cyclonedx+json",
        artifact_type: Some("application/vnd.cyclonedx+json"),
        config: None,
    },
    Artifact {
        repository: "files/app",
        file: "app_0.1.0_linux_amd64.tar.gz",
        content: b"a release tarball",
        media_type: "application/gzip",
        artifact_type: Some("application/vnd.signpath.example.tarball.v1"),
        config: None,
    },
];

#[test]
fn notation_signs_oras_artifacts_of_their_own_type_in_jws_and_cose() {
    let notation_bin = require_tool!("notation");
    let oras = require_tool!("oras");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::with_plugin(&notation_bin, gateway.env_vars());
    notation.trust(&gateway.root_ca_pem());
    let dir = tempfile::tempdir().expect("temporary directory");

    for artifact in &ARTIFACTS {
        std::fs::write(dir.path().join(artifact.file), artifact.content).expect("write the file");
        let tagged = format!("{}/{}:v1", registry.localhost_host(), artifact.repository);
        let mut push = Command::new(&oras);
        push.current_dir(dir.path())
            .args(["push", "--plain-http", "--format", "json"]);
        if let Some(artifact_type) = artifact.artifact_type {
            push.args(["--artifact-type", artifact_type]);
        }
        if let Some((name, content, media_type)) = artifact.config {
            std::fs::write(dir.path().join(name), content).expect("write the config");
            push.args(["--config", &format!("{name}:{media_type}")]);
        }
        let pushed: Value = serde_json::from_str(&stdout_of(
            push.arg(&tagged)
                .arg(format!("{}:{}", artifact.file, artifact.media_type)),
        ))
        .expect("oras push --format json");
        let digest = pushed["digest"].as_str().expect("digest").to_owned();
        let reference = format!("{}/{}@{digest}", registry.localhost_host(), artifact.repository);

        // The registry holds an artifact of its own type, not an image.
        let manifest: Value = serde_json::from_str(&stdout_of(Command::new(&oras).args([
            "manifest",
            "fetch",
            "--plain-http",
            &reference,
        ])))
        .expect("the manifest");
        match (artifact.artifact_type, artifact.config) {
            (Some(artifact_type), _) => assert_eq!(manifest["artifactType"], artifact_type),
            (None, Some((_, _, config_type))) => assert_eq!(manifest["config"]["mediaType"], config_type),
            (None, None) => unreachable!("every artifact names its type"),
        }
        assert_eq!(manifest["layers"][0]["mediaType"], artifact.media_type);

        for format in ["jws", "cose"] {
            let signed = notation.ok(&[
                "sign",
                "--plugin",
                "signpath",
                "--id",
                "demo/ec-384",
                "--signature-format",
                format,
                &reference,
            ]);
            assert!(
                signed.contains(&format!("Successfully signed {reference}")),
                "{signed}"
            );
        }
        let verified = notation.ok(&["verify", &reference]);
        assert!(
            verified.contains(&format!("Successfully verified signature for {reference}")),
            "{}: {verified}",
            artifact.file
        );
        let mut formats: Vec<String> = notation
            .signatures(&reference)
            .iter()
            .map(|s| s["mediaType"].as_str().unwrap_or_default().to_owned())
            .collect();
        formats.sort();
        assert_eq!(
            formats,
            ["application/cose", "application/jose+json"],
            "{}",
            artifact.file
        );

        // What was signed is the file: oras pulls back the same bytes.
        let pulled = dir
            .path()
            .join(format!("pulled-{}", artifact.repository.replace('/', "-")));
        stdout_of(
            Command::new(&oras)
                .args(["pull", "--plain-http", "--output"])
                .arg(&pulled)
                .arg(&reference),
        );
        assert_eq!(
            std::fs::read(pulled.join(artifact.file)).expect("the pulled file"),
            artifact.content
        );
    }

    // A verifier trusting another root refuses them.
    let stranger = Notation::with_plugin(&notation_bin, Vec::new());
    let other_root = dir.path().join("other-root.pem");
    std::fs::write(&other_root, other_root_pem()).expect("write the other root");
    stranger.trust(&other_root);
    let reference = format!("{}/{}:v1", registry.localhost_host(), ARTIFACTS[0].repository);
    let refused = stranger.run(&["verify", &reference]);
    assert!(!refused.status.success(), "{}", tools::output_text(&refused));
}

/// A self-signed CA certificate that is not the gateway's root.
fn other_root_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SignPath Gateway Demo Root");
    params.self_signed(&key).expect("a certificate").pem()
}
