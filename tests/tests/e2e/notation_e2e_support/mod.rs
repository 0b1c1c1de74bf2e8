//! The fixtures of `notation_e2e.rs`: the release package made once, the gateway's client settings and root,
//! one notation with its own config, plugin directory, cache and HOME and nothing else in its environment, the
//! chain and fingerprints of a policy, images of their own in the registry, and a proxy that spoils the
//! signatures the gateway returns.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::tools;

pub const PROJECT: &str = "demo";
pub const POLICIES: [&str; 6] = ["ec-256", "ec-384", "ec-521", "rsa-2048", "rsa-3072", "rsa-4096"];
pub const FORMATS: [(&str, &str); 2] = [("jws", "application/jose+json"), ("cose", "application/cose")];

pub fn signing_algorithm(policy: &str) -> &'static str {
    match policy {
        "ec-256" => "ECDSA-SHA-256",
        "ec-384" => "ECDSA-SHA-384",
        "ec-521" => "ECDSA-SHA-512",
        "rsa-2048" => "RSASSA-PSS-SHA-256",
        "rsa-3072" => "RSASSA-PSS-SHA-384",
        "rsa-4096" => "RSASSA-PSS-SHA-512",
        other => panic!("no policy {other}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

/// The release package, made once per test binary by `scripts/package` from the release build.
pub fn package() -> PathBuf {
    static PACKAGE: OnceLock<PathBuf> = OnceLock::new();
    PACKAGE
        .get_or_init(|| {
            let binary = tools::release_artifact("notation-signpath");
            let out = tools::release_dir()
                .parent()
                .expect("target directory")
                .join("notation-e2e-package");
            let _ = std::fs::remove_dir_all(&out);
            let output = Command::new(tools::workspace_root().join("scripts").join("package"))
                .env("NOTATION_SIGNPATH_BIN", &binary)
                .env("NOTATION_SIGNPATH_PACKAGE_DIR", &out)
                .output()
                .expect("run scripts/package");
            assert!(
                output.status.success(),
                "scripts/package failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let packages: Vec<PathBuf> = std::fs::read_dir(&out)
                .expect("package directory")
                .map(|e| e.expect("entry").path())
                .filter(|p| {
                    p.file_name().is_some_and(|name| {
                        let name = name.to_string_lossy();
                        name.starts_with("notation-signpath_") && name.ends_with(".tar.gz")
                    })
                })
                .collect();
            // scripts/package also packs the cosign KMS plugin; the plugin's tarball is the one named for it.
            assert_eq!(packages.len(), 1, "{packages:?}");
            let sum = std::fs::read_to_string(format!("{}.sha256", packages[0].display())).expect("checksum");
            let archive = std::fs::read(&packages[0]).expect("package");
            assert_eq!(
                sum.split_whitespace().next(),
                Some(hex::encode(Sha256::digest(&archive)).as_str())
            );
            packages[0].clone()
        })
        .clone()
}

/// The gateway's client settings, as `. DIR/env` exports them.
pub fn gateway_env(gateway: &Gateway) -> BTreeMap<String, String> {
    gateway.env_vars().into_iter().collect()
}

/// The root of the gateway's signing PKI (`DIR/ca/root.pem`), what verifiers trust.
pub fn root_pem(gateway: &Gateway) -> Vec<u8> {
    std::fs::read(gateway.root_ca_pem()).expect("the gateway's root certificate")
}

/// One user's notation: its own directories, the plugin installed from the package, and (after
/// [`Notation::trust`]) a trust store and a strict trust policy.
pub struct Notation {
    pub binary: PathBuf,
    pub home: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
}

impl Notation {
    pub fn new(binary: &Path, settings: BTreeMap<String, String>) -> Self {
        let home = tempfile::tempdir().expect("temporary directory");
        let dir = |name: &str| home.path().join(name).display().to_string();
        let mut env = settings;
        for (name, value) in [
            ("HOME", dir("home")),
            ("NOTATION_CONFIG", dir("config")),
            ("NOTATION_LIBEXEC", dir("libexec")),
            ("NOTATION_CACHE", dir("cache")),
            ("XDG_CACHE_HOME", dir("xdg-cache")),
            ("SIGNPATH_LOG_FILE_DIRECTORY", dir("logs")),
            ("SIGNPATH_LOG_FILE_LEVEL", "debug".to_owned()),
        ] {
            env.insert(name.to_owned(), value);
        }
        let notation = Self {
            binary: binary.to_path_buf(),
            home,
            env,
        };
        let installed = notation.ok(&["plugin", "install", "--file", &package().display().to_string()]);
        assert!(
            installed.contains(&format!(
                "Successfully installed plugin signpath, version {}",
                env!("CARGO_PKG_VERSION")
            )),
            "{installed}"
        );
        notation
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    pub fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .envs(extra_env.iter().copied())
            .current_dir(self.home.path())
            .output()
            .expect("run notation")
    }

    /// Runs notation, expects success, returns stdout and stderr together.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    pub fn ok_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> String {
        let output = self.run(args, extra_env);
        let text = combined(&output);
        assert!(
            output.status.success(),
            "notation {args:?} failed:\n{text}\nplugin log:\n{}",
            self.log()
        );
        text
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]);
        let text = combined(&output);
        assert!(!output.status.success(), "notation {args:?} succeeded:\n{text}");
        text
    }

    /// Trusts `root_pem` (store `ca:signpath`) for `scopes`, with strict verification of any identity.
    pub fn trust(&self, root_pem: &[u8], scopes: &[&str]) {
        let root = self.path("root.pem");
        std::fs::write(&root, root_pem).expect("write the root");
        self.ok(&[
            "cert",
            "add",
            "--type",
            "ca",
            "--store",
            "signpath",
            &root.display().to_string(),
        ]);
        let policy = json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "signpath",
                "registryScopes": scopes,
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:signpath"],
                "trustedIdentities": ["*"],
            }],
        });
        let file = self.path("trustpolicy.json");
        std::fs::write(&file, policy.to_string()).expect("write the trust policy");
        self.ok(&["policy", "import", "--force", &file.display().to_string()]);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("logs").join("SignPath.CryptoProviders.Notation.txt"))
            .unwrap_or_default()
    }

    /// `notation inspect --output json`: the signatures on an artifact.
    pub fn signatures(&self, reference: &str) -> Vec<Value> {
        let output = self.run(&["inspect", "--output", "json", reference], &[]);
        assert!(output.status.success(), "{}", combined(&output));
        let inspected: Value = serde_json::from_slice(&output.stdout).expect("inspect JSON");
        inspected["Signatures"].as_array().cloned().unwrap_or_default()
    }
}

pub fn combined(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A policy's certificate chain as the gateway itself reports it (DER, leaf first).
pub fn policy_chain(gateway: &Gateway, policy: &str) -> Vec<Vec<u8>> {
    let env = gateway_env(gateway);
    let config = common::config::Config::load(&BTreeMap::new(), &move |name: &str| env.get(name).cloned())
        .expect("the gateway's settings");
    let client =
        common::client::GatewayClient::new(&config, common::client::ClientOptions::new("tests", "0"))
            .expect("a gateway client");
    client
        .fetch_key(PROJECT, policy, None)
        .unwrap_or_else(|e| panic!("{PROJECT}/{policy}: {e}"))
        .chain
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// An image of its own for each case, so each verify sees exactly one signature.
pub fn push(registry: &Registry, repo: &str, content: &str) -> ImageRef {
    registry.push_image(repo, "v1", &SmallImage::with_content(content.as_bytes()))
}

// ---------------------------------------------------------------------------------------------------------------
// A proxy that spoils signatures

/// Plain HTTP on loopback in front of the gateway (the plugin allows that for loopback), forwarding every request
/// and flipping one byte of each `hashSigningResult.signature` it passes back.
pub struct TamperingProxy {
    port: u16,
    tampered: Arc<std::sync::atomic::AtomicUsize>,
}

impl TamperingProxy {
    pub fn start(gateway_env: &BTreeMap<String, String>) -> Self {
        let upstream = gateway_env["SIGNPATH_API_URL"].trim_end_matches('/').to_owned();
        let mut client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60));
        if let Some(bundle) = gateway_env.get("SIGNPATH_TLS_CA_BUNDLE") {
            let pem = std::fs::read(bundle).expect("the gateway's TLS CA bundle");
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"));
        }
        let client = client.build().expect("HTTP client");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let tampered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = tampered.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (client, upstream, counter) = (client.clone(), upstream.clone(), counter.clone());
                std::thread::spawn(move || forward(stream, &client, &upstream, &counter));
            }
        });
        Self { port, tampered }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn tampered(&self) -> usize {
        self.tampered.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn forward(
    stream: TcpStream,
    client: &reqwest::blocking::Client,
    upstream: &str,
    tampered: &std::sync::atomic::AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("request body");
    let mut parts = request_line.split_whitespace();
    let method = reqwest::Method::from_bytes(parts.next().unwrap_or("GET").as_bytes()).expect("method");
    let path = parts.next().unwrap_or("/").to_owned();

    let mut request = client.request(method, format!("{upstream}{path}")).body(body);
    for (name, value) in &headers {
        if matches!(
            name.as_str(),
            "authorization" | "content-type" | "accept" | "idempotency-key" | "user-agent"
        ) {
            request = request.header(name, value);
        }
    }
    let response = request.send().expect("forward to the gateway");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let mut body = response.bytes().expect("gateway response").to_vec();
    if path.contains("SignHash") && status.is_success() {
        let mut answer: Value = serde_json::from_slice(&body).expect("SignHash JSON");
        if let Some(signature) = answer["hashSigningResult"]["signature"].as_str() {
            let mut bytes = BASE64.decode(signature).expect("base64 signature");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            answer["hashSigningResult"]["signature"] = Value::String(BASE64.encode(bytes));
            tampered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        body = answer.to_string().into_bytes();
    }
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Status"),
        body.len()
    );
    let _ = stream.write_all(&body);
}
