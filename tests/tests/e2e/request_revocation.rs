//! Revoking what one signing request produced, not the whole key, proven with the real notation: two images signed
//! through the plugin's envelope generation in two signing requests of the same policy (so the same key), one
//! request revoked with `signpath-gateway revoke --request`, and `notation verify` with the plugin's revocation
//! check refuses that image's signature and accepts the other's, online (the gateway's signed answer) and offline
//! (the list `signpath-gateway revocation-list` wrote); an expired list fails closed.

use super::notation_e2e_support;

use std::time::Duration;

use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::registry::Registry;
use e2e_tests::require_tool;

use notation_e2e_support::{gateway_env, push, root_pem, Notation};

/// The base URL of the gateway's CRL listener, where the revocation list and the online answers are.
fn revocation_url(gateway: &Gateway) -> String {
    let text = std::fs::read_to_string(gateway.config()).expect("gateway.toml");
    let config: toml::Value = toml::from_str(&text).expect("gateway.toml parses");
    config["pki"]["crl_url"]
        .as_str()
        .expect("[pki] crl_url")
        .to_owned()
}

/// The gateway's id of the signing request that signed `digest`, from the audit log.
fn request_that_signed(gateway: &Gateway, digest: &str) -> String {
    let records = gateway.audit_json();
    let signed: Vec<_> = records
        .iter()
        .filter(|r| r["outcome"] == "allowed" && r["metadata"].as_str().is_some_and(|m| m.contains(digest)))
        .collect();
    assert_eq!(
        signed.len(),
        1,
        "one signing request signed {digest}: {records:?}"
    );
    signed[0]["request_id"].as_str().expect("request_id").to_owned()
}

#[test]
fn a_revoked_request_fails_notation_verify_while_the_same_keys_other_signature_passes() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["*"]);

    let revoked = push(&registry, "demo/revocation", "the build found compromised");
    let kept = push(&registry, "demo/revocation", "a good build");
    for (image, format) in [(&revoked, "jws"), (&kept, "cose")] {
        let signed = notation.ok(&[
            "sign",
            "--plugin",
            "signpath",
            "--id",
            "demo/ec-256",
            "--plugin-config",
            "envelope=true",
            "--signature-format",
            format,
            &image.reference,
        ]);
        assert!(signed.contains("Successfully signed"), "{signed}");
    }
    let online = format!("revocation_url={}", revocation_url(gateway));
    // `--debug` prints the plugin's response, where the reason of a failed revocation check is.
    let verify = |image: &str, config: &str| {
        notation.run(&["verify", "--debug", "--plugin-config", config, image], &[])
    };
    let verified = |image: &str, config: &str| {
        let output = verify(image, config);
        let text = notation_e2e_support::combined(&output);
        assert!(
            output.status.success(),
            "{image} with {config}: {text}\nplugin log:\n{}",
            notation.log()
        );
        assert!(text.contains("Successfully verified signature"), "{text}");
    };
    let refused = |image: &str, config: &str| -> String {
        let output = verify(image, config);
        let text = notation_e2e_support::combined(&output);
        assert!(
            !output.status.success(),
            "{image} with {config} verified:\n{text}"
        );
        text
    };
    // Before the revocation both verify, online.
    verified(&revoked.reference, &online);
    verified(&kept.reference, &online);

    let request = request_that_signed(gateway, &revoked.digest);
    // The online answer is served to anyone on plain HTTP: a second query within 30 s gets the answer already
    // signed, not a new HSM signature (its issue time is the first's).
    let answer_url = format!("{}/revocations/requests/{request}", revocation_url(gateway));
    let fetch = || {
        let response = reqwest::blocking::get(&answer_url).expect("online answer");
        assert!(
            response.status().is_success(),
            "{answer_url}: {}",
            response.status()
        );
        response.bytes().expect("online answer's body")
    };
    let first = fetch();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(first, fetch(), "a second query signed a new answer");
    let said = run_cli(
        &gateway.dir(),
        &["revoke", "--request", &request, "--reason", "build compromised"],
    );
    assert!(
        said.contains(&format!("revoked signing request {request}")),
        "{said}"
    );
    // Idempotent: a second revoke keeps the first and says so.
    let again = run_cli(
        &gateway.dir(),
        &["revoke", "--request", &request, "--reason", "other"],
    );
    assert!(again.contains("was already revoked"), "{again}");
    let listed = run_cli(&gateway.dir(), &["revocations"]);
    assert!(
        listed.contains(&format!("signing request {request}  build compromised")),
        "{listed}"
    );

    // Online.
    let text = refused(&revoked.reference, &online);
    assert!(
        text.contains(&format!("signing request {request} was revoked at")),
        "{text}"
    );
    assert!(text.contains("build compromised"), "{text}");
    verified(&kept.reference, &online);

    // Offline, from the list the gateway wrote.
    let list = notation.path("revocations.json");
    let list_arg = list.display().to_string();
    run_cli(&gateway.dir(), &["revocation-list", "--output", &list_arg]);
    let offline = format!("revocation_list={list_arg}");
    let text = refused(&revoked.reference, &offline);
    assert!(
        text.contains(&format!("signing request {request} was revoked at")),
        "{text}"
    );
    verified(&kept.reference, &offline);

    // An expired list fails closed, even for the signature nobody revoked.
    run_cli(
        &gateway.dir(),
        &[
            "revocation-list",
            "--output",
            &list_arg,
            "--valid-for-seconds",
            "1",
        ],
    );
    std::thread::sleep(Duration::from_millis(2100));
    let text = refused(&kept.reference, &offline);
    assert!(text.contains("the revocation list expired at"), "{text}");

    // No source at all: the check says so, and the strict trust policy (revocation enforced) fails it.
    let output = notation.run(&["verify", "--debug", &kept.reference], &[]);
    let text = notation_e2e_support::combined(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("no revocation source"), "{text}");
}

/// `signpath-oci check-revocation` with the list and the issuing CA, on the signatures in `file`.
fn check_revocation(
    gateway: &Gateway,
    list: &std::path::Path,
    file: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(e2e_tests::tools::release_artifact("signpath-oci"))
        .arg("check-revocation")
        .arg(file)
        .arg("--list")
        .arg(list)
        .arg("--trusted-ca")
        .arg(gateway.dir().join("ca").join("intermediate.pem"))
        .output()
        .expect("run signpath-oci")
}

#[test]
fn a_hash_path_notary_signature_of_a_revoked_request_fails_signpath_oci_check_revocation() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["*"]);
    // RAW: notation builds the envelope, the plugin only has the hash signed; no request id in the signature.
    let image = push(&registry, "demo/hashpath", "signed through the hash path");
    notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-256",
        &image.reference,
    ]);
    let referrers = registry.referrers_by_tag("demo/hashpath", &image.digest);
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    let manifest = registry
        .manifest(
            "demo/hashpath",
            referrers[0]["digest"].as_str().expect("referrer digest"),
        )
        .expect("the signature manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.body).expect("manifest JSON");
    let envelope = registry
        .blob(
            "demo/hashpath",
            manifest["layers"][0]["digest"].as_str().expect("layer"),
        )
        .expect("the envelope");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (file, list) = (
        dir.path().join("envelope.jws"),
        dir.path().join("revocations.json"),
    );
    std::fs::write(&file, envelope).expect("write the envelope");
    let list_arg = list.display().to_string();

    run_cli(&gateway.dir(), &["revocation-list", "--output", &list_arg]);
    let output = check_revocation(gateway, &list, &file);
    let text = e2e_tests::tools::output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("not revoked"), "{text}");

    let request = request_that_signed(gateway, &image.digest);
    run_cli(
        &gateway.dir(),
        &["revoke", "--request", &request, "--reason", "pulled"],
    );
    run_cli(&gateway.dir(), &["revocation-list", "--output", &list_arg]);
    let output = check_revocation(gateway, &list, &file);
    let text = e2e_tests::tools::output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!("signing request {request} was revoked at")),
        "{text}"
    );
    assert!(text.contains(": pulled"), "{text}");

    // A list signed by another CA (the root, not the issuing CA) is not trusted.
    let output = std::process::Command::new(e2e_tests::tools::release_artifact("signpath-oci"))
        .arg("check-revocation")
        .arg(&file)
        .arg("--list")
        .arg(&list)
        .arg("--trusted-ca")
        .arg(gateway.root_ca_pem())
        .output()
        .expect("run signpath-oci");
    let text = e2e_tests::tools::output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("not a CA of the signature's certificate chain"),
        "{text}"
    );
}

#[test]
fn request_revocations_are_shared_by_replicas_on_postgresql_and_stored_once() {
    let Some((haproxy, bin)) = e2e_tests::replicas::haproxy_and_postgres() else {
        return;
    };
    let pg = e2e_tests::postgres::Postgres::start(&bin);
    let replicas = e2e_tests::replicas::Replicas::start(2, &pg.url(), &haproxy, |_| {});
    let said = replicas.gateway_command(
        0,
        &[
            "revoke",
            "--release-group",
            "v2.3.0",
            "--reason",
            "release pulled",
        ],
    );
    assert!(said.contains("revoked release group v2.3.0"), "{said}");
    // Through the other replica's host: already revoked, and the first revocation stays.
    let again = replicas.gateway_command(1, &["revoke", "--release-group", "v2.3.0", "--reason", "another"]);
    assert!(
        again.contains("release group v2.3.0 was already revoked"),
        "{again}"
    );
    let listed = replicas.gateway_command(1, &["revocations", "--json"]);
    let lines: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON revocation per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert_eq!(lines[0]["kind"], "release-group");
    assert_eq!(lines[0]["releaseGroup"], "v2.3.0");
    assert_eq!(lines[0]["reason"], "release pulled");
}

/// The plugin declares `SIGNATURE_VERIFIER.TRUSTED_IDENTITY`, so for its envelopes notation leaves the trust
/// policy's `trustedIdentities` to it: a policy naming another subject fails `notation verify` with the plugin's
/// reason, one naming (a subset of) the leaf's subject passes.
#[test]
fn the_plugin_matches_the_trust_policys_trusted_identities_for_its_envelopes() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["*"]);
    let image = push(&registry, "demo/identity", "a build");
    let signed = notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-256",
        "--plugin-config",
        "envelope=true",
        &image.reference,
    ]);
    assert!(signed.contains("Successfully signed"), "{signed}");
    let online = format!("revocation_url={}", revocation_url(gateway));
    let verify_trusting = |identity: &str| {
        let policy = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "signpath",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:signpath"],
                "trustedIdentities": [identity],
            }],
        });
        let file = notation.path("trustpolicy.json");
        std::fs::write(&file, policy.to_string()).expect("write the trust policy");
        notation.ok(&["policy", "import", "--force", &file.display().to_string()]);
        let output = notation.run(
            &["verify", "--debug", "--plugin-config", &online, &image.reference],
            &[],
        );
        (output.status.success(), notation_e2e_support::combined(&output))
    };

    let other = "x509.subject: C=AT, ST=Vienna, O=Someone Else";
    let (ok, text) = verify_trusting(other);
    assert!(!ok, "verified trusting {other}:\n{text}");
    // The plugin's reason, not notation's own check: notation skipped it.
    assert!(
        text.contains("the signing certificate's subject CN=demo/ec-256,O=SignPath Gateway Demo,ST=Vienna,C=AT matches none of the trust policy's trusted identities"),
        "{text}"
    );

    let leaf = "x509.subject: C=AT, ST=Vienna, O=SignPath Gateway Demo";
    let (ok, text) = verify_trusting(leaf);
    assert!(ok, "{text}\nplugin log:\n{}", notation.log());
    assert!(text.contains("Successfully verified signature"), "{text}");
}
