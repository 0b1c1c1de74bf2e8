//! `signpath-gateway verify-kit`: each kit, and nothing but the kit, lets a real verifier accept the policy's
//! signatures and refuse another policy's (docs/verify.md):
//!
//! - notation: a fresh configuration directory that is the kit (`XDG_CONFIG_HOME`), on notation signatures made
//!   through the plugin;
//! - Ratify: `ratify verify --config` with the kit's configuration, on a notation and a cosign signature (cosign
//!   through the PKCS#11 module), judged by `isSuccess` in its JSON report;
//! - skopeo: the kit's `policy.json` and `registries.d` on an image GPG-signed by skopeo with a key made by gpg
//!   (the GPG key is the user's; `gpg_e2e.rs` shows the same signatures made through the module).
//!
//! Kyverno and policy-controller cannot run here (they are Kubernetes admission controllers); their YAML is
//! checked by typed serde documents in the gateway's unit tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use e2e_tests::cosign::{Cosign, PROJECT};
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::notation::Notation;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::{require_tool, tools};

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"))
}

/// `verify-kit` for `policy` in `format` into a new directory under `work`; that directory.
fn kit(gateway: &Gateway, work: &Path, policy: &str, format: &str, extra: &[&str]) -> PathBuf {
    let out = work.join(format!("{format}-{}", policy.replace('/', "-")));
    let out_arg = out.display().to_string();
    let policy = format!("{PROJECT}/{policy}");
    let mut args = vec![
        "verify-kit",
        "--policy",
        &policy,
        "--format",
        format,
        "--out",
        &out_arg,
    ];
    args.extend_from_slice(extra);
    run_cli(&gateway.dir(), &args);
    out
}

/// `notation verify` with no configuration but the kit's, and no environment but its own directories.
fn notation_verify(notation_bin: &Path, kit: &Path, work: &Path, image: &ImageRef) -> (bool, String) {
    let home = tempfile::tempdir_in(work).expect("home");
    let output = run(Command::new(notation_bin)
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", kit)
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .args(["verify", &image.reference]));
    (output.status.success(), tools::output_text(&output))
}

fn notation_sign(notation: &Notation, policy: &str, image: &ImageRef) {
    let key_id = format!("{PROJECT}/{policy}");
    notation.ok(&["sign", "--plugin", "signpath", "--id", &key_id, &image.reference]);
}

#[test]
fn a_notation_kit_alone_verifies_its_policys_signatures_and_not_another_policys() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::with_plugin(&notation_bin, gateway.env_vars());
    let work = tempfile::tempdir().expect("work directory");

    let ours = registry.push_image("demo/kit", "ours", &SmallImage::with_content(b"ours"));
    let theirs = registry.push_image("demo/kit", "theirs", &SmallImage::with_content(b"theirs"));
    notation_sign(&notation, "ec-256", &ours);
    notation_sign(&notation, "ec-384", &theirs);

    let kit = kit(
        &gateway,
        work.path(),
        "ec-256",
        "notation",
        &["--scope", &ours.repository],
    );
    let (verified, text) = notation_verify(&notation_bin, &kit, work.path(), &ours);
    assert!(verified, "the kit did not verify its policy's signature: {text}");
    assert!(text.contains("Successfully verified signature"), "{text}");

    // The same root issued demo/ec-384's certificate: the kit's trusted identity (the leaf subject) refuses it.
    let (verified, text) = notation_verify(&notation_bin, &kit, work.path(), &theirs);
    assert!(
        !verified,
        "demo/ec-256's kit verified demo/ec-384's signature: {text}"
    );
    assert!(text.contains("signature verification failed"), "{text}");

    // A repository outside the kit's scopes has no trust policy at all.
    let elsewhere = registry.push_image("demo/other", "ours", &SmallImage::with_content(b"elsewhere"));
    notation_sign(&notation, "ec-256", &elsewhere);
    let (verified, text) = notation_verify(&notation_bin, &kit, work.path(), &elsewhere);
    assert!(!verified, "the kit verified outside its scope: {text}");
}

/// `ratify verify` with a kit's configuration; its JSON report.
fn ratify_report(ratify: &Path, kit: &Path, image: &ImageRef) -> Value {
    let home = tempfile::tempdir().expect("home");
    let output = run(Command::new(ratify)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["verify", "--config"])
        .arg(kit.join("ratify/config.json"))
        .args(["--subject", &image.reference]));
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from ratify: {}", tools::output_text(&output)));
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("{e}: {}", tools::output_text(&output)))
}

#[test]
fn a_ratify_kit_verifies_notation_and_cosign_signatures_of_its_policy_only() {
    let ratify = require_tool!("ratify");
    let notation_bin = require_tool!("notation");
    let cosign_bin = require_tool!("cosign");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::with_plugin(&notation_bin, gateway.env_vars());
    let cosign = Cosign::new(cosign_bin, &gateway);
    let work = tempfile::tempdir().expect("work directory");

    let image = registry.push_image("demo/ratify-kit", "v1", &SmallImage::with_content(b"ratify kit"));
    notation_sign(&notation, "ec-256", &image);
    cosign.sign("ec-256", &image.reference);

    let scope = ["--scope", &image.repository, "--plain-http"];
    let ours = kit(&gateway, work.path(), "ec-256", "ratify", &scope);
    let report = ratify_report(&ratify, &ours, &image);
    assert_eq!(report["isSuccess"], true, "{report:#}");
    let verifiers: Vec<&str> = report["verifierReports"]
        .as_array()
        .expect("verifier reports")
        .iter()
        .filter(|r| r["isSuccess"] == true)
        .filter_map(|r| r["verifierName"].as_str().or(r["name"].as_str()))
        .collect();
    assert!(
        verifiers.contains(&"notation") && verifiers.contains(&"cosign"),
        "{report:#}"
    );

    // demo/ec-384's kit: another leaf subject under the same root, another cosign key.
    let theirs = kit(&gateway, work.path(), "ec-384", "ratify", &scope);
    let report = ratify_report(&ratify, &theirs, &image);
    assert_ne!(report["isSuccess"], true, "{report:#}"); // Ratify leaves `isSuccess` out when it is false
    let passed: Vec<&Value> = report["verifierReports"]
        .as_array()
        .map(|all| all.iter().filter(|r| r["isSuccess"] == true).collect())
        .unwrap_or_default();
    assert!(passed.is_empty(), "another policy's kit accepted: {report:#}");

    // Another policy's Notary signature beside ours: one of ours suffices, as for `notation verify`.
    notation_sign(&notation, "ec-384", &image);
    let report = ratify_report(&ratify, &ours, &image);
    assert_eq!(
        report["isSuccess"], true,
        "a foreign signature failed the image: {report:#}"
    );
}

/// gpg in its own home: a fresh RSA key (the user's GPG key, as docs/gpg.md has users make one) exported as
/// public key; the home and the key's fingerprint.
fn gpg_key(work: &Path, name: &str) -> (PathBuf, String, PathBuf) {
    let home = work.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).expect("GNUPGHOME");
    let gpg = |args: &[&str]| {
        let output = run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args));
        assert!(
            output.status.success(),
            "gpg {args:?}: {}",
            tools::output_text(&output)
        );
        output
    };
    gpg(&[
        "--quick-gen-key",
        &format!("{name} <{name}@example.com>"),
        "rsa2048",
        "sign",
        "never",
    ]);
    let listed = String::from_utf8_lossy(&gpg(&["--with-colons", "--list-keys"]).stdout).into_owned();
    let fingerprint = listed
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| !f.is_empty()))
        .expect("a fingerprint")
        .to_owned();
    let public = work.join(format!("{name}.asc"));
    std::fs::write(&public, gpg(&["--armor", "--export", &fingerprint]).stdout).expect("public key");
    (home, fingerprint, public)
}

/// skopeo with a kit's registries.d and `policy` (the kit's own unless given).
fn skopeo(gnupg: &Path, kit: &Path, policy: Option<&Path>, args: &[&str]) -> Output {
    let containers = kit.join("containers");
    let policy = policy.map_or_else(|| containers.join("policy.json"), Path::to_path_buf);
    run(Command::new("skopeo")
        .env("GNUPGHOME", gnupg)
        .arg("--registries.d")
        .arg(containers.join("registries.d"))
        .arg("--policy")
        .arg(policy)
        .args(args))
}

#[test]
fn a_containers_policy_kit_lets_skopeo_accept_the_policys_gpg_signature_and_refuse_another_key() {
    require_tool!("docker-registry");
    if which("skopeo").is_none() || which("gpg").is_none() {
        eprintln!("skipped: skopeo and gpg are needed");
        return;
    }
    let gateway = Gateway::start();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("work directory");
    let (gnupg, fingerprint, ours_key) = gpg_key(work.path(), "ours");
    let (_, _, theirs_key) = gpg_key(work.path(), "theirs");
    let lookaside = format!("file://{}", work.path().join("sigstore").display());

    let image = registry.push_image("demo/gpg-kit", "v1", &SmallImage::with_content(b"gpg kit"));
    let containers_kit = |name: &str, key: &Path| {
        let key = key.display().to_string();
        kit(
            &gateway,
            &work.path().join(name),
            "rsa-2048",
            "containers-policy",
            &[
                "--scope",
                &image.repository,
                "--gpg-key",
                &key,
                "--lookaside",
                &lookaside,
            ],
        )
    };
    let ours = containers_kit("ours", &ours_key);
    let theirs = containers_kit("theirs", &theirs_key);

    // An unsigned image is refused by the kit's policy.
    let pulled = work.path().join("pulled");
    let dest = format!("dir:{}", pulled.display());
    let source = format!("docker://{}:{}", image.repository, image.tag);
    let output = skopeo(
        &gnupg,
        &ours,
        None,
        &["copy", "--src-tls-verify=false", &source, &dest],
    );
    assert!(
        !output.status.success(),
        "an unsigned image passed: {}",
        tools::output_text(&output)
    );

    // Signed in place with the key (the signature lands in the kit's lookaside), then accepted; another key's kit
    // refuses the same signature.
    let accept_anything = work.path().join("accept-anything.json");
    std::fs::write(
        &accept_anything,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let output = skopeo(
        &gnupg,
        &ours,
        Some(&accept_anything),
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--sign-by",
            &fingerprint,
            &source,
            &source,
        ],
    );
    assert!(
        output.status.success(),
        "skopeo --sign-by: {}",
        tools::output_text(&output)
    );
    let output = skopeo(
        &gnupg,
        &ours,
        None,
        &["copy", "--src-tls-verify=false", &source, &dest],
    );
    assert!(
        output.status.success(),
        "the kit refused its key's signature: {}",
        tools::output_text(&output)
    );
    let output = skopeo(
        &gnupg,
        &theirs,
        None,
        &["copy", "--src-tls-verify=false", &source, &dest],
    );
    let text = tools::output_text(&output);
    assert!(
        !output.status.success(),
        "another key's kit accepted the signature: {text}"
    );
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}
