//! Images in a layout: finding the `index.json` entry a reference names, and walking what it consists of
//! (nested image indexes, platform manifests, configs, layers) with every document's digest and size checked.
//! [`check_images`] checks many images of an untrusted layout at once, within a [`Budget`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// What checking a layout from an untrusted source may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// The most descriptors the images may name, each counted for every image (and every index) that names it:
    /// the work signing them all would take, since each image's signing walks its own graph.
    pub max_descriptors: usize,
    /// Set when the check's result is no longer wanted; the walk stops at its next descriptor.
    pub cancelled: Option<&'a AtomicBool>,
}

/// What [`check_images`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Descriptors the images name, counted as [`Budget::max_descriptors`] counts them.
    pub descriptors: usize,
    /// Blobs looked at (read, or their size checked): each at most once.
    pub blobs_visited: usize,
}

/// Checks the images `roots` of a layout as [`graph`] does each (every index and manifest read with its digest and
/// size checked, configs and, as `layers` says, layers present), but visits each blob once however many images or
/// indexes name it, and stops with [`Error::TooManyDescriptors`] as soon as the images name more than the budget
/// allows, or with [`Error::Cancelled`] once the budget's flag is set.
///
/// A layout of 300 `index.json` entries naming one index of 1,000 manifests is 1.3 MB of tarball; walking each
/// image's graph from scratch reads 300,000 documents. Here it reads the index once and stops at the budget.
pub fn check_images(
    layout: &Layout,
    roots: &[Descriptor],
    layers: Layers,
    budget: Budget<'_>,
) -> Result<Checked> {
    let mut check = Check {
        layout,
        layers,
        budget,
        below: HashMap::new(),
        checked: Checked::default(),
    };
    for root in roots {
        let n = check.visit(root, "index.json", 0)?;
        check.checked.descriptors = check.charge(check.checked.descriptors, n)?;
    }
    Ok(check.checked)
}

struct Check<'a> {
    layout: &'a Layout,
    layers: Layers,
    budget: Budget<'a>,
    /// Each blob visited, with the number of descriptors at and below it (counted as the budget counts them).
    below: HashMap<Digest, usize>,
    checked: Checked,
}

impl Check<'_> {
    fn charge(&self, so_far: usize, more: usize) -> Result<usize> {
        let total = so_far.saturating_add(more);
        if total > self.budget.max_descriptors {
            return Err(Error::TooManyDescriptors {
                limit: self.budget.max_descriptors,
            });
        }
        Ok(total)
    }

    fn visit(&mut self, descriptor: &Descriptor, referrer: &str, depth: usize) -> Result<usize> {
        if self.budget.cancelled.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        if let Some(&n) = self.below.get(&descriptor.digest) {
            return Ok(n);
        }
        if depth > MAX_DEPTH {
            return Err(Error::InvalidDocument {
                what: format!("{} {}", descriptor.media_type, descriptor.digest),
                reason: format!("image indexes nest deeper than {MAX_DEPTH} levels"),
            });
        }
        self.checked.blobs_visited += 1;
        let mut n = 1;
        if descriptor.is_index() {
            let (_, index) = self.layout.read_document(descriptor, referrer)?;
            let referrer = format!("image index {}", descriptor.digest);
            for child in &index.manifests {
                let below = self.visit(child, &referrer, depth + 1)?;
                n = self.charge(n, below)?;
            }
        } else if descriptor.is_manifest() {
            let (_, manifest) = self.layout.read_document(descriptor, referrer)?;
            let what = format!("{} {}", descriptor.media_type, descriptor.digest);
            let config = manifest.config.ok_or_else(|| Error::InvalidDocument {
                what,
                reason: "the manifest has no config".into(),
            })?;
            let referrer = format!("manifest {}", descriptor.digest);
            if self.below.insert(config.digest.clone(), 1).is_none() {
                self.checked.blobs_visited += 1;
                self.layout
                    .check_blob(&config, &format!("the config of {referrer}"))?;
            }
            n = self.charge(n, 1 + manifest.layers.len())?;
            for layer in &manifest.layers {
                if self.below.insert(layer.digest.clone(), 1).is_some() {
                    continue;
                }
                self.checked.blobs_visited += 1;
                // Non-distributable layers live elsewhere (their `urls`); an image may lack them.
                let required = self.layers == Layers::Required && layer.urls.is_empty();
                if required || self.layout.has_blob(&layer.digest) {
                    self.layout.check_blob(layer, &referrer)?;
                }
            }
        } else {
            // Something else an index points to (an artifact): it must be there.
            self.layout.check_blob(descriptor, referrer)?;
        }
        self.below.insert(descriptor.digest.clone(), n);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
mod tests {
    use super::*;
    use crate::layout::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

    /// A layout whose `index.json` has `entries` named entries, all naming one index of `manifests` manifests (each
    /// with its own one-layer image): the shape of the 1.3 MB tarball that cost minutes of CPU.
    fn fan_out(entries: usize, manifests: usize) -> (tempfile::TempDir, Layout, Vec<Descriptor>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let layout = Layout::open(dir.path()).unwrap();
        let blob = |media_type: &str, bytes: &[u8]| {
            layout.write_blob(bytes).unwrap();
            Descriptor::of(media_type, bytes)
        };
        let children: Vec<Descriptor> = (0..manifests)
            .map(|i| {
                let config = blob(OCI_CONFIG, format!("{{\"n\":{i}}}").as_bytes());
                let layer = blob(
                    "application/vnd.oci.image.layer.v1.tar",
                    format!("layer {i}").as_bytes(),
                );
                let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": config, "layers": [layer]});
                blob(OCI_MANIFEST, manifest.to_string().as_bytes())
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        let index = blob(OCI_INDEX, index.to_string().as_bytes());
        let roots = (0..entries)
            .map(|i| {
                let mut entry = index.clone();
                entry
                    .annotations
                    .insert(crate::layout::ANNOTATION_REF_NAME.into(), format!("tag{i}"));
                entry
            })
            .collect();
        (dir, layout, roots)
    }

    #[test]
    fn each_blob_is_visited_once_however_many_images_name_it() {
        let (_dir, layout, roots) = fan_out(5, 20);
        let budget = Budget {
            max_descriptors: 10_000,
            cancelled: None,
        };
        let checked = check_images(&layout, &roots, Layers::Required, budget).unwrap();
        // The index, and each manifest with its config and layer: once each.
        assert_eq!(checked.blobs_visited, 1 + 20 * 3);
        // Signing the five images walks the index's graph five times.
        assert_eq!(checked.descriptors, 5 * (1 + 20 * 3));
    }

    #[test]
    fn a_fan_out_beyond_the_budget_stops_after_one_walk_of_its_index() {
        let (_dir, layout, roots) = fan_out(300, 1_000);
        let budget = Budget {
            max_descriptors: 10_000,
            cancelled: None,
        };
        let started = std::time::Instant::now();
        let refused = check_images(&layout, &roots, Layers::Required, budget).unwrap_err();
        assert!(
            matches!(refused, Error::TooManyDescriptors { limit: 10_000 }),
            "{refused}"
        );
        assert!(refused.to_string().contains("10000 descriptors"), "{refused}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_cancelled_check_stops_at_its_next_descriptor() {
        let (_dir, layout, roots) = fan_out(3, 10);
        let cancelled = AtomicBool::new(true);
        let budget = Budget {
            max_descriptors: 10_000,
            cancelled: Some(&cancelled),
        };
        let refused = check_images(&layout, &roots, Layers::Required, budget).unwrap_err();
        assert!(matches!(refused, Error::Cancelled), "{refused}");
    }
}
