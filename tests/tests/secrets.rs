//! Secrets stay secret: at every log level, the API token, the PIN and the HSM's PIN never appear in what the
//! plugin, the module and the gateway print or log, in the audit database, in error messages, or on the command
//! lines of the processes involved. A configuration file that others can read gets a warning.
//!
//! A test binary of its own, not a module of `e2e/`: it sets the gateway's log level (`SIGNPATH_GATEWAY_LOG`) in the
//! process environment, which every gateway another suite started here would inherit.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::Gateway;
use e2e_tests::require_tool;
use e2e_tests::tools;
use serde_json::json;

const LEVELS: &[&str] = &["verbose", "debug", "info", "warning", "error", "none"];

/// Every file under `dir`, as bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_clean(what: &str, bytes: &[u8], secrets: &[&str]) {
    for s in secrets {
        assert!(!contains(bytes, s), "a secret appears in {what}");
    }
}

fn assert_output_clean(what: &str, out: &Output, secrets: &[&str]) {
    assert_clean(&format!("{what} stdout"), &out.stdout, secrets);
    assert_clean(&format!("{what} stderr"), &out.stderr, secrets);
}

#[test]
fn no_secret_reaches_any_output_log_audit_record_or_command_line() {
    let p11tool = require_tool!("p11tool");
    // The gateway logs everything it can; the fixture's gateway inherits this.
    std::env::set_var("SIGNPATH_GATEWAY_LOG", "trace");
    let gateway = Gateway::start();
    let token = gateway.api_token().to_owned();
    let org = gateway.organization_id().to_owned();
    let hsm_pin = std::fs::read_to_string(gateway.dir().join("hsm-pin"))
        .unwrap()
        .trim()
        .to_owned();
    let wrong = "wrong-token-4f1d9c0e8b7a6d5c4b3a2f1e0d9c8b7a".to_owned();
    let secrets = [token.as_str(), hsm_pin.as_str(), wrong.as_str()];
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    let plugin = tools::release_artifact("notation-signpath");
    let module = tools::release_artifact("libsignpath_pkcs11.so");

    let signing_input = b"eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319";
    let requests = [
        (
            "describe-key",
            json!({"contractVersion": "1.0", "keyId": "demo/ec-256"}),
        ),
        (
            "generate-signature",
            json!({"contractVersion": "1.0", "keyId": "demo/ec-256", "keySpec": "EC-256",
                   "hashAlgorithm": "SHA-256", "payload": BASE64.encode(signing_input)}),
        ),
    ];
    for level in LEVELS {
        for (token_value, should_work) in [(&token, true), (&wrong, false)] {
            for (command, request) in &requests {
                let mut child = Command::new(&plugin)
                    .arg(command)
                    .env_clear()
                    .envs(gateway.env_vars())
                    .env("SIGNPATH_API_TOKEN", token_value)
                    .env("HOME", work.path())
                    .env(
                        "XDG_CACHE_HOME",
                        work.path().join(format!("cache-{level}-{should_work}")),
                    )
                    .env("SIGNPATH_LOG_FILE_DIRECTORY", &logs)
                    .env("SIGNPATH_LOG_FILE_LEVEL", level)
                    .env("SIGNPATH_LOG_CONSOLE_LEVEL", level)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut child.stdin.take().unwrap(), request.to_string().as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                assert_eq!(
                    out.status.success(),
                    should_work,
                    "{command} at {level}: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
                assert_output_clean(&format!("plugin {command} at {level}"), &out, &secrets);
            }
        }

        // The module: p11tool logs in with OrganizationId:ApiToken as the PIN, from GNUTLS_PIN (not argv).
        for pin in [format!("{org}:{token}"), format!("{org}:{wrong}")] {
            let out = Command::new(&p11tool)
                .args(["--login", "--list-privkeys", "--provider"])
                .arg(&module)
                .arg("pkcs11:token=SignPath")
                .env_clear()
                .env("GNUTLS_PIN", &pin)
                .env("SIGNPATH_API_URL", gateway.api_url())
                .env("SIGNPATH_TLS_CA_BUNDLE", gateway.tls_ca())
                .env("SIGNPATH_LOG_FILE_DIRECTORY", &logs)
                .env("SIGNPATH_LOG_FILE_LEVEL", level)
                .env("SIGNPATH_LOG_CONSOLE_LEVEL", level)
                .env("HOME", work.path())
                .output()
                .unwrap();
            assert_output_clean(&format!("p11tool with the module at {level}"), &out, &secrets);
        }
    }

    // A configuration file the world can read: the client warns, and still never logs the token in it.
    let config = work.path().join("CryptoProvidersConfig.json");
    std::fs::write(
        &config,
        json!({"ApiToken": token, "OrganizationId": org}).to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shared_logs = work.path().join("shared-config-logs");
    let mut child = Command::new(&plugin)
        .arg("describe-key")
        .env_clear()
        .env("SIGNPATH_API_URL", gateway.api_url())
        .env("SIGNPATH_TLS_CA_BUNDLE", gateway.tls_ca())
        .env("SIGNPATH_CONFIG_FILE", &config)
        .env("HOME", work.path())
        .env("XDG_CACHE_HOME", work.path().join("cache-shared"))
        .env("SIGNPATH_LOG_FILE_DIRECTORY", &shared_logs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        requests[0].1.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_output_clean("plugin with a shared configuration file", &out, &secrets);
    let log: Vec<u8> = files(&shared_logs).into_iter().flat_map(|(_, b)| b).collect();
    assert!(
        contains(
            &log,
            "the configuration file can be read by other users and may hold the API token; chmod 600 it"
        ),
        "{}",
        String::from_utf8_lossy(&log)
    );

    // The scan finds a secret where there is one (the configuration file holds the token).
    assert!(contains(&std::fs::read(&config).unwrap(), &token));
    // Every log file the clients wrote, at every level.
    let written = files(work.path());
    assert!(written
        .iter()
        .any(|(p, _)| p.ends_with("SignPath.CryptoProviders.Notation.txt")));
    assert!(written
        .iter()
        .any(|(p, _)| p.ends_with("SignPath.CryptoProviders.Cryptoki.txt")));
    for (path, bytes) in &written {
        if path != &config {
            assert_clean(&path.display().to_string(), bytes, &secrets);
        }
    }
    // The gateway's own log at trace level, its audit database (with its WAL) and its command line.
    let gateway_dir = gateway.dir();
    let stderr = std::fs::read(gateway_dir.parent().unwrap().join("gateway.stderr")).unwrap();
    assert!(!stderr.is_empty(), "the gateway logged at trace level");
    assert_clean("the gateway's log", &stderr, &secrets);
    for name in ["audit.db", "audit.db-wal"] {
        if let Ok(bytes) = std::fs::read(gateway_dir.join(name)) {
            assert_clean(name, &bytes, &secrets);
        }
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", gateway.pid())).unwrap();
    assert_clean("the gateway's command line", &cmdline, &secrets);
    let refused = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["outcome"] == "refused")
        .count();
    assert!(
        refused >= LEVELS.len() * 2,
        "the wrong token's attempts were audited"
    );
}
