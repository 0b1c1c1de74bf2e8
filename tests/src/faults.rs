//! A fault-injecting HTTPS proxy between a client (the Notation plugin or the PKCS#11 module) and the real gateway.
//!
//! It terminates TLS with a certificate of its own (from a CA the client is told to trust, or deliberately from
//! one it is not), reads each HTTP/1.1 request, and does what the test's script says for it: forward it, or
//! answer with a status, garbage, a truncated or reset response, a stall, or a forwarded answer rewritten (a wrong
//! signature, a wrong chain). Every request it saw is recorded with its idempotency key, so a test counts retries
//! and matches them against the gateway's audit log.
//!
//! Every response carries `Connection: close`, so each client attempt is one connection and one request; that
//! keeps the accounting exact and lets "connection refused" be staged by closing the listening socket.
//!
//! Written here rather than taken from a crate: the faults are at the byte level (half a response, then a TCP
//! reset), which general-purpose proxies exist to prevent. Parsing is httparse's, TLS is rustls's.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::gateway::Gateway;

/// What the request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET Cryptoki/MySigningPolicies`
    Policies,
    /// `POST SigningRequests/SignHash`
    SignHash,
    Other,
}

/// A rewrite of a forwarded JSON answer.
pub type Rewrite = Arc<dyn Fn(&mut serde_json::Value) + Send + Sync>;

/// What the proxy does with one request.
#[derive(Clone)]
pub enum Action {
    /// Forward it and return the gateway's answer.
    Pass,
    /// Forward it, return the answer, then close the listening socket: later connections are refused.
    PassThenRefuse,
    /// Forward it (the gateway signs), send the head and half the body, then reset the connection.
    ResetMidResponse,
    /// Forward it (the gateway signs), then hold the answer back for this long and close without one.
    Stall(Duration),
    /// Answer with this status and a problem document, and `Retry-After` when given; nothing is forwarded.
    Status { code: u16, retry_after: Option<u64> },
    /// Answer 200 with an HTML page, as a misconfigured reverse proxy would; nothing is forwarded.
    Garbage,
    /// Forward it, then send the head with the full `Content-Length` and only half the body, and close.
    Truncate,
    /// Forward it and rewrite the JSON answer.
    Rewrite(Rewrite),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pass => f.write_str("Pass"),
            Self::PassThenRefuse => f.write_str("PassThenRefuse"),
            Self::ResetMidResponse => f.write_str("ResetMidResponse"),
            Self::Stall(d) => write!(f, "Stall({d:?})"),
            Self::Status { code, retry_after } => write!(f, "Status({code}, {retry_after:?})"),
            Self::Garbage => f.write_str("Garbage"),
            Self::Truncate => f.write_str("Truncate"),
            Self::Rewrite(_) => f.write_str("Rewrite"),
        }
    }
}

/// Which certificate the proxy presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// For localhost, from the CA in [`FaultProxy::ca_bundle`]: the client trusts it.
    Trusted,
    /// For localhost, from another CA the client does not trust.
    Untrusted,
    /// From the trusted CA, but for another host name.
    OtherHost,
}

/// The script: given the route and how many requests on that route came before (0 for the first), the action.
pub type Script = Arc<dyn Fn(Route, usize) -> Action + Send + Sync>;

/// One request the proxy read.
#[derive(Debug, Clone)]
pub struct Seen {
    pub route: Route,
    pub idempotency_key: Option<String>,
    pub at: Instant,
    pub action: String,
}

struct Shared {
    seen: Mutex<Vec<Seen>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    refuse: AtomicBool,
    /// Set by the accept loop once it has dropped the listening socket.
    closed: AtomicBool,
    script: Script,
    tls: Arc<rustls::ServerConfig>,
    upstream: reqwest::blocking::Client,
    upstream_base: String,
    addr: SocketAddr,
}

/// The proxy; dropping it stops it.
pub struct FaultProxy {
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    pub fn start(
        gateway: &Gateway,
        identity: Identity,
        script: impl Fn(Route, usize) -> Action + Send + Sync + 'static,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trusted = ca("Fault proxy test CA");
        let rogue = ca("Fault proxy rogue CA");
        std::fs::write(dir.path().join("ca.pem"), trusted.0.pem()).unwrap();
        let (issuer, names) = match identity {
            Identity::Trusted => (&trusted, vec!["localhost", "127.0.0.1"]),
            Identity::Untrusted => (&rogue, vec!["localhost", "127.0.0.1"]),
            Identity::OtherHost => (&trusted, vec!["gateway.other.example"]),
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.into_iter().map(str::to_owned).collect::<Vec<_>>()).unwrap();
        let leaf = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shared = Arc::new(Shared {
            seen: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            script: Arc::new(script),
            tls: Arc::new(tls),
            upstream: gateway.https_client(),
            upstream_base: gateway.api_url().trim_end_matches('/').to_owned(),
            addr: listener.local_addr().unwrap(),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) || accept.refuse.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept.connections.fetch_add(1, Ordering::SeqCst);
                let connection = accept.clone();
                std::thread::spawn(move || connection.serve(stream));
            }
            drop(listener); // later connections are refused
            accept.closed.store(true, Ordering::SeqCst);
        });
        Self { shared, dir }
    }

    /// `https://localhost:{port}`, the `ApiUrl` a client uses to go through the proxy.
    pub fn api_url(&self) -> String {
        format!("https://localhost:{}", self.shared.addr.port())
    }

    /// The CA of the proxy's trusted certificate, for `TlsCaBundle`.
    pub fn ca_bundle(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The gateway's client settings, pointed at the proxy.
    pub fn env_vars(&self, gateway: &Gateway) -> Vec<(String, String)> {
        let mut vars = gateway.env_vars();
        for (name, value) in &mut vars {
            match name.as_str() {
                "SIGNPATH_API_URL" => *value = self.api_url(),
                "SIGNPATH_TLS_CA_BUNDLE" => *value = self.ca_bundle().display().to_string(),
                _ => {}
            }
        }
        vars
    }

    /// Every request read so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The requests on one route.
    pub fn seen_on(&self, route: Route) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.route == route).collect()
    }

    /// TCP connections accepted (a failed TLS handshake counts; a refused connection cannot).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The directory for the test's own files (removed with the proxy).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.shared.addr, Duration::from_millis(200));
    }
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    (params.self_signed(&key).unwrap(), key)
}

/// A request as read off the wire.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// A response about to be written.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

impl Shared {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(connection) = rustls::ServerConnection::new(self.tls.clone()) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(connection, stream);
        // A handshake the client aborts (an untrusted certificate) ends here, as an error reading the request.
        let Some(request) = read_request(&mut tls) else {
            return;
        };
        let route = if request.path.ends_with("/Cryptoki/MySigningPolicies")
            || request.path.contains("/Cryptoki/MySigningPolicies?")
        {
            Route::Policies
        } else if request.path.ends_with("/SigningRequests/SignHash") {
            Route::SignHash
        } else {
            Route::Other
        };
        let action = {
            let mut seen = self.seen.lock().unwrap();
            let nth = seen.iter().filter(|s| s.route == route).count();
            let action = (self.script)(route, nth);
            seen.push(Seen {
                route,
                idempotency_key: header(&request, "idempotency-key"),
                at: Instant::now(),
                action: format!("{action:?}"),
            });
            action
        };
        match action {
            Action::Pass => {
                let response = self.forward(&request);
                write_response(&mut tls, &response);
            }
            Action::PassThenRefuse => {
                let response = self.forward(&request);
                // The listener is closed before the client has the answer: a client that connects again at once
                // (a busy machine can schedule it before this thread) must be refused, not served.
                self.refuse.store(true, Ordering::SeqCst);
                // Wake the accept loop so that it drops the listener now, and wait until it has.
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while !self.closed.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                write_response(&mut tls, &response);
            }
            Action::ResetMidResponse => {
                let response = self.forward(&request);
                let bytes = encode(&response);
                let _ = tls.write_all(&bytes[..bytes.len() - response.body.len() / 2]);
                let _ = tls.flush();
                // SO_LINGER 0: close sends a TCP reset instead of a FIN.
                let _ = socket2::SockRef::from(tls.get_ref()).set_linger(Some(Duration::ZERO));
            }
            Action::Stall(duration) => {
                let _ = self.forward(&request);
                std::thread::sleep(duration);
            }
            Action::Status { code, retry_after } => {
                let mut headers = vec![("Content-Type".to_owned(), "application/problem+json".to_owned())];
                if let Some(seconds) = retry_after {
                    headers.push(("Retry-After".to_owned(), seconds.to_string()));
                }
                let body = serde_json::json!({
                    "type": "about:blank",
                    "title": format!("injected HTTP {code}"),
                    "status": code,
                });
                write_response(
                    &mut tls,
                    &Response {
                        status: code,
                        headers,
                        body: body.to_string().into_bytes(),
                    },
                );
            }
            Action::Garbage => write_response(
                &mut tls,
                &Response {
                    status: 200,
                    headers: vec![("Content-Type".to_owned(), "text/html".to_owned())],
                    body: b"<html><body><h1>Welcome to nginx!</h1></body></html>".to_vec(),
                },
            ),
            Action::Truncate => {
                let response = self.forward(&request);
                let bytes = encode(&response);
                let _ = tls.write_all(&bytes[..bytes.len() - response.body.len() / 2]);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            Action::Rewrite(rewrite) => {
                let mut response = self.forward(&request);
                if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&response.body) {
                    rewrite(&mut value);
                    response.body = value.to_string().into_bytes();
                }
                write_response(&mut tls, &response);
            }
        }
    }

    fn forward(&self, request: &Request) -> Response {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut upstream = self
            .upstream
            .request(method, format!("{}{}", self.upstream_base, request.path))
            .body(request.body.clone());
        for (name, value) in &request.headers {
            if !matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) {
                upstream = upstream.header(name.as_str(), value.as_slice());
            }
        }
        let answer = upstream.send().unwrap();
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .filter(|(name, _)| {
                matches!(
                    name.as_str(),
                    "content-type" | "retry-after" | "location" | "x-request-id"
                )
            })
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = answer.bytes().unwrap().to_vec();
        Response {
            status,
            headers,
            body,
        }
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
fn read_request(tls: &mut Tls) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tls.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buffer).ok()? {
            httparse::Status::Partial if buffer.len() < 1 << 20 => continue,
            httparse::Status::Partial => return None,
            httparse::Status::Complete(head) => {
                let headers: Vec<(String, Vec<u8>)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
                    .unwrap_or(0);
                let method = parsed.method?.to_owned();
                let path = parsed.path?.to_owned();
                let mut body = buffer[head..].to_vec();
                while body.len() < length {
                    let n = tls.read(&mut chunk).ok()?;
                    if n == 0 {
                        return None;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(length);
                return Some(Request {
                    method,
                    path,
                    headers,
                    body,
                });
            }
        }
    }
}

fn encode(response: &Response) -> Vec<u8> {
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

fn write_response(tls: &mut Tls, response: &Response) {
    let _ = tls.write_all(&encode(response));
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
