//! The one connection that writes the audit database's busy tables: audit records with their idempotency answers
//! and transparency-log leaves, the log's own uploaded leaves, and the growth of its tree. It runs the work the
//! stores of those tables give it (`audit.rs`, `log.rs`) and must never import them, nor anything above `store/`.
//!
//! One connection writes, and commits whatever work is waiting in one transaction (group commit): every caller
//! still gets its answer only after the fsync that made its work durable, but one fsync serves everything that
//! arrived while the previous one ran. A caller that finds the writer idle commits its own work on its own thread,
//! so a request alone hands nothing to another thread and waits for no wake-up. Being the only writer of these
//! tables matters as much: SQLite lets one connection write at a time, and a second writer (the log's sequencer had
//! its own connection) made the other wait in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries.
//! At 1,000 signatures per second that put p99 at 17–36 ms against 5 ms without the sequencer
//! (docs/performance.md). The approvals and revocations, written at the pace of people, keep connections of their
//! own.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use super::connect;
use crate::store::StoreError;

/// What a caller asks the writer to make durable: statements run in a savepoint of their own, whose `Ok(false)`
/// (a growth of the log's tree that another gateway made first) leaves nothing written. The stores of the tables
/// write them (`audit.rs`, `log.rs`); this file knows no table.
pub type Work = Box<dyn Fn(&Connection) -> rusqlite::Result<bool> + Send>;

/// The most jobs one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// How often the checkpointer runs.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The size the WAL file is cut back to when it starts over, if it grew past it (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The writer's connection. Holding it is the writer's turn: a caller holds it for each transaction it commits,
/// the checkpointer for the second, short pass of each checkpoint.
type Turn = Arc<Mutex<Connection>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One caller's work and where its outcome goes: the work's own answer, true unless it wrote nothing.
struct Job {
    work: Work,
    done: mpsc::SyncSender<Result<bool, StoreError>>,
}

/// The work waiting for the writer thread, and whether anyone (that thread or a caller alone) is committing.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    committing: bool,
    /// Set when the last handle is dropped: the writer thread commits what is waiting and ends.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer thread: work is waiting and nobody is committing, or the writer is closed.
    wake_writer: Condvar,
    turn: Turn,
}

impl Shared {
    /// Marks the end of a commit; wakes the writer thread if work queued meanwhile.
    fn finish(&self, mut queue: MutexGuard<'_, Queue>) {
        queue.committing = false;
        if !queue.waiting.is_empty() || queue.closed {
            self.wake_writer.notify_one();
        }
    }
}

/// Closes the writer when the last handle goes.
struct Close(Arc<Shared>);

impl Drop for Close {
    fn drop(&mut self) {
        lock(&self.0.queue).closed = true;
        self.0.wake_writer.notify_one();
    }
}

/// A handle on the writer; the writer thread ends (and the checkpointer with it) once every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    shared: Arc<Shared>,
    _close: Arc<Close>,
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
        let write_conn = connect(path)?;
        // Commits never checkpoint (a checkpoint copies the WAL into the database with fsyncs of its own, which
        // would land on whichever request committed the 1000th page); a thread of its own does, every second.
        write_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        write_conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let (checkpointer, stop) = mpsc::channel();
        let checkpoint_conn = connect(path)?;
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            wake_writer: Condvar::new(),
            turn: Turn::new(Mutex::new(write_conn)),
        });
        let cannot_start = |what: &str, e: std::io::Error| {
            rusqlite::Error::InvalidPath(format!("cannot start the {what}: {e}").into())
        };
        let turn = shared.turn.clone();
        std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &turn, &stop))
            .map_err(|e| cannot_start("audit checkpointer", e))?;
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(&writer))
            .map_err(|e| cannot_start("audit writer", e))?;
        Ok(Self {
            _close: Arc::new(Close(shared.clone())),
            shared,
            _checkpointer: Arc::new(checkpointer),
        })
    }

    /// Makes `work` durable and returns its outcome once its transaction committed (or failed).
    ///
    /// A caller that finds nobody committing and nothing waiting commits its work itself, on its own thread: a
    /// request alone crosses no thread for its audit record (two wake-ups fewer than a hand-off to the writer
    /// thread and back). Otherwise its work waits for the writer thread, which commits whatever is waiting in one
    /// transaction (group commit).
    pub fn write(&self, work: Work) -> Result<bool, StoreError> {
        let shared = &*self.shared;
        let mut queue = lock(&shared.queue);
        if !queue.committing && queue.waiting.is_empty() {
            queue.committing = true;
            drop(queue);
            let outcome = commit_guarded(&shared.turn, &[&work]).pop();
            shared.finish(lock(&shared.queue));
            return outcome.unwrap_or_else(|| Err(StoreError("the audit write has no outcome".into())));
        }
        let (done, outcome) = mpsc::sync_channel(1);
        queue.waiting.push_back(Job { work, done });
        if !queue.committing {
            shared.wake_writer.notify_one();
        }
        drop(queue);
        outcome
            .recv()
            .map_err(|_| StoreError("the audit writer stopped before committing".into()))?
    }
}

/// The writer thread: whenever work is waiting and nobody is committing, takes all of it (up to MAX_BATCH) and
/// commits it in one transaction; every caller gets its outcome after the fsync that covered its work.
fn write_loop(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        if !queue.committing && !queue.waiting.is_empty() {
            queue.committing = true;
            let take = queue.waiting.len().min(MAX_BATCH);
            let batch: Vec<Job> = queue.waiting.drain(..take).collect();
            drop(queue);
            let work: Vec<&Work> = batch.iter().map(|job| &job.work).collect();
            let outcomes = commit_guarded(&shared.turn, &work);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.done.send(outcome);
            }
            queue = lock(&shared.queue);
            queue.committing = false;
            continue;
        }
        if queue.closed && queue.waiting.is_empty() {
            return;
        }
        queue = shared.wake_writer.wait(queue).unwrap_or_else(|p| p.into_inner());
    }
}

/// Commits `batch` in one transaction, holding the writer's turn. Each job has a savepoint of its own, so one bad
/// record (or one that panics) fails alone; a panic anywhere else fails the batch (the transaction rolls back as it
/// unwinds) and leaves the writer to the next batch: the queue's state never depends on work finishing.
fn commit_guarded(turn: &Mutex<Connection>, work: &[&Work]) -> Vec<Result<bool, StoreError>> {
    let mut conn = lock(turn);
    catch_unwind(AssertUnwindSafe(|| commit_batch(&mut conn, work))).unwrap_or_else(|_| {
        tracing::error!("the audit commit panicked; its batch is not committed");
        work.iter()
            .map(|_| Err(StoreError("the audit write failed inside the gateway".into())))
            .collect()
    })
}

/// Checkpoints the WAL into the database every second, and once more when the log closes, in two passes. The
/// first (PASSIVE) never blocks the writer and copies nearly everything. It cannot finish while the writer
/// appends, and SQLite starts the WAL over only after a checkpoint that finished: under a steady load the WAL grew
/// without end (1.4 GB after 30 s at 3,000 signatures a second). So a second pass holds the writer's turn while
/// it copies the little written since the first, and the writer's next transaction starts the WAL over, cut back
/// to [`WAL_SIZE_LIMIT`]. The writer waits for that pass on a mutex (a few pages and one fsync), not in SQLite's
/// busy handler.
fn checkpoint_loop(conn: &Connection, turn: &Mutex<Connection>, stop: &mpsc::Receiver<()>) {
    let checkpoint = || {
        let passes = checkpoint_pass(conn).and_then(|()| {
            let _turn = lock(turn);
            checkpoint_pass(conn)
        });
        if let Err(e) = passes {
            tracing::warn!(error = %e, "audit checkpoint failed; the next one retries");
        }
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        checkpoint();
    }
    checkpoint();
}

fn checkpoint_pass(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
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

/// One job's writes inside a savepoint of its own, so that a failing one is rolled back alone (and a job that
/// answers false leaves nothing): the inner result is the job's, the outer error a failure of the savepoint
/// itself. The savepoint's statements, like every statement of the stores' work, are prepared once per
/// connection and then taken from the statement cache: parsing the SQL again for every record was about a tenth
/// of the writer's time under load.
fn in_savepoint(conn: &Connection, work: &Work) -> rusqlite::Result<rusqlite::Result<bool>> {
    conn.prepare_cached("SAVEPOINT audit_record")?.execute([])?;
    // Work that panics fails alone, like work that fails: its statements are dropped as it unwinds and its
    // savepoint rolled back below.
    let written = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
        tracing::error!("audit work panicked; its writes are rolled back");
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("the audit work panicked".into()),
        ))
    });
    if !matches!(written, Ok(true)) {
        conn.prepare_cached("ROLLBACK TO audit_record")?.execute([])?;
    }
    conn.prepare_cached("RELEASE audit_record")?.execute([])?;
    Ok(written)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
