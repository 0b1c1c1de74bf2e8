//! What following the documentation literally showed, proven against the built programs: a tarball that names its
//! image only by a tag (as skopeo and oras write it) is refused without `--reference` and signed under it with it,
//! `submit` prints the digests the next `oras cp` needs, the artifact configurations the docs name exist after a
//! fresh `init`, `audit --digest` finds the submitted image, `| head` ends every command line quietly, and a log
//! redirected to a file carries no colour codes.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use e2e_tests::gateway::{init_setup, Gateway};
use e2e_tests::registry::{blob_path, write_oci_layout};
use e2e_tests::tools;

fn signpath_oci() -> PathBuf {
    tools::release_artifact("signpath-oci")
}

fn text(output: &Output) -> String {
    tools::output_text(output)
}

/// An OCI image layout tarball whose one image is named only by the tag `tag` (`ref.name`), and its digest.
fn tag_only_tarball(dir: &Path, tag: &str) -> (PathBuf, String) {
    let layout = dir.join("layout");
    let digest = write_oci_layout(&layout, tag);
    let tarball = dir.join("image.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
    builder
        .append_path_with_name(layout.join("oci-layout"), "oci-layout")
        .unwrap();
    builder
        .append_path_with_name(layout.join("index.json"), "index.json")
        .unwrap();
    builder.append_dir_all("blobs", layout.join("blobs")).unwrap();
    builder.into_inner().unwrap();
    (tarball, digest)
}

fn submit(gateway: &Gateway, tarball: &Path, extra: &[&str]) -> Output {
    gateway
        .command(signpath_oci())
        .arg("submit")
        .arg(tarball)
        .args(["--key", "demo/ec-256"])
        .args(extra)
        .output()
        .unwrap()
}

/// The JSON documents of an unpacked layout: `index.json`'s entries, and a blob by digest.
fn unpack(tarball: &Path, into: &Path) -> Vec<Value> {
    tar::Archive::new(std::fs::File::open(tarball).unwrap())
        .unpack(into)
        .unwrap();
    let index: Value = serde_json::from_slice(&std::fs::read(into.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(blob_path(layout, digest)).unwrap()).unwrap()
}

#[test]
fn a_tag_only_tarball_is_refused_without_a_reference_and_signed_under_it_with_one() {
    let gateway = Gateway::start();
    let work = tempfile::tempdir().unwrap();
    let (tarball, digest) = tag_only_tarball(work.path(), "1.0");

    let refused = submit(&gateway, &tarball, &["--artifact-configuration", "jws-cosign"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "an image is named only by its tag \"1.0\" (as skopeo and oras write it); name its repository with the \
             ImageReference parameter (signpath-oci submit --reference registry.example.com/team/app:1.0)"
        ),
        "{}",
        text(&refused)
    );

    // `jws-cosign` is one of the artifact configurations a fresh `init` writes, as docs/oci.md uses it.
    let signed = submit(
        &gateway,
        &tarball,
        &[
            "--artifact-configuration",
            "jws-cosign",
            "--reference",
            "localhost:5000/team/app:1.0",
        ],
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let stdout = String::from_utf8_lossy(&signed.stdout);
    let cosign_tag = format!("sha256-{}.sig", &digest["sha256:".len()..]);
    assert!(
        stdout.contains(&format!("image localhost:5000/team/app:1.0@{digest}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("cosign signature tag {cosign_tag}\n")),
        "{stdout}"
    );

    // cosign's payload names the repository the image is pushed to, not `index.docker.io/library/image`.
    let unpacked = work.path().join("signed");
    let entries = unpack(&work.path().join("image-signed.tar"), &unpacked);
    let signature = entries
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == cosign_tag.as_str())
        .unwrap_or_else(|| panic!("no {cosign_tag} in {entries:?}"));
    let manifest = blob_json(&unpacked, signature["digest"].as_str().unwrap());
    let payload = blob_json(&unpacked, manifest["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"], "localhost:5000/team/app",
        "{payload}"
    );
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );

    // `audit --digest` finds the signature `submit` made, under the image's digest, not only the tarball's.
    let audit = Command::new(Gateway::binary())
        .args([
            "audit",
            "--json",
            "--outcome",
            "allowed",
            "--digest",
            &digest,
            "--config",
        ])
        .arg(gateway.config())
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", text(&audit));
    let records: Vec<Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0]["route"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .ends_with("/submitwithartifact"),
        "{records:?}"
    );
}

/// `PROGRAM ARGS` writing into a pipe whose reader has already gone, as `… | head` leaves it: what it wrote to
/// stderr, and its exit status as the shell saw it.
fn into_a_closed_pipe(program: &Path, args: &[&str]) -> String {
    let output = Command::new("sh")
        .arg("-c")
        // `true` exits at once; one second later the program writes into a pipe nobody reads.
        .arg(r#"{ sleep 1; "$@"; echo "exit status $?" >&2; } | true"#)
        .arg("sh")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_command_line_ends_quietly_when_its_reader_goes() {
    let (work, setup) = init_setup("signpath-docs-pipe-");
    let config = setup.join("gateway.toml");
    assert_eq!(
        into_a_closed_pipe(
            &Gateway::binary(),
            &["audit", "--config", config.to_str().unwrap()]
        ),
        "exit status 0\n"
    );

    let (tarball, _) = tag_only_tarball(work.path(), "1.0");
    let layers = work.path().join("layers");
    assert_eq!(
        into_a_closed_pipe(
            &signpath_oci(),
            &[
                "strip",
                tarball.to_str().unwrap(),
                "--reference",
                "localhost:5000/team/app:1.0",
                "--directory",
                layers.to_str().unwrap(),
            ]
        ),
        "exit status 0\n"
    );

    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let doctor = Command::new("sh")
        .arg("-c")
        .arg(r#"{ sleep 1; "$0" doctor; echo "exit status $?" >&2; } | true"#)
        .arg(tools::release_artifact("notation-signpath"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&doctor.stderr);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_log_redirected_to_a_file_has_no_colour_codes() {
    let gateway = Gateway::start();
    // A refused request: one log line at least.
    let answer = gateway
        .https_client()
        .get(format!("{}/Cryptoki/MySigningPolicies", gateway.api_base()))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 401);
    let log = gateway.stderr();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
