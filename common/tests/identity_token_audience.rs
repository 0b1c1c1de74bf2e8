//! On GitHub Actions the client fetches a CI identity token when the gateway asks for one, but for the audience the
//! client chose (the gateway's URL as configured, or IdentityTokenAudience), never for one the server names: a fake
//! or compromised gateway asking for `sts.amazonaws.com` would otherwise get a token a cloud trusting GitHub's
//! issuer exchanges for the repository's credentials.

mod support;

use signpath_common::client::GatewayClient;
use signpath_common::Error;
use support::{config_with, fast_options, request, Scripted, TestServer, TokenEndpoint, SIGNED};

/// The gateway's `origin-rejected` answer to a SignHash without an identity token, naming `audience`.
fn wants_token_for(audience: &str) -> Scripted {
    Scripted::json(
        403,
        &format!(
            r#"{{"type":"urn:signpath-gateway:problem:origin-rejected","title":"Forbidden","status":403,"detail":"this signing policy requires an identity token","identityTokenAudience":"{audience}"}}"#
        ),
    )
}

#[test]
fn a_gateway_naming_a_clouds_audience_gets_no_token_and_the_error_names_both() {
    let endpoint = TokenEndpoint::start();
    let server = TestServer::start(vec![wants_token_for("sts.amazonaws.com")]);
    let client = GatewayClient::new(&config_with(&server, &endpoint.env()), fast_options()).unwrap();

    let error = client.sign_hash(&request()).unwrap_err();

    assert_eq!(
        endpoint.audiences(),
        Vec::<String>::new(),
        "no token may be fetched"
    );
    let own = format!("https://127.0.0.1:{}", server.port);
    match &error {
        Error::ForeignIdentityTokenAudience { named, own: ours, .. } => {
            assert_eq!(
                (named.as_str(), ours.as_str()),
                ("sts.amazonaws.com", own.as_str())
            );
        }
        other => panic!("expected ForeignIdentityTokenAudience, got {other:?}"),
    }
    let text = error.to_string();
    for part in [
        "\"sts.amazonaws.com\"",
        &format!("{own:?}"),
        "SIGNPATH_IDENTITY_TOKEN_AUDIENCE",
        "ApiUrl",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "the refused SignHash is not sent again");
    assert_eq!(requests[0].header("X-SignPath-Origin-Token"), None);
}

#[test]
fn a_gateway_naming_its_own_url_gets_a_token_for_it() {
    let endpoint = TokenEndpoint::start();
    let server = TestServer::start(vec![Scripted::json(500, "{}")]);
    // The client's ApiUrl is https://127.0.0.1:PORT/Api: its audience is the URL without /Api.
    let own = format!("https://127.0.0.1:{}", server.port);
    server.script(vec![wants_token_for(&own), Scripted::json(200, SIGNED)]);
    let client = GatewayClient::new(&config_with(&server, &endpoint.env()), fast_options()).unwrap();

    let response = client.sign_hash(&request()).unwrap();

    assert_eq!(response.signing_request_id, "r1");
    assert_eq!(endpoint.audiences(), vec![own.clone()]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].header("X-SignPath-Origin-Token"),
        Some(format!("token-for-{own}").as_str())
    );
}

#[test]
fn an_audience_set_by_the_client_is_the_only_one_fetched() {
    let endpoint = TokenEndpoint::start();
    let mut env = endpoint.env().to_vec();
    env.push(("SIGNPATH_IDENTITY_TOKEN_AUDIENCE", "signpath-gateway".into()));

    let server = TestServer::start(vec![
        wants_token_for("signpath-gateway"),
        Scripted::json(200, SIGNED),
    ]);
    let client = GatewayClient::new(&config_with(&server, &env), fast_options()).unwrap();
    client.sign_hash(&request()).unwrap();
    assert_eq!(endpoint.audiences(), vec!["signpath-gateway".to_owned()]);

    // With the setting, even the gateway's URL is not the client's audience.
    let other = TestServer::start(vec![Scripted::json(500, "{}")]);
    let url = format!("https://127.0.0.1:{}", other.port);
    other.script(vec![wants_token_for(&url)]);
    let client = GatewayClient::new(&config_with(&other, &env), fast_options()).unwrap();
    let error = client.sign_hash(&request()).unwrap_err().to_string();
    assert!(
        error.contains(&format!("{url:?}"))
            && error
                .contains("\"signpath-gateway\" (IdentityTokenAudience, SIGNPATH_IDENTITY_TOKEN_AUDIENCE)"),
        "{error}"
    );
    assert_eq!(endpoint.audiences().len(), 1, "nothing more was fetched");
}
