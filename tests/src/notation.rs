//! One user's notation for tests that sign with it but are not about installing the plugin (notation_e2e.rs
//! covers `notation plugin install`): its own config, libexec, cache and home directories, an environment that
//! holds only what the test gives it, the plugin in place under `<libexec>/plugins/signpath/`, and a strict trust
//! policy for a given root.
//!
//! It never reads the caller's notation configuration and never touches the machine's.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::tools;

/// A notation with its own directories and a fixed environment.
#[derive(Debug)]
pub struct Notation {
    binary: PathBuf,
    home: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Notation {
    /// notation with the release build of the plugin copied into its own libexec directory and `settings` (the
    /// gateway's client settings, say) as its environment.
    pub fn with_plugin(binary: &Path, settings: impl IntoIterator<Item = (String, String)>) -> Self {
        let notation = Self::with_libexec(binary, settings, None);
        let plugins = notation.path("libexec").join("plugins").join("signpath");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(
            tools::release_artifact("notation-signpath"),
            plugins.join("notation-signpath"),
        )
        .unwrap();
        notation
    }

    /// notation whose plugins come from `libexec` (`NOTATION_LIBEXEC`, a packaged plugin's directory), or from a
    /// directory of its own when `None`.
    pub fn with_libexec(
        binary: &Path,
        settings: impl IntoIterator<Item = (String, String)>,
        libexec: Option<&Path>,
    ) -> Self {
        let home = tempfile::Builder::new().prefix("notation-").tempdir().unwrap();
        let dir = |name: &str| home.path().join(name).display().to_string();
        let mut env: BTreeMap<String, String> = settings.into_iter().collect();
        for (name, value) in [
            ("HOME", dir("home")),
            ("NOTATION_CONFIG", dir("config")),
            ("NOTATION_CACHE", dir("cache")),
            ("XDG_CACHE_HOME", dir("xdg-cache")),
            ("SIGNPATH_LOG_FILE_DIRECTORY", dir("logs")),
            ("SIGNPATH_LOG_FILE_LEVEL", "debug".to_owned()),
        ] {
            env.insert(name.to_owned(), value);
        }
        let libexec = libexec.map_or_else(|| dir("libexec"), |p| p.display().to_string());
        env.insert("NOTATION_LIBEXEC".to_owned(), libexec);
        Self {
            binary: binary.to_path_buf(),
            home,
            env,
        }
    }

    /// The same notation with one more environment variable (`NOTATION_EXPERIMENTAL=1` for `--oci-layout`).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// A path in this notation's private directory (for files a test writes).
    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// notation with `args` and only its own environment, to add to (more variables, pipes) and run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.home.path());
        command
    }

    /// Runs notation with only its own environment; the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs notation, expects success, returns stdout and stderr together.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = tools::output_text(&output);
        assert!(
            output.status.success(),
            "notation {args:?} failed:\n{text}\nplugin log:\n{}",
            self.plugin_log()
        );
        text
    }

    /// Trusts `root_pem` (trust store `ca:signpath`) for every registry scope, with strict verification.
    pub fn trust(&self, root_pem: &Path) {
        self.ok(&[
            "cert",
            "add",
            "--type",
            "ca",
            "--store",
            "signpath",
            &root_pem.display().to_string(),
        ]);
        let policy = json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "signpath",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:signpath"],
                "trustedIdentities": ["*"],
            }],
        });
        let file = self.path("trustpolicy.json");
        std::fs::write(&file, policy.to_string()).unwrap();
        self.ok(&["policy", "import", "--force", &file.display().to_string()]);
    }

    /// `notation inspect --output json`: the signatures on an artifact.
    pub fn signatures(&self, reference: &str) -> Vec<Value> {
        let output = self.run(&["inspect", "--output", "json", reference]);
        assert!(output.status.success(), "{}", tools::output_text(&output));
        let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
        inspected["Signatures"].as_array().cloned().unwrap_or_default()
    }

    /// The plugin's own log file, for failure messages.
    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.path("logs").join("SignPath.CryptoProviders.Notation.txt"))
            .unwrap_or_default()
    }
}
