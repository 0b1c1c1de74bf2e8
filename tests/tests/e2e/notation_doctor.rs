//! `notation-signpath doctor` (issue 20): against the real gateway it finds nothing wrong and lists the token's
//! policies; with a wrong token, a closed port or the wrong TLS CA it names the problem, says the fix in one
//! sentence and exits 1. The plugin contract's commands are untouched by it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::gateway::{free_port, Gateway};
use e2e_tests::tools;

/// `notation-signpath doctor` with the gateway's client settings, changed by `settings`.
fn doctor(gateway: &Gateway, home: &std::path::Path, settings: &[(&str, String)]) -> Output {
    Command::new(tools::release_artifact("notation-signpath"))
        .arg("doctor")
        .env_clear()
        .env("HOME", home)
        .envs(gateway.env_vars())
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn doctor_passes_a_good_setup_and_names_each_broken_one_with_its_fix() {
    let gateway = Gateway::start();
    let home = tempfile::tempdir().unwrap();

    // A good setup: exit 0, the policies listed, nothing on stderr.
    let good = doctor(&gateway, home.path(), &[]);
    let text = stdout(&good);
    assert_eq!(good.status.code(), Some(0), "{}", tools::output_text(&good));
    assert!(good.stderr.is_empty());
    assert!(
        text.contains(&format!(
            "ok       ApiUrl {} is reachable and its TLS certificate is trusted",
            gateway.api_url()
        )),
        "{text}"
    );
    assert!(text.contains("demo/ec-256"), "{text}");
    assert!(text.contains("the clock agrees with the gateway's"), "{text}");
    assert!(!text.contains("PROBLEM"), "{text}");
    assert!(text.ends_with("no problems found\n"), "{text}");

    // A token the gateway does not know.
    let wrong_token = doctor(
        &gateway,
        home.path(),
        &[("SIGNPATH_API_TOKEN", "not-a-token".into())],
    );
    let text = stdout(&wrong_token);
    assert_eq!(wrong_token.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "PROBLEM  the gateway at {} rejected the API token for organization {}",
            gateway.api_url(),
            gateway.organization_id()
        )),
        "{text}"
    );
    assert!(
        text.contains("         fix: Set SIGNPATH_API_TOKEN to a token of this organization"),
        "{text}"
    );

    // A port nobody listens on: found within seconds, not minutes.
    let closed = format!("https://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let unreachable = doctor(&gateway, home.path(), &[("SIGNPATH_API_URL", closed.clone())]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let text = stdout(&unreachable);
    assert_eq!(unreachable.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "PROBLEM  the gateway at {closed}: could not reach the signing gateway"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "fix: Check that ApiUrl (SIGNPATH_API_URL) is the gateway's URL, that the gateway is running"
        ),
        "{text}"
    );

    // The wrong CA: the signing PKI's root, not the CA of the gateway's TLS certificate.
    let wrong_ca = doctor(
        &gateway,
        home.path(),
        &[(
            "SIGNPATH_TLS_CA_BUNDLE",
            gateway.root_ca_pem().display().to_string(),
        )],
    );
    let text = stdout(&wrong_ca);
    assert_eq!(wrong_ca.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the TLS handshake with the signing gateway"),
        "{text}"
    );
    assert!(
        text.contains(
            "fix: Set TlsCaBundle (SIGNPATH_TLS_CA_BUNDLE) to the CA file of the gateway's TLS certificate"
        ),
        "{text}"
    );

    // A log directory every user can write to.
    let shared = home.path().join("shared-logs");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shared_logs = doctor(
        &gateway,
        home.path(),
        &[("SIGNPATH_LOG_FILE_DIRECTORY", shared.display().to_string())],
    );
    let text = stdout(&shared_logs);
    assert_eq!(shared_logs.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "PROBLEM  the log directory {} can be written by every user",
            shared.display()
        )),
        "{text}"
    );

    // The key id a user means to sign with, when the token may not use it.
    let key = Command::new(tools::release_artifact("notation-signpath"))
        .args(["doctor", "--key-id", "demo/no-such-policy"])
        .env_clear()
        .env("HOME", home.path())
        .envs(gateway.env_vars())
        .output()
        .unwrap();
    assert_eq!(key.status.code(), Some(1));
    assert!(stdout(&key)
        .contains("PROBLEM  the key id demo/no-such-policy is not among the token's signing policies"));
}
