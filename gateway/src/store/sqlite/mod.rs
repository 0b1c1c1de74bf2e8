//! The embedded stores: one SQLite database file (WAL, `synchronous=FULL`) holds the audit log, the idempotency
//! records, held signing requests, votes and release-group uses, and the transparency log (`log.rs`); the claims
//! on idempotency keys are the serving process's own (`claims.rs`). The audit records, their log leaves and the
//! log's tree are written on one connection (`writer.rs`). `init` + `serve` on one machine need no setup; one
//! gateway process serves a file.

mod approvals;
mod audit;
mod busy;
mod claims;
mod log;
mod request_revocations;
mod writer;

use std::path::Path;

use rusqlite::Connection;

pub use approvals::SqliteApprovals;
pub use audit::SqliteAudit;
pub use log::SqliteLog;
pub use request_revocations::SqliteRequestRevocations;

/// A connection to the database as every part of the gateway opens it: WAL, `synchronous=FULL`, and a wait in short
/// steps (`busy.rs`) for the moments another connection (or `signpath-gateway approve` in another process) writes.
///
/// The file is created 0600 before SQLite opens it: it holds request metadata and identity-token claims. SQLite
/// gives its `-wal` and `-shm` files the mode of the database file, so they are 0600 too. A file (or directory)
/// another user could write is refused: the audit log and the held requests would be theirs to rewrite.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let cannot_open = |message: String| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(message),
        )
    };
    create_private(path).map_err(|e| cannot_open(format!("cannot create {}: {e}", path.display())))?;
    crate::fsutil::check_owner_only_writes(path, "the audit database")
        .map_err(|e| cannot_open(e.to_string()))?;
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_handler(Some(busy::wait_a_step))?;
    Ok(conn)
}

/// Creates the database file 0600 if it does not exist yet (an existing file keeps its mode: the operator's choice).
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn database_wal_and_shm_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("audit.db");
        let conn = super::connect(&db).expect("connect");
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("write");
        for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .expect(name)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
        }
    }
}
