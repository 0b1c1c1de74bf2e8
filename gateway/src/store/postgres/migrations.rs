//! Versioned schema migrations, compiled into the binary: `serve` applies the missing ones on start, and so does
//! `signpath-gateway migrate`. Replicas starting together take a transaction-scoped advisory lock, so one applies
//! them and the others find them applied.
//!
//! Written here rather than with sqlx's migrator: that one embeds migrations through its proc-macro crate (which
//! would build the PostgreSQL driver a second time for the host) or reads a directory at run time; ours are a
//! list of files and a table.

use sqlx::Executor as _;

use super::{Database, StoreError};

/// Every migration, in order: (version, name, SQL). A released migration never changes; a new one is appended.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "shared store",
        include_str!("migrations/0001_shared_store.sql"),
    ),
    (
        2,
        "idempotency claims",
        include_str!("migrations/0002_idempotency_claims.sql"),
    ),
    (
        3,
        "release groups count signatures",
        include_str!("migrations/0003_release_group_signatures.sql"),
    ),
    (
        4,
        "revoked certificates",
        include_str!("migrations/0004_revoked_certificates.sql"),
    ),
    (
        5,
        "artifacts of file-based signing requests",
        include_str!("migrations/0005_artifacts.sql"),
    ),
    (
        6,
        "request revocations",
        include_str!("migrations/0006_request_revocations.sql"),
    ),
    (
        7,
        "transparency log",
        include_str!("migrations/0007_transparency_log.sql"),
    ),
];

/// An arbitrary constant naming the migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x5167_7061_7468_0001;

/// Applies the migrations the database lacks; returns the versions applied now.
pub fn migrate(db: &Database) -> Result<Vec<i32>, StoreError> {
    db.run(|pool| async move {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        // A plain string runs unprepared, in the simple protocol that takes several statements at once.
        (&mut *tx)
            .execute(
                "CREATE TABLE IF NOT EXISTS signpath_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                     applied TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        let current: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM signpath_schema")
            .fetch_one(&mut *tx)
            .await?;
        let mut applied = Vec::new();
        for &(version, name, sql) in MIGRATIONS {
            if current.is_some_and(|c| c >= version) {
                continue;
            }
            (&mut *tx).execute(sql).await?;
            sqlx::query("INSERT INTO signpath_schema (version, name) VALUES ($1, $2)")
                .bind(version)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            applied.push(version);
        }
        tx.commit().await?;
        Ok(applied)
    })
}

/// The newest version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}
