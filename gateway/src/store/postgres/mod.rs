//! The shared stores: PostgreSQL holds the audit log, idempotency records, held signing requests, votes,
//! release-group uses, revoked tokens and the artifacts of file-based signing requests, so that several gateways (replicas behind a load balancer) act as one.
//! Selected by `audit_db = "postgres://…"` in gateway.toml; SQLite stays the default.
//!
//! Every guarantee that the embedded store gets from being one file with one writer comes here from the database,
//! never from a lock in this process: an idempotency key has one answer (its primary key) and one signer at a
//! time (a claim with a lease, taken before signing), a vote reads and writes its request under `SELECT … FOR
//! UPDATE`, a release group counts its uses under a transaction-scoped advisory lock, and an approved request is
//! signed by the one replica whose claim took it (with a lease, so a request taken by a replica that died is
//! signed by the next poll after the lease, and only then).
//!
//! This folder owns the PostgreSQL side of persistence only. Like the rest of `store/`, it must never import
//! `signing/`, `http/` or the HSM.

mod approvals;
mod artifacts;
mod audit;
mod claims;
mod log;
mod migrations;
mod request_revocations;
mod revocations;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use approvals::PgApprovals;
pub use artifacts::PgArtifacts;
pub use audit::PgAudit;
pub use log::PgLog;
pub use migrations::{latest as latest_migration, migrate};
pub use request_revocations::PgRequestRevocations;
pub use revocations::PgRevocations;

use super::StoreError;

/// Whether `audit_db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(audit_db: &str) -> bool {
    audit_db.starts_with("postgres://") || audit_db.starts_with("postgresql://")
}

/// A pool of connections and the small runtime that drives them. The signing core is synchronous (it runs on
/// tokio's blocking pool, and the command line has no runtime at all), so each store call hands its query to this
/// runtime and waits for the outcome: the same shape from any thread, and never a `block_on` inside an async task.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
    /// Where queries run.
    runtime: tokio::runtime::Handle,
    /// Owns the runtime; shared by every clone.
    _owner: Arc<DatabaseRuntime>,
}

/// The database runtime, shut down without waiting when the last store lets go of it. The stores are dropped
/// wherever their last owner is: when `serve` stops (after the drain, or when a start fails) that is a task of its
/// own runtime, where dropping a runtime the ordinary way blocks inside an async context, which tokio refuses with
/// a panic. Nothing is cut short: no query is in flight, since every store call waits for its own outcome.
struct DatabaseRuntime(Option<tokio::runtime::Runtime>);

impl Drop for DatabaseRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

/// Connections per gateway: enough for the blocking pool's signing threads to commit side by side.
const MAX_CONNECTIONS: u32 = 16;

impl Database {
    /// Connects to `url` (`postgres://user@host:port/db?sslmode=…`; a password is best left out of the URL and
    /// given in `PGPASSWORD` or a `.pgpass` file). Errors never repeat the URL, which may hold a password.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError(format!(
                    "audit_db is not a usable PostgreSQL URL: {}",
                    redact(&e, url)
                ))
            })?
            .application_name("signpath-gateway")
            // PostgreSQL's notices ("relation already exists, skipping") are not the operator's business.
            .options([("client_min_messages", "warning")]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let pool = runtime
            .block_on(
                PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options),
            )
            .map_err(|e| StoreError(format!("cannot connect to PostgreSQL: {}", redact(&e, url))))?;
        Ok(Self {
            pool,
            runtime: runtime.handle().clone(),
            _owner: Arc::new(DatabaseRuntime(Some(runtime))),
        })
    }

    /// Runs `work` with the pool on the database runtime and waits for its outcome.
    fn run<T, F, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
        W: FnOnce(PgPool) -> F,
    {
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        let future = work(self.pool.clone());
        self.runtime.spawn(async move {
            let _ = done.send(future.await);
        });
        outcome
            .recv()
            .map_err(|_| StoreError("the PostgreSQL runtime stopped".into()))?
            .map_err(|e| StoreError(format!("PostgreSQL: {e}")))
    }
}

/// The text of a driver error with the URL (and so any password in it) taken out.
fn redact(e: &dyn std::fmt::Display, url: &str) -> String {
    e.to_string().replace(url, "<audit_db>")
}

/// The current time in Unix seconds, as the tables keep it.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
