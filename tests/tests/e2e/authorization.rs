//! The authorization matrix: a gateway with two projects, several policies and several tokens, and every pair of
//! token and policy tried. What a token was granted signs (and is listed by MySigningPolicies); everything else is
//! refused with the right status and problem type, and every refusal has its audit record.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::{run_cli, Gateway};
use serde_json::{json, Value};

const DEMO: &[&str] = &["ec-256", "ec-384", "ec-521", "rsa-2048", "rsa-3072", "rsa-4096"];

fn gw(setup: &Path, args: &[&str]) -> String {
    run_cli(setup, args).trim().to_owned()
}

/// Adds project `other` with policies `ec-256` and `rsa-2048` (the same HSM keys and certificates as demo's, new
/// ids, no submitters yet).
fn add_other_project(setup: &Path) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let projects = config["projects"].as_array_mut().unwrap();
    let mut other = projects[0].as_table().unwrap().clone();
    other.insert("slug".into(), "other".into());
    let policies: Vec<toml::Value> = other["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| ["ec-256", "rsa-2048"].contains(&p["slug"].as_str().unwrap()))
        .map(|p| {
            let mut p = p.as_table().unwrap().clone();
            p.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
            p.insert("submitters".into(), toml::Value::Array(Vec::new()));
            toml::Value::Table(p)
        })
        .collect();
    other.insert("policies".into(), toml::Value::Array(policies));
    projects.push(toml::Value::Table(other));
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn new(gateway: &Gateway) -> Self {
        Self {
            http: gateway.https_client(),
            base: gateway.api_base(),
        }
    }

    fn policies(&self, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/Cryptoki/MySigningPolicies", self.base))
            .bearer_auth(token)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }

    fn sign(&self, token: &str, project: &str, policy: &str) -> (u16, Value) {
        let (algorithm, options) = if policy.starts_with("rsa") {
            ("Rsa", json!({"rsaOptions": {"hashAlgorithmName": "Sha256"}}))
        } else {
            ("Ecdsa", json!({}))
        };
        let mut data = json!({"signatureAlgorithm": algorithm, "hash": BASE64.encode([7u8; 32])});
        for (k, v) in options.as_object().unwrap() {
            data[k] = v.clone();
        }
        let body = json!({"projectSlug": project, "signingPolicySlug": policy, "hashSigningData": data});
        let r = self
            .http
            .post(format!("{}/SigningRequests/SignHash", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }
}

#[test]
fn every_token_signs_exactly_what_it_was_granted_and_every_denial_is_audited() {
    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    let gateway = Gateway::start_with(|setup| {
        add_other_project(setup);
        let a = gw(
            setup,
            &[
                "token",
                "add",
                "--name",
                "ci-a",
                "--policy",
                "demo/ec-256",
                "--policy",
                "other/ec-256",
            ],
        );
        let b = gw(
            setup,
            &["token", "add", "--name", "ci-b", "--policy", "other/rsa-2048"],
        );
        let none = gw(setup, &["token", "add", "--name", "idle"]);
        tokens.insert("ci-a", a);
        tokens.insert("ci-b", b);
        tokens.insert("idle", none);
    });
    tokens.insert("init", gateway.api_token().to_owned());
    tokens.insert("bogus", "0".repeat(64));
    let granted: BTreeMap<&str, BTreeSet<String>> = [
        ("init", DEMO.iter().map(|p| format!("demo/{p}")).collect()),
        ("ci-a", ["demo/ec-256", "other/ec-256"].map(String::from).into()),
        ("ci-b", ["other/rsa-2048"].map(String::from).into()),
        ("idle", BTreeSet::new()),
        ("bogus", BTreeSet::new()),
    ]
    .into();
    let mut policies: Vec<(String, String)> = DEMO
        .iter()
        .map(|p| ("demo".to_owned(), (*p).to_owned()))
        .collect();
    policies.extend(
        [
            ("other", "ec-256"),
            ("other", "rsa-2048"),
            ("other", "ec-384"),
            ("nope", "ec-256"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
    );
    let existing: BTreeSet<String> = policies[..8].iter().map(|(p, s)| format!("{p}/{s}")).collect();

    let client = Client::new(&gateway);
    let mut refusals: Vec<(String, u16, String)> = Vec::new();
    for (name, token) in &tokens {
        let (status, listed) = client.policies(token);
        if *name == "bogus" {
            assert_eq!(status, 401);
            refusals.push((
                listed["requestId"].as_str().unwrap().to_owned(),
                401,
                "unauthenticated".into(),
            ));
        } else {
            assert_eq!(status, 200);
            let listed: BTreeSet<String> = listed["signingPolicies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["projectSlug"].as_str().unwrap(),
                        p["signingPolicySlug"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(listed, granted[name], "MySigningPolicies of {name}");
        }
        for (project, policy) in &policies {
            let key = format!("{project}/{policy}");
            let (status, body) = client.sign(token, project, policy);
            let expected = if *name == "bogus" {
                (401, "unauthenticated")
            } else if granted[name].contains(&key) {
                (200, "")
            } else if existing.contains(&key) {
                (403, "forbidden")
            } else {
                (404, "signing-policy-not-found")
            };
            assert_eq!(status, expected.0, "{name} on {key}: {body}");
            if status == 200 {
                assert!(body["hashSigningResult"]["signature"].is_string(), "{body}");
            } else {
                assert_eq!(
                    body["type"],
                    format!("urn:signpath-gateway:problem:{}", expected.1),
                    "{name} on {key}"
                );
                refusals.push((
                    body["requestId"].as_str().unwrap().to_owned(),
                    status,
                    expected.1.to_owned(),
                ));
            }
        }
    }
    // 4 tokens × 10 pairs minus 9 grants, plus bogus's 10 and its listing.
    assert_eq!(refusals.len(), 4 * 10 - 9 + 10 + 1);
    let audit: BTreeMap<String, Value> = gateway
        .audit_json()
        .into_iter()
        .map(|r| (r["request_id"].as_str().unwrap().to_owned(), r))
        .collect();
    for (id, status, problem) in &refusals {
        let record = audit
            .get(id)
            .unwrap_or_else(|| panic!("refusal {id} has no audit record"));
        assert_eq!(record["outcome"], "refused");
        assert_eq!(record["status"], *status);
        assert_eq!(record["error_type"], problem.as_str());
        assert!(record["signature_sha256"].is_null());
    }
    let signed = audit
        .values()
        .filter(|r| r["signature_sha256"].is_string())
        .count();
    assert_eq!(signed, 9, "one signature per grant");
}
