//! The audit log in SQLite: one record for every API request, committed durably before the response leaves, and
//! the idempotency records, so a replayed `SignHash` finds the first answer in the same database as its audit record.
//!
//! Writes go through the database's one writer thread (`writer.rs`), which commits whatever is waiting in one
//! transaction and answers each caller after the fsync that made its record durable. Reads use a connection of
//! their own, which WAL lets run beside the writer.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::connect;
use super::writer::{Work, Writer};
use crate::store::log::KIND_SIGNATURE;
use crate::store::{AuditStore, IdempotentAnswer, Record, StoreError, StoredAnswer};

pub struct SqliteAudit {
    /// For reads only.
    conn: Mutex<Connection>,
    /// The claims on idempotency keys (`claims.rs`).
    claims: super::claims::Claims,
    /// The database's one writer; dropping every handle lets the thread finish the waiting writes and exit.
    writer: Writer,
}

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
    /// Opens the database, making its tables if they are not there. Every page an append touches is written to the
    /// WAL in full and synced before the answer, so the tables are laid out for fewer pages per record: `seq` is a
    /// plain `INTEGER PRIMARY KEY` (rows are never deleted, so it still only grows, and no `sqlite_sequence` row
    /// is rewritten per insert), and the idempotency answers live in their primary key's B-tree (`WITHOUT ROWID`)
    /// rather than in a table and an index. A database made before keeps its tables as they were and works the same.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = connect(path)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, {}, UNIQUE(request_id));
             CREATE TABLE IF NOT EXISTS idempotency (token_id TEXT NOT NULL, key TEXT NOT NULL,
                 request_id TEXT NOT NULL, body_sha256 TEXT NOT NULL, response TEXT NOT NULL,
                 created INTEGER NOT NULL, PRIMARY KEY (token_id, key)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS idempotency_request ON idempotency (request_id);
             {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("{c} {}", if c == "status" { "INTEGER" } else { "TEXT" }))
                .collect::<Vec<_>>()
                .join(", "),
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
        let writer = Writer::start(path)?;
        Ok(Self {
            conn: Mutex::new(conn),
            claims: super::claims::Claims::default(),
            writer,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database's writer, for the other stores of the same file whose writes are on the hot path (the log).
    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }
}

impl AuditStore for SqliteAudit {
    fn append(&self, record: &Record, answer: Option<IdempotentAnswer>) -> Result<(), StoreError> {
        self.writer.write(append_work(record.bounded(), answer)).map(drop)
    }

    fn idempotent(&self, token_id: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
        // Every SignHash from the module carries an Idempotency-Key, so this runs once per signature: the
        // statement comes from the connection's cache rather than SQLite's parser.
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT body_sha256, response FROM idempotency WHERE token_id = ?1 AND key = ?2 AND created > strftime('%s','now') - 86400",
            )?
            .query_row(
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

/// A record (already [`Record::bounded`]), its log leaf if it records a signature (a signature's leaf commits with
/// its record or not at all), and the answer kept under its idempotency key, as one job of the writer.
pub(super) fn append_work(record: Record, idempotency: Option<IdempotentAnswer>) -> Work {
    Box::new(move |conn| {
        insert(conn, &record)?;
        if let Some(entry) = record.log_entry() {
            super::log::insert_leaf(conn, &record.request_id, KIND_SIGNATURE, &entry)?;
        }
        if let Some(i) = &idempotency {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (token_id, key, request_id, body_sha256, response, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s','now'))",
            )?
            .execute(params![i.token_id, i.key, record.request_id, i.body_sha256, i.response])?;
        }
        Ok(true)
    })
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
