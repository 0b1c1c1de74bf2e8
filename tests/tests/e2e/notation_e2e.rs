//! The real notation CLI signing with our plugin, installed from the release package, against the real gateway
//! and a real registry, the way docs/notation.md tells a user to do it: `notation plugin install --file`,
//! `notation sign --plugin signpath --id demo/<policy>` (or a key added with `--plugin-config`), and
//! `notation verify` with the gateway's root in a trust store and a strict trust policy.
//!
//! Every notation gets its own NOTATION_CONFIG, NOTATION_LIBEXEC, NOTATION_CACHE, HOME and plugin cache, and an
//! environment that holds nothing but what the test gives it.

use super::notation_e2e_support;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{json, Value};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{self, Registry};
use e2e_tests::require_tool;

use notation_e2e_support::{
    fingerprint, gateway_env, policy_chain, push, root_pem, signing_algorithm, Notation, TamperingProxy,
    FORMATS, POLICIES, PROJECT,
};

// ---------------------------------------------------------------------------------------------------------------
// Installation

#[test]
fn the_package_installs_and_notation_lists_the_plugin() {
    let notation_bin = require_tool!("notation");
    let notation = Notation::new(&notation_bin, BTreeMap::new());
    let list = notation.ok(&["plugin", "list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("signpath "))
        .unwrap_or_else(|| panic!("signpath is not listed:\n{list}"));
    assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
    assert!(
        line.contains("[SIGNATURE_GENERATOR.RAW SIGNATURE_VERIFIER.TRUSTED_IDENTITY SIGNATURE_VERIFIER.REVOCATION_CHECK]"),
        "{line}"
    );
    assert!(line.trim_end().ends_with("<nil>"), "{line}");
    let installed = notation.path("libexec").join("plugins").join("signpath");
    let files: Vec<String> = std::fs::read_dir(&installed)
        .expect("plugin directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["notation-signpath"]);
}

// ---------------------------------------------------------------------------------------------------------------
// Signing and verifying

#[test]
fn every_policy_signs_jws_and_cose_that_notation_verifies() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["*"]);

    for policy in POLICIES {
        let chain = policy_chain(gateway, policy);
        assert_eq!(chain.len(), 3, "{policy}: leaf, intermediate, root");
        let leaf = common::x509::ParsedCertificate::from_der(&chain[0]).expect("leaf");
        for (format, media_type) in FORMATS {
            let image = push(&registry, "demo/matrix", &format!("{policy} {format}"));
            let key_id = format!("{PROJECT}/{policy}");
            let signed = notation.ok(&[
                "sign",
                "--plugin",
                "signpath",
                "--id",
                &key_id,
                "--signature-format",
                format,
                &image.reference,
            ]);
            assert!(
                signed.contains(&format!("Successfully signed {}", image.reference)),
                "{signed}"
            );

            let verified = notation.ok(&["verify", &image.reference]);
            assert!(
                verified.contains(&format!(
                    "Successfully verified signature for {}",
                    image.reference
                )),
                "{policy} {format}: {verified}"
            );

            let signatures = notation.signatures(&image.reference);
            assert_eq!(signatures.len(), 1, "{policy} {format}: {signatures:?}");
            let signature = &signatures[0];
            assert_eq!(signature["mediaType"], media_type, "{policy} {format}");
            assert_eq!(signature["signatureAlgorithm"], signing_algorithm(policy));
            let certificates = signature["certificates"].as_array().expect("certificates");
            let fingerprints: Vec<&str> = certificates
                .iter()
                .map(|c| c["SHA256Fingerprint"].as_str().expect("fingerprint"))
                .collect();
            let expected: Vec<String> = chain.iter().map(|der| fingerprint(der)).collect();
            assert_eq!(
                fingerprints, expected,
                "{policy} {format}: the chain leaf to root"
            );
            assert_eq!(certificates[0]["issuedTo"], leaf.subject(), "{policy} {format}");
            let agent = signature["unsignedAttributes"]["signingAgent"]
                .as_str()
                .unwrap_or_default();
            assert!(
                agent.ends_with(&format!("signpath/{}", env!("CARGO_PKG_VERSION"))),
                "{agent}"
            );
        }
    }
}

#[test]
fn a_key_added_with_plugin_config_signs() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    // Only the token and the gateway's TLS CA in the environment: OrganizationId and ApiUrl come from the key.
    let mut env = gateway_env(gateway);
    let organization = env
        .remove("SIGNPATH_ORGANIZATION_ID")
        .expect("SIGNPATH_ORGANIZATION_ID");
    let api_url = env.remove("SIGNPATH_API_URL").expect("SIGNPATH_API_URL");
    let notation = Notation::new(&notation_bin, env);
    notation.trust(&root_pem(gateway), &["*"]);

    notation.ok(&[
        "key",
        "add",
        "release",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-256",
        "--plugin-config",
        &format!("OrganizationId={organization}"),
        "--plugin-config",
        &format!("ApiUrl={api_url}"),
        "--default",
    ]);
    let keys = notation.ok(&["key", "list"]);
    assert!(keys.contains("release") && keys.contains("demo/ec-256"), "{keys}");

    let image = push(&registry, "demo/key", "stored key");
    notation.ok(&["sign", "--key", "release", &image.reference]);
    let verified = notation.ok(&["verify", &image.reference]);
    assert!(verified.contains("Successfully verified signature"), "{verified}");
    // The default key signs too, and signingkeys.json never holds a token.
    let image = push(&registry, "demo/key", "default key");
    notation.ok(&["sign", &image.reference]);
    let stored =
        std::fs::read_to_string(notation.path("config").join("signingkeys.json")).expect("signingkeys.json");
    let token = gateway_env(gateway).remove("SIGNPATH_API_TOKEN").expect("token");
    assert!(!stored.contains(&token));
}

#[test]
fn a_signature_whose_chain_does_not_reach_the_trusted_root_fails_verification() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/untrusted", "untrusted root");
    let signer = Notation::new(&notation_bin, gateway_env(gateway));
    signer.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-384",
        &image.reference,
    ]);

    // A verifier that trusts another root, with the same subject as the gateway's, but another key.
    let verifier = Notation::new(&notation_bin, BTreeMap::new());
    verifier.trust(&other_root_pem(), &["*"]);
    let failed = verifier.fails(&["verify", &image.reference]);
    assert!(failed.contains("signature verification failed"), "{failed}");
}

/// A self-signed CA certificate nothing in the gateway's chain was issued by.
fn other_root_pem() -> Vec<u8> {
    use p256::ecdsa::{DerSignature, SigningKey};
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    let key = SigningKey::random(&mut rand_core::OsRng);
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("SPKI");
    let certificate = CertificateBuilder::new(
        Profile::Root,
        x509_cert::serial_number::SerialNumber::from(9u32),
        x509_cert::time::Validity::from_now(Duration::from_secs(86_400)).expect("validity"),
        x509_cert::name::Name::from_str("CN=Another Root,O=Elsewhere,ST=WA,C=US").expect("name"),
        spki,
        &key,
    )
    .expect("builder")
    .build::<DerSignature>()
    .expect("certificate");
    certificate
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .expect("PEM")
        .into_bytes()
}

#[test]
fn a_wrong_signature_from_the_gateway_fails_the_sign_and_nothing_is_pushed() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/tampered", "tampered signature");
    let mut env = gateway_env(gateway);
    let proxy = TamperingProxy::start(&env);
    env.insert("SIGNPATH_API_URL".into(), proxy.url());
    env.insert("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP".into(), "true".into());
    let notation = Notation::new(&notation_bin, env);

    let failed = notation.fails(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/rsa-2048",
        &image.reference,
    ]);
    assert!(
        failed.contains(
            "the signature the gateway returned for demo/rsa-2048 does not verify with the policy's public key"
        ),
        "{failed}"
    );
    assert!(proxy.tampered() >= 1, "the proxy changed no signature");
    assert_eq!(
        registry.tags_for_digest("demo/tampered", &image.digest),
        Vec::<String>::new()
    );
    assert!(registry
        .referrers_by_tag("demo/tampered", &image.digest)
        .is_empty());
    assert!(notation.signatures(&image.reference).is_empty());
}

#[test]
fn an_oci_layout_is_signed_before_push_and_verified_with_a_local_scope() {
    let notation_bin = require_tool!("notation");
    let gateway = &Gateway::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["local/app"]);
    let layout = notation.path("app");
    let digest = registry::write_oci_layout(&layout, "v1");
    let reference = format!("{}@{digest}", layout.display());
    let experimental = [("NOTATION_EXPERIMENTAL", "1")];

    let signed = notation.ok_with(
        &[
            "sign",
            "--oci-layout",
            "--plugin",
            "signpath",
            "--id",
            "demo/ec-521",
            "--signature-format",
            "cose",
            &reference,
        ],
        &experimental,
    );
    assert!(signed.contains("Successfully signed"), "{signed}");
    let verified = notation.ok_with(
        &["verify", "--oci-layout", "--scope", "local/app", &reference],
        &experimental,
    );
    assert!(verified.contains("Successfully verified signature"), "{verified}");
    // The signature is in the layout itself, next to the image, ready to be pushed with it; notation records the
    // chain's fingerprints on its manifest.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("JSON");
    let thumbprints: Vec<Value> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"].as_str())
        .map(|t| serde_json::from_str(t).expect("thumbprint list"))
        .collect();
    let expected: Vec<String> = policy_chain(gateway, "ec-521")
        .iter()
        .map(|d| fingerprint(d))
        .collect();
    assert_eq!(thumbprints, vec![json!(expected)], "{index}");
}

// ---------------------------------------------------------------------------------------------------------------
// What one sign costs, and what the audit log learns

#[test]
fn one_sign_costs_one_sign_hash_and_at_most_one_key_lookup_and_is_audited_with_the_manifest() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/audited", "audited");
    let before = gateway.audit_json().len();
    let notation = Notation::new(&notation_bin, gateway_env(&gateway));
    notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/rsa-3072",
        "--signature-format",
        "cose",
        &image.reference,
    ]);
    let records: Vec<Value> = gateway.audit_json().into_iter().skip(before).collect();

    let sign_hash = on_route(&records, "SignHash");
    assert_eq!(sign_hash.len(), 1, "{records:#?}");
    assert!(on_route(&records, "MySigningPolicies").len() <= 1, "{records:#?}");
    assert_eq!(
        records.len(),
        sign_hash.len() + on_route(&records, "MySigningPolicies").len(),
        "{records:#?}"
    );
    let record = sign_hash[0];
    assert_eq!(record["outcome"], "allowed", "{record}");
    assert_eq!(record["policy"], "rsa-3072", "{record}");
    let metadata: Value =
        serde_json::from_str(record["metadata"].as_str().expect("metadata")).expect("metadata JSON");
    assert_eq!(metadata["oci"]["digest"], image.digest.as_str(), "{metadata}");
    assert_eq!(metadata["oci"]["mediaType"], registry::OCI_MANIFEST, "{metadata}");
    let command_line = metadata["sourceProcess"]["commandLine"]
        .as_str()
        .unwrap_or_default();
    assert!(
        command_line.ends_with("notation-signpath generate-signature"),
        "{metadata}"
    );
}

/// The gateway's audit records on one route (`SignHash`, `MySigningPolicies`).
fn on_route<'a>(records: &'a [Value], route: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["route"].as_str().is_some_and(|r| r.ends_with(route)))
        .collect()
}
