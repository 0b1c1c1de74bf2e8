//! The gateway as an RFC 3161 time-stamping authority (`POST /timestamp`), checked by tools we did not write:
//! `openssl ts -verify` on its tokens, `notation sign --timestamp-url` through our plugin and `notation verify`
//! with the TSA root in a `tsa` trust store, and `cosign sign --timestamp-server-url` through the PKCS#11 module
//! with `cosign verify --use-signed-timestamps`. Long-term validity: after a short-lived signing certificate
//! expires, notation still accepts the timestamped signature.
//!
//! The TSA is served over the gateway's HTTPS; Go's clients trust its TLS CA through `SSL_CERT_FILE`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use e2e_tests::cosign::Cosign;
use e2e_tests::gateway::Gateway;
use e2e_tests::notation::Notation;
use e2e_tests::registry::{self, Registry};
use e2e_tests::{require_tool, tools};
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::json;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{DecodePem, EncodePem};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

fn timestamp_url(gateway: &Gateway) -> String {
    format!("{}/timestamp", gateway.api_url())
}

fn tsa_root(gateway: &Gateway) -> PathBuf {
    gateway.dir().join("tsa/root.pem")
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

/// POSTs a query file to the gateway's TSA; the HTTP status, content type and body.
fn post_query(gateway: &Gateway, query: &[u8], content_type: &str) -> (u16, String, Vec<u8>) {
    let response = gateway
        .https_client()
        .post(timestamp_url(gateway))
        .header("content-type", content_type)
        .body(query.to_vec())
        .send()
        .expect("POST /timestamp");
    let status = response.status().as_u16();
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, media_type, response.bytes().expect("body").to_vec())
}

#[test]
fn openssl_ts_verifies_tokens_and_reads_failure_replies() {
    let gateway = Gateway::start();
    let work = tempfile::tempdir().expect("work directory");
    std::fs::write(work.path().join("data"), b"a signature value to timestamp").expect("data");
    let root = tsa_root(&gateway).display().to_string();
    for hash in ["-sha256", "-sha384", "-sha512"] {
        let made = openssl(
            &["ts", "-query", "-data", "data", hash, "-cert", "-out", "q.tsq"],
            work.path(),
        );
        assert!(made.status.success(), "{}", tools::output_text(&made));
        let query = std::fs::read(work.path().join("q.tsq")).expect("query");
        let (status, media_type, reply) = post_query(&gateway, &query, "application/timestamp-query");
        assert_eq!(
            (status, media_type.as_str()),
            (200, "application/timestamp-reply")
        );
        std::fs::write(work.path().join("r.tsr"), reply).expect("reply");
        // -queryfile: the imprint, the nonce and the policy are checked against the query; -CAfile: the chain
        // from the token's certificate to the TSA root, with OpenSSL's TSA rules (critical timeStamping EKU).
        let verified = openssl(
            &[
                "ts",
                "-verify",
                "-queryfile",
                "q.tsq",
                "-in",
                "r.tsr",
                "-CAfile",
                &root,
            ],
            work.path(),
        );
        let text = tools::output_text(&verified);
        assert!(
            verified.status.success() && text.contains("Verification: OK"),
            "{hash}: {text}"
        );
    }

    // Refusals are timestamp replies with the failure bit OpenSSL names, or a problem document for a request that
    // is not a timestamp query at all.
    let made = openssl(
        &["ts", "-query", "-data", "data", "-sha1", "-out", "sha1.tsq"],
        work.path(),
    );
    assert!(made.status.success(), "{}", tools::output_text(&made));
    let query = std::fs::read(work.path().join("sha1.tsq")).expect("query");
    for (body, failure) in [
        (
            query.clone(),
            "Failure info: unrecognized or unsupported algorithm identifier",
        ),
        (
            b"not a query".to_vec(),
            "Failure info: the data submitted has the wrong format",
        ),
    ] {
        let (status, media_type, reply) = post_query(&gateway, &body, "application/timestamp-query");
        assert_eq!(
            (status, media_type.as_str()),
            (200, "application/timestamp-reply")
        );
        std::fs::write(work.path().join("refused.tsr"), reply).expect("reply");
        let read = openssl(&["ts", "-reply", "-in", "refused.tsr", "-text"], work.path());
        let text = tools::output_text(&read);
        assert!(
            text.contains("Status: Rejected.") && text.contains(failure),
            "{text}"
        );
    }
    let (status, media_type, _) = post_query(&gateway, &query, "application/octet-stream");
    assert_eq!((status, media_type.as_str()), (415, "application/problem+json"));

    // Every timestamp is audited: three granted (with the imprint and serial), two refused, one 415.
    let records: Vec<_> = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["route"] == "/timestamp")
        .collect();
    let outcomes: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default(),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("allowed", 200),
            ("allowed", 200),
            ("allowed", 200),
            ("refused", 200),
            ("refused", 200),
            ("refused", 415)
        ]
    );
    let granted = &records[1];
    assert_eq!(granted["hash_algorithm"], "Sha384");
    let metadata: serde_json::Value =
        serde_json::from_str(granted["metadata"].as_str().unwrap_or_default()).expect("metadata JSON");
    assert_eq!(metadata["timestamp"]["policy"], "1.2.3.4.1");
    assert_eq!(records[3]["error_type"], "BadAlg");
}

/// A signing certificate for the HSM key of `demo/ec-256` that expires `lifetime` from now, issued by a root the
/// test makes (as a site's own CA would): writes `short/leaf.pem` and `short/test-root.pem` into the setup and points
/// the policy at them.
fn short_lived_ec256(setup: &Path, lifetime: Duration) -> SystemTime {
    let existing = std::fs::read_to_string(setup.join("pki/ec-256.pem")).expect("init's ec-256 certificate");
    let hsm_key = Certificate::from_pem(existing.as_bytes())
        .expect("PEM certificate")
        .tbs_certificate
        .subject_public_key_info;
    let root_key = SigningKey::random(&mut rand_core::OsRng);
    let root_name = Name::from_str("CN=Short-lived Test Root,O=Test,ST=Vienna,C=AT").expect("name");
    let now = SystemTime::now();
    let not_after = now + lifetime;
    let validity = |until: SystemTime| Validity {
        not_before: Time::try_from(now - Duration::from_secs(3600)).expect("time"),
        not_after: Time::try_from(until).expect("time"),
    };
    let root = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        validity(now + Duration::from_secs(86_400)),
        root_name.clone(),
        SubjectPublicKeyInfoOwned::from_key(*root_key.verifying_key()).expect("SPKI"),
        &root_key,
    )
    .expect("root builder")
    .build::<DerSignature>()
    .expect("root");
    let leaf = CertificateBuilder::new(
        Profile::Leaf {
            issuer: root_name,
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        SerialNumber::from(2u32),
        validity(not_after),
        Name::from_str("CN=demo/ec-256 short-lived,O=Test,ST=Vienna,C=AT").expect("name"),
        hsm_key,
        &root_key,
    )
    .expect("leaf builder")
    .build::<DerSignature>()
    .expect("leaf");
    std::fs::create_dir_all(setup.join("short")).expect("short/");
    let pem = |c: &Certificate| c.to_pem(x509_cert::der::pem::LineEnding::LF).expect("PEM");
    std::fs::write(setup.join("short/leaf.pem"), pem(&leaf)).expect("leaf.pem");
    std::fs::write(setup.join("short/test-root.pem"), pem(&root)).expect("root.pem");
    let config_path = setup.join("gateway.toml");
    let mut config: toml::Value =
        toml::from_str(&std::fs::read_to_string(&config_path).expect("gateway.toml")).expect("TOML");
    let policies = config["projects"][0]["policies"]
        .as_array_mut()
        .expect("policies");
    let policy = policies
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some("ec-256"))
        .expect("ec-256");
    policy["certificate_chain"] =
        toml::Value::Array(vec!["short/leaf.pem".into(), "short/test-root.pem".into()]);
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("gateway.toml");
    not_after
}

/// Trusts the `signing` and `gateway-tsa` stores for `local/app`, strict, with `verifyTimestamp` as given (None:
/// notation's default, `always`).
/// Trusts the signing roots, and with `verify_timestamp` the gateway's TSA too (notation then requires a timestamp
/// on every signature the policy covers).
fn trust(notation: &Notation, verify_timestamp: Option<Option<&str>>) {
    let mut verification = json!({"level": "strict"});
    if let Some(Some(when)) = verify_timestamp {
        verification["verifyTimestamp"] = json!(when);
    }
    let stores = match verify_timestamp {
        Some(_) => json!(["ca:signing", "tsa:gateway-tsa"]),
        None => json!(["ca:signing"]),
    };
    let policy = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "local",
            "registryScopes": ["local/app"],
            "signatureVerification": verification,
            "trustStores": stores,
            "trustedIdentities": ["*"],
        }],
    });
    let file = notation.path("trustpolicy.json");
    std::fs::write(&file, policy.to_string()).expect("trust policy");
    notation.ok(&["policy", "import", "--force", &file.display().to_string()]);
}

#[test]
fn notation_timestamps_outlive_the_signing_certificate() {
    let notation_bin = require_tool!("notation");
    let lifetime = Duration::from_secs(20);
    let mut not_after = SystemTime::now();
    let gateway = Gateway::start_with(|setup| not_after = short_lived_ec256(setup, lifetime));
    let mut settings = gateway.env_vars();
    settings.push(("SSL_CERT_FILE".into(), gateway.tls_ca().display().to_string()));
    settings.push(("NOTATION_EXPERIMENTAL".into(), "1".into()));
    let notation = Notation::with_plugin(&notation_bin, settings);
    let short_root = gateway.dir().join("short/test-root.pem").display().to_string();
    let tsa_root = tsa_root(&gateway).display().to_string();
    notation.ok(&["cert", "add", "--type", "ca", "--store", "signing", &short_root]);
    notation.ok(&[
        "cert",
        "add",
        "--type",
        "ca",
        "--store",
        "signing",
        &gateway.root_ca_pem().display().to_string(),
    ]);
    notation.ok(&[
        "cert",
        "add",
        "--type",
        "tsa",
        "--store",
        "gateway-tsa",
        &tsa_root,
    ]);

    let layout = |name: &str| {
        let dir = notation.path(name);
        let digest = registry::write_oci_layout(&dir, "v1");
        format!("{}@{digest}", dir.display())
    };
    let url = timestamp_url(&gateway);
    let sign = |reference: &str, policy: &str, timestamped: bool| {
        let mut args = vec!["sign", "--oci-layout", "--plugin", "signpath", "--id", policy];
        if timestamped {
            args.extend(["--timestamp-url", &url, "--timestamp-root-cert", &tsa_root]);
        }
        args.push(reference);
        let out = notation.ok(&args);
        assert!(out.contains("Successfully signed"), "{out}");
    };
    let verify =
        |reference: &str| notation.run(&["verify", "-v", "--oci-layout", "--scope", "local/app", reference]);

    // A certificate that stays valid: EC-384 (the TSA answers a SHA-384 imprint), verified with the TSA root.
    let lasting = layout("lasting");
    sign(&lasting, "demo/ec-384", true);
    trust(&notation, Some(None));
    let verified = verify(&lasting);
    assert!(verified.status.success(), "{}", tools::output_text(&verified));

    let stamped = layout("stamped");
    sign(&stamped, "demo/ec-256", true);
    let unstamped = layout("unstamped");
    sign(&unstamped, "demo/ec-256", false);
    // Without the TSA in the trust policy: notation requires a timestamp on every signature a policy with a `tsa`
    // store covers.
    trust(&notation, None);
    let before = verify(&unstamped);
    assert!(
        SystemTime::now() < not_after,
        "signing took longer than the certificate's {lifetime:?}"
    );
    assert!(
        before.status.success(),
        "without a timestamp, valid while the certificate is:\n{}",
        tools::output_text(&before)
    );
    // Wait out the signing certificate (x509 times have whole seconds).
    if let Ok(left) = not_after.duration_since(SystemTime::now()) {
        std::thread::sleep(left + Duration::from_secs(2));
    }
    for verify_timestamp in [None, Some("afterCertExpiry")] {
        trust(&notation, Some(verify_timestamp));
        let kept = verify(&stamped);
        assert!(
            kept.status.success(),
            "{verify_timestamp:?}: the timestamped signature must outlive its certificate:\n{}",
            tools::output_text(&kept)
        );
    }
    // Without a timestamp, nothing vouches for when it was signed: it dies with its certificate.
    trust(&notation, None);
    let expired = verify(&unstamped);
    assert!(
        !expired.status.success(),
        "an unstamped signature must not outlive its certificate"
    );
    assert!(
        tools::output_text(&expired).contains("expired"),
        "{}",
        tools::output_text(&expired)
    );
}

#[test]
fn cosign_verifies_signed_timestamps_from_the_gateway() {
    let cosign_bin = require_tool!("cosign");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let cosign = Cosign::new(cosign_bin, &gateway);
    let image = registry.push_small_image("demo/stamped", "v1");
    let key = cosign.key_uri("ec-256");
    let ssl = ("SSL_CERT_FILE", gateway.tls_ca());
    cosign.run(
        cosign
            .command()
            .env(ssl.0, &ssl.1)
            .args(["sign", "--yes", "--tlog-upload=false", "--allow-http-registry"])
            .args(["--timestamp-server-url", &timestamp_url(&gateway)])
            .args(["--key", &key, &image.reference]),
    );
    let public_key = cosign.public_key("ec-256");
    let work = tempfile::tempdir().expect("work directory");
    let key_file = work.path().join("cosign.pub");
    std::fs::write(&key_file, public_key).expect("public key");
    let verify = |chain: &Path| {
        let mut command = cosign.command();
        command
            .args(["verify", "--insecure-ignore-tlog=true", "--allow-http-registry"])
            .args(["--use-signed-timestamps", "--timestamp-certificate-chain"])
            .arg(chain)
            .arg("--key")
            .arg(&key_file)
            .arg(&image.reference);
        command.output().expect("run cosign")
    };
    let verified = verify(&gateway.dir().join("tsa/chain.pem"));
    assert!(verified.status.success(), "{}", tools::output_text(&verified));
    // The timestamp is really checked: the signing PKI's root is not the TSA's.
    let refused = verify(&gateway.root_ca_pem());
    assert!(!refused.status.success(), "{}", tools::output_text(&refused));
}
