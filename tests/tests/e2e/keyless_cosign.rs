//! Stock cosign v2.6.1 (`cosign-release`, built as released: no cgo, no tags) signing keyless against the gateway
//! alone, with the `signing_config.json` and `trusted_root.json` it serves: a ten-minute certificate from its
//! keyless CA for the stand-in issuer's token, the signature's entry in its transparency log (Rekor v2) and a
//! timestamp from its TSA. Verified with `--trusted-root` and the certificate's identity: log inclusion and the
//! timestamp are checked, and the same signature fails for another identity, after tampering, under another log key
//! and with a checkpoint of the log that does not contain it. Nothing public is contacted.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::Value;
use sha2::Digest as _;

use super::keyless_ca::{job_claims, start, AUDIENCE};
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::oidc::{Issuer, ISSUER};
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};

/// The SAN the keyless CA gives `job_claims("acme/app")`'s workflow.
const IDENTITY: &str = "https://ci.example/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

/// A CI job's working directory: the gateway's two Sigstore documents and a token file.
struct Job {
    binary: PathBuf,
    home: tempfile::TempDir,
    token: String,
}

impl Job {
    fn new(binary: PathBuf, gateway: &Gateway, issuer: &Issuer) -> Self {
        let home = tempfile::tempdir().unwrap();
        for (path, file) in [
            ("/sigstore/signing_config.json", "signing_config.json"),
            ("/sigstore/trusted_root.json", "trusted_root.json"),
        ] {
            let answer = gateway
                .https_client()
                .get(format!("{}{path}", gateway.api_url()))
                .send()
                .unwrap();
            assert_eq!(answer.status(), 200, "{path}");
            std::fs::write(home.path().join(file), answer.text().unwrap()).unwrap();
        }
        // A file, not the token itself: a token on the command line is in every process listing.
        let token = issuer.token(AUDIENCE, &job_claims("acme/app"));
        std::fs::write(home.path().join("id-token"), &token).unwrap();
        Self { binary, home, token }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.home.path().join(file)
    }

    /// Stock cosign with the gateway's TLS CA as the system's, kept off the public Sigstore (no TUF, no proxy for
    /// anything that is not loopback).
    fn cosign(&self, gateway: &Gateway) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("SSL_CERT_FILE", gateway.tls_ca())
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("TUF_ROOT", self.home.path().join("tuf"));
        command
    }

    /// `cosign verify-blob` of `artifact` with `bundle` against `trusted_root`, for `identity`.
    fn verify_blob(
        &self,
        gateway: &Gateway,
        bundle: &str,
        trusted_root: &str,
        identity: &str,
        artifact: &str,
    ) -> Output {
        self.cosign(gateway)
            .args(["verify-blob", "--bundle", bundle, "--trusted-root", trusted_root])
            .args(verification(identity))
            .arg(artifact)
            .output()
            .unwrap()
    }
}

/// What `cosign verify` and `verify-blob` are told of a keyless signature from the gateway: the identity and
/// issuer its certificate must name, that its certificates carry no SCT (there is no CT log), and that the TSA's
/// timestamp is the time they are checked at. Nothing else is relaxed: log inclusion is checked.
fn verification(identity: &str) -> [&str; 6] {
    [
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        ISSUER,
        "--insecure-ignore-sct",
        "--use-signed-timestamps",
    ]
}

fn refused(output: &Output, what: &str) -> String {
    assert!(!output.status.success(), "{what} must not verify");
    tools::output_text(output)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn cosign_as_released_signs_a_blob_keyless_and_verifies_log_inclusion_and_timestamp() {
    let binary = require_tool!("cosign-release");
    let issuer = Issuer::new();
    let gateway = start(&issuer);
    let job = Job::new(binary, &gateway, &issuer);
    std::fs::write(
        job.path("artifact.txt"),
        b"a blob signed keyless through the gateway",
    )
    .unwrap();
    // The log before this signature: a checkpoint it signed that cannot contain the entry.
    let before = run_cli(&gateway.dir(), &["log", "checkpoint"]);

    let sign = job
        .cosign(&gateway)
        .args(["sign-blob", "--yes", "--identity-token", "id-token"])
        .args([
            "--signing-config",
            "signing_config.json",
            "--trusted-root",
            "trusted_root.json",
        ])
        .args(["--bundle", "artifact.sigstore.json", "artifact.txt"])
        .output()
        .unwrap();
    let text = tools::output_text(&sign);
    assert!(sign.status.success(), "cosign sign-blob: {text}");
    assert!(!text.contains(&job.token), "the token reached cosign's output");

    // The bundle holds the log's entry (Rekor v2, with its inclusion proof and checkpoint) and the TSA's timestamp.
    let bundle = read_json(&job.path("artifact.sigstore.json"));
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["kind"], "hashedrekord", "{bundle}");
    assert_eq!(entry["kindVersion"]["version"], "0.0.2", "{bundle}");
    assert!(
        entry["inclusionProof"]["checkpoint"]["envelope"].is_string(),
        "{bundle}"
    );
    assert!(
        bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            ["signedTimestamp"]
            .is_string(),
        "{bundle}"
    );

    let verified = job.verify_blob(
        &gateway,
        "artifact.sigstore.json",
        "trusted_root.json",
        IDENTITY,
        "artifact.txt",
    );
    assert!(
        verified.status.success(),
        "cosign verify-blob: {}",
        tools::output_text(&verified)
    );

    // The same signature, for another identity.
    let other = IDENTITY.replace("acme/app", "evil/app");
    refused(
        &job.verify_blob(
            &gateway,
            "artifact.sigstore.json",
            "trusted_root.json",
            &other,
            "artifact.txt",
        ),
        "another identity",
    );
    // Another artifact under the same bundle.
    std::fs::write(
        job.path("tampered.txt"),
        b"a blob signed keyless through the gateway!",
    )
    .unwrap();
    refused(
        &job.verify_blob(
            &gateway,
            "artifact.sigstore.json",
            "trusted_root.json",
            IDENTITY,
            "tampered.txt",
        ),
        "a tampered artifact",
    );
    // A trusted root whose log key is another: the checkpoint no longer verifies.
    let mut other_root = read_json(&job.path("trusted_root.json"));
    let other_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let spki = other_key.verifying_key().to_public_key_der().unwrap();
    other_root["tlogs"][0]["publicKey"]["rawBytes"] = BASE64.encode(spki.as_bytes()).into();
    other_root["tlogs"][0]["logId"]["keyId"] = BASE64.encode(sha2::Sha256::digest(spki.as_bytes())).into();
    std::fs::write(job.path("other_root.json"), other_root.to_string()).unwrap();
    refused(
        &job.verify_blob(
            &gateway,
            "artifact.sigstore.json",
            "other_root.json",
            IDENTITY,
            "artifact.txt",
        ),
        "a trusted root with another log key",
    );
    // A checkpoint the log did sign, but of the tree before this entry: the inclusion proof cannot hold.
    let mut stale = bundle.clone();
    stale["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        before.into();
    std::fs::write(job.path("stale.sigstore.json"), stale.to_string()).unwrap();
    refused(
        &job.verify_blob(
            &gateway,
            "stale.sigstore.json",
            "trusted_root.json",
            IDENTITY,
            "artifact.txt",
        ),
        "a checkpoint that does not contain the entry",
    );

    // The certificate is audited like a signature, and the log and the audit store agree entry for entry.
    let audit = gateway.audit_json();
    assert!(
        audit
            .iter()
            .any(|r| r["route"] == "/api/v2/signingCert" && r["outcome"] == "allowed"),
        "{audit:?}"
    );
    let checked = Command::new(Gateway::binary())
        .args(["log", "verify", "--config"])
        .arg(gateway.config())
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "log verify: {}",
        tools::output_text(&checked)
    );
}

#[test]
fn cosign_as_released_signs_an_image_keyless_and_verifies_it_from_the_registry() {
    let binary = require_tool!("cosign-release");
    require_tool!("docker-registry");
    let issuer = Issuer::new();
    let gateway = start(&issuer);
    let job = Job::new(binary, &gateway, &issuer);
    let registry = Registry::start();
    let image = registry.push_small_image("demo/keyless", "v1");

    let sign = job
        .cosign(&gateway)
        .args([
            "sign",
            "--yes",
            "--identity-token",
            "id-token",
            "--new-bundle-format",
        ])
        .args([
            "--signing-config",
            "signing_config.json",
            "--trusted-root",
            "trusted_root.json",
        ])
        .args(["--allow-http-registry", &image.reference])
        .output()
        .unwrap();
    let text = tools::output_text(&sign);
    assert!(sign.status.success(), "cosign sign: {text}");
    assert!(!text.contains(&job.token), "the token reached cosign's output");

    let verify = |identity: &str| {
        job.cosign(&gateway)
            .args([
                "verify",
                "--new-bundle-format",
                "--trusted-root",
                "trusted_root.json",
            ])
            .args(verification(identity))
            .args(["--allow-http-registry", &image.reference])
            .output()
            .unwrap()
    };
    let verified = verify(IDENTITY);
    let said = tools::output_text(&verified);
    assert!(verified.status.success(), "cosign verify: {said}");
    assert!(
        said.contains(&image.digest),
        "verify does not name the image: {said}"
    );
    refused(
        &verify(&IDENTITY.replace("acme/app", "evil/app")),
        "another identity",
    );
}
