//! Claims on idempotency keys for the embedded store: a request takes its (token, key) pair before it signs and
//! gives it back once its answer is stored, so a second request with the key waits for that answer. A SQLite file
//! belongs to one gateway process (replicas share PostgreSQL, which keeps claims in a table), so the claims live in
//! that process's memory: a table in the file would cost every signature two write transactions queued behind
//! the audit writer's fsync, which halved C_Sign throughput at 8 threads when measured. A claim has the same
//! lease as in PostgreSQL, so a holder that never gives its claim back (a panic) delays a retry by one lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The claims of one process: (token, key) → (holder, end of its lease).
#[derive(Debug, Default)]
pub(super) struct Claims(Mutex<HashMap<(String, String), (String, Instant)>>);

impl Claims {
    /// Takes the claim on (token, key) for `holder` unless another holder's lease still runs; the holder's own
    /// claim is extended.
    pub(super) fn claim(&self, token_id: &str, key: &str, holder: &str, lease: Duration) -> bool {
        let now = Instant::now();
        let mut claims = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Leases that ran out are dropped here, so the map holds only claims in force.
        if claims.len() > 1024 {
            claims.retain(|_, (_, until)| *until > now);
        }
        let pair = (token_id.to_owned(), key.to_owned());
        match claims.get(&pair) {
            Some((standing, until)) if *until > now && standing != holder => false,
            _ => {
                claims.insert(pair, (holder.to_owned(), now + lease));
                true
            }
        }
    }

    /// Gives back `holder`'s claim on (token, key), if it is still theirs.
    pub(super) fn release(&self, token_id: &str, key: &str, holder: &str) {
        let mut claims = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let pair = (token_id.to_owned(), key.to_owned());
        if claims.get(&pair).is_some_and(|(h, _)| h == holder) {
            claims.remove(&pair);
        }
    }
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
        let (_dir, audit) = store();
        let start = std::sync::Barrier::new(16);
        let won = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..16 {
                let (audit, start, won) = (&audit, &start, &won);
                s.spawn(move || {
                    start.wait();
                    if audit.claim_key("t", "k", &format!("holder-{i}"), LONG).unwrap() {
                        won.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(won.into_inner(), 1);
    }
}
