//! The audit log in SQLite: one record for every API request, committed durably before the response leaves, and
//! the idempotency records, so a replayed `SignHash` finds the first answer in the same database as its audit record.
//!
//! Writes go through one writer thread that commits whatever records are waiting in one transaction (group
//! commit): every caller still gets its answer only after the fsync that made its record durable, but one fsync
//! serves all the requests that arrived while the previous one ran, instead of each request queueing for its own.
//! Reads use a connection of their own, which WAL lets run beside the writer.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::connect;
use crate::store::log::KIND_SIGNATURE;
use crate::store::{AuditStore, IdempotentAnswer, Record, StoreError, StoredAnswer};

pub struct SqliteAudit {
    /// For reads only.
    conn: Mutex<Connection>,
    /// The claims on idempotency keys (`claims.rs`).
    claims: super::claims::Claims,
    /// To the writer thread; dropping it lets the thread finish the waiting writes and exit.
    writer: mpsc::Sender<Job>,
    /// Dropping it stops the checkpointer (after a last checkpoint).
    _checkpointer: mpsc::Sender<()>,
}

/// One caller's write and where its outcome goes.
struct Job {
    record: Record,
    idempotency: Option<IdempotentAnswer>,
    done: mpsc::SyncSender<Result<(), StoreError>>,
}

/// The most records one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

impl std::fmt::Debug for SqliteAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteAudit")
    }
}

const COLUMNS: &str = "request_id, received, completed, organization, project, policy, token_id, client_address, \
    user_agent, method, route, algorithm, hash_algorithm, digest, signature_sha256, certificate_sha256, metadata, \
    idempotency_key, outcome, status, error_type, error_detail, origin, release_group, approval";

/// Columns added after the first release; `open` adds them to an older database.
const ADDED_COLUMNS: &[&str] = &["origin", "release_group", "approval"];

impl SqliteAudit {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = connect(path)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, {}, UNIQUE(request_id));
             CREATE TABLE IF NOT EXISTS idempotency (token_id TEXT NOT NULL, key TEXT NOT NULL,
                 request_id TEXT NOT NULL, body_sha256 TEXT NOT NULL, response TEXT NOT NULL,
                 created INTEGER NOT NULL, PRIMARY KEY (token_id, key));
             CREATE INDEX IF NOT EXISTS idempotency_request ON idempotency (request_id);
             {}",
            COLUMNS.split(", ").map(|c| format!("{c} {}", if c == "status" { "INTEGER" } else { "TEXT" })).collect::<Vec<_>>().join(", "),
            super::log::SCHEMA
        ))?;
        for column in ADDED_COLUMNS {
            let present: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('audit') WHERE name = ?1",
                params![column],
                |row| row.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!("ALTER TABLE audit ADD COLUMN {column} TEXT"))?;
            }
        }
        let (writer, jobs) = mpsc::channel();
        let write_conn = connect(path)?;
        // Commits never checkpoint (a checkpoint copies the WAL into the database with fsyncs of its own, which
        // would land on whichever request committed the 1000th page); a thread of its own does, every second.
        write_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (checkpointer, stop) = mpsc::channel();
        let checkpoint_conn = connect(path)?;
        std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &stop))
            .map_err(|e| {
                rusqlite::Error::InvalidPath(format!("cannot start the audit checkpointer: {e}").into())
            })?;
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(write_conn, &jobs))
            .map_err(|e| {
                rusqlite::Error::InvalidPath(format!("cannot start the audit writer: {e}").into())
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
            claims: super::claims::Claims::default(),
            writer,
            _checkpointer: checkpointer,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the write to the writer thread and waits until its transaction committed (or failed).
    fn write(&self, record: &Record, idempotency: Option<IdempotentAnswer>) -> Result<(), StoreError> {
        let (done, outcome) = mpsc::sync_channel(1);
        let job = Job {
            record: record.bounded(),
            idempotency,
            done,
        };
        self.writer
            .send(job)
            .map_err(|_| StoreError("the audit writer has stopped".into()))?;
        outcome
            .recv()
            .map_err(|_| StoreError("the audit writer stopped before committing".into()))?
    }
}

impl AuditStore for SqliteAudit {
    fn append(&self, record: &Record, answer: Option<IdempotentAnswer>) -> Result<(), StoreError> {
        self.write(record, answer)
    }

    fn idempotent(&self, token_id: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT body_sha256, response FROM idempotency WHERE token_id = ?1 AND key = ?2 AND created > strftime('%s','now') - 86400",
                params![token_id, key],
                |row| {
                    Ok(StoredAnswer {
                        body_sha256: row.get(0)?,
                        response: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn claim_key(
        &self,
        token_id: &str,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.claims.claim(token_id, key, holder, lease))
    }

    fn release_key(&self, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError> {
        self.claims.release(token_id, key, holder);
        Ok(())
    }

    fn signing_request(&self, token_id: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT response FROM idempotency WHERE request_id = ?1 AND token_id = ?2",
                params![request_id, token_id],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn records(&self, limit: Option<u32>) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?1"))?;
        let rows = stmt.query_map(params![limit.map_or(-1i64, i64::from)], |row| {
            Ok(Record {
                request_id: row.get(0)?,
                received: row.get(1)?,
                completed: row.get(2)?,
                organization: row.get(3)?,
                project: row.get(4)?,
                policy: row.get(5)?,
                token_id: row.get(6)?,
                client_address: row.get(7)?,
                user_agent: row.get(8)?,
                method: row.get(9)?,
                route: row.get(10)?,
                algorithm: row.get(11)?,
                hash_algorithm: row.get(12)?,
                digest: row.get(13)?,
                signature_sha256: row.get(14)?,
                certificate_sha256: row.get(15)?,
                metadata: row.get(16)?,
                idempotency_key: row.get(17)?,
                outcome: row.get(18)?,
                status: row.get(19)?,
                error_type: row.get(20)?,
                error_detail: row.get(21)?,
                origin: row.get(22)?,
                release_group: row.get(23)?,
                approval: row.get(24)?,
            })
        })?;
        let mut records: Vec<Record> = rows.collect::<rusqlite::Result<_>>()?;
        records.reverse();
        Ok(records)
    }
}

/// The writer thread: takes the first waiting job, then every other job already waiting (up to MAX_BATCH), and
/// commits them in one transaction. Each job has a savepoint of its own, so one bad record fails alone.
fn write_loop(mut conn: Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_batch(&mut conn, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.done.send(outcome);
        }
    }
}

/// Checkpoints the WAL into the database every second (PASSIVE: it never blocks the writer), and once more when
/// the log closes.
fn checkpoint_loop(conn: &Connection, stop: &mpsc::Receiver<()>) {
    let checkpoint = || {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "audit checkpoint failed; the next one retries");
        }
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(std::time::Duration::from_secs(1)) {
        checkpoint();
    }
    checkpoint();
}

fn commit_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Result<(), StoreError>> {
    let failed_all = |e: &rusqlite::Error| batch.iter().map(|_| Err(StoreError(e.to_string()))).collect();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return failed_all(&e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        match write_in_savepoint(&tx, job) {
            Ok(written) => outcomes.push(written.map_err(StoreError::from)),
            // The savepoint itself failed: nothing says what the transaction holds, so none of it commits
            // (dropping `tx` rolls it back).
            Err(e) => return failed_all(&e),
        }
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => failed_all(&e),
    }
}

/// One job's records inside a savepoint of its own, so that a failing record is rolled back alone: the inner
/// result is the job's, the outer error a failure of the savepoint itself. Every statement here, the savepoint's
/// own included, is prepared once per connection and then taken from the statement cache: parsing the SQL again
/// for every record was about a tenth of the writer's time under load.
fn write_in_savepoint(conn: &Connection, job: &Job) -> rusqlite::Result<rusqlite::Result<()>> {
    conn.prepare_cached("SAVEPOINT audit_record")?.execute([])?;
    let written = insert(conn, &job.record)
        .and_then(|()| match job.record.log_entry() {
            // A signature's leaf commits with its record or not at all.
            Some(entry) => super::log::insert_leaf(conn, &job.record.request_id, KIND_SIGNATURE, &entry),
            None => Ok(()),
        })
        .and_then(|()| match &job.idempotency {
        Some(i) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency (token_id, key, request_id, body_sha256, response, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s','now'))",
            )?
            .execute(params![i.token_id, i.key, job.record.request_id, i.body_sha256, i.response])
            .map(drop),
        None => Ok(()),
    });
    if written.is_err() {
        conn.prepare_cached("ROLLBACK TO audit_record")?.execute([])?;
    }
    conn.prepare_cached("RELEASE audit_record")?.execute([])?;
    Ok(written)
}

/// The audit INSERT, built once from [`COLUMNS`] so the statement cache finds it by the same text every time.
static INSERT_AUDIT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO audit ({COLUMNS}) VALUES \
         (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25)"
    )
});

fn insert(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    conn.prepare_cached(&INSERT_AUDIT)?.execute(params![
        r.request_id,
        r.received,
        r.completed,
        r.organization,
        r.project,
        r.policy,
        r.token_id,
        r.client_address,
        r.user_agent,
        r.method,
        r.route,
        r.algorithm,
        r.hash_algorithm,
        r.digest,
        r.signature_sha256,
        r.certificate_sha256,
        r.metadata,
        r.idempotency_key,
        r.outcome,
        r.status,
        r.error_type,
        r.error_detail,
        r.origin,
        r.release_group,
        r.approval
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(request_id: &str, key: Option<&str>) -> (Job, mpsc::Receiver<Result<(), StoreError>>) {
        let (done, outcome) = mpsc::sync_channel(1);
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
        (
            Job {
                record,
                idempotency,
                done,
            },
            outcome,
        )
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let audit = SqliteAudit::open(&path).unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let _audit = SqliteAudit::open(&path).unwrap();
        let mut conn = connect(&path).unwrap();
        // Every record passes its own savepoint; the deferred foreign key its trigger breaks fails the COMMIT.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER audit_breaks_commit AFTER INSERT ON audit BEGIN INSERT INTO child VALUES (NEW.seq); END;",
        )
        .unwrap();
        let batch: Vec<Job> = ["r1", "r2", "r3"]
            .into_iter()
            .map(|id| job(id, Some(id)).0)
            .collect();
        let outcomes = commit_batch(&mut conn, &batch);
        assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
        assert!(ids_in(&path).is_empty(), "a record of the failed commit was kept");
        // The connection is usable again for the next batch: the failed transaction was rolled back.
        conn.execute_batch("DROP TRIGGER audit_breaks_commit").unwrap();
        let outcomes = commit_batch(&mut conn, &batch);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(ids_in(&path), ["r1", "r2", "r3"]);
    }

    #[test]
    fn a_failing_record_fails_alone_in_its_batch_and_takes_its_idempotency_record_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let audit = SqliteAudit::open(&path).unwrap();
        let mut conn = connect(&path).unwrap();
        let batch: Vec<Job> = [("r1", Some("k1")), ("r1", Some("k2")), ("r3", Some("k3"))]
            .into_iter()
            .map(|(id, key)| job(id, key).0)
            .collect();
        // Twice through the same connection: the second batch runs on cached statements.
        for round in 0..2 {
            let outcomes = commit_batch(&mut conn, &batch);
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
}
