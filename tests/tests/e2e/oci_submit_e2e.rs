//! Sign before push with the gateway signing the tarball: SignPath's file-based API (`SubmitWithArtifact`,
//! `GET SigningRequests/{id}`, `SignedArtifact`) driven by `signpath-oci submit`. A tarball built in Rust as buildx
//! writes it (several images, one a multi-platform index) is stripped, submitted, approved, repacked, then checked
//! by tools we did not write: `notation verify --oci-layout` on the signed layout, `oras cp -r` to a real
//! registry, `notation verify` and `cosign verify --key` there; for EC and RSA policies, JWS and COSE. Negative
//! cases: an altered layer at repack, an index that does not match its blobs, a reference that matches nothing, a
//! denied request. And SignPath's fast signing of a `payload.json`, answered byte for byte as SignPath documents.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use super::oci_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use e2e_tests::gateway::{require_alices_approval, run_cli as gw, Gateway};
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};
use oci_support::{cosign_verify_with_key, notation, submit_fast, LayoutBuilder};

fn signpath_oci() -> PathBuf {
    tools::release_artifact("signpath-oci")
}

fn text(output: &Output) -> String {
    tools::output_text(output)
}

fn ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?} failed:\n{}", text(&output));
    text(&output)
}

fn fails(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} did not fail with 1:\n{}",
        text(&output)
    );
    text(&output)
}

/// The gateway for these tests: approver alice; demo/ec-256 needs her approval, demo/rsa-2048 none; project demo
/// has the artifact configurations `jws-cosign` (JWS, cosign, each platform) and `cose-cosign` (COSE, cosign).
fn start_gateway() -> Gateway {
    Gateway::start_with(|setup| {
        require_alices_approval(setup, "ec-256");
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let project = config["projects"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        let configurations: toml::Table = toml::from_str(
            "[[artifact_configurations]]\nslug = \"jws-cosign\"\nnotary = \"jws\"\ncosign = true\neach_platform = true\n\
             [[artifact_configurations]]\nslug = \"cose-cosign\"\nnotary = \"cose\"\ncosign = true\n",
        )
        .unwrap();
        project.insert(
            "artifact_configurations".into(),
            configurations["artifact_configurations"].clone(),
        );
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    })
}

/// Three images as buildx would write them: `app`, `web` and `multi` (an index over amd64 and arm64).
fn three_images(prefix: &str) -> (LayoutBuilder, [Value; 3]) {
    let mut layout = LayoutBuilder::new();
    let shared: &[u8] = b"shared base layer";
    let app = layout.manifest("amd64", &[shared, format!("{prefix} app layer").as_bytes()]);
    let web = layout.manifest("amd64", &[shared, b"web layer"]);
    let amd64 = layout.manifest("amd64", &[b"multi amd64 layer"]);
    let arm64 = layout.manifest("arm64", &[b"multi arm64 layer"]);
    let multi = layout.image_index(&[("amd64", amd64), ("arm64", arm64)]);
    layout.tag(&app, &format!("{prefix}/app:1.0"));
    layout.tag(&web, &format!("{prefix}/web:3.0"));
    layout.tag(&multi, &format!("{prefix}/multi:2.0"));
    (layout, [app, web, multi])
}

fn digest(descriptor: &Value) -> String {
    descriptor["digest"].as_str().unwrap().to_owned()
}

/// `signpath-oci submit` in the background (it waits for approval).
fn spawn_submit(gateway: &Gateway, tarball: &Path, key: &str, configuration: &str, output: &Path) -> Child {
    Command::new(signpath_oci())
        .env_clear()
        .envs(gateway.env_vars())
        .env("SIGNPATH_APPROVAL_WAIT_TIMEOUT_IN_SECONDS", "60")
        .arg("submit")
        .arg(tarball)
        .args([
            "--key",
            key,
            "--artifact-configuration",
            configuration,
            "--description",
            "release 1.0",
        ])
        .arg("--output")
        .arg(output)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The id of the one request waiting for approval.
fn wait_pending(setup: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = gw(setup, &["pending", "--json"]);
        if let Some(line) = out.lines().next() {
            let pending: Value = serde_json::from_str(line).unwrap();
            return pending["request_id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no signing request waits for approval");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn submitted_tarballs_come_back_signed_and_verify_with_notation_and_cosign() {
    require_tool!("notation");
    let cosign = require_tool!("cosign");
    let oras = require_tool!("oras");
    let gateway = start_gateway();
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let notation = notation(dir.path(), &gateway.root_ca_pem());

    for (policy, configuration) in [("ec-256", "jws-cosign"), ("rsa-2048", "cose-cosign")] {
        let case = format!("{policy}/{configuration}");
        let prefix = format!("{}/{policy}", registry.localhost_host());
        let work = dir.path().join(policy);
        std::fs::create_dir_all(&work).unwrap();
        let (layout, [app, web, multi]) = three_images(&prefix);
        let tarball = work.join("image.tar");
        layout.write_tar(&tarball);
        let layers = work.join("layers");
        let images = [
            ("app", "1.0", &app),
            ("web", "3.0", &web),
            ("multi", "2.0", &multi),
        ];
        for (image, tag, _) in images {
            let reference = format!("{prefix}/{image}:{tag}");
            ok(Command::new(signpath_oci())
                .args(["strip"])
                .arg(&tarball)
                .args(["--reference", &reference, "--directory"])
                .arg(&layers));
        }
        let signed = work.join("image-signed.tar");
        let started = Instant::now();
        let submit = spawn_submit(
            &gateway,
            &tarball,
            &format!("demo/{policy}"),
            configuration,
            &signed,
        );
        if policy == "ec-256" {
            let id = wait_pending(&gateway.dir());
            gw(&gateway.dir(), &["approve", &id, "--as", "alice"]);
        }
        let out = submit.wait_with_output().unwrap();
        assert!(out.status.success(), "{case}: submit failed:\n{}", text(&out));
        eprintln!(
            "{case}: submitted, approved and downloaded in {:?}",
            started.elapsed()
        );
        for (image, tag, _) in images {
            let reference = format!("{prefix}/{image}:{tag}");
            ok(Command::new(signpath_oci())
                .arg("repack")
                .arg(&signed)
                .args(["--reference", &reference, "--directory"])
                .arg(&layers));
        }

        // The audit record of the signing names every image and its digest.
        let audit = gateway.audit_json();
        let signing = audit
            .iter()
            .rev()
            .find(|r| r["algorithm"].as_str().is_some_and(|a| a.starts_with("oci")))
            .unwrap();
        let metadata = signing["metadata"].as_str().unwrap();
        for (_, _, descriptor) in images {
            assert!(metadata.contains(&digest(descriptor)), "{case}: {metadata}");
        }

        // notation verifies the signed layout before anything is published.
        let unpacked = work.join("layout");
        std::fs::create_dir_all(&unpacked).unwrap();
        ok(Command::new("tar")
            .arg("-xf")
            .arg(&signed)
            .arg("-C")
            .arg(&unpacked));
        for (image, tag, descriptor) in images {
            let scope = format!("{prefix}/{image}");
            for target in [
                format!("{}:{tag}", unpacked.display()),
                format!("{}@{}", unpacked.display(), digest(descriptor)),
            ] {
                let out = ok(notation().args(["verify", "--oci-layout", "--scope", &scope, &target]));
                assert!(out.contains("Successfully verified signature"), "{case}: {out}");
            }
        }

        // oras publishes each image with its referrers and cosign's tag; both verify against the registry.
        let public_key = work.join("cosign.pub");
        let pem = gateway.dir().join("pki").join(format!("{policy}.pem"));
        std::fs::write(
            &public_key,
            ok(Command::new("openssl")
                .args(["x509", "-pubkey", "-noout", "-in"])
                .arg(&pem)),
        )
        .unwrap();
        for (image, tag, descriptor) in images {
            let target = format!("{prefix}/{image}");
            ok(Command::new(&oras)
                .env("HOME", &work)
                .args(["cp", "-r", "--from-oci-layout", "--to-plain-http"])
                .arg(format!("{}:{tag}", signed.display()))
                .arg(format!("{target}:{tag}")));
            let sig_tag = format!("sha256-{}.sig", &digest(descriptor)["sha256:".len()..]);
            ok(Command::new(&oras)
                .env("HOME", &work)
                .args(["cp", "--from-oci-layout", "--to-plain-http"])
                .arg(format!("{}:{sig_tag}", signed.display()))
                .arg(format!("{target}:{sig_tag}")));
            let by_digest = format!("{target}@{}", digest(descriptor));
            let out = ok(notation().args(["verify", &by_digest]));
            assert!(
                out.contains(&format!("Successfully verified signature for {by_digest}")),
                "{case}: {out}"
            );
            cosign_verify_with_key(&cosign, &work, &public_key, &by_digest);
        }
    }
}

#[test]
fn broken_tarballs_wrong_references_and_denied_requests_get_nothing_signed() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let (layout, [app, _, _]) = three_images("registry.example/team");
    let reference = "registry.example/team/app:1.0";

    // An index that does not match its blobs: app's manifest is missing. Refused at submission, 422.
    let broken = dir.path().join("broken.tar");
    layout.write_tar_with(&broken, |d, bytes| (d != digest(&app)).then(|| bytes.to_vec()));
    let out = fails(
        Command::new(signpath_oci())
            .env_clear()
            .envs(gateway.env_vars())
            .arg("submit")
            .arg(&broken)
            .args(["--key", "demo/rsa-2048"]),
    );
    assert!(out.contains("422"), "{out}");
    assert!(
        out.contains(&format!(
            "names blob {}, but the layout has no such blob",
            digest(&app)
        )),
        "{out}"
    );
    assert!(!dir.path().join("broken-signed.tar").exists());

    // A reference that matches nothing, and an altered layer, are errors at repack that name what is wrong.
    let tarball = dir.path().join("image.tar");
    layout.write_tar(&tarball);
    let layers = dir.path().join("layers");
    ok(Command::new(signpath_oci())
        .arg("strip")
        .arg(&tarball)
        .args(["--reference", reference, "--directory"])
        .arg(&layers));
    let out = fails(
        Command::new(signpath_oci())
            .arg("repack")
            .arg(&tarball)
            .args(["--reference", "registry.example/team/other:1.0", "--directory"])
            .arg(&layers),
    );
    assert!(
        out.contains("registry.example/team/app:1.0"),
        "the error lists what the layout holds: {out}"
    );
    let layer = std::fs::read_dir(layers.join("sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&layer, b"altered").unwrap();
    let out = fails(
        Command::new(signpath_oci())
            .arg("repack")
            .arg(&tarball)
            .args(["--reference", reference, "--directory"])
            .arg(&layers),
    );
    let hex = layer.file_name().unwrap().to_string_lossy().into_owned();
    assert!(out.contains(&hex), "the error names the layer: {out}");

    // A denied request: the client says so, and the signed artifact is never there.
    let signed = dir.path().join("denied-signed.tar");
    let submit = spawn_submit(&gateway, &tarball, "demo/ec-256", "jws-cosign", &signed);
    let id = wait_pending(&gateway.dir());
    gw(
        &gateway.dir(),
        &["deny", &id, "--as", "alice", "--reason", "not this release"],
    );
    let out = submit.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("signing request {id} ended Denied: nothing was signed")),
        "{}",
        text(&out)
    );
    assert!(!signed.exists());
    let client = gateway.https_client();
    let url = format!("{}/SigningRequests/{id}", gateway.api_base());
    let status: Value = client
        .get(&url)
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (
            status["status"].as_str(),
            status["workflowStatus"].as_str(),
            status["isFinalStatus"].as_bool()
        ),
        (Some("Denied"), Some("Denied"), Some(true))
    );
    let response = client
        .get(format!("{url}/SignedArtifact"))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let problem: Value = response.json().unwrap();
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:artifact-not-available"
    );
    // The unsigned artifact is the upload, byte for byte.
    let unsigned = client
        .get(format!("{url}/UnsignedArtifact"))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(
        unsigned.bytes().unwrap().as_ref(),
        std::fs::read(&tarball).unwrap().as_slice()
    );
}

#[test]
fn fast_signing_answers_the_payload_with_its_signature_as_signpath_does() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let hash = sha2_256(b"fast signing");
    // As jsign sends it: PascalCase parts, the older route, the payload as SignPath documents it.
    let payload = format!(
        "{{\n    \"SignatureAlgorithm\": \"RsaPkcs1\",\n    \"RsaHashAlgorithm\": \"2.16.840.1.101.3.4.2.1\",\n    \"Base64EncodedHash\": \"{}\",\n    \"Metadata\": {{ \"CreatingProcess\": {{ \"CommandLine\": \"jsign\", \"User\": \"ci\" }} }}\n}}\n",
        BASE64.encode(&hash)
    );
    let form = reqwest::blocking::multipart::Form::new()
        .text("ProjectSlug", "demo")
        .text("signingPolicySlug", "rsa-2048")
        .text("IsFastSigningRequest", "true")
        .part(
            "Artifact",
            reqwest::blocking::multipart::Part::bytes(payload.clone().into_bytes()).file_name("payload.json"),
        );
    let response = gateway
        .https_client()
        .post(format!("{}/SigningRequests", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().unwrap();
    let prefix = payload.trim_end().strip_suffix('}').unwrap().trim_end();
    let signature = body
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(",\"Signature\":\""))
        .and_then(|rest| rest.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("not the payload plus its Signature: {body}"));
    // openssl checks the PKCS#1 v1.5 signature of the SHA-256 digest with the policy's certificate.
    let pem = gateway.dir().join("pki/rsa-2048.pem");
    let public_key = dir.path().join("public.pem");
    std::fs::write(
        &public_key,
        ok(Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&pem)),
    )
    .unwrap();
    std::fs::write(dir.path().join("hash"), hash).unwrap();
    std::fs::write(dir.path().join("signature"), BASE64.decode(signature).unwrap()).unwrap();
    let out = ok(Command::new("openssl").current_dir(dir.path()).args([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "public.pem",
        "-pkeyopt",
        "digest:sha256",
        "-in",
        "hash",
        "-sigfile",
        "signature",
    ]));
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}

fn sha2_256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn a_policy_named_by_its_signing_policy_id_signs_and_ids_mixed_with_slugs_are_refused() {
    let gateway = start_gateway();
    let config: toml::Table = std::fs::read_to_string(gateway.config())
        .unwrap()
        .parse()
        .unwrap();
    let policy_id = config["projects"][0]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"].as_str() == Some("rsa-2048"))
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned();
    let payload = format!(
        "{{\"SignatureAlgorithm\":\"RsaPss\",\"RsaHashAlgorithm\":\"2.16.840.1.101.3.4.2.1\",\"Base64EncodedHash\":\"{}\"}}",
        BASE64.encode(sha2_256(b"by id"))
    );
    // As SignPath's PowerShell module sends `-SigningPolicyId`: the id, no slugs.
    let submit = |extra: &[(&str, &str)]| {
        let parts = [&[("SigningPolicyId", policy_id.as_str())], extra].concat();
        submit_fast(&gateway, &parts, &payload, None)
    };
    let signed = submit(&[]);
    assert_eq!(signed.status().as_u16(), 200);
    assert!(signed.text().unwrap().contains("\"Signature\":\""));
    let mixed = submit(&[("ProjectSlug", "demo")]);
    assert_eq!(mixed.status().as_u16(), 400);
    let problem: Value = mixed.json().unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("one or the other"),
        "{problem}"
    );
}

#[test]
fn origin_parts_that_contradict_the_verified_identity_token_are_refused() {
    let audience = "https://signpath-gateway.example/ci";
    let issuer = e2e_tests::oidc::Issuer::new();
    let gateway = Gateway::start_with(|setup| {
        issuer.trust_in(setup, "ci", audience);
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        for policy in config["projects"][0]["policies"].as_array_mut().unwrap() {
            if policy["slug"].as_str() == Some("rsa-2048") {
                let origin: toml::Value =
                    toml::from_str("issuer = \"ci\"\n[conditions]\nrepository = \"acme/app\"").unwrap();
                policy.as_table_mut().unwrap().insert("origin".into(), origin);
            }
        }
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    let token = issuer.token(
        audience,
        &json!({"repository": "acme/app", "ref": "refs/heads/main", "sha": "0123abcd"}),
    );
    let payload = format!(
        "{{\"SignatureAlgorithm\":\"RsaPkcs1\",\"RsaHashAlgorithm\":\"2.16.840.1.101.3.4.2.1\",\"Base64EncodedHash\":\"{}\"}}",
        BASE64.encode(sha2_256(b"origin"))
    );
    let submit = |branch: &str| {
        let parts = [
            ("ProjectSlug", "demo"),
            ("SigningPolicySlug", "rsa-2048"),
            // The repository on the issuer's own host (ci.example, as a GitLab instance's).
            ("Origin.RepositoryData.Url", "https://ci.example/acme/app.git"),
            ("Origin.RepositoryData.BranchName", branch),
            ("Origin.RepositoryData.CommitId", "0123abcd"),
        ];
        submit_fast(&gateway, &parts, &payload, Some(&token))
    };
    assert_eq!(submit("main").status().as_u16(), 200);
    let refused = submit("release");
    assert_eq!(refused.status().as_u16(), 403);
    let problem: Value = refused.json().unwrap();
    assert_eq!(problem["type"], "urn:signpath-gateway:problem:origin-rejected");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("Origin.RepositoryData.BranchName") && detail.contains("refs/heads/main"),
        "{detail}"
    );
    // The audit keeps the refusal with the verified identity, and never the token.
    let audit = gateway.audit_json();
    let last = audit.last().unwrap();
    assert_eq!(last["error_type"], "origin-rejected", "{last}");
    assert!(last["origin"].as_str().unwrap().contains("acme/app"), "{last}");
    assert!(!last.to_string().contains(&token));
}
