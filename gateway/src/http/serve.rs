//! `serve`: HTTPS with rustls on the configured address, one task per connection, a graceful drain on SIGTERM
//! or SIGINT (`/readyz` answers 503 at once; connections are still accepted for `drain_delay_seconds`, then no
//! more; requests in flight finish and are audited, for at most `drain_timeout_seconds`; then the process exits).
//! The connection-level limits live
//! here (`[server]` in gateway.toml: a cap on open connections, TLS handshake and header timeouts, a backoff when
//! `accept` fails); the request-level ones are tower layers in `http::service`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::{Operations, Peer};
use crate::config::{resolve, GatewayConfig};
use crate::hsm;
use crate::metrics::Metrics;
use crate::signing::state::State;
use crate::signing::{Core, LiveCore};
use crate::store::Stores;

pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(config_path: &Path) -> Result<(), ServeError> {
    let (config, base) = GatewayConfig::load(config_path)?;
    if let Some(conf) = &config.hsm.softhsm2_conf {
        hsm::use_softhsm_conf(&resolve(&base, conf));
    }
    let pin = config.hsm.read_pin(&base)?;
    let pkcs11 = hsm::open(&config.hsm.module)?;
    let signer = Arc::new(hsm::Signer::new(pkcs11, &config.hsm.token_label, &pin)?);
    let state = Arc::new(State::load(&config, &base, signer.clone())?);
    let metrics = Arc::new(Metrics::new());
    signer.count_signatures(metrics.clone());
    let stores = Stores::open(&base, &config.audit_db)?.metered(metrics.clone());
    let recovered = stores.approvals.recover()?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "signing requests interrupted while being signed are approved again"
        );
    }
    let tls = tls_config(
        &resolve(&base, &config.tls.certificate),
        &resolve(&base, &config.tls.key),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let operations = Arc::new(Operations::new(metrics, signer.clone(), stores.clone()));
    let revocations = stores.revocations.clone();
    let live = Arc::new(LiveCore::new(Core::new(state, stores)));
    if let Some(shared) = revocations {
        super::revocations::refresh(&live, shared.as_ref())?;
        runtime.spawn(super::revocations::watch(live.clone(), shared));
    }
    if let Some(pki) = &config.pki {
        let listener = runtime
            .block_on(TcpListener::bind(&pki.crl_listen))
            .map_err(|e| format!("cannot listen for CRLs on {}: {e}", pki.crl_listen))?;
        let publisher = crate::pki::publisher::Publisher::new(pki.clone(), &base, signer.clone());
        runtime.spawn(super::crl::serve(Arc::new(publisher), listener));
    }
    runtime.spawn(super::watch_configuration(
        live.clone(),
        config_path.to_owned(),
        signer,
    ));
    runtime.block_on(serve(config, live, tls, operations))
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServeError> {
    let certs = rustls_pemfile::certs(&mut std::fs::read(cert)?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(key)?.as_slice())?
        .ok_or_else(|| format!("{} holds no private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

async fn serve(
    config: GatewayConfig,
    live: Arc<LiveCore>,
    tls: rustls::ServerConfig,
    operations: Arc<Operations>,
) -> Result<(), ServeError> {
    raise_open_file_limit();
    let limits = config.server.clone();
    let listener = TcpListener::bind(&config.listen).await?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    // Every served connection is watched, so the drain can wait for the requests in flight on all of them.
    let graceful = GracefulShutdown::new();
    // One permit per open connection: at the cap the loop stops accepting, and new clients wait in the listen
    // backlog until a connection closes (the timeouts below see that idle ones do).
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let service = super::service(live, &limits, operations.clone());
    println!("signpath-gateway listening on https://{}", listener.local_addr()?);
    let drain_delay = Duration::from_secs(limits.drain_delay_seconds);
    let shutdown = async {
        shutdown_signal().await;
        operations.start_draining();
        tracing::info!(
            delay_seconds = drain_delay.as_secs(),
            "draining: /readyz answers 503; still accepting connections for the drain delay"
        );
        tokio::time::sleep(drain_delay).await;
    };
    tokio::pin!(shutdown);
    let mut backoff = AcceptBackoff::default();
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit?,
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.reset();
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE, ENFILE) or memory: retrying at once would spin. Wait,
                    // longer each time, until a connection closes and frees a descriptor.
                    let pause = backoff.next();
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accepting a connection failed");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = Duration::from_secs(limits.tls_handshake_timeout_seconds);
            let Ok(Ok(tls)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await else {
                return;
            };
            let connection = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(Peer(peer));
                service.clone().oneshot(request)
            });
            // hyper starts the header timer whenever it waits for a request, so it also closes a connection
            // left idle after the handshake or between kept-alive requests.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds))
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), connection);
            // When the drain starts, an idle connection closes at once and a busy one after its answer is written.
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    let bound = Duration::from_secs(limits.drain_timeout_seconds);
    if tokio::time::timeout(bound, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            timeout_seconds = bound.as_secs(),
            "requests still in flight after the drain timeout; exiting anyway"
        );
    } else {
        tracing::info!("drained: every request in flight was answered");
    }
    Ok(())
}

/// The pause after a failed `accept`: 10 ms, doubling up to 1 s, back to 10 ms after a success.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_millis(10u64 << self.failures.min(7)).min(Duration::from_secs(1));
        self.failures = self.failures.saturating_add(1);
        pause
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Raises the soft limit on open files to the hard limit: every connection holds one, and the default soft
/// limit (often 1024) is below what `max_connections` allows.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
