//! `serve`: HTTPS with rustls on the configured address, one task per connection, a graceful drain on SIGTERM
//! or SIGINT (`/readyz` answers 503 at once; connections are still accepted for `drain_delay_seconds`, then no
//! more; requests in flight finish and are audited, for at most `drain_timeout_seconds`; then the process exits).
//! The connection-level limits are
//! `[server]` in gateway.toml: a cap on open connections within the open-file budget (`open_files`), the TLS
//! handshake timeout here, the header timeout and the backoff when `accept` fails in `listener` (which the CRL
//! listener shares); the request-level ones are tower layers in `http::service`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::listener::{http1, Accepted, CappedListener};
use super::{Operations, Peer};
use crate::config::{resolve, GatewayConfig};
use crate::hsm;
use crate::metrics::Metrics;
use crate::open_files::{self, Budget};
use crate::signing::state::State;
use crate::signing::{Core, LiveCore};
use crate::store::Stores;

pub type ServeError = crate::error::BoxError;

pub fn run(config_path: &Path) -> Result<(), ServeError> {
    let (config, base) = GatewayConfig::load(config_path)?;
    let budget = Budget::within(
        open_files::raise_to_hard_limit(),
        &config.server,
        config.pki.is_some(),
    );
    if budget.lowered {
        tracing::warn!(
            "the connection caps do not fit the open-file limit and are lowered: {}; raise the limit \
             (systemd LimitNOFILE=, ulimit -n) or lower the caps in [server]",
            budget.describe(&config.server)
        );
    } else {
        tracing::info!("{}", budget.describe(&config.server));
    }
    // Bound first, so that a configured port 0 has become a port before anything names the public URL.
    let listener = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    listener.set_nonblocking(true)?;
    let listening = listener.local_addr()?;
    let config = config.listening_on(listening);
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(async_workers())
        .enable_all()
        .build()?;
    let log = Arc::new(crate::tlog::Sequencer::open(
        stores.log.clone(),
        signer.clone(),
        crate::tlog::origin(&config.public_url),
    )?);
    log.step()?;
    log.clone().spawn()?;
    let operations = Arc::new(Operations::new(metrics, signer.clone(), stores.clone(), log));
    let revocations = stores.revocations.clone();
    let request_revocations = stores.request_revocations.clone();
    let live = Arc::new(LiveCore::new(Core::new(state, stores)));
    if let Some(shared) = revocations {
        super::revocations::refresh(&live, shared.as_ref())?;
        runtime.spawn(super::revocations::watch(live.clone(), shared));
    }
    let mut crl_listening = None;
    if let Some(pki) = &config.pki {
        let crl_listener = runtime
            .block_on(TcpListener::bind(&pki.crl_listen))
            .map_err(|e| format!("cannot listen for CRLs on {}: {e}", pki.crl_listen))?;
        crl_listening = Some(crl_listener.local_addr()?);
        let crl_listener = CappedListener::new(crl_listener, budget.crl, "crl");
        let publisher = crate::pki::publisher::Publisher::new(pki.clone(), &base, signer.clone());
        let lists = crate::signing::revocation_list::ListPublisher::new(
            pki.clone(),
            &base,
            config.organization_id.clone(),
            signer.clone(),
            request_revocations,
        );
        runtime.spawn(super::crl::serve(
            Arc::new(publisher),
            Arc::new(lists),
            crl_listener,
            config.server.clone(),
        ));
    }
    let watching = {
        let _entered = runtime.enter();
        super::watch_configuration(live.clone(), config_path.to_owned(), signer, listening)
    };
    runtime.spawn(watching);
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)?
    };
    runtime.block_on(serve(
        config,
        budget,
        listener,
        crl_listening,
        live,
        tls,
        operations,
    ))
}

/// Threads for the async side: half the cores, at least one. A request's own work (the HSM, the audit commit)
/// runs on the blocking pool, so the workers only carry TLS and HTTP, about a third of a request's CPU. A worker
/// per core was no faster under load and cost a request alone two wake-ups of an idle worker for nothing (Tokio
/// wakes a parked worker whenever another finds work): docs/performance-levers.md.
fn async_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
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

/// Serves on `listener` until SIGTERM or SIGINT and the drain. The first line on stdout says where it listens
/// (`signpath-gateway listening on https://ADDRESS`, the port the system gave for a configured port 0), the
/// second, with a `[pki]`, where the CRLs are; scripts and tests wait for the first and read the addresses there.
async fn serve(
    config: GatewayConfig,
    budget: Budget,
    listener: TcpListener,
    crl_listening: Option<std::net::SocketAddr>,
    live: Arc<LiveCore>,
    tls: rustls::ServerConfig,
    operations: Arc<Operations>,
) -> Result<(), ServeError> {
    let limits = config.server.clone();
    let mut listener = CappedListener::new(listener, budget.api, "api");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    // Every served connection is watched, so the drain can wait for the requests in flight on all of them.
    let graceful = GracefulShutdown::new();
    let service = super::service(live, &limits, operations.clone());
    // The handlers are installed before the first line is printed: whoever waits for that line and then sends
    // SIGTERM gets a drain, never the default action that kills the process.
    let stop_signals = StopSignals::install();
    println!("signpath-gateway listening on https://{}", listener.local_addr()?);
    if let Some(crl) = crl_listening {
        println!("signpath-gateway serving CRLs on http://{crl}");
    }
    let drain_delay = Duration::from_secs(limits.drain_delay_seconds);
    let shutdown = async {
        stop_signals.received().await;
        operations.start_draining();
        tracing::info!(
            delay_seconds = drain_delay.as_secs(),
            "draining: /readyz answers 503; still accepting connections for the drain delay"
        );
        tokio::time::sleep(drain_delay).await;
    };
    tokio::pin!(shutdown);
    loop {
        let Accepted { permit, stream, peer } = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted?,
        };
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
            let connection = http1(&limits).serve_connection(TokioIo::new(tls), connection);
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

/// SIGTERM and SIGINT, caught from the moment `install` returns.
struct StopSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl StopSignals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => {
                tracing::warn!("cannot catch SIGTERM and SIGINT; the gateway stops without a drain");
                Self(None)
            }
        }
    }

    async fn received(self) {
        let Some((mut term, mut int)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
}
