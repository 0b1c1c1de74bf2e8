//! Crash consistency: clients sign under load, the gateway is killed with SIGKILL mid-stream and started again.
//! Every signature a client received has its audit record (the gateway answers only after the record is durable),
//! the SQLite database passes its integrity check, and the gateway serves again.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::{sign_ec256, Gateway};
use e2e_tests::require_tool;
use sha2::Digest;

#[test]
fn every_signature_a_client_received_survives_a_kill_9_in_the_audit_log() {
    let sqlite3 = require_tool!("sqlite3");
    let mut gateway = Gateway::start();
    let http = gateway.https_client();
    let api_base = gateway.api_base();
    let token = gateway.api_token().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    // request id → SHA-256 of the signature the client received.
    let received = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let failures = Arc::new(Mutex::new(0usize));
    let clients: Vec<_> = (0..8u8)
        .map(|c| {
            let (http, api_base, token) = (http.clone(), api_base.clone(), token.clone());
            let (stop, received, failures) = (stop.clone(), received.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let digest = sha2::Sha256::digest([&[c][..], &n.to_be_bytes()].concat());
                    match sign_ec256(&http, &api_base, &token, &digest) {
                        Some(a) => {
                            let signature = BASE64
                                .decode(a["hashSigningResult"]["signature"].as_str().unwrap())
                                .unwrap();
                            received.lock().unwrap().insert(
                                a["signingRequestId"].as_str().unwrap().to_owned(),
                                hex::encode(sha2::Sha256::digest(signature)),
                            );
                        }
                        None => {
                            *failures.lock().unwrap() += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(3));
    let before_kill = received.lock().unwrap().len();
    gateway.restart(); // SIGKILL under load, then serve again on the same database
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let received = received.lock().unwrap().clone();
    assert!(
        before_kill > 100,
        "the clients signed under load before the kill: {before_kill}"
    );
    assert!(
        received.len() > before_kill,
        "the gateway served again after the restart"
    );

    let audited: BTreeMap<String, String> = gateway
        .audit_json()
        .into_iter()
        .filter_map(|r| {
            Some((
                r["request_id"].as_str()?.to_owned(),
                r["signature_sha256"].as_str()?.to_owned(),
            ))
        })
        .collect();
    for (id, signature) in &received {
        assert_eq!(
            audited.get(id),
            Some(signature),
            "signature of {id} received but not audited"
        );
    }
    let db = gateway.dir().join("audit.db");
    let check = Command::new(sqlite3)
        .arg(&db)
        .arg("PRAGMA integrity_check;")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
