//! Idempotency under concurrency: a client whose first attempt timed out retries while a gateway still works on
//! it, perhaps another replica than the one the retry reaches. A signature is made once per (token, key): the
//! request that signs first takes the key's claim in the shared store, and any other request with the key waits
//! until the claim's answer is in the store (and answers it), or the claim's lease ran out (its holder died: the
//! waiter takes the claim over and signs), or its own deadline passed (409). This file holds that claim and the
//! wait; the claims and the answers live in the store, so the same holds across replicas and within one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{AuditStore, StoreError, StoredAnswer};

/// How long a request waits for an earlier one with its idempotency key to finish before it is refused (409).
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(10);

/// How long a claim on a key holds without its holder giving it back. Longer than a signing request normally
/// takes from claim to commit (an origin check, an approval-store write, an HSM signature and an audit commit:
/// milliseconds, or a second or two when an identity provider's keys are fetched), because a live holder whose
/// lease ran out would be taken over and the key signed twice (the second answer is still refused at commit).
/// Shorter than [`IN_FLIGHT_WAIT`], so that a request waiting on a replica killed mid-request sees the lease run
/// out within its wait, takes the key over and signs, instead of answering 409.
pub const CLAIM_LEASE: Duration = Duration::from_secs(5);

/// How often a waiting request looks again for the answer or a free key.
const POLL: Duration = Duration::from_millis(25);

/// A request's claim on a (token, key) pair in the store. Given back when dropped: for a signature, after its
/// answer is in the store (so whoever claims the key next finds the answer there); for a refusal, at once.
pub struct KeyClaim {
    audit: Arc<dyn AuditStore>,
    token_id: String,
    key: String,
    holder: String,
    /// When the claim (or its last renewal) was asked for: its lease runs from no earlier than this.
    claimed_at: Instant,
}

impl KeyClaim {
    /// Whether this request still holds its key, asked just before the HSM signs. Within half a lease of the claim
    /// it certainly does and the store is not asked; later (a slow identity provider's key fetch, a slow store)
    /// the key is claimed again, which extends a claim that is still this request's and fails if a retry took it
    /// over after the lease ran out. A request that lost its key must not sign: the retry that holds it does.
    pub fn still_held(&mut self) -> Result<bool, StoreError> {
        if self.claimed_at.elapsed() < CLAIM_LEASE / 2 {
            return Ok(true);
        }
        let asked = Instant::now();
        let held = self
            .audit
            .claim_key(&self.token_id, &self.key, &self.holder, CLAIM_LEASE)?;
        if held {
            self.claimed_at = asked;
        }
        Ok(held)
    }
}

impl std::fmt::Debug for KeyClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyClaim")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if let Err(e) = self.audit.release_key(&self.token_id, &self.key, &self.holder) {
            // Not lost: the lease runs out, and the next request with the key finds the answer or takes it over.
            tracing::warn!(error = %e, request_id = %self.holder, "could not give back an idempotency key's claim");
        }
    }
}

/// What a request with an idempotency key found: the key to itself, or the answer another request stored.
#[derive(Debug)]
pub enum Claimed {
    Claim(KeyClaim),
    Answered(StoredAnswer),
}

/// Why a request could not claim its key.
#[derive(Debug)]
pub enum Unclaimed {
    /// Another request still held the key at the deadline.
    StillHeld,
    Store(StoreError),
}

impl From<StoreError> for Unclaimed {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Claims (token, key) for `holder` (the request's id), or finds the key's answer, waiting while another request
/// holds the key until `deadline`.
pub fn claim_or_answer(
    audit: &Arc<dyn AuditStore>,
    token_id: &str,
    key: &str,
    holder: &str,
    deadline: Instant,
) -> Result<Claimed, Unclaimed> {
    loop {
        // Claimed first, then looked up: under the claim no other request can store an answer for the key, so an
        // answer not found now will not appear behind this request's back.
        let asked = Instant::now();
        if audit.claim_key(token_id, key, holder, CLAIM_LEASE)? {
            let claim = KeyClaim {
                audit: audit.clone(),
                token_id: token_id.to_owned(),
                key: key.to_owned(),
                holder: holder.to_owned(),
                claimed_at: asked,
            };
            return Ok(match audit.idempotent(token_id, key)? {
                Some(answer) => Claimed::Answered(answer),
                None => Claimed::Claim(claim),
            });
        }
        if let Some(answer) = audit.idempotent(token_id, key)? {
            return Ok(Claimed::Answered(answer));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Unclaimed::StillHeld);
        }
        std::thread::sleep(POLL.min(remaining));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::sqlite::SqliteAudit;
    use crate::store::{IdempotentAnswer, Record};

    fn store() -> (tempfile::TempDir, Arc<dyn AuditStore>) {
        let dir = tempfile::tempdir().unwrap();
        let audit = SqliteAudit::open(&dir.path().join("audit.db")).unwrap();
        (dir, Arc::new(audit))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Stores `response` as the answer under ("t", "k"), as `finish` does for a signature.
    fn answer(audit: &Arc<dyn AuditStore>, response: &str) {
        let record = Record {
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Record::default()
        };
        let stored = IdempotentAnswer {
            token_id: "t".into(),
            key: "k".into(),
            body_sha256: "body".into(),
            response: response.into(),
        };
        audit.append(&record, Some(stored)).unwrap();
    }

    #[test]
    fn a_waiter_answers_with_what_the_holder_stored_and_never_gets_the_key() {
        let (_dir, audit) = store();
        let Claimed::Claim(first) = claim_or_answer(&audit, "t", "k", "first", soon()).unwrap() else {
            panic!("a free key was not claimed");
        };
        // Past its deadline, a second claimer gives up.
        assert!(matches!(
            claim_or_answer(&audit, "t", "k", "late", Instant::now()),
            Err(Unclaimed::StillHeld)
        ));
        let waiter = {
            let audit = audit.clone();
            std::thread::spawn(move || claim_or_answer(&audit, "t", "k", "second", soon()).unwrap())
        };
        std::thread::sleep(Duration::from_millis(200));
        answer(&audit, "the first answer");
        drop(first);
        match waiter.join().unwrap() {
            Claimed::Answered(stored) => assert_eq!(stored.response, "the first answer"),
            Claimed::Claim(_) => panic!("the waiter got the key and would sign again"),
        }
        // A later request finds the answer too, and leaves no claim behind.
        assert!(matches!(
            claim_or_answer(&audit, "t", "k", "third", soon()).unwrap(),
            Claimed::Answered(_)
        ));
        assert!(audit.claim_key("t", "k", "fourth", CLAIM_LEASE).unwrap());
    }

    #[test]
    fn a_refused_request_gives_the_key_to_the_next_one() {
        let (_dir, audit) = store();
        let Claimed::Claim(first) = claim_or_answer(&audit, "t", "k", "first", soon()).unwrap() else {
            panic!("a free key was not claimed");
        };
        let waiter = {
            let audit = audit.clone();
            std::thread::spawn(move || claim_or_answer(&audit, "t", "k", "second", soon()).unwrap())
        };
        std::thread::sleep(Duration::from_millis(100));
        // Dropped without an answer stored, as a refused request's claim is.
        drop(first);
        assert!(matches!(waiter.join().unwrap(), Claimed::Claim(_)));
    }

    #[test]
    fn a_dead_holders_claim_is_taken_over_once_its_lease_ran_out() {
        let (_dir, audit) = store();
        // A holder on another gateway that died: its claim is never given back.
        assert!(audit
            .claim_key("t", "k", "dead", Duration::from_millis(300))
            .unwrap());
        let started = Instant::now();
        let claimed = claim_or_answer(&audit, "t", "k", "next", soon()).unwrap();
        assert!(matches!(claimed, Claimed::Claim(_)), "{claimed:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "took over after {waited:?}"
        );
    }

    #[test]
    fn a_claim_outlived_by_its_lease_and_taken_over_is_no_longer_held() {
        let (_dir, audit) = store();
        // A slow request (its origin check took seconds) whose claim's lease ran out.
        assert!(audit
            .claim_key("t", "k", "slow", Duration::from_millis(50))
            .unwrap());
        let mut slow = KeyClaim {
            audit: audit.clone(),
            token_id: "t".into(),
            key: "k".into(),
            holder: "slow".into(),
            claimed_at: Instant::now() - CLAIM_LEASE,
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            audit.claim_key("t", "k", "retry", CLAIM_LEASE).unwrap(),
            "the expired claim was not taken over"
        );
        assert!(
            audit.claim_key("t", "k", "retry", CLAIM_LEASE).unwrap(),
            "a holder's second claim did not extend its own"
        );
        assert!(
            !slow.still_held().unwrap(),
            "the slow request would sign a key it lost"
        );
    }

    #[test]
    fn a_claim_older_than_half_a_lease_is_renewed_while_it_is_still_its_holders() {
        let (_dir, audit) = store();
        let Ok(Claimed::Claim(mut claim)) = claim_or_answer(&audit, "t", "k", "first", soon()) else {
            panic!("the free key was not claimed");
        };
        claim.claimed_at -= CLAIM_LEASE;
        assert!(claim.still_held().unwrap());
        assert!(
            claim.claimed_at.elapsed() < CLAIM_LEASE / 2,
            "the renewal was not recorded"
        );
        assert!(!audit.claim_key("t", "k", "other", CLAIM_LEASE).unwrap());
    }
}
