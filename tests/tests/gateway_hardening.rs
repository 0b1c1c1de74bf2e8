//! Attacks on a running gateway that issue 13 closed, each reproduced against the real binary over HTTPS:
//! a revoked token keeps working until a restart (now refused within 2 s, and an invalid gateway.toml leaves the
//! configuration in force), and the approvers' page (a session id, not the token, in the cookie; a CSRF token and
//! an Origin check on every form; logout; each approver sees only their own policies).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e_tests::gateway::{sign_ec256, Gateway};
use serde_json::{json, Value};

/// `signpath-gateway ARGS --config DIR/gateway.toml`, which must succeed; its stdout.
fn gw(setup: &Path, args: &[&str]) -> String {
    let out = Command::new(Gateway::binary())
        .args(args)
        .arg("--config")
        .arg(setup.join("gateway.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "signpath-gateway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

    let token = gw(
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

    gw(&setup, &["token", "revoke", "ci-2"]);
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
            let token = gw(setup, &["approver", "add", "--name", name]).trim().to_owned();
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
    gw(&gateway.dir(), &["pending", "--json"])
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
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("every form carries a CSRF token")
        .to_owned();

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
    let login = carol
        .post(format!("{web}/Web/Login"))
        .header("origin", &web)
        .form(&[("token", approvers[2].1.as_str())])
        .send()
        .unwrap();
    let carol_session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = carol
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &carol_session)
        .send()
        .unwrap()
        .text()
        .unwrap();
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
