//! A real OCI registry for the signing tests: Debian's `docker-registry` (distribution 2.8) on a free loopback
//! port, storing into a temporary directory, stopped when the [`Registry`] is dropped.
//!
//! It also makes the image the tests sign: [`SmallImage`] is a real OCI image (config, one gzipped tar layer,
//! manifest) built in memory, pushed over the registry HTTP API by [`Registry::push_small_image`] or written as an
//! OCI image layout directory by [`write_oci_layout`] for `notation sign --oci-layout`.
//!
//! Distribution 2.8 has no Referrers API, so notation and cosign fall back to tags: cosign pushes
//! `sha256-<hex>.sig`, notation an image index tagged `sha256-<hex>`. [`Registry::tags_for_digest`] and
//! [`Registry::referrers_by_tag`] read those, which is how a test proves that something was (or was not) pushed.

use std::fmt::Display;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::tools;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Every manifest type a registry might hold, for `Accept` when reading one back.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 5;

/// A running `docker-registry`; dropping it stops the process and deletes its storage.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    http: Client,
}

/// An image pushed to a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `localhost:PORT/<repo>`, the repository as notation and cosign name it.
    pub repository: String,
    pub tag: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// `localhost:PORT/<repo>@sha256:<hex>`: what the tests sign and verify.
    pub reference: String,
}

impl ImageRef {
    /// `localhost:PORT/<repo>:<tag>`.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// A manifest as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    /// The registry's `Docker-Content-Digest`.
    pub digest: String,
    pub body: Vec<u8>,
}

impl Registry {
    /// Starts `docker-registry` on a free 127.0.0.1 port and waits until `GET /v2/` answers. Panics with the
    /// registry's log when it cannot start.
    pub fn start() -> Registry {
        let program = tools::tool("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("signpath-registry-")
            .tempdir()
            .expect("create a temporary directory for the registry");
        let http = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build an HTTP client");

        // docker-registry cannot bind port 0 and say which port it got. The port is free when we look but another
        // process may take it before the registry binds it; then the registry exits at once and we try another.
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = crate::gateway::free_port();
            let config = dir.path().join("config.yml");
            fs::write(&config, registry_config(dir.path(), port)).expect("write the registry configuration");
            let log_path = dir.path().join("registry.log");
            let log = File::create(&log_path).expect("create the registry log");
            let mut child = Command::new(&program)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("duplicate the log file handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
            if wait_until_ready(&mut child, &http, port) {
                return Registry {
                    child,
                    port,
                    dir,
                    http,
                };
            }
            stop(&mut child);
            last_log = fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("docker-registry did not start after {START_ATTEMPTS} attempts; its last log:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `localhost:PORT`: notation talks plain HTTP only to `localhost:*` without extra configuration, so image
    /// references use this name.
    pub fn localhost_host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The registry's own log (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes [`SmallImage::default`] as `<repo>:<tag>`. Every call pushes the same bytes, so the digest is the
    /// same in every repository; use [`Registry::push_image`] with [`SmallImage::with_content`] for another one.
    pub fn push_small_image(&self, repo: &str, tag: &str) -> ImageRef {
        self.push_image(repo, tag, &SmallImage::default())
    }

    /// Pushes an image's blobs (monolithic uploads) and then its manifest as `<repo>:<tag>`.
    pub fn push_image(&self, repo: &str, tag: &str, image: &SmallImage) -> ImageRef {
        self.push_blob(repo, &image.config);
        self.push_blob(repo, &image.layer);
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.url());
        let response = self
            .http
            .put(&url)
            .header("Content-Type", OCI_MANIFEST)
            .body(image.manifest.clone())
            .send()
            .unwrap_or_else(|e| self.fail(format!("PUT {url}: {e}")));
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let body = response.text().unwrap_or_default();
            self.fail(format!("PUT {url}: {status}: {body}"));
        }
        let digest = image.digest();
        let served = header(&response, "Docker-Content-Digest");
        assert_eq!(served, digest, "the registry computed another manifest digest");
        let repository = format!("{}/{repo}", self.localhost_host());
        ImageRef {
            reference: format!("{repository}@{digest}"),
            repository,
            tag: tag.to_owned(),
            digest,
        }
    }

    /// Uploads one blob: `POST /v2/<repo>/blobs/uploads/`, then `PUT <location>&digest=...` with the bytes.
    fn push_blob(&self, repo: &str, bytes: &[u8]) {
        let digest = sha256_digest(bytes);
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.url());
        let response = self
            .http
            .post(&start)
            .send()
            .unwrap_or_else(|e| self.fail(format!("POST {start}: {e}")));
        if response.status() != StatusCode::ACCEPTED {
            self.fail(format!("POST {start}: {}", response.status()));
        }
        let location = header(&response, "Location");
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let upload = format!("{location}{separator}digest={digest}");
        let response = self
            .http
            .put(&upload)
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap_or_else(|e| self.fail(format!("PUT {upload}: {e}")));
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let body = response.text().unwrap_or_default();
            self.fail(format!("PUT {upload}: {status}: {body}"));
        }
    }

    /// The manifest `<repo>:<reference>` (a tag or a digest), or `None` when the registry does not have it.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Manifest> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.url());
        let response = self
            .http
            .get(&url)
            .header("Accept", ACCEPT_MANIFESTS)
            .send()
            .unwrap_or_else(|e| self.fail(format!("GET {url}: {e}")));
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return None,
            status => self.fail(format!("GET {url}: {status}")),
        }
        let media_type = header(&response, "Content-Type");
        let digest = header(&response, "Docker-Content-Digest");
        let body = response
            .bytes()
            .unwrap_or_else(|e| self.fail(format!("GET {url}: reading the body: {e}")))
            .to_vec();
        Some(Manifest {
            media_type,
            digest,
            body,
        })
    }

    /// True when the registry has the manifest `<repo>:<reference>`.
    pub fn manifest_exists(&self, repo: &str, reference: &str) -> bool {
        self.manifest(repo, reference).is_some()
    }

    /// A blob's bytes, or `None` when the registry does not have it.
    pub fn blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.url());
        let response = self
            .http
            .get(&url)
            .send()
            .unwrap_or_else(|e| self.fail(format!("GET {url}: {e}")));
        match response.status() {
            StatusCode::OK => Some(
                response
                    .bytes()
                    .unwrap_or_else(|e| self.fail(format!("GET {url}: reading the body: {e}")))
                    .to_vec(),
            ),
            StatusCode::NOT_FOUND => None,
            status => self.fail(format!("GET {url}: {status}")),
        }
    }

    /// The repository's tags, sorted; empty when the repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let url = format!("{}/v2/{repo}/tags/list", self.url());
        let response = self
            .http
            .get(&url)
            .send()
            .unwrap_or_else(|e| self.fail(format!("GET {url}: {e}")));
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Vec::new(),
            status => self.fail(format!("GET {url}: {status}")),
        }
        let list: Value = response
            .json()
            .unwrap_or_else(|e| self.fail(format!("GET {url}: not JSON: {e}")));
        let mut tags: Vec<String> = list["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The tags that tag-schema fallbacks attach to the image `digest`: cosign's `sha256-<hex>.sig` (`.att`,
    /// `.sbom`) and notation's referrers index `sha256-<hex>`. Empty means nothing was pushed for it.
    pub fn tags_for_digest(&self, repo: &str, digest: &str) -> Vec<String> {
        let prefix = digest.replace(':', "-");
        self.tags(repo)
            .into_iter()
            .filter(|tag| tag.starts_with(&prefix))
            .collect()
    }

    /// The descriptors in the referrers index tagged `sha256-<hex>` for `digest` (where notation records its
    /// signatures on a registry without the Referrers API); empty when there is none.
    pub fn referrers_by_tag(&self, repo: &str, digest: &str) -> Vec<Value> {
        let Some(index) = self.manifest(repo, &digest.replace(':', "-")) else {
            return Vec::new();
        };
        let index: Value = serde_json::from_slice(&index.body)
            .unwrap_or_else(|e| self.fail(format!("the referrers index of {digest} is not JSON: {e}")));
        index["manifests"].as_array().cloned().unwrap_or_default()
    }

    fn fail(&self, what: impl Display) -> ! {
        panic!(
            "registry at {}: {what}\nregistry log:\n{}",
            self.host(),
            self.log()
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// True once `GET /v2/` answers 200; false when the process exited first or the time ran out.
fn wait_until_ready(child: &mut Child, http: &Client, port: u16) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    let url = format!("http://127.0.0.1:{port}/v2/");
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if let Ok(response) = http.get(&url).send() {
            // And still ours: a registry that lost the port to another exits at once.
            if response.status() == StatusCode::OK {
                return matches!(child.try_wait(), Ok(None));
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A header's value, or an empty string when it is missing or not text.
fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn registry_config(dir: &Path, port: u16) -> String {
    let storage = dir.join("storage");
    let secret = uuid::Uuid::new_v4().simple();
    format!(
        r#"version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "{storage}"
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "127.0.0.1:{port}"
  secret: "{secret}"
"#,
        storage = storage.display()
    )
}

/// A small real OCI image: a config, one gzipped tar layer holding `hello.txt`, and its manifest. The bytes are
/// deterministic, so the same content always gives the same digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallImage {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Default for SmallImage {
    fn default() -> Self {
        Self::with_content(b"hello from the signpath end-to-end tests\n")
    }
}

impl SmallImage {
    /// An image whose one layer holds `hello.txt` with `content`.
    pub fn with_content(content: &[u8]) -> Self {
        let tar = tar_with_file("hello.txt", content);
        let layer = gzip(&tar);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar)] },
        }))
        .expect("serialize the image config");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len() },
            "layers": [{ "mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(&layer), "size": layer.len() }],
        }))
        .expect("serialize the image manifest");
        SmallImage {
            config,
            layer,
            manifest,
        }
    }

    /// `sha256:<hex>` of the manifest: the image's digest.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }
}

fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    builder
        .append_data(&mut header, name, content)
        .expect("append to an in-memory tar");
    builder.into_inner().expect("finish an in-memory tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes [`SmallImage::default`] as an OCI image layout in `dir` (created if needed), its manifest named `tag`
/// by the `org.opencontainers.image.ref.name` annotation, and returns the manifest digest. Sign it with
/// `notation sign --oci-layout <dir>:<tag>` or `<dir>@<digest>`.
pub fn write_oci_layout(dir: &Path, tag: &str) -> String {
    write_image_layout(dir, tag, &SmallImage::default())
}

/// Writes `image` as an OCI image layout in `dir`; see [`write_oci_layout`].
pub fn write_image_layout(dir: &Path, tag: &str, image: &SmallImage) -> String {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("create {}: {e}", blobs.display()));
    for blob in [&image.config, &image.layer, &image.manifest] {
        write_file(&blob_path(dir, &sha256_digest(blob)), blob);
    }
    write_file(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": image.digest(),
            "size": image.manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    }))
    .expect("serialize index.json");
    write_file(&dir.join("index.json"), &index);
    image.digest()
}

/// Where an OCI image layout in `dir` keeps the blob `sha256:<hex>`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    dir.join("blobs").join("sha256").join(hex)
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_image_is_deterministic_and_content_addressed() {
        let image = SmallImage::default();
        assert_eq!(image, SmallImage::default());
        assert_ne!(image.digest(), SmallImage::with_content(b"other").digest());
        let manifest: Value = serde_json::from_slice(&image.manifest).expect("manifest JSON");
        assert_eq!(manifest["layers"][0]["digest"], sha256_digest(&image.layer));
        assert_eq!(manifest["config"]["digest"], sha256_digest(&image.config));
    }

    #[test]
    fn layer_is_a_gzipped_tar_with_hello_txt() {
        let image = SmallImage::with_content(b"hi\n");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(image.layer.as_slice()));
        let mut entries = archive.entries().expect("tar entries");
        let mut entry = entries.next().expect("one entry").expect("readable entry");
        assert_eq!(entry.path().expect("path").to_str(), Some("hello.txt"));
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).expect("read hello.txt");
        assert_eq!(content, "hi\n");
    }
}
