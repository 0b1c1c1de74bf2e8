//! The gateway's server limits (`[server]` in gateway.toml) against clients that hold connections without
//! finishing a request: idle TCP connections, half a TLS handshake, half a header after the handshake, half a
//! body. With 1,000 of them open a new client still signs within a second, and every half-sent request is closed
//! within its timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_tests::gateway::{sign_ec256, Gateway};

/// The timeouts this test configures (seconds), short so the test is quick; the defaults are in
/// docs/configuration.md.
const HANDSHAKE: u64 = 2;
const HEADER: u64 = 2;
const BODY: u64 = 2;
const REQUEST: u64 = 4;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn gateway_with_short_timeouts() -> Gateway {
    Gateway::start_with(|dir| {
        let path = dir.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let server = toml::toml! {
            tls_handshake_timeout_seconds = HANDSHAKE
            header_read_timeout_seconds = HEADER
            body_read_timeout_seconds = BODY
            request_timeout_seconds = REQUEST
        };
        config.insert("server".into(), toml::Value::Table(server));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    })
}

fn address(gateway: &Gateway) -> SocketAddr {
    gateway.api_url().trim_start_matches("https://").parse().unwrap()
}

fn tls_client_config(gateway: &Gateway) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(gateway.tls_ca()).unwrap();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS connection with the handshake done and `sent` written.
fn tls_sending(gateway: &Gateway, config: &Arc<rustls::ClientConfig>, sent: &str) -> Tls {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, TcpStream::connect(address(gateway)).unwrap());
    tls.write_all(sent.as_bytes()).unwrap();
    tls.flush().unwrap();
    tls
}

/// Whether the server closed the connection (end of stream, reset, or an answer such as 408 followed by the end)
/// before `deadline`.
fn closed_by(stream: &mut impl Read, set_timeout: impl Fn(Duration), deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        set_timeout(left);
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_thousand_stalled_connections_neither_block_signing_nor_stay_open() {
    let gateway = gateway_with_short_timeouts();
    let addr = address(&gateway);
    let tls_config = tls_client_config(&gateway);
    let api_path = format!("/v1/{}/SigningRequests/SignHash", gateway.organization_id());

    // 700 idle TCP connections and 200 with half a TLS record: nothing the server can read a request from.
    let mut raw: Vec<TcpStream> = (0..900).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for stream in raw.iter_mut().skip(700) {
        stream.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();
    }
    // 100 after the handshake: idle, half a header, all headers but half the body.
    let mut stalled: Vec<(&str, Tls)> = Vec::new();
    for i in 0..100 {
        let (kind, sent) = match i % 3 {
            0 => ("idle after the handshake", String::new()),
            1 => (
                "half a header",
                format!("POST {api_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"),
            ),
            _ => (
                "half a body",
                format!(
                    "POST {api_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"projectSlug\":",
                    gateway.api_token()
                ),
            ),
        };
        stalled.push((kind, tls_sending(&gateway, &tls_config, &sent)));
    }
    let opened = Instant::now();

    // A new client, with a new connection, signs within a second.
    let http = gateway.https_client();
    let started = Instant::now();
    let signed = sign_ec256(&http, &gateway.api_base(), gateway.api_token(), &[7u8; 32]);
    let took = started.elapsed();
    assert!(signed.is_some(), "the new client was not answered 200");
    assert!(
        took < Duration::from_secs(1),
        "signing took {took:?} with 1,000 stalled connections open"
    );

    // Every stalled connection is closed within its timeout (plus a margin for a loaded machine).
    let margin = Duration::from_secs(3);
    for (kind, tls) in &mut stalled {
        let limit = if *kind == "half a body" { REQUEST } else { HEADER };
        let deadline = opened + Duration::from_secs(limit) + margin;
        let socket = tls.sock.try_clone().unwrap();
        let set = |d: Duration| socket.set_read_timeout(Some(d)).unwrap();
        assert!(
            closed_by(tls, set, deadline),
            "a connection with {kind} was still open {:?} after it stalled",
            opened.elapsed()
        );
    }
    for (i, stream) in raw.iter_mut().enumerate() {
        let deadline = opened + Duration::from_secs(HANDSHAKE) + margin;
        let socket = stream.try_clone().unwrap();
        let set = |d: Duration| socket.set_read_timeout(Some(d)).unwrap();
        assert!(
            closed_by(stream, set, deadline),
            "TCP connection {i} without a finished TLS handshake was still open {:?} after it stalled",
            opened.elapsed()
        );
    }
}

/// A body that arrives a byte at a time, each within the body timeout, still ends at the request timeout.
#[test]
fn a_dribbled_body_ends_at_the_request_timeout() {
    let gateway = gateway_with_short_timeouts();
    let tls_config = tls_client_config(&gateway);
    let api_path = format!("/v1/{}/SigningRequests/SignHash", gateway.organization_id());
    let mut tls = tls_sending(
        &gateway,
        &tls_config,
        &format!(
            "POST {api_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            gateway.api_token()
        ),
    );
    let started = Instant::now();
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(REQUEST + 4) {
        if tls.write_all(b" ").and_then(|()| tls.flush()).is_err() {
            break;
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "the dribbled request was answered {answer:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(REQUEST + 2),
        "the answer came after {took:?}"
    );
}
