//! One set of rules for gateway.toml, through the binary: a rule `serve` applied alone before (here an approval of
//! 2 of 1 approvers) is refused by `serve`, by the reload (the configuration in force stays) and by `doctor`, all
//! three in the same words. Before, `doctor` passed such a file and `serve` refused it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::tools;
use serde_json::json;

/// Sets the approval of policy `demo/ec-384` in `setup`'s gateway.toml.
fn approval(setup: &Path, approval: &str) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let policy = config["projects"].as_array_mut().unwrap()[0]["policies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some("ec-384"))
        .unwrap()
        .as_table_mut()
        .unwrap();
    policy.insert("approval".into(), toml::from_str(approval).unwrap());
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

/// The message of `serve` on `config`, which must refuse to start, without the program's name.
fn serve_refusal(config: &Path) -> String {
    let mut child = Command::new(Gateway::binary())
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started on a configuration it must refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("signpath-gateway: "))
        .unwrap_or_else(|| panic!("no refusal: {stderr}"))
        .to_owned()
}

#[test]
fn serve_the_reload_and_doctor_refuse_an_approval_of_more_than_its_approvers_in_the_same_words() {
    let gateway = Gateway::start_with(|setup| {
        run_cli(setup, &["approver", "add", "--name", "alice"]);
        approval(setup, "approvers = [\"alice\"]\nrequired = 1");
    });
    let http = gateway.https_client();
    let submit = || {
        http.post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
            .bearer_auth(gateway.api_token())
            .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-384",
                "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode([5u8; 48])}}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(submit(), 202, "held for alice's approval");

    approval(&gateway.dir(), "approvers = [\"alice\"]\nrequired = 2");
    let refusal = serve_refusal(&gateway.config());
    assert!(
        refusal.ends_with(
            "is not a valid gateway configuration: policy demo/ec-384: approval requires 2 of 1 approvers: \
             required is at least 1 and at most the number of approvers"
        ),
        "{refusal}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while !gateway.stderr().contains("approval requires 2 of 1 approvers") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = gateway.stderr();
    assert!(
        log.contains("approval requires 2 of 1 approvers") && log.contains("the one in force stays"),
        "{log}"
    );
    assert_eq!(submit(), 202, "the configuration in force stays");

    let doctor = Command::new(Gateway::binary())
        .args(["doctor", "--config"])
        .arg(gateway.config())
        .output()
        .unwrap();
    let out = tools::output_text(&doctor);
    assert!(!doctor.status.success(), "{out}");
    assert!(out.contains(&format!("PROBLEM  {refusal}\n")), "{out}");
}
