//! Revocation and the signing time, with notation: the gateway signs OCI layout tarballs under the Notary Project
//! scheme `notary.x509.signingAuthority` (an artifact configuration's `signing_scheme`), whose critical
//! `io.cncf.notary.authenticSigningTime` notation passes to its CRL check. After `signpath-gateway revoke` with an
//! invalidity date, a signature made before that date (JWS or COSE) still verifies under a strict trust policy
//! with a `signingAuthority` trust store, a `notary.x509` signature made before the date fails (notation gives its
//! revocation check no signing time under that scheme), and the gateway makes no signature at all with the revoked
//! certificate any more.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use super::oci_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use e2e_tests::crl::{crl_url, fetch_crl};
use e2e_tests::gateway::Gateway;
use e2e_tests::notation::Notation;
use e2e_tests::{require_tool, tools};
use oci_support::LayoutBuilder;

const POLICY: &str = "demo/ec-256";
/// The image the signing-authority signatures are on, and the one the `notary.x509` signature is on: each has a
/// trust policy of its own (the scheme decides the trust store type).
const AUTHORITY_SCOPE: &str = "registry.example/team/app";
const X509_SCOPE: &str = "registry.example/team/plain";

fn ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        tools::output_text(&output)
    );
    tools::output_text(&output)
}

/// The gateway with three artifact configurations in project demo: `authority` (JWS under
/// `notary.x509.signingAuthority`), `authority-cose` (COSE under it) and `x509` (JWS under the default
/// `notary.x509`).
fn start_gateway() -> Gateway {
    Gateway::start_with(|setup| {
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let project = config["projects"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        let configurations: toml::Table = toml::from_str(
            "[[artifact_configurations]]\nslug = \"authority\"\nnotary = \"jws\"\n\
             signing_scheme = \"notary.x509.signingAuthority\"\n\
             [[artifact_configurations]]\nslug = \"authority-cose\"\nnotary = \"cose\"\n\
             signing_scheme = \"notary.x509.signingAuthority\"\n\
             [[artifact_configurations]]\nslug = \"x509\"\nnotary = \"jws\"\n",
        )
        .unwrap();
        project.insert(
            "artifact_configurations".into(),
            configurations["artifact_configurations"].clone(),
        );
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    })
}

/// A tarball holding one image, `<scope>:1.0`, whose layer says `what` (so each tarball's image is new).
fn tarball(dir: &Path, scope: &str, what: &str) -> PathBuf {
    let mut layout = LayoutBuilder::new();
    let image = layout.manifest("amd64", &[what.as_bytes()]);
    layout.tag(&image, &format!("{scope}:1.0"));
    let path = dir.join(format!("{what}.tar"));
    layout.write_tar(&path);
    path
}

/// Submits `tarball` to the policy with `configuration` (no approval needed) and unpacks the signed layout it
/// gets back; the layout's directory.
fn submit(gateway: &Gateway, tarball: &Path, configuration: &str) -> PathBuf {
    let signed = tarball.with_extension("signed.tar");
    ok(gateway
        .command(tools::release_artifact("signpath-oci"))
        .arg("submit")
        .arg(tarball)
        .args(["--key", POLICY, "--artifact-configuration", configuration])
        .arg("--output")
        .arg(&signed));
    let layout = tarball.with_extension("layout");
    std::fs::create_dir_all(&layout).unwrap();
    ok(Command::new("tar").arg("-xf").arg(&signed).arg("-C").arg(&layout));
    layout
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// The protected header of the one Notary Project signature in `layout` (a JWS envelope).
fn notary_protected_header(layout: &Path) -> Value {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let envelopes: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            serde_json::from_slice::<Value>(&blob(layout, entry["digest"].as_str().unwrap())).unwrap()
        })
        .filter(|m| m["config"]["mediaType"] == "application/vnd.cncf.notary.signature")
        .map(|m| serde_json::from_slice(&blob(layout, m["layers"][0]["digest"].as_str().unwrap())).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 1, "one Notary signature in {}", layout.display());
    let protected = URL_SAFE_NO_PAD
        .decode(envelopes[0]["protected"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&protected).unwrap()
}

/// The authentic signing time of the layout's signature, after checking that it is a signing-authority signature.
fn authentic_signing_time(layout: &Path) -> OffsetDateTime {
    let header = notary_protected_header(layout);
    assert_eq!(
        header["io.cncf.notary.signingScheme"], "notary.x509.signingAuthority",
        "{header}"
    );
    assert!(header.get("io.cncf.notary.signingTime").is_none(), "{header}");
    assert!(
        header["crit"]
            .as_array()
            .unwrap()
            .contains(&json!("io.cncf.notary.authenticSigningTime")),
        "{header}"
    );
    let time = header["io.cncf.notary.authenticSigningTime"].as_str().unwrap();
    OffsetDateTime::parse(time, &Rfc3339).unwrap()
}

/// notation (no plugin: it only verifies) that trusts the gateway's root as a signing authority for
/// [`AUTHORITY_SCOPE`] and as a CA for [`X509_SCOPE`], both strict, so revocation is enforced.
fn verifier(root: &Path) -> Notation {
    let notation = Notation::with_libexec(&tools::tool("notation"), Vec::new(), None)
        .with_env("NOTATION_EXPERIMENTAL", "1");
    let root = root.display().to_string();
    for store_type in ["signingAuthority", "ca"] {
        notation.ok(&["cert", "add", "--type", store_type, "--store", "signpath", &root]);
    }
    let policy = json!({
        "version": "1.0",
        "trustPolicies": [
            {"name": "authority", "registryScopes": [AUTHORITY_SCOPE],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["signingAuthority:signpath"], "trustedIdentities": ["*"]},
            {"name": "x509", "registryScopes": [X509_SCOPE],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:signpath"], "trustedIdentities": ["*"]},
        ],
    });
    let file = notation.path("trustpolicy.oci.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    notation.ok(&["policy", "import", "--force", &file.display().to_string()]);
    notation
}

/// `notation verify --oci-layout`; `--debug` makes it say why a signature failed (revoked, ...).
fn verify(notation: &Notation, layout: &Path, scope: &str) -> Output {
    notation.run(&[
        "verify",
        "--debug",
        "--oci-layout",
        "--scope",
        scope,
        &format!("{}:1.0", layout.display()),
    ])
}

fn verifies(notation: &Notation, layout: &Path, scope: &str, case: &str) {
    let out = verify(notation, layout, scope);
    let text = tools::output_text(&out);
    assert!(out.status.success(), "{case}: {text}");
    assert!(text.contains("Successfully verified signature"), "{case}: {text}");
}

fn fails_as_revoked(notation: &Notation, layout: &Path, scope: &str, case: &str) {
    let out = verify(notation, layout, scope);
    let text = tools::output_text(&out);
    assert!(!out.status.success(), "{case} verified: {text}");
    // notation's reason for this failure, not any other.
    assert!(
        text.contains("signing certificate with subject") && text.contains("is revoked"),
        "{case}: {text}"
    );
}

/// notation keeps a CRL until its nextUpdate; an empty cache makes it fetch the gateway's current one.
fn forget_crls(notation: &Notation) {
    let cache = notation.path("cache").join("crl");
    if cache.exists() {
        std::fs::remove_dir_all(cache).unwrap();
    }
}

/// `Nov 30 12:40:03 2026 GMT`, as `openssl crl -text` prints a GeneralizedTime.
fn openssl_time(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    t.format(&format).unwrap()
}

#[test]
fn a_signature_made_before_the_invalidity_date_stays_valid_and_the_revoked_certificate_signs_no_more() {
    require_tool!("notation");
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let notation = verifier(&gateway.root_ca_pem());

    // Before the revocation: both schemes verify (notation fetches the CRL, which lists nothing).
    let before = submit(
        &gateway,
        &tarball(dir.path(), AUTHORITY_SCOPE, "before"),
        "authority",
    );
    let signed_at = authentic_signing_time(&before);
    // The COSE envelope's scheme shows in which trust store verifies it (only the signingAuthority one, below).
    let cose = submit(
        &gateway,
        &tarball(dir.path(), AUTHORITY_SCOPE, "cose"),
        "authority-cose",
    );
    let x509 = submit(&gateway, &tarball(dir.path(), X509_SCOPE, "x509"), "x509");
    let header = notary_protected_header(&x509);
    assert_eq!(header["io.cncf.notary.signingScheme"], "notary.x509", "{header}");
    assert!(
        header.get("io.cncf.notary.authenticSigningTime").is_none(),
        "{header}"
    );
    verifies(&notation, &before, AUTHORITY_SCOPE, "signing authority, before");
    verifies(
        &notation,
        &cose,
        AUTHORITY_SCOPE,
        "signing authority COSE, before",
    );
    verifies(&notation, &x509, X509_SCOPE, "notary.x509, before");
    // The scheme decides the trust store type: a policy with only a `ca` store verifies neither
    // signing-authority signature.
    for layout in [&before, &cose] {
        let refused = verify(&notation, layout, X509_SCOPE);
        assert!(
            !refused.status.success(),
            "a ca trust store verified a signing-authority signature: {}",
            tools::output_text(&refused)
        );
    }

    // The key is unfit from two seconds after the first signature (the x509 one was made before that too).
    let invalid_from = signed_at + Duration::from_secs(2);
    let x509_signed_at =
        OffsetDateTime::parse(header["io.cncf.notary.signingTime"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(
        x509_signed_at < invalid_from,
        "{x509_signed_at} >= {invalid_from}"
    );
    let revoked = ok(Command::new(Gateway::binary())
        .args(["revoke", "--policy", POLICY, "--reason", "key-compromise"])
        .args(["--invalidity-date", &invalid_from.format(&Rfc3339).unwrap()])
        .arg("--config")
        .arg(gateway.config()));
    assert!(
        revoked.contains("it is on the next CRL of CA intermediate"),
        "{revoked}"
    );

    // The CRL entry carries the reason and the invalidity date, as openssl reads them.
    let crl = dir.path().join("crl.pem");
    fetch_crl(&crl_url(&gateway, "intermediate"), &crl);
    let listed = ok(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&crl));
    assert!(listed.contains("Key Compromise"), "{listed}");
    assert!(listed.contains("Invalidity Date"), "{listed}");
    assert!(listed.contains(&openssl_time(invalid_from)), "{listed}");

    // With the new CRL: the signing-authority signature made before the date stays valid under strict, the
    // notary.x509 one made before it does not.
    forget_crls(&notation);
    verifies(
        &notation,
        &before,
        AUTHORITY_SCOPE,
        "signing authority, before the date",
    );
    verifies(
        &notation,
        &cose,
        AUTHORITY_SCOPE,
        "signing authority COSE, before the date",
    );
    fails_as_revoked(&notation, &x509, X509_SCOPE, "notary.x509, before the date");

    // No signature is made after the revocation: the policy's certificate is revoked, so the gateway refuses to
    // sign with it (403 signing-certificate-revoked) until `policy rotate`.
    let refused = gateway
        .command(tools::release_artifact("signpath-oci"))
        .arg("submit")
        .arg(tarball(dir.path(), AUTHORITY_SCOPE, "after"))
        .args(["--key", POLICY, "--artifact-configuration", "authority"])
        .arg("--output")
        .arg(dir.path().join("after.signed.tar"))
        .output()
        .unwrap();
    let text = tools::output_text(&refused);
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains("403") && text.contains("policy rotate"), "{text}");
    verifies(
        &notation,
        &before,
        AUTHORITY_SCOPE,
        "signing authority, before the date",
    );
}
