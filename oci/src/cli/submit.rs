//! `signpath-oci submit`: SignPath's file-based round trip for a layout tarball. The tarball is uploaded to
//! `SubmitWithArtifact` as it is read from disk (with progress on stderr), the request is polled until it is final
//! (waiting for approval as the other clients do, up to ApprovalWaitTimeoutInSeconds), and the signed tarball is
//! downloaded straight to a file next to the output and renamed into place. What the gateway answers is read as
//! `common::protocol`'s typed documents, the ones it writes. The configuration is the other
//! clients' (SIGNPATH_* variables or SIGNPATH_CONFIG_FILE); the token goes only to the API URL's origin.
//!
//! reqwest's blocking client is used here rather than `common::client::GatewayClient`, which sends bodies from
//! memory: an artifact may be gigabytes, so it is streamed from its file both ways.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::config::Config;
use common::protocol::{
    Problem, RequestStatus, SigningRequestData, SubmittedSigningRequest, IMAGE_REFERENCE_PARAMETER,
    ORIGIN_TOKEN_HEADER,
};
use reqwest::blocking::{multipart, Client, Response};
use reqwest::header::{AUTHORIZATION, LOCATION};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use signpath_oci::layout::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use signpath_oci::reference::Reference;

/// What to submit.
#[derive(Debug)]
pub struct Submission<'a> {
    pub tarball: &'a Path,
    pub project: String,
    pub policy: String,
    pub artifact_configuration: Option<String>,
    pub description: Option<String>,
    pub reference: Option<&'a ImageReference>,
    pub output: PathBuf,
}

/// `--reference`: the repository of images the tarball names only by a tag.
#[derive(Debug)]
pub struct ImageReference {
    text: String,
    parsed: Reference,
}

impl ImageReference {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = Reference::parse(text).map_err(|e| format!("--reference: {e}"))?;
        if parsed.digest.is_some() {
            return Err(format!(
                "--reference {text}: name the repository (and tag) the images are pushed to, not a digest"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            parsed,
        })
    }

    /// The full name of an image the layout names `name`: a bare tag under this repository.
    fn name(&self, name: &str) -> String {
        if name.contains(['/', ':']) {
            return name.to_owned();
        }
        match &self.parsed.registry {
            Some(registry) => format!("{registry}/{}:{name}", self.parsed.repository),
            None => format!("{}:{name}", self.parsed.repository),
        }
    }
}

/// What the signed tarball holds, one line each: every image with its digest (`image NAME@sha256:…`), and cosign's
/// signature tags (`cosign signature tag sha256-<hex>.sig`), which `oras cp` needs by name.
pub fn summary(signed: &Path, reference: Option<&ImageReference>) -> Result<Vec<String>, String> {
    let index = signpath_oci::tarball::read_index(signed).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for entry in &index {
        let Some(name) = entry
            .annotation(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| entry.annotation(ANNOTATION_REF_NAME))
        else {
            continue;
        };
        if name.ends_with(".sig") {
            lines.push(format!("cosign signature tag {name}"));
        } else if entry.is_index() || entry.is_manifest() {
            let name = reference.map_or_else(|| name.to_owned(), |r| r.name(name));
            lines.push(format!("image {name}@{}", entry.digest));
        }
    }
    Ok(lines)
}

/// Submits, waits and downloads; returns the request id.
pub fn submit(submission: &Submission<'_>) -> Result<String, String> {
    let config = Config::from_environment().map_err(|e| e.to_string())?;
    let organization = config.require_organization_id().map_err(|e| e.to_string())?;
    let token = config.require_api_token().map_err(|e| e.to_string())?;
    let base = common::client::api_base(&config.api_url, organization, config.allow_insecure_loopback_http)
        .map_err(|e| e.to_string())?;
    let tls = common::tls::tls_config(&config).map_err(|e| e.to_string())?;
    let client = Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(format!(
            "SignPath.ContainerSigning.signpath-oci/{}",
            env!("CARGO_PKG_VERSION")
        ))
        .redirect(reqwest::redirect::Policy::none())
        // Uploads and downloads of large tarballs take as long as they take; each read still has a deadline.
        .timeout(None)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {}", token.expose_secret());

    let file = std::fs::File::open(submission.tarball)
        .map_err(|e| format!("{}: {e}", submission.tarball.display()))?;
    let length = file.metadata().map_err(|e| e.to_string())?.len();
    let file_name = submission
        .tarball
        .file_name()
        .map_or_else(|| "image.tar".to_owned(), |n| n.to_string_lossy().into_owned());
    let artifact = multipart::Part::reader_with_length(Progress::new(file, length), length)
        .file_name(file_name)
        .mime_str("application/octet-stream")
        .map_err(|e| e.to_string())?;
    let mut form = multipart::Form::new()
        .text("ProjectSlug", submission.project.clone())
        .text("SigningPolicySlug", submission.policy.clone());
    if let Some(slug) = &submission.artifact_configuration {
        form = form.text("ArtifactConfigurationSlug", slug.clone());
    }
    if let Some(description) = &submission.description {
        form = form.text("Description", description.clone());
    }
    if let Some(reference) = submission.reference {
        form = form.text(
            format!("Parameters.{IMAGE_REFERENCE_PARAMETER}"),
            reference.text.clone(),
        );
    }
    if let Some(group) = &config.release_group {
        form = form.text("ReleaseGroup", group.clone());
    }
    let form = form.part("Artifact", artifact);
    let url = join(&base, "SigningRequests/SubmitWithArtifact")?;
    let mut request = client.post(url).header(AUTHORIZATION, &bearer).multipart(form);
    if let Some(id_token) = &config.id_token {
        request = request.header(ORIGIN_TOKEN_HEADER, id_token.expose_secret());
    }
    let response = request
        .send()
        .map_err(|e| format!("submitting the tarball failed: {e}"))?;
    if response.status() != StatusCode::CREATED {
        return Err(problem(response));
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let created: SubmittedSigningRequest = response
        .json()
        .map_err(|e| format!("the gateway's answer to the submission is not SignPath's: {e}"))?;
    let id = created.signing_request_id;
    let web_link = created.web_link.unwrap_or_default();
    eprintln!("submitted signing request {id} ({web_link})");
    let location = same_origin(
        &base,
        location.as_deref().unwrap_or(&format!("SigningRequests/{id}")),
    )?;

    let deadline = Instant::now() + config.approval_wait_timeout;
    let mut told = false;
    let status = loop {
        let response = client
            .get(location.clone())
            .header(AUTHORIZATION, &bearer)
            .send()
            .map_err(|e| format!("polling signing request {id} failed: {e}"))?;
        if !response.status().is_success() {
            return Err(problem(response));
        }
        let status: SigningRequestData = response.json().map_err(|e| {
            format!("signing request {id}: the gateway's answer is not SignPath's request data: {e}")
        })?;
        if status.is_final_status {
            break status;
        }
        if !told {
            eprintln!(
                "signing request {id} is {}: approve it at {web_link} or with `signpath-gateway approve {id} --as <approver>`; waiting",
                status.status
            );
            told = true;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "signing request {id} was not completed within {} s; it is still at {web_link}",
                config.approval_wait_timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    if status.status != RequestStatus::Completed {
        return Err(format!(
            "signing request {id} ended {}: nothing was signed ({web_link})",
            status.status
        ));
    }
    let link = status.signed_artifact_link.ok_or_else(|| {
        format!("signing request {id} has no signed artifact (deleted after the retention period?)")
    })?;
    let mut response = client
        .get(same_origin(&base, &link)?)
        .header(AUTHORIZATION, &bearer)
        .send()
        .map_err(|e| format!("downloading the signed tarball failed: {e}"))?;
    if !response.status().is_success() {
        return Err(problem(response));
    }
    let dir = match submission.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut out = tempfile::NamedTempFile::new_in(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bytes = std::io::copy(&mut response, &mut out)
        .map_err(|e| format!("downloading the signed tarball failed: {e}"))?;
    out.flush().map_err(|e| e.to_string())?;
    out.persist(&submission.output)
        .map_err(|e| format!("{}: {}", submission.output.display(), e.error))?;
    eprintln!(
        "downloaded the signed tarball ({bytes} bytes) to {}",
        submission.output.display()
    );
    Ok(id)
}

fn join(base: &Url, path: &str) -> Result<Url, String> {
    base.join(path).map_err(|e| e.to_string())
}

/// A URL the gateway gave (`Location`, a link), if it is on the API URL's origin: the token goes nowhere else.
fn same_origin(base: &Url, link: &str) -> Result<Url, String> {
    let url = join(base, link)?;
    if url.origin() != base.origin() {
        return Err(format!(
            "the gateway pointed to {} outside its API URL's origin; refusing to send the token there",
            url.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

/// A refusal as the gateway explained it (its problem document's detail).
fn problem(response: Response) -> String {
    let status = response.status();
    let text = response.text().unwrap_or_default();
    let detail = serde_json::from_str::<Problem>(&text)
        .ok()
        .and_then(|p| p.detail)
        .unwrap_or(text);
    format!("the gateway answered {status}: {detail}")
}

/// The tarball as it is read for upload, with a line on stderr every tenth of it.
struct Progress<R> {
    inner: R,
    total: u64,
    sent: u64,
    shown: u64,
}

impl<R> Progress<R> {
    fn new(inner: R, total: u64) -> Self {
        Self {
            inner,
            total,
            sent: 0,
            shown: 0,
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        let tenth = (self.sent * 10).checked_div(self.total).unwrap_or(10);
        if tenth > self.shown {
            self.shown = tenth;
            eprintln!("uploaded {} of {} bytes", self.sent, self.total);
        }
        Ok(n)
    }
}
