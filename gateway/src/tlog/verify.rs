//! `signpath-gateway log verify`: the log recomputed from its stored leaves and held against its stored hashes
//! (from which every tile is read), its newest checkpoint (signature and root), the audit store (every signature
//! record has its leaf, every signature leaf its record, byte for byte), and, given an older checkpoint, the
//! consistency proof from it to the newest. Every disagreement is reported, each in one line that names it.

use std::collections::{BTreeMap, HashMap};

use tlog_tiles::{Hash, HashReader};

use super::{tree, LogKey, TlogError};
use crate::store::log::{LogStore, KIND_SIGNATURE};
use crate::store::Record;

/// What a verified log holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub size: u64,
    pub root: Hash,
    pub pending: usize,
    pub signature_leaves: usize,
}

/// Checks the log against itself, its checkpoint and `records` (the whole audit log); with `since`, an older
/// checkpoint, also the consistency of the newest with it. Every disagreement found, or what was verified.
pub fn verify(
    store: &dyn LogStore,
    key: &LogKey,
    records: &[Record],
    since: Option<&[u8]>,
) -> Result<Verified, Vec<String>> {
    let mut problems = Vec::new();
    let leaves = store.leaves().map_err(|e| vec![e.to_string()])?;
    let Some((size, note)) = store.checkpoint().map_err(|e| vec![e.to_string()])? else {
        return Err(vec![
            "the log has no checkpoint yet (has a gateway served with it?)".into(),
        ]);
    };
    let checkpoint = match key.verify(note.as_bytes()) {
        Ok(c) => c,
        Err(e) => return Err(vec![format!("the newest checkpoint: {e}")]),
    };
    if checkpoint.size() != size {
        problems.push(format!(
            "the newest checkpoint says {} leaves, the store says {size}",
            checkpoint.size()
        ));
    }

    // The tree again from the leaves, every stored hash compared.
    let sequenced: Vec<_> = leaves.iter().filter(|l| l.index.is_some()).collect();
    for (position, leaf) in sequenced.iter().enumerate() {
        if leaf.index != Some(position as u64) {
            problems.push(format!(
                "leaf {:?} is stored where leaf {position} should be",
                leaf.index
            ));
        }
    }
    if sequenced.len() as u64 != size {
        problems.push(format!(
            "the store holds {} sequenced leaves for a tree of {size}",
            sequenced.len()
        ));
    }
    let mut recomputed = Memory::default();
    for (n, leaf) in sequenced.iter().enumerate() {
        let n = n as u64;
        match tlog_tiles::stored_hashes(n, &leaf.body, &recomputed) {
            Ok(hashes) => {
                let first = tlog_tiles::stored_hash_index(0, n);
                for (i, h) in hashes.into_iter().enumerate() {
                    recomputed.0.insert(first + i as u64, h);
                }
            }
            Err(e) => problems.push(format!("leaf {n}: {e}")),
        }
    }
    let count = tlog_tiles::stored_hash_count(size);
    let indexes: Vec<u64> = (0..count).collect();
    match store.hashes(&indexes) {
        Ok(stored) => {
            for (index, stored) in indexes.iter().zip(stored) {
                if recomputed.0.get(index).map(|h| h.0) != Some(stored) {
                    let (level, n) = tlog_tiles::split_stored_hash_index(*index);
                    problems.push(format!(
                        "the stored hash of level {level} node {n} (tile {}) is not the hash of the leaves below it",
                        level / super::tiles::HEIGHT
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("the stored hashes: {e}")),
    }
    let root = tlog_tiles::tree_hash(size, &recomputed);
    match &root {
        Ok(root) if root != checkpoint.hash() => problems.push(format!(
            "the newest checkpoint's root {} is not the root of the stored leaves, {root}",
            checkpoint.hash()
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("the root of the stored leaves: {e}")),
    }

    // Records and leaves, one for one.
    let entries: BTreeMap<&str, Vec<u8>> = records
        .iter()
        .filter_map(|r| r.log_entry().map(|entry| (r.request_id.as_str(), entry)))
        .collect();
    let logged: HashMap<&str, &[u8]> = leaves
        .iter()
        .filter(|l| l.kind == KIND_SIGNATURE)
        .map(|l| (l.request_id.as_str(), l.body.as_slice()))
        .collect();
    for (request_id, entry) in &entries {
        match logged.get(request_id) {
            None => problems.push(format!("the signature record {request_id} has no leaf in the log")),
            Some(body) if *body != entry.as_slice() => problems.push(format!(
                "the leaf of {request_id} is not its audit record's signing facts (the record or the leaf was changed)"
            )),
            Some(_) => {}
        }
    }
    for request_id in logged.keys() {
        if !entries.contains_key(request_id) {
            problems.push(format!(
                "the leaf of {request_id} has no signature record in the audit log"
            ));
        }
    }

    if let Some(old) = since {
        if let Err(e) = consistent(store, key, old, size, *checkpoint.hash()) {
            problems.push(e.to_string());
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Verified {
        size,
        root: *checkpoint.hash(),
        pending: leaves.len() - sequenced.len(),
        signature_leaves: logged.len(),
    })
}

/// Checks that the tree of `size` leaves with root `root` extends the one of the checkpoint `old`.
pub fn consistent(
    store: &dyn LogStore,
    key: &LogKey,
    old: &[u8],
    size: u64,
    root: Hash,
) -> Result<(), TlogError> {
    let old = key.verify(old)?;
    if old.size() > size {
        return Err(TlogError::Tree(format!(
            "the older checkpoint has {} leaves, more than the newest's {size}",
            old.size()
        )));
    }
    if old.size() == 0 {
        return Ok(());
    }
    let proof = tree::consistency(store, size, old.size())?;
    tlog_tiles::check_tree(&proof, size, root, old.size(), *old.hash()).map_err(|e| {
        TlogError::Tree(format!(
            "the newest checkpoint ({size} leaves) is not consistent with the older one ({} leaves): {e}",
            old.size()
        ))
    })
}

/// Hashes computed in memory.
#[derive(Default)]
struct Memory(HashMap<u64, Hash>);

impl HashReader for Memory {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(tlog_tiles::Error::IndexesNotInTree))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, sequence, MemoryLog};
    use super::*;

    fn signature(n: usize) -> Record {
        Record {
            request_id: format!("request-{n}"),
            completed: "2026-12-07T12:00:00Z".into(),
            organization: "org".into(),
            policy: Some("ec-256".into()),
            route: "/v1/org/signingrequests/signhash".into(),
            digest: Some(format!("{n:064x}")),
            signature_sha256: Some(format!("{:064x}", n + 1000)),
            outcome: "allowed".into(),
            ..Record::default()
        }
    }

    /// A log of `n` signature records (and one refused record, which has no leaf), sequenced.
    fn log_of(n: usize) -> (MemoryLog, Vec<Record>) {
        let store = MemoryLog::default();
        let mut records: Vec<Record> = (0..n).map(signature).collect();
        records.push(Record {
            request_id: "refused".into(),
            outcome: "refused".into(),
            ..signature(99)
        });
        for record in &records {
            if let Some(entry) = record.log_entry() {
                store
                    .add(&record.request_id, KIND_SIGNATURE, &entry)
                    .expect("add");
            }
        }
        sequence(&store);
        (store, records)
    }

    #[test]
    fn a_log_that_agrees_with_its_audit_records_verifies() {
        let (store, records) = log_of(5);
        let verified = verify(&store, &key().1, &records, None).expect("verifies");
        assert_eq!(
            (verified.size, verified.signature_leaves, verified.pending),
            (5, 5, 0)
        );
    }

    #[test]
    fn a_changed_leaf_fails_with_its_request_and_its_node() {
        let (store, records) = log_of(5);
        store.tamper_leaf(2, br#"{"kind":"forged"}"#);
        let problems = verify(&store, &key().1, &records, None).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("level 0 node 2")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("the leaf of request-2 is not its audit record")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_changed_or_missing_audit_record_fails() {
        let (store, mut records) = log_of(5);
        records[1].digest = Some("00".repeat(32));
        records.remove(3);
        let problems = verify(&store, &key().1, &records, None).unwrap_err();
        assert_eq!(
            problems,
            vec![
                "the leaf of request-1 is not its audit record's signing facts (the record or the leaf was changed)",
                "the leaf of request-3 has no signature record in the audit log",
            ]
        );
        // A signature record the log lacks.
        let (store, mut records) = log_of(2);
        records.push(signature(7));
        let problems = verify(&store, &key().1, &records, None).unwrap_err();
        assert_eq!(
            problems,
            vec!["the signature record request-7 has no leaf in the log"]
        );
    }

    #[test]
    fn the_newest_checkpoint_is_consistent_with_an_older_one_of_the_same_log_only() {
        let (store, mut records) = log_of(3);
        let (_, old) = store.checkpoint().expect("read").expect("checkpoint");
        for n in 3..11 {
            let record = signature(n);
            store
                .add(
                    &record.request_id,
                    KIND_SIGNATURE,
                    &record.log_entry().expect("entry"),
                )
                .expect("add");
            records.insert(n, record);
        }
        sequence(&store);
        verify(&store, &key().1, &records, Some(old.as_bytes())).expect("consistent");

        // An "older checkpoint" of another history with the same key: the proof does not hold.
        let other = MemoryLog::default();
        for n in [0, 1, 2, 50] {
            other.push(&signature(n).log_entry().expect("entry"));
        }
        sequence(&other);
        let (_, forked) = other.checkpoint().expect("read").expect("checkpoint");
        let problems = verify(&store, &key().1, &records, Some(forked.as_bytes())).unwrap_err();
        assert!(
            problems[0].contains("is not consistent with the older one (4 leaves)"),
            "{problems:?}"
        );
    }
}
