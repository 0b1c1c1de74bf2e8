//! cosign signing images with a policy's key of one [`Gateway`], for the tests that check those signatures with
//! verifiers we did not write (`tests/tests/e2e/verifiers.rs`, `tests/sigstore-verify`) and the KMS plugin's tests.
//!
//! Two routes to the key: the PKCS#11 module (cosign built with PKCS#11, `pkcs11:` URIs, the PIN the literal
//! `CONFIG`), or the KMS plugin (cosign built as its release is, `signpath://demo/<policy>`, the plugin first on
//! cosign's `PATH`). The client settings go into each cosign's environment (not the test process's), and cosign is
//! kept off the public Sigstore services: no transparency log upload, and a proxy on a closed loopback port for
//! anything that is not loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::gateway::Gateway;
use crate::registry::{self, ImageRef, Registry, SmallImage};
use crate::tools;

/// The project every `signpath-gateway init` creates.
pub const PROJECT: &str = "demo";

/// The KMS plugin's executable name: cosign runs `sigstore-kms-signpath` for `--key signpath://...`.
pub const KMS_PLUGIN: &str = "sigstore-kms-signpath";

/// How cosign reaches a policy's key.
#[derive(Debug)]
enum Route {
    Pkcs11Module,
    /// The directory cosign finds the plugin in, first on its `PATH`.
    KmsPlugin(PathBuf),
}

#[derive(Debug)]
pub struct Cosign {
    binary: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
    route: Route,
}

impl Cosign {
    /// cosign with PKCS#11 support, through `libsignpath_pkcs11.so`.
    pub fn new(binary: PathBuf, gateway: &Gateway) -> Self {
        Self {
            binary,
            home: tempfile::tempdir().expect("cosign's home"),
            env: gateway.env_vars(),
            route: Route::Pkcs11Module,
        }
    }

    /// cosign as released (`cosign-release`), through the KMS plugin the release build made
    /// (`SIGNPATH_KMS_PLUGIN_BIN`, else target/release), linked into a directory of its own under cosign's name.
    pub fn with_kms_plugin(binary: PathBuf, gateway: &Gateway) -> Self {
        let home = tempfile::tempdir().expect("cosign's home");
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).expect("cosign's bin directory");
        std::os::unix::fs::symlink(tools::release_artifact(KMS_PLUGIN), bin.join(KMS_PLUGIN))
            .expect("link the plugin");
        Self {
            binary,
            home,
            env: gateway.env_vars(),
            route: Route::KmsPlugin(bin),
        }
    }

    /// The key reference of a policy (`demo/<policy>`): `signpath://demo/<policy>` for the plugin, the `pkcs11:`
    /// URI with the `CONFIG` PIN for the module.
    pub fn key_uri(&self, policy: &str) -> String {
        match self.route {
            Route::KmsPlugin(_) => format!("signpath://{PROJECT}/{policy}"),
            Route::Pkcs11Module => format!(
                "pkcs11:token=SignPath;object={PROJECT}%2F{policy}?module-path={}&pin-value=CONFIG",
                tools::release_artifact("libsignpath_pkcs11.so").display()
            ),
        }
    }

    /// A file in cosign's working directory (its home).
    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env_remove("COSIGN_PKCS11_PIN")
            .env_remove("COSIGN_PKCS11_MODULE_PATH")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Route::KmsPlugin(bin) = &self.route {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(bin.clone()).chain(std::env::split_paths(&path));
            command.env("PATH", std::env::join_paths(paths).expect("PATH"));
        }
        command
    }

    /// Runs cosign, expecting success; its stdout.
    pub fn run(&self, command: &mut Command) -> String {
        let output = command.output().expect("start cosign");
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}",
            tools::output_text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs cosign; whether it succeeded, and its stdout and stderr.
    pub fn try_run(&self, command: &mut Command) -> (bool, String) {
        let output = command.output().expect("start cosign");
        (output.status.success(), tools::output_text(&output))
    }

    /// Signs `image` (a digest reference) in a plain-HTTP registry with a policy's key.
    pub fn sign(&self, policy: &str, image: &str) {
        let key = self.key_uri(policy);
        self.run(self.command().args([
            "sign",
            "--yes",
            "--tlog-upload=false",
            "--allow-http-registry",
            "--key",
            &key,
            image,
        ]));
    }

    /// The policy key's public key, PEM, as cosign exports it (from the token, or through the plugin).
    pub fn public_key(&self, policy: &str) -> String {
        let key = self.key_uri(policy);
        self.run(self.command().args(["public-key", "--key", &key]))
    }
}

/// What cosign stored for an image: the manifest tagged `sha256-<hex>.sig` in the image's repository, its
/// simple-signing payload (the one layer) and the signature over it (the layer's annotation, base64).
#[derive(Debug, Clone)]
pub struct StoredSignature {
    /// The repository path inside the registry (`demo/app`).
    pub repo: String,
    /// `sha256-<hex>.sig`.
    pub tag: String,
    pub manifest: serde_json::Value,
    pub config: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature_base64: String,
}

/// The annotation of the signature layer that holds the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

impl StoredSignature {
    /// Reads the signature cosign pushed for `image`; panics when there is none.
    pub fn read(registry: &Registry, image: &ImageRef) -> Self {
        let repo = image
            .repository
            .split_once('/')
            .map(|(_, repo)| repo.to_owned())
            .expect("host/repository");
        let tag = format!("{}.sig", image.digest.replace(':', "-"));
        let manifest = registry
            .manifest(&repo, &tag)
            .unwrap_or_else(|| panic!("no cosign signature {repo}:{tag}"));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.body).expect("manifest JSON");
        let blob = |digest: &serde_json::Value| {
            let digest = digest.as_str().expect("a digest");
            registry
                .blob(&repo, digest)
                .unwrap_or_else(|| panic!("no blob {digest}"))
        };
        let layer = &manifest["layers"][0];
        Self {
            config: blob(&manifest["config"]["digest"]),
            payload: blob(&layer["digest"]),
            signature_base64: layer["annotations"][SIGNATURE_ANNOTATION]
                .as_str()
                .expect("the signature annotation")
                .to_owned(),
            repo,
            tag,
            manifest,
        }
    }

    /// Replaces the stored payload by `payload`, keeping the signature: what an attacker who can write to the
    /// registry could do. Pushes a new manifest under the same tag.
    pub fn push_with_payload(&self, registry: &Registry, payload: Vec<u8>) {
        let mut manifest = self.manifest.clone();
        manifest["layers"][0]["digest"] = registry::sha256_digest(&payload).into();
        manifest["layers"][0]["size"] = payload.len().into();
        let image = SmallImage {
            config: self.config.clone(),
            layer: payload,
            manifest: serde_json::to_vec(&manifest).expect("manifest JSON"),
        };
        registry.push_image(&self.repo, &self.tag, &image);
    }
}
