//! Items of the second attack on the gateway and the clients that the clients and gateway.toml close, each
//! reproduced against the real binaries:
//! - a gateway that asks a GitHub Actions job for an identity token for a cloud's audience (`sts.amazonaws.com`)
//!   gets none; the gateway's URL is the audience both sides take by default, and signs end to end (item 1);
//! - a gateway.toml, PIN file or database another user can write is refused by `serve`, reported by `doctor`, and
//!   a running gateway keeps its configuration rather than take a token planted in it (item 13);
//! - a misspelt `[projects.policies.aproval]` is refused by `serve`, `doctor` and the reload, and the running
//!   gateway keeps requiring approval (item 14);
//! - `Origin.RepositoryData.Url` on another host than the issuer's repositories is refused (item 17).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use e2e_tests::gateway::{run_cli, sign_ec256, Gateway};
use e2e_tests::oidc::{GithubTokenEndpoint, Issuer};
use e2e_tests::tools;
use serde_json::{json, Value};

/// Gives `policy` of the demo project an origin rule: tokens of `issuer` for repository acme/app.
fn require_origin(setup: &Path, policy: &str, issuer: &str) {
    edit_policy(setup, policy, |table| {
        let origin: toml::Value = toml::from_str(&format!(
            "issuer = \"{issuer}\"\n[conditions]\nrepository = \"acme/app\""
        ))
        .unwrap();
        table.insert("origin".into(), origin);
    });
}

/// Rewrites gateway.toml with `edit` applied to the table of `policy` (keeping the file's mode).
fn edit_policy(setup: &Path, policy: &str, edit: impl FnOnce(&mut toml::Table)) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let table = config["projects"].as_array_mut().unwrap()[0]["policies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some(policy))
        .unwrap()
        .as_table_mut()
        .unwrap();
    edit(table);
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `signpath-gateway ARGS --config CONFIG`, whatever its outcome.
fn gateway_cli(args: &[&str], config: &Path) -> Output {
    Command::new(Gateway::binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// `serve` on `config`, which must refuse to start; what it said.
fn serve_refuses(config: &Path) -> String {
    let mut child = Command::new(Gateway::binary())
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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
    tools::output_text(&output)
}

/// Waits until the gateway's log holds `text` (a reload's outcome), for up to 5 s.
fn logged(gateway: &Gateway, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if gateway.stderr().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// One CKM_ECDSA signature of `digest` with `key` through the PKCS#11 module, as a GitHub Actions job makes it
/// (the endpoint's variables, no SIGNPATH_ID_TOKEN), logging to `logs`.
fn sign_in_a_github_job(
    gateway: &Gateway,
    endpoint: &GithubTokenEndpoint,
    key: &str,
    digest: &[u8],
    logs: &Path,
) -> Output {
    gateway
        .command(env!("CARGO_BIN_EXE_p11-sign"))
        .env_remove("SIGNPATH_ID_TOKEN")
        .env_remove("SIGNPATH_IDENTITY_TOKEN_AUDIENCE")
        .envs(endpoint.env())
        .env("SIGNPATH_LOG_FILE_DIRECTORY", logs)
        .arg(tools::release_artifact("libsignpath_pkcs11.so"))
        .arg(key)
        .arg(hex::encode(digest))
        .output()
        .unwrap()
}

#[test]
fn a_github_actions_job_fetches_identity_tokens_only_for_the_audience_it_chose() {
    let issuer = Issuer::new();
    let gateway = Gateway::start_with(|setup| {
        // "github" verifies tokens for the gateway's URL (no `audience`); "cloud" names a cloud's audience.
        issuer.trust_for_the_gateways_url(setup, "github");
        issuer.trust_in(setup, "cloud", "sts.amazonaws.com");
        require_origin(setup, "ec-256", "github");
        require_origin(setup, "ec-384", "cloud");
    });
    let endpoint = GithubTokenEndpoint::start(
        issuer,
        json!({"repository": "acme/app", "ref": "refs/heads/main"}),
    );
    let logs = tempfile::tempdir().unwrap();

    // The default on both sides: the gateway's URL, as the client's SIGNPATH_API_URL names it.
    let signed = sign_in_a_github_job(&gateway, &endpoint, "demo/ec-256", &[7u8; 32], logs.path());
    assert!(signed.status.success(), "{}", tools::output_text(&signed));
    let asked = endpoint.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        asked[0].audience.as_deref(),
        Some(gateway.api_url().trim_end_matches('/'))
    );
    let audit = gateway.audit_json();
    let last = audit.last().unwrap();
    assert_eq!(last["status"], 200, "{last}");
    assert!(last["origin"].as_str().unwrap().contains("acme/app"), "{last}");

    // A gateway asking for sts.amazonaws.com: nothing is fetched, and the client says why.
    let refused = sign_in_a_github_job(&gateway, &endpoint, "demo/ec-384", &[7u8; 48], logs.path());
    assert!(!refused.status.success(), "{}", tools::output_text(&refused));
    assert_eq!(
        endpoint.requests().len(),
        1,
        "no token for sts.amazonaws.com was fetched"
    );
    let log: String = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        log.contains("\"sts.amazonaws.com\"") && log.contains("SIGNPATH_IDENTITY_TOKEN_AUDIENCE"),
        "{log}"
    );
    let audit = gateway.audit_json();
    let last = audit.last().unwrap();
    assert_eq!(last["error_type"], "origin-rejected", "{last}");

    // doctor passes the setup, and notes the issuer whose audience GitHub Actions jobs will not fetch by default.
    let doctor = gateway_cli(&["doctor"], &gateway.config());
    let out = tools::output_text(&doctor);
    assert!(doctor.status.success(), "{out}");
    assert!(
        out.contains("note     trusted issuer cloud verifies tokens for the audience \"sts.amazonaws.com\"")
            && out.contains("SIGNPATH_IDENTITY_TOKEN_AUDIENCE=sts.amazonaws.com"),
        "{out}"
    );
}

#[test]
fn a_configuration_pin_file_or_database_others_can_write_is_refused() {
    let gateway = Gateway::start();
    let setup = gateway.dir();
    let config = gateway.config();
    let (http, base) = (gateway.https_client(), gateway.api_base());
    let good = std::fs::read_to_string(&config).unwrap();

    // Another user, able to write gateway.toml, plants a token of their own (made with `token add` on a copy).
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("gateway.toml"), &good).unwrap();
    chmod(&scratch.path().join("gateway.toml"), 0o600);
    let planted_token = run_cli(
        scratch.path(),
        &["token", "add", "--name", "planted", "--policy", "demo/ec-256"],
    )
    .trim()
    .to_owned();
    let planted = std::fs::read_to_string(scratch.path().join("gateway.toml")).unwrap();
    chmod(&config, 0o666);
    std::fs::write(&config, &planted).unwrap();
    assert!(
        logged(&gateway, "mode 0666"),
        "the reload says why: {}",
        gateway.stderr()
    );
    assert!(gateway.stderr().contains(&config.display().to_string()));
    assert!(
        sign_ec256(&http, &base, &planted_token, &[1u8; 32]).is_none(),
        "the planted token is refused"
    );
    assert!(
        sign_ec256(&http, &base, gateway.api_token(), &[1u8; 32]).is_some(),
        "the configuration in force stays"
    );

    let doctor = gateway_cli(&["doctor"], &config);
    let out = tools::output_text(&doctor);
    assert!(!doctor.status.success() && out.contains("mode 0666"), "{out}");
    let refusal = serve_refuses(&config);
    assert!(
        refusal.contains(&config.display().to_string()) && refusal.contains("mode 0666"),
        "{refusal}"
    );

    // The PIN file and the database, each in turn.
    std::fs::write(&config, &good).unwrap();
    chmod(&config, 0o600);
    for (file, what) in [
        ("hsm-pin", "the HSM PIN file"),
        ("audit.db", "the audit database"),
    ] {
        let path = setup.join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        chmod(&path, 0o620);
        let refusal = serve_refuses(&config);
        assert!(
            refusal.contains(what)
                && refusal.contains(&path.display().to_string())
                && refusal.contains("mode 0620"),
            "{refusal}"
        );
        let out = tools::output_text(&gateway_cli(&["doctor"], &config));
        assert!(
            out.contains(&format!("PROBLEM  {what} {} has mode 0620", path.display())),
            "{out}"
        );
        chmod(&path, mode);
    }
}

#[test]
fn a_misspelt_approval_is_refused_by_serve_doctor_and_reload_and_approval_stays_required() {
    let gateway = Gateway::start_with(|setup| {
        run_cli(setup, &["approver", "add", "--name", "alice"]);
        edit_policy(setup, "ec-384", |policy| {
            let approval: toml::Value = toml::from_str("approvers = [\"alice\"]\nrequired = 1").unwrap();
            policy.insert("approval".into(), approval);
        });
    });
    let config = gateway.config();
    let http = gateway.https_client();
    let submit = || {
        http.post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
            .bearer_auth(gateway.api_token())
            .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-384",
                "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": BASE64.encode([3u8; 48])}}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(submit(), 202, "held for approval");

    // `approval` misspelt: the policy would sign without approval if the key were ignored.
    edit_policy(&gateway.dir(), "ec-384", |policy| {
        let approval = policy.remove("approval").unwrap();
        policy.insert("aproval".into(), approval);
    });
    assert!(
        logged(&gateway, "unknown field `aproval`"),
        "the reload says why: {}",
        gateway.stderr()
    );
    assert!(gateway.stderr().contains("the one in force stays"));
    assert_eq!(submit(), 202, "the running gateway still requires approval");

    let doctor = gateway_cli(&["doctor"], &config);
    let out = tools::output_text(&doctor);
    assert!(
        !doctor.status.success() && out.contains("unknown field `aproval`"),
        "{out}"
    );
    let refusal = serve_refuses(&config);
    assert!(
        refusal.contains("unknown field `aproval`") && refusal.contains("[[projects.policies]]"),
        "{refusal}"
    );
}

/// A fast-signing `SubmitWithArtifact` to demo/rsa-2048 claiming `repository_url`, with `token`.
fn submit_claiming(gateway: &Gateway, repository_url: &str, token: &str) -> (u16, Value) {
    let payload = format!(
        "{{\"SignatureAlgorithm\":\"RsaPkcs1\",\"RsaHashAlgorithm\":\"2.16.840.1.101.3.4.2.1\",\"Base64EncodedHash\":\"{}\"}}",
        BASE64.encode([9u8; 32])
    );
    let mut form = reqwest::blocking::multipart::Form::new().text("IsFastSigningRequest", "true");
    for (name, value) in [
        ("ProjectSlug", "demo"),
        ("SigningPolicySlug", "rsa-2048"),
        ("Origin.RepositoryData.Url", repository_url),
    ] {
        form = form.text(name, value.to_owned());
    }
    let form = form.part(
        "Artifact",
        reqwest::blocking::multipart::Part::bytes(payload.into_bytes()).file_name("payload.json"),
    );
    let response = gateway
        .https_client()
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token())
        .header("X-SignPath-Origin-Token", token)
        .multipart(form)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

#[test]
fn a_repository_url_on_another_host_than_the_issuers_is_refused() {
    let issuer = Issuer::new();
    let gateway = Gateway::start_with(|setup| {
        issuer.trust_in(setup, "github", "signpath-gateway");
        // The stand-in issuer is not GitHub's, so the host of its repositories is configured.
        let path = setup.join("gateway.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}repository_host = \"github.com\"\n")).unwrap();
        require_origin(setup, "rsa-2048", "github");
    });
    let token = issuer.token(
        "signpath-gateway",
        &json!({"repository": "acme/app", "ref": "refs/heads/main"}),
    );

    let (status, problem) = submit_claiming(&gateway, "https://evil.example/acme/app", &token);
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:signpath-gateway:problem:origin-rejected");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("https://evil.example/acme/app") && detail.contains("github.com/acme/app"),
        "{detail}"
    );

    for url in ["https://GitHub.com/acme/app.git", "https://github.com/acme/app"] {
        let (status, answer) = submit_claiming(&gateway, url, &token);
        assert_eq!(status, 200, "{url}: {answer}");
    }
}
