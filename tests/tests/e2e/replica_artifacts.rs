//! File-based signing requests across replicas: two gateways on one PostgreSQL behind HAProxy, each with its own
//! artifact directory (as on two hosts). A tarball submitted (`SubmitWithArtifact`) straight to one replica is
//! polled and downloaded straight from the other, and the signed tarball verifies with `notation verify
//! --oci-layout`; a request held for approval is signed by whichever replica is polled after the approval, from the
//! upload the other replica took; neither replica's directory keeps the files once they are in the database; and
//! the retention sweep takes a request's files out of the database while its record stays.
//!
//! Needs Debian's `postgresql` and `haproxy` (scripts/install-deps): skipped without them, failed in CI.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use super::oci_support::{notation, LayoutBuilder};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::gateway::require_alices_approval;
use e2e_tests::postgres::Postgres;
use e2e_tests::replicas::{self, Replicas};
use e2e_tests::{require_tool, tools};
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

/// What a test needs of the replicas to talk to them one by one.
struct Api {
    http: Client,
    token: String,
    /// `https://127.0.0.1:PORT/v1/ORG` of each replica, past the balancer.
    bases: [String; 2],
}

impl Api {
    fn new(replicas: &Replicas) -> Self {
        let organization = replicas.env("SIGNPATH_ORGANIZATION_ID");
        Self {
            http: replicas.https_client(),
            token: replicas.env("SIGNPATH_API_TOKEN"),
            bases: [0, 1].map(|i| format!("{}/v1/{organization}", replicas.replica_url(i))),
        }
    }

    /// `SubmitWithArtifact` of `tarball` to `demo/POLICY` on replica `on`; the request's id.
    fn submit(&self, on: usize, policy: &str, tarball: &[u8]) -> String {
        let form = multipart::Form::new()
            .text("ProjectSlug", "demo")
            .text("SigningPolicySlug", policy.to_owned())
            .text("Description", "replica artifacts")
            .part(
                "Artifact",
                multipart::Part::bytes(tarball.to_vec()).file_name("image.tar"),
            );
        let response = self
            .http
            .post(format!("{}/SigningRequests/SubmitWithArtifact", self.bases[on]))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        assert_eq!(status, 201, "submission to replica {on}: {body}");
        body["signingRequestId"].as_str().unwrap().to_owned()
    }

    /// `GET SigningRequests/{id}` on replica `on`.
    fn status(&self, on: usize, id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/SigningRequests/{id}", self.bases[on]))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "poll of {id} on replica {on}");
        response.json().unwrap()
    }

    /// `GET SigningRequests/{id}/{file}` on replica `on`: its status and body.
    fn download(&self, on: usize, id: &str, file: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}/SigningRequests/{id}/{file}", self.bases[on]))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().unwrap().to_vec())
    }
}

/// One image, `registry.example/team/{name}:1.0`, with a layer of 2.5 MiB: its tarball is stored as three pieces.
fn tarball(name: &str) -> Vec<u8> {
    let mut layout = LayoutBuilder::new();
    let layer: Vec<u8> = (0..5 << 19)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let image = layout.manifest("amd64", &[&layer, name.as_bytes()]);
    layout.tag(&image, &format!("registry.example/team/{name}:1.0"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    layout.write_tar(&path);
    std::fs::read(path).unwrap()
}

/// `notation verify --oci-layout` of the image in the signed tarball `signed`, under `work`.
fn verify_signed(work: &Path, root_pem: &Path, name: &str, signed: &[u8]) {
    let layout = work.join(format!("{name}-layout"));
    std::fs::create_dir_all(&layout).unwrap();
    let tar = work.join(format!("{name}-signed.tar"));
    std::fs::write(&tar, signed).unwrap();
    let unpacked = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(unpacked.status.success(), "{}", tools::output_text(&unpacked));
    let notation = notation(&work.join(format!("{name}-notation")), root_pem);
    let out = notation()
        .args(["verify", "--oci-layout", "--scope"])
        .arg(format!("registry.example/team/{name}"))
        .arg(format!("{}:1.0", layout.display()))
        .output()
        .unwrap();
    let text = tools::output_text(&out);
    assert!(
        out.status.success() && text.contains("Successfully verified signature"),
        "{name}: {text}"
    );
}

/// The request directories left in replica `i`'s artifact directory.
fn left_on(replicas: &Replicas, i: usize) -> Vec<String> {
    std::fs::read_dir(replicas.artifact_directory(i))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_file_based_request_submitted_to_one_replica_is_polled_signed_and_downloaded_on_the_other() {
    require_tool!("notation");
    let Some((haproxy, bin)) = replicas::haproxy_and_postgres() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let replicas = Replicas::start(2, &pg.url(), &haproxy, |setup| {
        require_alices_approval(setup, "ec-256");
    });
    let api = Api::new(&replicas);
    let work = tempfile::tempdir().unwrap();
    let root_pem = replicas.setup().join("ca/root.pem");

    // Signed at once on replica 0; polled and downloaded on replica 1, which never saw the upload.
    let app = tarball("app");
    let signed_at_once = api.submit(0, "rsa-2048", &app);
    let status = api.status(1, &signed_at_once);
    assert_eq!(
        (
            status["status"].as_str(),
            status["workflowStatus"].as_str(),
            status["isFinalStatus"].as_bool()
        ),
        (Some("Completed"), Some("Completed"), Some(true)),
        "{status}"
    );
    assert!(status["signedArtifactLink"].is_string(), "{status}");
    let (code, unsigned) = api.download(1, &signed_at_once, "UnsignedArtifact");
    assert_eq!(code, 200);
    assert!(
        unsigned == app,
        "replica 1 answers the upload replica 0 took, byte for byte"
    );
    let (code, signed) = api.download(1, &signed_at_once, "SignedArtifact");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&signed));
    verify_signed(work.path(), &root_pem, "app", &signed);
    assert_eq!(api.download(0, &signed_at_once, "SignedArtifact").1, signed);

    // Held on replica 1, approved, then signed by replica 0 when polled there, and downloaded on replica 1.
    let web = tarball("web");
    let held = api.submit(1, "ec-256", &web);
    assert_eq!(api.status(0, &held)["status"], "WaitingForApproval");
    assert_eq!(api.download(0, &held, "SignedArtifact").0, 400);
    replicas.gateway_command(0, &["approve", &held, "--as", "alice"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.status(0, &held);
        if status["isFinalStatus"] == true {
            assert_eq!(status["status"], "Completed", "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approved request was not signed: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, signed) = api.download(1, &held, "SignedArtifact");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&signed));
    verify_signed(work.path(), &root_pem, "web", &signed);

    // The files are in the database, not on either replica's disk.
    for i in 0..2 {
        assert_eq!(
            left_on(&replicas, i),
            Vec::<String>::new(),
            "replica {i} kept working files"
        );
    }
    let stored = |id: &str| {
        pg.psql(&format!(
            "SELECT count(*) FROM artifact_chunks WHERE request_id = '{id}'"
        ))
    };
    // app: 3 pieces uploaded, 3 signed; web likewise.
    assert_eq!(stored(&signed_at_once), "6");
    assert_eq!(stored(&held), "6");

    // The retention sweep: `app` submitted more than retention_hours (24) ago, as far as the database says; the
    // next submission, on either replica, sweeps its files out of the shared store and keeps its record.
    pg.psql(&format!(
        "UPDATE artifact_requests SET submitted = submitted - 25 * 3600 WHERE request_id = '{signed_at_once}'"
    ));
    api.submit(1, "rsa-2048", &tarball("sweeper"));
    assert_eq!(stored(&signed_at_once), "0");
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM artifact_files WHERE request_id = '{signed_at_once}'"
        )),
        "0"
    );
    let status = api.status(0, &signed_at_once);
    assert_eq!(status["status"], "Completed", "the record outlives the files");
    assert!(status.get("signedArtifactLink").is_none(), "{status}");
    let (code, problem) = api.download(0, &signed_at_once, "SignedArtifact");
    assert_eq!(code, 404);
    let problem: Value = serde_json::from_slice(&problem).unwrap();
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:artifact-not-available"
    );
    // The younger request keeps its files.
    assert_eq!(stored(&held), "6");
    assert_eq!(api.download(1, &held, "SignedArtifact").1, signed);
}
