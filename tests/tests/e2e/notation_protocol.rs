//! The Notation plugin contract, byte for byte: `notation-signpath` run as notation runs it (one command
//! argument, the request on stdin), with its stdout, stderr and exit code compared exactly.
//!
//! The plugin talks to a scripted stand-in for the gateway on loopback (plain HTTP, allowed for loopback by
//! `SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP`): it serves one policy, `demo/ec-256`, with a P-256 key and a
//! leaf → intermediate → root chain made here, signs digests with that key, records every request, and can be
//! told to misbehave (a status code, a wrong signature, a chain without its root, no answer at all). That makes
//! each error code reproducible; `notation_e2e.rs` drives the real notation against the real gateway.
//!
//! Each run gets an empty environment with its own HOME, XDG_CACHE_HOME and log directory, so the user's
//! settings and cache never leak in.

use super::notation_protocol_support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use common::keys::{HashAlgorithm, SignatureScheme};
use common::pubkey::PublicKey;

use notation_protocol_support::{
    describe_request, jws_signing_input, sign_request, Behaviour, Env, FakeGateway, KEY_ID, ORGANIZATION,
    TOKEN, VERSION,
};

// ---------------------------------------------------------------------------------------------------------------
// get-plugin-metadata and the command line

fn metadata_json() -> String {
    format!(
        r#"{{"name":"signpath","description":"Notation plugin that signs through a SignPath-compatible signing gateway","version":"{VERSION}","url":"https://example.invalid/signpath-container-signing","supportedContractVersions":["1.0"],"capabilities":["SIGNATURE_GENERATOR.RAW","SIGNATURE_VERIFIER.TRUSTED_IDENTITY","SIGNATURE_VERIFIER.REVOCATION_CHECK"]}}"#
    )
}

#[test]
fn get_plugin_metadata_is_static_and_needs_no_configuration() {
    let env = Env::new();
    for stdin in [
        "{}",
        "",
        r#"{"pluginConfig":{"OrganizationId":"x","ApiUrl":"https://gw.example"}}"#,
    ] {
        let run = env.run(&["get-plugin-metadata"], stdin);
        assert_eq!(
            (run.code, run.stdout, run.stderr),
            (0, metadata_json(), String::new()),
            "{stdin:?}"
        );
    }
    assert!(!VERSION.starts_with('v'));
}

const USAGE: &str = "notation-signpath takes one command, get-plugin-metadata, describe-key, generate-signature, \
                     generate-envelope or verify-signature, and reads its request as JSON on stdin; notation runs it (notation sign --plugin signpath --id \
                     Project/Policy)";

#[test]
fn unknown_command_is_a_validation_error() {
    Env::new()
        .run(&["sign"], "{}")
        .assert_error("VALIDATION_ERROR", &format!("unknown command \"sign\": {USAGE}"));
}

#[test]
fn no_command_is_a_validation_error() {
    Env::new()
        .run(&[], "{}")
        .assert_error("VALIDATION_ERROR", &format!("no command given: {USAGE}"));
}

#[test]
fn extra_arguments_are_a_validation_error() {
    Env::new()
        .run(&["describe-key", "--key", "x"], "{}")
        .assert_error(
            "VALIDATION_ERROR",
            &format!("unexpected argument \"--key\": {USAGE}"),
        );
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed requests

#[test]
fn invalid_json_is_a_validation_error() {
    Env::new().run(&["describe-key"], "invalidjson").assert_error(
        "VALIDATION_ERROR",
        "the describe-key request on stdin is not valid JSON (expected value at line 1 column 1); \
         notation-signpath is run by notation, which writes one JSON object to its stdin",
    );
    Env::new().run(&["get-plugin-metadata"], "{nope").assert_error(
        "VALIDATION_ERROR",
        "the get-plugin-metadata request on stdin is not valid JSON (key must be a string at line 1 column 2); \
         notation-signpath is run by notation, which writes one JSON object to its stdin",
    );
}

#[test]
fn empty_stdin_is_a_validation_error() {
    for stdin in ["", "\n"] {
        let run = Env::new().run(&["generate-signature"], stdin);
        run.assert_error_starting(
            "VALIDATION_ERROR",
            "the generate-signature request on stdin is not valid JSON (EOF while parsing a value",
        );
    }
}

#[test]
fn missing_fields_are_named() {
    let env = Env::new();
    env.run(&["describe-key"], r#"{"contractVersion":"1.0"}"#)
        .assert_error(
        "VALIDATION_ERROR",
        "the describe-key request has no keyId; send the key id that notation's --id passes, Project/Policy \
         (for example demo/ec-256)",
    );
    env.run(&["describe-key"], r#"{"keyId":"demo/ec-256"}"#)
        .assert_error(
            "VALIDATION_ERROR",
            "the describe-key request has no contractVersion; send \"contractVersion\":\"1.0\"",
        );
    env.run(&["describe-key"], r#"{"sad":"bad"}"#).assert_error(
        "VALIDATION_ERROR",
        "the describe-key request has no contractVersion; send \"contractVersion\":\"1.0\"",
    );
    let no_payload =
        json!({"contractVersion":"1.0","keyId":KEY_ID,"keySpec":"EC-256","hashAlgorithm":"SHA-256"});
    env.run(&["generate-signature"], &no_payload.to_string())
        .assert_error(
            "VALIDATION_ERROR",
            "the generate-signature request has no payload; send the bytes to sign, standard base64",
        );
}

#[test]
fn key_id_must_be_project_slash_policy() {
    Env::new().run(&["describe-key"], &describe_request("ec-256")).assert_error(
        "VALIDATION_ERROR",
        "key id \"ec-256\" is not Project/Policy: pass notation's --id as the SignPath project slug and signing \
         policy slug separated by \"/\", for example demo/ec-256",
    );
}

#[test]
fn wrong_contract_version_is_unsupported() {
    let env = Env::new();
    env.run(&["describe-key"], r#"{"contractVersion":"2.0","keyId":"demo/ec-256"}"#)
        .assert_error(
            "UNSUPPORTED_CONTRACT_VERSION",
            "contract version \"2.0\" is not supported: notation-signpath speaks Notation plugin contract version \
             1.0, which notation v1.x sends",
        );
    let request = sign_request("EC-256", "SHA-256", b"x").replace("\"1.0\"", "\"2.0\"");
    let run = env.run(&["generate-signature"], &request);
    run.assert_error_starting("UNSUPPORTED_CONTRACT_VERSION", "contract version \"2.0\"");
}

#[test]
fn bad_base64_payload_is_a_validation_error() {
    let request = sign_request("EC-256", "SHA-256", b"").replace("\"payload\":\"\"", "\"payload\":\"%%%\"");
    Env::new().run(&["generate-signature"], &request).assert_error(
        "VALIDATION_ERROR",
        "payload is not standard base64 (Invalid symbol 37, offset 0.); send the bytes to sign as standard base64 \
         with padding",
    );
}

#[test]
fn unsupported_hash_and_key_spec_are_validation_errors() {
    let env = Env::new();
    env.run(&["generate-signature"], &sign_request("EC-256", "SHA-1", b"zop"))
        .assert_error(
            "VALIDATION_ERROR",
            "hashAlgorithm \"SHA-1\" is not one of SHA-256, SHA-384, SHA-512",
        );
    env.run(
        &["generate-signature"],
        &sign_request("RSA-1024", "SHA-256", b"zop"),
    )
    .assert_error(
        "VALIDATION_ERROR",
        "keySpec \"RSA-1024\" is not one of EC-256, EC-384, EC-521, RSA-2048, RSA-3072, RSA-4096",
    );
}

#[test]
fn key_spec_and_hash_must_pair_as_notary_pairs_them() {
    // The framework's own example request (EC-384 with SHA-384 is fine; these are not).
    Env::new()
        .run(
            &["generate-signature"],
            &sign_request("EC-256", "SHA-384", b"zop"),
        )
        .assert_error(
            "VALIDATION_ERROR",
            "hashAlgorithm SHA-384 does not match keySpec EC-256, which Notary pairs with SHA-256; send \
             \"hashAlgorithm\":\"SHA-256\"",
        );
    Env::new()
        .run(
            &["generate-signature"],
            &sign_request("RSA-4096", "SHA-256", b"zop"),
        )
        .assert_error_starting(
            "VALIDATION_ERROR",
            "hashAlgorithm SHA-256 does not match keySpec RSA-4096",
        );
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

#[test]
fn missing_organization_names_the_variable() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    Env::for_gateway(&gateway)
        .without("SIGNPATH_ORGANIZATION_ID")
        .run(&["describe-key"], &describe_request(KEY_ID))
        .assert_error(
            "VALIDATION_ERROR",
            "OrganizationId is not set: set SIGNPATH_ORGANIZATION_ID (or \"OrganizationId\" in the file named by \
             SIGNPATH_CONFIG_FILE), or pass --plugin-config OrganizationId=... to notation",
        );
    assert!(gateway.requests().is_empty());
}

#[test]
fn missing_token_names_the_variable_and_never_plugin_config() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    Env::for_gateway(&gateway)
        .without("SIGNPATH_API_TOKEN")
        .run(&["describe-key"], &describe_request(KEY_ID))
        .assert_error(
            "VALIDATION_ERROR",
            "ApiToken is not set: set SIGNPATH_API_TOKEN (or \"ApiToken\" in the file named by SIGNPATH_CONFIG_FILE)",
        );
}

#[test]
fn api_token_in_plugin_config_is_refused() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let request = json!({
        "contractVersion": "1.0",
        "keyId": KEY_ID,
        "pluginConfig": {"OrganizationId": ORGANIZATION, "ApiToken": TOKEN},
    });
    let run = Env::for_gateway(&gateway).run(&["describe-key"], &request.to_string());
    run.assert_error(
        "VALIDATION_ERROR",
        "\"ApiToken\" must not be set in pluginConfig (--plugin-config): notation stores plugin config in \
         signingkeys.json and prints it in debug logs; set the token in SIGNPATH_API_TOKEN (or \"ApiToken\" in the \
         file named by SIGNPATH_CONFIG_FILE) instead",
    );
    assert!(!run.stderr.contains(TOKEN));
    assert!(gateway.requests().is_empty());
}

#[test]
fn plugin_config_overrides_the_environment() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let request = json!({
        "contractVersion": "1.0",
        "keyId": KEY_ID,
        "pluginConfig": {"organizationid": ORGANIZATION, "ApiUrl": gateway.url()},
    });
    let run = Env::for_gateway(&gateway)
        .with("SIGNPATH_ORGANIZATION_ID", "another-organization")
        .with("SIGNPATH_API_URL", "http://127.0.0.1:9")
        .run(&["describe-key"], &request.to_string());
    assert_eq!(run.success(), json!({"keyId": KEY_ID, "keySpec": "EC-256"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Gateway failures

#[test]
fn unreachable_gateway_fails_quickly_with_error() {
    // A port nothing listens on: connection refused, retried until the 2-second budget is spent.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let env = Env::new()
        .with("SIGNPATH_API_URL", &format!("http://127.0.0.1:{closed}"))
        .with("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP", "true")
        .with("SIGNPATH_ORGANIZATION_ID", ORGANIZATION)
        .with("SIGNPATH_API_TOKEN", TOKEN)
        .with("SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS", "2");
    let started = Instant::now();
    let run = env.run(&["describe-key"], &describe_request(KEY_ID));
    run.assert_error_starting(
        "ERROR",
        &format!("could not reach the signing gateway at http://127.0.0.1:{closed}/v1/{ORGANIZATION}/Cryptoki/MySigningPolicies after"),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn silent_gateway_is_a_timeout() {
    let gateway = FakeGateway::start(Behaviour::Silent);
    let started = Instant::now();
    let run = Env::for_gateway(&gateway).run(&["describe-key"], &describe_request(KEY_ID));
    run.assert_error_starting("TIMEOUT", "the signing gateway did not answer within");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn wrong_token_is_access_denied() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let run = Env::for_gateway(&gateway)
        .with("SIGNPATH_API_TOKEN", "not-the-token")
        .run(&["describe-key"], &describe_request(KEY_ID));
    run.assert_error(
        "ACCESS_DENIED",
        "the signing gateway rejected the API token (HTTP 401): the API token is not valid; check \
         SIGNPATH_API_TOKEN and SIGNPATH_ORGANIZATION_ID",
    );
    assert!(!run.stderr.contains("not-the-token"));
}

#[test]
fn forbidden_is_access_denied() {
    let gateway = FakeGateway::start(Behaviour::Status(403));
    Env::for_gateway(&gateway)
        .run(&["describe-key"], &describe_request(KEY_ID))
        .assert_error(
            "ACCESS_DENIED",
            "access denied (HTTP 403): scripted 403; ask an administrator to add this token as a submitter of the \
             signing policy",
        );
}

#[test]
fn throttling_is_throttled() {
    let gateway = FakeGateway::start(Behaviour::Status(429));
    let run = Env::for_gateway(&gateway).run(&["describe-key"], &describe_request(KEY_ID));
    run.assert_error_starting(
        "THROTTLED",
        "the signing gateway is throttling requests (HTTP 429)",
    );
}

#[test]
fn unknown_policy_is_a_validation_error() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    Env::for_gateway(&gateway)
        .run(&["describe-key"], &describe_request("demo/nope"))
        .assert_error(
            "VALIDATION_ERROR",
            "signing policy demo/nope is not among the policies this token may use; check the key id and that the \
             token is a submitter of that policy",
        );
}

#[test]
fn server_error_is_error() {
    let gateway = FakeGateway::start(Behaviour::Status(500));
    Env::for_gateway(&gateway)
        .run(&["describe-key"], &describe_request(KEY_ID))
        .assert_error("ERROR", "the signing gateway failed (HTTP 500): scripted 500");
}

// ---------------------------------------------------------------------------------------------------------------
// Signing

#[test]
fn describe_key_reports_the_leaf_key_spec() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let env = Env::for_gateway(&gateway);
    let run = env.run(&["describe-key"], &describe_request(KEY_ID));
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, r#"{"keyId":"demo/ec-256","keySpec":"EC-256"}"#, "")
    );
}

/// What notation does for one `notation sign`: metadata, describe-key, generate-signature, each a new process.
#[test]
fn a_whole_sign_costs_one_key_lookup_and_one_signature_and_logs_only_to_the_file() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let env = Env::for_gateway(&gateway)
        .with("SIGNPATH_OCI_REGISTRY", "registry.example")
        .with("SIGNPATH_OCI_REPOSITORY", "team/app")
        .with("SIGNPATH_OCI_TAG", "v1");
    let digest = "sha256:2f6e3c8a0d51e3b9a3f3f0e6f9c47ad6ef7b2cb7c7d2c5d8d40f7b6b3d0c9e11";
    let payload = jws_signing_input(digest);

    assert_eq!(
        env.run(&["get-plugin-metadata"], "{}").success()["name"],
        "signpath"
    );
    assert_eq!(
        env.run(&["describe-key"], &describe_request(KEY_ID)).success()["keySpec"],
        "EC-256"
    );
    let run = env.run(
        &["generate-signature"],
        &sign_request("EC-256", "SHA-256", payload.as_bytes()),
    );
    let response = run.success();

    let chain: Vec<String> = gateway.chain.iter().map(|der| BASE64.encode(der)).collect();
    let signature = response["signature"].as_str().expect("signature").to_owned();
    assert_eq!(
        run.stdout,
        format!(
            r#"{{"keyId":"{KEY_ID}","signature":"{signature}","signingAlgorithm":"ECDSA-SHA-256","certificateChain":{}}}"#,
            json!(chain)
        )
    );
    // Raw r||s over SHA-256 of the whole payload, verifiable with the leaf's key.
    let signature = BASE64.decode(signature).expect("base64 signature");
    assert_eq!(signature.len(), 64);
    let leaf = common::x509::ParsedCertificate::from_der(&gateway.chain[0]).expect("leaf");
    let key: PublicKey = leaf.public_key().expect("leaf key");
    let digest_bytes = HashAlgorithm::Sha256.digest(payload.as_bytes());
    key.verify_digest(
        SignatureScheme::EcdsaIeee,
        HashAlgorithm::Sha256,
        &digest_bytes,
        &signature,
    )
    .expect("signature verifies with the leaf");

    assert_eq!(gateway.count("MySigningPolicies"), 1, "{:?}", gateway.requests());
    assert_eq!(gateway.count("SignHash"), 1);
    let sign_hash = gateway
        .requests()
        .into_iter()
        .find(|r| r.path.contains("SignHash"))
        .expect("SignHash request");
    assert_eq!(sign_hash.method, "POST");
    let body: Value = serde_json::from_slice(&sign_hash.body).expect("SignHash JSON");
    let data = &body["hashSigningData"];
    assert_eq!(body["projectSlug"], "demo");
    assert_eq!(body["signingPolicySlug"], "ec-256");
    assert_eq!(data["signatureAlgorithm"], "Ecdsa");
    assert_eq!(data["ecdsaOptions"]["signatureFormat"], "Ieee");
    assert_eq!(data["hash"], BASE64.encode(&digest_bytes));
    assert_eq!(
        data["metadata"]["oci"],
        json!({
            "registry": "registry.example",
            "repository": "team/app",
            "tag": "v1",
            "digest": digest,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
        })
    );
    let command_line = data["metadata"]["sourceProcess"]["commandLine"]
        .as_str()
        .expect("commandLine");
    assert!(
        command_line.ends_with("notation-signpath generate-signature"),
        "{command_line}"
    );

    let log = env.log();
    assert!(log.contains("describe-key"), "log: {log}");
    assert!(log.contains("generate-signature: signed"), "log: {log}");
    assert!(!log.contains(TOKEN), "the token reached the log");
}

#[test]
fn an_expired_or_corrupt_cache_entry_is_refetched() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    let env = Env::for_gateway(&gateway);
    env.run(&["describe-key"], &describe_request(KEY_ID)).success();
    let entries: Vec<PathBuf> = std::fs::read_dir(env.cache_dir())
        .expect("cache directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1);
    std::fs::write(&entries[0], b"{ corrupt").expect("corrupt the entry");
    env.run(&["describe-key"], &describe_request(KEY_ID)).success();
    assert_eq!(gateway.count("MySigningPolicies"), 2);
    // Rewritten, and used again.
    env.run(&["describe-key"], &describe_request(KEY_ID)).success();
    assert_eq!(gateway.count("MySigningPolicies"), 2);

    let text = std::fs::read_to_string(&entries[0]).expect("entry");
    let mut entry: Value = serde_json::from_str(&text).expect("entry JSON");
    let stored_at = entry["storedAt"].as_u64().expect("storedAt");
    entry["storedAt"] = json!(stored_at - 301);
    std::fs::write(&entries[0], entry.to_string()).expect("age the entry");
    env.run(&["describe-key"], &describe_request(KEY_ID)).success();
    assert_eq!(gateway.count("MySigningPolicies"), 3);
    assert!(!text.contains(TOKEN));
}

#[test]
fn a_wrong_signature_from_the_gateway_is_an_error_and_not_returned() {
    let gateway = FakeGateway::start(Behaviour::WrongSignature);
    let env = Env::for_gateway(&gateway);
    let run = env.run(
        &["generate-signature"],
        &sign_request("EC-256", "SHA-256", b"to be signed"),
    );
    run.assert_error(
        "ERROR",
        "the signature the gateway returned for demo/ec-256 does not verify with the policy's public key (the \
         signature does not verify with the policy's public key); it was not used",
    );
}

#[test]
fn a_chain_without_root_fails_before_signing() {
    let gateway = FakeGateway::start(Behaviour::ChainWithoutRoot);
    let env = Env::for_gateway(&gateway);
    let message = "the certificate chain of demo/ec-256 ends at CN=Test Intermediate,O=Test,ST=WA,C=US, which is \
                   not self-signed: set CertificateChainFile (SIGNPATH_CERTIFICATE_CHAIN_FILE) to a PEM file with \
                   the intermediate and root certificates, in that order";
    env.run(&["describe-key"], &describe_request(KEY_ID))
        .assert_error("VALIDATION_ERROR", message);
    env.run(&["generate-signature"], &sign_request("EC-256", "SHA-256", b"x"))
        .assert_error("VALIDATION_ERROR", message);
    assert_eq!(gateway.count("SignHash"), 0);
    // A chain that fails the checks is never cached: each run asks the gateway again, so a fixed chain is seen
    // at once, and a cache hit can rely on the checks its chain passed before it was stored.
    assert_eq!(gateway.count("MySigningPolicies"), 2);
}

#[test]
fn a_key_spec_other_than_the_keys_is_refused() {
    let gateway = FakeGateway::start(Behaviour::Normal);
    Env::for_gateway(&gateway)
        .run(&["generate-signature"], &sign_request("EC-384", "SHA-384", b"x"))
        .assert_error(
            "VALIDATION_ERROR",
            "the request's keySpec EC-384 does not match demo/ec-256, whose certificate holds an EC-256 key; run \
             notation sign again so that describe-key reports EC-256",
        );
    assert_eq!(gateway.count("SignHash"), 0);
}
