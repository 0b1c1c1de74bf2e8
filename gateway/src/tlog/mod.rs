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
pub mod dsse;
pub mod entry_body;
pub mod rekor;
pub mod sequencer;
pub mod tiles;
pub mod tree;
pub mod verify;

#[cfg(test)]
mod store_tests;
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

/// The log's origin (its checkpoints' first line and key name): the host name of the gateway's public URL, without
/// scheme, port or path. Sigstore's clients name a Rekor v2 log's note key by its base URL's host name
/// (sigstore-go's `url.Hostname()`), so no other origin verifies there.
pub fn origin(public_url: &str) -> String {
    let url = public_url.trim_end_matches('/');
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        // An IPv6 literal: its brackets go, as Go's Hostname() drops them.
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_owned(),
        None => authority.split(':').next().unwrap_or(authority).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_origin_is_the_public_urls_host_name() {
        for (url, origin) in [
            ("https://127.0.0.1:8443", "127.0.0.1"),
            ("https://signing.example.com/", "signing.example.com"),
            ("https://signing.example.com:443/Api", "signing.example.com"),
            ("https://[::1]:8443", "::1"),
        ] {
            assert_eq!(super::origin(url), origin, "{url}");
        }
    }
}
