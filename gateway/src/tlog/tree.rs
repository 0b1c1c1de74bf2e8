//! The Merkle tree over the stored hashes: RFC 6962 leaf and node hashes, stored by Go's sumdb/tlog indexing (the
//! hash of every complete subtree, so a tile is a run of stored hashes and a proof needs at most log n reads).
//! `tlog_tiles` (Cloudflare's port of Go's sumdb/tlog) computes; this file only reads the store for it and plans
//! one growth of the tree.

use std::cell::RefCell;
use std::collections::HashMap;

use tlog_tiles::{Hash, HashReader};

use super::TlogError;
use crate::store::log::{LogStore, PendingLeaf};

/// The stored hashes of a log, read through its store, with the hashes of a growth not yet written laid over them.
pub struct StoredHashes<'a> {
    store: &'a dyn LogStore,
    fresh: RefCell<HashMap<u64, Hash>>,
    /// The first store error a read met (tlog_tiles' error type has no room for it).
    failed: RefCell<Option<String>>,
}

impl std::fmt::Debug for StoredHashes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredHashes").finish_non_exhaustive()
    }
}

impl<'a> StoredHashes<'a> {
    pub fn new(store: &'a dyn LogStore) -> Self {
        Self {
            store,
            fresh: RefCell::default(),
            failed: RefCell::default(),
        }
    }

    /// Turns a tlog_tiles error into ours, with the store's reason where a read failed.
    pub fn error(&self, e: tlog_tiles::Error) -> TlogError {
        match self.failed.borrow_mut().take() {
            Some(store) => TlogError::Store(store),
            None => TlogError::Tree(e.to_string()),
        }
    }
}

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let fresh = self.fresh.borrow();
        let missing: Vec<u64> = indexes
            .iter()
            .copied()
            .filter(|i| !fresh.contains_key(i))
            .collect();
        let stored = if missing.is_empty() {
            Vec::new()
        } else {
            self.store.hashes(&missing).map_err(|e| {
                *self.failed.borrow_mut() = Some(e.0);
                tlog_tiles::Error::IndexesNotInTree
            })?
        };
        let stored: HashMap<u64, Hash> = missing.into_iter().zip(stored.into_iter().map(Hash)).collect();
        indexes
            .iter()
            .map(|i| {
                fresh
                    .get(i)
                    .or_else(|| stored.get(i))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Stored hashes by their index.
pub type IndexedHashes = Vec<(u64, [u8; 32])>;

/// The hashes a growth of the tree from `from` leaves by `leaves` writes, and the new root.
pub fn grow(
    hashes: &StoredHashes<'_>,
    from: u64,
    leaves: &[PendingLeaf],
) -> Result<(IndexedHashes, Hash), TlogError> {
    let mut written = Vec::new();
    for (offset, leaf) in leaves.iter().enumerate() {
        let n = from + offset as u64;
        let new = tlog_tiles::stored_hashes(n, &leaf.body, hashes).map_err(|e| hashes.error(e))?;
        let first = tlog_tiles::stored_hash_index(0, n);
        let mut fresh = hashes.fresh.borrow_mut();
        for (i, h) in new.into_iter().enumerate() {
            let index = first + i as u64;
            fresh.insert(index, h);
            written.push((index, h.0));
        }
    }
    let size = from + leaves.len() as u64;
    let root = tlog_tiles::tree_hash(size, hashes).map_err(|e| hashes.error(e))?;
    Ok((written, root))
}

/// The root hash of the first `size` leaves.
pub fn root(store: &dyn LogStore, size: u64) -> Result<Hash, TlogError> {
    let hashes = StoredHashes::new(store);
    tlog_tiles::tree_hash(size, &hashes).map_err(|e| hashes.error(e))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 audit path, leaf to root).
pub fn inclusion(store: &dyn LogStore, size: u64, index: u64) -> Result<Vec<Hash>, TlogError> {
    let hashes = StoredHashes::new(store);
    tlog_tiles::prove_record(size, index, &hashes).map_err(|e| hashes.error(e))
}

/// The consistency proof from the tree of `old` leaves to the tree of `size` (RFC 6962).
pub fn consistency(store: &dyn LogStore, size: u64, old: u64) -> Result<Vec<Hash>, TlogError> {
    let hashes = StoredHashes::new(store);
    tlog_tiles::prove_tree(size, old, &hashes).map_err(|e| hashes.error(e))
}

#[cfg(test)]
mod tests {
    use tlog_tiles::{check_record, check_tree, node_hash, record_hash, Hash};

    /// RFC 6962's test leaves (the inputs of certificate-transparency's reference Merkle tests).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// Their tree heads for sizes 1..=8, from the same reference.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves() -> Vec<Vec<u8>> {
        LEAVES.iter().map(|l| hex::decode(l).expect("hex")).collect()
    }

    fn hash(hex_text: &str) -> Hash {
        Hash(hex::decode(hex_text).expect("hex").try_into().expect("32 bytes"))
    }

    /// The root of `leaves` by RFC 6962 section 2.1's recursion, written out, to hold the library to the RFC.
    fn rfc_root(leaves: &[Vec<u8>]) -> Hash {
        if leaves.len() == 1 {
            return record_hash(&leaves[0]);
        }
        let k = leaves.len().next_power_of_two() / 2;
        node_hash(rfc_root(&leaves[..k]), rfc_root(&leaves[k..]))
    }

    #[test]
    fn empty_tree_and_leaf_hashes_follow_rfc_6962() {
        assert_eq!(
            tlog_tiles::EMPTY_HASH,
            hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        // Leaf: SHA-256(0x00 || data); the empty leaf's hash is the first tree head.
        assert_eq!(record_hash(b""), hash(ROOTS[0]));
    }

    #[test]
    fn tree_heads_match_the_rfc_6962_reference_vectors() {
        let leaves = leaves();
        for size in 1..=8 {
            assert_eq!(rfc_root(&leaves[..size]), hash(ROOTS[size - 1]), "size {size}");
        }
    }

    #[test]
    fn grown_tree_has_the_reference_roots_and_proofs_that_check() {
        let store = super::super::testing::MemoryLog::default();
        let leaves = leaves();
        for (n, leaf) in leaves.iter().enumerate() {
            store.push(leaf);
            let (size, _) = super::super::testing::sequence(&store);
            assert_eq!(size, n as u64 + 1);
            let root = super::root(&store, size).expect("root");
            assert_eq!(root, hash(ROOTS[n]), "size {size}");
        }
        for size in 1..=8u64 {
            let root = hash(ROOTS[size as usize - 1]);
            for index in 0..size {
                let proof = super::inclusion(&store, size, index).expect("proof");
                check_record(&proof, size, root, index, record_hash(&leaves[index as usize]))
                    .unwrap_or_else(|e| panic!("leaf {index} of {size}: {e}"));
                // The same proof does not prove another leaf.
                let other = record_hash(b"not in the log");
                assert!(check_record(&proof, size, root, index, other).is_err());
            }
            for old in 1..=size {
                let proof = super::consistency(&store, size, old).expect("consistency");
                check_tree(&proof, size, root, old, hash(ROOTS[old as usize - 1]))
                    .unwrap_or_else(|e| panic!("{old} -> {size}: {e}"));
            }
        }
    }

    #[test]
    fn a_consistency_proof_fails_against_a_rewritten_history() {
        let store = super::super::testing::MemoryLog::default();
        for leaf in leaves() {
            store.push(&leaf);
        }
        super::super::testing::sequence(&store);
        let proof = super::consistency(&store, 8, 3).expect("consistency");
        let forged_old = rfc_root(&[vec![], vec![0], vec![0x10, 0x00]]);
        assert!(check_tree(&proof, 8, hash(ROOTS[7]), 3, forged_old).is_err());
    }
}
