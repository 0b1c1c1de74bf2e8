//! The gateway as a Fulcio-compatible CA (docs/keyless.md), with the stand-in OIDC issuer of `oidc.rs`: a token,
//! a key and a proof of possession get a ten-minute code-signing certificate whose chain OpenSSL verifies to the
//! organization's root and whose extensions are Fulcio's; the refusals (an issuer or a repository the rules do not
//! admit, a proof of possession or a CSR signature that fails) with their exact status and problem type, each
//! audited. Stock cosign signing keyless against the gateway is `keyless_cosign.rs`.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::process::Command;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use x509_cert::der::{Decode, DecodePem};

use e2e_tests::gateway::Gateway;
use e2e_tests::oidc::{Issuer, ISSUER};
use e2e_tests::tools;

/// The audience cosign's tokens are minted for in the public Sigstore, which the trusted issuer here names.
pub(crate) const AUDIENCE: &str = "sigstore";
/// An issuer the gateway trusts (for origin checks, say) that no keyless rule admits.
const OTHER_ISSUER: &str = "https://other-ci.example";

/// A gateway whose keyless CA admits tokens of the stand-in issuer for `acme/app` on tags.
pub(crate) fn start(issuer: &Issuer) -> Gateway {
    let jwks = issuer.jwks().to_string();
    Gateway::start_with(move |setup| {
        std::fs::write(setup.join("ci-jwks.json"), jwks).unwrap();
        let path = setup.join("gateway.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[[trusted_issuers]]\nname = \"ci\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"ci-jwks.json\"\n\
             \n[[trusted_issuers]]\nname = \"other\"\nissuer = \"{OTHER_ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"ci-jwks.json\"\n\
             \n[[keyless.rules]]\nissuer = \"ci\"\nrepositories = [\"acme/app\"]\nrefs = [\"refs/tags/*\"]\n"
        ));
        std::fs::write(&path, text).unwrap();
    })
}

/// The claims of a GitHub Actions release job of acme/app.
pub(crate) fn job_claims(repository: &str) -> Value {
    json!({
        "sub": format!("repo:{repository}:ref:refs/tags/v1.0.0"),
        "repository": repository,
        "repository_id": "4242",
        "repository_owner": repository.split('/').next().unwrap(),
        "repository_owner_id": "42",
        "ref": "refs/tags/v1.0.0",
        "sha": "9f2c1e0d4b6a8c7e5f3a1b2c3d4e5f60718293a4",
        "workflow": "release",
        "workflow_ref": format!("{repository}/.github/workflows/release.yml@refs/tags/v1.0.0"),
        "job_workflow_ref": format!("{repository}/.github/workflows/release.yml@refs/tags/v1.0.0"),
        "event_name": "push",
        "run_id": "1001",
        "run_attempt": "1",
    })
}

/// OpenSSL verifies `leaf` (PEM) through the keyless `intermediate` (PEM) to the organization's root.
pub(crate) fn assert_openssl_verifies_to_the_root(gateway: &Gateway, leaf: &str, intermediate: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leaf.pem"), leaf).unwrap();
    std::fs::write(dir.path().join("intermediate.pem"), intermediate).unwrap();
    let verify = Command::new(tools::tool("openssl"))
        .arg("verify")
        .arg("-CAfile")
        .arg(gateway.root_ca_pem())
        .arg("-untrusted")
        .arg(dir.path().join("intermediate.pem"))
        .args(["-purpose", "any"])
        .arg(dir.path().join("leaf.pem"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl verify: {}",
        tools::output_text(&verify)
    );
}

/// `POST /api/v2/signingCert` as sigstore-go sends it: the token as a bearer, the key as PEM, the proof in base64.
pub(crate) fn request_certificate(
    gateway: &Gateway,
    token: &str,
    public_key_pem: &str,
    proof: &[u8],
) -> (u16, Value) {
    let response = gateway
        .https_client()
        .post(format!("{}/api/v2/signingCert", gateway.api_url()))
        .bearer_auth(token)
        .json(&json!({
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": public_key_pem},
                "proofOfPossession": BASE64.encode(proof),
            }
        }))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

pub(crate) fn key_pair() -> (p256::ecdsa::SigningKey, String) {
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pem = key
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    (key, pem)
}

pub(crate) fn proof(key: &p256::ecdsa::SigningKey, challenge: &str) -> Vec<u8> {
    let signature: p256::ecdsa::DerSignature = key.sign(challenge.as_bytes());
    signature.as_bytes().to_vec()
}

fn extension_value(cert: &x509_cert::Certificate, arc: u32) -> Option<Vec<u8>> {
    let oid = format!("1.3.6.1.4.1.57264.1.{arc}");
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id.to_string() == oid)
        .map(|e| e.extn_value.as_bytes().to_vec())
}

/// A DER UTF8String's text.
fn utf8(der: &[u8]) -> String {
    x509_cert::der::asn1::Utf8StringRef::from_der(der)
        .unwrap()
        .as_str()
        .to_owned()
}

#[test]
fn a_token_key_and_proof_get_a_ten_minute_code_signing_certificate_chaining_to_the_root() {
    let issuer = Issuer::new();
    let gateway = start(&issuer);
    let token = issuer.token(AUDIENCE, &job_claims("acme/app"));
    let (key, public_pem) = key_pair();
    let (status, body) = request_certificate(
        &gateway,
        &token,
        &public_pem,
        &proof(&key, "repo:acme/app:ref:refs/tags/v1.0.0"),
    );
    assert_eq!(status, 200, "{body}");
    let chain: Vec<String> = body["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(chain.len(), 3, "leaf, keyless intermediate, root");

    // OpenSSL: the leaf chains through the keyless intermediate to the organization's root, for code signing.
    assert_openssl_verifies_to_the_root(&gateway, &chain[0], &chain[1]);
    assert_eq!(
        std::fs::read_to_string(gateway.root_ca_pem()).unwrap().trim(),
        chain[2].trim(),
        "the chain ends at the organization's root"
    );

    let leaf = x509_cert::Certificate::from_pem(chain[0].as_bytes()).unwrap();
    let tbs = &leaf.tbs_certificate;
    let validity = tbs.validity.not_after.to_unix_duration() - tbs.validity.not_before.to_unix_duration();
    assert_eq!(validity.as_secs(), 600);
    assert!(tbs.subject.0.is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &chain[0]).unwrap();
    let text = Command::new(tools::tool("openssl"))
        .arg("x509")
        .arg("-in")
        .arg(dir.path().join("leaf.pem"))
        .args(["-noout", "-ext", "subjectAltName,extendedKeyUsage"])
        .output()
        .unwrap();
    let text = tools::output_text(&text);
    assert!(text.contains("Code Signing"), "{text}");
    assert!(
        text.contains("URI:https://ci.example/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"),
        "the SAN is the workflow, under the issuer's repository host: {text}"
    );
    assert!(
        text.contains("critical"),
        "a critical SAN (the subject is empty): {text}"
    );

    // Fulcio's extensions: the issuer bare (v1, .1) and as a DER UTF8String (.8), the CI claims (.9 and above).
    assert_eq!(extension_value(&leaf, 1).unwrap(), ISSUER.as_bytes());
    assert_eq!(utf8(&extension_value(&leaf, 8).unwrap()), ISSUER);
    assert_eq!(
        utf8(&extension_value(&leaf, 9).unwrap()),
        "https://ci.example/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
    );
    assert_eq!(
        utf8(&extension_value(&leaf, 12).unwrap()),
        "https://ci.example/acme/app"
    );
    assert_eq!(
        utf8(&extension_value(&leaf, 13).unwrap()),
        "9f2c1e0d4b6a8c7e5f3a1b2c3d4e5f60718293a4"
    );
    assert_eq!(utf8(&extension_value(&leaf, 14).unwrap()), "refs/tags/v1.0.0");
    assert_eq!(utf8(&extension_value(&leaf, 15).unwrap()), "4242");
    assert_eq!(utf8(&extension_value(&leaf, 20).unwrap()), "push");
    assert_eq!(
        utf8(&extension_value(&leaf, 21).unwrap()),
        "https://ci.example/acme/app/actions/runs/1001/attempts/1"
    );

    // Audited like a signature: the route, allowed, the certificate's hash and the verified claims, never the token.
    let leaf_der = x509_cert::der::Encode::to_der(&leaf).unwrap();
    let records = gateway.audit_json();
    let record = records
        .iter()
        .find(|r| r["route"] == "/api/v2/signingCert")
        .unwrap();
    assert_eq!(record["outcome"], "allowed", "{record}");
    assert_eq!(record["status"], 200);
    assert_eq!(
        record["certificate_sha256"],
        hex::encode(sha2::Sha256::digest(&leaf_der))
    );
    let origin: Value = serde_json::from_str(record["origin"].as_str().unwrap()).unwrap();
    assert_eq!(origin["repository"], "acme/app");
    assert_eq!(origin["iss"], ISSUER);
    assert!(
        !record.to_string().contains(&token),
        "the token reached the audit log"
    );

    // The trust bundle is the same chain without the leaf.
    let bundle: Value = gateway
        .https_client()
        .get(format!("{}/api/v2/trustBundle", gateway.api_url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bundle["chains"][0]["certificates"].as_array().unwrap().len(), 2);
    let configuration: Value = gateway
        .https_client()
        .get(format!("{}/api/v2/configuration", gateway.api_url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        configuration,
        json!({"issuers": [{"issuerUrl": ISSUER, "audience": AUDIENCE, "challengeClaim": "sub"}]})
    );
}

#[test]
fn tokens_the_rules_do_not_admit_and_failed_proofs_are_refused_and_audited() {
    let issuer = Issuer::new();
    let gateway = start(&issuer);
    let (key, public_pem) = key_pair();

    let mut other = job_claims("acme/app");
    other["iss"] = json!(OTHER_ISSUER);
    let other_token = issuer.token(AUDIENCE, &other);
    let (status, body) = request_certificate(
        &gateway,
        &other_token,
        &public_pem,
        &proof(&key, "repo:acme/app:ref:refs/tags/v1.0.0"),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:signpath-gateway:problem:origin-rejected");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("identity tokens of https://other-ci.example are not admitted"),
        "{body}"
    );

    let evil = issuer.token(AUDIENCE, &job_claims("evil/app"));
    let (status, body) = request_certificate(
        &gateway,
        &evil,
        &public_pem,
        &proof(&key, "repo:evil/app:ref:refs/tags/v1.0.0"),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:signpath-gateway:problem:origin-rejected");
    assert_eq!(
        body["detail"],
        "the repository \"evil/app\" is not one the [keyless] rules admit for issuer ci"
    );

    let token = issuer.token(AUDIENCE, &job_claims("acme/app"));
    let (status, body) = request_certificate(
        &gateway,
        &token,
        &public_pem,
        &proof(&key, "repo:acme/other:ref:refs/tags/v1.0.0"),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["type"],
        "urn:signpath-gateway:problem:invalid-proof-of-possession"
    );
    assert!(body["detail"].as_str().unwrap().starts_with("the proof of possession is not the public key's signature of the token's subject \"repo:acme/app:ref:refs/tags/v1.0.0\" (EC-256"), "{body}");

    // A certificate signing request is its own proof: a good one gets a certificate, one whose signature is not by
    // the key it names is refused as a failed proof of possession.
    let csr = |swap_key: bool| {
        let builder =
            x509_cert::builder::RequestBuilder::new(x509_cert::name::Name::default(), &key).unwrap();
        let mut request = x509_cert::builder::Builder::build::<p256::ecdsa::DerSignature>(builder).unwrap();
        if swap_key {
            let (_, other_pem) = key_pair();
            request.info.public_key =
                x509_cert::spki::SubjectPublicKeyInfoOwned::from_pem(other_pem.as_bytes()).unwrap();
        }
        let der = x509_cert::der::Encode::to_der(&request).unwrap();
        let pem = x509_cert::der::pem::encode_string(
            "CERTIFICATE REQUEST",
            x509_cert::der::pem::LineEnding::LF,
            &der,
        )
        .unwrap();
        let response = gateway
            .https_client()
            .post(format!("{}/api/v2/signingCert", gateway.api_url()))
            .json(&json!({
                "credentials": {"oidcIdentityToken": token},
                "certificateSigningRequest": BASE64.encode(pem),
            }))
            .send()
            .unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    };
    let (status, body) = csr(false);
    assert_eq!(status, 200, "{body}");
    let (status, body) = csr(true);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["type"],
        "urn:signpath-gateway:problem:invalid-proof-of-possession"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("the proof of possession fails"),
        "{body}"
    );

    let wrong_audience = issuer.token("https://somewhere.example", &job_claims("acme/app"));
    let (status, body) = request_certificate(
        &gateway,
        &wrong_audience,
        &public_pem,
        &proof(&key, "repo:acme/app:ref:refs/tags/v1.0.0"),
    );
    assert_eq!(
        (status, body["type"].as_str().unwrap()),
        (403, "urn:signpath-gateway:problem:origin-rejected"),
        "{body}"
    );

    let records: Vec<Value> = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["route"] == "/api/v2/signingCert")
        .collect();
    let outcomes: Vec<(&str, u64, &str)> = records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
                r["error_type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("refused", 403, "origin-rejected"),
            ("refused", 403, "origin-rejected"),
            ("refused", 400, "invalid-proof-of-possession"),
            ("allowed", 200, ""),
            ("refused", 400, "invalid-proof-of-possession"),
            ("refused", 403, "origin-rejected"),
        ]
    );
    let issued: Vec<bool> = records
        .iter()
        .map(|r| r["certificate_sha256"].is_string())
        .collect();
    assert_eq!(
        issued,
        [false, false, false, true, false, false],
        "only the good CSR got a certificate"
    );
}
