//! `serve`: HTTPS with rustls on the configured address, one task per connection, graceful shutdown on SIGTERM
//! or SIGINT (stop accepting, let requests in flight finish and be audited).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::Peer;
use crate::config::{resolve, GatewayConfig};
use crate::hsm;
use crate::signing::state::State;
use crate::signing::Core;
use crate::store::Stores;

pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(config_path: &Path) -> Result<(), ServeError> {
    let (config, base) = GatewayConfig::load(config_path)?;
    if let Some(conf) = &config.hsm.softhsm2_conf {
        hsm::use_softhsm_conf(&resolve(&base, conf));
    }
    let pin = std::fs::read_to_string(resolve(&base, &config.hsm.pin_file))?;
    let pkcs11 = hsm::open(&config.hsm.module)?;
    let signer = hsm::Signer::new(pkcs11, &config.hsm.token_label, pin.trim())?;
    let state = Arc::new(State::load(&config, &base, signer)?);
    let stores = Stores::sqlite(&resolve(&base, &config.audit_db))?;
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
    runtime.block_on(serve(config, Arc::new(Core::new(state, stores)), tls))
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

async fn serve(config: GatewayConfig, core: Arc<Core>, tls: rustls::ServerConfig) -> Result<(), ServeError> {
    let listener = TcpListener::bind(&config.listen).await?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let active = Arc::new(AtomicUsize::new(0));
    let service = super::service(core);
    println!("signpath-gateway listening on https://{}", listener.local_addr()?);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let service = service.clone();
                let active = active.clone();
                tokio::spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await else {
                        return;
                    };
                    let connection = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(Peer(peer));
                        let service = service.clone();
                        let active = active.clone();
                        async move {
                            active.fetch_add(1, Ordering::SeqCst);
                            let reply = service.oneshot(request).await;
                            active.fetch_sub(1, Ordering::SeqCst);
                            reply
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(tls), connection)
                        .await;
                });
            }
        }
    }
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    for _ in 0..100 {
        if active.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
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
