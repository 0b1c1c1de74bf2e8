//! The cases and clients of `faults.rs`: every fault the proxy injects with what the plugin and the module must
//! answer, how many SignHash attempts it may see and the Retry-After to honour; the Notation plugin and the
//! PKCS#11 module (under pkcs11-tool) signing once through a proxy, with the outcome and its time.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::ops::RangeInclusive;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use e2e_tests::faults::{Action, FaultProxy, Identity, Route};
use e2e_tests::gateway::Gateway;
use e2e_tests::tools;
use serde_json::{json, Value};

use common::keys::{HashAlgorithm, SignatureScheme};
use common::pubkey::PublicKey;
use common::x509::ParsedCertificate;

pub const REQUEST_TIMEOUT: u64 = 2;
pub const BUDGET: u64 = 10;
/// Process start, TLS setup and the last attempt's own timeout on top of the retry budget.
pub const SLACK: Duration = Duration::from_secs(REQUEST_TIMEOUT + 4);
pub const KEY_ID: &str = "demo/ec-256";

/// What one client run ended with.
#[derive(Debug)]
pub struct Outcome {
    /// `Ok` for a verified signature, else the errorCode or CKR name and the message (empty for the module).
    pub result: Result<(), (String, String)>,
    pub elapsed: Duration,
}

/// What a case expects of one client.
#[derive(Debug, Clone)]
pub enum Expect {
    Signed,
    Error(&'static str, &'static str),
}

pub struct Case {
    pub name: &'static str,
    pub identity: Identity,
    pub script: Arc<dyn Fn(Route, usize) -> Action + Send + Sync>,
    pub plugin: Expect,
    pub module: Expect,
    /// How many SignHash requests the proxy may see (the first attempt and the retries).
    pub sign_attempts: RangeInclusive<usize>,
    /// Least time between two SignHash attempts (a Retry-After to honour).
    pub min_gap: Option<Duration>,
    /// How many signing requests (idempotency keys) the attempts may make: at most one, retried under its key,
    /// unless the client signs anew after the policy's key changed.
    pub signing_requests: RangeInclusive<usize>,
}

pub fn case(
    name: &'static str,
    script: impl Fn(Route, usize) -> Action + Send + Sync + 'static,
    plugin: Expect,
    module: Expect,
    sign_attempts: RangeInclusive<usize>,
) -> Case {
    Case {
        name,
        identity: Identity::Trusted,
        script: Arc::new(script),
        plugin,
        module,
        sign_attempts,
        min_gap: None,
        signing_requests: 1..=1,
    }
}

impl Case {
    /// The plugin signs once more, as a new signing request, when the chain it gets names another key than the
    /// one it cached (a rotation, or a wrong chain): a retry under the first idempotency key would be answered with
    /// the first signature again.
    fn signing_anew_after_a_key_change(mut self) -> Self {
        self.signing_requests = 1..=2;
        self
    }
}

/// `action` for the first `n` SignHash requests, then pass everything.
pub fn first(n: usize, action: Action) -> impl Fn(Route, usize) -> Action + Send + Sync + 'static {
    move |route, nth| match route {
        Route::SignHash if nth < n => action.clone(),
        _ => Action::Pass,
    }
}

/// `action` for every SignHash request.
pub fn always(action: Action) -> impl Fn(Route, usize) -> Action + Send + Sync + 'static {
    first(usize::MAX, action)
}

/// `rewrite` on every policy list.
pub fn policies(
    rewrite: impl Fn(&mut Value) + Send + Sync + 'static,
) -> impl Fn(Route, usize) -> Action + Send + Sync {
    let rewrite: e2e_tests::faults::Rewrite = Arc::new(rewrite);
    move |route, _| match route {
        Route::Policies => Action::Rewrite(rewrite.clone()),
        _ => Action::Pass,
    }
}

pub fn cases() -> Vec<Case> {
    use Expect::{Error, Signed};
    let transient = "C_Sign CKR_FUNCTION_FAILED";
    let mut cases = vec![
        case(
            "connection refused",
            |route, _| match route {
                Route::Policies => Action::PassThenRefuse,
                _ => Action::Pass,
            },
            Error("ERROR", "could not reach the signing gateway"),
            Error(transient, ""),
            0..=0,
        ),
        case(
            "reset mid-response once",
            first(1, Action::ResetMidResponse),
            Signed,
            Signed,
            2..=2,
        ),
        case(
            "reset mid-response always",
            always(Action::ResetMidResponse),
            Error("ERROR", "could not reach the signing gateway"),
            Error(transient, ""),
            3..=5,
        ),
        case(
            "stall past the request timeout once",
            first(1, Action::Stall(Duration::from_secs(REQUEST_TIMEOUT + 2))),
            Signed,
            Signed,
            2..=2,
        ),
        case(
            "stall past the request timeout always",
            always(Action::Stall(Duration::from_secs(REQUEST_TIMEOUT + 2))),
            Error("TIMEOUT", "the signing gateway did not answer"),
            Error(transient, ""),
            2..=4,
        ),
        Case {
            min_gap: Some(Duration::from_secs(3)),
            ..case(
                "429 with Retry-After, then served",
                first(
                    1,
                    Action::Status {
                        code: 429,
                        retry_after: Some(3),
                    },
                ),
                Signed,
                Signed,
                2..=2,
            )
        },
        case(
            "429 until the budget is spent",
            always(Action::Status {
                code: 429,
                retry_after: Some(1),
            }),
            Error("THROTTLED", "the signing gateway is throttling requests"),
            Error(transient, ""),
            3..=5,
        ),
        case(
            "a burst of three 503",
            first(
                3,
                Action::Status {
                    code: 503,
                    retry_after: None,
                },
            ),
            Signed,
            Signed,
            4..=4,
        ),
        case(
            "503 until the budget is spent",
            always(Action::Status {
                code: 503,
                retry_after: None,
            }),
            Error("ERROR", "the signing gateway is unavailable (HTTP 503)"),
            Error(transient, ""),
            3..=5,
        ),
        case(
            "500 is final",
            first(
                1,
                Action::Status {
                    code: 500,
                    retry_after: None,
                },
            ),
            Error("ERROR", "the signing gateway failed (HTTP 500)"),
            Error("C_Sign CKR_DEVICE_ERROR", ""),
            1..=1,
        ),
        case(
            "garbage body",
            first(1, Action::Garbage),
            Error("ERROR", "the signing gateway sent an invalid response"),
            Error("C_Sign CKR_DEVICE_ERROR", ""),
            1..=1,
        ),
        case(
            "truncated body once",
            first(1, Action::Truncate),
            Signed,
            Signed,
            2..=2,
        ),
        case(
            "a valid answer with a wrong signature",
            first(1, Action::Rewrite(Arc::new(corrupt_signature))),
            Error("ERROR", "the signature the gateway returned for"),
            Error("C_Sign CKR_DEVICE_ERROR", ""),
            1..=1,
        ),
        case(
            "a chain for another key",
            policies(|list| substitute_chain(list, &other_chain())),
            // The plugin cannot tell a wrong chain from a key rotated since it cached the chain: it fetches the
            // description again and signs once more, as after a rotation; the signature does not verify with the
            // chain's key either, and is not used. The module signs once.
            Error(
                "ERROR",
                "does not verify with the policy's public key (the signature does not verify",
            ),
            Error("C_Sign CKR_DEVICE_ERROR", ""),
            1..=2,
        )
        .signing_anew_after_a_key_change(),
        case(
            "a chain without intermediate and root",
            policies(|list| with_ec256(list, |p| p["certificateChain"] = json!([p["certificateBytes"]]))),
            Error("VALIDATION_ERROR", "the certificate chain of demo/ec-256"),
            // The module hands out the leaf alone; it needs no chain to sign.
            Signed,
            0..=1,
        ),
    ];
    for (name, identity) in [
        ("an untrusted TLS certificate", Identity::Untrusted),
        ("a TLS certificate for another host", Identity::OtherHost),
    ] {
        cases.push(Case {
            identity,
            ..case(
                name,
                |_, _| Action::Pass,
                Error("ERROR", "the TLS handshake with the signing gateway"),
                Error("C_Login CKR_DEVICE_ERROR", ""),
                0..=0,
            )
        });
    }
    cases
}

pub fn corrupt_signature(answer: &mut Value) {
    let result = &mut answer["hashSigningResult"]["signature"];
    let mut signature = BASE64.decode(result.as_str().unwrap()).unwrap();
    *signature.last_mut().unwrap() ^= 0x55;
    *result = json!(BASE64.encode(signature));
}

pub fn with_ec256(list: &mut Value, edit: impl FnOnce(&mut Value)) {
    let policy = list["signingPolicies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["signingPolicySlug"] == "ec-256")
        .unwrap();
    edit(policy);
}

/// A root and a code-signing leaf with a P-256 key the gateway does not hold: a chain that validates on its own.
pub fn other_chain() -> (Vec<Vec<u8>>, Vec<u8>) {
    let root_key = rcgen::KeyPair::generate().unwrap();
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root.distinguished_name
        .push(rcgen::DnType::CommonName, "Another Root");
    root.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let root = root.self_signed(&root_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "demo/ec-256 (not the gateway's)");
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let leaf = leaf.signed_by(&leaf_key, &root, &root_key).unwrap();
    (
        vec![leaf.der().to_vec(), root.der().to_vec()],
        leaf_key.public_key_raw().to_vec(),
    )
}

pub fn substitute_chain(list: &mut Value, (chain, point): &(Vec<Vec<u8>>, Vec<u8>)) {
    with_ec256(list, |p| {
        p["certificateBytes"] = json!(BASE64.encode(&chain[0]));
        p["certificateChain"] = json!(chain.iter().map(|c| BASE64.encode(c)).collect::<Vec<_>>());
        p["publicKeyBytes"] = json!(BASE64.encode(point));
    });
}

// ---------------------------------------------------------------------------------------------------------------
// The clients

/// Settings for a client going through `proxy`: nothing inherited but PATH, short timeouts, its own HOME and cache.
pub fn client_command(program: &Path, proxy: &FaultProxy, gateway: &Gateway) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", proxy.dir())
        .env("XDG_CACHE_HOME", proxy.dir().join("cache"))
        .env("SIGNPATH_LOG_FILE_DIRECTORY", proxy.dir().join("logs"))
        .env("SIGNPATH_LOG_FILE_LEVEL", "debug")
        .env(
            "SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS",
            REQUEST_TIMEOUT.to_string(),
        )
        .env(
            "SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS",
            BUDGET.to_string(),
        )
        .envs(proxy.env_vars(gateway))
        .current_dir(proxy.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn run_with_stdin(mut command: Command, stdin: &str) -> std::process::Output {
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().unwrap()
}

/// The plugin's error as (errorCode, errorMessage), checking that stderr is exactly one Notation error object.
pub fn plugin_error(output: &std::process::Output) -> (String, String) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let error: Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {output:?}"));
    assert_eq!(error.as_object().map(|o| o.len()), Some(2), "{error}");
    (
        error["errorCode"].as_str().unwrap().to_owned(),
        error["errorMessage"].as_str().unwrap().to_owned(),
    )
}

/// describe-key, then generate-signature over a JWS signing input, as notation runs them; the second is timed.
pub fn plugin_sign(proxy: &FaultProxy, gateway: &Gateway) -> Outcome {
    let plugin = tools::release_artifact("notation-signpath");
    let started = Instant::now();
    let describe = run_with_stdin(
        {
            let mut c = client_command(&plugin, proxy, gateway);
            c.arg("describe-key");
            c
        },
        &json!({"contractVersion": "1.0", "keyId": KEY_ID}).to_string(),
    );
    if !describe.status.success() {
        return Outcome {
            result: Err(plugin_error(&describe)),
            elapsed: started.elapsed(),
        };
    }
    let payload = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(
            json!({"alg": "ES256", "cty": "application/vnd.cncf.notary.payload.v1+json"}).to_string()
        ),
        URL_SAFE_NO_PAD.encode(
            json!({"targetArtifact": {"digest": format!("sha256:{}", hex::encode(random_digest())),
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 528}})
            .to_string()
        ),
    );
    let request = json!({"contractVersion": "1.0", "keyId": KEY_ID, "keySpec": "EC-256",
        "hashAlgorithm": "SHA-256", "payload": BASE64.encode(&payload)});
    let started = Instant::now();
    let output = run_with_stdin(
        {
            let mut c = client_command(&plugin, proxy, gateway);
            c.arg("generate-signature");
            c
        },
        &request.to_string(),
    );
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Outcome {
            result: Err(plugin_error(&output)),
            elapsed,
        };
    }
    assert!(output.stderr.is_empty(), "{output:?}");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let signature = BASE64.decode(answer["signature"].as_str().unwrap()).unwrap();
    // Verified with the gateway's own certificate, not with the chain the answer carries.
    gateway_key(gateway)
        .verify_digest(
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            &HashAlgorithm::Sha256.digest(payload.as_bytes()),
            &signature,
        )
        .expect("the plugin's signature verifies with the gateway's ec-256 certificate");
    Outcome {
        result: Ok(()),
        elapsed,
    }
}

/// One `C_Sign` (`CKM_ECDSA`) on a fresh digest by `p11-sign`, which logs in with the PIN `CONFIG` (the token comes
/// from the environment) and neither retries nor falls back, so the return code is the module's own.
pub fn module_sign(proxy: &FaultProxy, gateway: &Gateway) -> Outcome {
    let digest = random_digest();
    let mut command = client_command(Path::new(env!("CARGO_BIN_EXE_p11-sign")), proxy, gateway);
    command
        .arg(tools::release_artifact("libsignpath_pkcs11.so"))
        .arg(KEY_ID)
        .arg(hex::encode(digest));
    let started = Instant::now();
    let output = run_with_stdin(command, "");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.code().is_some() && !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "p11-sign ended with {} through {proxy:?}: {output:?}",
        output.status
    );
    if !output.status.success() {
        return Outcome {
            result: Err((stdout, String::new())),
            elapsed,
        };
    }
    let signature = hex::decode(&stdout).unwrap();
    gateway_key(gateway)
        .verify_digest(
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            &digest,
            &signature,
        )
        .expect("the module's signature verifies with the gateway's ec-256 certificate");
    Outcome {
        result: Ok(()),
        elapsed,
    }
}

pub fn random_digest() -> [u8; 32] {
    let mut digest = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut digest);
    digest
}

/// The gateway's ec-256 public key, from its own certificate file.
pub fn gateway_key(gateway: &Gateway) -> PublicKey {
    let pem = std::fs::read(gateway.dir().join("pki/ec-256.pem")).unwrap();
    let leaf = common::x509::pem_certificates(&pem, "ec-256.pem").unwrap();
    ParsedCertificate::from_der(&leaf[0])
        .unwrap()
        .public_key()
        .unwrap()
}
