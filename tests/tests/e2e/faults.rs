//! The fault matrix: the Notation plugin and the PKCS#11 module (under OpenSC's pkcs11-tool), each signing through
//! a fault-injecting proxy in front of the real gateway. For every fault the client must give its precise error
//! (a Notation errorCode, a CKR_ code) within the configured time budget, retry only where SignPath's contract
//! allows (network errors, timeouts, 429, 502, 503, 504), never hang, never panic, and never sign twice: every
//! attempt of one signature carries one idempotency key, and the gateway's audit log holds at most one signature
//! per key.
//!
//! The clients run with `HttpRequestTimeoutInSeconds` 2 and `ServiceUnavailableTimeoutInSeconds` 10, and the
//! retry delays SignPath's clients use (1 s, doubling). All cases of one client run at once against one gateway.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use super::faults_support;

use std::sync::Arc;
use std::time::Duration;

use e2e_tests::faults::{Action, FaultProxy, Identity, Route};
use e2e_tests::gateway::Gateway;
use e2e_tests::{require_tool, tools};

use common::keys::{HashAlgorithm, SignatureScheme};

use faults_support::{
    cases, client_command, first, gateway_key, module_sign, plugin_sign, random_digest, run_with_stdin,
    Expect, Outcome, BUDGET, KEY_ID, SLACK,
};

// ---------------------------------------------------------------------------------------------------------------
// The matrix

fn run_matrix(client: &'static str, sign: fn(&FaultProxy, &Gateway) -> Outcome) {
    let gateway = Arc::new(Gateway::start());

    let runs: Vec<_> = cases()
        .into_iter()
        .map(|case| {
            let gateway = gateway.clone();
            std::thread::spawn(move || {
                let script = case.script.clone();
                let proxy = FaultProxy::start(&gateway, case.identity, move |route, nth| script(route, nth));
                eprintln!("{client}: {} through {proxy:?}", case.name);
                let outcome = sign(&proxy, &gateway);
                (case, outcome, proxy.seen(), proxy.connections())
            })
        })
        .collect();
    let runs: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    // Read once every client has finished: the gateway commits a record before it answers.
    let audit = gateway.audit_json();
    let mut failures = Vec::new();
    for (case, outcome, seen, connections) in runs {
        let expect = if client == "plugin" {
            &case.plugin
        } else {
            &case.module
        };
        let signs: Vec<_> = seen.iter().filter(|s| s.route == Route::SignHash).collect();
        let mut problems = Vec::new();
        match (expect, &outcome.result) {
            (Expect::Signed, Ok(())) => {}
            (Expect::Error(code, message), Err((got_code, got_message)))
                if got_code == code && got_message.contains(message) => {}
            (expected, got) => problems.push(format!("expected {expected:?}, got {got:?}")),
        }
        if outcome.elapsed > Duration::from_secs(BUDGET) + SLACK {
            problems.push(format!("took {:?}, over the budget", outcome.elapsed));
        }
        if !case.sign_attempts.contains(&signs.len()) {
            problems.push(format!(
                "{} SignHash attempts, expected {:?}",
                signs.len(),
                case.sign_attempts
            ));
        }
        if case.identity != Identity::Trusted && connections > 1 {
            problems.push(format!(
                "{connections} TLS handshakes: a certificate error was retried"
            ));
        }
        let keys: std::collections::BTreeSet<_> = signs.iter().map(|s| s.idempotency_key.clone()).collect();
        if keys.len() > *case.signing_requests.end() || keys.contains(&None) {
            problems.push(format!(
                "the attempts did not share one idempotency key: {keys:?}"
            ));
        }
        if let Some(gap) = case.min_gap {
            for pair in signs.windows(2) {
                if pair[1].at - pair[0].at < gap {
                    problems.push(format!(
                        "retried after {:?}, before Retry-After",
                        pair[1].at - pair[0].at
                    ));
                }
            }
        }
        // One signature per idempotency key: replays are audited as such, never signed again.
        if let Some(Some(key)) = keys.iter().next() {
            let signed = audit
                .iter()
                .filter(|r| r["idempotency_key"] == key.as_str())
                .filter(|r| r["signature_sha256"].is_string() && r["algorithm"] != "replay")
                .count();
            let forwarded = seen.iter().any(|s| {
                s.route == Route::SignHash && !s.action.starts_with("Status") && s.action != "Garbage"
            });
            if signed != usize::from(forwarded) {
                problems.push(format!("{signed} signatures audited for idempotency key {key}"));
            }
        }
        eprintln!(
            "{client}: {:<40} {:>6.2} s  {} SignHash  {:?}",
            case.name,
            outcome.elapsed.as_secs_f64(),
            signs.len(),
            outcome.result
        );
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{client}:\n{}", failures.join("\n"));
}

#[test]
fn the_plugin_fails_precisely_and_signs_once_under_every_fault() {
    run_matrix("plugin", plugin_sign);
}

#[test]
fn the_module_fails_precisely_and_signs_once_under_every_fault() {
    run_matrix("module", module_sign);
}

/// A C host that does not ignore SIGPIPE (OpenSC's pkcs11-tool) survives the gateway resetting a connection while
/// the module writes to it: the module blocks SIGPIPE while it runs, so the write fails with EPIPE and is retried.
/// Before that, the reset killed pkcs11-tool with SIGPIPE.
#[test]
fn a_reset_connection_does_not_kill_a_c_host_with_sigpipe() {
    require_tool!("pkcs11-tool");
    let gateway = Gateway::start();
    let key = gateway_key(&gateway);
    for _ in 0..3 {
        let proxy = FaultProxy::start(&gateway, Identity::Trusted, first(1, Action::ResetMidResponse));
        let digest = random_digest();
        std::fs::write(proxy.dir().join("digest"), digest).unwrap();
        let mut command = client_command(&tools::tool("pkcs11-tool"), &proxy, &gateway);
        command
            .arg("--module")
            .arg(tools::release_artifact("libsignpath_pkcs11.so"))
            .args(["--login", "--pin", "CONFIG", "--sign", "-m", "ECDSA", "--id"])
            .arg(hex::encode(KEY_ID))
            .args(["-i", "digest", "-o", "signature"]);
        let output = run_with_stdin(command, "");
        assert!(output.status.success(), "pkcs11-tool: {output:?}");
        let signature = std::fs::read(proxy.dir().join("signature")).unwrap();
        key.verify_digest(
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            &digest,
            &signature,
        )
        .expect("pkcs11-tool's signature verifies");
        assert_eq!(proxy.seen_on(Route::SignHash).len(), 2, "one reset, one retry");
    }
}
