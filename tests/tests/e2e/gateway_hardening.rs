//! Attacks on a running gateway that issue 13 closed, each reproduced against the real binary over HTTPS:
//! a revoked token keeps working until a restart (now refused within 2 s, and an invalid gateway.toml leaves the
//! configuration in force), and the approvers' page (a session id, not the token, in the cookie; a CSRF token and
//! an Origin check on every form; logout; each approver sees only their own policies).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e_tests::gateway::{approver_page, csrf_of, run_cli, sign_ec256, Gateway};
use serde_json::{json, Value};

/// Polls `check` every 100 ms for up to `limit`; how long it took to hold.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn tokens_added_and_revoked_take_effect_within_two_seconds_and_a_broken_file_changes_nothing() {
    let gateway = Gateway::start();
    let setup = gateway.dir();
    let http = gateway.https_client();
    let base = gateway.api_base();
    let digest = [5u8; 32];

    let token = run_cli(
        &setup,
        &["token", "add", "--name", "ci-2", "--policy", "demo/ec-256"],
    )
    .trim()
    .to_owned();
    let took = within(Duration::from_secs(2), || {
        sign_ec256(&http, &base, &token, &digest).is_some()
    })
    .expect("a token added while serving signs within 2 s, without a restart");
    eprintln!("new token usable after {took:?}");

    run_cli(&setup, &["token", "revoke", "ci-2"]);
    let took = within(Duration::from_secs(2), || {
        http.post(format!("{base}/SigningRequests/SignHash"))
            .bearer_auth(&token)
            .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-256",
                "hashSigningData": {"signatureAlgorithm": "Ecdsa",
                    "hash": base64::engine::general_purpose::STANDARD.encode(digest)}}))
            .send()
            .unwrap()
            .status()
            == 401
    })
    .expect("a revoked token is refused within 2 s");
    eprintln!("revoked token refused after {took:?}");

    // A broken file (and a SIGHUP asking for it) leaves the configuration in force.
    let config = setup.join("gateway.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "this is not = [toml").unwrap();
    Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sign_ec256(&http, &base, gateway.api_token(), &digest).is_some(),
        "the configuration in force stays when the new one does not load"
    );
    std::fs::write(&config, good).unwrap();
}

/// A gateway whose demo/ec-384 needs 1 of alice or bob and demo/rsa-2048 1 of carol; the approvers' tokens.
fn approval_gateway() -> (Gateway, Vec<(String, String)>) {
    let mut approvers = Vec::new();
    let gateway = Gateway::start_with(|setup| {
        for name in ["alice", "bob", "carol"] {
            let token = run_cli(setup, &["approver", "add", "--name", name])
                .trim()
                .to_owned();
            approvers.push((name.to_owned(), token));
        }
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let policies = config["projects"].as_array_mut().unwrap()[0]["policies"]
            .as_array_mut()
            .unwrap();
        for policy in policies.iter_mut() {
            let approvers: &[&str] = match policy["slug"].as_str() {
                Some("ec-384") => &["alice", "bob"],
                Some("rsa-2048") => &["carol"],
                _ => continue,
            };
            let mut approval = toml::Table::new();
            approval.insert(
                "approvers".into(),
                toml::Value::Array(approvers.iter().map(|a| toml::Value::from(*a)).collect()),
            );
            approval.insert("required".into(), 1.into());
            policy
                .as_table_mut()
                .unwrap()
                .insert("approval".into(), toml::Value::Table(approval));
        }
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    (gateway, approvers)
}

/// Submits a digest to demo/ec-384 (held for approval); the request id.
fn held_request(gateway: &Gateway, http: &reqwest::blocking::Client) -> String {
    let response: Value = http
        .post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-384",
            "hashSigningData": {"signatureAlgorithm": "Ecdsa",
                "hash": base64::engine::general_purpose::STANDARD.encode([3u8; 48])}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    response["signingRequestId"].as_str().unwrap().to_owned()
}

fn status_of(gateway: &Gateway, id: &str) -> String {
    run_cli(&gateway.dir(), &["pending", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|h| h["request_id"] == id)
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "decided".into())
}

#[test]
fn the_approvers_page_keeps_sessions_csrf_and_origins_apart() {
    let (gateway, approvers) = approval_gateway();
    let api = gateway.https_client();
    let web = gateway.api_url().to_owned();
    let no_redirects = || {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(gateway.tls_ca()).unwrap()).unwrap();
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap()
    };
    let browser = no_redirects();
    let alice = &approvers[0].1;
    let id = held_request(&gateway, &api);

    // Signing in sets a session cookie that is not the approver token.
    let login = browser
        .post(format!("{web}/Web/Login"))
        .header("origin", &web)
        .form(&[("token", alice.as_str())])
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        !set_cookie.contains(alice.as_str()),
        "the cookie carries no token: {set_cookie}"
    );
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("Secure") && set_cookie.contains("Max-Age=")
    );
    let session = set_cookie.split(';').next().unwrap().to_owned();

    let page = browser
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains(&format!("id=\"approve-{id}\"")),
        "the request waits on alice's page"
    );
    let csrf = csrf_of(&page);

    let approve = |origin: Option<&str>, csrf: Option<&str>| {
        let mut request = browser
            .post(format!("{web}/Web/SigningRequests/{id}/Approve"))
            .header("cookie", &session);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let form: Vec<(&str, &str)> = csrf.map(|c| vec![("csrf", c)]).unwrap_or_default();
        request.form(&form).send().unwrap().status().as_u16()
    };
    // A page of another site posting with the approver's cookie: refused, and nothing is approved.
    assert_eq!(approve(Some("https://evil.example"), Some(&csrf)), 403);
    assert_eq!(approve(Some(&web), None), 403, "no CSRF token");
    assert_eq!(approve(Some(&web), Some("guessed")), 403, "a wrong CSRF token");
    assert_eq!(status_of(&gateway, &id), "Pending");
    assert_eq!(approve(Some(&web), Some(&csrf)), 303);
    assert_eq!(status_of(&gateway, &id), "decided");

    // Carol approves rsa-2048 only: she sees neither alice's request nor the records of ec-384.
    let carol = no_redirects();
    let (_, page) = approver_page(&carol, &web, &web, approvers[2].1.as_str());
    assert!(
        !page.contains(&id),
        "another policy's request and records are not shown"
    );
    assert!(!page.contains("demo/ec-384"));

    // Logout ends the session: the same cookie is a stranger's afterwards.
    let logout = browser
        .post(format!("{web}/Web/Logout"))
        .header("cookie", &session)
        .header("origin", &web)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert!(logout.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = browser
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/Web/Login");
}

/// A gateway whose failed-authentication limit is small enough to reach in a test: 5 failures, a 3 s block.
fn gateway_with_a_small_failure_limit() -> Gateway {
    Gateway::start_with(|dir| {
        let path = dir.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let server = toml::toml! {
            max_failed_authentications = 5
            failed_authentication_window_seconds = 60
            failed_authentication_block_seconds = 3
        };
        config.insert("server".into(), toml::Value::Table(server));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    })
}

#[test]
fn a_flood_of_bad_tokens_is_throttled_per_address_and_its_audit_stays_bounded() {
    let gateway = gateway_with_a_small_failure_limit();
    let http = gateway.https_client();
    let policies = format!("{}/Cryptoki/MySigningPolicies", gateway.api_base());
    let statuses: Vec<u16> = (0..60)
        .map(|_| {
            http.get(&policies)
                .bearer_auth("not-a-token")
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(
        statuses[..5],
        [401; 5],
        "the first failures are answered as usual"
    );
    assert!(
        statuses[5..].iter().all(|&s| s == 429),
        "then the address is blocked: {statuses:?}"
    );

    // While blocked, even a valid token from that address waits: the block is decided before credentials are read.
    let blocked = http
        .get(&policies)
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(blocked.status(), 429);
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
    let problem: Value = blocked.json().unwrap();
    assert_eq!(problem["type"], "urn:signpath-gateway:problem:throttled");
    assert_eq!(problem["status"], 429);

    // After the block the valid token works, and the flood left 5 + 2 audit records, not 61.
    std::thread::sleep(Duration::from_secs(retry_after));
    let served = http
        .get(&policies)
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap();
    assert_eq!(served.status(), 200, "the block has ended");
    let audit = gateway.audit_json();
    let count = |status: u64| audit.iter().filter(|r| r["status"] == status).count();
    assert_eq!(count(401), 5, "each failure up to the limit has its record");
    let throttled: Vec<&Value> = audit.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(
        throttled.len(),
        2,
        "one record when the block starts, one when it ends: {throttled:?}"
    );
    let mut details: Vec<&str> = throttled
        .iter()
        .map(|r| r["error_detail"].as_str().unwrap())
        .collect();
    details.sort_unstable();
    assert!(
        details[0].starts_with("5 failed authentications within 60 s"),
        "{details:?}"
    );
    // 55 bad tokens and the valid one were refused while blocked.
    assert_eq!(
        details[1],
        "the block on this address ended; it refused 56 requests"
    );
}

#[test]
fn sha1_is_refused_unless_the_policy_lists_it() {
    let gateway = Gateway::start();
    let http = gateway.https_client();
    let sign = |policy: &str, hash_algorithm: &str, digest_len: usize| {
        let mut data = json!({"signatureAlgorithm": "Rsa",
            "rsaOptions": {"hashAlgorithmName": hash_algorithm, "paddingMode": "Pkcs1"},
            "hash": base64::engine::general_purpose::STANDARD.encode(vec![3u8; digest_len])});
        if policy.starts_with("ec") {
            data = json!({"signatureAlgorithm": "Ecdsa",
                "hash": base64::engine::general_purpose::STANDARD.encode(vec![3u8; digest_len])});
        }
        http.post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
            .bearer_auth(gateway.api_token())
            .json(&json!({"projectSlug": "demo", "signingPolicySlug": policy, "hashSigningData": data}))
            .send()
            .unwrap()
    };
    for (policy, hash, len) in [("rsa-2048", "Sha1", 20), ("ec-256", "", 20)] {
        let refused = sign(policy, hash, len);
        assert_eq!(refused.status(), 400, "{policy}");
        let problem: Value = refused.json().unwrap();
        assert_eq!(
            problem["type"],
            "urn:signpath-gateway:problem:unsupported-algorithm"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("does not sign Sha1 digests"),
            "{problem}"
        );
    }
    assert_eq!(sign("rsa-2048", "Sha256", 32).status(), 200);
}
