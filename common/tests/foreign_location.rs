//! The token goes only to the API URL's origin (issue 13): a `202` whose `Location` points at another port, host
//! or scheme is refused with a clear error, and nothing, least of all `Authorization: Bearer`, reaches it.

mod support;

use signpath_common::client::GatewayClient;
use signpath_common::Error;
use support::{config_for, fast_options, request, Scripted, TestServer, SIGNED};

const WAITING: &str = r#"{"signingRequestId":"r1","status":"WaitingForApproval"}"#;
fn waiting_with_location(location: &str) -> Scripted {
    Scripted::json(202, WAITING)
        .with_header("Location", location)
        .with_header("Retry-After", "0")
}

#[test]
fn a_location_on_another_port_is_refused_and_never_contacted() {
    let other = TestServer::start(vec![Scripted::json(200, SIGNED)]);
    for location in [
        format!("https://127.0.0.1:{}/collect", other.port),
        format!("http://127.0.0.1:{}/collect", other.port),
        format!("//127.0.0.1:{}/collect", other.port),
    ] {
        let gateway = TestServer::start(vec![waiting_with_location(&location)]);
        let client = GatewayClient::new(&config_for(&gateway, "127.0.0.1", 5), fast_options()).unwrap();
        let error = client.sign_hash(&request()).unwrap_err();
        let Error::ForeignLocation { origin, .. } = &error else {
            panic!("{location}: {error}");
        };
        assert_eq!(origin, &format!("https://127.0.0.1:{}", gateway.port));
        assert!(
            error
                .to_string()
                .contains("it was not followed and the token was not sent there"),
            "{error}"
        );
        assert_eq!(gateway.requests().len(), 1, "only the SignHash itself");
    }
    assert!(other.requests().is_empty(), "{:?}", other.requests());
}

#[test]
fn a_location_with_another_scheme_on_the_same_port_is_refused() {
    let gateway = TestServer::start(vec![Scripted::json(200, SIGNED)]);
    let location = format!("http://127.0.0.1:{}/Api/v1/x/SigningRequests/r1", gateway.port);
    let first = TestServer::start(vec![waiting_with_location(&location)]);
    let client = GatewayClient::new(&config_for(&first, "127.0.0.1", 5), fast_options()).unwrap();
    assert!(matches!(
        client.sign_hash(&request()),
        Err(Error::ForeignLocation { .. })
    ));
    assert!(gateway.requests().is_empty());
}

#[test]
fn a_location_on_the_api_origin_is_polled() {
    let gateway = TestServer::start(vec![
        waiting_with_location("/Api/v1/6b8d2c1e-0000-4000-8000-000000000001/SigningRequests/r1"),
        Scripted::json(200, SIGNED),
    ]);
    let client = GatewayClient::new(&config_for(&gateway, "127.0.0.1", 5), fast_options()).unwrap();
    let response = client.sign_hash(&request()).unwrap();
    assert_eq!(response.signing_request_id, "r1");
    let requests = gateway.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].path,
        "/Api/v1/6b8d2c1e-0000-4000-8000-000000000001/SigningRequests/r1"
    );
    assert_eq!(requests[1].header("Authorization"), Some("Bearer test-token"));
}
