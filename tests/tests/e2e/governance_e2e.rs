//! Governance on the hash path, through the real notation and cosign against the real gateway and registry:
//! k-of-n approval (command line and the approvers' web page in headless Chromium), a denial, release groups,
//! CI origin verification with OIDC identity tokens from a local issuer, and the image-aware audit log with its
//! filters.
//!
//! The gateway starts from `signpath-gateway init`, then gateway.toml is edited as an operator would (approvers
//! added with `signpath-gateway approver add`) before `serve`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use super::governance_e2e_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::registry::{ImageRef, Registry};
use e2e_tests::require_tool;
use e2e_tests::tools;
use e2e_tests::webdriver::Browser;
use serde_json::{json, Value};

use governance_e2e_support::{
    finish, id_token, notation, push, sign, spawn_sign, start, text, verify, ISSUER,
};

#[test]
fn two_approvers_release_a_notation_signature_and_one_denial_aborts_another() {
    require_tool!("notation");
    require_tool!("docker-registry");
    let mut s = start();
    let registry = Registry::start();
    let notation = notation(&s.gateway);
    let image = push(&registry, "acme/app", "approved");
    let oci = [
        ("SIGNPATH_OCI_REPOSITORY", "acme/app"),
        ("SIGNPATH_OCI_TAG", "v1"),
    ];

    let signing = spawn_sign(&notation, "demo/ec-256", &image, &oci);
    let pending = s.wait_pending(1);
    let id = pending[0]["request_id"].as_str().unwrap().to_owned();
    assert_eq!(pending[0]["policy"], "ec-256");
    assert_eq!(pending[0]["digest"].as_str().unwrap().len(), 64);
    let shown = pending[0]["image"].as_str().unwrap();
    assert!(shown.starts_with("acme/app:v1@sha256:"), "{shown}");
    assert!(shown.ends_with(&image.digest), "{shown}");

    // A stranger cannot vote; one approval of two is not enough.
    let stranger = Command::new(Gateway::binary())
        .args(["approve", &id, "--as", "carol", "--config"])
        .arg(s.setup_dir().join("gateway.toml"))
        .output()
        .unwrap();
    assert!(!stranger.status.success());
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("carol is not an approver of demo/ec-256"));
    assert!(s
        .vote("approve", &id, "alice", &[])
        .contains("Pending (1 of 2 approvals)"));
    // The gateway dies while the request waits: the request, alice's vote and the waiting client survive it.
    s.gateway.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.pending().len(), 1, "still waiting for bob");
    assert_eq!(s.pending()[0]["approved_by"], json!(["alice"]));
    assert!(s
        .vote("approve", &id, "bob", &[])
        .contains("Approved (2 of 2 approvals)"));
    let out = finish(signing);
    assert!(out.status.success(), "notation sign: {}", text(&out));
    verify(&notation, &image);
    // The plugin said in its log which request waited and where to approve it.
    let log = notation.plugin_log();
    assert!(
        log.contains(&format!(
            "signing request {id} waits for approval: approve it at "
        )) && log.contains(&format!("/Web/SigningRequests/{id}")),
        "{log}"
    );

    // The audit log: the SignHash that waited (202, pending), both votes, and the poll that signed, once.
    let records = s.audit(&["--request", &id]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "pending");
    assert_eq!(records[0]["status"], 202);
    let signed: Vec<Value> = s
        .audit(&["--policy", "demo/ec-256", "--outcome", "allowed"])
        .into_iter()
        .filter(|r| r["signature_sha256"].is_string())
        .collect();
    assert_eq!(signed.len(), 1, "signed exactly once: {signed:?}");
    assert_eq!(signed[0]["approval"], "approved by alice, bob");
    let votes: Vec<Value> = s
        .audit(&["--policy", "demo/ec-256"])
        .into_iter()
        .filter(|r| r["method"] == "CLI" && r["outcome"] == "allowed")
        .collect();
    assert_eq!(votes.len(), 2);

    // A denial aborts at once, and notation says which request and why.
    let other = push(&registry, "acme/app", "denied");
    let signing = spawn_sign(&notation, "demo/ec-256", &other, &[]);
    let id = s.wait_pending(1)[0]["request_id"].as_str().unwrap().to_owned();
    s.vote("deny", &id, "bob", &["--reason", "not a release build"]);
    let out = finish(signing);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(&format!("signing request {id} was denied")),
        "{said}"
    );
    assert!(s.pending().is_empty());
}

/// The PKCS#11 module under a host that signs once (`p11-sign`): `C_Sign` waits while the request waits for
/// approval, the module's log names the request and its web link, and a denial is `CKR_FUNCTION_REJECTED`.
#[test]
fn the_module_waits_for_approval_and_a_denial_is_function_rejected() {
    let s = start();
    let logs = tempfile::tempdir().unwrap();
    let sign = || {
        s.gateway
            .command(env!("CARGO_BIN_EXE_p11-sign"))
            .env("SIGNPATH_LOG_FILE_DIRECTORY", logs.path())
            .arg(tools::release_artifact("libsignpath_pkcs11.so"))
            .arg("demo/ec-256")
            .arg(hex::encode([7u8; 32]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let signing = sign();
    let id = s.wait_pending(1)[0]["request_id"].as_str().unwrap().to_owned();
    s.vote("deny", &id, "alice", &["--reason", "not a release build"]);
    let out = finish(signing);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "C_Sign CKR_FUNCTION_REJECTED"
    );
    let log: String = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        log.contains(&format!("signing request {id} waits for approval"))
            && log.contains(&format!("/Web/SigningRequests/{id}")),
        "{log}"
    );
    assert!(s.pending().is_empty());
}

#[test]
fn an_approver_releases_a_cosign_signature_on_the_web_page_in_chromium() {
    let cosign = require_tool!("cosign");
    require_tool!("chromium");
    require_tool!("chromedriver");
    require_tool!("docker-registry");
    let s = start();
    let registry = Registry::start();
    let image = registry.push_small_image("acme/web", "v1");
    let home = tempfile::tempdir().unwrap();
    let module = tools::release_artifact("libsignpath_pkcs11.so");
    let uri = format!(
        "pkcs11:token=SignPath;object=demo%2Frsa-2048?module-path={}&pin-value=CONFIG",
        module.display()
    );
    let signing = Command::new(&cosign)
        .args([
            "sign",
            "--yes",
            "--tlog-upload=false",
            "--allow-http-registry",
            "--key",
            &uri,
            &image.reference,
        ])
        .env_clear()
        .envs(s.gateway.env_vars())
        .env("HOME", home.path())
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("SIGNPATH_OCI_REPOSITORY", "acme/web")
        .env("SIGNPATH_OCI_DIGEST", &image.digest)
        .env("SIGNPATH_LOG_FILE_DIRECTORY", home.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = s.wait_pending(1)[0]["request_id"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    let web = s.gateway.api_url().trim_end_matches('/').to_owned();
    browser.goto(&format!("{web}/Web/SigningRequests"));
    browser.type_into("#token", "not-a-token");
    browser.click("#sign-in");
    browser.wait_for("That is not an approver token");
    browser.goto(&format!("{web}/Web/Login"));
    browser.type_into("#token", &s.tokens["carol"]);
    browser.click("#sign-in");
    let page = browser.wait_for("Signed in as <b id=\"approver\">carol</b>");
    assert!(page.contains(&format!("id=\"request-{id}\"")), "{page}");
    assert!(
        page.contains(&format!("acme/web@{}", image.digest)),
        "the image reference is shown: {page}"
    );
    browser.click(&format!("#approve-{id}"));
    // The request leaves the pending list for the decided one (Approved, or Completed once cosign polled).
    let button = format!("id=\"approve-{id}\"");
    browser.wait_until("the request is decided", |page| {
        !page.contains(&button) && page.contains(&format!("id=\"request-{id}\""))
    });

    let out = finish(signing);
    assert!(out.status.success(), "cosign sign: {}", text(&out));
    let public = Command::new(&cosign)
        .args(["public-key", "--key", &uri])
        .env_clear()
        .envs(s.gateway.env_vars())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(public.status.success(), "{}", text(&public));
    std::fs::write(home.path().join("key.pub"), &public.stdout).unwrap();
    let verified = Command::new(&cosign)
        .args([
            "verify",
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--key",
        ])
        .arg(home.path().join("key.pub"))
        .arg(&image.reference)
        .env("HOME", home.path())
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(verified.status.success(), "cosign verify: {}", text(&verified));

    // The web vote is audited under the approver, and the signature names its approver.
    let web_votes: Vec<Value> = s
        .audit(&["--policy", "demo/rsa-2048"])
        .into_iter()
        .filter(|r| r["token_id"] == "approver:carol" && r["route"].as_str().unwrap().ends_with("/Approve"))
        .collect();
    assert_eq!(web_votes.len(), 1);
    let signed = s.audit(&["--digest", &image.digest, "--outcome", "allowed"]);
    assert!(
        signed.iter().any(|r| r["approval"] == "approved by carol"),
        "{signed:?}"
    );
}

#[test]
fn one_approval_covers_a_release_group_within_its_limits() {
    require_tool!("notation");
    require_tool!("docker-registry");
    let s = start();
    let registry = Registry::start();
    let notation = notation(&s.gateway);
    let group = [("SIGNPATH_RELEASE_GROUP", "release-2026.11")];
    let images: Vec<ImageRef> = (0..3)
        .map(|i| push(&registry, &format!("acme/svc{i}"), "group"))
        .collect();

    let first = spawn_sign(&notation, "demo/rsa-3072", &images[0], &group);
    let id = s.wait_pending(1)[0]["request_id"].as_str().unwrap().to_owned();
    assert_eq!(s.pending()[0]["release_group"], "release-2026.11");
    s.vote("approve", &id, "alice", &[]);
    assert!(finish(first).status.success());

    // The second image of the release signs at once: the group's approval covers it.
    let started = Instant::now();
    let out = sign(&notation, "demo/rsa-3072", &images[1], &group);
    assert!(out.status.success(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    verify(&notation, &images[1]);
    let covered = s.audit(&["--group", "release-2026.11", "--outcome", "allowed"]);
    assert!(
        covered
            .iter()
            .any(|r| r["approval"] == format!("release group release-2026.11, approved with {id}")),
        "{covered:?}"
    );

    // The policy lets one approval cover 2 signatures: the third waits for an approval of its own.
    let third = spawn_sign(&notation, "demo/rsa-3072", &images[2], &group);
    let waiting = s.wait_pending(1);
    assert_ne!(waiting[0]["request_id"].as_str().unwrap(), id);
    s.vote("deny", waiting[0]["request_id"].as_str().unwrap(), "alice", &[]);
    assert!(!finish(third).status.success());

    // Another group gets no free ride.
    let other = spawn_sign(
        &notation,
        "demo/rsa-3072",
        &images[2],
        &[("SIGNPATH_RELEASE_GROUP", "other")],
    );
    let waiting = s.wait_pending(1);
    s.vote("deny", waiting[0]["request_id"].as_str().unwrap(), "alice", &[]);
    assert!(!finish(other).status.success());
}

#[test]
fn a_policy_with_origin_verification_signs_only_for_the_trusted_ci() {
    require_tool!("notation");
    require_tool!("docker-registry");
    let s = start();
    let registry = Registry::start();
    let notation = notation(&s.gateway);
    let image = push(&registry, "acme/app", "origin");
    let good = s.id_token(json!({"repository": "acme/app", "ref": "refs/heads/main", "workflow": "release"}));

    let out = sign(&notation, "demo/ec-384", &image, &[("SIGNPATH_ID_TOKEN", &good)]);
    assert!(out.status.success(), "{}", text(&out));
    verify(&notation, &image);
    let signed = s.audit(&["--policy", "demo/ec-384", "--outcome", "allowed"]);
    let signature = signed.iter().find(|r| r["signature_sha256"].is_string()).unwrap();
    let origin: Value = serde_json::from_str(signature["origin"].as_str().unwrap()).unwrap();
    assert_eq!(origin["repository"], "acme/app");
    assert_eq!(origin["ref"], "refs/heads/main");
    assert_eq!(origin["iss"], ISSUER);

    // Same kid, another key: a token the issuer never signed.
    let other_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let forged = id_token(
        &other_key,
        json!({"repository": "acme/app", "ref": "refs/heads/main"}),
    );
    let cases = [
        (None, "requires an identity token"),
        (
            Some(s.id_token(json!({"repository": "acme/app", "ref": "refs/heads/feature"}))),
            "claim ref is \"refs/heads/feature\"",
        ),
        (
            Some(s.id_token(json!({"repository": "evil/app", "ref": "refs/heads/main"}))),
            "claim repository is \"evil/app\"",
        ),
        (
            Some(s.id_token(
                json!({"repository": "acme/app", "ref": "refs/heads/main", "aud": "someone-else"}),
            )),
            "InvalidAudience",
        ),
        (
            Some(
                s.id_token(json!({"repository": "acme/app", "ref": "refs/heads/main", "exp": 1_000_000_000})),
            ),
            "ExpiredSignature",
        ),
        (Some(forged), "InvalidSignature"),
    ];
    for (token, expected) in cases {
        let env: Vec<(&str, &str)> = token.iter().map(|t| ("SIGNPATH_ID_TOKEN", t.as_str())).collect();
        let out = sign(&notation, "demo/ec-384", &image, &env);
        assert!(!out.status.success(), "signed with {token:?}");
        let said = text(&out);
        assert!(said.contains(expected), "{expected}: {said}");
        if let Some(t) = &token {
            assert!(!said.contains(t.as_str()), "the token is never echoed");
        }
    }
    let refused = s.audit(&["--policy", "demo/ec-384", "--outcome", "refused"]);
    assert_eq!(refused.len(), 6, "every refusal is audited: {refused:?}");
    assert!(refused.iter().all(|r| r["error_type"] == "origin-rejected"));
}

#[test]
fn the_audit_log_names_the_signed_image_and_filters_by_it() {
    require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = notation(&gateway);
    let a = push(&registry, "team/api", "a");
    let b = push(&registry, "team/ui", "b");
    let host = registry.localhost_host();
    for (image, repo) in [(&a, "team/api"), (&b, "team/ui")] {
        let out = sign(
            &notation,
            "demo/ec-256",
            image,
            &[
                ("SIGNPATH_OCI_REGISTRY", host.as_str()),
                ("SIGNPATH_OCI_REPOSITORY", repo),
                ("SIGNPATH_OCI_TAG", "v1"),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let setup = gateway.dir();
    let audit = |filters: &[&str]| -> Vec<Value> {
        let mut args = vec!["audit", "--json"];
        args.extend_from_slice(filters);
        run_cli(&setup, &args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let api = audit(&["--repository", "team/api"]);
    assert_eq!(api.len(), 1, "{api:?}");
    let metadata: Value = serde_json::from_str(api[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata["oci"]["registry"], host.as_str());
    assert_eq!(metadata["oci"]["tag"], "v1");
    assert_eq!(metadata["oci"]["digest"], a.digest.as_str());
    assert_eq!(audit(&["--digest", &b.digest])[0]["metadata"], {
        let ui = audit(&["--repository", "team/ui"]);
        ui[0]["metadata"].clone()
    });
    assert_eq!(audit(&["--registry", &host, "--tag", "v1"]).len(), 2);
    assert!(audit(&["--repository", "team/none"]).is_empty());
    assert!(audit(&["--digest", "sha256:0000"]).is_empty());
    let table = run_cli(&setup, &["audit", "--wide", "--repository", "team/ui"]);
    assert!(table.contains(&b.digest), "{table}");
}
