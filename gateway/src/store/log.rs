//! The transparency log's persistence: its leaves (each written in the audit record's own transaction, so a
//! signature's record and its leaf are never one without the other), the stored hashes of its Merkle tree and the
//! checkpoints signed over it. The tree itself (hashing, tiles, proofs) is `tlog/`'s; this only keeps what it is
//! given and grows the tree as one step: a batch of pending leaves gets its indexes, hashes and checkpoint together,
//! and only if no other gateway grew the tree first (a compare-and-set on the tree size, shared by replicas).

use super::StoreError;

/// The kind of a leaf that logs a signature the gateway made.
pub const KIND_SIGNATURE: &str = "signature";
/// The kind of a leaf a client uploaded (Rekor v2's `POST /api/v2/log/entries`).
pub const KIND_REKOR: &str = "rekor";

/// A leaf written but not yet in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLeaf {
    /// The store's order of arrival; leaves enter the tree in this order.
    pub seq: i64,
    pub body: Vec<u8>,
}

/// A leaf as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    /// Its index in the tree, once sequenced.
    pub index: Option<u64>,
    /// The audit record (request id) it belongs to.
    pub request_id: String,
    pub kind: String,
    pub body: Vec<u8>,
}

/// One growth of the tree, computed by `tlog/` from [`LogStore::pending`] and [`LogStore::hashes`].
#[derive(Debug, Clone)]
pub struct Growth {
    /// The tree size it grows from; the growth is refused if the stored tree is no longer this size.
    pub from: u64,
    pub to: u64,
    /// `(seq, index)` of each leaf it takes in.
    pub leaves: Vec<(i64, u64)>,
    /// The new stored hashes (Go's sumdb/tlog stored-hash indexes).
    pub hashes: Vec<(u64, [u8; 32])>,
    /// The signed note of the tree at `to`.
    pub checkpoint: String,
}

/// The transparency log's tables.
pub trait LogStore: Send + Sync {
    /// Writes a leaf of its own (a Rekor upload, under its request's id), pending until sequenced.
    fn add(&self, request_id: &str, kind: &str, body: &[u8]) -> Result<(), StoreError>;

    /// The oldest `limit` leaves not yet in the tree.
    fn pending(&self, limit: usize) -> Result<Vec<PendingLeaf>, StoreError>;

    /// The stored hashes at these indexes, in the same order; an index not stored is an error.
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError>;

    /// Applies a growth in one transaction; false (and nothing written) if the tree is no longer `growth.from`
    /// leaves large (another gateway grew it first).
    fn grow(&self, growth: &Growth) -> Result<bool, StoreError>;

    /// The newest checkpoint and its tree size, if the log has one.
    fn checkpoint(&self) -> Result<Option<(u64, String)>, StoreError>;

    /// The bodies of the sequenced leaves `from..to`, in index order.
    fn bodies(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The leaf of an audit record.
    fn leaf(&self, request_id: &str) -> Result<Option<LogLeaf>, StoreError>;

    /// Every leaf, sequenced ones first in index order, then the pending ones.
    fn leaves(&self) -> Result<Vec<LogLeaf>, StoreError>;
}
