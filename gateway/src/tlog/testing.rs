//! A log in memory and a software key, for the unit tests of the tree, tiles and verification.

use std::collections::BTreeMap;
use std::sync::Mutex;

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;

use super::LogKey;
use crate::store::log::{Growth, LogLeaf, LogStore, PendingLeaf, KIND_SIGNATURE};
use crate::store::StoreError;

#[derive(Debug, Default)]
pub struct MemoryLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    leaves: Vec<(i64, LogLeaf)>,
    hashes: BTreeMap<u64, [u8; 32]>,
    checkpoints: BTreeMap<u64, String>,
}

impl MemoryLog {
    pub fn push(&self, body: &[u8]) {
        let n = self.inner.lock().expect("lock").leaves.len();
        self.add(&format!("request-{n}"), KIND_SIGNATURE, body)
            .expect("add");
    }

    /// Changes a stored leaf's body, as an attacker with the database would.
    pub fn tamper_leaf(&self, index: usize, body: &[u8]) {
        self.inner.lock().expect("lock").leaves[index].1.body = body.to_vec();
    }
}

/// The test log's key.
pub fn key() -> (p256::ecdsa::SigningKey, LogKey) {
    let secret = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("key");
    let spki = secret
        .verifying_key()
        .to_public_key_der()
        .expect("spki")
        .into_vec();
    (
        secret,
        LogKey {
            origin: "gateway.example".into(),
            spki,
        },
    )
}

/// One sequencer turn with the test key: the new size and checkpoint.
pub fn sequence(store: &dyn LogStore) -> (u64, String) {
    let (secret, log) = key();
    let size = super::sequencer::grow_once(store, &log, &|m| {
        let sig: p256::ecdsa::DerSignature = secret.sign(m);
        Ok(sig.as_bytes().to_vec())
    })
    .expect("sequence");
    let (_, note) = store.checkpoint().expect("read").expect("checkpoint");
    (size, note)
}

impl LogStore for MemoryLog {
    fn add(&self, request_id: &str, kind: &str, body: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("lock");
        let seq = inner.leaves.len() as i64 + 1;
        inner.leaves.push((
            seq,
            LogLeaf {
                index: None,
                request_id: request_id.into(),
                kind: kind.into(),
                body: body.to_vec(),
            },
        ));
        Ok(())
    }

    fn pending(&self, limit: usize) -> Result<Vec<PendingLeaf>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        Ok(inner
            .leaves
            .iter()
            .filter(|(_, l)| l.index.is_none())
            .take(limit)
            .map(|(seq, l)| PendingLeaf {
                seq: *seq,
                body: l.body.clone(),
            })
            .collect())
    }

    fn hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        indexes
            .iter()
            .map(|i| {
                inner
                    .hashes
                    .get(i)
                    .copied()
                    .ok_or_else(|| StoreError(format!("no hash {i}")))
            })
            .collect()
    }

    fn grow(&self, growth: &Growth) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().expect("lock");
        if inner.checkpoints.keys().next_back().copied().unwrap_or(0) != growth.from {
            return Ok(false);
        }
        for (seq, index) in &growth.leaves {
            if let Some((_, leaf)) = inner.leaves.iter_mut().find(|(s, _)| s == seq) {
                leaf.index = Some(*index);
            }
        }
        inner.hashes.extend(growth.hashes.iter().copied());
        inner.checkpoints.insert(growth.to, growth.checkpoint.clone());
        Ok(true)
    }

    fn checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        Ok(inner.checkpoints.iter().next_back().map(|(s, n)| (*s, n.clone())))
    }

    fn bodies(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        Ok((from..to)
            .filter_map(|i| {
                inner
                    .leaves
                    .iter()
                    .find(|(_, l)| l.index == Some(i))
                    .map(|(_, l)| l.body.clone())
            })
            .collect())
    }

    fn leaf(&self, request_id: &str) -> Result<Option<LogLeaf>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        Ok(inner
            .leaves
            .iter()
            .find(|(_, l)| l.request_id == request_id)
            .map(|(_, l)| l.clone()))
    }

    fn leaves(&self) -> Result<Vec<LogLeaf>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        let mut leaves: Vec<LogLeaf> = inner.leaves.iter().map(|(_, l)| l.clone()).collect();
        leaves.sort_by_key(|l| l.index.unwrap_or(u64::MAX));
        Ok(leaves)
    }
}
