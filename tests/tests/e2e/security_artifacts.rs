//! The second attack on the gateway, where it went through policies' certificates and file-based signing requests:
//! each test reproduces one attack against the built gateway and shows it refused.
//!
//! - a policy whose certificate was revoked (key compromise) kept signing;
//! - any valid token made the gateway store an artifact of up to `max_size_bytes` before the policy check;
//! - an upload cut off by the request timeout left its partial file and no audit record;
//! - a 1.3 MB layout tarball whose 300 entries name one index of 1,000 manifests cost seconds of CPU per request.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use super::oci_support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use e2e_tests::gateway::{run_cli, sign_ec256, Gateway};
use oci_support::{submit_fast, LayoutBuilder};

const BOUNDARY: &str = "----signpath-attack-boundary";

/// A SignHash of `digest` with `demo/ec-256`: status and body.
fn sign_hash(gateway: &Gateway, digest: &[u8]) -> (u16, Value) {
    let body = json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
        "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode(digest)}});
    let response = gateway
        .https_client()
        .post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .json(&body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap_or_default())
}

/// The entries of the setup's artifact directory (none if it does not exist).
fn artifact_entries(gateway: &Gateway) -> Vec<String> {
    walk(&gateway.dir().join("artifacts"))
}

fn walk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let mut found = vec![e.path().display().to_string()];
            if e.path().is_dir() {
                found.extend(walk(&e.path()));
            }
            found
        })
        .collect()
}

/// The head of a multipart `SubmitWithArtifact` whose form names `demo/ec-256` and then opens its Artifact part;
/// `artifact_length` more bytes of the artifact and the closing boundary make the whole body.
fn submission_head(gateway: &Gateway, token: &str, artifact_length: u64) -> (Vec<u8>, Vec<u8>) {
    let form = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"ProjectSlug\"\r\n\r\ndemo\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"SigningPolicySlug\"\r\n\r\nec-256\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"Artifact\"; filename=\"image.tar\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n").into_bytes();
    let length = form.len() as u64 + artifact_length + tail.len() as u64;
    let head = format!(
        "POST /v1/{}/SigningRequests/SubmitWithArtifact HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {length}\r\n\r\n{form}",
        gateway.organization_id()
    );
    (head.into_bytes(), tail)
}

/// Reads whatever the gateway answers on `tls` until it closes or `limit` passes, writing `dribble` (if any) every
/// 200 ms meanwhile; the answer so far.
fn answer_within(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    limit: Duration,
    dribble: Option<&[u8]>,
) -> String {
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        if let Some(bytes) = dribble {
            if tls.write_all(bytes).and_then(|()| tls.flush()).is_err() {
                break;
            }
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_policy_whose_certificate_is_revoked_signs_nothing_on_any_path_until_it_is_rotated() {
    let gateway = Gateway::start();
    let http = gateway.https_client();
    let digest = [7u8; 32];
    assert!(sign_ec256(&http, &gateway.api_base(), gateway.api_token(), &digest).is_some());

    let revoked = run_cli(
        &gateway.dir(),
        &["revoke", "--policy", "demo/ec-256", "--reason", "key-compromise"],
    );

    // SignHash, which the PKCS#11 module and the Notation plugin use.
    let (status, problem) = sign_hash(&gateway, &digest);
    assert_eq!(status, 403, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:signing-certificate-revoked"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("key-compromise"), "{detail}");
    assert!(detail.contains("signpath-gateway policy rotate"), "{detail}");
    assert!(revoked.contains("policy rotate"), "{revoked}");
    // SignPath's fast signing, as jsign sends it.
    let payload = format!(
        "{{\"SignatureAlgorithm\":\"Ecdsa\",\"Base64EncodedHash\":\"{}\"}}",
        BASE64.encode(digest)
    );
    let fast = submit_fast(
        &gateway,
        &[("ProjectSlug", "demo"), ("SigningPolicySlug", "ec-256")],
        &payload,
        None,
    );
    assert_eq!(fast.status().as_u16(), 403);
    let problem: Value = fast.json().unwrap();
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:signing-certificate-revoked"
    );
    // An OCI tarball: refused before it is stored.
    let form = reqwest::blocking::multipart::Form::new()
        .text("ProjectSlug", "demo")
        .text("SigningPolicySlug", "ec-256")
        .part(
            "Artifact",
            reqwest::blocking::multipart::Part::bytes(vec![0u8; 1024]).file_name("image.tar"),
        );
    let tarball = http
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(tarball.status().as_u16(), 403);
    let problem: Value = tarball.json().unwrap();
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:signing-certificate-revoked"
    );

    run_cli(
        &gateway.dir(),
        &["policy", "rotate", "--project", "demo", "--slug", "ec-256"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = sign_hash(&gateway, &digest);
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated policy does not sign: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_token_that_may_not_use_the_policy_is_refused_before_its_upload_is_stored() {
    let mut gateway = Gateway::start();
    let other = gateway.add_token("other-team", &["demo/rsa-2048"]);
    // A 1 GiB artifact is announced; only 1 MiB of it is sent before the answer is awaited.
    let (head, _) = submission_head(&gateway, &other, 1 << 30);
    let mut tls = gateway.tls_connect();
    let started = Instant::now();
    tls.write_all(&head).unwrap();
    // The gateway may refuse and close while this MiB is still being sent (a broken pipe here): that is the early
    // refusal under test, and its answer is already in this socket's receive queue, read below.
    let _ = tls.write_all(&vec![0u8; 1 << 20]).and_then(|()| tls.flush());
    let answer = answer_within(&mut tls, Duration::from_secs(5), None);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
    assert!(
        answer.contains("urn:signpath-gateway:problem:forbidden"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(artifact_entries(&gateway), Vec::<String>::new());
    let record = gateway.audit_json().into_iter().last().unwrap();
    assert_eq!(record["status"], 403, "{record}");

    // A form that sends its artifact before the parts naming the policy is refused, and nothing is stored either.
    // The artifact is small, so the whole form is sent before the answer: the gateway answers as the part begins
    // and closes, and a client still sending a large body would see the connection close instead of the answer.
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "Artifact",
            reqwest::blocking::multipart::Part::bytes(vec![0u8; 1024]).file_name("image.tar"),
        )
        .text("ProjectSlug", "demo")
        .text("SigningPolicySlug", "ec-256");
    let response = gateway
        .https_client()
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let problem: Value = response.json().unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("send the parts that name the policy first"),
        "{problem}"
    );
    assert_eq!(artifact_entries(&gateway), Vec::<String>::new());
}

#[test]
fn an_upload_cut_off_by_the_request_timeout_leaves_no_file_and_is_audited() {
    let gateway = Gateway::start_with(|dir| {
        let path = dir.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let server = toml::toml! {
            body_read_timeout_seconds = 10
            request_timeout_seconds = 2
        };
        config.insert("server".into(), toml::Value::Table(server));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    let (head, _) = submission_head(&gateway, gateway.api_token(), 1 << 20);
    let mut tls = gateway.tls_connect();
    tls.write_all(&head).unwrap();
    tls.write_all(&[0u8; 4096]).unwrap();
    // A byte every 200 ms: within the body-read timeout, past the request timeout.
    let answer = answer_within(&mut tls, Duration::from_secs(6), Some(b"x"));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let record = loop {
        let timed_out = gateway.audit_json().into_iter().find(|r| {
            r["status"] == 408
                && r["route"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("SubmitWithArtifact")
        });
        if let Some(record) = timed_out {
            break record;
        }
        assert!(
            Instant::now() < deadline,
            "no audit record of the timed-out upload"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["outcome"], "refused", "{record}");
    assert_eq!(record["error_type"], "request-timeout", "{record}");
    assert_eq!(artifact_entries(&gateway), Vec::<String>::new());
}

#[test]
fn a_layout_whose_entries_fan_out_is_answered_within_seconds() {
    let gateway = Gateway::start();
    let mut layout = LayoutBuilder::new();
    let platforms: Vec<(String, Value)> = (0..1_000)
        .map(|i| {
            let arch = format!("arch{i}");
            let manifest = layout.manifest(&arch, &[]);
            (arch, manifest)
        })
        .collect();
    let platforms: Vec<(&str, Value)> = platforms.iter().map(|(a, d)| (a.as_str(), d.clone())).collect();
    let index = layout.image_index(&platforms);
    for i in 0..300 {
        layout.tag(&index, &format!("registry.example/app:t{i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("fan-out.tar");
    layout.write_tar(&tarball);
    let form = reqwest::blocking::multipart::Form::new()
        .text("ProjectSlug", "demo")
        .text("SigningPolicySlug", "rsa-2048")
        .part(
            "Artifact",
            reqwest::blocking::multipart::Part::bytes(std::fs::read(&tarball).unwrap())
                .file_name("fan-out.tar"),
        );
    let started = Instant::now();
    let response = gateway
        .https_client()
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token())
        .multipart(form)
        .send()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status().as_u16(), 400);
    let problem: Value = response.json().unwrap();
    assert_eq!(problem["type"], "urn:signpath-gateway:problem:invalid-artifact");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("more than 10000 descriptors"),
        "{problem}"
    );
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
}
