//! An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): descriptors, the documents a
//! layout holds (image indexes and manifests), reading them with their digest and size checked, and adding blobs
//! and `index.json` entries. Layers are never read here: they are only located, moved and copied by path.
//!
//! This module knows nothing of tarballs, signatures or the gateway.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// `org.opencontainers.image.ref.name`: the tag (or full name) of an `index.json` entry.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's full image name, which `docker buildx build -o type=oci` also writes.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Documents (manifests, indexes, configs) are read into memory; anything larger is not one.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    /// A descriptor of `bytes` with nothing but media type, digest and size.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: Digest::sha256(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
            urls: Vec::new(),
        }
    }

    /// The same descriptor with only media type, digest and size (what a `subject` or a signed payload names).
    pub fn bare(&self) -> Self {
        Self::of_parts(&self.media_type, self.digest.clone(), self.size)
    }

    fn of_parts(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
            urls: Vec::new(),
        }
    }

    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_str(), OCI_INDEX | DOCKER_MANIFEST_LIST)
    }

    pub fn is_manifest(&self) -> bool {
        matches!(self.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// An image index or manifest: the fields this tool follows. Unknown fields are ignored (the bytes are kept
/// as they are; documents are never re-serialized).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens a layout directory: `oci-layout` must say version 1.0.0 and `index.json` must exist.
    pub fn open(root: &Path) -> Result<Self> {
        let marker = root.join(OCI_LAYOUT_FILE);
        if !marker.is_file() {
            return Err(Error::MissingLayoutFile(OCI_LAYOUT_FILE));
        }
        if !root.join(INDEX_FILE).is_file() {
            return Err(Error::MissingLayoutFile(INDEX_FILE));
        }
        let layout: Value = read_json(&marker, OCI_LAYOUT_FILE)?;
        if layout.get("imageLayoutVersion").and_then(Value::as_str) != Some("1.0.0") {
            return Err(Error::InvalidDocument {
                what: OCI_LAYOUT_FILE.into(),
                reason: "imageLayoutVersion is not \"1.0.0\"".into(),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(BLOBS_DIR)
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The entries of `index.json`.
    pub fn index(&self) -> Result<Vec<Descriptor>> {
        let index: Document = read_json(&self.root.join(INDEX_FILE), INDEX_FILE)?;
        Ok(index.manifests)
    }

    /// Checks that the blob `descriptor` names exists with the size it says; `what` names the referrer for the
    /// error message.
    pub fn check_blob(&self, descriptor: &Descriptor, what: &str) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        let size = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => {
                return Err(Error::MissingBlob {
                    digest: descriptor.digest.clone(),
                    what: what.to_owned(),
                })
            }
        };
        if size != descriptor.size {
            return Err(Error::SizeMismatch {
                digest: descriptor.digest.clone(),
                what: what.to_owned(),
                expected: descriptor.size,
                actual: size,
            });
        }
        Ok(())
    }

    /// Reads a manifest or index blob, checking its size and digest, and parses it.
    pub fn read_document(&self, descriptor: &Descriptor, what: &str) -> Result<(Vec<u8>, Document)> {
        self.check_blob(descriptor, what)?;
        if descriptor.size > MAX_DOCUMENT_BYTES {
            return Err(Error::InvalidDocument {
                what: format!("{} ({what})", descriptor.digest),
                reason: format!("{} bytes is too large for a manifest", descriptor.size),
            });
        }
        let path = self.blob_path(&descriptor.digest);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (_, actual) = Digest::copy(descriptor.digest.algorithm(), bytes.as_slice(), std::io::sink())
            .map_err(|e| Error::io(&path, e))?;
        if actual != descriptor.digest {
            return Err(Error::BlobDigestMismatch {
                digest: descriptor.digest.clone(),
                actual,
            });
        }
        let document = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
            what: format!("{} ({what})", descriptor.digest),
            reason: e.to_string(),
        })?;
        Ok((bytes, document))
    }

    /// Stores `bytes` as a blob (written to a temporary name, then renamed) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256(bytes);
        let path = self.blob_path(&digest);
        if !path.is_file() {
            write_atomically(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Adds `descriptor` to `index.json`. An entry with the same digest and the same `ref.name` is replaced; an
    /// entry with another digest that carries the same `ref.name` loses the name (a tag names one thing).
    pub fn add_index_entry(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.root.join(INDEX_FILE);
        let mut index: Value = read_json(&path, INDEX_FILE)?;
        let entry = serde_json::to_value(descriptor).map_err(|e| Error::InvalidDocument {
            what: INDEX_FILE.into(),
            reason: e.to_string(),
        })?;
        let Some(manifests) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
            return Err(Error::InvalidDocument {
                what: INDEX_FILE.into(),
                reason: "it has no \"manifests\" array".into(),
            });
        };
        let name = descriptor.annotation(ANNOTATION_REF_NAME);
        let digest = descriptor.digest.to_string();
        let ref_name = |v: &Value| {
            v.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        manifests.retain(|m| {
            !(m.get("digest").and_then(Value::as_str) == Some(digest.as_str())
                && ref_name(m).as_deref() == name)
        });
        if let Some(name) = name {
            for m in manifests.iter_mut() {
                if ref_name(m).as_deref() == Some(name) {
                    if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                        a.remove(ANNOTATION_REF_NAME);
                    }
                }
            }
        }
        manifests.push(entry);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::InvalidDocument {
            what: INDEX_FILE.into(),
            reason: e.to_string(),
        })?;
        write_atomically(&path, &bytes)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let size = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidDocument {
            what: what.into(),
            reason: format!("{size} bytes is too large"),
        });
    }
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
        what: what.into(),
        reason: e.to_string(),
    })
}

/// Writes `bytes` next to `path` and renames it into place, so a reader never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
