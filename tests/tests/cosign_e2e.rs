//! cosign, built with PKCS#11 support, signing container images in a real registry on loopback with keys of the
//! real gateway through `libsignpath_pkcs11.so` — the flow `docs/pkcs11.md` documents. Each signature is checked
//! by `cosign verify` with the public key cosign itself exported from the token.
//!
//! cosign is kept off the public Sigstore services: no transparency log upload, and a proxy on a closed loopback
//! port for anything that is not loopback (Go never proxies loopback, so the registry and the gateway are reached
//! directly).
//!
//! A test binary of its own, not a module of `e2e/`: its gateway's settings are in the process environment (cosign
//! loads the module in a child that inherits it), which every other suite's processes would inherit too.

mod pkcs11_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use e2e_tests::require_tool;

use pkcs11_support::{gateway, module_path};

struct Cosign {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Cosign {
    fn new(binary: PathBuf) -> Self {
        gateway();
        Self {
            binary,
            home: tempfile::tempdir().expect("temporary home"),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env_remove("COSIGN_PKCS11_PIN")
            .env_remove("COSIGN_PKCS11_MODULE_PATH");
        command
    }

    /// Runs cosign; its combined output, or a failed test that shows it.
    fn run(&self, command: &mut Command) -> String {
        let (ok, text) = self.try_run(command);
        assert!(ok, "{command:?} failed:\n{text}");
        text
    }

    fn try_run(&self, command: &mut Command) -> (bool, String) {
        let output: Output = command.output().expect("start cosign");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

/// Percent-encodes a URI component the way cosign's parser (Go's `url.ParseQuery`) reads it back: `+` would
/// otherwise become a space.
fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A policy's key id (`Project/ec-256`) as the token lists it, via cosign's own listing.
fn key_id(cosign: &Cosign, policy: &str) -> String {
    let listing = cosign.run(
        cosign
            .command()
            .args([
                "pkcs11-tool",
                "list-keys-uris",
                "--slot-id",
                "1",
                "--pin",
                "CONFIG",
                "--module-path",
            ])
            .arg(module_path()),
    );
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Label:"))
        .map(str::trim)
        .find(|l| l.ends_with(&format!("/{policy}")))
        .unwrap_or_else(|| panic!("no {policy} policy in:\n{listing}"))
        .to_owned()
}

fn registry_flags() -> [&'static str; 1] {
    ["--allow-http-registry"]
}

#[test]
fn cosign_signs_an_image_with_ec_and_rsa_keys_and_verify_accepts_it() {
    let cosign = Cosign::new(require_tool!("cosign"));
    let registry = e2e_tests::registry::Registry::start();
    let image = registry.push_small_image("demo/app", "v1").reference;
    let module = module_path();
    let ec = key_id(&cosign, "ec-256");
    let rsa = key_id(&cosign, "rsa-2048");

    // EC-256 by token label, PIN in the URI (percent-encoded, as cosign's parser needs).
    let ec_uri = format!(
        "pkcs11:token=SignPath;object={}?module-path={}&pin-value={}",
        uri_encode(&ec),
        module.display(),
        uri_encode(&gateway().pin)
    );
    cosign.run(
        cosign
            .command()
            .args(["sign", "--yes", "--tlog-upload=false"])
            .args(registry_flags())
            .args(["--key", &ec_uri, &image]),
    );
    let ec_pub = cosign.run(cosign.command().args(["public-key", "--key", &ec_uri]));
    std::fs::write(cosign.path("ec.pub"), &ec_pub).unwrap();

    // RSA-2048 by slot id, PIN and module from cosign's environment variables.
    let rsa_uri = format!("pkcs11:slot-id=1;object={}", uri_encode(&rsa));
    let with_env = |command: &mut Command| {
        command
            .env("COSIGN_PKCS11_PIN", &gateway().pin)
            .env("COSIGN_PKCS11_MODULE_PATH", &module);
    };
    let mut sign = cosign.command();
    with_env(&mut sign);
    cosign.run(
        sign.args(["sign", "--yes", "--tlog-upload=false"])
            .args(registry_flags())
            .args(["--key", &rsa_uri, &image]),
    );
    let mut public_key = cosign.command();
    with_env(&mut public_key);
    let rsa_pub = cosign.run(public_key.args(["public-key", "--key", &rsa_uri]));
    std::fs::write(cosign.path("rsa.pub"), &rsa_pub).unwrap();

    for key in ["ec.pub", "rsa.pub"] {
        let verified = cosign.run(
            cosign
                .command()
                .args(["verify", "--insecure-ignore-tlog=true"])
                .args(registry_flags())
                .arg("--key")
                .arg(cosign.path(key))
                .arg(&image),
        );
        assert!(
            verified.contains("The signatures were verified against the specified public key"),
            "{verified}"
        );
    }

    // `cosign verify --key pkcs11:` logs in with an empty PIN: the module takes the configured credentials.
    let verified = cosign.run(
        cosign
            .command()
            .args(["verify", "--insecure-ignore-tlog=true"])
            .args(registry_flags())
            .arg("--key")
            .arg(format!(
                "pkcs11:token=SignPath;object={}?module-path={}",
                uri_encode(&ec),
                module.display()
            ))
            .arg(&image),
    );
    assert!(
        verified.contains("verified against the specified public key"),
        "{verified}"
    );

    // The gateway recorded who signed (cosign's command line) but never the PIN's token.
    let audit = gateway().audit_text();
    let token = gateway().pin.split_once(':').unwrap().1.to_owned();
    assert!(
        audit.contains("cosign"),
        "the audit log names the signing process"
    );
    assert!(!audit.contains(&token), "the token never reaches the audit log");
}

#[test]
fn cosign_signs_a_blob_and_verify_blob_accepts_it() {
    let cosign = Cosign::new(require_tool!("cosign"));
    let ec = key_id(&cosign, "ec-256");
    let uri = format!(
        "pkcs11:token=SignPath;object={}?module-path={}&pin-value=CONFIG",
        uri_encode(&ec),
        module_path().display()
    );
    std::fs::write(cosign.path("artifact.txt"), b"a blob signed through PKCS#11").unwrap();
    cosign.run(cosign.command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        &uri,
        "--output-signature",
        "artifact.sig",
        "artifact.txt",
    ]));
    let public_key = cosign.run(cosign.command().args(["public-key", "--key", &uri]));
    std::fs::write(cosign.path("cosign.pub"), public_key).unwrap();
    let verified = cosign.run(cosign.command().args([
        "verify-blob",
        "--insecure-ignore-tlog=true",
        "--key",
        "cosign.pub",
        "--signature",
        "artifact.sig",
        "artifact.txt",
    ]));
    assert!(verified.contains("Verified OK"), "{verified}");

    // A wrong token is refused at login, and cosign says so.
    let organization = gateway().pin.split_once(':').unwrap().0.to_owned();
    let wrong = format!(
        "pkcs11:token=SignPath;object={}?module-path={}&pin-value={}",
        uri_encode(&ec),
        module_path().display(),
        uri_encode(&format!("{organization}:not-the-token"))
    );
    let (ok, text) = cosign.try_run(cosign.command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        &wrong,
        "artifact.txt",
    ]));
    assert!(!ok && text.contains("CKR_PIN_INCORRECT"), "{text}");
}

#[test]
fn cosign_pkcs11_tool_lists_the_token_and_key_uris_that_work() {
    let cosign = Cosign::new(require_tool!("cosign"));
    let module = module_path();
    let tokens = cosign.run(
        cosign
            .command()
            .args(["pkcs11-tool", "list-tokens", "--module-path"])
            .arg(&module),
    );
    assert!(
        tokens.contains("Token in slot 1") && tokens.contains("Label: SignPath"),
        "{tokens}"
    );
    let listing = cosign.run(
        cosign
            .command()
            .args([
                "pkcs11-tool",
                "list-keys-uris",
                "--slot-id",
                "1",
                "--pin",
                "CONFIG",
                "--module-path",
            ])
            .arg(&module),
    );
    let ec = key_id(&cosign, "ec-256");
    // The URI cosign prints for a key (CKA_ID percent-encoded, slot id, PIN) is one cosign can use.
    let uri = listing
        .lines()
        .skip_while(|l| !l.contains(&format!("Label: {ec}")))
        .find_map(|l| l.trim().strip_prefix("URI: "))
        .unwrap_or_else(|| panic!("no URI for {ec} in:\n{listing}"))
        .to_owned();
    assert!(
        uri.contains("slot-id=1") && uri.contains("pin-value=CONFIG"),
        "{uri}"
    );
    let public_key = cosign.run(cosign.command().args(["public-key", "--key", &uri]));
    assert!(public_key.contains("-----BEGIN PUBLIC KEY-----"), "{public_key}");
}
