//! The artifact of a GitHub artifact: taken out of the ZIP archive GitHub serves (`unpack`), and the signed one put
//! back into one (`zip_signed`), so the action unpacks what it uploaded. An artifact uploaded with
//! `archive: false` comes and goes as the file itself.

use std::io::{Read as _, Write as _};
use std::path::Path;

use sha2::Digest as _;

use super::refusal::{refuse, store_failure, Reason, Refusal};

pub(super) fn too_large(limit: u64) -> Refusal {
    refuse(
        Reason::BodyTooLarge,
        format!("the GitHub artifact is larger than this gateway's limit of {limit} bytes"),
    )
}

/// The upload as the file-based path takes it.
pub(super) struct Unpacked {
    pub(super) file_name: String,
    pub(super) size: u64,
    pub(super) sha256: String,
    pub(super) archive: Option<String>,
}

/// Takes the artifact out of what GitHub sent (`received`) into `unsigned`: the one file of a ZIP archive (what
/// `actions/upload-artifact` makes), or the file itself (an artifact uploaded with `archive: false`, named
/// `name`).
pub(super) fn unpack(received: &Path, unsigned: &Path, name: &str, limit: u64) -> Result<Unpacked, Refusal> {
    let invalid = |detail: String| refuse(Reason::InvalidArtifact, detail);
    let io_failed = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot unpack the GitHub artifact");
        store_failure()
    };
    let mut magic = [0u8; 4];
    let is_zip = std::fs::File::open(received)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04";
    if !is_zip {
        std::fs::rename(received, unsigned).map_err(io_failed)?;
        let (size, sha256) = hash_file(unsigned).map_err(io_failed)?;
        return Ok(Unpacked {
            file_name: name.to_owned(),
            size,
            sha256,
            archive: None,
        });
    }
    let file = std::fs::File::open(received).map_err(io_failed)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        invalid(format!(
            "the GitHub artifact {name} is not a readable ZIP archive: {e}"
        ))
    })?;
    let files: Vec<usize> = (0..zip.len())
        .filter(|&i| zip.by_index(i).is_ok_and(|entry| entry.is_file()))
        .collect();
    let [index] = files.as_slice() else {
        return Err(invalid(format!(
            "the GitHub artifact {name} holds {} files; the gateway signs an artifact of one file, an OCI image \
             layout tarball (upload it alone: actions/upload-artifact with path: image.tar)",
            files.len()
        )));
    };
    let mut entry = zip
        .by_index(*index)
        .map_err(|e| invalid(format!("the GitHub artifact {name} cannot be read: {e}")))?;
    // The entry's own name, without any directory: it names the file the action unpacks, nothing on the gateway.
    let file_name = entry
        .enclosed_name()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or_else(|| {
            invalid(format!(
                "the GitHub artifact {name} has a file without a usable name"
            ))
        })?;
    let mut out = std::fs::File::create(unsigned).map_err(io_failed)?;
    let mut hash = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = entry
            .read(&mut buffer)
            .map_err(|e| invalid(format!("the GitHub artifact {name} cannot be unpacked: {e}")))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        hash.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(io_failed)?;
    }
    out.sync_all().map_err(io_failed)?;
    drop(entry);
    let _ = std::fs::remove_file(received);
    Ok(Unpacked {
        file_name,
        size,
        sha256: hex::encode(hash.finalize()),
        archive: Some(format!("{name}.zip")),
    })
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = sha2::Sha256::new();
    let size = std::io::copy(&mut file, &mut hash)?;
    Ok((size, hex::encode(hash.finalize())))
}

/// Wraps the signed artifact at `signed` into a ZIP archive whose one entry is `entry_name`, in place: a GitHub
/// artifact goes back as it came, for the action to unpack.
pub(super) fn zip_signed(signed: &Path, entry_name: &str) -> std::io::Result<()> {
    let zipped = signed.with_extension("zip.tmp");
    {
        let mut input = std::fs::File::open(signed)?;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zipped)?);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file(entry_name, options)
            .map_err(std::io::Error::other)?;
        std::io::copy(&mut input, &mut zip)?;
        zip.finish().map_err(std::io::Error::other)?.sync_all()?;
    }
    std::fs::rename(&zipped, signed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
mod tests {
    use super::*;

    #[test]
    fn a_zip_of_one_file_is_unpacked_and_the_signed_file_goes_back_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let received = dir.path().join("received");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&received).unwrap());
            zip.start_file("image.tar", zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"tarball bytes").unwrap();
            zip.finish().unwrap();
        }
        let unsigned = dir.path().join("unsigned");
        let unpacked = unpack(&received, &unsigned, "image", 1 << 20).unwrap();
        assert_eq!(unpacked.file_name, "image.tar");
        assert_eq!(unpacked.archive.as_deref(), Some("image.zip"));
        assert_eq!(std::fs::read(&unsigned).unwrap(), b"tarball bytes");
        assert_eq!(
            unpacked.sha256,
            hex::encode(sha2::Sha256::digest(b"tarball bytes"))
        );

        zip_signed(&unsigned, "image.tar").unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&unsigned).unwrap()).unwrap();
        let mut text = String::new();
        zip.by_name("image.tar")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "tarball bytes");
    }

    #[test]
    fn a_zip_of_two_files_or_a_bomb_past_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let received = dir.path().join("received");
        let write = |files: &[(&str, Vec<u8>)]| {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&received).unwrap());
            for (name, bytes) in files {
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                zip.start_file(*name, options).unwrap();
                zip.write_all(bytes).unwrap();
            }
            zip.finish().unwrap();
        };
        write(&[("a.tar", b"a".to_vec()), ("b.tar", b"b".to_vec())]);
        let refusal = unpack(&received, &dir.path().join("u"), "two", 1 << 20)
            .err()
            .unwrap();
        assert!(refusal.detail.contains("holds 2 files"), "{}", refusal.detail);
        write(&[("big.tar", vec![0u8; 1 << 20])]);
        let refusal = unpack(&received, &dir.path().join("u"), "bomb", 1000)
            .err()
            .unwrap();
        assert_eq!(refusal.reason, Reason::BodyTooLarge);
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_the_artifact_itself() {
        let dir = tempfile::tempdir().unwrap();
        let received = dir.path().join("received");
        std::fs::write(&received, b"raw tarball").unwrap();
        let unsigned = dir.path().join("unsigned");
        let unpacked = unpack(&received, &unsigned, "image.tar", 1 << 20).unwrap();
        assert_eq!(
            (unpacked.file_name.as_str(), unpacked.archive),
            ("image.tar", None)
        );
        assert_eq!(std::fs::read(&unsigned).unwrap(), b"raw tarball");
    }
}
