//! A scripted HTTPS server for the client's tests: it answers each request with the next scripted response and
//! records what it received. One thread, one connection at a time, `Connection: close`, so a test sees every
//! request the client makes. A stand-in for the gateway inside unit tests only; the real gateway is tested
//! end to end elsewhere.

#![allow(dead_code, clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Scripted {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub struct TestServer {
    pub port: u16,
    pub ca_pem_path: std::path::PathBuf,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the server; when the script runs out it repeats the last response.
    pub fn start(script: Vec<Scripted>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.is_ca = rcgen::IsCa::NoCa;
        let cert = params.self_signed(&key).unwrap();
        let ca_pem_path = dir.path().join("ca.pem");
        std::fs::write(&ca_pem_path, cert.pem()).unwrap();
        let server_config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(cert.der().to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .unwrap();
        let server_config = Arc::new(server_config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (req, scr) = (requests.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let Some(recorded) = read_request(&mut tls) else {
                    continue;
                };
                req.lock().unwrap().push(recorded);
                let response = {
                    let mut s = scr.lock().unwrap();
                    if s.len() > 1 {
                        s.pop_front().unwrap()
                    } else {
                        s.front().cloned().unwrap()
                    }
                };
                let mut text = format!(
                    "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                    response.status,
                    response.body.len()
                );
                for (k, v) in &response.headers {
                    text.push_str(&format!("{k}: {v}\r\n"));
                }
                text.push_str("\r\n");
                text.push_str(&response.body);
                let _ = tls.write_all(text.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Self {
            port,
            ca_pem_path,
            requests,
            script,
            _dir: dir,
        }
    }

    /// Replaces what is still to be answered (for a script that names the server's own port).
    pub fn script(&self, script: Vec<Scripted>) {
        *self.script.lock().unwrap() = VecDeque::from(script);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request<S: Read + Write>(stream: &mut S) -> Option<Recorded> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

/// Client configuration pointing at the test server.
pub fn config_for(server: &TestServer, host: &str, budget_secs: u64) -> signpath_common::config::Config {
    let port = server.port.to_string();
    let ca = server.ca_pem_path.display().to_string();
    let budget = budget_secs.to_string();
    let host = host.to_owned();
    let env = move |name: &str| -> Option<String> {
        match name {
            "SIGNPATH_API_URL" => Some(format!("https://{host}:{port}/Api")),
            "SIGNPATH_ORGANIZATION_ID" => Some("6b8d2c1e-0000-4000-8000-000000000001".into()),
            "SIGNPATH_API_TOKEN" => Some("test-token".into()),
            "SIGNPATH_TLS_CA_BUNDLE" => Some(ca.clone()),
            "SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS" => Some(budget.clone()),
            "SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS" => Some("5".into()),
            _ => None,
        }
    };
    signpath_common::config::Config::load(&Default::default(), &env).unwrap()
}

pub fn fast_options() -> signpath_common::client::ClientOptions {
    let mut options = signpath_common::client::ClientOptions::new("Tests", "0.0.0");
    options.retry.first_delay = std::time::Duration::from_millis(20);
    options.retry.max_delay = std::time::Duration::from_millis(200);
    options
}

/// Client configuration pointing at the test server, with more variables (`extra` wins over the defaults).
pub fn config_with(server: &TestServer, extra: &[(&str, String)]) -> signpath_common::config::Config {
    let base = config_for(server, "127.0.0.1", 30);
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let (port, ca) = (server.port, server.ca_pem_path.display().to_string());
    let env = move |name: &str| -> Option<String> {
        if let Some((_, v)) = extra.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        match name {
            "SIGNPATH_API_URL" => Some(format!("https://127.0.0.1:{port}/Api")),
            "SIGNPATH_ORGANIZATION_ID" => base.organization_id.clone(),
            "SIGNPATH_API_TOKEN" => Some("test-token".into()),
            "SIGNPATH_TLS_CA_BUNDLE" => Some(ca.clone()),
            "SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS" => Some("30".into()),
            "SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS" => Some("5".into()),
            _ => None,
        }
    };
    signpath_common::config::Config::load(&Default::default(), &env).unwrap()
}

/// A stand-in of GitHub Actions' identity token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`): plain HTTP on loopback
/// (the only place the client sends the request token without TLS). It records the `audience` of every request
/// and answers `{"value": "token-for-<audience>"}`.
pub struct TokenEndpoint {
    pub url: String,
    audiences: Arc<Mutex<Vec<String>>>,
}

/// The request token the stand-in's job holds.
pub const REQUEST_TOKEN: &str = "request-token";

impl TokenEndpoint {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/idtoken?api-version=2.0",
            listener.local_addr().unwrap().port()
        );
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let recorded = audiences.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let audience = url::Url::parse(&format!("http://localhost{}", request.path))
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "audience")
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_default();
                recorded.lock().unwrap().push(audience.clone());
                let body = format!("{{\"value\":\"token-for-{audience}\"}}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, audiences }
    }

    /// The variables a GitHub Actions job with `id-token: write` has, pointing here.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.url.clone()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
        ]
    }

    /// The audiences asked for so far.
    pub fn audiences(&self) -> Vec<String> {
        self.audiences.lock().unwrap().clone()
    }
}

/// A gateway's answer to [`request`]: completed, with a signature.
pub const SIGNED: &str =
    r#"{"signingRequestId":"r1","status":"Completed","hashSigningResult":{"signature":"AAAA"}}"#;

/// A SignHash request for `demo/ec-256`, as the clients send one.
pub fn request() -> signpath_common::protocol::SignHashRequest {
    use signpath_common::protocol::{HashSigningData, SignHashRequest, SignatureAlgorithm};
    SignHashRequest {
        project_slug: "demo".into(),
        signing_policy_slug: "ec-256".into(),
        artifact_configuration_slug: None,
        description: None,
        hash_signing_data: HashSigningData {
            signature_algorithm: SignatureAlgorithm::Ecdsa,
            rsa_options: None,
            ecdsa_options: None,
            hash: "AAAA".into(),
            metadata: None,
        },
    }
}
