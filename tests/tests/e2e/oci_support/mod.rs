//! OCI image layout tarballs made in Rust, as `docker buildx build -o type=oci,dest=image.tar` writes them
//! (`oci-layout`, `index.json` with `io.containerd.image.name` and a tag in `org.opencontainers.image.ref.name`,
//! `blobs/sha256/<hex>`), with several images, image indexes for multi-platform images, and ways to break them
//! (a missing or altered blob) for negative tests. No container tooling needed. And the fast-signing form of
//! SignPath's file-based API, as its clients post it.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{sha256_digest, OCI_INDEX, OCI_MANIFEST};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A layout being built in memory (test images are small).
#[derive(Debug, Default, Clone)]
pub struct LayoutBuilder {
    blobs: BTreeMap<String, Vec<u8>>,
    index: Vec<Value>,
}

/// The descriptor of something added to a [`LayoutBuilder`].
pub type Descriptor = Value;

impl LayoutBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = sha256_digest(bytes);
        self.blobs.insert(digest.clone(), bytes.to_vec());
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// An image manifest for `os/arch` with a config and the given layers (their bytes as given; the tools under
    /// test never look inside a layer).
    pub fn manifest(&mut self, arch: &str, layers: &[&[u8]]) -> Descriptor {
        let layer_descriptors: Vec<Value> = layers.iter().map(|l| self.blob(OCI_LAYER, l)).collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = json!({"architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}});
        let config = self.blob(OCI_CONFIG, config.to_string().as_bytes());
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
            "layers": layer_descriptors});
        self.blob(
            OCI_MANIFEST,
            serde_json::to_vec_pretty(&manifest).unwrap().as_slice(),
        )
    }

    /// An image index over platform manifests (`(arch, descriptor)`).
    pub fn image_index(&mut self, platforms: &[(&str, Descriptor)]) -> Descriptor {
        let manifests: Vec<Value> = platforms
            .iter()
            .map(|(arch, d)| {
                let mut d = d.clone();
                d["platform"] = json!({"architecture": arch, "os": "linux"});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.blob(OCI_INDEX, serde_json::to_vec_pretty(&index).unwrap().as_slice())
    }

    /// Names `descriptor` in `index.json` as buildx does: the full name, and the tag as `ref.name`.
    pub fn tag(&mut self, descriptor: &Descriptor, name: &str) {
        let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
        let mut entry = descriptor.clone();
        entry["annotations"] = json!({"io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": tag});
        self.index.push(entry);
    }

    /// Writes the tarball.
    pub fn write_tar(&self, path: &Path) {
        self.write_tar_with(path, |_, bytes| Some(bytes.to_vec()));
    }

    /// Writes the tarball with each blob passed through `edit` (`None` leaves the blob out; other bytes replace it
    /// under the same name).
    pub fn write_tar_with(&self, path: &Path, mut edit: impl FnMut(&str, &[u8]) -> Option<Vec<u8>>) {
        let file = std::fs::File::create(path).unwrap();
        let mut tar = tar::Builder::new(file);
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes).unwrap();
        };
        // buildx writes the blobs first and index.json last.
        for (digest, bytes) in &self.blobs {
            if let Some(bytes) = edit(digest, bytes) {
                add(&format!("blobs/sha256/{}", &digest["sha256:".len()..]), &bytes);
            }
        }
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index});
        add("index.json", index.to_string().as_bytes());
        tar.into_inner().unwrap();
    }
}

/// A tarball's regular files: path (without a leading `./`) → SHA-256 of the content.
pub fn tar_contents(path: &Path) -> BTreeMap<String, String> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name.trim_start_matches("./").to_owned(), sha256_digest(&bytes));
    }
    files
}

/// `POST SigningRequests/SubmitWithArtifact` of a fast-signing request: the text `parts`, then `payload` as the
/// `payload.json` Artifact, with the origin token header when given.
pub fn submit_fast(
    gateway: &Gateway,
    parts: &[(&str, &str)],
    payload: &str,
    origin_token: Option<&str>,
) -> reqwest::blocking::Response {
    let mut form = reqwest::blocking::multipart::Form::new().text("IsFastSigningRequest", "true");
    for (name, value) in parts {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    let form = form.part(
        "Artifact",
        reqwest::blocking::multipart::Part::bytes(payload.as_bytes().to_vec()).file_name("payload.json"),
    );
    let mut request = gateway
        .https_client()
        .post(format!(
            "{}/SigningRequests/SubmitWithArtifact",
            gateway.api_base()
        ))
        .bearer_auth(gateway.api_token());
    if let Some(token) = origin_token {
        request = request.header("X-SignPath-Origin-Token", token);
    }
    request.multipart(form).send().unwrap()
}

/// notation in its own home under `home`, trusting `root_pem` for every scope (strict verification), for
/// registries and OCI layouts alike; each call of the answer is a fresh `notation` command.
pub fn notation(home: &Path, root_pem: &Path) -> impl Fn() -> Command {
    let store = home.join("config/truststore/x509/ca/signpath");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(root_pem, store.join("root.pem")).unwrap();
    let policy = json!({"version": "1.0", "trustPolicies": [{"name": "signpath", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"}, "trustStores": ["ca:signpath"], "trustedIdentities": ["*"]}]});
    std::fs::write(home.join("config/trustpolicy.json"), policy.to_string()).unwrap();
    // The OCI layout verification reads its own policy file (trustpolicy.oci.json).
    std::fs::write(home.join("config/trustpolicy.oci.json"), policy.to_string()).unwrap();
    let home = home.to_path_buf();
    move || {
        let mut command = Command::new(e2e_tests::tools::tool("notation"));
        command
            .env_clear()
            .env("HOME", &home)
            .env("NOTATION_CONFIG", home.join("config"))
            .env("NOTATION_CACHE", home.join("cache"))
            .env("NOTATION_EXPERIMENTAL", "1");
        command
    }
}

/// `cosign verify --key PUBLIC_KEY IMAGE@DIGEST` against the plain-HTTP test registry, no transparency log (and no
/// way out to one: a proxy that refuses), asserting cosign's own verdict; what it printed.
pub fn cosign_verify_with_key(cosign: &Path, home: &Path, public_key: &Path, by_digest: &str) -> String {
    let output = std::process::Command::new(cosign)
        .env("HOME", home)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .args([
            "verify",
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--key",
        ])
        .arg(public_key)
        .arg(by_digest)
        .output()
        .unwrap();
    let text = e2e_tests::tools::output_text(&output);
    assert!(
        output.status.success()
            && text.contains("The signatures were verified against the specified public key"),
        "cosign verify {by_digest}: {text}"
    );
    text
}
