//! The transparency log's tables in SQLite. Every write goes through the database's one writer (`writer.rs`): the
//! leaves of signature records in the record's own savepoint, uploaded leaves, and the tree's growth, which
//! first checks the tree is still the size the growth was computed from ([`apply_growth`]). Reads use a
//! connection of their own.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::connect;
use super::writer::{Work, Writer};
use crate::store::log::{Growth, LogLeaf, LogStore, PendingLeaf};
use crate::store::StoreError;

/// The log's tables, made with the audit table (`SqliteAudit::open`). `tlog_head` is one row, the tree size,
/// which a growth compares and sets. A leaf's index is unique once it has one: the unique index holds only
/// sequenced leaves, so a record's new leaf touches no page of it (a database made before has `leaf_index
/// INTEGER UNIQUE`, which also indexes the NULLs; both refuse a second leaf at one index).
pub const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS tlog_leaves (seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, body BLOB NOT NULL, leaf_index INTEGER);
    CREATE UNIQUE INDEX IF NOT EXISTS tlog_leaves_index ON tlog_leaves (leaf_index) WHERE leaf_index IS NOT NULL;
    CREATE INDEX IF NOT EXISTS tlog_leaves_pending ON tlog_leaves (seq) WHERE leaf_index IS NULL;
    CREATE TABLE IF NOT EXISTS tlog_hashes (hash_index INTEGER PRIMARY KEY, hash BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS tlog_checkpoints (tree_size INTEGER PRIMARY KEY, note TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS tlog_head (id INTEGER PRIMARY KEY CHECK (id = 1), tree_size INTEGER NOT NULL);
    INSERT OR IGNORE INTO tlog_head (id, tree_size) VALUES (1, 0);";

/// Writes the leaf of an audit record (in the caller's transaction).
pub(super) fn insert_leaf(
    conn: &Connection,
    request_id: &str,
    kind: &str,
    body: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO tlog_leaves (request_id, kind, body) VALUES (?1, ?2, ?3)")?
        .execute(params![request_id, kind, body])
        .map(drop)
}

/// Applies a growth in the writer's transaction: false (and the caller rolls back) if the tree is no longer
/// `growth.from` leaves large.
pub(super) fn apply_growth(conn: &Connection, growth: &Growth) -> rusqlite::Result<bool> {
    let moved = conn
        .prepare_cached("UPDATE tlog_head SET tree_size = ?1 WHERE id = 1 AND tree_size = ?2")?
        .execute(params![growth.to as i64, growth.from as i64])?;
    if moved != 1 {
        return Ok(false);
    }
    for (seq, index) in &growth.leaves {
        conn.prepare_cached("UPDATE tlog_leaves SET leaf_index = ?1 WHERE seq = ?2 AND leaf_index IS NULL")?
            .execute(params![*index as i64, seq])?;
    }
    for (index, hash) in &growth.hashes {
        conn.prepare_cached("INSERT INTO tlog_hashes (hash_index, hash) VALUES (?1, ?2)")?
            .execute(params![*index as i64, hash.as_slice()])?;
    }
    conn.prepare_cached("INSERT OR REPLACE INTO tlog_checkpoints (tree_size, note) VALUES (?1, ?2)")?
        .execute(params![growth.to as i64, growth.checkpoint])?;
    Ok(true)
}

#[derive(Debug)]
pub struct SqliteLog {
    /// For reads only.
    conn: Mutex<Connection>,
    writer: Writer,
}

impl SqliteLog {
    /// The log in the database at `path`, written through that database's `writer`. Its tables were made with the
    /// audit table ([`SCHEMA`]), by the store that started the writer.
    pub fn open(path: &Path, writer: Writer) -> rusqlite::Result<Self> {
        let conn = connect(path)?;
        Ok(Self {
            conn: Mutex::new(conn),
            writer,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_leaf(row: &rusqlite::Row<'_>) -> rusqlite::Result<LogLeaf> {
    let index: Option<i64> = row.get(0)?;
    Ok(LogLeaf {
        index: index.map(|i| i as u64),
        request_id: row.get(1)?,
        kind: row.get(2)?,
        body: row.get(3)?,
    })
}

impl LogStore for SqliteLog {
    fn add(&self, request_id: &str, kind: &str, body: &[u8]) -> Result<(), StoreError> {
        let (request_id, kind, body) = (request_id.to_owned(), kind.to_owned(), body.to_vec());
        let work: Work = Box::new(move |conn| insert_leaf(conn, &request_id, &kind, &body).map(|()| true));
        self.writer.write(work).map(drop)
    }

    fn pending(&self, limit: usize) -> Result<Vec<PendingLeaf>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, body FROM tlog_leaves WHERE leaf_index IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], |row| {
            Ok(PendingLeaf {
                seq: row.get(0)?,
                body: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT hash FROM tlog_hashes WHERE hash_index = ?1")?;
        indexes
            .iter()
            .map(|&i| {
                let hash: Option<Vec<u8>> = stmt.query_row(params![i as i64], |row| row.get(0)).optional()?;
                hash.and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .ok_or_else(|| StoreError(format!("the log has no stored hash {i}")))
            })
            .collect()
    }

    fn grow(&self, growth: &Growth) -> Result<bool, StoreError> {
        let growth = growth.clone();
        self.writer
            .write(Box::new(move |conn| apply_growth(conn, &growth)))
    }

    fn checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT c.tree_size, c.note FROM tlog_checkpoints c JOIN tlog_head h ON c.tree_size = h.tree_size",
                [],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
            )
            .optional()?)
    }

    fn bodies(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM tlog_leaves WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index",
        )?;
        let rows = stmt.query_map(params![from as i64, to as i64], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn leaf(&self, request_id: &str) -> Result<Option<LogLeaf>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT leaf_index, request_id, kind, body FROM tlog_leaves WHERE request_id = ?1",
                params![request_id],
                to_leaf,
            )
            .optional()?)
    }

    fn leaves(&self) -> Result<Vec<LogLeaf>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT leaf_index, request_id, kind, body FROM tlog_leaves \
             ORDER BY leaf_index IS NULL, leaf_index, seq",
        )?;
        let rows = stmt.query_map([], to_leaf)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
