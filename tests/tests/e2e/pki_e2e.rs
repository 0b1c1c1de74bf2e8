//! The key and certificate lifecycle with tools we did not write: a policy whose key the gateway creates in the
//! HSM and whose certificate an openssl CA issues from the gateway's CSR (notation and cosign sign with it and
//! verify), rotation without a restart, `init`'s CA keys in the HSM, and revocation through the CRLs the gateway
//! publishes, as openssl and notation check them.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use e2e_tests::cosign::Cosign;
use e2e_tests::crl::{crl_url, fetch_crl};
use e2e_tests::gateway::Gateway;
use e2e_tests::notation::Notation;
use e2e_tests::{registry, require_tool, tools};
use serde_json::{json, Value};

fn gateway_cmd(gateway: &Gateway, args: &[&str]) -> Output {
    Command::new(Gateway::binary())
        .args(args)
        .arg("--config")
        .arg(gateway.config())
        .output()
        .unwrap()
}

fn gateway_ok(gateway: &Gateway, args: &[&str]) -> String {
    let out = gateway_cmd(gateway, args);
    assert!(out.status.success(), "{args:?}: {}", tools::output_text(&out));
    tools::output_text(&out)
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        tools::output_text(&out)
    );
    tools::output_text(&out)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The leaf certificate (base64 DER) the running gateway hands out for `project/slug`.
fn certificate_in_force(gateway: &Gateway, project: &str, slug: &str) -> Option<String> {
    let answer: Value = gateway
        .https_client()
        .get(format!("{}/Cryptoki/MySigningPolicies", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .send()
        .ok()?
        .json()
        .ok()?;
    answer["signingPolicies"]
        .as_array()?
        .iter()
        .find(|p| p["projectSlug"] == project && p["signingPolicySlug"] == slug)
        .and_then(|p| p["certificateBytes"].as_str().map(str::to_owned))
}

/// Waits until the running gateway hands out a certificate for the policy other than `old` (it reloads
/// gateway.toml within a second of a change).
fn wait_for_new_certificate(gateway: &Gateway, project: &str, slug: &str, old: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = certificate_in_force(gateway, project, slug);
        if let Some(cert) = now.filter(|c| Some(c.as_str()) != old) {
            return cert;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not put the new certificate in force"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An OCI layout with one image in `notation`'s directory; its digest reference.
fn layout(notation: &Notation, name: &str) -> String {
    let layout = notation.path(name);
    let digest = registry::write_oci_layout(&layout, "v1");
    format!("{}@{digest}", layout.display())
}

fn sign(notation: &Notation, reference: &str, policy: &str) -> Output {
    notation_run(
        notation,
        &[
            "sign",
            "--oci-layout",
            "--plugin",
            "signpath",
            "--id",
            policy,
            reference,
        ],
    )
}

/// An OCI layout with one image, signed by notation with `policy` (`Project/Policy`); the reference.
fn sign_layout(notation: &Notation, name: &str, policy: &str) -> String {
    let reference = layout(notation, name);
    let out = sign(notation, &reference, policy);
    assert!(
        out.status.success(),
        "sign: {}\n{}",
        tools::output_text(&out),
        notation.plugin_log()
    );
    reference
}

fn notation_run(notation: &Notation, args: &[&str]) -> Output {
    notation.run(args)
}

fn verify_layout(notation: &Notation, reference: &str) -> Output {
    notation_run(
        notation,
        &["verify", "--oci-layout", "--scope", "local/app", reference],
    )
}

// ---------------------------------------------------------------------------------------------------------------
// 1. An organization's own CA

/// A CA run with openssl only: a self-signed P-384 root.
struct OpensslCa {
    dir: PathBuf,
}

impl OpensslCa {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        openssl_ok(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            &p(&dir.join("root.key")),
            "-out",
            &p(&dir.join("root.pem")),
            "-days",
            "30",
            "-subj",
            "/C=AT/O=Acme/CN=Acme Code Signing Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Issues a certificate for `csr` with the given extensions; the chain file (leaf, root).
    fn issue(&self, csr: &Path, name: &str, extensions: &str) -> PathBuf {
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext, extensions).unwrap();
        let leaf = self.dir.join(format!("{name}.pem"));
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            &p(csr),
            "-CA",
            &p(&self.dir.join("root.pem")),
            "-CAkey",
            &p(&self.dir.join("root.key")),
            "-days",
            "10",
            "-sha384",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&leaf),
        ]);
        let chain = self.dir.join(format!("{name}-chain.pem"));
        let text = std::fs::read_to_string(&leaf).unwrap()
            + &std::fs::read_to_string(self.dir.join("root.pem")).unwrap();
        std::fs::write(&chain, text).unwrap();
        chain
    }
}

const NOTARY_LEAF: &str =
    "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nbasicConstraints=CA:FALSE\n";

#[test]
fn a_policy_certified_by_an_openssl_ca_signs_for_notation_and_cosign() {
    let notation_bin = require_tool!("notation");
    let cosign_bin = require_tool!("cosign");
    let gateway = Gateway::start();
    let work = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(&work.path().join("ca"));
    gateway_ok(
        &gateway,
        &[
            "policy",
            "add",
            "--project",
            "acme",
            "--slug",
            "release",
            "--key-spec",
            "EC-256",
            "--submitter",
            "demo",
        ],
    );
    let csr = work.path().join("release.csr");
    gateway_ok(
        &gateway,
        &[
            "policy",
            "csr",
            "--project",
            "acme",
            "--slug",
            "release",
            "--subject",
            "CN=acme/release,O=Acme,C=AT",
            "--out",
            &p(&csr),
        ],
    );
    // openssl checks the request's self-signature and reads what it asks for.
    let text = openssl_ok(&["req", "-in", &p(&csr), "-verify", "-noout", "-text"]);
    assert!(
        text.contains("verify OK") || text.contains("Certificate request self-signature verify OK"),
        "{text}"
    );
    assert!(text.contains("Code Signing"), "{text}");

    // A certificate without codeSigning, and one for another policy's key, are refused with the reason.
    let wrong = ca.issue(
        &csr,
        "server",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let refused = gateway_cmd(
        &gateway,
        &[
            "policy",
            "certificate",
            "import",
            "--project",
            "acme",
            "--slug",
            "release",
            "--chain",
            &p(&wrong),
        ],
    );
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!("signpath-gateway: {} cannot be put in force for acme/release: the certificate's extended key usage lacks codeSigning (1.3.6.1.5.5.7.3.3), which Notary requires of a signing certificate\n", wrong.display())
    );
    // One that may also authenticate TLS clients and sign OCSP answers: every submitter could, through SignHash.
    let broad = ca.issue(
        &csr,
        "broad",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,clientAuth,OCSPSigning\n",
    );
    let refused = gateway_cmd(
        &gateway,
        &[
            "policy",
            "certificate",
            "import",
            "--project",
            "acme",
            "--slug",
            "release",
            "--chain",
            &p(&broad),
        ],
    );
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!("signpath-gateway: {} cannot be put in force for acme/release: the certificate's extended key usage allows clientAuth (1.3.6.1.5.5.7.3.2), OCSPSigning (1.3.6.1.5.5.7.3.9) beside codeSigning; the policy's key signs any digest a submitter sends, so ask the CA for a certificate whose extended key usage is codeSigning only\n", broad.display())
    );
    let other_key = gateway.dir().join("pki/ec-256.pem");
    let refused = gateway_cmd(
        &gateway,
        &[
            "policy",
            "certificate",
            "import",
            "--project",
            "acme",
            "--slug",
            "release",
            "--chain",
            &p(&other_key),
        ],
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("the certificate's public key is not the policy's key in the HSM"),
        "{}",
        tools::output_text(&refused)
    );
    assert!(certificate_in_force(&gateway, "acme", "release").is_none());

    let chain = ca.issue(&csr, "release", NOTARY_LEAF);
    gateway_ok(
        &gateway,
        &[
            "policy",
            "certificate",
            "import",
            "--project",
            "acme",
            "--slug",
            "release",
            "--chain",
            &p(&chain),
        ],
    );
    wait_for_new_certificate(&gateway, "acme", "release", None);

    let notation =
        Notation::with_plugin(&notation_bin, gateway.env_vars()).with_env("NOTATION_EXPERIMENTAL", "1");
    notation.trust(&ca.dir.join("root.pem"));
    let reference = sign_layout(&notation, "app", "acme/release");
    let verified = verify_layout(&notation, &reference);
    assert!(verified.status.success(), "{}", tools::output_text(&verified));

    // cosign signs a blob through the PKCS#11 module with the same key; it verifies with the public key of the
    // certificate the openssl CA issued.
    let cosign = Cosign::new(cosign_bin, &gateway);
    let blob = work.path().join("blob.txt");
    std::fs::write(&blob, "release artifact\n").unwrap();
    let key = format!(
        "pkcs11:token=SignPath;object=acme%2Frelease?module-path={}&pin-value=CONFIG",
        tools::release_artifact("libsignpath_pkcs11.so").display()
    );
    let signature = work.path().join("blob.sig");
    cosign.run(cosign.command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        &key,
        "--output-signature",
        &p(&signature),
        &p(&blob),
    ]));
    let public = work.path().join("release.pub");
    std::fs::write(
        &public,
        openssl_ok(&[
            "x509",
            "-in",
            &p(&ca.dir.join("release.pem")),
            "-pubkey",
            "-noout",
        ]),
    )
    .unwrap();
    cosign.run(cosign.command().args([
        "verify-blob",
        "--insecure-ignore-tlog",
        "--key",
        &p(&public),
        "--signature",
        &p(&signature),
        &p(&blob),
    ]));
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Rotation

#[test]
fn rotation_puts_a_new_key_in_force_without_a_restart_or_a_failed_sign_and_earlier_signatures_still_verify() {
    let notation_bin = require_tool!("notation");
    let gateway = Gateway::start();
    let notation =
        Notation::with_plugin(&notation_bin, gateway.env_vars()).with_env("NOTATION_EXPERIMENTAL", "1");
    notation.trust(&gateway.root_ca_pem());
    let before = sign_layout(&notation, "before", "demo/ec-384");
    let old = certificate_in_force(&gateway, "demo", "ec-384").unwrap();

    let rotated = gateway_ok(
        &gateway,
        &["policy", "rotate", "--project", "demo", "--slug", "ec-384"],
    );
    assert!(rotated.contains("demo/ec-384 now signs with key"), "{rotated}");
    let new = wait_for_new_certificate(&gateway, "demo", "ec-384", Some(&old));
    let public_key = |b64: &str| {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let path = notation.path("cert.der");
        std::fs::write(&path, der).unwrap();
        openssl_ok(&["x509", "-inform", "DER", "-in", &p(&path), "-pubkey", "-noout"])
    };
    assert_ne!(
        public_key(&old),
        public_key(&new),
        "rotation must change the key, not only the certificate"
    );

    // The plugin notices the new key on its first use (its cached key no longer verifies the gateway's signature),
    // fetches the policy again and signs once more: the first notation sign after the rotation succeeds, so a CI
    // job does not fail after every rotation.
    let after = layout(&notation, "after");
    let signed = sign(&notation, &after, "demo/ec-384");
    assert!(signed.status.success(), "{}", tools::output_text(&signed));
    for reference in [&before, &after] {
        let verified = verify_layout(&notation, reference);
        assert!(
            verified.status.success(),
            "{reference}: {}",
            tools::output_text(&verified)
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 3 and 4. The demo PKI's keys in the HSM, and revocation through its CRLs

/// Every file under `dir` (the SoftHSM2 token directory is the HSM itself, not a file to read keys from).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("softhsm") {
                files_under(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn a_revoked_signing_certificate_fails_strict_verification_and_only_warns_under_log() {
    let notation_bin = require_tool!("notation");
    let gateway = Gateway::start();
    let dir = gateway.dir();
    let (root, intermediate, leaf) = (
        dir.join("ca/root.pem"),
        dir.join("ca/intermediate.pem"),
        dir.join("pki/ec-256.pem"),
    );

    // 3. No private key in a file but the TLS server's: the CA keys are in the HSM, and what they sign verifies.
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let with_keys: Vec<_> = files
        .iter()
        .filter(|f| std::fs::read(f).is_ok_and(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY")))
        .map(|f| f.strip_prefix(&dir).unwrap().to_path_buf())
        .collect();
    assert_eq!(with_keys, vec![PathBuf::from("tls/server.key")]);
    openssl_ok(&[
        "verify",
        "-CAfile",
        &p(&root),
        "-untrusted",
        &p(&intermediate),
        &p(&leaf),
    ]);

    // 4. The leaf names the intermediate's CRL over http; the gateway serves it, signed by the intermediate.
    let crl_url = crl_url(&gateway, "intermediate");
    assert!(crl_url.starts_with("http://127.0.0.1:"), "{crl_url}");
    let text = openssl_ok(&["x509", "-in", &p(&leaf), "-noout", "-text"]);
    assert!(text.contains(&format!("URI:{crl_url}")), "{text}");
    let work = tempfile::tempdir().unwrap();
    let crl = work.path().join("before.pem");
    fetch_crl(&crl_url, &crl);
    let checked = openssl_ok(&[
        "crl",
        "-in",
        &p(&crl),
        "-CAfile",
        &p(&intermediate),
        "-noout",
        "-text",
    ]);
    assert!(checked.contains("verify OK"), "{checked}");
    assert!(checked.contains("Next Update"), "{checked}");
    assert!(checked.contains("No Revoked Certificates"), "{checked}");
    let crl_check = |crl: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &p(&root),
            "-untrusted",
            &p(&intermediate),
            "-CRLfile",
            &p(crl),
            &p(&leaf),
        ])
    };
    assert!(
        crl_check(&crl).status.success(),
        "{}",
        tools::output_text(&crl_check(&crl))
    );

    let notation =
        Notation::with_plugin(&notation_bin, gateway.env_vars()).with_env("NOTATION_EXPERIMENTAL", "1");
    notation.trust(&root);
    let reference = sign_layout(&notation, "app", "demo/ec-256");
    let verified = verify_layout(&notation, &reference);
    assert!(verified.status.success(), "{}", tools::output_text(&verified));

    let revoked = gateway_ok(
        &gateway,
        &["revoke", "--policy", "demo/ec-256", "--reason", "key-compromise"],
    );
    assert!(
        revoked.contains("it is on the next CRL of CA intermediate"),
        "{revoked}"
    );
    let crl = work.path().join("after.pem");
    fetch_crl(&crl_url, &crl);
    let listed = openssl_ok(&[
        "crl",
        "-in",
        &p(&crl),
        "-CAfile",
        &p(&intermediate),
        "-noout",
        "-text",
    ]);
    assert!(
        listed.contains("verify OK") && listed.contains("Key Compromise"),
        "{listed}"
    );
    let refused = crl_check(&crl);
    assert!(!refused.status.success());
    assert!(
        tools::output_text(&refused).contains("certificate revoked"),
        "{}",
        tools::output_text(&refused)
    );

    // notation caches a CRL until its nextUpdate: a verifier that has not seen it yet (an empty cache) learns of
    // the revocation at once.
    // (NOTATION_CACHE is the fixture's `cache` directory; notation keeps CRLs in its `crl` folder.)
    std::fs::remove_dir_all(notation.path("cache").join("crl")).unwrap();
    let refused = notation_run(
        &notation,
        &[
            "verify",
            "--debug",
            "--oci-layout",
            "--scope",
            "local/app",
            &reference,
        ],
    );
    assert!(!refused.status.success(), "{}", tools::output_text(&refused));
    assert!(
        tools::output_text(&refused).contains("revoked"),
        "{}",
        tools::output_text(&refused)
    );

    let policy = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "signpath",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict", "override": {"revocation": "log"}},
            "trustStores": ["ca:signpath"],
            "trustedIdentities": ["*"],
        }],
    });
    let file = notation.path("trustpolicy-log.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    notation.ok(&["policy", "import", "--force", &p(&file)]);
    let warned = verify_layout(&notation, &reference);
    assert!(warned.status.success(), "{}", tools::output_text(&warned));
}
