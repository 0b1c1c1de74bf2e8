//! The gateway's two listeners against each other, and its stop. The plain-HTTP CRL listener has limits of its own
//! (a connection cap, the header-read timeout that also closes idle connections), and the two listeners' caps are
//! kept within the open-file limit: 600 idle connections to the CRL listener of a gateway with 512 open files leave
//! the API answering over TLS at once. A gateway stops cleanly on SQLite and on PostgreSQL alike: SIGTERM ends
//! with exit status 0, a start that cannot listen for CRLs with one error line, and neither with a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::crl::crl_url;
use e2e_tests::gateway::{init_setup, serve, Gateway};
use e2e_tests::postgres::{self, Postgres};

/// The open files the gateway gets in the first test: fewer than the attack's connections.
const OPEN_FILES: u64 = 512;
const IDLE_CONNECTIONS: usize = 600;

fn crl_address(config: &Path) -> String {
    let config: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    config["pki"]["crl_listen"].as_str().unwrap().to_owned()
}

fn set_server(config: &Path, server: toml::Table) {
    let mut table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    table.insert("server".into(), toml::Value::Table(server));
    std::fs::write(config, toml::to_string(&table).unwrap()).unwrap();
}

/// A connection to `address` that sends nothing, opened without waiting for the server: beyond the listener's cap
/// and backlog the kernel keeps retrying the handshake, as an attacker's would.
fn connect_idle(address: &str) -> socket2::Socket {
    let address: std::net::SocketAddr = address.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_nonblocking(true).unwrap();
    match socket.connect(&address.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => panic!("connect to {address}: {e}"),
    }
    socket
}

#[test]
fn six_hundred_idle_crl_connections_leave_the_api_answering() {
    let limit = format!("--nofile={OPEN_FILES}:{OPEN_FILES}");
    let gateway = Gateway::start_under(&["prlimit", &limit, "--"], |_| {}, &[]);
    let crl = crl_address(&gateway.config());
    let idle: Vec<socket2::Socket> = (0..IDLE_CONNECTIONS).map(|_| connect_idle(&crl)).collect();
    std::thread::sleep(Duration::from_secs(1));

    // Before: the CRL listener took every descriptor, and the API's accept failed with EMFILE until the TLS
    // handshake timed out.
    let http = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(gateway.tls_ca()).unwrap()).unwrap(),
        )
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap();
    let started = Instant::now();
    let answered = http
        .get(format!(
            "{}/v1/{}/Cryptoki/MySigningPolicies",
            gateway.api_url(),
            gateway.organization_id()
        ))
        .bearer_auth(gateway.api_token())
        .send();
    let elapsed = started.elapsed();
    let status = answered.map(|r| r.status().as_u16());
    assert!(
        matches!(status, Ok(200)) && elapsed < Duration::from_secs(2),
        "with {IDLE_CONNECTIONS} idle CRL connections the API answered {status:?} after {elapsed:?}"
    );

    // Once the idle connections are gone, CRLs are served again.
    drop(idle);
    let started = Instant::now();
    let crl_response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
        .get(crl_url(&gateway, "root"))
        .send()
        .unwrap();
    assert_eq!(crl_response.status(), 200);
    assert_eq!(crl_response.headers()["content-type"], "application/pkix-crl");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_crl_listener_closes_an_idle_connection_at_the_header_timeout() {
    let gateway = Gateway::start_with(|setup| {
        set_server(
            &setup.join("gateway.toml"),
            toml::toml! { header_read_timeout_seconds = 2 },
        );
    });
    let mut idle = TcpStream::connect(crl_address(&gateway.config())).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    // End of stream (or a reset) when the server closes it; a timeout if it never does.
    let closed = match idle.read(&mut buf) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(
        closed && started.elapsed() < Duration::from_secs(5),
        "an idle CRL connection was still open after {:?}",
        started.elapsed()
    );
}

/// SIGHUP then SIGTERM, sent as soon as the gateway says it listens, to a serving gateway on `audit_db` (None: the SQLite file `init` names): exit 0, no panic. Then a start
/// whose CRL port is taken: exit 1 with one error line, no panic.
fn stops_cleanly(audit_db: Option<&str>) {
    let (dir, setup) = init_setup("signpath-stop-");
    let config = setup.join("gateway.toml");
    if let Some(url) = audit_db {
        let mut table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        table.insert("audit_db".into(), url.into());
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    }
    let stderr_path = dir.path().join("serve.stderr");
    let mut child = serve(&config, &[], &stderr_path);
    // Signals sent the moment the gateway says it listens are handled: SIGHUP reloads, it does not end the process.
    let hung_up = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hung_up.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{audit_db:?}: SIGHUP right after the listening line ended the gateway"
    );
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success() && !stderr.contains("panicked"),
        "{audit_db:?}: SIGTERM ended with {status}: {stderr}"
    );

    let taken = TcpListener::bind(crl_address(&config)).unwrap();
    let started = Command::new(Gateway::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    drop(taken);
    let stderr = String::from_utf8_lossy(&started.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("signpath-gateway: "))
        .collect();
    assert!(
        !started.status.success()
            && !stderr.contains("panicked")
            && errors.len() == 1
            && errors[0].contains("cannot listen for CRLs on"),
        "{audit_db:?}: a start with the CRL port taken ended with {}: {stderr}",
        started.status
    );
}

#[test]
fn a_gateway_stops_cleanly_on_sqlite_and_on_postgresql() {
    stops_cleanly(None);
    let Some(bin) = postgres::bin_dir() else {
        assert!(
            !e2e_tests::tools::in_ci(),
            "PostgreSQL is not installed; run scripts/install-deps"
        );
        eprintln!(
            "SKIPPED (PostgreSQL half): Debian's postgresql is not installed; run scripts/install-deps"
        );
        return;
    };
    let pg = Postgres::start(&bin);
    stops_cleanly(Some(&pg.url()));
}
