//! OCI image layout tarballs (what `docker buildx build -o type=oci,dest=image.tar` writes), streamed: unpacking
//! copies each blob to its file while hashing it and refuses one whose content does not match its name; packing
//! streams files into the archive. Neither ever holds a blob in memory, so a 2 GiB tarball needs no 2 GiB of RAM.
//!
//! Nothing here interprets manifests; that is [`crate::layout`]'s and [`crate::image`]'s work.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::{BLOBS_DIR, INDEX_FILE, OCI_LAYOUT_FILE};

/// A staging directory next to `near` (same file system, so results can be renamed into place); removed when
/// dropped.
pub fn staging_dir(near: &Path) -> Result<tempfile::TempDir> {
    let dir = match near.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".signpath-oci-")
        .tempdir_in(&dir)
        .map_err(|e| Error::io(&dir, e))
}

/// Unpacks the tarball at `path` into the directory `dest`.
pub fn unpack_file(path: &Path, dest: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    unpack(BufReader::new(file), dest)
}

/// The entries of the `index.json` of the tarball at `path`, read from the archive without unpacking it: what a
/// signed tarball holds (its images and signature tags), for a summary.
pub fn read_index(path: &Path) -> Result<Vec<crate::layout::Descriptor>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    for entry in archive.entries().map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        let name = entry.path().map_err(|e| Error::io(path, e))?.into_owned();
        if normal_components(&name).is_some_and(|parts| parts == [INDEX_FILE]) {
            let mut bytes = Vec::new();
            entry
                .take(crate::layout::MAX_DOCUMENT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(path, e))?;
            let invalid = |reason: String| Error::InvalidDocument {
                what: INDEX_FILE.into(),
                reason,
            };
            if bytes.len() as u64 > crate::layout::MAX_DOCUMENT_BYTES {
                return Err(invalid("it is too large".into()));
            }
            let index: crate::layout::Document =
                serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
            return Ok(index.manifests);
        }
    }
    Err(Error::MissingLayoutFile(INDEX_FILE))
}

/// Unpacks a layout tarball into `dest`, verifying every blob against its digest on the way.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| Error::io(dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(dest, e))?;
        let raw_path = entry.path().map_err(|e| Error::io(dest, e))?.into_owned();
        let display = raw_path.display().to_string();
        let parts = normal_components(&raw_path).ok_or(Error::UnexpectedEntry {
            path: display.clone(),
            reason: "an absolute path or one with `..`",
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(Error::UnexpectedEntry {
                path: display,
                reason: "not a regular file (links and devices are refused)",
            });
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match parts.as_slice() {
            [BLOBS_DIR, algorithm, hex] => {
                let digest = Digest::from_path_parts(algorithm, hex)?;
                let target = dest.join(BLOBS_DIR).join(algorithm).join(hex);
                write_verified(&mut entry, &target, &digest)?;
            }
            [BLOBS_DIR, ..] => {
                return Err(Error::UnexpectedEntry {
                    path: display,
                    reason: "blobs are blobs/<algorithm>/<hex>",
                })
            }
            // `oci-layout`, `index.json`, and what else a tool put at the top (docker's manifest.json): kept as is.
            [name] => {
                let target = dest.join(name);
                let file = File::create(&target).map_err(|e| Error::io(&target, e))?;
                let mut out = BufWriter::new(file);
                std::io::copy(&mut entry, &mut out).map_err(|e| Error::io(&target, e))?;
                out.flush().map_err(|e| Error::io(&target, e))?;
            }
            _ => {
                return Err(Error::UnexpectedEntry {
                    path: display,
                    reason: "an OCI image layout has only top-level files and blobs/",
                })
            }
        }
    }
    Ok(())
}

/// Copies `reader` to `target` through a temporary file, renaming it into place only when its content hashes to
/// `digest`.
pub(crate) fn write_verified(reader: impl Read, target: &Path, digest: &Digest) -> Result<u64> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = BufWriter::new(temp);
    let (size, actual) =
        Digest::copy(digest.algorithm(), reader, &mut out).map_err(|e| Error::io(target, e))?;
    let temp = out.into_inner().map_err(|e| Error::io(target, e.into_error()))?;
    if actual != *digest {
        return Err(Error::BlobDigestMismatch {
            digest: digest.clone(),
            actual,
        });
    }
    temp.persist(target).map_err(|e| Error::io(target, e.error))?;
    Ok(size)
}

fn normal_components(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then_some(parts)
}

/// Packs the layout directory `src` into a tarball at `path`: written to a temporary file beside it and renamed
/// over it, so a failure leaves the old tarball untouched.
pub fn pack_file(src: &Path, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out = BufWriter::new(temp);
    pack(src, &mut out)?;
    let temp = out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    temp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes the layout directory `src` as a tarball: `oci-layout`, `index.json`, the other top-level files, then
/// the blobs, each in name order, with fixed owners, modes and times so the same layout makes the same bytes.
pub fn pack(src: &Path, writer: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(writer);
    let mut top: Vec<String> = list(src)?
        .into_iter()
        .filter(|name| src.join(name).is_file())
        .collect();
    top.sort_by_key(|name| (name != OCI_LAYOUT_FILE, name != INDEX_FILE, name.clone()));
    for name in &top {
        append_file(&mut builder, &src.join(name), name)?;
    }
    let blobs = src.join(BLOBS_DIR);
    if blobs.is_dir() {
        append_dir(&mut builder, &format!("{BLOBS_DIR}/"))?;
        for algorithm in list(&blobs)? {
            let dir = blobs.join(&algorithm);
            append_dir(&mut builder, &format!("{BLOBS_DIR}/{algorithm}/"))?;
            for hex in list(&dir)? {
                // Only finished blobs: a staging file has a name that is no digest.
                if Digest::from_path_parts(&algorithm, &hex).is_ok() {
                    append_file(
                        &mut builder,
                        &dir.join(&hex),
                        &format!("{BLOBS_DIR}/{algorithm}/{hex}"),
                    )?;
                }
            }
        }
    }
    let mut writer = builder.into_inner().map_err(|e| Error::io(src, e))?;
    writer.flush().map_err(|e| Error::io(src, e))
}

fn list(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_dir(builder: &mut tar::Builder<impl Write>, name: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    builder
        .append_data(&mut h, name, std::io::empty())
        .map_err(|e| Error::io(Path::new(name), e))
}

fn append_file(builder: &mut tar::Builder<impl Write>, path: &Path, name: &str) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut h = header(tar::EntryType::Regular, size, 0o644);
    builder
        .append_data(&mut h, name, BufReader::new(file))
        .map_err(|e| Error::io(path, e))
}
