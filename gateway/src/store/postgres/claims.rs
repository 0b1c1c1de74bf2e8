//! Claims on idempotency keys in PostgreSQL, shared by every replica (table `idempotency_claims`, migration 2).
//! A claim is taken in one statement, `INSERT … ON CONFLICT DO UPDATE … WHERE` the standing claim's lease has run
//! out: PostgreSQL locks the conflicting row for the check, so of two replicas claiming a key at once exactly one
//! inserts (or takes over), and the other is told the key is held. Leases run on the database's clock, so replicas
//! whose clocks differ still agree on when a claim expired.

use std::time::Duration;

use super::Database;
use crate::store::StoreError;

/// Now, in milliseconds since the epoch, by the database's clock (the clock of the statement, not of its transaction).
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Takes the claim on (token, key) for `holder` unless another holder's lease still runs; the holder's own claim
/// is extended.
pub(super) fn claim(
    db: &Database,
    token_id: &str,
    key: &str,
    holder: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let (token_id, key, holder) = (token_id.to_owned(), key.to_owned(), holder.to_owned());
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    db.run(move |pool| async move {
        let taken = sqlx::query(&format!(
            "INSERT INTO idempotency_claims (token_id, key, holder, expires) VALUES ($1, $2, $3, {NOW_MS} + $4) \
             ON CONFLICT (token_id, key) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires \
             WHERE idempotency_claims.expires <= {NOW_MS} OR idempotency_claims.holder = EXCLUDED.holder"
        ))
        .bind(token_id)
        .bind(key)
        .bind(holder)
        .bind(lease_ms)
        .execute(&pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    })
}

/// Deletes `holder`'s claim on (token, key), if it is still theirs.
pub(super) fn release(db: &Database, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError> {
    let (token_id, key, holder) = (token_id.to_owned(), key.to_owned(), holder.to_owned());
    db.run(move |pool| async move {
        sqlx::query("DELETE FROM idempotency_claims WHERE token_id = $1 AND key = $2 AND holder = $3")
            .bind(token_id)
            .bind(key)
            .bind(holder)
            .execute(&pool)
            .await?;
        Ok(())
    })
}
