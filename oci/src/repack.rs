//! `repack`: puts an image's stripped layers back into a (signed) layout tarball. Each layer is copied from the
//! directory [`crate::strip`] filled while it is hashed, and only lands in the tarball when it matches the
//! digest its manifest names; a layer that is missing or altered is an error naming it, and the tarball is left
//! as it was.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{self, Image, Layers};
use crate::layout::{Descriptor, Layout};
use crate::strip::layer_path;
use crate::tarball;

/// What [`repack`] did.
#[derive(Debug, Clone)]
pub struct Repacked {
    pub image: Image,
    /// Layers copied back from the directory.
    pub restored: Vec<Descriptor>,
}

/// Restores the layers of the image `reference` names into the tarball at `tarball` (rewritten in place) from
/// `directory`.
pub fn repack(tarball: &Path, reference: &str, directory: &Path) -> Result<Repacked> {
    let staging = tarball::staging_dir(tarball)?;
    tarball::unpack_file(tarball, staging.path())?;
    let layout = Layout::open(staging.path())?;
    let repacked = repack_layout(&layout, reference, directory)?;
    tarball::pack_file(staging.path(), tarball)?;
    Ok(repacked)
}

/// [`repack`] on an unpacked layout directory.
pub fn repack_layout(layout: &Layout, reference: &str, directory: &Path) -> Result<Repacked> {
    let image = image::find(layout, reference)?;
    let graph = image::graph(layout, &image.descriptor, Layers::MayBeAbsent)?;
    let mut restored = Vec::new();
    for layer in graph.layers {
        if layout.has_blob(&layer.digest) || !layer.urls.is_empty() {
            continue;
        }
        let from = layer_path(directory, &layer.digest);
        let file = File::open(&from).map_err(|_| Error::LayerMissing {
            digest: layer.digest.clone(),
            reference: reference.to_owned(),
            path: from.display().to_string(),
        })?;
        let size = tarball::write_verified(
            BufReader::new(file),
            &layout.blob_path(&layer.digest),
            &layer.digest,
        )
        .map_err(|e| match e {
            Error::BlobDigestMismatch { digest, actual } => Error::LayerAltered {
                digest,
                path: from.display().to_string(),
                actual,
                size: std::fs::metadata(&from).map(|m| m.len()).unwrap_or(0),
                expected_size: layer.size,
            },
            other => other,
        })?;
        if size != layer.size {
            let _ = std::fs::remove_file(layout.blob_path(&layer.digest));
            return Err(Error::LayerAltered {
                digest: layer.digest.clone(),
                path: from.display().to_string(),
                actual: layer.digest.clone(),
                size,
                expected_size: layer.size,
            });
        }
        restored.push(layer);
    }
    // The whole image must now be there, with every size right.
    image::graph(layout, &image.descriptor, Layers::Required)?;
    Ok(Repacked { image, restored })
}
