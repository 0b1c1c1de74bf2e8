//! Exactly once across replicas: the same SignHash with the same Idempotency-Key, sent at the same moment to two
//! gateways on one PostgreSQL (each straight to its replica, not through the balancer), is signed by the HSM once.
//! Every client gets the same answer byte for byte (ECDSA signatures are randomized, so two signatures would
//! differ), the audit log holds one record of the signature, and the replicas' `hsm_signatures` counters, summed,
//! grew by exactly one per key. A claim left behind by a replica killed mid-request is taken over once its lease
//! has run out, and the key is signed once.
//!
//! Needs Debian's `postgresql` and `haproxy` (scripts/install-deps): skipped without them, failed in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::postgres::Postgres;
use e2e_tests::replicas::{self, Replicas};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Clients per key, half of them on each replica.
const CLIENTS: usize = 16;
/// Keys tried one after another: a race lost once would show in one of them.
const KEYS: usize = 5;

#[test]
fn one_idempotency_key_sent_to_two_replicas_at_once_is_signed_once() {
    let Some((haproxy, bin)) = replicas::haproxy_and_postgres() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let replicas = Replicas::start(2, &pg.url(), &haproxy, |_| {});
    let http = replicas.https_client();
    let organization = replicas.env("SIGNPATH_ORGANIZATION_ID");
    let token = replicas.env("SIGNPATH_API_TOKEN");
    let urls: Vec<String> = (0..2)
        .map(|i| {
            format!(
                "{}/v1/{organization}/SigningRequests/SignHash",
                replicas.replica_url(i)
            )
        })
        .collect();

    for round in 0..KEYS {
        let key = format!("exactly-once-{round}");
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let before = hsm_signatures(&replicas, &http);
        let start = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (http, url, token, key, start) = (
                    http.clone(),
                    urls[client % 2].clone(),
                    token.clone(),
                    key.clone(),
                    start.clone(),
                );
                std::thread::spawn(move || {
                    start.wait();
                    sign(&http, &url, &token, &key, &digest)
                })
            })
            .collect();
        let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let signed = hsm_signatures(&replicas, &http) - before;

        let first: Value = serde_json::from_str(&answers[0]).unwrap();
        assert_eq!(first["status"], "Completed", "{}", answers[0]);
        for (client, answer) in answers.iter().enumerate() {
            assert_eq!(
                answer,
                &answers[0],
                "key {key}: client {client} (replica {}) got another answer",
                client % 2
            );
        }
        let signature = BASE64
            .decode(first["hashSigningResult"]["signature"].as_str().unwrap())
            .unwrap();
        let records: Vec<String> = audit_records(&replicas)
            .into_iter()
            .filter(|r| r["idempotency_key"].as_str() == Some(key.as_str()))
            .filter_map(|r| r["signature_sha256"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            records,
            [hex::encode(Sha256::digest(&signature))],
            "key {key}: one audit record, of the signature every client got"
        );
        assert_eq!(
            signed, 1,
            "key {key}: the HSMs of both replicas made {signed} signatures for one key"
        );
    }
    assert_eq!(
        pg.psql("SELECT count(*) FROM idempotency_claims"),
        "0",
        "every claim was given back"
    );

    // A replica killed mid-request leaves its claim behind, never given back: a request with that key waits out
    // the claim's lease, takes the claim over and signs, once; a replay on the other replica gets that answer.
    let token_id = audit_records(&replicas)
        .iter()
        .find_map(|r| r["token_id"].as_str().map(str::to_owned))
        .unwrap();
    let key = "exactly-once-orphaned";
    let lease = Duration::from_secs(2);
    pg.psql(&format!(
        "INSERT INTO idempotency_claims (token_id, key, holder, expires) VALUES ('{token_id}', '{key}', \
         'a-killed-replica', (extract(epoch FROM clock_timestamp()) * 1000)::bigint + {})",
        lease.as_millis()
    ));
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let before = hsm_signatures(&replicas, &http);
    let asked = Instant::now();
    let answer = sign(&http, &urls[1], &token, key, &digest);
    let waited = asked.elapsed();
    assert!(
        waited >= lease - Duration::from_millis(500),
        "signed after {waited:?}, before the dead replica's lease ran out"
    );
    assert_eq!(sign(&http, &urls[0], &token, key, &digest), answer);
    assert_eq!(hsm_signatures(&replicas, &http) - before, 1);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "Completed", "{answer}");
}

/// Sends the SignHash to one replica as a client would: retrying on 409 (the key is being worked on) and on a 5xx;
/// the body of the 200.
fn sign(http: &reqwest::blocking::Client, url: &str, token: &str, key: &str, digest: &[u8]) -> String {
    let body = json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
        "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode(digest)}});
    for _ in 0..50 {
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .unwrap();
        let status = response.status();
        if status == 200 {
            return response.text().unwrap();
        }
        assert!(
            status == 409 || status.is_server_error(),
            "key {key} on {url}: {status} {}",
            response.text().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("key {key} on {url}: no answer after 50 attempts");
}

/// `signpath_gateway_hsm_signatures_total`, summed over both replicas' `/metrics`.
fn hsm_signatures(replicas: &Replicas, http: &reqwest::blocking::Client) -> u64 {
    (0..2)
        .map(|i| {
            let text = http
                .get(format!("{}/metrics", replicas.replica_url(i)))
                .send()
                .unwrap()
                .text()
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("signpath_gateway_hsm_signatures_total "))
                .unwrap_or_else(|| panic!("replica {i} exports hsm_signatures: {text}"))
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// The audit log in the database, through `signpath-gateway audit --json` of replica 0.
fn audit_records(replicas: &Replicas) -> Vec<Value> {
    replicas
        .gateway_command(0, &["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
