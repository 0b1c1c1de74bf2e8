//! A `[keyless]` rule with approval (docs/keyless.md, "Approval"): a CI run's first certificate request is held
//! for the rule's approvers (403 with the approval page, audited as pending); once an approver approves the run on
//! the web page, the same run gets certificates for fresh keys, which OpenSSL verifies to the organization's root;
//! another run of the same repository is held anew, and a run denied on the command line is refused.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use serde_json::{json, Value};

use crate::keyless_ca::{
    assert_openssl_verifies_to_the_root, job_claims, key_pair, proof, request_certificate, AUDIENCE,
};
use e2e_tests::gateway::{run_cli, Gateway};
use e2e_tests::oidc::{Issuer, ISSUER};

const CHALLENGE: &str = "repo:acme/app:ref:refs/tags/v1.0.0";

/// A gateway whose keyless CA admits tags of acme/app once alice approves the run; alice's approver token.
fn start(issuer: &Issuer) -> (Gateway, String) {
    let jwks = issuer.jwks().to_string();
    let mut alice = String::new();
    let gateway = Gateway::start_with(|setup| {
        alice = run_cli(setup, &["approver", "add", "--name", "alice"])
            .trim()
            .to_owned();
        std::fs::write(setup.join("ci-jwks.json"), jwks).unwrap();
        let path = setup.join("gateway.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[[trusted_issuers]]\nname = \"ci\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"ci-jwks.json\"\n\
             \n[[keyless.rules]]\nissuer = \"ci\"\nrepositories = [\"acme/app\"]\nrefs = [\"refs/tags/*\"]\n\
             approval = {{ approvers = [\"alice\"], required = 1 }}\n"
        ));
        std::fs::write(&path, text).unwrap();
    });
    (gateway, alice)
}

/// A certificate request of run `run_id` with a fresh key and a fresh token: its status and body.
fn request(gateway: &Gateway, issuer: &Issuer, run_id: &str) -> (u16, Value) {
    let mut claims = job_claims("acme/app");
    claims["run_id"] = json!(run_id);
    let token = issuer.token(AUDIENCE, &claims);
    let (key, public_pem) = key_pair();
    request_certificate(gateway, &token, &public_pem, &proof(&key, CHALLENGE))
}

/// The held request the detail's approval page names.
fn held_id(gateway: &Gateway, body: &Value) -> String {
    let detail = body["detail"].as_str().unwrap();
    let page = format!("{}/Web/SigningRequests/", gateway.api_url());
    let start = detail
        .find(&page)
        .unwrap_or_else(|| panic!("no approval page in {detail:?}"))
        + page.len();
    detail[start..start + 36].to_owned()
}

#[test]
fn a_run_is_held_until_approved_then_gets_certificates_and_other_runs_are_held_anew_or_denied() {
    let issuer = Issuer::new();
    let (gateway, alice) = start(&issuer);

    // The run's first request is held: 403, the approval page, what to do next.
    let (status, body) = request(&gateway, &issuer, "1001");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:signpath-gateway:problem:forbidden");
    let id = held_id(&gateway, &body);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "CI run acme/app run 1001 attempt 1 (acme/app/.github/workflows/release.yml@refs/tags/v1.0.0) waits \
             for approval by 1 of alice (keyless/ci)"
        ) && detail.contains("then run the signing step again in this run"),
        "{detail}"
    );
    // Every retry of the run finds the same held request.
    let (status, again) = request(&gateway, &issuer, "1001");
    assert_eq!(status, 403, "{again}");
    assert_eq!(held_id(&gateway, &again), id);
    let pending = run_cli(&gateway.dir(), &["pending"]);
    assert_eq!(pending.matches(&id).count(), 1, "{pending}");

    // Audited as a held request is: pending, under keyless/<issuer>, waiting for its approvers.
    let records: Vec<Value> = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["route"] == "/api/v2/signingCert")
        .collect();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(
            (
                &record["outcome"],
                &record["status"],
                &record["error_type"],
                &record["project"],
                &record["policy"],
                &record["approval"]
            ),
            (
                &json!("pending"),
                &json!(403),
                &json!("forbidden"),
                &json!("keyless"),
                &json!("ci"),
                &json!("waiting for 1 of alice")
            ),
            "{record}"
        );
        assert!(record["certificate_sha256"].is_null());
    }

    // alice sees the run on her page and approves it there.
    let web = gateway.api_url().to_owned();
    let page = gateway
        .https_client()
        .get(format!("{web}/Web/SigningRequests/{id}"))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(
        page.contains("keyless/ci") && page.contains("acme/app run 1001"),
        "{page}"
    );
    let approved = gateway
        .https_client()
        .post(format!("{web}/Web/SigningRequests/{id}/Approve"))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    assert!(approved.status().as_u16() < 400, "{}", approved.status());

    // The same run now gets certificates, for each fresh key, that verify to the organization's root.
    for _ in 0..2 {
        let (status, body) = request(&gateway, &issuer, "1001");
        assert_eq!(status, 200, "{body}");
        let chain = body["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .unwrap();
        assert_openssl_verifies_to_the_root(&gateway, chain[0].as_str().unwrap(), chain[1].as_str().unwrap());
    }
    let issued = gateway
        .audit_json()
        .into_iter()
        .filter(|r| r["route"] == "/api/v2/signingCert" && r["outcome"] == "allowed")
        .collect::<Vec<_>>();
    assert_eq!(issued.len(), 2);
    assert_eq!(
        issued[0]["approval"],
        json!(format!("CI run {id} approved by alice"))
    );

    // Another run of the same repository is held anew; denied, it is refused.
    let (status, body) = request(&gateway, &issuer, "1002");
    assert_eq!(status, 403, "{body}");
    let other = held_id(&gateway, &body);
    assert_ne!(other, id);
    run_cli(
        &gateway.dir(),
        &["deny", &other, "--as", "alice", "--reason", "not a release"],
    );
    let (status, body) = request(&gateway, &issuer, "1002");
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["type"],
        "urn:signpath-gateway:problem:signing-request-denied"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("CI run acme/app run 1002 attempt 1")
            && detail.contains("was denied by alice: not a release"),
        "{detail}"
    );
    // The approved run is not affected.
    assert_eq!(request(&gateway, &issuer, "1001").0, 200);
}
