//! The one connection that writes the audit database's busy tables: audit records with their idempotency answers
//! and transparency-log leaves, the log's own uploaded leaves, and the growth of its tree. It must never import
//! the signing core or `tlog/`: it stores what it is given.
//!
//! One thread writes, and commits whatever work is waiting in one transaction (group commit): every caller still
//! gets its answer only after the fsync that made its work durable, but one fsync serves everything that arrived
//! while the previous one ran. Being the only writer of these tables matters as much: SQLite lets one connection
//! write at a time, and a second writer (the log's sequencer had its own connection) made the other wait in
//! SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries. At 1,000 signatures per second that put
//! p99 at 17–36 ms against 5 ms without the sequencer (docs/performance.md). The approvals and revocations,
//! written at the pace of people, keep connections of their own.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{params, Connection};

use super::connect;
use crate::store::log::{Growth, KIND_SIGNATURE};
use crate::store::{IdempotentAnswer, Record, StoreError};

/// What a caller asks the writer to make durable.
#[derive(Debug)]
pub enum Work {
    /// An audit record (already [`Record::bounded`]), with its log leaf if it records a signature, and the answer
    /// kept under its idempotency key.
    Append {
        record: Box<Record>,
        idempotency: Option<IdempotentAnswer>,
    },
    /// A leaf of its own (a Rekor upload).
    Leaf {
        request_id: String,
        kind: String,
        body: Vec<u8>,
    },
    /// The log's tree grown by one batch; false if the tree is no longer the size it was computed from.
    Grow(Growth),
}

/// One caller's work and where its outcome goes: true unless a growth found the tree grown already.
struct Job {
    work: Work,
    done: mpsc::SyncSender<Result<bool, StoreError>>,
}

/// The most jobs one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// A handle on the writer thread; the thread ends (and the checkpointer with it) once every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Dropping the last one stops the checkpointer (after a last checkpoint).
    _checkpointer: Arc<mpsc::Sender<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer and its checkpointer on the database at `path`, whose tables exist already.
    pub fn start(path: &Path) -> rusqlite::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let write_conn = connect(path)?;
        // Commits never checkpoint (a checkpoint copies the WAL into the database with fsyncs of its own, which
        // would land on whichever request committed the 1000th page); a thread of its own does, every second.
        write_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (checkpointer, stop) = mpsc::channel();
        let checkpoint_conn = connect(path)?;
        let cannot_start = |what: &str, e: std::io::Error| {
            rusqlite::Error::InvalidPath(format!("cannot start the {what}: {e}").into())
        };
        std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &stop))
            .map_err(|e| cannot_start("audit checkpointer", e))?;
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(write_conn, &queue))
            .map_err(|e| cannot_start("audit writer", e))?;
        Ok(Self {
            jobs,
            _checkpointer: Arc::new(checkpointer),
        })
    }

    /// Hands `work` to the writer thread and waits until its transaction committed (or failed).
    pub fn write(&self, work: Work) -> Result<bool, StoreError> {
        let (done, outcome) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { work, done })
            .map_err(|_| StoreError("the audit writer has stopped".into()))?;
        outcome
            .recv()
            .map_err(|_| StoreError("the audit writer stopped before committing".into()))?
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
        let work: Vec<&Work> = batch.iter().map(|job| &job.work).collect();
        let outcomes = commit_batch(&mut conn, &work);
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
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_secs(1)) {
        checkpoint();
    }
    checkpoint();
}

fn commit_batch(conn: &mut Connection, batch: &[&Work]) -> Vec<Result<bool, StoreError>> {
    let failed_all = |e: &rusqlite::Error| batch.iter().map(|_| Err(StoreError(e.to_string()))).collect();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return failed_all(&e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for work in batch {
        match in_savepoint(&tx, work) {
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

/// One job's writes inside a savepoint of its own, so that a failing one is rolled back alone (and a growth that
/// finds the tree grown leaves nothing): the inner result is the job's, the outer error a failure of the
/// savepoint itself. Every statement here, the savepoint's own included, is prepared once per connection and then
/// taken from the statement cache: parsing the SQL again for every record was about a tenth of the writer's time
/// under load.
fn in_savepoint(conn: &Connection, work: &Work) -> rusqlite::Result<rusqlite::Result<bool>> {
    conn.prepare_cached("SAVEPOINT audit_record")?.execute([])?;
    let written = match work {
        Work::Append { record, idempotency } => append(conn, record, idempotency.as_ref()).map(|()| true),
        Work::Leaf {
            request_id,
            kind,
            body,
        } => super::log::insert_leaf(conn, request_id, kind, body).map(|()| true),
        Work::Grow(growth) => super::log::apply_growth(conn, growth),
    };
    if !matches!(written, Ok(true)) {
        conn.prepare_cached("ROLLBACK TO audit_record")?.execute([])?;
    }
    conn.prepare_cached("RELEASE audit_record")?.execute([])?;
    Ok(written)
}

/// A record, its leaf (a signature's leaf commits with its record or not at all) and its idempotency answer.
fn append(
    conn: &Connection,
    record: &Record,
    idempotency: Option<&IdempotentAnswer>,
) -> rusqlite::Result<()> {
    super::audit::insert(conn, record)?;
    if let Some(entry) = record.log_entry() {
        super::log::insert_leaf(conn, &record.request_id, KIND_SIGNATURE, &entry)?;
    }
    if let Some(i) = idempotency {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency (token_id, key, request_id, body_sha256, response, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s','now'))",
        )?
        .execute(params![
            i.token_id,
            i.key,
            record.request_id,
            i.body_sha256,
            i.response
        ])?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
