//! Three gateways on one PostgreSQL behind HAProxy act as one: 32 clients sign through the balancer while one
//! replica is killed (SIGKILL) and another restarted, and not one signature is lost or made twice; an approval on
//! one replica's web page releases the request polled on another; a token revoked through one replica is refused
//! by every replica within 2 seconds, though the others' configuration files still name it.
//!
//! Needs Debian's `postgresql` and `haproxy` (scripts/install-deps): skipped without them, failed in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::{approver_page, csrf_of, run_cli};
use e2e_tests::postgres::Postgres;
use e2e_tests::replicas::{self, Replicas};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const CLIENTS: usize = 32;
const SIGNS_PER_CLIENT: usize = 20;

/// One signature a client was given: its idempotency key, the digest it signed, the answer's bytes.
struct Signed {
    key: String,
    digest: [u8; 32],
    answer: String,
}

#[test]
fn three_replicas_on_postgresql_behind_haproxy_act_as_one_gateway() {
    let Some((haproxy, bin)) = replicas::haproxy_and_postgres() else {
        return;
    };
    let started = Instant::now();
    let pg = Postgres::start(&bin);
    let mut second_token = String::new();
    let mut alice = String::new();
    let mut replicas = Replicas::start(3, &pg.url(), &haproxy, |setup| {
        alice = gateway(setup, &["approver", "add", "--name", "alice"]);
        second_token = gateway(
            setup,
            &["token", "add", "--name", "ci-2", "--policy", "demo/ec-256"],
        );
        needs_approval(&setup.join("gateway.toml"), "ec-384", "alice");
    });
    eprintln!("PostgreSQL and 3 replicas up in {:?}", started.elapsed());
    let http = replicas.https_client();
    let organization = replicas.env("SIGNPATH_ORGANIZATION_ID");
    let token = replicas.env("SIGNPATH_API_TOKEN");
    let through_balancer = format!("{}/v1/{organization}", replicas.api_url());

    // 32 clients sign through the balancer; replica 1 is killed a quarter in, replica 2 restarted halfway.
    let load = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, base, token, done) = (
                http.clone(),
                through_balancer.clone(),
                token.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                (0..SIGNS_PER_CLIENT)
                    .map(|i| {
                        let signed =
                            sign_with_retries(&http, &base, &token, &format!("replica-test-{client}-{i}"));
                        done.fetch_add(1, Ordering::SeqCst);
                        signed
                    })
                    .collect::<Vec<Signed>>()
            })
        })
        .collect();
    let total = CLIENTS * SIGNS_PER_CLIENT;
    wait_until(|| done.load(Ordering::SeqCst) >= total / 4);
    replicas.kill(1);
    let killed_at = done.load(Ordering::SeqCst);
    wait_until(|| done.load(Ordering::SeqCst) >= total / 2);
    // Counted when replica 2 is stopped: its start may finish after the clients do.
    let restarted_at = done.load(Ordering::SeqCst);
    replicas.restart(2);
    let signed: Vec<Signed> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    eprintln!(
        "{total} signatures (and as many replays) in {:?}; replica 1 killed after {killed_at}, replica 2 restarted after {restarted_at}",
        load.elapsed()
    );
    assert!(
        killed_at < total && restarted_at < total,
        "the kill and the restart happened while clients were signing"
    );

    // Every answer is a valid signature by the policy's key, with exactly one audit record of its signing: the
    // same signature. No key was signed twice (a second signature would be a second record under the key).
    let key = ec256_verifying_key(replicas.setup());
    let audit = audit_records(&replicas);
    let mut signatures_by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for record in &audit {
        if let (Some(k), Some(sha)) = (
            record["idempotency_key"].as_str(),
            record["signature_sha256"].as_str(),
        ) {
            if k.starts_with("replica-test-") {
                signatures_by_key.entry(k).or_default().push(sha);
            }
        }
    }
    for s in &signed {
        let answer: Value = serde_json::from_str(&s.answer).unwrap();
        assert_eq!(answer["status"], "Completed", "{}", s.answer);
        let signature = BASE64
            .decode(answer["hashSigningResult"]["signature"].as_str().unwrap())
            .unwrap();
        verify(&key, &s.digest, &signature);
        let sha = hex::encode(Sha256::digest(&signature));
        assert_eq!(
            signatures_by_key.get(s.key.as_str()).map(Vec::as_slice),
            Some(&[sha.as_str()][..]),
            "key {}: one audit record of its one signature",
            s.key
        );
    }
    assert_eq!(
        signatures_by_key.len(),
        total,
        "no signature under a key no client was answered for"
    );

    // An approval on replica 0's web page releases the request that replica 2 is polled for; replica 0 then
    // answers the same signature: it was signed once.
    let held_digest = [7u8; 48];
    let held: Value = http
        .post(format!("{through_balancer}/SigningRequests/SignHash"))
        .bearer_auth(&token)
        .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-384",
            "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode(held_digest)}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(held["status"], "WaitingForApproval", "{held}");
    let id = held["signingRequestId"].as_str().unwrap().to_owned();
    approve_on_web_page(&replicas, &http, 0, &alice, &id);
    let poll = |replica: usize| -> Value {
        http.get(format!(
            "{}/v1/{organization}/SigningRequests/{id}",
            replicas.replica_url(replica)
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap()
    };
    let released = poll(2);
    assert_eq!(released["status"], "Completed", "{released}");
    let signature = released["hashSigningResult"]["signature"].as_str().unwrap();
    assert_eq!(
        poll(0)["hashSigningResult"]["signature"].as_str(),
        Some(signature),
        "replica 0 answers the signature replica 2 made"
    );

    // The second token works everywhere; revoked through replica 2, it is refused by all within 2 s, though
    // replica 0's gateway.toml still names it.
    let second_signs = |url: &str| {
        http.post(format!("{url}/v1/{organization}/SigningRequests/SignHash"))
            .bearer_auth(&second_token)
            .json(&sign_request(&[1u8; 32]))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let live = [replicas.replica_url(0), replicas.replica_url(2)];
    for url in &live {
        assert_eq!(second_signs(url), 200, "{url} takes the second token");
    }
    replicas.gateway_command(2, &["token", "revoke", "ci-2"]);
    let revoked = Instant::now();
    let mut refused_by_all = None;
    while revoked.elapsed() < Duration::from_secs(5) {
        if live.iter().all(|url| second_signs(url) == 401) {
            refused_by_all = Some(revoked.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused_by_all = refused_by_all.expect("the revoked token is refused by every replica");
    assert!(
        refused_by_all < Duration::from_secs(2),
        "refused by all after {refused_by_all:?}"
    );
    assert!(
        std::fs::read_to_string(replicas.config(0))
            .unwrap()
            .contains("name = \"ci-2\""),
        "replica 0 learned the revocation from the database, not from its file"
    );
    assert_eq!(
        second_signs(&replicas.api_url()),
        401,
        "refused through the balancer"
    );
    eprintln!(
        "revocation in force on every replica after {refused_by_all:?}; whole test {:?}",
        started.elapsed()
    );
}

/// Signs `key`'s digest through the balancer with `key` as Idempotency-Key, retrying on a lost connection or a
/// 5xx (a replica died under the request); then replays it once and expects the same answer, byte for byte.
fn sign_with_retries(http: &reqwest::blocking::Client, base: &str, token: &str, key: &str) -> Signed {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let send = || -> String {
        for _ in 0..100 {
            let response = http
                .post(format!("{base}/SigningRequests/SignHash"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&sign_request(&digest))
                .send();
            match response {
                Ok(r) if r.status() == 200 => return r.text().unwrap(),
                Ok(r) if r.status().is_server_error() || r.status() == 409 => {}
                Ok(r) => panic!("key {key}: {} {}", r.status(), r.text().unwrap_or_default()),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("key {key}: no answer after 100 attempts");
    };
    let answer = send();
    assert_eq!(send(), answer, "key {key}: the replay gets the first answer");
    Signed {
        key: key.to_owned(),
        digest,
        answer,
    }
}

fn sign_request(digest: &[u8]) -> Value {
    json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
        "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode(digest)}})
}

fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !condition() {
        assert!(Instant::now() < deadline, "the clients stopped making progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Signs in on replica `i`'s web page as the approver, and approves request `id` with the page's CSRF token.
fn approve_on_web_page(
    replicas: &Replicas,
    http: &reqwest::blocking::Client,
    i: usize,
    approver: &str,
    id: &str,
) {
    let web = replicas.replica_url(i);
    // The forms' origin is the gateway's public URL, the balancer's.
    let origin = replicas.api_url();
    let (session, page) = approver_page(http, &web, &origin, approver);
    let csrf = csrf_of(&page);
    assert!(
        page.contains(&format!("id=\"approve-{id}\"")),
        "the request waits on the page"
    );
    let approved = http
        .post(format!("{web}/Web/SigningRequests/{id}/Approve"))
        .header("cookie", &session)
        .header("origin", &origin)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(approved.status(), 303, "{}", approved.text().unwrap_or_default());
}

/// The audit log in the database, through `signpath-gateway audit --json` of replica 0.
fn audit_records(replicas: &Replicas) -> Vec<Value> {
    replicas
        .gateway_command(0, &["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The public key of demo/ec-256's certificate.
fn ec256_verifying_key(setup: &Path) -> p256::ecdsa::VerifyingKey {
    use x509_cert::der::DecodePem as _;
    let pem = std::fs::read_to_string(setup.join("pki/ec-256.pem")).unwrap();
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
    let spki = cert.tbs_certificate.subject_public_key_info.subject_public_key;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.raw_bytes()).unwrap()
}

/// An ECDSA P-256 signature (r‖s, as PKCS#11 makes it) over a SHA-256 digest, checked by the RustCrypto p256
/// implementation, not by the gateway.
fn verify(key: &p256::ecdsa::VerifyingKey, digest: &[u8; 32], signature: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let signature = p256::ecdsa::Signature::from_slice(signature).unwrap();
    key.verify_prehash(digest, &signature)
        .expect("the signature verifies with the certificate's key");
}

/// `signpath-gateway <args> --config <setup>/gateway.toml`, before the replicas start; its stdout, trimmed.
fn gateway(setup: &Path, args: &[&str]) -> String {
    run_cli(setup, args).trim().to_owned()
}

/// Makes `policy` of project demo need one approval of `approver`.
fn needs_approval(config: &Path, policy: &str, approver: &str) {
    let mut table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    let policies = table["projects"].as_array_mut().unwrap()[0]["policies"]
        .as_array_mut()
        .unwrap();
    let entry = policies
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some(policy))
        .unwrap();
    let approval: BTreeMap<&str, toml::Value> = BTreeMap::from([
        ("approvers", toml::Value::Array(vec![approver.into()])),
        ("required", 1.into()),
    ]);
    entry
        .as_table_mut()
        .unwrap()
        .insert("approval".into(), toml::Value::try_from(approval).unwrap());
    std::fs::write(config, toml::to_string(&table).unwrap()).unwrap();
}
