//! Real gateway responses checked against docs/openapi.yaml: every route's success body, and problem documents,
//! validate against the schema the document names for them.

#![allow(clippy::unwrap_used)] // a test: a failure should stop it loudly

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::Gateway;
use e2e_tests::tools::workspace_root;
use serde_json::{json, Value};

fn openapi() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("docs/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Validates `instance` against `schema` (a `$ref` or a `oneOf` of them), resolving references inside the document.
fn assert_matches(openapi: &Value, schema: &Value, instance: &Value) {
    let name = schema.to_string();
    let mut schema = schema.clone();
    schema["components"] = openapi["components"].clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not match docs/openapi.yaml: {errors:?}\n{instance}"
    );
}

/// The schema the OpenAPI document gives a route's response with this status (or `default`).
fn response_schema(openapi: &Value, path: &str, method: &str, status: u16) -> Value {
    let responses = &openapi["paths"][path][method]["responses"];
    let response = responses.get(status.to_string()).unwrap_or(&responses["default"]);
    let response = match response.get("$ref").and_then(Value::as_str) {
        Some(r) => &openapi["components"]["responses"][r.rsplit('/').next().unwrap()],
        None => response,
    };
    let content = response["content"].as_object().unwrap();
    let (_, media) = content.iter().next().unwrap();
    media["schema"].clone()
}

#[test]
fn responses_match_the_openapi_document() {
    let openapi = openapi();
    let gateway = Gateway::start();
    let http = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let base = format!("{}/v1/{}", gateway.api_url(), gateway.organization_id());
    let check = |path: &str, method: &str, response: reqwest::blocking::Response| -> Value {
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        assert_matches(&openapi, &response_schema(&openapi, path, method, status), &body);
        body
    };

    let policies = http
        .get(format!("{base}/Cryptoki/MySigningPolicies"))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(policies.status().as_u16(), 200);
    let body = check("/v1/{organizationId}/Cryptoki/MySigningPolicies", "get", policies);
    assert_eq!(body["signingPolicies"].as_array().unwrap().len(), 6);

    let sign = |body: Value, token: Option<&str>| {
        let mut request = http.post(format!("{base}/SigningRequests/SignHash")).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().unwrap()
    };
    let path = "/v1/{organizationId}/SigningRequests/SignHash";
    let signed = sign(
        json!({"projectSlug": "demo", "signingPolicySlug": "rsa-2048", "hashSigningData": {
            "signatureAlgorithm": "Rsa", "rsaOptions": {"hashAlgorithmName": "Sha256", "paddingMode": "Pss"},
            "hash": BASE64.encode([1u8; 32])}}),
        Some(gateway.api_token()),
    );
    assert_eq!(signed.status().as_u16(), 200);
    let signed = check(path, "post", signed);
    let id = signed["signingRequestId"].as_str().unwrap().to_owned();

    let request_path = "/v1/{organizationId}/SigningRequests/{signingRequestId}";
    let fetched = http
        .get(format!("{base}/SigningRequests/{id}"))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(fetched.status().as_u16(), 200);
    assert_eq!(
        check(request_path, "get", fetched)["hashSigningResult"],
        signed["hashSigningResult"]
    );
    let status = http
        .get(format!("{base}/SigningRequests/{id}/Status"))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
    check(
        "/v1/{organizationId}/SigningRequests/{signingRequestId}/Status",
        "get",
        status,
    );
    let missing = http
        .get(format!("{base}/SigningRequests/{}", uuid::Uuid::new_v4()))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    check(request_path, "get", missing);

    for (body, token, status) in [
        (json!({"projectSlug": "demo"}), Some(gateway.api_token()), 400),
        (json!({}), None, 401),
        (
            json!({"projectSlug": "demo", "signingPolicySlug": "none", "hashSigningData": {
                "signatureAlgorithm": "Ecdsa", "hash": BASE64.encode([1u8; 32])}}),
            Some(gateway.api_token()),
            404,
        ),
    ] {
        let response = sign(body, token);
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        check(path, "post", response);
    }
}
