//! The real notation CLI signing with our plugin, installed from the release package, against the real gateway
//! and a real registry, the way docs/notation.md tells a user to do it: `notation plugin install --file`,
//! `notation sign --plugin signpath --id demo/<policy>` (or a key added with `--plugin-config`), and
//! `notation verify` with the gateway's root in a trust store and a strict trust policy.
//!
//! Every notation gets its own NOTATION_CONFIG, NOTATION_LIBEXEC, NOTATION_CACHE, HOME and plugin cache, and an
//! environment that holds nothing but what the test gives it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{self, ImageRef, Registry, SmallImage};
use e2e_tests::{require_tool, tools};

const PROJECT: &str = "demo";
const POLICIES: [&str; 6] = ["ec-256", "ec-384", "ec-521", "rsa-2048", "rsa-3072", "rsa-4096"];
const FORMATS: [(&str, &str); 2] = [("jws", "application/jose+json"), ("cose", "application/cose")];

fn signing_algorithm(policy: &str) -> &'static str {
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
fn package() -> PathBuf {
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
                .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
                .collect();
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
fn gateway_env(gateway: &Gateway) -> BTreeMap<String, String> {
    gateway.env_vars().into_iter().collect()
}

/// The root of the gateway's signing PKI (`DIR/ca/root.pem`), what verifiers trust.
fn root_pem(gateway: &Gateway) -> Vec<u8> {
    std::fs::read(gateway.root_ca_pem()).expect("the gateway's root certificate")
}

/// One user's notation: its own directories, the plugin installed from the package, and (after
/// [`Notation::trust`]) a trust store and a strict trust policy.
struct Notation {
    binary: PathBuf,
    home: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Notation {
    fn new(binary: &Path, settings: BTreeMap<String, String>) -> Self {
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

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
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
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    fn ok_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> String {
        let output = self.run(args, extra_env);
        let text = combined(&output);
        assert!(
            output.status.success(),
            "notation {args:?} failed:\n{text}\nplugin log:\n{}",
            self.log()
        );
        text
    }

    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]);
        let text = combined(&output);
        assert!(!output.status.success(), "notation {args:?} succeeded:\n{text}");
        text
    }

    /// Trusts `root_pem` (store `ca:signpath`) for `scopes`, with strict verification of any identity.
    fn trust(&self, root_pem: &[u8], scopes: &[&str]) {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("logs").join("SignPath.CryptoProviders.Notation.txt"))
            .unwrap_or_default()
    }

    /// `notation inspect --output json`: the signatures on an artifact.
    fn signatures(&self, reference: &str) -> Vec<Value> {
        let output = self.run(&["inspect", "--output", "json", reference], &[]);
        assert!(output.status.success(), "{}", combined(&output));
        let inspected: Value = serde_json::from_slice(&output.stdout).expect("inspect JSON");
        inspected["Signatures"].as_array().cloned().unwrap_or_default()
    }
}

fn combined(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A policy's certificate chain as the gateway itself reports it (DER, leaf first).
fn policy_chain(gateway: &Gateway, policy: &str) -> Vec<Vec<u8>> {
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

fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// An image of its own for each case, so each verify sees exactly one signature.
fn push(registry: &Registry, repo: &str, content: &str) -> ImageRef {
    registry.push_image(repo, "v1", &SmallImage::with_content(content.as_bytes()))
}

// ---------------------------------------------------------------------------------------------------------------
// Installation

#[test]
fn the_package_installs_and_notation_lists_the_plugin() {
    let notation_bin = require_tool!("notation");
    let notation = Notation::new(&notation_bin, BTreeMap::new());
    let list = notation.ok(&["plugin", "list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("signpath "))
        .unwrap_or_else(|| panic!("signpath is not listed:\n{list}"));
    assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
    assert!(line.contains("[SIGNATURE_GENERATOR.RAW]"), "{line}");
    assert!(line.trim_end().ends_with("<nil>"), "{line}");
    let installed = notation.path("libexec").join("plugins").join("signpath");
    let files: Vec<String> = std::fs::read_dir(&installed)
        .expect("plugin directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["notation-signpath"]);
}

// ---------------------------------------------------------------------------------------------------------------
// Signing and verifying

#[test]
fn every_policy_signs_jws_and_cose_that_notation_verifies() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["*"]);

    for policy in POLICIES {
        let chain = policy_chain(gateway, policy);
        assert_eq!(chain.len(), 3, "{policy}: leaf, intermediate, root");
        let leaf = common::x509::ParsedCertificate::from_der(&chain[0]).expect("leaf");
        for (format, media_type) in FORMATS {
            let image = push(&registry, "demo/matrix", &format!("{policy} {format}"));
            let key_id = format!("{PROJECT}/{policy}");
            let signed = notation.ok(&[
                "sign",
                "--plugin",
                "signpath",
                "--id",
                &key_id,
                "--signature-format",
                format,
                &image.reference,
            ]);
            assert!(
                signed.contains(&format!("Successfully signed {}", image.reference)),
                "{signed}"
            );

            let verified = notation.ok(&["verify", &image.reference]);
            assert!(
                verified.contains(&format!(
                    "Successfully verified signature for {}",
                    image.reference
                )),
                "{policy} {format}: {verified}"
            );

            let signatures = notation.signatures(&image.reference);
            assert_eq!(signatures.len(), 1, "{policy} {format}: {signatures:?}");
            let signature = &signatures[0];
            assert_eq!(signature["mediaType"], media_type, "{policy} {format}");
            assert_eq!(signature["signatureAlgorithm"], signing_algorithm(policy));
            let certificates = signature["certificates"].as_array().expect("certificates");
            let fingerprints: Vec<&str> = certificates
                .iter()
                .map(|c| c["SHA256Fingerprint"].as_str().expect("fingerprint"))
                .collect();
            let expected: Vec<String> = chain.iter().map(|der| fingerprint(der)).collect();
            assert_eq!(
                fingerprints, expected,
                "{policy} {format}: the chain leaf to root"
            );
            assert_eq!(certificates[0]["issuedTo"], leaf.subject(), "{policy} {format}");
            let agent = signature["unsignedAttributes"]["signingAgent"]
                .as_str()
                .unwrap_or_default();
            assert!(
                agent.ends_with(&format!("signpath/{}", env!("CARGO_PKG_VERSION"))),
                "{agent}"
            );
        }
    }
}

#[test]
fn a_key_added_with_plugin_config_signs() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    // Only the token and the gateway's TLS CA in the environment: OrganizationId and ApiUrl come from the key.
    let mut env = gateway_env(gateway);
    let organization = env
        .remove("SIGNPATH_ORGANIZATION_ID")
        .expect("SIGNPATH_ORGANIZATION_ID");
    let api_url = env.remove("SIGNPATH_API_URL").expect("SIGNPATH_API_URL");
    let notation = Notation::new(&notation_bin, env);
    notation.trust(&root_pem(gateway), &["*"]);

    notation.ok(&[
        "key",
        "add",
        "release",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-256",
        "--plugin-config",
        &format!("OrganizationId={organization}"),
        "--plugin-config",
        &format!("ApiUrl={api_url}"),
        "--default",
    ]);
    let keys = notation.ok(&["key", "list"]);
    assert!(keys.contains("release") && keys.contains("demo/ec-256"), "{keys}");

    let image = push(&registry, "demo/key", "stored key");
    notation.ok(&["sign", "--key", "release", &image.reference]);
    let verified = notation.ok(&["verify", &image.reference]);
    assert!(verified.contains("Successfully verified signature"), "{verified}");
    // The default key signs too, and signingkeys.json never holds a token.
    let image = push(&registry, "demo/key", "default key");
    notation.ok(&["sign", &image.reference]);
    let stored =
        std::fs::read_to_string(notation.path("config").join("signingkeys.json")).expect("signingkeys.json");
    let token = gateway_env(gateway).remove("SIGNPATH_API_TOKEN").expect("token");
    assert!(!stored.contains(&token));
}

#[test]
fn a_signature_whose_chain_does_not_reach_the_trusted_root_fails_verification() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/untrusted", "untrusted root");
    let signer = Notation::new(&notation_bin, gateway_env(gateway));
    signer.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-384",
        &image.reference,
    ]);

    // A verifier that trusts another root, with the same subject as the gateway's, but another key.
    let verifier = Notation::new(&notation_bin, BTreeMap::new());
    verifier.trust(&other_root_pem(), &["*"]);
    let failed = verifier.fails(&["verify", &image.reference]);
    assert!(failed.contains("signature verification failed"), "{failed}");
}

/// A self-signed CA certificate nothing in the gateway's chain was issued by.
fn other_root_pem() -> Vec<u8> {
    use p256::ecdsa::{DerSignature, SigningKey};
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    let key = SigningKey::random(&mut rand_core::OsRng);
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("SPKI");
    let certificate = CertificateBuilder::new(
        Profile::Root,
        x509_cert::serial_number::SerialNumber::from(9u32),
        x509_cert::time::Validity::from_now(Duration::from_secs(86_400)).expect("validity"),
        x509_cert::name::Name::from_str("CN=Another Root,O=Elsewhere,ST=WA,C=US").expect("name"),
        spki,
        &key,
    )
    .expect("builder")
    .build::<DerSignature>()
    .expect("certificate");
    certificate
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .expect("PEM")
        .into_bytes()
}

#[test]
fn a_wrong_signature_from_the_gateway_fails_the_sign_and_nothing_is_pushed() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = &Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/tampered", "tampered signature");
    let mut env = gateway_env(gateway);
    let proxy = TamperingProxy::start(&env);
    env.insert("SIGNPATH_API_URL".into(), proxy.url());
    env.insert("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP".into(), "true".into());
    let notation = Notation::new(&notation_bin, env);

    let failed = notation.fails(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/rsa-2048",
        &image.reference,
    ]);
    assert!(
        failed.contains(
            "the signature the gateway returned for demo/rsa-2048 does not verify with the policy's public key"
        ),
        "{failed}"
    );
    assert!(proxy.tampered() >= 1, "the proxy changed no signature");
    assert_eq!(
        registry.tags_for_digest("demo/tampered", &image.digest),
        Vec::<String>::new()
    );
    assert!(registry
        .referrers_by_tag("demo/tampered", &image.digest)
        .is_empty());
    assert!(notation.signatures(&image.reference).is_empty());
}

#[test]
fn an_oci_layout_is_signed_before_push_and_verified_with_a_local_scope() {
    let notation_bin = require_tool!("notation");
    let gateway = &Gateway::start();
    let notation = Notation::new(&notation_bin, gateway_env(gateway));
    notation.trust(&root_pem(gateway), &["local/app"]);
    let layout = notation.path("app");
    let digest = registry::write_oci_layout(&layout, "v1");
    let reference = format!("{}@{digest}", layout.display());
    let experimental = [("NOTATION_EXPERIMENTAL", "1")];

    let signed = notation.ok_with(
        &[
            "sign",
            "--oci-layout",
            "--plugin",
            "signpath",
            "--id",
            "demo/ec-521",
            "--signature-format",
            "cose",
            &reference,
        ],
        &experimental,
    );
    assert!(signed.contains("Successfully signed"), "{signed}");
    let verified = notation.ok_with(
        &["verify", "--oci-layout", "--scope", "local/app", &reference],
        &experimental,
    );
    assert!(verified.contains("Successfully verified signature"), "{verified}");
    // The signature is in the layout itself, next to the image, ready to be pushed with it; notation records the
    // chain's fingerprints on its manifest.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("JSON");
    let thumbprints: Vec<Value> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"].as_str())
        .map(|t| serde_json::from_str(t).expect("thumbprint list"))
        .collect();
    let expected: Vec<String> = policy_chain(gateway, "ec-521")
        .iter()
        .map(|d| fingerprint(d))
        .collect();
    assert_eq!(thumbprints, vec![json!(expected)], "{index}");
}

// ---------------------------------------------------------------------------------------------------------------
// What one sign costs, and what the audit log learns

#[test]
fn one_sign_costs_one_sign_hash_and_at_most_one_key_lookup_and_is_audited_with_the_manifest() {
    let notation_bin = require_tool!("notation");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let image = push(&registry, "demo/audited", "audited");
    let before = gateway.audit_json().len();
    let notation = Notation::new(&notation_bin, gateway_env(&gateway));
    notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/rsa-3072",
        "--signature-format",
        "cose",
        &image.reference,
    ]);
    let records: Vec<Value> = gateway.audit_json().into_iter().skip(before).collect();

    let sign_hash = on_route(&records, "SignHash");
    assert_eq!(sign_hash.len(), 1, "{records:#?}");
    assert!(on_route(&records, "MySigningPolicies").len() <= 1, "{records:#?}");
    assert_eq!(
        records.len(),
        sign_hash.len() + on_route(&records, "MySigningPolicies").len(),
        "{records:#?}"
    );
    let record = sign_hash[0];
    assert_eq!(record["outcome"], "allowed", "{record}");
    assert_eq!(record["policy"], "rsa-3072", "{record}");
    let metadata: Value =
        serde_json::from_str(record["metadata"].as_str().expect("metadata")).expect("metadata JSON");
    assert_eq!(metadata["oci"]["digest"], image.digest.as_str(), "{metadata}");
    assert_eq!(metadata["oci"]["mediaType"], registry::OCI_MANIFEST, "{metadata}");
    let command_line = metadata["sourceProcess"]["commandLine"]
        .as_str()
        .unwrap_or_default();
    assert!(
        command_line.ends_with("notation-signpath generate-signature"),
        "{metadata}"
    );
}

/// The gateway's audit records on one route (`SignHash`, `MySigningPolicies`).
fn on_route<'a>(records: &'a [Value], route: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["route"].as_str().is_some_and(|r| r.ends_with(route)))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// A proxy that spoils signatures

/// Plain HTTP on loopback in front of the gateway (the plugin allows that for loopback), forwarding every request
/// and flipping one byte of each `hashSigningResult.signature` it passes back.
struct TamperingProxy {
    port: u16,
    tampered: Arc<std::sync::atomic::AtomicUsize>,
}

impl TamperingProxy {
    fn start(gateway_env: &BTreeMap<String, String>) -> Self {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn tampered(&self) -> usize {
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
