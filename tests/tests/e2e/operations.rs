//! Running the gateway as a service: `/healthz` and `/readyz`, `/metrics` scraped by a Prometheus text parser
//! (prometheus-parse) after real signatures, the JSON log a shipper reads, the drain on SIGTERM, and the clients
//! fetching a CI identity token from (a stand-in of) GitHub Actions' endpoint for the policy's audience.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use e2e_tests::gateway::{sign_ec256, Gateway};
use e2e_tests::oidc::{GithubTokenEndpoint, Issuer};
use e2e_tests::tools;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use serde_json::{json, Value};

const SIGN_HASH_ROUTE: &str = "/v1/{org}/signingrequests/signhash";

/// The value of the sample `name` whose labels include `labels`, if the scrape has one.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(f64::NAN, |b| b.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

/// `/metrics` as text and as parsed.
fn scrape(gateway: &Gateway, http: &reqwest::blocking::Client) -> (String, prometheus_parse::Scrape) {
    let response = http.get(format!("{}/metrics", gateway.api_url())).send().unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().unwrap();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The PIN of the gateway's HSM token, as `init` wrote it.
fn hsm_pin(gateway: &Gateway) -> String {
    let config: toml::Table = std::fs::read_to_string(gateway.config())
        .unwrap()
        .parse()
        .unwrap();
    let pin_file = config["hsm"]["pin_file"].as_str().unwrap();
    std::fs::read_to_string(gateway.dir().join(pin_file))
        .unwrap()
        .trim()
        .to_owned()
}

fn sign_hash_body(policy: &str, digest: &[u8]) -> String {
    json!({"projectSlug": "demo", "signingPolicySlug": policy,
        "hashSigningData": {"signatureAlgorithm": "Ecdsa", "hash": STANDARD.encode(digest)}})
    .to_string()
}

/// Checks an ECDSA P-256 signature (r||s) of `digest` with RustCrypto's p256 against demo/ec-256's certificate.
fn verify_ec256(gateway: &Gateway, digest: &[u8], signature: &[u8]) {
    use x509_cert::der::{DecodePem, Encode};
    let pem = std::fs::read_to_string(gateway.dir().join("pki/ec-256.pem")).unwrap();
    let leaf =
        x509_cert::Certificate::from_pem(pem.split_inclusive("-----END CERTIFICATE-----\n").next().unwrap())
            .unwrap();
    let spki = leaf.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key =
        <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&spki).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(signature).unwrap();
    key.verify_prehash(digest, &signature)
        .expect("the signature verifies with demo/ec-256's certificate");
}

#[test]
fn health_metrics_and_the_json_log_after_real_signatures() {
    let started = Instant::now();
    let gateway = Gateway::start_serving(|_| {}, &["--log-format", "json"]);
    let http = gateway.https_client();
    let get = |path: &str| {
        let response = http.get(format!("{}{path}", gateway.api_url())).send().unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    };
    assert_eq!(get("/healthz"), (200, json!({"status": "alive"})));
    assert_eq!(
        get("/readyz"),
        (
            200,
            json!({"status": "ready", "draining": false, "checks": {"hsm": "ok", "database": "ok"}})
        )
    );

    let base = gateway.api_base();
    for i in 0..3u8 {
        let digest = [i + 1; 32];
        let answer = sign_ec256(&http, &base, gateway.api_token(), &digest).expect("signed");
        let signature = STANDARD
            .decode(answer["hashSigningResult"]["signature"].as_str().unwrap())
            .unwrap();
        verify_ec256(&gateway, &digest, &signature);
    }
    // Refused: a wrong token, and a policy that does not exist (its name must not become a label).
    assert!(sign_ec256(&http, &base, "not-a-token", &[9; 32]).is_none());
    let unknown = http
        .post(format!("{base}/SigningRequests/SignHash"))
        .bearer_auth(gateway.api_token())
        .header("content-type", "application/json")
        .body(sign_hash_body("made-up-policy", &[9; 32]))
        .send()
        .unwrap();
    assert!(unknown.status().is_client_error(), "{}", unknown.status());

    let (text, scrape) = scrape(&gateway, &http);
    let requests = "signpath_gateway_signing_requests_total";
    let signed = [("project", "demo"), ("policy", "ec-256"), ("outcome", "signed")];
    assert_eq!(sample(&scrape, requests, &signed), Some(3.0));
    let refused = [("project", ""), ("policy", ""), ("outcome", "refused")];
    assert_eq!(sample(&scrape, requests, &refused), Some(2.0));
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| !s.labels.values().any(|v| v.contains("made-up"))),
        "a client's made-up policy became a label"
    );
    let latency = "signpath_gateway_request_duration_seconds";
    // prometheus-parse skips samples whose label values hold braces (the route templates' `{org}`), which the
    // OpenMetrics format allows: the latency histogram's count is read from the text, byte-exact.
    let count = format!("{latency}_count{{route=\"{SIGN_HASH_ROUTE}\"}} 5\n");
    assert!(text.contains(&count), "no {count:?} in {text}");
    // Every API request was audited, each commit observed; the probes and scrapes are not audited.
    assert_eq!(
        sample(&scrape, "signpath_gateway_audit_commit_duration_seconds", &[]),
        Some(5.0)
    );
    assert_eq!(
        sample(&scrape, "signpath_gateway_approvals_waiting", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&scrape, "signpath_gateway_hsm_errors_total", &[]),
        Some(0.0)
    );
    // The three signatures, each made once; the refusals and the probes made none.
    assert_eq!(
        sample(&scrape, "signpath_gateway_hsm_signatures_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&scrape, "signpath_gateway_hsm_signature_duration_seconds", &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&scrape, "signpath_gateway_database_errors_total", &[]),
        Some(0.0)
    );

    // The log: one JSON object per line, a line per request with the fields an operator ships, no secret.
    let log = gateway.stderr();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "signpath_gateway::request")
        .collect();
    assert_eq!(requests.len(), 5, "{log}");
    let audited: Vec<String> = gateway
        .audit_json()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    for line in &requests {
        assert_eq!(line["route"], SIGN_HASH_ROUTE, "{line}");
        assert!(
            audited.contains(&line["request_id"].as_str().unwrap().to_owned()),
            "{line}"
        );
        assert!(line["latency_ms"].as_f64().unwrap() > 0.0, "{line}");
    }
    let allowed: Vec<&&Value> = requests.iter().filter(|l| l["outcome"] == "allowed").collect();
    assert_eq!(allowed.len(), 3, "{log}");
    for line in allowed {
        assert_eq!(
            (&line["policy"], &line["status"]),
            (&json!("ec-256"), &json!(200)),
            "{line}"
        );
        assert!(!line["token_id"].as_str().unwrap().is_empty(), "{line}");
    }
    assert_eq!(
        requests.iter().filter(|l| l["outcome"] == "refused").count(),
        2,
        "{log}"
    );
    assert!(!log.contains(gateway.api_token()), "the API token is in the log");
    assert!(!log.contains(&hsm_pin(&gateway)), "the HSM PIN is in the log");
    eprintln!("took {:?}", started.elapsed());
}

/// SIGTERM while a SignHash is half sent: `/readyz` answers 503 at once (on a new connection, during the drain
/// delay), the request still gets its signature and its audit record, and then the gateway exits by itself.
#[test]
fn sigterm_drains_a_request_in_flight_and_readyz_turns_503() {
    let started = Instant::now();
    let mut gateway = Gateway::start_with(|dir| {
        let path = dir.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let server = toml::toml! {
            drain_delay_seconds = 2
            drain_timeout_seconds = 10
        };
        config.insert("server".into(), toml::Value::Table(server));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    let http = gateway.https_client();
    let digest = [42u8; 32];
    let body = sign_hash_body("ec-256", &digest);
    let (first, rest) = body.split_at(body.len() / 2);
    let path = format!("/v1/{}/SigningRequests/SignHash", gateway.organization_id());
    let mut tls = gateway.tls_connect();
    write!(
        tls,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
        gateway.api_token(),
        body.len()
    )
    .unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    gateway.terminate();
    let draining = Instant::now();
    let readyz = loop {
        let response = http.get(format!("{}/readyz", gateway.api_url())).send().unwrap();
        if response.status() == 503 || draining.elapsed() > Duration::from_secs(1) {
            break response;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(readyz.status(), 503);
    assert_eq!(readyz.json::<Value>().unwrap()["draining"], true);

    tls.write_all(rest.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let signature = STANDARD
        .decode(json["hashSigningResult"]["signature"].as_str().unwrap())
        .unwrap();
    verify_ec256(&gateway, &digest, &signature);

    let status = gateway
        .wait_exit(Duration::from_secs(15))
        .expect("the gateway exits after draining");
    assert!(status.success(), "{status:?}: {}", gateway.stderr());
    let audit = gateway.audit_json();
    let record = audit
        .iter()
        .find(|r| r["request_id"] == json["signingRequestId"])
        .unwrap_or_else(|| panic!("no audit record of the drained request: {audit:?}"));
    assert_eq!(
        (&record["status"], &record["outcome"]),
        (&json!(200), &json!("allowed"))
    );
    assert!(gateway.stderr().contains("drained"), "{}", gateway.stderr());
    eprintln!("took {:?}", started.elapsed());
}

/// On GitHub Actions, with no SIGNPATH_ID_TOKEN: the PKCS#11 module's SignHash to a policy that verifies origin is
/// refused naming the audience, the client fetches a token for it (the audience the job set in
/// SIGNPATH_IDENTITY_TOKEN_AUDIENCE) from ACTIONS_ID_TOKEN_REQUEST_URL with the request token as bearer, and signs;
/// neither token reaches the client's log.
#[test]
fn a_github_actions_job_fetches_its_identity_token_for_the_policys_audience() {
    let started = Instant::now();
    let audience = "https://signpath-gateway.example/ci";
    let issuer = Issuer::new();
    let gateway = Gateway::start_with(|setup| {
        issuer.trust_in(setup, "github", audience);
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let policies = config["projects"].as_array_mut().unwrap()[0]["policies"]
            .as_array_mut()
            .unwrap();
        let policy = policies
            .iter_mut()
            .find(|p| p["slug"].as_str() == Some("ec-256"))
            .unwrap()
            .as_table_mut()
            .unwrap();
        policy.insert(
            "origin".into(),
            toml::Value::Table(toml::toml! {
                issuer = "github"
                [conditions]
                repository = "acme/app"
            }),
        );
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    let endpoint = GithubTokenEndpoint::start(
        issuer,
        json!({"repository": "acme/app", "ref": "refs/heads/main"}),
    );
    let logs = tempfile::tempdir().unwrap();
    let sign = |env: &[(&str, String)]| {
        let digest: [u8; 32] = rand_digest();
        let output = gateway
            .command(env!("CARGO_BIN_EXE_p11-sign"))
            .env_remove("SIGNPATH_ID_TOKEN")
            // The issuer's audience is not the gateway's URL: the job names it, or the client fetches nothing.
            .env("SIGNPATH_IDENTITY_TOKEN_AUDIENCE", audience)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("SIGNPATH_LOG_FILE_DIRECTORY", logs.path())
            .arg(tools::release_artifact("libsignpath_pkcs11.so"))
            .arg("demo/ec-256")
            .arg(hex::encode(digest))
            .output()
            .unwrap();
        (digest, output)
    };

    let (digest, output) = sign(&endpoint.env());
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    verify_ec256(&gateway, &digest, &hex::decode(&stdout).unwrap());
    let asked = endpoint.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].audience.as_deref(), Some(audience));
    assert!(asked[0].authorized);
    let audit = gateway.audit_json();
    let last = audit.last().unwrap();
    assert_eq!(last["status"], 200, "{last}");
    assert!(last["origin"].as_str().unwrap().contains("acme/app"), "{last}");
    let first_refusal = &audit[audit.len() - 2];
    assert_eq!(first_refusal["error_type"], "origin-rejected", "{first_refusal}");

    // A job whose request token the endpoint refuses: no signature, and the client says why.
    let [(url_var, url), (token_var, _)] = endpoint.env();
    let (_, refused) = sign(&[(url_var, url), (token_var, "wrong-request-token".into())]);
    assert!(!refused.status.success());
    assert_eq!(endpoint.requests().len(), 2);
    assert!(!endpoint.requests()[1].authorized);

    let mut logged = String::new();
    for entry in std::fs::read_dir(logs.path()).unwrap() {
        logged.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(logged.contains("identity token"), "{logged}");
    assert!(
        !logged.contains(&endpoint.request_token),
        "the request token is in the client's log"
    );
    assert!(
        !logged.contains(&asked[0].token),
        "the identity token is in the client's log"
    );
    eprintln!("took {:?}", started.elapsed());
}

fn rand_digest() -> [u8; 32] {
    let mut digest = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut digest);
    digest
}
