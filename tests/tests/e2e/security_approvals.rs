//! Attacks on the approvers' side of a running gateway, each reproduced against the real binary over HTTPS: an
//! approver removed while signed in keeps approving (now their session ends and their earlier vote stops counting
//! as soon as the gateway reads the change), the approvers' pages can be framed, sniffed and cached (now every
//! response forbids it), and one submitter pushes everyone else's requests off the approvers' page (now every held
//! request is on some page, and each policy has its own view with its counts). And the release-group rule that
//! counts signatures, through the file-based API on the shared PostgreSQL store.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e_tests::gateway::{approver_page, csrf_of, run_cli, Gateway};
use e2e_tests::postgres::{self, Postgres};
use serde_json::{json, Value};

use super::oci_support;

/// Adds approvers `names` to the setup; their tokens, in order.
fn add_approvers(setup: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            run_cli(setup, &["approver", "add", "--name", name])
                .trim()
                .to_owned()
        })
        .collect()
}

/// Sets the approval of the setup's demo policies: (policy slug, approvers, required).
fn set_approvals(setup: &Path, approvals: &[(&str, &[&str], u32)]) {
    edit_config(setup, |config| {
        for (slug, approvers, required) in approvals {
            let mut approval = toml::Table::new();
            approval.insert(
                "approvers".into(),
                toml::Value::Array(approvers.iter().map(|a| toml::Value::from(*a)).collect()),
            );
            approval.insert("required".into(), i64::from(*required).into());
            policy(config, slug).insert("approval".into(), toml::Value::Table(approval));
        }
    });
}

/// The table of demo/`slug` in a gateway.toml.
fn policy<'a>(config: &'a mut toml::Table, slug: &str) -> &'a mut toml::Table {
    config["projects"].as_array_mut().unwrap()[0]["policies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["slug"].as_str() == Some(slug))
        .unwrap()
        .as_table_mut()
        .unwrap()
}

/// Changes the setup's gateway.toml with `change`.
fn edit_config(setup: &Path, change: impl FnOnce(&mut toml::Table)) {
    let path = setup.join("gateway.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    change(&mut config);
    // Written whole and renamed, as an editor saves it: the gateway never reads half a file.
    let temp = setup.join("gateway.toml.new");
    std::fs::write(&temp, toml::to_string(&config).unwrap()).unwrap();
    std::fs::rename(temp, path).unwrap();
}

/// Submits a digest to demo/`policy` (which needs approval); the request id.
fn held_request(gateway: &Gateway, http: &reqwest::blocking::Client, policy: &str, n: u32) -> String {
    let length = if policy == "ec-384" { 48 } else { 32 };
    let mut digest = vec![0u8; length];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    let response = http
        .post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .json(&json!({"projectSlug": "demo", "signingPolicySlug": policy,
            "hashSigningData": {"signatureAlgorithm": "Ecdsa",
                "hash": base64::engine::general_purpose::STANDARD.encode(&digest)}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "held for approval");
    let body: Value = response.json().unwrap();
    body["signingRequestId"].as_str().unwrap().to_owned()
}

/// Where a held request stands, as `signpath-gateway pending --json` lists it ("decided" once it is not pending).
fn status_of(gateway: &Gateway, id: &str) -> String {
    run_cli(&gateway.dir(), &["pending", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|h| h["request_id"] == id)
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "decided".into())
}

/// A client of the gateway's HTTPS that does not follow redirects (a browser's view of each response).
fn browser(gateway: &Gateway) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gateway.tls_ca()).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// Posts an approval of `id` from a browser session (cookie and CSRF token); the status.
fn approve_in_session(
    http: &reqwest::blocking::Client,
    web: &str,
    session: &str,
    csrf: &str,
    id: &str,
) -> u16 {
    http.post(format!("{web}/Web/SigningRequests/{id}/Approve"))
        .header("cookie", session)
        .header("origin", web)
        .form(&[("csrf", csrf)])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Posts an approval of `id` as a script does, with the approver token; the status.
fn approve_with_token(http: &reqwest::blocking::Client, web: &str, token: &str, id: &str) -> u16 {
    http.post(format!("{web}/Web/SigningRequests/{id}/Approve"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_removed_approver_is_signed_out_and_their_vote_stops_counting() {
    let mut tokens = Vec::new();
    let gateway = Gateway::start_with(|setup| {
        tokens = add_approvers(setup, &["alice", "bob", "carol"]);
        set_approvals(setup, &[("ec-384", &["alice", "bob", "carol"], 2)]);
    });
    let (alice, bob, carol) = (&tokens[0], &tokens[1], &tokens[2]);
    let api = gateway.https_client();
    let web = gateway.api_url().trim_end_matches('/').to_owned();
    let http = browser(&gateway);
    let first = held_request(&gateway, &api, "ec-384", 1);
    let (session, page) = approver_page(&http, &web, &web, alice);
    let csrf = csrf_of(&page);
    assert_eq!(approve_in_session(&http, &web, &session, &csrf, &first), 303);
    assert_eq!(status_of(&gateway, &first), "Pending", "1 of 2");
    let second = held_request(&gateway, &api, "ec-384", 2);

    // Alice is taken out of the policy (the file edited as an operator does), then removed.
    set_approvals(&gateway.dir(), &[("ec-384", &["bob", "carol"], 2)]);
    run_cli(&gateway.dir(), &["approver", "remove", "--name", "alice"]);
    let start = Instant::now();
    while browser(&gateway)
        .post(format!("{web}/Web/Login"))
        .header("origin", &web)
        .form(&[("token", alice.as_str())])
        .send()
        .unwrap()
        .status()
        != 401
    {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the gateway read the removal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Her open session approves nothing, and ends.
    assert_eq!(approve_in_session(&http, &web, &session, &csrf, &second), 403);
    assert_eq!(status_of(&gateway, &second), "Pending");
    let after = http
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/Web/Login");

    // Her approval of the first request no longer counts: bob's alone leaves it waiting, carol's decides it.
    assert_eq!(approve_with_token(&http, &web, bob, &first), 303);
    assert_eq!(status_of(&gateway, &first), "Pending", "alice's vote is gone");
    assert_eq!(approve_with_token(&http, &web, carol, &first), 303);
    assert_eq!(status_of(&gateway, &first), "decided");
}

#[test]
fn the_approvers_pages_forbid_framing_sniffing_and_caching() {
    let mut tokens = Vec::new();
    let gateway = Gateway::start_with(|setup| {
        tokens = add_approvers(setup, &["alice"]);
        set_approvals(setup, &[("ec-384", &["alice"], 1)]);
    });
    let web = gateway.api_url().trim_end_matches('/').to_owned();
    let http = browser(&gateway);
    let assert_headers = |what: &str, response: &reqwest::blocking::Response| {
        let h = response.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
    };

    let login_page = http.get(format!("{web}/Web/Login")).send().unwrap();
    assert_eq!(login_page.status(), 200);
    assert_headers("the sign-in page", &login_page);
    let signed_in = http
        .post(format!("{web}/Web/Login"))
        .header("origin", &web)
        .form(&[("token", tokens[0].as_str())])
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_headers("the redirect after signing in", &signed_in);
    let session = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let list = http
        .get(format!("{web}/Web/SigningRequests"))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_headers("the list page", &list);
    let to_sign_in = http.get(format!("{web}/Web/SigningRequests")).send().unwrap();
    assert_eq!(to_sign_in.status(), 303);
    assert_headers("the redirect to the sign-in page", &to_sign_in);
    let missing = http
        .get(format!("{web}/Web/NoSuchPage"))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_headers("a page that does not exist", &missing);
}

#[test]
fn every_held_request_is_reachable_on_the_approvers_page() {
    let mut tokens = Vec::new();
    let gateway = Gateway::start_with(|setup| {
        tokens = add_approvers(setup, &["alice"]);
        set_approvals(setup, &[("ec-256", &["alice"], 1), ("ec-384", &["alice"], 1)]);
    });
    let api = gateway.https_client();
    let web = gateway.api_url().trim_end_matches('/').to_owned();
    let http = browser(&gateway);
    // One request of demo/ec-256, then 150 newer ones of demo/ec-384 from one submitter.
    let quiet = held_request(&gateway, &api, "ec-256", 0);
    let busy: Vec<String> = (1..=150)
        .map(|n| held_request(&gateway, &api, "ec-384", n))
        .collect();
    let (session, first_page) = approver_page(&http, &web, &web, &tokens[0]);
    let get = |path: &str| {
        let response = http
            .get(format!("{web}{path}"))
            .header("cookie", &session)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().unwrap()
    };

    // The counts per policy, each a link to that policy's requests alone.
    let policies = first_page
        .split("<table id=\"policies\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the page lists the approver's policies");
    assert!(
        policies.contains(">demo/ec-384</a></td><td class=\"waiting\">150</td>"),
        "{policies}"
    );
    assert!(policies.contains(">demo/ec-256</a></td><td class=\"waiting\">1</td>"));
    let ec256 = get("/Web/SigningRequests?policy=demo%2Fec-256");
    assert!(
        ec256.contains(&format!("id=\"approve-{quiet}\"")),
        "demo/ec-256's own view shows its request"
    );
    assert!(!ec256.contains(&format!("id=\"approve-{}\"", busy[0])));

    // Page by page, every request that waits is there once.
    let mut seen = Vec::new();
    let mut page = first_page;
    for n in 2.. {
        seen.extend(
            page.split("id=\"approve-")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_owned()),
        );
        if !page.contains("id=\"waiting-next\"") {
            break;
        }
        page = get(&format!("/Web/SigningRequests?page={n}"));
        assert!(n < 10, "a bounded number of pages");
    }
    seen.sort();
    let mut expected = busy.clone();
    expected.push(quiet);
    expected.sort();
    assert_eq!(seen, expected, "every held request is on exactly one page");
}

/// `POST SigningRequests/SubmitWithArtifact` of an OCI layout tarball of `images` images to demo/ec-384 in
/// release group `group`; where the request stands right after (`Completed` or `WaitingForApproval`).
fn submit_tarball(gateway: &Gateway, group: &str, images: usize) -> String {
    let mut layout = oci_support::LayoutBuilder::new();
    for i in 0..images {
        let layer = format!("{group} layer {i}");
        let manifest = layout.manifest("amd64", &[layer.as_bytes()]);
        layout.tag(&manifest, &format!("registry.example/{group}/app-{i}:1.0"));
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("images.tar");
    layout.write_tar(&tarball);
    let form = reqwest::blocking::multipart::Form::new()
        .text("ProjectSlug", "demo")
        .text("SigningPolicySlug", "ec-384")
        .text("ReleaseGroup", group.to_owned())
        .part(
            "Artifact",
            reqwest::blocking::multipart::Part::bytes(std::fs::read(&tarball).unwrap())
                .file_name("images.tar"),
        );
    let http = gateway.https_client();
    let submitted = http
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(submitted.status(), 201);
    let id = submitted.json::<Value>().unwrap()["signingRequestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let status: Value = http
        .get(format!("{}/SigningRequests/{id}/Status", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    status["status"].as_str().unwrap().to_owned()
}

#[test]
fn a_release_group_on_postgresql_does_not_cover_a_tarball_past_its_limit() {
    let Some(bin) = postgres::bin_dir() else {
        eprintln!("SKIPPED: Debian's postgresql is not installed; run scripts/install-deps");
        return;
    };
    let pg = Postgres::start(&bin);
    let gateway = Gateway::start_with(|setup| {
        add_approvers(setup, &["alice"]);
        set_approvals(setup, &[("ec-384", &["alice"], 1)]);
        edit_config(setup, |config| {
            config.insert("audit_db".into(), pg.url().into());
            let approval = policy(config, "ec-384")["approval"].as_table_mut().unwrap();
            let mut group = toml::Table::new();
            group.insert("max_signatures".into(), 2.into());
            group.insert("window_seconds".into(), 3600.into());
            approval.insert("release_group".into(), toml::Value::Table(group));
        });
    });
    // One hash of group rel-1 approved: 1 of its 2 signatures left.
    let response: Value = gateway
        .https_client()
        .post(format!("{}/SigningRequests/SignHash", gateway.api_base()))
        .bearer_auth(gateway.api_token())
        .json(&json!({"projectSlug": "demo", "signingPolicySlug": "ec-384",
            "hashSigningData": {"signatureAlgorithm": "Ecdsa", "metadata": {"releaseGroup": "rel-1"},
                "hash": base64::engine::general_purpose::STANDARD.encode([7u8; 48])}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let first = response["signingRequestId"]
        .as_str()
        .unwrap_or_else(|| panic!("{response}: {}", gateway.stderr()));
    run_cli(&gateway.dir(), &["approve", first, "--as", "alice"]);

    assert_eq!(
        submit_tarball(&gateway, "rel-1", 8),
        "WaitingForApproval",
        "8 signatures do not fit in the 1 left"
    );
    assert_eq!(
        submit_tarball(&gateway, "rel-1", 1),
        "Completed",
        "one image fits"
    );
    assert_eq!(
        submit_tarball(&gateway, "rel-1", 1),
        "WaitingForApproval",
        "the group is used up"
    );
}
