use super::*;
use crate::store::log::Growth;
use crate::store::sqlite::audit::append_work;
use crate::store::sqlite::log::apply_growth;
use crate::store::sqlite::SqliteAudit;
use crate::store::{AuditStore, IdempotentAnswer, Record};

fn append(request_id: &str, key: Option<&str>) -> Work {
    let record = Record {
        request_id: request_id.into(),
        ..Record::default()
    };
    let idempotency = key.map(|k| IdempotentAnswer {
        token_id: "t".into(),
        key: k.into(),
        body_sha256: "b".into(),
        response: format!("answer of {request_id}"),
    });
    append_work(record, idempotency)
}

/// A fresh audit database with its tables, in a directory removed when the first value drops.
fn fresh_database() -> (tempfile::TempDir, std::path::PathBuf, SqliteAudit) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let audit = SqliteAudit::open(&path).unwrap();
    (dir, path, audit)
}

fn ids_in(path: &Path) -> Vec<String> {
    let conn = connect(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT request_id FROM audit ORDER BY request_id")
        .unwrap();
    let ids = stmt.query_map([], |row| row.get(0)).unwrap();
    ids.collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn concurrent_appends_are_each_answered_after_their_own_record_is_committed() {
    let (_dir, path, audit) = fresh_database();
    let start = std::sync::Barrier::new(32);
    std::thread::scope(|s| {
        for i in 0..32 {
            let (audit, start, path) = (&audit, &start, &path);
            s.spawn(move || {
                let record = Record {
                    request_id: format!("r{i:02}"),
                    ..Record::default()
                };
                start.wait();
                audit.append(&record, None).unwrap();
                // Answered: the record is committed, as another connection (another process) sees it.
                assert!(
                    ids_in(path).contains(&record.request_id),
                    "r{i:02} answered before its commit"
                );
            });
        }
    });
    let expected: Vec<String> = (0..32).map(|i| format!("r{i:02}")).collect();
    assert_eq!(ids_in(&path), expected);
}

#[test]
fn a_failed_commit_fails_every_request_of_its_batch_and_keeps_none_of_them() {
    let (_dir, path, _audit) = fresh_database();
    let mut conn = connect(&path).unwrap();
    // Every record passes its own savepoint; the deferred foreign key its trigger breaks fails the COMMIT.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER audit_breaks_commit AFTER INSERT ON audit BEGIN INSERT INTO child VALUES (NEW.seq); END;",
    )
    .unwrap();
    let batch: Vec<Work> = ["r1", "r2", "r3"]
        .into_iter()
        .map(|id| append(id, Some(id)))
        .collect();
    let work: Vec<&Work> = batch.iter().collect();
    let outcomes = commit_batch(&mut conn, &work);
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    assert!(ids_in(&path).is_empty(), "a record of the failed commit was kept");
    // The connection is usable again for the next batch: the failed transaction was rolled back.
    conn.execute_batch("DROP TRIGGER audit_breaks_commit").unwrap();
    let outcomes = commit_batch(&mut conn, &work);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(ids_in(&path), ["r1", "r2", "r3"]);
}

#[test]
fn a_failing_record_fails_alone_in_its_batch_and_takes_its_idempotency_record_with_it() {
    let (_dir, path, audit) = fresh_database();
    let mut conn = connect(&path).unwrap();
    let batch: Vec<Work> = [("r1", Some("k1")), ("r1", Some("k2")), ("r3", Some("k3"))]
        .into_iter()
        .map(|(id, key)| append(id, key))
        .collect();
    let work: Vec<&Work> = batch.iter().collect();
    // Twice through the same connection: the second batch runs on cached statements.
    for round in 0..2 {
        let outcomes = commit_batch(&mut conn, &work);
        let ok: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
        let expected = if round == 0 {
            [true, false, true]
        } else {
            [false, false, false]
        };
        assert_eq!(ok, expected, "round {round}");
    }
    let ids: Vec<String> = audit
        .records(None)
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids, ["r1", "r3"]);
    assert!(audit.idempotent("t", "k1").unwrap().is_some());
    assert!(
        audit.idempotent("t", "k2").unwrap().is_none(),
        "the failed record's answer was kept"
    );
    assert!(audit.idempotent("t", "k3").unwrap().is_some());
}

/// A growth computed from a tree size the log has left is refused in its own savepoint, and the records
/// committed in the same batch are kept.
#[test]
fn a_stale_growth_writes_nothing_and_leaves_the_records_of_its_batch_committed() {
    let (_dir, path, _audit) = fresh_database();
    let mut conn = connect(&path).unwrap();
    let growth = |from: u64| -> Work {
        let growth = Growth {
            from,
            to: from + 1,
            leaves: vec![],
            hashes: vec![(from, [7; 32])],
            checkpoint: format!("note at {}", from + 1),
        };
        Box::new(move |conn| apply_growth(conn, &growth))
    };
    let batch = [append("r1", None), growth(0), growth(0), append("r2", None)];
    let work: Vec<&Work> = batch.iter().collect();
    let outcomes: Vec<bool> = commit_batch(&mut conn, &work)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes, [true, true, false, true]);
    assert_eq!(ids_in(&path), ["r1", "r2"]);
    let (size, hashes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT tree_size FROM tlog_head), (SELECT COUNT(*) FROM tlog_hashes)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((size, hashes), (1, 1), "the stale growth wrote its hash");
}

/// Under writes that never pause, the checkpointer still lets the WAL start over. A WAL that never starts over
/// takes every commit's frames at its end, so its file grows in every interval that saw a commit (a PASSIVE
/// checkpoint cannot finish while the writer appends: 193 MB, then 375 MB, before the fix). One that starts over
/// writes from its beginning again, so its file stops growing (or is cut back to the size limit) while records
/// are still committed. The test samples the file every 100 ms for 5 s and wants that to happen more than once:
/// the checkpointer runs every second. (How large the file gets depends on the machine's speed, so it is not
/// what is asserted.)
#[test]
fn the_wal_starts_over_under_writes_that_never_pause() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let (dir, _path, audit) = fresh_database();
    let wal = dir.path().join("audit.db-wal");
    let (stop, written) = (AtomicBool::new(false), AtomicUsize::new(0));
    let samples = std::thread::scope(|s| {
        for t in 0..4 {
            let (audit, stop, written) = (&audit, &stop, &written);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Relaxed) {
                    let record = Record {
                        request_id: format!("{t}-{i:08}"),
                        metadata: Some("m".repeat(500)),
                        ..Record::default()
                    };
                    audit.append(&record, None).unwrap();
                    written.fetch_add(1, Relaxed);
                    i += 1;
                }
            });
        }
        let samples: Vec<(u64, usize)> = (0..50)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                (
                    std::fs::metadata(&wal).map_or(0, |m| m.len()),
                    written.load(Relaxed),
                )
            })
            .collect();
        stop.store(true, Relaxed);
        samples
    });
    let committed_without_growth = samples
        .windows(2)
        .filter(|w| w[1].1 > w[0].1 && w[1].0 <= w[0].0)
        .count();
    assert!(
        samples[49].1 > samples[0].1 + 1000,
        "the writes paused: {samples:?}"
    );
    assert!(
        committed_without_growth >= 2,
        "the WAL grew with every commit, it never started over: (size, records) every 100 ms: {samples:?}"
    );
}

/// A caller that finds the writer idle commits its work on its own thread (no hand-off to the writer thread and
/// back), and is answered after its commit like any other.
#[test]
fn a_caller_alone_commits_its_work_on_its_own_thread() {
    let (_dir, path, _audit) = fresh_database();
    let writer = Writer::start(&path).unwrap();
    let ran_on = Arc::new(Mutex::new(None));
    let seen = ran_on.clone();
    let record = append("alone", None);
    let work: Work = Box::new(move |conn| {
        *lock(&seen) = Some(std::thread::current().id());
        record(conn)
    });
    assert!(writer.write(work).unwrap());
    assert_eq!(*lock(&ran_on), Some(std::thread::current().id()));
    assert_eq!(ids_in(&path), ["alone"]);
}

/// Work that panics fails its own write with an error and commits nothing of its own; the work committed beside it
/// and every write after it succeed, on the caller's thread as on the writer's.
#[test]
fn work_that_panics_fails_alone_and_the_writer_goes_on() {
    let (_dir, path, _audit) = fresh_database();
    let writer = Writer::start(&path).unwrap();
    let panics = || -> Work {
        let record = append("panicked", None);
        Box::new(move |conn| {
            record(conn)?;
            panic!("a bug in the audit work")
        })
    };
    assert!(writer.write(panics()).is_err());
    assert!(ids_in(&path).is_empty(), "the panicking work's record was kept");
    assert!(writer.write(append("after", None)).unwrap());
    // In one batch: the panicking work fails alone.
    let mut conn = connect(&path).unwrap();
    let batch = [append("b1", None), panics(), append("b2", None)];
    let work: Vec<&Work> = batch.iter().collect();
    let ok: Vec<bool> = commit_batch(&mut conn, &work).iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true]);
    // Many callers at once, so that the writer thread commits batches too.
    std::thread::scope(|s| {
        for i in 0..16 {
            let (writer, panics) = (&writer, &panics);
            s.spawn(move || {
                if i == 7 {
                    assert!(writer.write(panics()).is_err());
                }
                assert!(writer.write(append(&format!("c{i:02}"), None)).unwrap());
            });
        }
    });
    let ids = ids_in(&path);
    assert!(!ids.contains(&"panicked".to_owned()), "{ids:?}");
    assert_eq!(ids.iter().filter(|id| id.starts_with('c')).count(), 16, "{ids:?}");
    assert!(
        ids.contains(&"after".to_owned()) && ids.contains(&"b1".to_owned()) && ids.contains(&"b2".to_owned())
    );
}
