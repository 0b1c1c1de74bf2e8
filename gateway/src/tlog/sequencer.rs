//! The sequencer: every short while, the leaves written since the last checkpoint enter the tree in one batch,
//! with their hashes and a checkpoint signed in the HSM (as Rekor v2 integrates its entries). Any gateway may run
//! it: the store applies a batch only if the tree is still the size it was computed from, so of two replicas
//! sequencing at once one wins and the other's batch is dropped and taken again, whole, on its next turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint::{self, LogKey};
use super::tree::{self, StoredHashes};
use super::{TlogError, KEY_LABEL};
use crate::hsm::Signer;
use crate::store::log::{Growth, LogStore};
use common::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};

/// The most leaves one checkpoint takes in.
const MAX_BATCH: usize = 1024;
/// How often the pending leaves are sequenced.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// A leaf as a client sees it once sequenced: where it is and a checkpoint that holds it.
#[derive(Debug, Clone)]
pub struct Integrated {
    pub index: u64,
    pub size: u64,
    pub checkpoint: String,
}

/// The log's checkpoint key in the HSM, named `origin`; made there first if the setup predates the log, as `init`
/// makes it.
pub fn log_key(signer: &Signer, origin: String) -> Result<LogKey, TlogError> {
    let spki = match signer.public_key(KEY_LABEL) {
        Ok(spki) => spki,
        Err(_) => {
            tracing::info!("no checkpoint key in the HSM yet; making one ({KEY_LABEL}, ECDSA P-256)");
            signer
                .generate_key(common::keys::KeySpec::Ec256, KEY_LABEL)
                .map_err(|e| TlogError::Hsm(e.to_string()))?
        }
    };
    Ok(LogKey { origin, spki })
}

/// The log of one gateway: its store, its key in the HSM.
pub struct Sequencer {
    store: Arc<dyn LogStore>,
    signer: Arc<Signer>,
    key: LogKey,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("origin", &self.key.origin)
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// The log named `origin`, its checkpoint key taken from the HSM (made there first if the setup predates the
    /// log, as `init` makes it).
    pub fn open(store: Arc<dyn LogStore>, signer: Arc<Signer>, origin: String) -> Result<Self, TlogError> {
        let key = log_key(&signer, origin)?;
        Ok(Self { store, signer, key })
    }

    pub fn key(&self) -> &LogKey {
        &self.key
    }

    /// Waits (up to `timeout`) until the leaf of `request_id` is in the tree: where, and the newest checkpoint.
    pub fn integrated(&self, request_id: &str, timeout: Duration) -> Result<Option<Integrated>, TlogError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(index) = self.store.leaf(request_id)?.and_then(|leaf| leaf.index) {
                if let Some((size, checkpoint)) = self.store.checkpoint()? {
                    if index < size {
                        return Ok(Some(Integrated {
                            index,
                            size,
                            checkpoint,
                        }));
                    }
                }
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn store(&self) -> &dyn LogStore {
        self.store.as_ref()
    }

    /// Sequences the pending leaves (the first time, also signs the empty tree's checkpoint); the tree's size.
    pub fn step(&self) -> Result<u64, TlogError> {
        // Not counted among the signatures made for requests (`Signer::sign_unmetered`).
        let sign = |message: &[u8]| {
            let key = self.signer.find_key(KEY_LABEL).map_err(|e| e.to_string())?;
            self.signer
                .sign_unmetered(
                    key,
                    KeyKind::Ec(Curve::P256),
                    SignatureScheme::EcdsaAsn1,
                    HashAlgorithm::Sha256,
                    &HashAlgorithm::Sha256.digest(message),
                )
                .map_err(|e| e.to_string())
        };
        grow_once(self.store.as_ref(), &self.key, &sign)
    }

    /// Runs [`Sequencer::step`] every [`INTERVAL`] on a thread of its own, for as long as the process runs.
    pub fn spawn(self: Arc<Self>) -> std::io::Result<()> {
        std::thread::Builder::new().name("tlog-sequencer".into()).spawn(move || loop {
            if let Err(e) = self.step() {
                tracing::warn!(error = %e, "sequencing the transparency log failed; the next turn retries");
            }
            std::thread::sleep(INTERVAL);
        })?;
        Ok(())
    }
}

/// One turn of the sequencer with `sign` as the key; the tree's size after it.
pub fn grow_once(store: &dyn LogStore, key: &LogKey, sign: &checkpoint::Sign<'_>) -> Result<u64, TlogError> {
    let head = store.checkpoint()?;
    let from = head.as_ref().map_or(0, |(size, _)| *size);
    let pending = store.pending(MAX_BATCH)?;
    if pending.is_empty() && head.is_some() {
        return Ok(from);
    }
    let hashes = StoredHashes::new(store);
    let (written, root) = tree::grow(&hashes, from, &pending)?;
    let to = from + pending.len() as u64;
    let text = checkpoint::text(&key.origin, to, root)?;
    let note = checkpoint::sign(key, &text, &|m| sign(m)).map_err(|e| match e {
        TlogError::Checkpoint(reason) => TlogError::Hsm(reason),
        other => other,
    })?;
    let growth = Growth {
        from,
        to,
        leaves: pending
            .iter()
            .enumerate()
            .map(|(i, leaf)| (leaf.seq, from + i as u64))
            .collect(),
        hashes: written,
        checkpoint: note,
    };
    if store.grow(&growth)? {
        Ok(to)
    } else {
        tracing::debug!(
            from,
            "another gateway grew the log first; its batch is taken on the next turn"
        );
        Ok(from)
    }
}
