//! Configuration reload while serving: gateway.toml is read again when it changes (`token add|revoke` and
//! `approver add|remove` rewrite it atomically, or its mode or owner changes) and on SIGHUP. A file that does not
//! load (another user could write it, it has a key the gateway does not know, ...) or whose policies do not match
//! the HSM is refused and logged with the reason, and the configuration in force stays; a good one replaces it
//! whole, for the requests that start after it. Requests in flight finish under the configuration they started with.
//!
//! What a reload changes: tokens, approvers and their owners, policies (submitters, approval, origin rules,
//! certificates) and trusted issuers. The listen address, TLS certificate, HSM and database take a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::GatewayConfig;
use crate::hsm::Signer;
use crate::signing::state::{State, StateError};
use crate::signing::LiveCore;

/// How often the file is looked at: a revoked token is refused within this plus the time a reload takes.
const POLL: Duration = Duration::from_millis(500);

/// Watches `config_path` and SIGHUP for as long as the gateway serves, whose API listener got `listening`. The
/// SIGHUP handler is installed when this is called, inside the runtime and before the gateway says it listens, so a
/// SIGHUP sent after that line reloads and never takes the default action that ends the process.
pub fn watch(
    live: Arc<LiveCore>,
    config_path: PathBuf,
    signer: Arc<Signer>,
    listening: SocketAddr,
) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let hangup = signal(SignalKind::hangup()).ok();
    watching(live, config_path, signer, listening, hangup)
}

async fn watching(
    live: Arc<LiveCore>,
    config_path: PathBuf,
    signer: Arc<Signer>,
    listening: SocketAddr,
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    let mut seen = stamp(&config_path);
    let mut tick = tokio::time::interval(POLL);
    loop {
        let asked = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let now = stamp(&config_path);
        if !asked && now == seen {
            continue;
        }
        seen = now;
        let (path, signer) = (config_path.clone(), signer.clone());
        match tokio::task::spawn_blocking(move || load(&path, signer, listening)).await {
            Ok(Ok(state)) => {
                live.reconfigure(Arc::new(state));
                tracing::info!(config = %config_path.display(), "configuration reloaded");
            }
            Ok(Err(e)) => tracing::error!(config = %config_path.display(), error = %e,
                "the changed configuration was refused; the one in force stays"),
            Err(e) => tracing::error!(error = %e, "the configuration reload failed"),
        }
    }
}

fn load(path: &Path, signer: Arc<Signer>, listening: SocketAddr) -> Result<State, StateError> {
    let (config, base) = GatewayConfig::load(path)?;
    State::load(&config.listening_on(listening), &base, signer)
}

/// What tells a changed file from the same one: its modification time, size and inode (a rewrite is a rename), and
/// its mode and owner (a file made writable by others is refused at once; one made private again is read again).
fn stamp(path: &Path) -> Option<(SystemTime, u64, u64, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.mode(), m.uid()))
}
