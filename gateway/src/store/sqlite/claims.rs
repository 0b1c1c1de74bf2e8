//! Claims on idempotency keys in SQLite (table `idempotency_claims`): a request takes its (token, key) pair before
//! it signs and gives it back once its answer is stored, so a second request with the key waits for that answer.
//! A claim is one upsert whose update only happens when the standing claim's lease has run out, so two claimers
//! never both get the key. Leases are milliseconds of this machine's clock: every gateway on a SQLite file runs on
//! the machine that holds it.
//!
//! Claims live on a connection of their own with `synchronous=NORMAL`: in WAL mode a commit then does not wait for
//! an fsync, and a claim lost to a power cut costs nothing (the request that held it died with the power).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use super::connect;
use crate::store::StoreError;

/// The claims table and the connection that takes and gives back claims.
pub(super) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = connect(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS idempotency_claims (token_id TEXT NOT NULL, key TEXT NOT NULL,
             holder TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (token_id, key));",
    )?;
    Ok(conn)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Takes the claim on (token, key) for `holder` unless another holder's lease still runs.
pub(super) fn claim(
    conn: &Connection,
    token_id: &str,
    key: &str,
    holder: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let changed = conn
        .prepare_cached(
            "INSERT INTO idempotency_claims (token_id, key, holder, expires) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (token_id, key) DO UPDATE SET holder = excluded.holder, expires = excluded.expires \
             WHERE idempotency_claims.expires <= ?5",
        )?
        .execute(params![token_id, key, holder, expires, now])?;
    Ok(changed == 1)
}

/// Deletes `holder`'s claim on (token, key), if it is still theirs.
pub(super) fn release(conn: &Connection, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM idempotency_claims WHERE token_id = ?1 AND key = ?2 AND holder = ?3")?
        .execute(params![token_id, key, holder])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use crate::store::sqlite::SqliteAudit;
    use crate::store::AuditStore;

    const LONG: Duration = Duration::from_secs(60);

    fn store() -> (tempfile::TempDir, SqliteAudit) {
        let dir = tempfile::tempdir().unwrap();
        let audit = SqliteAudit::open(&dir.path().join("audit.db")).unwrap();
        (dir, audit)
    }

    #[test]
    fn a_key_has_one_holder_until_it_is_given_back() {
        let (_dir, audit) = store();
        assert!(audit.claim_key("t", "k", "first", LONG).unwrap());
        assert!(
            !audit.claim_key("t", "k", "second", LONG).unwrap(),
            "a held key was claimed again"
        );
        // The same key name of another token, and another key of the same token, are other claims.
        assert!(audit.claim_key("u", "k", "second", LONG).unwrap());
        assert!(audit.claim_key("t", "other", "second", LONG).unwrap());
        // Only the holder gives a claim back.
        audit.release_key("t", "k", "second").unwrap();
        assert!(
            !audit.claim_key("t", "k", "third", LONG).unwrap(),
            "a stranger released the claim"
        );
        audit.release_key("t", "k", "first").unwrap();
        assert!(
            audit.claim_key("t", "k", "third", LONG).unwrap(),
            "the released key stayed held"
        );
    }

    #[test]
    fn a_claim_whose_lease_ran_out_is_taken_over_and_its_old_holder_cannot_release_it() {
        let (_dir, audit) = store();
        let lease = Duration::from_millis(300);
        let claimed = Instant::now();
        assert!(audit.claim_key("t", "k", "dead", lease).unwrap());
        // Within the lease the key stays the dead holder's.
        assert!(!audit.claim_key("t", "k", "next", LONG).unwrap());
        while !audit.claim_key("t", "k", "next", LONG).unwrap() {
            assert!(
                claimed.elapsed() < Duration::from_secs(5),
                "the expired claim was never taken over"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            claimed.elapsed() >= lease,
            "taken over after {:?}, before the lease ran out",
            claimed.elapsed()
        );
        // The old holder, back from the dead, gives back nothing that is no longer its own.
        audit.release_key("t", "k", "dead").unwrap();
        assert!(
            !audit.claim_key("t", "k", "third", LONG).unwrap(),
            "the new holder's claim was released"
        );
    }

    #[test]
    fn of_many_claimers_at_once_exactly_one_gets_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        // Two stores on one file, as two gateway processes would be.
        let stores = [
            SqliteAudit::open(&path).unwrap(),
            SqliteAudit::open(&path).unwrap(),
        ];
        let start = std::sync::Barrier::new(16);
        let won = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..16 {
                let (store, start, won) = (&stores[i % 2], &start, &won);
                s.spawn(move || {
                    start.wait();
                    if store.claim_key("t", "k", &format!("holder-{i}"), LONG).unwrap() {
                        won.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(won.into_inner(), 1);
    }
}
