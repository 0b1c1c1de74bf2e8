//! The gateway client's retry and error contract, against a scripted HTTPS server.

mod support;

use std::time::{Duration, Instant};

use signpath_common::client::GatewayClient;
use signpath_common::Error;
use support::{config_for, fast_options, request, Scripted, TestServer, SIGNED};

#[test]
fn retries_503_and_429_with_the_same_idempotency_key() {
    let server = TestServer::start(vec![
        Scripted::json(503, "{}").with_header("Retry-After", "0"),
        Scripted::json(429, "{}"),
        Scripted::json(200, SIGNED),
    ]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    let response = client.sign_hash(&request()).unwrap();
    assert_eq!(response.signing_request_id, "r1");

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.header("Idempotency-Key").unwrap().to_owned())
        .collect();
    assert!(
        keys.iter().all(|k| k == &keys[0]),
        "one idempotency key for all retries: {keys:?}"
    );
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.path,
            "/Api/v1/6b8d2c1e-0000-4000-8000-000000000001/SigningRequests/SignHash"
        );
        assert_eq!(r.header("Authorization"), Some("Bearer test-token"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
}

#[test]
fn a_new_call_gets_a_new_idempotency_key() {
    let server = TestServer::start(vec![Scripted::json(200, SIGNED)]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    client.sign_hash(&request()).unwrap();
    client.sign_hash(&request()).unwrap();
    let requests = server.requests();
    assert_ne!(
        requests[0].header("Idempotency-Key"),
        requests[1].header("Idempotency-Key")
    );
}

#[test]
fn client_errors_are_not_retried_and_keep_the_problem_detail() {
    let server = TestServer::start(vec![Scripted::json(
        401,
        r#"{"type":"urn:signpath-gateway:problem:unauthenticated","title":"Unauthorized","status":401,"detail":"the API token is not valid"}"#,
    )]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    let err = client.sign_hash(&request()).unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated { detail } if detail == "the API token is not valid"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(!err.to_string().contains("test-token"));
}

#[test]
fn other_4xx_carry_status_and_problem_type() {
    let server = TestServer::start(vec![Scripted::json(
        400,
        r#"{"type":"urn:signpath-gateway:problem:invalid-hash","title":"Bad Request","status":400,"detail":"a SHA-256 digest has 32 bytes"}"#,
    )]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    let err = client.sign_hash(&request()).unwrap_err();
    match err {
        Error::Rejected {
            status,
            problem_type,
            detail,
        } => {
            assert_eq!(
                (status, problem_type.as_str(), detail.as_str()),
                (400, "invalid-hash", "a SHA-256 digest has 32 bytes")
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn gives_up_when_the_budget_is_spent() {
    let server = TestServer::start(vec![Scripted::json(
        503,
        r#"{"title":"Service Unavailable","status":503}"#,
    )]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 2), fast_options()).unwrap();
    let start = Instant::now();
    let err = client.sign_hash(&request()).unwrap_err();
    assert!(matches!(err, Error::Unavailable { status: 503, .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        server.requests().len() >= 3,
        "retried: {}",
        server.requests().len()
    );
}

#[test]
fn retry_after_longer_than_the_budget_is_not_waited_for() {
    let server = TestServer::start(vec![Scripted::json(429, "{}").with_header("Retry-After", "120")]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 3), fast_options()).unwrap();
    let start = Instant::now();
    let err = client.sign_hash(&request()).unwrap_err();
    assert!(matches!(err, Error::Throttled { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let server = TestServer::start(vec![Scripted::json(200, SIGNED)]);
    let other = TestServer::start(vec![Scripted::json(200, SIGNED)]);
    let mut config = config_for(&server, "127.0.0.1", 10);
    config.tls_ca_bundle = Some(other.ca_pem_path.clone());
    let client = GatewayClient::new(&config, fast_options()).unwrap();
    let start = Instant::now();
    let err = client.sign_hash(&request()).unwrap_err();
    // A certificate error is final: no retry, whatever the budget.
    assert!(matches!(err, Error::TlsHandshake { .. }), "{err}");
    assert!(
        err.to_string().contains("invalid peer certificate") && err.to_string().contains("TlsCaBundle"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "retried: {:?}",
        start.elapsed()
    );
    assert!(server.requests().is_empty());
}

#[test]
fn garbage_is_an_invalid_response() {
    let server = TestServer::start(vec![Scripted::json(200, "not json at all")]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    assert!(matches!(
        client.sign_hash(&request()).unwrap_err(),
        Error::InvalidResponse(_)
    ));
}

#[test]
fn policies_query_carries_the_filters() {
    let server = TestServer::start(vec![Scripted::json(200, r#"{"signingPolicies":[]}"#)]);
    let client = GatewayClient::new(&config_for(&server, "127.0.0.1", 30), fast_options()).unwrap();
    assert!(client
        .my_signing_policies(Some("demo"), Some("rsa 2048"))
        .unwrap()
        .is_empty());
    let err = client.fetch_key("demo", "ec-256", None).unwrap_err();
    assert!(matches!(err, Error::PolicyNotFound { .. }));
    let requests = server.requests();
    assert_eq!(
        requests[0].path,
        "/Api/v1/6b8d2c1e-0000-4000-8000-000000000001/Cryptoki/MySigningPolicies?projectSlug=demo&signingPolicySlug=rsa+2048"
    );
    assert_eq!(requests[0].method, "GET");
}

#[test]
fn plain_http_is_refused_unless_loopback_and_allowed() {
    use signpath_common::client::api_base;
    assert!(api_base("http://gateway.example:80", "org", true).is_err());
    assert!(api_base("http://127.0.0.1:8080", "org", false).is_err());
    assert_eq!(
        api_base("http://127.0.0.1:8080", "org", true).unwrap().as_str(),
        "http://127.0.0.1:8080/v1/org/"
    );
    assert_eq!(
        api_base("https://app.signpath.io/Api/", "o", false)
            .unwrap()
            .as_str(),
        "https://app.signpath.io/Api/v1/o/"
    );
    assert!(api_base("ftp://x", "o", false).is_err());
    assert!(api_base("https://x", "a/b", false).is_err());
}
