//! Load for a bounded time: 64 HTTP clients on the gateway and, at the same time, 32 threads signing through the
//! PKCS#11 module inside this one process. Zero errors, every signature verifies with the policy's certificate,
//! and the memory of this process (the module's host) and of the gateway stays flat after warm-up.
//!
//! A test binary of its own, not a module of `e2e/`: the module runs inside this process and the process
//! environment points it at the gateway; and the memory it measures must be this suite's alone.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::keys::{HashAlgorithm, SignatureScheme};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use e2e_tests::gateway::{sign_ec256, Gateway};
use e2e_tests::tools;
use sha2::Digest;

const RUN: Duration = Duration::from_secs(20);
const WARM_UP: Duration = Duration::from_secs(6);

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

#[test]
fn sixty_four_clients_and_thirty_two_module_threads_sign_without_error_in_flat_memory() {
    let gateway = Gateway::start();
    for (k, v) in gateway.env_vars() {
        std::env::set_var(k, v);
    }
    let logs = tempfile::tempdir().unwrap();
    std::env::set_var("SIGNPATH_LOG_FILE_DIRECTORY", logs.path());
    let leaf = std::fs::read(gateway.dir().join("pki/ec-256.pem")).unwrap();
    let leaf = common::x509::pem_certificates(&leaf, "ec-256.pem")
        .unwrap()
        .remove(0);
    let public_key = common::x509::ParsedCertificate::from_der(&leaf)
        .unwrap()
        .public_key()
        .unwrap();
    let public_key = Arc::new(public_key);

    let stop = Arc::new(AtomicBool::new(false));
    let (signed, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    // 64 HTTP clients, each its own connection.
    let api_base = gateway.api_base();
    let mut workers = Vec::new();
    for c in 0..64u32 {
        // A client each, so each holds its own connection.
        let (api_base, token, http) = (
            api_base.clone(),
            gateway.api_token().to_owned(),
            gateway.https_client(),
        );
        let (stop, signed, errors, key) = (stop.clone(), signed.clone(), errors.clone(), public_key.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let digest = sha2::Sha256::digest([c.to_be_bytes(), n.to_be_bytes()].concat());
                let ok = sign_ec256(&http, &api_base, &token, &digest)
                    .and_then(|a| BASE64.decode(a["hashSigningResult"]["signature"].as_str()?).ok())
                    .is_some_and(|sig| {
                        key.verify_digest(SignatureScheme::EcdsaIeee, HashAlgorithm::Sha256, &digest, &sig)
                            .is_ok()
                    });
                if ok { &signed } else { &errors }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // 32 threads of this process signing through the module, a session each.
    let pkcs11 = Arc::new(Pkcs11::new(tools::release_artifact("libsignpath_pkcs11.so")).unwrap());
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11.get_slots_with_token().unwrap()[0];
    let login = pkcs11.open_rw_session(slot).unwrap();
    login
        .login(UserType::User, Some(&AuthPin::new("CONFIG".into())))
        .unwrap();
    let handle = login
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"demo/ec-256".to_vec()),
        ])
        .unwrap()[0];
    for t in 0..32u32 {
        let (pkcs11, stop, signed, errors, key) = (
            pkcs11.clone(),
            stop.clone(),
            signed.clone(),
            errors.clone(),
            public_key.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let session = pkcs11.open_rw_session(slot).unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let digest = sha2::Sha256::digest([t.to_le_bytes(), n.to_le_bytes()].concat());
                let ok = session.sign(&Mechanism::Ecdsa, handle, &digest).is_ok_and(|sig| {
                    key.verify_digest(SignatureScheme::EcdsaIeee, HashAlgorithm::Sha256, &digest, &sig)
                        .is_ok()
                });
                if ok { &signed } else { &errors }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Memory, once a second: this process (the module's host) and the gateway.
    let started = Instant::now();
    let (own, gateway_pid) = (std::process::id(), gateway.pid());
    let mut samples = Vec::new();
    while started.elapsed() < RUN {
        std::thread::sleep(Duration::from_secs(1));
        samples.push((started.elapsed(), rss_mib(own), rss_mib(gateway_pid)));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(login);
    if let Ok(pkcs11) = Arc::try_unwrap(pkcs11) {
        let _ = pkcs11.finalize();
    }

    let (signed, errors) = (signed.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    assert_eq!(
        errors,
        0,
        "{errors} failed or unverifiable signatures (of {})",
        signed + errors
    );
    assert!(signed > 1000, "only {signed} signatures in {RUN:?}");
    let after_warm_up: Vec<_> = samples.iter().filter(|(t, _, _)| *t >= WARM_UP).collect();
    let growth = |pick: fn(&(Duration, f64, f64)) -> f64| {
        let first = pick(after_warm_up[0]);
        let peak = after_warm_up.iter().map(|s| pick(s)).fold(f64::MIN, f64::max);
        peak - first
    };
    // Generous bounds: allocator noise is a few MiB; a leak of even 1 KiB per signature would be tens of MiB.
    let (host, gw) = (growth(|s| s.1), growth(|s| s.2));
    assert!(
        host < 16.0,
        "the module's host grew by {host:.1} MiB after warm-up: {samples:?}"
    );
    assert!(
        gw < 16.0,
        "the gateway grew by {gw:.1} MiB after warm-up: {samples:?}"
    );
    eprintln!(
        "load: {signed} signatures in {RUN:?}, host +{host:.1} MiB, gateway +{gw:.1} MiB after warm-up"
    );
}
