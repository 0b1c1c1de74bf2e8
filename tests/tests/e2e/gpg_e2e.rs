//! GPG image signatures (the "simple signing" podman, skopeo and OpenShift verify) made through
//! `libsignpath_pkcs11.so` with stock tools only, the way docs/gpg.md tells an operator to do it:
//!
//! 1. `gnupg-pkcs11-scd` is gpg-agent's smart-card daemon over our module; it lists the token's certificates
//!    before login (the module shows public objects when the environment names organization and token).
//! 2. gpg binds a new OpenPGP key to the HSM key of the `rsa-2048` policy (`Key-Grip:` of `SCD LEARN`).
//! 3. `skopeo copy --sign-by FPR` signs an image in a real registry, the PIN (`CONFIG`) coming from a file through
//!    loopback pinentry; the signature lands in a lookaside store (`registries.d`).
//! 4. `skopeo copy` under a `policy.json` that requires a `signedBy` GPG signature accepts that image and refuses
//!    an unsigned one, the same image under another tag, and an altered image carrying the original's signature.
//!
//! Every gpg gets its own GNUPGHOME; every agent it starts is stopped (`gpgconf --kill all`) when the test ends.
//! No PIN or token is in any command line: the module reads them from the environment, the PIN from a file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::{require_tool, tools};

/// The policy whose HSM key signs: gnupg-pkcs11-scd 0.10 handles RSA keys only.
const POLICY: &str = "rsa-2048";

/// A GNUPGHOME whose gpg-agent runs gnupg-pkcs11-scd over our module, with the gateway's settings.
struct Gpg {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Gpg {
    /// Writes gpg-agent.conf, gnupg-pkcs11-scd.conf and the daemon wrapper that gives it the module's settings
    /// (the gateway's `env` file, as an operator would write it).
    fn new(gateway: &Gateway) -> Self {
        // A short path: gpg-agent's socket lives in GNUPGHOME and Unix socket paths are limited to 108 bytes.
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .expect("GNUPGHOME");
        let path = home.path();
        set_mode(path, 0o700);
        let module = tools::release_artifact("libsignpath_pkcs11.so");
        write(
            &path.join("gnupg-pkcs11-scd.conf"),
            &format!(
                "providers signpath\nprovider-signpath-library {}\nlog-file {}\n",
                module.display(),
                path.join("scd.log").display()
            ),
        );
        let wrapper = path.join("signpath-scd");
        write(
            &wrapper,
            &format!(
                "#!/bin/sh\n# gnupg-pkcs11-scd with the SignPath module's settings in its environment.\nset -a\n. '{}'\n\
                 SIGNPATH_LOG_FILE_DIRECTORY='{}'\nexec '{}' \"$@\"\n",
                gateway.dir().join("env").display(),
                path.join("module-logs").display(),
                tools::tool("gnupg-pkcs11-scd").display()
            ),
        );
        set_mode(&wrapper, 0o700);
        write(
            &path.join("gpg-agent.conf"),
            &format!(
                "scdaemon-program {}\nallow-loopback-pinentry\n",
                wrapper.display()
            ),
        );
        // The PIN: `CONFIG`, the module's word for "the organization and token of the configuration".
        write(&path.join("pin"), "CONFIG");
        set_mode(&path.join("pin"), 0o600);
        let env = vec![
            ("GNUPGHOME".to_owned(), path.display().to_string()),
            ("HOME".to_owned(), path.display().to_string()),
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("LANG".to_owned(), "C".to_owned()),
        ];
        Self { home, env }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(tools::tool(program));
        command.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs a command, expecting success; its output, or a failed test with the daemon's log.
    fn ok(&self, command: &mut Command) -> String {
        let output = command.output().expect("start the command");
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}\ngnupg-pkcs11-scd log:\n{}",
            tools::output_text(&output),
            std::fs::read_to_string(self.path("scd.log")).unwrap_or_default()
        );
        tools::output_text(&output)
    }

    /// `SCD LEARN --force`: the key grip of the policy's key, found through the certificate gnupg-pkcs11-scd
    /// lists with it (`KEY-FRIEDNLY <grip> <subject>`: the daemon's spelling); then the agent's `LEARN --force`,
    /// which writes the key stubs gpg needs to use the card's keys.
    fn learn_grip(&self) -> String {
        let learned =
            self.ok(self
                .command("gpg-connect-agent")
                .args(["SCD LEARN --force", "LEARN --force", "/bye"]));
        let grips: Vec<&str> = learned
            .lines()
            .filter_map(|l| l.strip_prefix("S KEYPAIRINFO "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(!grips.is_empty(), "no key pairs learned:\n{learned}");
        learned
            .lines()
            .filter_map(|l| l.strip_prefix("S KEY-FRIEDNLY "))
            .find(|l| l.contains(POLICY))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no key named {POLICY} among {grips:?}:\n{learned}"))
    }

    /// Creates an OpenPGP signing key on the HSM key with `grip`; returns its fingerprint. gpg self-signs the new
    /// key through the card, so this is the first signature made through the module.
    fn generate_key(&self, grip: &str) -> String {
        let parameters = self.path("key-parameters");
        write(
            &parameters,
            &format!(
                "Key-Type: RSA\nKey-Grip: {grip}\nKey-Usage: sign\nName-Real: SignPath demo images\n\
                 Name-Email: images@example.invalid\nExpire-Date: 0\n%commit\n"
            ),
        );
        self.ok(self
            .command("gpg")
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(self.path("pin"))
            .arg("--generate-key")
            .arg(&parameters));
        let listing = self.ok(self
            .command("gpg")
            .args(["--batch", "--with-colons", "--list-keys"]));
        listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_owned())
            .unwrap_or_else(|| panic!("no fingerprint in:\n{listing}"))
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).output();
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// skopeo with its own registries.d (the lookaside store for the test registry) and a policy file.
struct Skopeo<'a> {
    gpg: &'a Gpg,
    registries_d: PathBuf,
    lookaside: PathBuf,
}

impl<'a> Skopeo<'a> {
    fn new(gpg: &'a Gpg, registry: &Registry) -> Self {
        let registries_d = gpg.path("registries.d");
        let lookaside = gpg.path("sigstore");
        std::fs::create_dir_all(&registries_d).expect("registries.d");
        write(
            &registries_d.join("signpath.yaml"),
            &format!(
                "docker:\n  {}:\n    lookaside: file://{dir}\n    lookaside-staging: file://{dir}\n",
                registry.localhost_host(),
                dir = lookaside.display()
            ),
        );
        write(
            &gpg.path("accept-anything.json"),
            r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
        );
        Self {
            gpg,
            registries_d,
            lookaside,
        }
    }

    fn copy(&self, policy: &Path, extra: &[&str], from: &str, to: &str) -> Output {
        self.gpg
            .command("skopeo")
            .arg("--registries.d")
            .arg(&self.registries_d)
            .arg("--policy")
            .arg(policy)
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .args(extra)
            .args([from, to])
            .output()
            .expect("start skopeo")
    }

    /// Pulls `image` into a directory under `policy`; skopeo's output and whether it succeeded.
    fn pull(&self, policy: &Path, image: &str) -> (bool, String) {
        let out = tempfile::tempdir().expect("destination");
        let output = self.copy(
            policy,
            &[],
            &format!("docker://{image}"),
            &format!("dir:{}", out.path().display()),
        );
        (output.status.success(), tools::output_text(&output))
    }

    /// The lookaside directory of an image digest (`<repo>@sha256=<hex>`).
    fn signatures_of(&self, image: &ImageRef) -> PathBuf {
        let repo = image
            .repository
            .split_once('/')
            .map(|(_, repo)| repo)
            .expect("host/repo");
        self.lookaside
            .join(format!("{repo}@{}", image.digest.replace(':', "=")))
    }
}

#[test]
fn skopeo_signs_through_the_module_and_a_signed_by_policy_accepts_only_that_image() {
    require_tool!("gnupg-pkcs11-scd");
    require_tool!("skopeo");
    require_tool!("gpg");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let gpg = Gpg::new(&gateway);

    let grip = gpg.learn_grip();
    let fingerprint = gpg.generate_key(&grip);
    let public_key = gpg.path("images.asc");
    let exported = gpg.ok(gpg
        .command("gpg")
        .args(["--batch", "--armor", "--export", &fingerprint]));
    assert!(
        exported.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{exported}"
    );
    write(&public_key, &exported);

    // Sign: copy the pushed image to the tag that is released, signing it with the HSM key.
    let skopeo = Skopeo::new(&gpg, &registry);
    let pushed = registry.push_small_image("demo/app", "build");
    let released = format!("{}:v1", pushed.repository);
    let passphrase = gpg.path("pin").display().to_string();
    let signed = skopeo.copy(
        &gpg.path("accept-anything.json"),
        &["--sign-by", &fingerprint, "--sign-passphrase-file", &passphrase],
        &format!("docker://{}", pushed.tagged()),
        &format!("docker://{released}"),
    );
    assert!(signed.status.success(), "{}", tools::output_text(&signed));
    let signature = skopeo.signatures_of(&pushed).join("signature-1");
    assert!(
        signature.is_file(),
        "no signature in the lookaside store at {}",
        signature.display()
    );

    // Verify: only GPG signatures by that key are accepted for this registry's `demo` repositories.
    let policy = gpg.path("policy.json");
    write(
        &policy,
        &serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {format!("{}/demo", registry.localhost_host()): [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": public_key}
                ]},
                "dir": {"": [{"type": "insecureAcceptAnything"}]}
            }
        })
        .to_string(),
    );
    let (ok, text) = skopeo.pull(&policy, &released);
    assert!(ok, "the signed image is refused:\n{text}");

    // Unsigned: another image, never signed.
    let unsigned = registry.push_image("demo/app", "unsigned", &SmallImage::with_content(b"unsigned"));
    let (ok, text) = skopeo.pull(&policy, &unsigned.tagged());
    assert!(
        !ok && text.contains("A signature was required, but no signature exists"),
        "{text}"
    );

    // Re-tagged: the signed manifest under a name the signature does not claim.
    let retagged = registry.push_small_image("demo/other", "v1");
    assert_eq!(retagged.digest, pushed.digest);
    let other_signatures = skopeo.signatures_of(&retagged);
    std::fs::create_dir_all(&other_signatures).expect("lookaside directory");
    std::fs::copy(&signature, other_signatures.join("signature-1")).expect("copy the signature");
    let (ok, text) = skopeo.pull(&policy, &retagged.tagged());
    assert!(!ok && text.contains("not accepted"), "{text}");

    // Altered: different content under the released name, carrying the original's signature.
    let altered = registry.push_image("demo/app", "v1", &SmallImage::with_content(b"altered"));
    let altered_signatures = skopeo.signatures_of(&altered);
    std::fs::create_dir_all(&altered_signatures).expect("lookaside directory");
    std::fs::copy(&signature, altered_signatures.join("signature-1")).expect("copy the signature");
    let (ok, text) = skopeo.pull(&policy, &released);
    assert!(!ok && text.contains("does not match"), "{text}");

    // The gateway signed for gpg's daemon; the PIN's token never reached its audit log.
    let audit = serde_json::Value::Array(gateway.audit_json()).to_string();
    assert!(
        !audit.contains(gateway.api_token()),
        "the token never reaches the audit log"
    );
}
