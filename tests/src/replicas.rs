//! Gateways as replicas: one `signpath-gateway init` setup (one HSM token, one PKI, one TLS certificate) whose
//! `audit_db` is a PostgreSQL URL, served by N processes that differ only in their listen ports (each has its own
//! gateway-<n>.toml beside the setup's gateway.toml, which replica 0 uses; and each its own artifact directory,
//! `artifacts-<n>`, as replicas on separate hosts have), and Debian's HAProxy in front of them
//! on a free loopback port. Each replica binds port 0 and says which port it got (replicas 1.. their CRL
//! listener too; replica 0's is the one the certificates name); HAProxy starts once they all listen. The balancer passes TLS through (mode tcp) and drops a replica whose `/readyz`
//! stops answering 200. Dropping the fixture stops every process.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::gateway::{free_port, init_setup, pin_address_in, serve_listening, Gateway};

#[derive(Debug)]
pub struct Replicas {
    setup: PathBuf,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    balancer: Child,
    balancer_port: u16,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// `init` into a temporary directory, `configure` run on the setup directory (to add approvers and tokens,
    /// edit policies, ...), then `n` replicas on `database_url` behind HAProxy (`haproxy` is its path).
    pub fn start(n: usize, database_url: &str, haproxy: &Path, configure: impl FnOnce(&Path)) -> Self {
        let (dir, setup) = init_setup("signpath-replicas-");
        let balancer_port = free_port();
        configure(&setup);
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        config.insert("audit_db".into(), database_url.into());
        config.insert(
            "public_url".into(),
            format!("https://127.0.0.1:{balancer_port}").into(),
        );
        for i in 0..n {
            config.insert("listen".into(), "127.0.0.1:0".into());
            let artifacts = config
                .entry("artifacts")
                .or_insert_with(|| toml::Table::new().into());
            if let Some(artifacts) = artifacts.as_table_mut() {
                artifacts.insert("directory".into(), format!("artifacts-{i}").into());
            }
            // Each replica publishes the CRLs on a port of its own (the URL in the certificates stays replica 0's).
            if i > 0 {
                if let Some(pki) = config.get_mut("pki").and_then(|p| p.as_table_mut()) {
                    pki.insert("crl_listen".into(), "127.0.0.1:0".into());
                }
            }
            std::fs::write(Self::config_of(&setup, i), toml::to_string(&config).unwrap()).unwrap();
        }
        let mut children = Vec::new();
        let mut ports = Vec::new();
        for i in 0..n {
            let (child, url) = serve_listening(
                &Self::config_of(&setup, i),
                &[],
                &setup.join(format!("replica-{i}.stderr")),
            );
            children.push(Some(child));
            ports.push(url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap());
        }
        let balancer = start_haproxy(haproxy, dir.path(), balancer_port, &ports);
        Self {
            setup,
            ports,
            children,
            balancer,
            balancer_port,
            _dir: dir,
        }
    }

    /// gateway.toml for replica 0, gateway-<i>.toml for the others.
    fn config_of(setup: &Path, i: usize) -> PathBuf {
        if i == 0 {
            setup.join("gateway.toml")
        } else {
            setup.join(format!("gateway-{i}.toml"))
        }
    }

    /// Replica `i`'s configuration file.
    pub fn config(&self, i: usize) -> PathBuf {
        Self::config_of(&self.setup, i)
    }

    /// Replica `i`'s own artifact directory (`[artifacts] directory`).
    pub fn artifact_directory(&self, i: usize) -> PathBuf {
        self.setup.join(format!("artifacts-{i}"))
    }

    /// The setup directory (`env`, `tls-ca.pem`, `ca/root.pem`, ...).
    pub fn setup(&self) -> &Path {
        &self.setup
    }

    /// Starts replica `i` again on the port it got at its first start (written into its configuration in place
    /// of port 0, so the balancer finds it) and waits for its "listening" line.
    fn serve(&self, i: usize) -> Child {
        pin_address_in(&self.config(i), &self.replica_url(i));
        serve_listening(
            &self.config(i),
            &[],
            &self.setup.join(format!("replica-{i}.stderr")),
        )
        .0
    }

    /// SIGKILL to replica `i`, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM to replica `i` (it finishes what is in flight), then starts it again on the same port.
    pub fn restart(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let child = self.serve(i);
        self.children[i] = Some(child);
    }

    /// The balancer's URL, what clients use.
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.balancer_port)
    }

    /// Replica `i`'s own URL, past the balancer.
    pub fn replica_url(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.ports[i])
    }

    /// The setup's `env` file: SIGNPATH_ORGANIZATION_ID, SIGNPATH_API_TOKEN, ...
    pub fn env(&self, name: &str) -> String {
        std::fs::read_to_string(self.setup.join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('\'').to_owned())
            .unwrap()
    }

    /// An HTTPS client that trusts the gateways' TLS CA and follows no redirects.
    pub fn https_client(&self) -> reqwest::blocking::Client {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(self.setup.join("tls-ca.pem")).unwrap()).unwrap();
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap()
    }

    /// Runs `signpath-gateway <args> --config <replica i's file>`; its stdout, or a panic with its stderr.
    pub fn gateway_command(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(Gateway::binary())
            .args(args)
            .arg("--config")
            .arg(self.config(i))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "signpath-gateway {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Debian's HAProxy and PostgreSQL server binaries, what a replica test needs; None when either is missing, which
/// fails the test in CI (scripts/install-deps installs both) and skips it elsewhere with a note.
pub fn haproxy_and_postgres() -> Option<(PathBuf, PathBuf)> {
    match (haproxy(), crate::postgres::bin_dir()) {
        (Some(haproxy), Some(postgres)) => Some((haproxy, postgres)),
        _ => {
            assert!(
                !crate::tools::in_ci(),
                "HAProxy or PostgreSQL is not installed; run scripts/install-deps"
            );
            eprintln!("SKIPPED: Debian's haproxy or postgresql is not installed; run scripts/install-deps");
            None
        }
    }
}

/// Debian's HAProxy: on PATH, or in /usr/sbin (not on every user's PATH).
pub fn haproxy() -> Option<PathBuf> {
    crate::tools::find_tool("haproxy").or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/haproxy");
        sbin.exists().then_some(sbin)
    })
}

/// HAProxy in the foreground, TCP mode (the gateways terminate TLS), round robin, `GET /readyz` over TLS every
/// 200 ms as the health check (a draining or unready replica is dropped); a connection refused by a dead replica
/// is redispatched to another.
fn start_haproxy(haproxy: &Path, dir: &Path, port: u16, backends: &[u16]) -> Child {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server replica-{i} 127.0.0.1:{p} check check-ssl verify none inter 200ms fall 1 rise 1\n"))
        .collect();
    let config = format!(
        "global\n    maxconn 1024\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    \
         retries 3\n    option redispatch\n\
         frontend gateways\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    let mut child = Command::new(haproxy)
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        // Connected, and to HAProxy: it exits at once when another process holds the port.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && child.try_wait().unwrap().is_none() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "haproxy did not listen: {}",
        std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
    );
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.balancer.kill();
        let _ = self.balancer.wait();
    }
}
