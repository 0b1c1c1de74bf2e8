//! One outcome per request, decided once by the gateway's core: the request's log line and its audit record say
//! the same word, and every record goes through the core, also those that answer no request of their own (the
//! start of a block of failed authentications). Checked through the built gateway with its JSON log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use e2e_tests::gateway::{run_cli, Gateway};
use serde_json::Value;

/// The gateway's log lines (`--log-format json`), one JSON object each.
fn log_lines(gateway: &Gateway) -> Vec<Value> {
    gateway
        .stderr()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The log lines that name `request_id`.
fn lines_of(gateway: &Gateway, request_id: &str) -> Vec<Value> {
    log_lines(gateway)
        .into_iter()
        .filter(|line| line["request_id"] == request_id)
        .collect()
}

#[test]
fn a_timestamp_reply_that_grants_nothing_is_logged_and_audited_refused() {
    let gateway = Gateway::start_serving(|_| {}, &["--log-format", "json"]);
    let response = gateway
        .https_client()
        .post(format!("{}/timestamp", gateway.api_url()))
        .header("content-type", "application/timestamp-query")
        .body(b"not a TimeStampReq".to_vec())
        .send()
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "RFC 3161 answers a query it cannot grant with a failure reply"
    );
    let record = gateway
        .audit_json()
        .into_iter()
        .find(|r| r["route"] == "/timestamp")
        .expect("the query is audited");
    assert_eq!(
        (&record["outcome"], &record["status"]),
        (&Value::from("refused"), &Value::from(200))
    );
    let request_id = record["request_id"].as_str().unwrap();
    let request_line = lines_of(&gateway, request_id)
        .into_iter()
        .find(|line| line["message"] == "request")
        .expect("the request's log line");
    assert_eq!(
        request_line["outcome"], "refused",
        "the log line says what the audit record says: {request_line}"
    );
}

#[test]
fn the_record_of_a_block_of_failed_authentications_is_written_by_the_core() {
    let gateway = Gateway::start_serving(
        |setup| {
            let path = setup.join("gateway.toml");
            let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
            config.insert(
                "server".into(),
                toml::Value::Table(toml::toml! {
                    max_failed_authentications = 3
                    failed_authentication_window_seconds = 60
                    failed_authentication_block_seconds = 60
                }),
            );
            std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        },
        &["--log-format", "json"],
    );
    let http = gateway.https_client();
    let url = format!(
        "{}/v1/{}/Cryptoki/MySigningPolicies",
        gateway.api_url(),
        gateway.organization_id()
    );
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            http.get(&url)
                .bearer_auth(format!("wrong-token-{i}"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429]);
    let block = gateway
        .audit_json()
        .into_iter()
        .find(|r| r["status"] == 429)
        .expect("the start of the block is audited");
    assert_eq!(
        (&block["outcome"], &block["error_type"]),
        (&Value::from("refused"), &Value::from("throttled"))
    );
    assert!(
        block["error_detail"]
            .as_str()
            .unwrap()
            .starts_with("3 failed authentications within 60 s"),
        "{block}"
    );
    assert!(
        !block["completed"].as_str().unwrap_or_default().is_empty(),
        "{block}"
    );
    // The core logs every refusal it audits; a record written past it had no such line.
    let request_id = block["request_id"].as_str().unwrap();
    assert!(
        lines_of(&gateway, request_id)
            .iter()
            .any(|line| line["message"] == "request refused" && line["error"] == "throttled"),
        "the core's line for the record {request_id}:\n{}",
        gateway.stderr()
    );
}

#[test]
fn a_vote_on_the_command_line_is_audited_with_the_status_and_type_of_the_same_vote_on_the_web_page() {
    let gateway = Gateway::start_with(|setup| {
        run_cli(setup, &["approver", "add", "--name", "alice"]);
    });
    let out = std::process::Command::new(Gateway::binary())
        .args(["approve", "no-such-request", "--as", "alice", "--config"])
        .arg(gateway.config())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no signing request no-such-request"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = gateway
        .audit_json()
        .into_iter()
        .find(|r| r["route"] == "signpath-gateway approve")
        .expect("the vote is audited");
    // It was 409 without an error type, whatever the reason; the web page answers 404 signing-request-not-found.
    assert_eq!(
        (&record["outcome"], &record["status"], &record["error_type"]),
        (
            &Value::from("refused"),
            &Value::from(404),
            &Value::from("signing-request-not-found")
        ),
        "{record}"
    );
}
