//! What both listeners (the API's in `serve`, the CRL listener in `crl`) do the same way with a connection: hold
//! one of the listener's permits while it is open (at the cap the listener stops accepting, and new clients wait
//! in its listen backlog until a connection closes), back off when `accept` fails, and serve HTTP/1 with the header
//! timer of `[server]` (which also closes a connection left idle). The caps come from `open_files::Budget`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;

/// A listening socket and its connection cap.
#[derive(Debug)]
pub struct CappedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    backoff: AcceptBackoff,
    /// Which listener this is, for the log.
    name: &'static str,
}

/// An accepted connection, with the permit it holds until dropped.
#[derive(Debug)]
pub struct Accepted {
    pub permit: OwnedSemaphorePermit,
    pub stream: TcpStream,
    pub peer: SocketAddr,
}

impl CappedListener {
    pub fn new(listener: TcpListener, cap: usize, name: &'static str) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(cap.max(1))),
            backoff: AcceptBackoff::default(),
            name,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, once a permit is free. Cancel-safe: dropped before a connection arrives, it takes
    /// none and holds no permit.
    pub async fn accept(&mut self) -> Result<Accepted, AcquireError> {
        let permit = self.permits.clone().acquire_owned().await?;
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff.reset();
                    let _ = stream.set_nodelay(true);
                    return Ok(Accepted { permit, stream, peer });
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE, ENFILE) or memory: retrying at once would spin. Wait,
                    // longer each time, until a connection closes and frees a descriptor.
                    let pause = self.backoff.next();
                    tracing::warn!(listener = self.name, error = %e, pause_ms = pause.as_millis() as u64,
                        "accepting a connection failed");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// HTTP/1 as both listeners serve it. hyper starts the header timer whenever it waits for a request, so it also
/// closes a connection left idle after it opened (or after its TLS handshake) or between kept-alive requests.
pub fn http1(limits: &ServerConfig) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds))
        .keep_alive(true);
    builder
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
