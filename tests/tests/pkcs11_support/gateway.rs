//! The gateway for one PKCS#11 test binary: `signpath-gateway init` and `serve`, driven through the command line
//! the README documents (`init --dir DIR --port PORT` writes `DIR/gateway.toml` and `DIR/env`; `serve` prints
//! `signpath-gateway listening on https://…`; `audit` prints the audit log).
//!
//! This is the PKCS#11 tests' stand-in until the shared fixture `e2e_tests::gateway` exists; then `start` becomes
//! a call to it. It lives as long as the test binary: an exit hook stops it, because a `static` is never dropped.
#![allow(unsafe_code)] // `libc::atexit` and `libc::kill` in the exit hook, see `stop_at_exit`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e_tests::tools;

pub struct GatewayProcess {
    child: Mutex<Option<Child>>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

/// The running gateway's pid and directory, for the exit hook.
static RUNNING: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);

/// Stops the gateway this binary started when the binary exits (the harness calls `exit`, which runs the hook).
extern "C" fn stop_at_exit() {
    if let Some((pid, dir)) = RUNNING.lock().ok().and_then(|mut p| p.take()) {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: signals our own child process; kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// SHA-1 digests are signed only where a policy lists them: the PKCS#11 tests sign every digest length, so every
/// policy but `demo/ec-521` lists SHA-1 (where the tests check that it is refused).
fn allow_sha1_except_on_ec_521(config_path: &Path) {
    let mut config: toml::Table = std::fs::read_to_string(config_path)
        .expect("gateway.toml")
        .parse()
        .expect("gateway.toml is TOML");
    let policies = config
        .get_mut("projects")
        .and_then(|p| p.as_array_mut())
        .into_iter()
        .flatten()
        .filter_map(|project| project.get_mut("policies").and_then(|p| p.as_array_mut()))
        .flatten()
        .filter_map(|policy| policy.as_table_mut());
    for policy in policies {
        if policy.get("slug").and_then(|s| s.as_str()) != Some("ec-521") {
            let all = ["Sha1", "Sha256", "Sha384", "Sha512"].map(toml::Value::from);
            policy.insert("hash_algorithms".into(), toml::Value::Array(all.to_vec()));
        }
    }
    std::fs::write(config_path, toml::to_string(&config).expect("TOML")).expect("write gateway.toml");
}

impl GatewayProcess {
    pub fn start() -> Self {
        let binary = tools::release_artifact("signpath-gateway");
        let dir = tempfile::Builder::new()
            .prefix("signpath-pkcs11-gateway-")
            .tempdir()
            .expect("temporary directory");
        let gateway_dir = dir.path().join("gateway");
        let status = Command::new(&binary)
            .arg("init")
            .arg("--dir")
            .arg(&gateway_dir)
            .args(["--port", "0"])
            .arg("--crl-port")
            .arg(e2e_tests::gateway::free_port().to_string())
            .stdout(Stdio::null())
            .status()
            .expect("run signpath-gateway init");
        assert!(status.success(), "signpath-gateway init failed ({status})");
        allow_sha1_except_on_ec_521(&gateway_dir.join("gateway.toml"));
        let out_path = dir.path().join("gateway.out");
        let out = std::fs::File::create(&out_path).expect("gateway output file");
        let err = std::fs::File::create(dir.path().join("gateway.err")).expect("gateway error file");
        let child = Command::new(&binary)
            .arg("serve")
            .arg("--config")
            .arg(gateway_dir.join("gateway.toml"))
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start signpath-gateway serve");
        *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = Some((child.id(), dir.path().to_path_buf()));
        // SAFETY: registers a plain `extern "C" fn` that touches only a static; atexit has no other precondition.
        unsafe { libc::atexit(stop_at_exit) };
        let mut gateway = Self {
            child: Mutex::new(Some(child)),
            env: read_env_file(&gateway_dir.join("env")),
            binary,
            dir,
        };
        // The gateway bound port 0; the clients get the port it says it got.
        let api_url = gateway.wait_until_listening(&out_path);
        e2e_tests::gateway::pin_address_in(&gateway_dir.join("env"), &api_url);
        gateway.env = read_env_file(&gateway_dir.join("env"));
        gateway
    }

    /// Waits for the "listening" line; the URL it names.
    fn wait_until_listening(&self, out_path: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(out_path).unwrap_or_default();
            if let Some(url) = out
                .lines()
                .find_map(|l| l.strip_prefix("signpath-gateway listening on "))
                .filter(|url| url.starts_with("https://"))
            {
                return url.to_owned();
            }
            let exited = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            let err = || std::fs::read_to_string(self.dir.path().join("gateway.err")).unwrap_or_default();
            if let Some(status) = exited {
                panic!("signpath-gateway serve exited ({status}):\n{out}\n{}", err());
            }
            assert!(
                Instant::now() < deadline,
                "signpath-gateway did not listen within 60 s:\n{out}\n{}",
                err()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `SIGNPATH_API_URL`, `SIGNPATH_ORGANIZATION_ID`, `SIGNPATH_API_TOKEN`, `SIGNPATH_TLS_CA_BUNDLE`, … from
    /// `DIR/env`.
    pub fn env_vars(&self) -> BTreeMap<String, String> {
        self.env.clone()
    }

    /// A directory that lives as long as the gateway.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The audit log as `signpath-gateway audit --wide` prints it (every column).
    pub fn audit_text(&self) -> String {
        let output = Command::new(&self.binary)
            .args(["audit", "--wide", "--config"])
            .arg(self.dir.path().join("gateway").join("gateway.toml"))
            .output()
            .expect("run signpath-gateway audit");
        assert!(
            output.status.success(),
            "signpath-gateway audit failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// `NAME=VALUE` lines, optionally `export`ed and quoted, as a shell would read them.
fn read_env_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(name, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            (name.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}
