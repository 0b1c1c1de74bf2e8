//! The embedded stores: one SQLite database file (WAL, `synchronous=FULL`) holds the audit log, the idempotency
//! records, held signing requests, votes and release-group uses. `init` + `serve` on one machine need no setup.

mod approvals;
mod audit;

use std::path::Path;

use rusqlite::Connection;

pub use approvals::SqliteApprovals;
pub use audit::SqliteAudit;

/// A connection to the database as every part of the gateway opens it: WAL, `synchronous=FULL`, and a busy
/// timeout for the moments another connection (or `signpath-gateway approve` in another process) writes.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}
