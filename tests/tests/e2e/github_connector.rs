//! SignPath's GitHub Action against the gateway as its `connector-url`, with a stand-in for GitHub's REST API
//! (`e2e_tests::github`). The requests the action sends are replayed byte for byte as its source builds them
//! (SignPath/github-action-submit-signing-request: v2.2 `task.ts`, `connector-url-builder.ts`,
//! `helper-artifact-download.ts`; v1.3 `signpath-url-builder.ts`): v2 with and without `wait-for-completion`,
//! with `skip-decompress` for an artifact uploaded with `archive: false`, and v1, which polls the gateway's
//! SignPath API itself. The signed artifact each brings back verifies with notation; refusals come in the shape the
//! action shows (`error`); a run of another repository, or one the policy's origin rule does not allow, is
//! refused before anything is downloaded; the GitHub token reaches GitHub's API only, never GitHub's storage, the
//! gateway's log or its audit log. `SignPath/resubmit` resubmits a connector's request to another policy.
//! The real action, run with node, is in `github_action`.

#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use super::oci_support::notation;
use super::oci_support::LayoutBuilder;
use e2e_tests::gateway::{run_cli as gw, Gateway};
use e2e_tests::github::{unzip, zip_of, Artifact, GithubApi, Run};
use e2e_tests::{require_tool, tools};

pub(super) const REPOSITORY: &str = "acme/app";
const IMAGE: &str = "registry.example.com/acme/app";
const USER_AGENT: &str = "SignPath.SubmitSigningRequestGitHubAction/2.2.0(NodeJS/v24.0.0; linux x64})";

/// The gateway for these tests: `[github]` on the stand-in; demo/rsa-2048 verifies origin (repository acme/app,
/// issuer GitHub Actions), demo/ec-256 needs alice's approval, demo/rsa-3072 neither.
pub(super) fn start(github: &GithubApi) -> Gateway {
    let issuer = e2e_tests::oidc::Issuer::new();
    let api_url = github.api_url.clone();
    Gateway::start_with(move |setup| {
        gw(setup, &["approver", "add", "--name", "alice"]);
        std::fs::write(setup.join("github-jwks.json"), issuer.jwks().to_string()).unwrap();
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let project = config["projects"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        for policy in project["policies"].as_array_mut().unwrap() {
            let policy = policy.as_table_mut().unwrap();
            let extra = match policy["slug"].as_str().unwrap() {
                "ec-256" => "[approval]\napprovers = [\"alice\"]\nrequired = 1\n",
                "rsa-2048" => "[origin]\nissuer = \"github\"\nconditions = { repository = \"acme/app\" }\n",
                _ => continue,
            };
            for (key, value) in toml::from_str::<toml::Table>(extra).unwrap() {
                policy.insert(key, value);
            }
        }
        let extra: toml::Table = toml::from_str(&format!(
            "[[trusted_issuers]]\nname = \"github\"\nissuer = \"https://token.actions.githubusercontent.com\"\n\
             jwks_file = \"github-jwks.json\"\n[github]\napi_url = \"{api_url}\"\n"
        ))
        .unwrap();
        config.extend(extra);
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    })
}

/// An OCI layout tarball of one image, named in full (as buildx names it).
fn image_tarball(layer: &str) -> Vec<u8> {
    let mut layout = LayoutBuilder::new();
    let manifest = layout.manifest("amd64", &[layer.as_bytes()]);
    layout.tag(&manifest, &format!("{IMAGE}:1.0"));
    let file = tempfile::NamedTempFile::new().unwrap();
    layout.write_tar(file.path());
    std::fs::read(file.path()).unwrap()
}

/// Run 7 of acme/app with artifact 70 (`image`, zipped) and 71 (`image.tar`, `archive: false`); run 8 of
/// acme/app with artifact 80; run 9 of evil/app with artifact 90; run 10 of acme/other with artifact 100.
pub(super) fn github() -> GithubApi {
    let github = GithubApi::start();
    for (id, repository) in [
        (7, REPOSITORY),
        (8, REPOSITORY),
        (9, "evil/app"),
        (10, "acme/other"),
    ] {
        github.add_run(Run {
            id,
            repository: repository.into(),
            head_sha: "0123abcd".into(),
            head_branch: "main".into(),
        });
    }
    let tarball = image_tarball("app layer");
    for (id, name, run_id, bytes) in [
        (70, "image", 7, zip_of("image.tar", &tarball)),
        (71, "image.tar", 7, tarball.clone()),
        (80, "image", 8, zip_of("image.tar", &tarball)),
        (90, "image", 9, zip_of("image.tar", &tarball)),
        (100, "image", 10, zip_of("image.tar", &tarball)),
    ] {
        github.add_artifact(Artifact {
            id,
            name: name.into(),
            run_id,
            bytes,
        });
    }
    github
}

/// The body of the action's submission (`buildSigningRequestPayload`).
fn body(github: &GithubApi, artifact: u64, run: u64, repository: &str, policy: &str) -> Value {
    json!({
        "artifactId": artifact.to_string(), "gitHubWorkflowRunId": run.to_string(), "gitHubRepository": repository,
        "gitHubToken": github.token, "signPathProjectSlug": "demo", "signPathSigningPolicySlug": policy,
        "signPathArtifactConfigurationSlug": "", "parameters": [],
    })
}

/// The connector's base as the action builds it: `{connector}/{organizationId}/SigningRequests`.
fn connector(gateway: &Gateway) -> String {
    format!(
        "{}/{}/SigningRequests",
        gateway.api_url(),
        gateway.organization_id()
    )
}

fn action_request(
    gateway: &Gateway,
    method: reqwest::Method,
    url: &str,
) -> reqwest::blocking::RequestBuilder {
    gateway
        .https_client()
        .request(method, url)
        .header("Authorization", format!("Bearer {}", gateway.api_token()))
        .header("User-Agent", USER_AGENT)
        .header("Accept", "application/json, text/plain, */*")
}

/// v2's `POST {connector}/{org}/SigningRequests?api-version=1.0`: the status and the JSON answer.
fn submit_v2(gateway: &Gateway, body: &Value) -> (u16, Value) {
    let response = action_request(
        gateway,
        reqwest::Method::POST,
        &format!("{}?api-version=1.0", connector(gateway)),
    )
    .header("Content-Type", "application/json")
    .body(body.to_string())
    .send()
    .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// v2's `GET .../SigningRequests/{id}/Status?api-version=1.0`.
fn status_v2(gateway: &Gateway, id: &str) -> Value {
    let url = format!("{}/{id}/Status?api-version=1.0", connector(gateway));
    let response = action_request(gateway, reqwest::Method::GET, &url)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

/// v2's `GET .../SigningRequests/{id}/SignedArtifact?api-version=1.0`: the file name the action saves it under
/// with `skip-decompress` (its `getFileNameFromContentDisposition`) and the bytes.
fn signed_artifact_v2(gateway: &Gateway, id: &str) -> (String, Vec<u8>) {
    let url = format!("{}/{id}/SignedArtifact?api-version=1.0", connector(gateway));
    let response = action_request(gateway, reqwest::Method::GET, &url)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    let name = disposition
        .split("filename*=UTF-8''")
        .nth(1)
        .map(|n| n.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| "signed-artifact".into());
    (name, response.bytes().unwrap().to_vec())
}

/// `notation verify --oci-layout` of the image in a signed tarball.
pub(super) fn verify_tarball(gateway: &Gateway, work: &Path, tarball: &[u8]) {
    let dir = tempfile::tempdir_in(work).unwrap();
    let file = dir.path().join("signed.tar");
    std::fs::write(&file, tarball).unwrap();
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", tools::output_text(&out));
    let notation = notation(&dir.path().join("home"), &gateway.root_ca_pem());
    let target = format!("{}:1.0", layout.display());
    let out = notation()
        .args(["verify", "--oci-layout", "--scope", IMAGE, &target])
        .output()
        .unwrap();
    let text = tools::output_text(&out);
    assert!(
        out.status.success() && text.contains("Successfully verified signature"),
        "{text}"
    );
}

/// Nothing the gateway logged or audited, and nothing GitHub's storage was sent, holds the GitHub token.
pub(super) fn assert_token_kept(gateway: &Gateway, github: &GithubApi) {
    assert!(
        !gateway.stderr().contains(&github.token),
        "the gateway's log has the GitHub token"
    );
    let audit = serde_json::to_string(&gateway.audit_json()).unwrap();
    assert!(
        !audit.contains(&github.token),
        "the audit log has the GitHub token"
    );
    for seen in github.seen() {
        if seen.path.starts_with("/blob/") {
            assert_eq!(seen.authorization, None, "GitHub's storage got {seen:?}");
        } else {
            // The token the request carried (one test sends a wrong one), and nothing else.
            let bearer = seen.authorization.as_deref().unwrap_or_default();
            assert!(bearer.starts_with("Bearer ghs_"), "{seen:?}");
        }
    }
}

#[test]
fn the_actions_v2_and_v1_requests_bring_back_artifacts_that_verify_with_notation() {
    require_tool!("notation");
    let github = github();
    let gateway = start(&github);
    let work = tempfile::tempdir().unwrap();

    // v2, wait-for-completion: submit, poll Status, download the ZIP the action unpacks.
    let (status, answer) = submit_v2(&gateway, &body(&github, 70, 7, REPOSITORY, "rsa-2048"));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["validationResult"], json!({"errors": []}), "{answer}");
    let id = answer["signingRequestId"].as_str().unwrap().to_owned();
    assert_eq!(
        answer["signingRequestUrl"],
        json!(format!("{}/Web/SigningRequests/{id}", gateway.api_url()))
    );
    let status = status_v2(&gateway, &id);
    assert_eq!(
        (
            &status["status"],
            &status["isFinalStatus"],
            &status["hasArtifactBeenDownloadedBySignPathInCaseOfArtifactRetrieval"]
        ),
        (&json!("Completed"), &json!(true), &json!(true)),
        "{status}"
    );
    let (name, zipped) = signed_artifact_v2(&gateway, &id);
    assert_eq!(name, "image.zip");
    let files = unzip(&zipped);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "image.tar");
    verify_tarball(&gateway, work.path(), &files[0].1);

    // The audit record of the signing names the run the gateway verified with GitHub.
    let audit = gateway.audit_json();
    let signing = audit.iter().find(|r| r["request_id"] == json!(id)).unwrap();
    assert_eq!(
        signing["organization"],
        json!(gateway.organization_id()),
        "{signing}"
    );
    let unsigned = action_request(
        &gateway,
        reqwest::Method::GET,
        &format!("{}/SigningRequests/{id}/UnsignedArtifact", gateway.api_base()),
    )
    .send()
    .unwrap();
    assert_eq!(
        unsigned.headers()["content-disposition"],
        "attachment; filename=\"image.tar\"; filename*=UTF-8''image.tar"
    );
    let origin: Value = serde_json::from_str(signing["origin"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&origin["repository"], &origin["run_id"]),
        (&json!(REPOSITORY), &json!("7")),
        "{origin}"
    );

    // v2, skip-decompress, an artifact uploaded with archive: false: saved under its own name, as it came.
    let (status, answer) = submit_v2(&gateway, &body(&github, 71, 7, REPOSITORY, "rsa-3072"));
    assert_eq!(status, 201, "{answer}");
    let (name, tarball) = signed_artifact_v2(&gateway, answer["signingRequestId"].as_str().unwrap());
    assert_eq!(name, "image.tar");
    verify_tarball(&gateway, work.path(), &tarball);

    // v2 without wait-for-completion: it polls Status until the artifact is on the gateway (it is at once), then
    // ends; the request waits for approval, and a denial is final (the waiting action fails with "Denied").
    let (status, answer) = submit_v2(&gateway, &body(&github, 80, 8, REPOSITORY, "ec-256"));
    assert_eq!(status, 201, "{answer}");
    let held = answer["signingRequestId"].as_str().unwrap().to_owned();
    let status = status_v2(&gateway, &held);
    assert_eq!(
        (
            &status["status"],
            &status["isFinalStatus"],
            &status["hasArtifactBeenDownloadedBySignPathInCaseOfArtifactRetrieval"]
        ),
        (&json!("WaitingForApproval"), &json!(false), &json!(true)),
        "{status}"
    );
    gw(&gateway.dir(), &["deny", &held, "--as", "alice"]);
    let status = status_v2(&gateway, &held);
    assert_eq!(
        (&status["status"], &status["isFinalStatus"]),
        (&json!("Denied"), &json!(true)),
        "{status}"
    );

    // v1: `/api/sign` with the API token and organization in the body; then SignPath's API on the host of
    // signingRequestUrl, and the signedArtifactLink it gives, unpacked as a ZIP.
    let mut v1 = body(&github, 70, 7, REPOSITORY, "rsa-2048");
    v1["signPathApiToken"] = json!(gateway.api_token());
    v1["signPathOrganizationId"] = json!(gateway.organization_id());
    let response = gateway
        .https_client()
        .post(format!("{}/api/sign?api-version=1.0", gateway.api_url()))
        .header("User-Agent", USER_AGENT)
        .header("Content-Type", "application/json")
        .body(v1.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let answer: Value = response.json().unwrap();
    let id = answer["signingRequestId"].as_str().unwrap().to_owned();
    let url = reqwest::Url::parse(answer["signingRequestUrl"].as_str().unwrap()).unwrap();
    let base =
        format!("{}://{}", url.scheme(), url.host_str().unwrap()) + &format!(":{}", url.port().unwrap());
    let request_url = format!("{base}/API/v1/{}/SigningRequests/{id}", gateway.organization_id());
    let request: Value = action_request(&gateway, reqwest::Method::GET, &request_url)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (&request["status"], &request["isFinalStatus"]),
        (&json!("Completed"), &json!(true)),
        "{request}"
    );
    assert!(request["unsignedArtifactLink"].is_string(), "{request}");
    let link = request["signedArtifactLink"].as_str().unwrap();
    let zipped = action_request(&gateway, reqwest::Method::GET, link)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let files = unzip(&zipped);
    assert_eq!(files[0].0, "image.tar");
    verify_tarball(&gateway, work.path(), &files[0].1);

    // SignPath's Resubmit: the v1 request again, under demo/rsa-4096; the audit record names the original.
    let form = reqwest::blocking::multipart::Form::new()
        .text("originalSigningRequestId", id.clone())
        .text("signingPolicySlug", "rsa-4096")
        .text("description", "resubmitted");
    let response = action_request(
        &gateway,
        reqwest::Method::POST,
        &format!(
            "{}/v1/{}/SigningRequests/Resubmit",
            gateway.api_url(),
            gateway.organization_id()
        ),
    )
    .multipart(form)
    .send()
    .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let resubmitted = response.json::<Value>().unwrap()["signingRequestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (name, zipped) = signed_artifact_v2(&gateway, &resubmitted);
    assert_eq!(name, "image.zip");
    verify_tarball(&gateway, work.path(), &unzip(&zipped)[0].1);
    let audit = gateway.audit_json();
    let record = audit
        .iter()
        .find(|r| r["request_id"] == json!(resubmitted))
        .unwrap();
    assert!(record["metadata"].as_str().unwrap().contains(&id), "{record}");

    assert_token_kept(&gateway, &github);
}

#[test]
fn refusals_come_in_the_connectors_shape_and_a_run_of_another_repository_is_refused() {
    let github = github();
    let gateway = start(&github);
    let refused = |body: &Value, status: u16, problem: &str, says: &str| {
        let (got, answer) = submit_v2(&gateway, body);
        assert_eq!(got, status, "{answer}");
        assert_eq!(
            answer["type"],
            json!(format!("urn:signpath-gateway:problem:{problem}")),
            "{answer}"
        );
        // The action fails the step with `error`, after the connector's logs and validation errors.
        assert_eq!(answer["error"], answer["detail"], "{answer}");
        assert_eq!(answer["validationResult"], json!({"errors": []}), "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{error}");
    };
    // Run 9 is evil/app's: GitHub does not find it under acme/app.
    refused(
        &body(&github, 90, 9, REPOSITORY, "rsa-3072"),
        403,
        "origin-rejected",
        "GitHub's API answered 404 to GET /repos/acme/app/actions/runs/9",
    );
    // A run of acme/other, to a policy whose origin rule names acme/app.
    refused(
        &body(&github, 100, 10, "acme/other", "rsa-2048"),
        403,
        "origin-rejected",
        "the workflow run's repository is \"acme/other\"; this signing policy requires \"acme/app\"",
    );
    // Artifact 80 is run 8's, not run 7's.
    refused(
        &body(&github, 80, 7, REPOSITORY, "rsa-3072"),
        403,
        "origin-rejected",
        "GitHub says artifact 80 was made by workflow run 8, not by run 7",
    );
    // A GitHub token GitHub does not take.
    let mut wrong = body(&github, 70, 7, REPOSITORY, "rsa-3072");
    wrong["gitHubToken"] = json!("ghs_not_the_token");
    refused(&wrong, 403, "origin-rejected", "the GitHub token is not valid");
    // A policy that does not exist, and a request that is not the action's.
    refused(
        &body(&github, 70, 7, REPOSITORY, "nope"),
        404,
        "signing-policy-not-found",
        "nope",
    );
    let (got, answer) = submit_v2(&gateway, &json!({"artifactId": "70"}));
    assert_eq!(got, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("missing field"),
        "{answer}"
    );
    // An API token the gateway does not know: 401, in the same shape, and GitHub is not asked.
    let before = github.seen().len();
    let response = gateway
        .https_client()
        .post(format!("{}?api-version=1.0", connector(&gateway)))
        .header("Authorization", "Bearer not-a-token")
        .header("Content-Type", "application/json")
        .body(body(&github, 70, 7, REPOSITORY, "rsa-3072").to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let answer: Value = response.json().unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("the API token is not valid"),
        "{answer}"
    );
    assert_eq!(
        github.seen().len(),
        before,
        "GitHub was asked for an unauthenticated request"
    );

    // Resubmit of a request that is not there, or without the policy to sign with.
    let resubmit = |form: reqwest::blocking::multipart::Form| {
        let response = action_request(
            &gateway,
            reqwest::Method::POST,
            &format!("{}/SigningRequests/Resubmit", gateway.api_base()),
        )
        .multipart(form)
        .send()
        .unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    };
    let form = reqwest::blocking::multipart::Form::new()
        .text("OriginalSigningRequestId", uuid::Uuid::new_v4().to_string())
        .text("SigningPolicySlug", "rsa-3072");
    let (status, problem) = resubmit(form);
    assert_eq!(status, 404, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:signpath-gateway:problem:signing-request-not-found"
    );
    let form = reqwest::blocking::multipart::Form::new().text("originalSigningRequestId", "x");
    let (status, problem) = resubmit(form);
    assert_eq!(
        (status, problem["detail"].as_str().unwrap()),
        (400, "the form has no signingPolicySlug part")
    );

    // No refused request downloaded its artifact or left a file behind.
    assert!(
        !github.seen().iter().any(|s| s.path.starts_with("/blob/")),
        "{:?}",
        github.seen()
    );
    let artifacts = gateway.dir().join("artifacts");
    let left = std::fs::read_dir(&artifacts).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "refused requests left files in {}", artifacts.display());
    assert_token_kept(&gateway, &github);
}
