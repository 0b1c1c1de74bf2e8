//! Our signatures checked by verifiers we did not write, each also shown to refuse a wrong key and an altered
//! payload (docs/verifiers.md says what each one proves):
//!
//! - Notary COSE envelopes by pycose and JWS envelopes by jwcrypto (`tests/python/verify_notary_envelope.py`,
//!   pinned in `scripts/tools/verifiers/requirements.txt`), and the envelope's certificate chain by
//!   `openssl verify` against the gateway's root;
//! - cosign's simple-signing payload and signature by `openssl dgst` alone;
//! - Ratify (a pinned source build) on a notation signature and an EC cosign signature in the registry, judged by
//!   `isSuccess` in its JSON report (it exits 0 when verification fails).
//!
//! The cosign signatures of the same images are verified by sigstore-rs in `tests/sigstore-verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use e2e_tests::cosign::{Cosign, StoredSignature, PROJECT};
use e2e_tests::gateway::Gateway;
use e2e_tests::notation::Notation;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::{require_tool, tools};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

/// Runs a command and returns its output; the test fails when it could not start.
fn run(command: &mut Command) -> std::process::Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// `openssl verify` of a chain (leaf first, root last) against `root_pem`; its output and whether it said OK.
fn openssl_verify_chain(dir: &Path, chain: &[Vec<u8>], root_pem: &Path) -> (bool, String) {
    let leaf = dir.join("leaf.pem");
    let intermediates = dir.join("intermediates.pem");
    std::fs::write(&leaf, pem("CERTIFICATE", &chain[0])).expect("leaf");
    let middle: String = chain[1..chain.len() - 1]
        .iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect();
    std::fs::write(&intermediates, middle).expect("intermediates");
    let output = run(Command::new(tools::tool("openssl"))
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root_pem)
        .arg("-untrusted")
        .arg(&intermediates)
        .arg(&leaf));
    let text = tools::output_text(&output);
    (output.status.success() && text.contains(": OK"), text)
}

/// A self-signed CA that has nothing to do with the gateway: the wrong root for the chain checks.
fn unrelated_root(dir: &Path) -> PathBuf {
    let root = dir.join("unrelated-root.pem");
    let output = run(Command::new(tools::tool("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=Unrelated Root", "-keyout"])
        .arg(dir.join("unrelated-root.key"))
        .arg("-out")
        .arg(&root));
    assert!(output.status.success(), "{}", tools::output_text(&output));
    root
}

// ---------------------------------------------------------------------------------------------------------------
// notation with our plugin (the shared fixture), and the envelopes it stores

/// `notation sign` of `image` with a policy's key, in `format` (`cose` or `jws`).
fn notation_sign(notation: &Notation, policy: &str, format: &str, image: &ImageRef) {
    let key_id = format!("{PROJECT}/{policy}");
    notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        &key_id,
        "--signature-format",
        format,
        &image.reference,
    ]);
}

/// The one notation signature envelope the registry holds for `image` (the layer of the signature manifest in
/// the referrers index), and its media type.
fn notary_envelope(registry: &Registry, image: &ImageRef) -> (String, Vec<u8>) {
    let repo = image.repository.split_once('/').expect("host/repo").1;
    let referrers: Vec<Value> = registry
        .referrers_by_tag(repo, &image.digest)
        .into_iter()
        .filter(|d| d["artifactType"] == NOTARY_SIGNATURE)
        .collect();
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    let digest = referrers[0]["digest"].as_str().expect("digest");
    let manifest = registry.manifest(repo, digest).expect("the signature manifest");
    let manifest: Value = serde_json::from_slice(&manifest.body).expect("manifest JSON");
    let layer = &manifest["layers"][0];
    let envelope = registry
        .blob(repo, layer["digest"].as_str().expect("layer digest"))
        .expect("the envelope blob");
    (
        layer["mediaType"].as_str().unwrap_or_default().to_owned(),
        envelope,
    )
}

/// What the pinned pycose/jwcrypto script says about an envelope, run by `python` (the virtual environment's
/// interpreter that scripts/install-deps links as `envelope-verifier-python`).
fn python_verify(python: &Path, dir: &Path, format: &str, envelope: &[u8], leaf: Option<&[u8]>) -> Value {
    let file = dir.join(format!("envelope.{format}"));
    std::fs::write(&file, envelope).expect("envelope file");
    let mut command = Command::new(python);
    command
        .arg(tools::workspace_root().join("tests/python/verify_notary_envelope.py"))
        .arg(format)
        .arg(&file);
    if let Some(leaf) = leaf {
        let path = dir.join("other-leaf.der");
        std::fs::write(&path, leaf).expect("leaf file");
        command.arg("--leaf").arg(path);
    }
    let output = run(&mut command);
    assert!(output.status.success(), "{}", tools::output_text(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", tools::output_text(&output)))
}

fn chain_of(result: &Value) -> Vec<Vec<u8>> {
    result["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| BASE64.decode(c.as_str().expect("base64")).expect("base64"))
        .collect()
}

/// The same envelope with one hex digit of the image digest in its payload changed: still well formed, no
/// longer what was signed. JWS carries the payload base64url-encoded, so it is re-encoded there.
fn altered(format: &str, envelope: &[u8], digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let flipped = format!("{}{}", if hex.starts_with('0') { '1' } else { '0' }, &hex[1..]);
    match format {
        "cose" => {
            let text = envelope
                .windows(hex.len())
                .position(|w| w == hex.as_bytes())
                .expect("the digest in the COSE payload");
            let mut out = envelope.to_vec();
            out[text..text + hex.len()].copy_from_slice(flipped.as_bytes());
            out
        }
        _ => {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut document: Value = serde_json::from_slice(envelope).expect("JWS JSON");
            let payload = URL_SAFE_NO_PAD
                .decode(document["payload"].as_str().expect("payload"))
                .expect("base64url payload");
            let payload = String::from_utf8(payload).expect("UTF-8").replace(hex, &flipped);
            document["payload"] = URL_SAFE_NO_PAD.encode(payload).into();
            serde_json::to_vec(&document).expect("JSON")
        }
    }
}

#[test]
fn notary_cose_and_jws_envelopes_verify_with_pycose_jwcrypto_and_openssl() {
    let notation_bin = require_tool!("notation");
    let python = require_tool!("envelope-verifier-python");
    require_tool!("openssl");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::with_plugin(&notation_bin, gateway.env_vars());
    let work = tempfile::tempdir().expect("work directory");
    let wrong_root = unrelated_root(work.path());
    let mut leaves = Vec::new();

    for policy in ["ec-256", "rsa-2048"] {
        for (format, media_type) in [("cose", "application/cose"), ("jws", "application/jose+json")] {
            let case = format!("{policy} {format}");
            let image =
                registry.push_image("demo/verifiers", "v1", &SmallImage::with_content(case.as_bytes()));
            notation_sign(&notation, policy, format, &image);
            let (stored_type, envelope) = notary_envelope(&registry, &image);
            assert_eq!(stored_type, media_type, "{case}");

            let result = python_verify(&python, work.path(), format, &envelope, None);
            assert_eq!(result["verified"], true, "{case}: {result}");
            assert_eq!(
                result["payload"]["targetArtifact"]["digest"],
                image.digest.as_str(),
                "{case}"
            );
            let chain = chain_of(&result);
            assert_eq!(chain.len(), 3, "{case}: leaf, intermediate, root");
            let (ok, text) = openssl_verify_chain(work.path(), &chain, &gateway.root_ca_pem());
            assert!(
                ok,
                "{case}: the chain does not lead to the gateway's root:\n{text}"
            );
            let (ok, text) = openssl_verify_chain(work.path(), &chain, &wrong_root);
            assert!(
                !ok,
                "{case}: the chain verified against an unrelated root:\n{text}"
            );

            let tampered = python_verify(
                &python,
                work.path(),
                format,
                &altered(format, &envelope, &image.digest),
                None,
            );
            assert_eq!(
                tampered["verified"], false,
                "{case}: an altered payload verified: {tampered}"
            );
            leaves.push((case, format, envelope, chain[0].clone()));
        }
    }

    // Wrong key: each envelope checked with the leaf certificate of the other policy (same format).
    for (case, format, envelope, _) in &leaves {
        let (_, _, _, other_leaf) = leaves
            .iter()
            .find(|(other, f, _, _)| f == format && other != case)
            .expect("the other policy's envelope");
        let result = python_verify(&python, work.path(), format, envelope, Some(other_leaf));
        assert_eq!(
            result["verified"], false,
            "{case}: verified with another key: {result}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// cosign simple signing, with openssl alone

/// `openssl dgst -sha256 -verify KEY -signature SIG PAYLOAD`: whether openssl said "Verified OK".
fn openssl_dgst_verifies(dir: &Path, public_key_pem: &str, signature: &[u8], payload: &[u8]) -> bool {
    let (key, sig, data) = (
        dir.join("key.pem"),
        dir.join("payload.sig"),
        dir.join("payload.json"),
    );
    std::fs::write(&key, public_key_pem).expect("key");
    std::fs::write(&sig, signature).expect("signature");
    std::fs::write(&data, payload).expect("payload");
    let output = run(Command::new(tools::tool("openssl"))
        .args(["dgst", "-sha256", "-verify"])
        .arg(&key)
        .arg("-signature")
        .arg(&sig)
        .arg(&data));
    let text = tools::output_text(&output);
    assert!(
        text.contains("Verified OK") || text.contains("Verification failure"),
        "openssl did not judge the signature: {text}"
    );
    output.status.success() && text.contains("Verified OK")
}

#[test]
fn cosign_simple_signing_payloads_verify_with_openssl_alone() {
    let cosign_bin = require_tool!("cosign");
    require_tool!("openssl");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let cosign = Cosign::new(cosign_bin, &gateway);
    let work = tempfile::tempdir().expect("work directory");

    let mut signed = Vec::new();
    for policy in ["ec-256", "rsa-2048"] {
        let image = registry.push_image(
            "demo/openssl",
            policy,
            &SmallImage::with_content(policy.as_bytes()),
        );
        cosign.sign(policy, &image.reference);
        let stored = StoredSignature::read(&registry, &image);
        let payload: Value = serde_json::from_slice(&stored.payload).expect("simple signing JSON");
        assert_eq!(payload["critical"]["type"], "cosign container image signature");
        assert_eq!(
            payload["critical"]["image"]["docker-manifest-digest"],
            image.digest.as_str()
        );
        let signature = BASE64.decode(&stored.signature_base64).expect("base64 signature");
        let public_key = cosign.public_key(policy);
        assert!(
            openssl_dgst_verifies(work.path(), &public_key, &signature, &stored.payload),
            "{policy}: openssl refuses cosign's signature"
        );
        let mut tampered = stored.payload.clone();
        let at = tampered.iter().position(|b| *b == b'{').expect("JSON") + 1;
        tampered.insert(at, b' ');
        assert!(
            !openssl_dgst_verifies(work.path(), &public_key, &signature, &tampered),
            "{policy}: an altered payload verified"
        );
        signed.push((policy, stored.payload, signature, public_key));
    }
    let (policy, payload, signature, _) = &signed[0];
    let (other, _, _, other_key) = &signed[1];
    assert!(
        !openssl_dgst_verifies(work.path(), other_key, signature, payload),
        "{policy}'s signature verified with {other}'s key"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Ratify

/// `ratify verify` of `image` with a configuration that trusts the gateway's root (notation) and `cosign_key`
/// (cosign, EC only: Ratify refuses RSA cosign keys); its JSON report.
fn ratify_report(ratify: &Path, work: &Path, image: &ImageRef, root_pem: &Path, cosign_key: &Path) -> Value {
    let config = json!({
        "store": {"version": "1.0.0", "plugins": [{"name": "oras", "cosignEnabled": true, "useHttp": true}]},
        "policy": {"version": "1.0.0", "plugin": {"name": "configPolicy"}},
        "verifier": {"version": "1.0.0", "plugins": [
            {"name": "cosign", "artifactTypes": "application/vnd.dev.cosign.artifact.sig.v1+json",
             "key": cosign_key},
            {"name": "notation", "artifactTypes": NOTARY_SIGNATURE, "verificationCerts": [root_pem],
             "trustPolicyDoc": {"version": "1.0", "trustPolicies": [{
                "name": "signpath", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}}
        ]}
    });
    let config_file = work.join("ratify.json");
    std::fs::write(&config_file, config.to_string()).expect("ratify config");
    let output = run(Command::new(ratify)
        .env_clear()
        .env("HOME", work)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["verify", "--config"])
        .arg(&config_file)
        .args(["--subject", &image.reference]));
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from ratify: {}", tools::output_text(&output)));
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("{e}: {}", tools::output_text(&output)))
}

/// The verifier reports of one verifier (`notation` or `cosign`) in a Ratify report.
fn reports<'a>(report: &'a Value, verifier: &str) -> Vec<&'a Value> {
    report["verifierReports"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|r| r["verifierName"] == verifier || r["name"] == verifier)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ratify_verifies_a_notation_and_an_ec_cosign_signature_by_its_json_report() {
    let ratify = require_tool!("ratify");
    let notation_bin = require_tool!("notation");
    let cosign_bin = require_tool!("cosign");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let notation = Notation::with_plugin(&notation_bin, gateway.env_vars());
    let cosign = Cosign::new(cosign_bin, &gateway);
    let work = tempfile::tempdir().expect("work directory");
    let ec_key = work.path().join("ec.pub");
    std::fs::write(&ec_key, cosign.public_key("ec-256")).expect("cosign key");
    let wrong_key = work.path().join("wrong.pub");
    let wrong_root = unrelated_root(work.path());

    let image = registry.push_image("demo/ratify", "v1", &SmallImage::with_content(b"ratify"));
    notation_sign(&notation, "ec-256", "jws", &image);
    cosign.sign("ec-256", &image.reference);

    let report = ratify_report(&ratify, work.path(), &image, &gateway.root_ca_pem(), &ec_key);
    assert_eq!(report["isSuccess"], true, "{report:#}");
    for verifier in ["notation", "cosign"] {
        let found = reports(&report, verifier);
        assert!(
            !found.is_empty() && found.iter().all(|r| r["isSuccess"] == true),
            "{verifier}: {report:#}"
        );
    }

    // Wrong key and wrong root: the other EC key (a fresh P-256 key) and an unrelated CA.
    let output = run(Command::new(tools::tool("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=wrong", "-keyout"])
        .arg(work.path().join("wrong.key"))
        .arg("-out")
        .arg(work.path().join("wrong.crt")));
    assert!(output.status.success(), "{}", tools::output_text(&output));
    let output = run(Command::new(tools::tool("openssl"))
        .args(["pkey", "-pubout", "-in"])
        .arg(work.path().join("wrong.key"))
        .arg("-out")
        .arg(&wrong_key));
    assert!(output.status.success(), "{}", tools::output_text(&output));
    let report = ratify_report(&ratify, work.path(), &image, &wrong_root, &wrong_key);
    assert_ne!(report["isSuccess"], true, "{report:#}"); // Ratify leaves `isSuccess` out when it is false
    for verifier in ["notation", "cosign"] {
        let found = reports(&report, verifier);
        assert!(
            !found.is_empty() && found.iter().all(|r| r["isSuccess"] == false),
            "{verifier} accepted a wrong key: {report:#}"
        );
    }

    // Altered payload: the cosign payload changed in the registry under the same signature.
    let stored = StoredSignature::read(&registry, &image);
    let mut payload: Value = serde_json::from_slice(&stored.payload).expect("simple signing JSON");
    payload["optional"] = json!({"tampered": "yes"});
    stored.push_with_payload(&registry, serde_json::to_vec(&payload).expect("JSON"));
    let report = ratify_report(&ratify, work.path(), &image, &gateway.root_ca_pem(), &ec_key);
    assert_ne!(report["isSuccess"], true, "{report:#}"); // Ratify leaves `isSuccess` out when it is false
    let cosign_reports = reports(&report, "cosign");
    assert!(
        !cosign_reports.is_empty() && cosign_reports.iter().all(|r| r["isSuccess"] == false),
        "an altered cosign payload verified: {report:#}"
    );
}
