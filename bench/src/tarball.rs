//! OCI image layout tarballs for the sign-before-push figures, written as `docker buildx build -o type=oci` writes
//! them (`blobs/sha256/<hex>`, `oci-layout`, `index.json` naming the image by `io.containerd.image.name` and its
//! tag by `org.opencontainers.image.ref.name`): one single-platform image whose one content layer has the size
//! asked for. The layer is streamed through a file, so a 1 GiB tarball never sits in this process's memory.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Result;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Writes `tarball`: the image `name` (`registry/repository:tag`) with one layer of `layer_bytes` bytes that do
/// not repeat within a MiB (no tool under test compresses or dedupes them). `scratch` holds the layer meanwhile.
pub fn write(tarball: &Path, name: &str, layer_bytes: u64, scratch: &Path) -> Result<()> {
    let layer_path = scratch.join("layer");
    let layer_digest = write_layer(&layer_path, layer_bytes)?;
    let layer = json!({"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_bytes});
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}})
    .to_string();
    let config_descriptor = descriptor(OCI_CONFIG, config.as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor,
        "layers": [layer]})
    .to_string();
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let mut manifest_descriptor = descriptor(OCI_MANIFEST, manifest.as_bytes());
    manifest_descriptor["annotations"] =
        json!({"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest_descriptor]});

    let mut tar = tar::Builder::new(BufWriter::new(File::create(tarball)?));
    let mut layer_file = File::open(&layer_path)?;
    append(&mut tar, &blob_name(&layer_digest), layer_bytes, &mut layer_file)?;
    for bytes in [config.as_bytes(), manifest.as_bytes()] {
        append(&mut tar, &blob_name(&sha256(bytes)), bytes.len() as u64, bytes)?;
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(&mut tar, "oci-layout", layout.len() as u64, &layout[..])?;
    let index = index.to_string();
    append(&mut tar, "index.json", index.len() as u64, index.as_bytes())?;
    tar.into_inner()?.flush()?;
    std::fs::remove_file(&layer_path)?;
    Ok(())
}

fn write_layer(path: &Path, size: u64) -> Result<String> {
    // A MiB of SHA-256 output chained from a counter: cheap, and no run of it repeats within the MiB.
    let mut chunk = Vec::with_capacity(1 << 20);
    let mut block = Sha256::digest(b"signpath-bench layer");
    while chunk.len() < 1 << 20 {
        chunk.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    let mut file = BufWriter::new(File::create(path)?);
    let mut hash = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        hash.update(&chunk[..n]);
        left -= n as u64;
    }
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.flush()?;
    file.rewind()?;
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

fn append(tar: &mut tar::Builder<impl Write>, name: &str, size: u64, data: impl std::io::Read) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, data)?;
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}
