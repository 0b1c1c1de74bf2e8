//! The harness of `notation_protocol.rs`: the plugin run as notation runs it (an empty environment with its own
//! HOME, cache and log directory, the request on stdin, stdout, stderr and exit code captured), the requests it
//! is given, and the scripted stand-in gateway on loopback with its P-256 test PKI (leaf, intermediate, root)
//! that can be told to misbehave.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{DerSignature, Signature, SigningKey};
use serde_json::{json, Value};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

pub const ORGANIZATION: &str = "8f5c2a51-7d1e-4c2b-9a55-0c1d2e3f4a5b";
pub const TOKEN: &str = "protocol-test-token-Zq7xW2";
pub const KEY_ID: &str = "demo/ec-256";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------------------------------------------
// The plugin as a process

/// The binary under test: `NOTATION_SIGNPATH_BIN`, else the newer of the release and debug builds.
pub fn plugin_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NOTATION_SIGNPATH_BIN").filter(|p| !p.is_empty()) {
        return e2e_tests::tools::workspace_root().join(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| e2e_tests::tools::workspace_root().join(t))
        .unwrap_or_else(|| e2e_tests::tools::workspace_root().join("target"));
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("notation-signpath"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .expect("notation-signpath is not built; run `cargo build --release -p notation-signpath`")
}

/// One plugin invocation's environment: nothing inherited, a private HOME, cache and log directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: BTreeMap<String, String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let vars = BTreeMap::from([
            ("HOME".to_owned(), path("home")),
            ("XDG_CACHE_HOME".to_owned(), path("cache")),
            ("SIGNPATH_LOG_FILE_DIRECTORY".to_owned(), path("logs")),
            ("SIGNPATH_LOG_FILE_LEVEL".to_owned(), "debug".to_owned()),
        ]);
        Self { dir, vars }
    }

    /// Settings for the stand-in gateway, short timeouts so that failures come quickly.
    pub fn for_gateway(gateway: &FakeGateway) -> Self {
        Self::new()
            .with("SIGNPATH_API_URL", &gateway.url())
            .with("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP", "true")
            .with("SIGNPATH_ORGANIZATION_ID", ORGANIZATION)
            .with("SIGNPATH_API_TOKEN", TOKEN)
            .with("SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS", "2")
            .with("SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS", "1")
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(plugin_binary())
            .args(args)
            .env_clear()
            .envs(&self.vars)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start notation-signpath");
        let mut input = child.stdin.take().expect("stdin");
        // A command-line error ends the plugin before it reads stdin; the write then fails, as it may.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child.wait_with_output().expect("wait for notation-signpath");
        Run {
            code: output.status.code().expect("exit code, not a signal"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    pub fn log(&self) -> String {
        let path = self
            .dir
            .path()
            .join("logs")
            .join("SignPath.CryptoProviders.Notation.txt");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache").join("notation-signpath")
    }
}

/// The exact stderr of a failure.
pub fn error_json(code: &str, message: &str) -> String {
    format!(
        r#"{{"errorCode":"{code}","errorMessage":{}}}"#,
        serde_json::to_string(message).expect("JSON string")
    )
}

impl Run {
    pub fn assert_error(&self, code: &str, message: &str) {
        assert_eq!(
            (self.code, self.stdout.as_str(), self.stderr.as_str()),
            (1, "", error_json(code, message).as_str())
        );
    }

    /// A failure with this code whose message starts with `prefix` (for messages with timings in them).
    pub fn assert_error_starting(&self, code: &str, prefix: &str) -> Value {
        assert_eq!(
            (self.code, self.stdout.as_str()),
            (1, ""),
            "stderr: {}",
            self.stderr
        );
        let error: Value = serde_json::from_str(&self.stderr).expect("stderr is one JSON object");
        assert_eq!(error.as_object().map(|o| o.len()), Some(2), "{error}");
        assert_eq!(error["errorCode"], code, "{error}");
        let message = error["errorMessage"].as_str().expect("errorMessage");
        assert!(message.starts_with(prefix), "{message}");
        error
    }

    pub fn success(&self) -> Value {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "stdout: {}",
            self.stdout
        );
        serde_json::from_str(&self.stdout).expect("stdout is one JSON value")
    }
}

pub fn describe_request(key_id: &str) -> String {
    json!({"contractVersion": "1.0", "keyId": key_id}).to_string()
}

/// A JWS signing input as notation builds it, naming `digest` as the signed manifest.
pub fn jws_signing_input(digest: &str) -> String {
    let protected = json!({"alg": "ES256", "cty": "application/vnd.cncf.notary.payload.v1+json"});
    let payload = json!({"targetArtifact": {
        "digest": digest,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 528
    }});
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(protected.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

pub fn sign_request(key_spec: &str, hash: &str, payload: &[u8]) -> String {
    json!({
        "contractVersion": "1.0",
        "keyId": KEY_ID,
        "keySpec": key_spec,
        "hashAlgorithm": hash,
        "payload": BASE64.encode(payload),
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// A scripted gateway

/// A certificate with its key.
pub struct Issued {
    pub key: SigningKey,
    pub name: Name,
    pub der: Vec<u8>,
}

pub fn issue(
    subject: &str,
    profile: impl FnOnce(Option<Name>) -> Profile,
    issuer: Option<&Issued>,
) -> Issued {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let name = Name::from_str(subject).expect("name");
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("SPKI");
    let signer = issuer.map_or(&key, |i| &i.key);
    let builder = CertificateBuilder::new(
        profile(issuer.map(|i| i.name.clone())),
        SerialNumber::from(1u32),
        Validity::from_now(Duration::from_secs(30 * 86_400)).expect("validity"),
        name.clone(),
        spki,
        signer,
    )
    .expect("certificate builder");
    let der = builder
        .build::<DerSignature>()
        .expect("sign certificate")
        .to_der()
        .expect("DER");
    Issued { key, name, der }
}

/// Leaf, intermediate, root, as a gateway's `init` makes them (subjects with C, ST and O, as Notary wants).
pub fn test_pki() -> Vec<Issued> {
    let root = issue("CN=Test Root,O=Test,ST=WA,C=US", |_| Profile::Root, None);
    let ca = issue(
        "CN=Test Intermediate,O=Test,ST=WA,C=US",
        |i| Profile::SubCA {
            issuer: i.expect("issuer"),
            path_len_constraint: Some(0),
        },
        Some(&root),
    );
    let leaf = issue(
        "CN=demo ec-256,O=Test,ST=WA,C=US",
        |i| Profile::Leaf {
            issuer: i.expect("issuer"),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        Some(&ca),
    );
    vec![leaf, ca, root]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// Every request answers this status with a problem document.
    Status(u16),
    /// SignHash answers a signature with one bit flipped.
    WrongSignature,
    /// The policy's chain stops at the intermediate.
    ChainWithoutRoot,
    /// Connections are accepted and never answered.
    Silent,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

pub struct FakeGateway {
    pub port: u16,
    pub chain: Vec<Vec<u8>>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeGateway {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("address").port();
        let pki = test_pki();
        let chain: Vec<Vec<u8>> = pki.iter().map(|c| c.der.clone()).collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ServerState {
            behaviour,
            leaf_key: pki[0].key.clone(),
            chain: chain.clone(),
            requests: requests.clone(),
            held: Mutex::new(Vec::new()),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || state.serve(stream));
            }
        });
        Self {
            port,
            chain,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }

    /// How many requests went to a route (`MySigningPolicies`, `SignHash`).
    pub fn count(&self, route: &str) -> usize {
        self.requests().iter().filter(|r| r.path.contains(route)).count()
    }
}

struct ServerState {
    behaviour: Behaviour,
    leaf_key: SigningKey,
    chain: Vec<Vec<u8>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Connections kept open without an answer (`Silent`).
    held: Mutex<Vec<TcpStream>>,
}

impl ServerState {
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("request body");
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        self.requests.lock().expect("requests").push(Recorded {
            method,
            path: path.clone(),
            body: body.clone(),
        });

        if self.behaviour == Behaviour::Silent {
            self.held.lock().expect("held").push(stream);
            return;
        }
        let (status, response) = self.answer(&headers, &path, &body);
        let body = response.to_string();
        let reason = match status {
            200 => "OK",
            _ => "Error",
        };
        let content_type = if status == 200 {
            "application/json"
        } else {
            "application/problem+json"
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Retry-After: 1\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn answer(&self, headers: &BTreeMap<String, String>, path: &str, body: &[u8]) -> (u16, Value) {
        let problem = |status: u16, detail: &str| {
            (
                status,
                json!({"type": "about:blank", "title": "refused", "status": status, "detail": detail}),
            )
        };
        if let Behaviour::Status(status) = self.behaviour {
            return problem(status, &format!("scripted {status}"));
        }
        if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
            return problem(401, "the API token is not valid");
        }
        let prefix = format!("/v1/{ORGANIZATION}/");
        let Some(route) = path.strip_prefix(&prefix) else {
            return problem(404, "no such organization");
        };
        if route.starts_with("Cryptoki/MySigningPolicies") {
            if !route.contains("projectSlug=demo&signingPolicySlug=ec-256") {
                return (200, json!({"signingPolicies": []}));
            }
            let chain: Vec<String> = match self.behaviour {
                Behaviour::ChainWithoutRoot => &self.chain[..2],
                _ => &self.chain[..],
            }
            .iter()
            .map(|der| BASE64.encode(der))
            .collect();
            let point = self.leaf_key.verifying_key().to_encoded_point(false);
            return (
                200,
                json!({"signingPolicies": [{
                    "signingPolicySlug": "ec-256",
                    "projectSlug": "demo",
                    "signingPolicyId": "00000000-0000-0000-0000-000000000001",
                    "keyType": "Ecdsa",
                    "keySizeInBits": 256,
                    "certificateBytes": chain[0],
                    "publicKeyBytes": BASE64.encode(point.as_bytes()),
                    "certificateChain": chain,
                }]}),
            );
        }
        if route == "SigningRequests/SignHash" {
            let request: Value = serde_json::from_slice(body).expect("SignHash JSON");
            let digest = BASE64
                .decode(request["hashSigningData"]["hash"].as_str().expect("hash"))
                .expect("base64 hash");
            let signature: Signature = self.leaf_key.sign_prehash(&digest).expect("sign");
            let mut signature = signature.to_bytes().to_vec();
            if self.behaviour == Behaviour::WrongSignature {
                signature[10] ^= 0x01;
            }
            return (
                200,
                json!({
                    "signingRequestId": "11111111-2222-3333-4444-555555555555",
                    "hashSigningResult": {"signature": BASE64.encode(signature)},
                }),
            );
        }
        problem(404, "no such route")
    }
}
