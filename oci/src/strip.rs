//! `strip`: takes an image's content layers out of a layout tarball into a directory, so that only metadata has
//! to travel to be signed. Every index, manifest and config stays byte-identical (and `index.json` too), so the
//! image's digest, the thing that is signed, does not change; the manifests keep every layer's digest and size,
//! which is how [`crate::repack`] checks the layers when they come back.
//!
//! A layer that another image in the same tarball also uses stays in the tarball, so the other image stays whole.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{self, Image, Layers};
use crate::layout::{Descriptor, Layout};
use crate::tarball;

/// What [`strip`] did.
#[derive(Debug, Clone)]
pub struct Stripped {
    pub image: Image,
    /// Layers moved to the directory.
    pub layers: Vec<Descriptor>,
    /// Layers left in the tarball because another image there uses them too.
    pub shared: Vec<Descriptor>,
}

impl Stripped {
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// Where a stripped layer is kept: `<directory>/<algorithm>/<hex>`.
pub fn layer_path(directory: &Path, digest: &Digest) -> PathBuf {
    directory.join(digest.algorithm().name()).join(digest.hex())
}

/// Strips the layers of the image `reference` names from the tarball at `tarball` (rewritten in place) into
/// `directory`.
pub fn strip(tarball: &Path, reference: &str, directory: &Path) -> Result<Stripped> {
    let staging = tarball::staging_dir(tarball)?;
    tarball::unpack_file(tarball, staging.path())?;
    let layout = Layout::open(staging.path())?;
    let stripped = strip_layout(&layout, reference, directory)?;
    tarball::pack_file(staging.path(), tarball)?;
    Ok(stripped)
}

/// [`strip`] on an unpacked layout directory.
pub fn strip_layout(layout: &Layout, reference: &str, directory: &Path) -> Result<Stripped> {
    let image = image::find(layout, reference)?;
    let graph = image::graph(layout, &image.descriptor, Layers::Required)?;
    let mut used_elsewhere = BTreeSet::new();
    for entry in layout.index()? {
        if entry.digest != image.descriptor.digest && (entry.is_index() || entry.is_manifest()) {
            let other = image::graph(layout, &entry, Layers::MayBeAbsent)?;
            used_elsewhere.extend(other.layers.into_iter().map(|l| l.digest));
        }
    }
    let (shared, layers): (Vec<_>, Vec<_>) = graph
        .layers
        .into_iter()
        .filter(|l| layout.has_blob(&l.digest))
        .partition(|l| used_elsewhere.contains(&l.digest));
    for layer in &layers {
        let to = layer_path(directory, &layer.digest);
        let dir = to.parent().unwrap_or(directory);
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        move_file(&layout.blob_path(&layer.digest), &to)?;
    }
    Ok(Stripped {
        image,
        layers,
        shared,
    })
}

/// Renames, or copies and removes when `to` is on another file system.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    fs::remove_file(from).map_err(|e| Error::io(from, e))
}
