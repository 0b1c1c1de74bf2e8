//! Images in a layout: finding the `index.json` entry a reference names, and walking what it consists of
//! (nested image indexes, platform manifests, configs, layers) with every document's digest and size checked.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::{Descriptor, Layout};
use crate::reference::{entry_name, Reference};

/// Indexes nest (an index of indexes of manifests); deeper than this is not an image.
const MAX_DEPTH: usize = 8;

/// The image a reference selected.
#[derive(Debug, Clone)]
pub struct Image {
    /// The reference as the user gave it.
    pub reference: String,
    pub parsed: Reference,
    /// Its `index.json` entry: the descriptor of its manifest or image index.
    pub descriptor: Descriptor,
}

/// What an image consists of.
#[derive(Debug, Clone, Default)]
pub struct ImageGraph {
    /// Every image index and manifest, the root first.
    pub documents: Vec<Descriptor>,
    /// Image manifests (not indexes), the ones a platform signature names.
    pub manifests: Vec<Descriptor>,
    /// Config blobs.
    pub configs: Vec<Descriptor>,
    /// Content layers, each once.
    pub layers: Vec<Descriptor>,
}

/// Whether layers must be in the layout (a whole image) or may be absent (a stripped one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    Required,
    MayBeAbsent,
}

/// Finds the one `index.json` entry `reference` selects.
pub fn find(layout: &Layout, reference: &str) -> Result<Image> {
    let parsed = Reference::parse(reference)?;
    let entries = layout.index()?;
    let mut selected: Vec<&Descriptor> = entries.iter().filter(|e| parsed.selects(e)).collect();
    selected.dedup_by(|a, b| a.digest == b.digest);
    match selected.as_slice() {
        [one] => Ok(Image {
            reference: reference.to_owned(),
            parsed,
            descriptor: (*one).clone(),
        }),
        [] => Err(Error::ReferenceNotFound {
            reference: reference.to_owned(),
            available: entries
                .iter()
                .filter(|e| e.is_index() || e.is_manifest())
                .map(entry_name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        many => Err(Error::AmbiguousReference {
            reference: reference.to_owned(),
            digests: many
                .iter()
                .map(|d| d.digest.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Walks the image below `root`: reads every index and manifest (digest and size checked), checks configs, and
/// collects layers, checking them as `layers` says.
pub fn graph(layout: &Layout, root: &Descriptor, layers: Layers) -> Result<ImageGraph> {
    let mut graph = ImageGraph::default();
    let mut seen = BTreeSet::new();
    walk(layout, root, "index.json", layers, 0, &mut seen, &mut graph)?;
    Ok(graph)
}

fn walk(
    layout: &Layout,
    descriptor: &Descriptor,
    referrer: &str,
    layers: Layers,
    depth: usize,
    seen: &mut BTreeSet<Digest>,
    graph: &mut ImageGraph,
) -> Result<()> {
    if !seen.insert(descriptor.digest.clone()) {
        return Ok(());
    }
    let what = format!("{} {}", descriptor.media_type, descriptor.digest);
    if depth > MAX_DEPTH {
        return Err(Error::InvalidDocument {
            what,
            reason: format!("image indexes nest deeper than {MAX_DEPTH} levels"),
        });
    }
    if descriptor.is_index() {
        let (_, index) = layout.read_document(descriptor, referrer)?;
        graph.documents.push(descriptor.clone());
        let referrer = format!("image index {}", descriptor.digest);
        for child in &index.manifests {
            walk(layout, child, &referrer, layers, depth + 1, seen, graph)?;
        }
    } else if descriptor.is_manifest() {
        let (_, manifest) = layout.read_document(descriptor, referrer)?;
        graph.documents.push(descriptor.clone());
        graph.manifests.push(descriptor.clone());
        let config = manifest.config.ok_or_else(|| Error::InvalidDocument {
            what: what.clone(),
            reason: "the manifest has no config".into(),
        })?;
        layout.check_blob(&config, &format!("the config of manifest {}", descriptor.digest))?;
        graph.configs.push(config);
        for layer in manifest.layers {
            if !seen.insert(layer.digest.clone()) {
                continue;
            }
            // Non-distributable layers live elsewhere (their `urls`); an image may lack them.
            let required = layers == Layers::Required && layer.urls.is_empty();
            if required || layout.has_blob(&layer.digest) {
                layout.check_blob(&layer, &format!("manifest {}", descriptor.digest))?;
            }
            graph.layers.push(layer);
        }
    } else {
        // Something else an index points to (an artifact): it must be there.
        layout.check_blob(descriptor, referrer)?;
    }
    Ok(())
}
