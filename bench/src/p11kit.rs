//! The peer a user would reach for first to use an HSM from another process: p11-kit's remoting. `p11-kit server`
//! loads SoftHSM2 (the gateway's own token and key) and exposes it on a unix socket; `p11-kit-client.so`, loaded
//! by the `signpath-bench csign` process, forwards every PKCS#11 call over that socket. Same token, same key and
//! same C_Sign loop as our module and as SoftHSM2 loaded directly, so the three sit side by side in one table.
//!
//! p11-kit's remoting has no TLS, no authentication beyond the socket's file mode, no audit record and no check
//! of the signature it forwards; the table compares against it anyway, because it is the bar a user sees.
//! This module owns only the server's life and the client's environment; it imports nothing of the gateway.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Where Debian's p11-kit-modules puts the client module (multiarch) and where other layouts do.
const CLIENT_MODULES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib64/pkcs11/p11-kit-client.so",
    "/usr/lib/pkcs11/p11-kit-client.so",
];

/// A running `p11-kit server` on a socket of its own; stopped when dropped.
#[derive(Debug)]
pub struct P11KitServer {
    child: Child,
    socket: PathBuf,
    client_module: PathBuf,
}

impl P11KitServer {
    /// Starts `p11-kit server` in the foreground with SoftHSM2 as its provider, exporting the token labelled
    /// `token` (SoftHSM2 reads its configuration from `softhsm_conf`), and waits for its socket.
    pub fn start(softhsm_module: &Path, softhsm_conf: &Path, token: &str, dir: &Path) -> Result<Self> {
        let client_module = CLIENT_MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("p11-kit-client.so not found; install p11-kit-modules (scripts/install-deps does)")?;
        let socket = dir.join("p11-kit.sock");
        let child = Command::new("p11-kit")
            .args(["server", "--foreground", "--name"])
            .arg(&socket)
            .arg("--provider")
            .arg(softhsm_module)
            .arg(format!("pkcs11:token={token}"))
            .env("SOFTHSM2_CONF", softhsm_conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("p11-kit server: {e} (install p11-kit; scripts/install-deps does)"))?;
        let mut server = Self {
            child,
            socket,
            client_module,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.socket.exists() {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("p11-kit server exited before it listened ({status})").into());
            }
            if Instant::now() > deadline {
                return Err("p11-kit server did not create its socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The module a client loads to reach the server.
    pub fn client_module(&self) -> &Path {
        &self.client_module
    }

    /// The client's environment: where the server listens (p11-kit-client.so reads nothing else).
    pub fn client_env(&self) -> (String, String) {
        (
            "P11_KIT_SERVER_ADDRESS".to_owned(),
            format!("unix:path={}", self.socket.display()),
        )
    }
}

impl Drop for P11KitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
