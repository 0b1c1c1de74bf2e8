//! The real gateway on a fresh `init`: every policy signs every algorithm and format its key allows, and
//! openssl — an independent implementation — verifies each signature and the certificate chain. Refusals are
//! problem documents with the right status and type, each in the audit log; an Idempotency-Key signs once.

#![allow(clippy::unwrap_used)] // a test: a failure should stop it loudly

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::client::{ClientOptions, GatewayClient};
use common::config::Config;
use common::encoding::ecdsa_raw_to_der;
use common::keys::{HashAlgorithm, KeyKind, KeySpec, SignatureScheme};
use e2e_tests::gateway::Gateway;
use e2e_tests::tools;
use serde_json::{json, Value};

fn client(gateway: &Gateway) -> GatewayClient {
    let env: BTreeMap<String, String> = gateway.env_vars().into_iter().collect();
    let config = Config::load(&BTreeMap::new(), &move |name: &str| env.get(name).cloned()).unwrap();
    GatewayClient::new(&config, ClientOptions::new("Tests", "0")).unwrap()
}

fn random_digest(hash: HashAlgorithm) -> Vec<u8> {
    hash.digest(uuid::Uuid::new_v4().as_bytes())
}

fn openssl_verify(
    dir: &Path,
    leaf_pem: &Path,
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    digest: &[u8],
    sig: &[u8],
) {
    let pubkey = dir.join("pub.pem");
    let out = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(leaf_pem)
        .output()
        .unwrap();
    std::fs::write(&pubkey, out.stdout).unwrap();
    std::fs::write(dir.join("digest.bin"), digest).unwrap();
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    let md = match hash {
        HashAlgorithm::Sha1 => "sha1",
        HashAlgorithm::Sha256 => "sha256",
        HashAlgorithm::Sha384 => "sha384",
        HashAlgorithm::Sha512 => "sha512",
    };
    let mut cmd = Command::new("openssl");
    cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"]).arg(&pubkey);
    cmd.arg("-in")
        .arg(dir.join("digest.bin"))
        .arg("-sigfile")
        .arg(dir.join("sig.bin"));
    match scheme {
        SignatureScheme::RsaPss => {
            cmd.args([
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "rsa_pss_saltlen:digest",
            ]);
            cmd.args(["-pkeyopt", &format!("digest:{md}")]);
        }
        SignatureScheme::RsaPkcs1 => {
            cmd.args([
                "-pkeyopt",
                "rsa_padding_mode:pkcs1",
                "-pkeyopt",
                &format!("digest:{md}"),
            ]);
        }
        _ => {}
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"),
        "openssl rejects the {scheme} {hash} signature: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_policy_signs_every_allowed_algorithm_and_openssl_verifies() {
    tools::require("openssl").expect("openssl");
    let gateway = Gateway::start();
    let client = client(&gateway);
    let work = tempfile::tempdir().unwrap();
    let policies = client.my_signing_policies(None, None).unwrap();
    assert_eq!(policies.len(), 6, "init makes six policies");
    let mut signatures = 0;
    for spec in KeySpec::ALL {
        let key = client.fetch_key("demo", &spec.policy_slug(), None).unwrap();
        assert_eq!(key.kind(), spec.kind());
        assert_eq!(key.chain.len(), 3, "leaf, intermediate, root");
        // The chain verifies to the root with openssl.
        let pems: Vec<_> = key
            .chain
            .iter()
            .enumerate()
            .map(|(i, der)| {
                let path = work.path().join(format!("{}-{i}.der", spec.policy_slug()));
                std::fs::write(&path, der).unwrap();
                let pem = path.with_extension("pem");
                let ok = Command::new("openssl")
                    .args(["x509", "-inform", "DER", "-in"])
                    .arg(&path)
                    .arg("-out")
                    .arg(&pem)
                    .status()
                    .unwrap();
                assert!(ok.success());
                pem
            })
            .collect();
        let verify = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(gateway.root_ca_pem())
            .arg("-untrusted")
            .arg(&pems[1])
            .arg(&pems[0])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "chain of {spec}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );

        let schemes: &[SignatureScheme] = match spec.kind() {
            KeyKind::Rsa { .. } => &[SignatureScheme::RsaPkcs1, SignatureScheme::RsaPss],
            KeyKind::Ec(_) => &[SignatureScheme::EcdsaIeee, SignatureScheme::EcdsaAsn1],
        };
        for &scheme in schemes {
            for hash in [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha512,
            ] {
                let digest = random_digest(hash);
                // sign_digest also verifies locally; openssl checks independently.
                let sig = key.sign_digest(&client, scheme, hash, &digest, None).unwrap();
                let der_or_raw = match (scheme, spec.kind()) {
                    (SignatureScheme::EcdsaIeee, KeyKind::Ec(curve)) => {
                        assert_eq!(sig.len(), 2 * curve.field_len());
                        ecdsa_raw_to_der(curve, &sig).unwrap()
                    }
                    _ => sig,
                };
                openssl_verify(work.path(), &pems[0], scheme, hash, &digest, &der_or_raw);
                signatures += 1;
            }
        }
    }
    assert_eq!(signatures, 36);

    // RSA by hash OID, as SignPath also allows.
    let body = json!({"projectSlug": "demo", "signingPolicySlug": "rsa-2048", "hashSigningData": {
        "signatureAlgorithm": "Rsa", "rsaOptions": {"hashAlgorithmOid": "2.16.840.1.101.3.4.2.1", "paddingMode": "Pss"},
        "hash": BASE64.encode(random_digest(HashAlgorithm::Sha256))}});
    let (status, answer, _) = post(&gateway, Some(gateway.api_token()), &body.to_string(), None);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["hashSigningResult"]["signature"].is_string());
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

fn post(gateway: &Gateway, token: Option<&str>, body: &str, key: Option<&str>) -> (u16, Value, String) {
    let url = format!(
        "{}/v1/{}/SigningRequests/SignHash",
        gateway.api_url(),
        gateway.organization_id()
    );
    let mut request = http()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type,
    )
}

fn sign_body(policy: &str, hash_b64: &str) -> String {
    json!({"projectSlug": "demo", "signingPolicySlug": policy, "hashSigningData": {
        "signatureAlgorithm": "Ecdsa", "hash": hash_b64}})
    .to_string()
}

#[test]
fn refusals_are_problem_documents_and_audited() {
    let mut gateway = Gateway::start();
    let limited = gateway.add_token("limited", &["demo/ec-256"]);
    let good_hash = BASE64.encode([7u8; 32]);
    let token = gateway.api_token().to_owned();
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        ("no token", None, sign_body("ec-256", &good_hash), 401, "unauthenticated"),
        ("wrong token", Some("not-a-token"), sign_body("ec-256", &good_hash), 401, "unauthenticated"),
        ("not granted", Some(&limited), sign_body("ec-384", &good_hash), 403, "forbidden"),
        ("unknown policy", Some(&token), sign_body("nope", &good_hash), 404, "signing-policy-not-found"),
        ("short digest", Some(&token), sign_body("ec-256", &BASE64.encode([7u8; 31])), 400, "invalid-hash"),
        ("bad base64", Some(&token), sign_body("ec-256", "***"), 400, "invalid-hash"),
        ("malformed JSON", Some(&token), "{\"projectSlug\":".to_owned(), 400, "malformed-request"),
        (
            "unknown algorithm",
            Some(&token),
            json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
                "hashSigningData": {"signatureAlgorithm": "Dsa", "hash": good_hash}})
            .to_string(),
            400,
            "malformed-request",
        ),
        (
            "algorithm does not fit the key",
            Some(&token),
            json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
                "hashSigningData": {"signatureAlgorithm": "Rsa", "rsaOptions": {"hashAlgorithmName": "Sha256"}, "hash": good_hash}})
            .to_string(),
            400,
            "unsupported-algorithm",
        ),
        (
            "unknown hash name",
            Some(&token),
            json!({"projectSlug": "demo", "signingPolicySlug": "rsa-2048",
                "hashSigningData": {"signatureAlgorithm": "Rsa", "rsaOptions": {"hashAlgorithmName": "Md5"}, "hash": good_hash}})
            .to_string(),
            400,
            "unsupported-algorithm",
        ),
    ];
    let mut request_ids = Vec::new();
    for (name, token, body, status, problem) in &cases {
        let (got, answer, content_type) = post(&gateway, *token, body, None);
        assert_eq!(got, *status, "{name}: {answer}");
        assert_eq!(content_type, "application/problem+json", "{name}");
        assert_eq!(
            answer["type"],
            format!("urn:signpath-gateway:problem:{problem}"),
            "{name}: {answer}"
        );
        assert_eq!(answer["status"], *status, "{name}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
        request_ids.push(answer["requestId"].as_str().unwrap().to_owned());
    }
    // The limited token is allowed where it is granted.
    let (got, _, _) = post(&gateway, Some(&limited), &sign_body("ec-256", &good_hash), None);
    assert_eq!(got, 200);

    let audit = gateway.audit_json();
    for ((name, _, _, status, problem), id) in cases.iter().zip(&request_ids) {
        let record = audit
            .iter()
            .find(|r| r["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{name} not audited"));
        assert_eq!(record["outcome"], "refused", "{name}");
        assert_eq!(record["status"], *status, "{name}");
        assert_eq!(record["error_type"], *problem, "{name}");
    }
    let audit_text = serde_json::to_string(&audit).unwrap();
    assert!(
        !audit_text.contains(gateway.api_token()) && !audit_text.contains(&limited),
        "no token in the audit log"
    );
}

#[test]
fn a_retried_sign_hash_with_the_same_idempotency_key_signs_once() {
    let gateway = Gateway::start();
    let body = sign_body("ec-256", &BASE64.encode([9u8; 32]));
    let key = uuid::Uuid::new_v4().to_string();
    let (s1, first, _) = post(&gateway, Some(gateway.api_token()), &body, Some(&key));
    let (s2, second, _) = post(&gateway, Some(gateway.api_token()), &body, Some(&key));
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        first, second,
        "the replay returns the first answer, signature included"
    );
    // ECDSA signatures are randomized: a second signing would differ.
    let (s3, third, _) = post(&gateway, Some(gateway.api_token()), &body, None);
    assert_eq!(s3, 200);
    assert_ne!(third["hashSigningResult"], first["hashSigningResult"]);

    let other = sign_body("ec-256", &BASE64.encode([8u8; 32]));
    let (s4, problem, _) = post(&gateway, Some(gateway.api_token()), &other, Some(&key));
    assert_eq!(s4, 422);
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:idempotency-key-reused"
    );

    let signed: Vec<_> = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["idempotency_key"] == key.as_str() && r["signature_sha256"].is_string())
        .collect();
    assert_eq!(signed.len(), 1, "one signature for one idempotency key");
}

/// Duplicates that arrive while the first request with their key is still being signed (a client that timed out
/// and retried) wait for it and get its answer: all succeed, with one signature between them.
#[test]
fn concurrent_duplicates_wait_for_the_first_and_share_its_signature() {
    let gateway = Gateway::start();
    for round in 0..5u8 {
        let body = sign_body("ec-256", &BASE64.encode([round; 32]));
        let key = uuid::Uuid::new_v4().to_string();
        let barrier = std::sync::Barrier::new(16);
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let (status, answer, _) =
                            post(&gateway, Some(gateway.api_token()), &body, Some(&key));
                        (status, answer)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for (status, answer) in &answers {
            assert_eq!(*status, 200, "{answer}");
            assert_eq!(answer["hashSigningResult"], answers[0].1["hashSigningResult"]);
        }
        let signed = gateway
            .audit_json()
            .into_iter()
            .filter(|r| r["idempotency_key"] == key.as_str() && r["signature_sha256"].is_string())
            .count();
        assert_eq!(
            signed, 1,
            "round {round}: one signature for 16 requests with one key"
        );
    }
}

#[test]
fn init_refuses_to_overwrite_and_routes_answer_with_problems() {
    let gateway = Gateway::start();
    let again = Command::new(Gateway::binary())
        .args(["init", "--dir"])
        .arg(gateway.dir())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    let base = format!("{}/Api/v1/{}", gateway.api_url(), gateway.organization_id());
    let get = |path: &str| {
        http()
            .get(format!("{base}/{path}"))
            .bearer_auth(gateway.api_token())
            .send()
            .unwrap()
    };
    assert_eq!(get("Nothing/Here").status().as_u16(), 404);
    let wrong_method = get("SigningRequests/SignHash");
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
    assert_eq!(
        wrong_method.headers()["allow"],
        "POST",
        "RFC 9110: a 405 names what is allowed"
    );
    let long_key = http()
        .post(format!("{base}/SigningRequests/SignHash"))
        .bearer_auth(gateway.api_token())
        .header("Idempotency-Key", "k".repeat(201))
        .json(&serde_json::json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
            "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}))
        .send()
        .unwrap();
    assert_eq!(
        long_key.status().as_u16(),
        400,
        "an Idempotency-Key over 200 characters"
    );
    // Case-insensitive paths under /Api, as SignPath's.
    let listed: Value = get("cryptoki/mysigningpolicies?projectSlug=demo&signingPolicySlug=rsa-3072")
        .json()
        .unwrap();
    let policy = &listed["signingPolicies"][0];
    assert_eq!(policy["keyType"], "Rsa");
    assert_eq!(policy["keySizeInBits"], 3072);
    assert_eq!(policy["rsaParameters"]["publicExponent"], "AQAB");
    assert_eq!(policy["certificateChain"].as_array().unwrap().len(), 3);
    let other_org = http()
        .get(format!(
            "{}/v1/{}/Cryptoki/MySigningPolicies",
            gateway.api_url(),
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(other_org.status().as_u16(), 403);
}
