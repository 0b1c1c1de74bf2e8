//! cosign as it is released (`cosign-release`: built with CGO_ENABLED=0 and no build tags, so without PKCS#11)
//! signing through the KMS plugin `sigstore-kms-signpath` with keys of the real gateway: `--key
//! signpath://demo/<policy>` for `public-key`, `sign-blob`, `verify-blob`, `attest-blob`, `sign`, `verify`,
//! `attest` and `verify-attestation`, the flow docs/cosign.md documents; a policy that waits for approval; the
//! errors for an unknown policy and a malformed key reference.
//!
//! Each signature is checked by cosign with the exported key and with the plugin's key reference, and by a verifier
//! we did not write: OpenSSL, on the blob and on the simple-signing payload cosign stored in the registry. cosign
//! is kept off the public Sigstore services: no transparency log upload, and a proxy on a closed loopback port for
//! anything that is not loopback.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use e2e_tests::cosign::{Cosign, StoredSignature};
use e2e_tests::gateway::{require_alices_approval, run_cli, Gateway};
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};

/// `openssl dgst -sha256 -verify KEY -signature SIG FILE` on a base64 signature as cosign writes it: whether
/// OpenSSL accepts it.
fn openssl_verifies(dir: &Path, public_key: &str, signature_base64: &str, file: &str) -> bool {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_base64.trim())
        .expect("cosign writes the signature in base64");
    let signature_file = dir.join(format!("{file}.sig.der"));
    std::fs::write(&signature_file, signature).unwrap();
    let output = Command::new(tools::tool("openssl"))
        .current_dir(dir)
        .args(["dgst", "-sha256", "-verify", public_key, "-signature"])
        .arg(&signature_file)
        .arg(file)
        .output()
        .expect("run openssl");
    let text = tools::output_text(&output);
    output.status.success() && text.contains("Verified OK")
}

/// Runs cosign, expecting success; its stdout and stderr (cosign prints "Verified OK" on stderr).
fn run_ok(cosign: &Cosign, command: &mut Command) -> String {
    let (ok, text) = cosign.try_run(command);
    assert!(ok, "{command:?} failed:\n{text}");
    text
}

/// What no cosign output may contain: the API token and the `OrganizationId:ApiToken` PIN that carries it.
fn assert_no_secret(gateway: &Gateway, text: &str) {
    assert!(
        !text.contains(gateway.api_token()),
        "the API token reached cosign's output:\n{text}"
    );
}

#[test]
fn cosign_as_released_signs_and_verifies_blobs_through_the_plugin_with_ec_and_rsa_policies() {
    let binary = require_tool!("cosign-release");
    let gateway = Gateway::start();
    let cosign = Cosign::with_kms_plugin(binary, &gateway);
    std::fs::write(
        cosign.path("artifact.txt"),
        b"a blob signed by cosign as released",
    )
    .unwrap();
    std::fs::write(
        cosign.path("tampered.txt"),
        b"a blob signed by cosign as released!",
    )
    .unwrap();

    for policy in ["ec-256", "rsa-2048"] {
        let key = cosign.key_uri(policy);
        assert_eq!(key, format!("signpath://demo/{policy}"));
        let public_key = cosign.public_key(policy);
        assert!(
            public_key.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{public_key}"
        );
        let pub_file = format!("{policy}.pub");
        std::fs::write(cosign.path(&pub_file), &public_key).unwrap();

        let sig_file = format!("{policy}.sig");
        let (ok, signed) = cosign.try_run(cosign.command().args([
            "sign-blob",
            "--yes",
            "--tlog-upload=false",
            "--key",
            &key,
            "--output-signature",
            &sig_file,
            "artifact.txt",
        ]));
        assert!(ok, "{policy}: sign-blob failed:\n{signed}");
        assert_no_secret(&gateway, &signed);
        let signature = std::fs::read_to_string(cosign.path(&sig_file)).unwrap();

        // cosign with the exported key, and with the plugin's key reference (the plugin's verifySignature).
        for verify_key in [pub_file.as_str(), key.as_str()] {
            let verified = run_ok(
                &cosign,
                cosign.command().args([
                    "verify-blob",
                    "--insecure-ignore-tlog=true",
                    "--key",
                    verify_key,
                    "--signature",
                    &sig_file,
                    "artifact.txt",
                ]),
            );
            assert!(
                verified.contains("Verified OK"),
                "{policy} with {verify_key}: {verified}"
            );
            let (ok, refused) = cosign.try_run(cosign.command().args([
                "verify-blob",
                "--insecure-ignore-tlog=true",
                "--key",
                verify_key,
                "--signature",
                &sig_file,
                "tampered.txt",
            ]));
            assert!(
                !ok,
                "{policy} with {verify_key}: a changed blob verified:\n{refused}"
            );
        }

        // A verifier we did not write: OpenSSL, ECDSA as DER and RSA as PKCS#1 v1.5 over SHA-256.
        assert!(
            openssl_verifies(cosign.home(), &pub_file, &signature, "artifact.txt"),
            "{policy}: OpenSSL refuses the signature"
        );
        assert!(
            !openssl_verifies(cosign.home(), &pub_file, &signature, "tampered.txt"),
            "{policy}: OpenSSL accepts the signature for another blob"
        );
    }

    // attest-blob: an in-toto statement about the blob, in DSSE, verified with the exported key.
    std::fs::write(
        cosign.path("predicate.json"),
        br#"{"builder": "kms-plugin test"}"#,
    )
    .unwrap();
    cosign.run(cosign.command().args([
        "attest-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        "signpath://demo/ec-256",
        "--type",
        "custom",
        "--predicate",
        "predicate.json",
        "--output-signature",
        "artifact.att",
        "artifact.txt",
    ]));
    let verified = run_ok(
        &cosign,
        cosign.command().args([
            "verify-blob-attestation",
            "--insecure-ignore-tlog=true",
            "--key",
            "ec-256.pub",
            "--type",
            "custom",
            "--signature",
            "artifact.att",
            "artifact.txt",
        ]),
    );
    assert!(verified.contains("Verified OK"), "{verified}");

    // An unknown policy: cosign's error names it, and holds no secret.
    let (ok, text) = cosign.try_run(cosign.command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        "signpath://demo/no-such-policy",
        "artifact.txt",
    ]));
    assert!(!ok, "an unknown policy signed:\n{text}");
    assert!(text.contains("signpath://demo/no-such-policy"), "{text}");
    assert!(
        text.contains("demo/no-such-policy is not among the policies"),
        "{text}"
    );
    assert_no_secret(&gateway, &text);

    // A key reference that is not Project/Policy is named too, before any gateway call.
    let (ok, text) = cosign.try_run(
        cosign
            .command()
            .args(["public-key", "--key", "signpath://ec-256"]),
    );
    assert!(
        !ok && text.contains("signpath://ec-256 is not signpath://Project/Policy"),
        "{text}"
    );

    // cosign as released has no PKCS#11: the module's route is closed to it, which is why the plugin exists.
    let module_key = format!(
        "pkcs11:token=SignPath;object=demo%2Fec-256?module-path={}&pin-value=CONFIG",
        tools::release_artifact("libsignpath_pkcs11.so").display()
    );
    let (ok, text) = cosign.try_run(cosign.command().args(["public-key", "--key", &module_key]));
    assert!(!ok && text.contains("unimplemented"), "{text}");
}

#[test]
fn cosign_as_released_signs_attests_and_verifies_an_image_through_the_plugin() {
    let binary = require_tool!("cosign-release");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let cosign = Cosign::with_kms_plugin(binary, &gateway);
    let image = registry.push_small_image("demo/kms-plugin", "v1");
    let key = cosign.key_uri("ec-256");

    let (ok, signed) = cosign.try_run(cosign.command().args([
        "sign",
        "--yes",
        "--tlog-upload=false",
        "--allow-http-registry",
        "--key",
        &key,
        &image.reference,
    ]));
    assert!(ok, "sign failed:\n{signed}");
    assert_no_secret(&gateway, &signed);
    let public_key = cosign.public_key("ec-256");
    std::fs::write(cosign.path("ec-256.pub"), &public_key).unwrap();
    for verify_key in ["ec-256.pub", key.as_str()] {
        let verified = cosign.run(cosign.command().args([
            "verify",
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--key",
            verify_key,
            &image.reference,
        ]));
        assert!(
            verified.contains(&image.digest),
            "verify with {verify_key} does not name the image:\n{verified}"
        );
    }
    // OpenSSL on what cosign stored: the signature annotation over the exact simple-signing payload bytes.
    let stored = StoredSignature::read(&registry, &image);
    std::fs::write(cosign.path("payload.json"), &stored.payload).unwrap();
    assert!(
        openssl_verifies(
            cosign.home(),
            "ec-256.pub",
            &stored.signature_base64,
            "payload.json"
        ),
        "OpenSSL refuses the image signature"
    );

    // The other policy's key does not verify it.
    let (ok, text) = cosign.try_run(cosign.command().args([
        "verify",
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        "--key",
        &cosign.key_uri("ec-384"),
        &image.reference,
    ]));
    assert!(!ok, "another policy's key verified the signature:\n{text}");

    // The audit record names the image cosign signed, read from its simple-signing payload.
    let audit = gateway.audit_json();
    let metadata: Value = audit
        .iter()
        .filter_map(|r| r["metadata"].as_str())
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .find(|m| m["oci"]["digest"] == image.digest.as_str())
        .unwrap_or_else(|| panic!("no audit record names {}: {audit:?}", image.digest));
    assert_eq!(
        metadata["oci"]["registry"],
        registry.localhost_host().as_str(),
        "{metadata}"
    );
    assert_eq!(metadata["oci"]["repository"], "demo/kms-plugin", "{metadata}");
    assert!(
        metadata["sourceProcess"]["commandLine"]
            .as_str()
            .is_some_and(|c| c.contains("sigstore-kms-signpath")),
        "{metadata}"
    );
    assert!(!serde_json::to_string(&audit)
        .unwrap()
        .contains(gateway.api_token()));

    // An attestation, in DSSE, verified with the exported key.
    std::fs::write(
        cosign.path("predicate.json"),
        br#"{"builder": "kms-plugin test"}"#,
    )
    .unwrap();
    let (ok, attested) = cosign.try_run(cosign.command().args([
        "attest",
        "--yes",
        "--tlog-upload=false",
        "--allow-http-registry",
        "--type",
        "custom",
        "--predicate",
        "predicate.json",
        "--key",
        &key,
        &image.reference,
    ]));
    assert!(ok, "attest failed:\n{attested}");
    let verified = cosign.run(cosign.command().args([
        "verify-attestation",
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        "--type",
        "custom",
        "--key",
        "ec-256.pub",
        &image.reference,
    ]));
    assert!(verified.contains("payloadType"), "{verified}");
}

/// A gateway whose demo/ec-384 waits for one approval by alice.
fn approval_gateway() -> Gateway {
    Gateway::start_with(|setup| {
        require_alices_approval(setup, "ec-384");
    })
}

/// The id of the one signing request that waits for approval, once there is one.
fn pending_request(setup: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run_cli(setup, &["pending", "--json"]);
        if let Some(line) = out.lines().next() {
            let pending: Value = serde_json::from_str(line).unwrap();
            return pending["request_id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no signing request waits for approval");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cosign_as_released_waits_for_approval_and_signs_once_approved() {
    let binary = require_tool!("cosign-release");
    let gateway = approval_gateway();
    let cosign = Cosign::with_kms_plugin(binary, &gateway);
    std::fs::write(cosign.path("release.txt"), b"a release that needs approval").unwrap();
    let public_key = cosign.public_key("ec-384");
    std::fs::write(cosign.path("ec-384.pub"), &public_key).unwrap();

    let signing = cosign
        .command()
        .args([
            "sign-blob",
            "--yes",
            "--tlog-upload=false",
            "--key",
            &cosign.key_uri("ec-384"),
            "--output-signature",
            "release.sig",
            "release.txt",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cosign");
    let id = pending_request(&gateway.dir());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !cosign.path("release.sig").exists(),
        "cosign wrote a signature before the approval"
    );
    run_cli(&gateway.dir(), &["approve", &id, "--as", "alice"]);
    let output = signing.wait_with_output().expect("cosign's output");
    let text = tools::output_text(&output);
    assert!(
        output.status.success(),
        "sign-blob failed after the approval:\n{text}"
    );
    assert_no_secret(&gateway, &text);

    let verified = run_ok(
        &cosign,
        cosign.command().args([
            "verify-blob",
            "--insecure-ignore-tlog=true",
            "--key",
            "ec-384.pub",
            "--signature",
            "release.sig",
            "release.txt",
        ]),
    );
    assert!(verified.contains("Verified OK"), "{verified}");
    let signature = std::fs::read_to_string(cosign.path("release.sig")).unwrap();
    assert!(
        openssl_verifies(cosign.home(), "ec-384.pub", &signature, "release.txt"),
        "OpenSSL refuses the approved signature"
    );

    // Nobody approves, and cosign's --timeout is shorter than ApprovalWaitTimeoutInSeconds: the plugin answers
    // before cosign would kill it, saying what to change.
    let started = Instant::now();
    let (ok, text) = cosign.try_run(cosign.command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--timeout",
        "8s",
        "--key",
        &cosign.key_uri("ec-384"),
        "release.txt",
    ]));
    assert!(!ok, "signed without an approval:\n{text}");
    assert!(text.contains("still waits for approval"), "{text}");
    assert!(text.contains("--timeout"), "{text}");
    assert!(!text.contains("signal: killed"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_no_secret(&gateway, &text);
}
