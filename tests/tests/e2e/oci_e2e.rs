//! `signpath-oci`, SignPath's sign-before-push flow for OCI image layout tarballs, end to end: tarballs built in
//! Rust as buildx writes them (several images, one a multi-platform index) are stripped and repacked with every
//! manifest kept byte-identical, signed through the real gateway (EC and RSA policies, JWS and COSE, cosign), then
//! checked by tools we did not write: `oras cp -r --from-oci-layout` to a real registry, `notation verify` and
//! `cosign verify --key` against it.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use super::oci_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};
use oci_support::{cosign_verify_with_key, tar_contents, LayoutBuilder};

fn signpath_oci() -> PathBuf {
    tools::release_artifact("signpath-oci")
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn ok(command: &mut Command) -> String {
    let output = run(command);
    let text = tools::output_text(&output);
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn fails(command: &mut Command) -> String {
    let output = run(command);
    let text = tools::output_text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} did not fail with 1:\n{text}"
    );
    text
}

fn oci(args: &[&str], tarball: &Path) -> Command {
    let mut command = Command::new(signpath_oci());
    command.arg(args[0]).arg(tarball).args(&args[1..]).env_clear();
    command
}

/// Three images as buildx would write them: `app` (two layers), `web` (shares a layer with app), `multi` (an
/// index over amd64 and arm64). Returns the builder and the descriptors of app, web and multi.
fn three_images(prefix: &str) -> (LayoutBuilder, [Value; 3], [Value; 2]) {
    let mut layout = LayoutBuilder::new();
    let shared: &[u8] = b"shared base layer";
    let app = layout.manifest("amd64", &[shared, format!("{prefix} app layer").as_bytes()]);
    let web = layout.manifest("amd64", &[shared, b"web layer"]);
    let amd64 = layout.manifest("amd64", &[b"multi amd64 layer"]);
    let arm64 = layout.manifest("arm64", &[b"multi arm64 layer", b"multi arm64 second layer"]);
    let multi = layout.image_index(&[("amd64", amd64.clone()), ("arm64", arm64.clone())]);
    layout.tag(&app, &format!("{prefix}/app:1.0"));
    layout.tag(&web, &format!("{prefix}/web:3.0"));
    layout.tag(&multi, &format!("{prefix}/multi:2.0"));
    (layout, [app, web, multi], [amd64, arm64])
}

fn blob_name(descriptor: &Value) -> String {
    format!(
        "blobs/sha256/{}",
        &descriptor["digest"].as_str().unwrap()["sha256:".len()..]
    )
}

fn layer_names(contents: &BTreeMap<String, String>, all: &BTreeMap<String, String>) -> Vec<String> {
    all.keys()
        .filter(|k| !contents.contains_key(*k))
        .cloned()
        .collect()
}

#[test]
fn strip_and_repack_keep_every_manifest_and_index_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, [app, _, _], [amd64, arm64]) = three_images("registry.example.com/team");
    let tarball = dir.path().join("image.tar");
    layout.write_tar(&tarball);
    let original = tar_contents(&tarball);
    let layers = dir.path().join("layers");

    let out = ok(oci(
        &[
            "strip",
            "--reference",
            "registry.example.com/team/app:1.0",
            "--directory",
        ],
        &tarball,
    )
    .arg(&layers));
    // The shared base layer stays: `web` uses it too.
    assert!(
        out.starts_with("stripped 1 layers (35 bytes) of registry.example.com/team/app:1.0 (sha256:"),
        "{out}"
    );
    let stripped = tar_contents(&tarball);
    let removed = layer_names(&stripped, &original);
    assert_eq!(removed.len(), 1, "{removed:?}");
    for (name, digest) in &stripped {
        assert_eq!(original.get(name), Some(digest), "{name} changed");
    }
    assert!(stripped.contains_key(&blob_name(&app)));
    assert!(layers
        .join("sha256")
        .join(&removed[0]["blobs/sha256/".len()..])
        .is_file());

    // A multi-platform index: every platform's layers go, every manifest and the index stay.
    let out = ok(oci(
        &[
            "strip",
            "--reference",
            "registry.example.com/team/multi:2.0",
            "--directory",
        ],
        &tarball,
    )
    .arg(&layers));
    assert!(out.starts_with("stripped 3 layers"), "{out}");
    let stripped = tar_contents(&tarball);
    assert_eq!(layer_names(&stripped, &original).len(), 4);
    for d in [&amd64, &arm64] {
        assert!(stripped.contains_key(&blob_name(d)));
    }
    assert_eq!(stripped["index.json"], original["index.json"]);

    for reference in [
        "registry.example.com/team/app:1.0",
        "registry.example.com/team/multi:2.0",
    ] {
        ok(oci(&["repack", "--reference", reference, "--directory"], &tarball).arg(&layers));
    }
    assert_eq!(tar_contents(&tarball), original);
}

#[test]
fn repack_names_an_altered_or_missing_layer_and_leaves_the_tarball_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _, _) = three_images("registry.example.com/team");
    let tarball = dir.path().join("image.tar");
    layout.write_tar(&tarball);
    let layers = dir.path().join("layers");
    let reference = "registry.example.com/team/multi:2.0";
    ok(oci(&["strip", "--reference", reference, "--directory"], &tarball).arg(&layers));
    let stripped = tar_contents(&tarball);
    let mut files: Vec<PathBuf> = std::fs::read_dir(layers.join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let victim = &files[0];
    let digest = format!("sha256:{}", victim.file_name().unwrap().to_str().unwrap());
    let good = std::fs::read(victim).unwrap();

    std::fs::write(victim, b"tampered layer").unwrap();
    let err = fails(oci(&["repack", "--reference", reference, "--directory"], &tarball).arg(&layers));
    assert!(
        err.contains(&format!(
            "signpath-oci: error: layer {digest} at {} was altered: its content hashes to sha256:",
            victim.display()
        )),
        "{err}"
    );
    assert_eq!(tar_contents(&tarball), stripped);

    std::fs::remove_file(victim).unwrap();
    let err = fails(oci(&["repack", "--reference", reference, "--directory"], &tarball).arg(&layers));
    assert_eq!(
        err.trim_end(),
        format!(
            "signpath-oci: error: layer {digest} of {reference} is missing: it is neither in the tarball nor at {}",
            victim.display()
        )
    );
    assert_eq!(tar_contents(&tarball), stripped);

    std::fs::write(victim, good).unwrap();
    ok(oci(&["repack", "--reference", reference, "--directory"], &tarball).arg(&layers));
}

#[test]
fn a_tarball_whose_index_does_not_match_its_blobs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, [app, _, multi], [_, arm64]) = three_images("registry.example.com/team");
    let layers = dir.path().join("layers");

    // index.json names a manifest the tarball does not hold.
    let tarball = dir.path().join("missing.tar");
    let gone = app["digest"].as_str().unwrap().to_owned();
    layout.write_tar_with(&tarball, |d, b| (d != gone).then(|| b.to_vec()));
    let err = fails(
        oci(
            &[
                "strip",
                "--reference",
                "registry.example.com/team/app:1.0",
                "--directory",
            ],
            &tarball,
        )
        .arg(&layers),
    );
    assert!(
        err.contains(&format!(
            "names blob {gone}, but the layout has no such blob: the index does not match the blobs"
        )),
        "{err}"
    );

    // A blob whose content is not what its name says.
    let tarball = dir.path().join("altered.tar");
    let altered = arm64["digest"].as_str().unwrap().to_owned();
    layout.write_tar_with(&tarball, |d, b| {
        Some(if d == altered { b"{}".to_vec() } else { b.to_vec() })
    });
    let err = fails(
        oci(
            &[
                "strip",
                "--reference",
                "registry.example.com/team/multi:2.0",
                "--directory",
            ],
            &tarball,
        )
        .arg(&layers),
    );
    assert!(
        err.contains(&format!(
            "blob {altered} does not match its digest: its content hashes to sha256:44136fa3"
        )),
        "{err}"
    );

    // An index entry whose size is wrong.
    let tarball = dir.path().join("size.tar");
    let mut wrong = layout.clone();
    let mut entry = multi.clone();
    entry["size"] = json!(multi["size"].as_u64().unwrap() + 1);
    wrong.tag(&entry, "registry.example.com/team/other:1.0");
    wrong.write_tar(&tarball);
    let err = fails(
        oci(
            &[
                "strip",
                "--reference",
                "registry.example.com/team/other:1.0",
                "--directory",
            ],
            &tarball,
        )
        .arg(&layers),
    );
    assert!(err.contains("bytes, but index.json says"), "{err}");
    assert!(!layers.exists(), "nothing may have been stripped");
}

#[test]
fn a_reference_that_matches_no_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _, _) = three_images("registry.example.com/team");
    let tarball = dir.path().join("image.tar");
    layout.write_tar(&tarball);
    let before = tar_contents(&tarball);
    for command in ["strip", "repack"] {
        let err = fails(&mut oci(
            &[
                command,
                "--reference",
                "registry.example.com/team/app:2.0",
                "--directory",
                "x",
            ],
            &tarball,
        ));
        assert_eq!(
            err.trim_end(),
            "signpath-oci: error: no image in the layout matches the reference \"registry.example.com/team/app:2.0\"; \
             the layout names: registry.example.com/team/app:1.0, registry.example.com/team/web:3.0, \
             registry.example.com/team/multi:2.0"
        );
    }
    assert_eq!(tar_contents(&tarball), before);
}

// ---------------------------------------------------------------------------------------------------------------
// Signing through the gateway, verified by notation and cosign

struct Notation {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Notation {
    fn new(root_pem: &Path) -> Self {
        let notation = Self {
            binary: tools::tool("notation"),
            home: tempfile::tempdir().unwrap(),
        };
        let store = notation.home.path().join("config/truststore/x509/ca/signpath");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(root_pem, store.join("root.pem")).unwrap();
        let policy = json!({"version": "1.0", "trustPolicies": [{"name": "signpath", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"}, "trustStores": ["ca:signpath"],
            "trustedIdentities": ["*"]}]});
        std::fs::write(
            notation.home.path().join("config/trustpolicy.json"),
            policy.to_string(),
        )
        .unwrap();
        notation
    }

    fn command(&self) -> Command {
        let home = self.home.path();
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("HOME", home)
            .env("NOTATION_CONFIG", home.join("config"))
            .env("NOTATION_LIBEXEC", home.join("libexec"))
            .env("NOTATION_CACHE", home.join("cache"))
            .env("NOTATION_EXPERIMENTAL", "1");
        command
    }
}

fn public_key(gateway: &Gateway, policy: &str, out: &Path) {
    let pem = gateway.dir().join("pki").join(format!("{policy}.pem"));
    let key = ok(Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&pem));
    std::fs::write(out, key).unwrap();
}

#[test]
fn signed_layouts_verify_with_notation_and_cosign_after_oras_publishes_them() {
    let notation_bin = require_tool!("notation");
    let cosign = require_tool!("cosign");
    let oras = require_tool!("oras");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&gateway.root_ca_pem());
    assert!(notation_bin.is_file());
    let dir = tempfile::tempdir().unwrap();

    for (policy, format, each_platform) in [
        ("ec-256", "jws", true),
        ("ec-256", "cose", false),
        ("rsa-2048", "jws", false),
        ("rsa-2048", "cose", true),
    ] {
        let case = format!("{policy}/{format}");
        let prefix = format!("{}/{policy}-{format}", registry.localhost_host());
        let work = dir.path().join(format!("{policy}-{format}"));
        std::fs::create_dir_all(&work).unwrap();
        let (layout, [app, _, multi], [amd64, arm64]) = three_images(&prefix);
        let tarball = work.join("image.tar");
        layout.write_tar(&tarball);
        let original = tar_contents(&tarball);
        let layers = work.join("layers");
        let pub_key = work.join("cosign.pub");
        public_key(&gateway, policy, &pub_key);

        for (image, tag) in [("app", "1.0"), ("multi", "2.0")] {
            let reference = format!("{prefix}/{image}:{tag}");
            ok(oci(&["strip", "--reference", &reference, "--directory"], &tarball).arg(&layers));
            let mut sign = oci(
                &[
                    "sign",
                    "--reference",
                    &reference,
                    "--format",
                    format,
                    "--cosign",
                    "--key",
                ],
                &tarball,
            );
            sign.arg(format!("demo/{policy}")).envs(gateway.env_vars());
            if each_platform {
                sign.arg("--each-platform");
            }
            let out = ok(&mut sign);
            let signatures = if image == "multi" && each_platform { 6 } else { 2 };
            assert_eq!(out.lines().count(), signatures, "{case}: {out}");
            ok(oci(&["repack", "--reference", &reference, "--directory"], &tarball).arg(&layers));
        }
        // Nothing of the images changed; signatures were only added.
        let signed = tar_contents(&tarball);
        for (name, digest) in &original {
            if name != "index.json" {
                assert_eq!(signed.get(name), Some(digest), "{case}: {name}");
            }
        }

        // What was signed: the images, and with --each-platform the platform manifests of the index.
        let mut targets = vec![
            ("app", "1.0".to_owned(), app.clone()),
            ("multi", "2.0".to_owned(), multi.clone()),
        ];
        if each_platform {
            for platform in [&amd64, &arm64] {
                let digest = platform["digest"].as_str().unwrap().to_owned();
                targets.push(("multi", digest, platform.clone()));
            }
        }
        // oras publishes each image with its referrers, and cosign's tag.
        for (image, tag, descriptor) in &targets[..2] {
            let target = format!("{prefix}/{image}");
            ok(Command::new(&oras)
                .env("HOME", work.as_path())
                .args(["cp", "-r", "--from-oci-layout", "--to-plain-http"])
                .arg(format!("{}:{tag}", tarball.display()))
                .arg(format!("{target}:{tag}")));
            let sig_tag = format!(
                "sha256-{}.sig",
                &descriptor["digest"].as_str().unwrap()["sha256:".len()..]
            );
            ok(Command::new(&oras)
                .env("HOME", work.as_path())
                .args(["cp", "--from-oci-layout", "--to-plain-http"])
                .arg(format!("{}:{sig_tag}", tarball.display()))
                .arg(format!("{target}:{sig_tag}")));
            let by_digest = format!("{target}@{}", descriptor["digest"].as_str().unwrap());
            let out = ok(notation.command().args(["verify", &by_digest]));
            assert!(
                out.contains(&format!("Successfully verified signature for {by_digest}")),
                "{case}: {out}"
            );
            cosign_verify_with_key(&cosign, &work, &pub_key, &by_digest);
        }
    }
}
