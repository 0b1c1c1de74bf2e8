//! The transparency log of every signature the gateway makes: an append-only Merkle tree (RFC 6962 hashing) whose
//! leaves are the signature records' signing facts (and Rekor v2 entries uploaded to it), readable as
//! c2sp.org/tlog-tiles, with checkpoints signed as c2sp.org/signed-notes by a key in the HSM.
//!
//! A leaf is written by the store in its audit record's own transaction (`store::log`); the sequencer
//! (`sequencer.rs`) takes the pending leaves in batches, computes their hashes and the new root (`tree.rs`), signs
//! the checkpoint (`checkpoint.rs`) and has the store apply it all at once. Tiles and proofs are read from the
//! stored hashes (`tiles.rs`, `tree.rs`); `verify.rs` checks a log against its audit store.
//!
//! This folder owns the tree, tiles, checkpoints and proofs. It uses `store/` and the HSM; it must never import
//! `http/` or `signing/`.

pub mod checkpoint;
pub mod sequencer;
pub mod tiles;
pub mod tree;
pub mod verify;

#[cfg(test)]
mod testing;

pub use checkpoint::LogKey;
pub use sequencer::Sequencer;

/// The HSM label of the checkpoint key.
pub const KEY_LABEL: &str = "tlog/checkpoint";

/// What went wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error("the log's store failed: {0}")]
    Store(String),
    #[error("the log's tree is inconsistent: {0}")]
    Tree(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("the HSM could not sign the checkpoint: {0}")]
    Hsm(String),
}

impl From<crate::store::StoreError> for TlogError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Store(e.0)
    }
}

/// The log's origin (its checkpoints' first line and key name): the gateway's public URL without its scheme, as
/// a Rekor v2 log's origin is its base URL's.
pub fn origin(public_url: &str) -> String {
    let url = public_url.trim_end_matches('/');
    url.split_once("://").map_or(url, |(_, rest)| rest).to_owned()
}
