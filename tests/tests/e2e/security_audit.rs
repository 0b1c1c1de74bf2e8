//! What unauthenticated traffic may cost the gateway: an audit record of bounded size whatever the request carries,
//! no HSM signature for a timestamp query with an oversized nonce and no more than the per-address rate of
//! timestamps, 429 for an address that keeps trying wrong approver tokens, and a `/metrics` scrape that costs a
//! count, not the held requests themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::tools;
use serde_json::{json, Value};

fn edit_config(setup: &Path, edit: impl FnOnce(&mut toml::Table)) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    edit(&mut config);
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

#[test]
fn a_404_with_a_60_kb_url_leaves_a_bounded_audit_record() {
    let gateway = Gateway::start();
    let http = gateway.https_client();
    let path = format!("/nothing-here/{}", "a".repeat(60_000));
    let response = http.get(format!("{}{path}", gateway.api_url())).send().unwrap();
    assert_eq!(response.status(), 404);

    let audit = gateway.audit_json();
    let record = audit
        .iter()
        .find(|r| {
            r["route"]
                .as_str()
                .is_some_and(|route| route.starts_with("/nothing-here/"))
        })
        .expect("the 404 is audited");
    let size = record.to_string().len();
    assert!(
        size < 6 * 1024,
        "the record of a 60 KB URL takes {size} bytes: {record}"
    );
    for field in ["route", "error_detail"] {
        let text = record[field].as_str().unwrap();
        assert!(
            text.ends_with(&format!("…[cut: {} bytes]", expected_length(field, &path))),
            "{field} carries no marker: {}",
            &text[text.len().saturating_sub(80)..]
        );
    }
}

/// The full length of what the gateway would have stored in `field` for a 404 of `path`.
fn expected_length(field: &str, path: &str) -> usize {
    match field {
        "route" => path.len(),
        _ => "there is no route ".len() + path.len(),
    }
}

/// A DER element: `tag`, its length, `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER `TimeStampReq` (RFC 3161) for a SHA-256 digest with `nonce` (its INTEGER content bytes) and certReq.
fn timestamp_query(nonce: &[u8]) -> Vec<u8> {
    const SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let algorithm = der(0x30, &[der(0x06, &SHA256), der(0x05, &[])].concat());
    let imprint = der(0x30, &[algorithm, der(0x04, &[7u8; 32])].concat());
    der(
        0x30,
        &[der(0x02, &[1]), imprint, der(0x02, nonce), der(0x01, &[0xff])].concat(),
    )
}

fn post_query(gateway: &Gateway, query: &[u8]) -> reqwest::blocking::Response {
    gateway
        .https_client()
        .post(format!("{}/timestamp", gateway.api_url()))
        .header("content-type", "application/timestamp-query")
        .body(query.to_vec())
        .send()
        .unwrap()
}

/// The gateway's `hsm_signatures` counter, from `/metrics`.
fn hsm_signatures(gateway: &Gateway) -> f64 {
    metric(gateway, "signpath_gateway_hsm_signatures_total")
}

fn metric(gateway: &Gateway, name: &str) -> f64 {
    let text = gateway
        .https_client()
        .get(format!("{}/metrics", gateway.api_url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics: {text}"))
}

#[test]
fn a_timestamp_query_with_a_60_kb_nonce_is_refused_without_an_hsm_signature() {
    let gateway = Gateway::start();
    let before = hsm_signatures(&gateway);
    let query = timestamp_query(&[0x42u8; 60_000]);
    let response = post_query(&gateway, &query);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/timestamp-reply");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("refused.tsr"), response.bytes().unwrap()).unwrap();
    let read = Command::new("openssl")
        .args(["ts", "-reply", "-in", "refused.tsr", "-text"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let text = tools::output_text(&read);
    assert!(
        text.contains("Status: Rejected.")
            && text.contains("Failure info: transaction not permitted or supported"),
        "{text}"
    );
    assert_eq!(
        hsm_signatures(&gateway),
        before,
        "the refusal cost an HSM signature"
    );

    // A nonce of 64 bits, as notation and cosign send, is still granted.
    let granted = post_query(&gateway, &timestamp_query(&[0x12u8; 8]));
    assert_eq!(granted.status(), 200);
    assert_eq!(hsm_signatures(&gateway), before + 1.0);

    let refused = gateway
        .audit_json()
        .into_iter()
        .find(|r| r["route"] == "/timestamp" && r["outcome"] == "refused")
        .expect("the refusal is audited");
    assert_eq!(refused["error_type"], "BadRequest");
    assert!(refused.to_string().len() < 2048, "{refused}");
}

#[test]
fn timestamp_queries_beyond_the_rate_of_an_address_get_429() {
    let gateway = Gateway::start_with(|setup| {
        edit_config(setup, |config| {
            config.insert(
                "server".into(),
                toml::Value::Table(toml::toml! { max_timestamps_per_address_per_second = 3 }),
            );
        });
    });
    let before = hsm_signatures(&gateway);
    let query = timestamp_query(&[0x12u8; 8]);
    let statuses: Vec<u16> = (0..12)
        .map(|_| post_query(&gateway, &query).status().as_u16())
        .collect();
    assert_eq!(statuses[..3], [200; 3], "{statuses:?}");
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 6, "{statuses:?}");
    let granted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(hsm_signatures(&gateway), before + granted as f64);

    let refused = post_query(&gateway, &query);
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().unwrap();
    assert_eq!(problem["type"], "urn:signpath-gateway:problem:throttled");
}

#[test]
fn repeated_wrong_approver_tokens_get_429() {
    let gateway = Gateway::start_with(|setup| {
        run_cli(setup, &["approver", "add", "--name", "alice"]);
        edit_config(setup, |config| {
            config.insert(
                "server".into(),
                toml::Value::Table(toml::toml! {
                    max_failed_authentications = 5
                    failed_authentication_window_seconds = 60
                    failed_authentication_block_seconds = 2
                }),
            );
        });
    });
    let http = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(gateway.tls_ca()).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let web = gateway.api_url();

    // A script trying tokens as Bearer on a page: sent to the sign-in page before, never counted.
    let statuses: Vec<u16> = (0..8)
        .map(|i| {
            http.get(format!("{web}/Web/SigningRequests"))
                .bearer_auth(format!("wrong-approver-token-{i}"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);

    // The sign-in form, once the block is over.
    std::thread::sleep(Duration::from_secs(3));
    let statuses: Vec<u16> = (0..8)
        .map(|i| {
            http.post(format!("{web}/Web/Login"))
                .header("origin", web)
                .form(&[("token", format!("wrong-approver-token-{i}"))])
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
}

/// Peak resident memory of a process, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn scraping_metrics_does_not_load_the_held_requests() {
    const HELD: usize = 300;
    let gateway = Gateway::start_with(|setup| {
        run_cli(setup, &["approver", "add", "--name", "alice"]);
        edit_config(setup, |config| {
            let policies = config["projects"].as_array_mut().unwrap()[0]["policies"]
                .as_array_mut()
                .unwrap();
            let policy = policies
                .iter_mut()
                .find(|p| p["slug"].as_str() == Some("ec-384"))
                .unwrap();
            policy.as_table_mut().unwrap().insert(
                "approval".into(),
                toml::Value::Table(toml::toml! { approvers = ["alice"] required = 1 }),
            );
        });
    });
    let http = gateway.https_client();
    // 300 requests held for approval, each with a description of 60 KB.
    let description = "d".repeat(60_000);
    for i in 0..HELD {
        let digest = [i as u8; 48];
        let response = http
            .post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
            .bearer_auth(gateway.api_token())
            .json(
                &json!({"projectSlug": "demo", "signingPolicySlug": "ec-384", "description": description,
                "hashSigningData": {"signatureAlgorithm": "Ecdsa",
                    "hash": base64::engine::general_purpose::STANDARD.encode(digest)}}),
            )
            .send()
            .unwrap();
        assert_eq!(response.status(), 202, "request {i}");
    }
    assert_eq!(
        metric(&gateway, "signpath_gateway_approvals_waiting"),
        HELD as f64
    );

    // Eight scrapers, each scraping ten times.
    let before = peak_memory(gateway.pid());
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}/metrics", gateway.api_url()));
            std::thread::spawn(move || {
                for _ in 0..10 {
                    assert_eq!(http.get(&url).send().unwrap().status(), 200);
                }
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.join().unwrap();
    }
    let grown = peak_memory(gateway.pid()).saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "80 scrapes with {HELD} held requests raised the gateway's peak memory by {} MB",
        grown >> 20
    );
}
