//! The real gateway for a test: `signpath-gateway init --port 0` into a temporary directory, then `serve`, waiting
//! for its "listening" line and reading its address there: the gateway binds a port the system gives it, so no
//! other test can take the port between a pick and the bind. The CRL port is named in the certificates `init`
//! issues, so it is picked ([`free_port`]). The client settings (`env`, the fixture's [`Gateway::env_vars`])
//! carry the real URL. Dropping the fixture stops the process and removes the directory.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::tools;

#[derive(Debug)]
pub struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

/// `signpath-gateway ARGS --config SETUP/gateway.toml`, which must succeed; its stdout. The operator's command
/// line, as the governance and hardening tests drive it on a setup directory.
pub fn run_cli(setup: &Path, args: &[&str]) -> String {
    let out = Command::new(Gateway::binary())
        .args(args)
        .arg("--config")
        .arg(setup.join("gateway.toml"))
        .output()
        .expect("run signpath-gateway");
    assert!(
        out.status.success(),
        "signpath-gateway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds the approver `alice` to the setup and makes `policy` of its project wait for her approval (one of one), as
/// the tests of held requests set a gateway up.
pub fn require_alices_approval(setup: &Path, policy: &str) {
    run_cli(setup, &["approver", "add", "--name", "alice"]);
    let path = setup.join("gateway.toml");
    let text = std::fs::read_to_string(&path).expect("gateway.toml");
    let mut config: toml::Table = text.parse().expect("gateway.toml parses");
    let policies = config["projects"].as_array_mut().expect("[[projects]]")[0]["policies"]
        .as_array_mut()
        .expect("[[projects.policies]]");
    let found = policies
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some(policy))
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("the setup has no policy {policy}"));
    let approval: toml::Value = toml::from_str("approvers = [\"alice\"]\nrequired = 1").expect("approval");
    found.insert("approval".into(), approval);
    std::fs::write(&path, toml::to_string(&config).expect("gateway.toml")).expect("write gateway.toml");
}

/// `signpath-gateway init` into `gw` of a new temporary directory named `prefix…`, its API on port 0 (the port
/// `serve` gets, see [`serve_listening`]) and its CRL listener on a free port; the directory (removed when
/// dropped) and the setup's path.
pub fn init_setup(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let setup = dir.path().join("gw");
    let init = Command::new(Gateway::binary())
        .args(["init", "--dir"])
        .arg(&setup)
        .args(["--port", "0"])
        .args(["--crl-port", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    (dir, setup)
}

/// Signs in to the approvers' pages at `web` with `approver_token` (the form posted from `origin`, the gateway's
/// public URL) and opens the list of requests: the session cookie (`name=value`) and the page.
pub fn approver_page(
    http: &reqwest::blocking::Client,
    web: &str,
    origin: &str,
    approver_token: &str,
) -> (String, String) {
    let login = http
        .post(format!("{web}/Web/Login"))
        .header("origin", origin)
        .form(&[("token", approver_token)])
        .send()
        .unwrap();
    assert_eq!(login.status(), 303, "signing in to {web}");
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    (session, page)
}

/// The CSRF token the forms of an approvers' page carry.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the page carries no CSRF token: {page}"))
        .to_owned()
}

/// `signpath-gateway serve --config CONFIG ARGS` with its stderr in `stderr_path`, once it printed its "listening"
/// line (60 s at most; a panic with its stderr otherwise). Its stdout keeps being read, so the gateway never
/// writes into a closed pipe.
pub fn serve(config: &Path, serve_args: &[&str], stderr_path: &Path) -> Child {
    serve_listening(config, serve_args, stderr_path).0
}

/// [`serve`], and the URL the gateway said it listens on (`https://127.0.0.1:PORT`).
pub fn serve_listening(config: &Path, serve_args: &[&str], stderr_path: &Path) -> (Child, String) {
    serve_under(&[], config, serve_args, stderr_path)
}

/// Like [`serve_listening`], run through `wrapper` (a program and its arguments that execs the rest of its command
/// line, such as `prlimit --nofile=512:512 --`), so that the gateway's process id is the child's.
pub fn serve_under(
    wrapper: &[&str],
    config: &Path,
    serve_args: &[&str],
    stderr_path: &Path,
) -> (Child, String) {
    let stderr = std::fs::File::create(stderr_path).unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(Gateway::binary());
            command
        }
        None => Command::new(Gateway::binary()),
    };
    let mut child = command
        .args(["serve", "--config"])
        .arg(config)
        .args(serve_args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .and_then(|line| {
            line.strip_prefix("signpath-gateway listening on ")
                .map(str::to_owned)
        })
        .filter(|url| url.starts_with("https://"));
    let Some(url) = url else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the gateway ({}) did not start: {}",
            config.display(),
            std::fs::read_to_string(stderr_path).unwrap_or_default()
        );
    };
    (child, url)
}

/// A loopback port nobody listens on now, for a server that cannot bind port 0 and say which port it got (the
/// CRL listener, whose URL the certificates name; docker-registry, PostgreSQL, HAProxy, chromedriver). Taken at
/// random below the system's ephemeral range (32768 and up on Linux), where the kernel never puts the local end
/// of an outgoing connection or a port-0 bind: only another pick like this one can take it before the server
/// binds it, which a caller that can retry does.
pub fn free_port() -> u16 {
    use rand_core::RngCore as _;
    for _ in 0..1000 {
        let port = 20_000 + (rand_core::OsRng.next_u32() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

/// `text` with the port-0 address `init --port 0` writes (`127.0.0.1:0` in `listen`, `public_url` and the `env`
/// file's SIGNPATH_API_URL) replaced by `address`, where the gateway listens. Other lines (a `crl_listen` on
/// port 0) stay.
fn pin_address(text: &str, address: &str) -> String {
    let api_lines = ["listen =", "public_url =", "export SIGNPATH_API_URL="];
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if api_lines.iter().any(|start| line.starts_with(start)) {
            out.push_str(
                &line
                    .replace("127.0.0.1:0\"", &format!("{address}\""))
                    .replace("127.0.0.1:0'", &format!("{address}'")),
            );
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Writes the gateway's address into `file` in place of port 0 (see [`pin_address`]).
pub fn pin_address_in(file: &Path, api_url: &str) {
    let address = api_url.trim_start_matches("https://");
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, pin_address(&text, address)).unwrap();
}

impl Gateway {
    /// The gateway binary (`SIGNPATH_GATEWAY_BIN`, else target/release).
    pub fn binary() -> PathBuf {
        tools::release_artifact("signpath-gateway")
    }

    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Like [`Gateway::start`], with `configure` run on the setup directory after `init` and before `serve`
    /// (to edit gateway.toml, add approvers, ...).
    pub fn start_with(configure: impl FnOnce(&Path)) -> Self {
        Self::start_serving(configure, &[])
    }

    /// Like [`Gateway::start_with`], with more arguments for `serve` (`--log-format json`, ...).
    pub fn start_serving(configure: impl FnOnce(&Path), serve_args: &[&str]) -> Self {
        Self::start_under(&[], configure, serve_args)
    }

    /// Like [`Gateway::start_serving`], with `serve` run through `wrapper` (see [`serve_under`]).
    pub fn start_under(wrapper: &[&str], configure: impl FnOnce(&Path), serve_args: &[&str]) -> Self {
        let (dir, setup) = init_setup("signpath-gateway-");
        configure(&setup);
        let (child, api_url) = serve_under(
            wrapper,
            &setup.join("gateway.toml"),
            serve_args,
            &dir.path().join("gateway.stderr"),
        );
        // The client settings name the port the gateway got, for tests that read the file as users do.
        pin_address_in(&setup.join("env"), &api_url);
        let env = parse_env(&std::fs::read_to_string(setup.join("env")).unwrap());
        Self { child, dir, env }
    }

    /// The gateway process's id (for its memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway wrote on stderr so far (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.stderr")).unwrap_or_default()
    }

    /// Sends SIGTERM, as systemd or Kubernetes stop a service: the gateway drains and exits.
    pub fn terminate(&self) {
        // kill(1) rather than libc::kill: no unsafe code outside the PKCS#11 FFI layer.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the gateway to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The setup directory (`gateway.toml`, `env`, `ca/root.pem`, ...).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("gw")
    }

    pub fn config(&self) -> PathBuf {
        self.dir().join("gateway.toml")
    }

    pub fn api_url(&self) -> &str {
        &self.env["SIGNPATH_API_URL"]
    }

    pub fn organization_id(&self) -> &str {
        &self.env["SIGNPATH_ORGANIZATION_ID"]
    }

    pub fn api_token(&self) -> &str {
        &self.env["SIGNPATH_API_TOKEN"]
    }

    /// The CA of the gateway's TLS certificate.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir().join("tls-ca.pem")
    }

    /// A blocking HTTPS client that trusts only this gateway's TLS CA, for tests that speak the API directly.
    pub fn https_client(&self) -> reqwest::blocking::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(self.tls_ca()).unwrap()).unwrap();
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap()
    }

    /// A raw TLS connection to the gateway (handshake done), for tests that write requests byte by byte.
    pub fn tls_connect(&self) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(self.tls_ca()).unwrap();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let address = self.api_url().trim_start_matches("https://");
        let tcp = std::net::TcpStream::connect(address).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = rustls::StreamOwned::new(
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap(),
            tcp,
        );
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls
    }

    /// `{ApiUrl}/v1/{OrganizationId}`, the base of every API route.
    pub fn api_base(&self) -> String {
        format!("{}/v1/{}", self.api_url(), self.organization_id())
    }

    /// The root of the signing PKI, what verifiers trust.
    pub fn root_ca_pem(&self) -> PathBuf {
        self.dir().join("ca/root.pem")
    }

    /// SIGNPATH_API_URL, SIGNPATH_ORGANIZATION_ID, SIGNPATH_API_TOKEN and SIGNPATH_TLS_CA_BUNDLE.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The audit log, oldest first, one JSON object per record.
    pub fn audit_json(&self) -> Vec<serde_json::Value> {
        let out = Command::new(Self::binary())
            .args(["audit", "--json", "--config"])
            .arg(self.config())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "audit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A new token allowed to submit to `policies` (`Project/Policy`). The running gateway reads tokens at start,
    /// so this restarts it on the same port.
    pub fn add_token(&mut self, name: &str, policies: &[&str]) -> String {
        let mut cmd = Command::new(Self::binary());
        cmd.args(["token", "add", "--config"])
            .arg(self.config())
            .args(["--name", name]);
        for p in policies {
            cmd.args(["--policy", p]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "token add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.restart();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the gateway (SIGKILL, as a crash would) and starts it again on the same port and database: the port it
    /// got at the first start is written into gateway.toml in place of port 0, so clients keep their URL.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        pin_address_in(&self.config(), self.api_url());
        let child = serve(&self.config(), &[], &self.dir.path().join("gateway.stderr"));
        self.child = child;
    }

    /// Runs a command with the client settings in its environment.
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new(program.as_ref());
        cmd.envs(self.env_vars());
        cmd
    }
}

/// `POST {api_base}/SigningRequests/SignHash` of a SHA-256 `digest` with `demo/ec-256` (the policy every `init`
/// creates); the answer when it is a 200, else None. A free function, so that client threads can call it while the
/// test holds the gateway (to restart it, say).
pub fn sign_ec256(
    http: &reqwest::blocking::Client,
    api_base: &str,
    token: &str,
    digest: &[u8],
) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let body = serde_json::json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
        "hashSigningData": {"signatureAlgorithm": "Ecdsa",
            "hash": base64::engine::general_purpose::STANDARD.encode(digest)}});
    http.post(format!("{api_base}/SigningRequests/SignHash"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .ok()
        .filter(|r| r.status() == 200)
        .and_then(|r| r.json().ok())
}

fn stop(child: &mut Child) {
    // SIGTERM would be kinder, but std has no portable way without libc; the audit log is committed per request,
    // so a kill loses nothing that was answered.
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_0_address_is_replaced_in_the_configuration_and_the_env_file() {
        let config = "listen = \"127.0.0.1:0\"\npublic_url = \"https://127.0.0.1:0\"\n[pki]\ncrl_listen = \"127.0.0.1:0\"\n";
        assert_eq!(
            pin_address(config, "127.0.0.1:40000"),
            "listen = \"127.0.0.1:40000\"\npublic_url = \"https://127.0.0.1:40000\"\n[pki]\ncrl_listen = \"127.0.0.1:0\"\n"
        );
        let env = "export SIGNPATH_API_URL='https://127.0.0.1:0'\nexport SIGNPATH_API_TOKEN='t'\n";
        assert_eq!(
            pin_address(env, "127.0.0.1:40000"),
            "export SIGNPATH_API_URL='https://127.0.0.1:40000'\nexport SIGNPATH_API_TOKEN='t'\n"
        );
    }

    #[test]
    fn a_free_port_is_below_the_ephemeral_range_and_free() {
        let port = free_port();
        assert!((20_000..32_000).contains(&port));
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
