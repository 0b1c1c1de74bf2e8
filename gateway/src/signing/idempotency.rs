//! Idempotency under concurrency: a client whose first attempt timed out retries while the gateway still works on
//! it. The retry waits for the first attempt's answer (kept in the audit store under its key) instead of signing
//! again. This file holds the in-process claims on (token, key) pairs; the answers live in the store.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a request waits for an earlier one with its idempotency key to finish before it is refused (409).
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(10);

/// The (token, idempotency key) pairs whose first request is being processed, and a signal when one is released.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<(String, String)>>,
    released: Condvar,
}

/// One request's hold on its (token, key) pair. Released when dropped: for a signature, after its answer is in
/// the idempotency store, so whoever claims the pair next finds the answer there.
#[derive(Debug)]
pub struct InFlightClaim {
    set: Arc<InFlight>,
    key: (String, String),
}

impl Drop for InFlightClaim {
    fn drop(&mut self) {
        self.set
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
        self.set.released.notify_all();
    }
}

impl InFlight {
    /// Claims the pair, waiting while another request holds it; `Err(())` if it is still held at `deadline`.
    pub fn claim(
        self: &Arc<Self>,
        token_id: &str,
        key: &str,
        deadline: Instant,
    ) -> Result<InFlightClaim, ()> {
        let pair = (token_id.to_owned(), key.to_owned());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        while keys.contains(&pair) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(());
            }
            keys = self
                .released
                .wait_timeout(keys, remaining)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        keys.insert(pair.clone());
        Ok(InFlightClaim {
            set: self.clone(),
            key: pair,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_claimed_key_makes_others_wait_until_it_is_released() {
        let set = Arc::new(InFlight::default());
        let soon = || Instant::now() + Duration::from_secs(5);
        let first = set.claim("t", "k", soon()).unwrap();
        // Another token's key of the same name is another pair.
        let other_token = set.claim("u", "k", soon()).unwrap();
        // Past its deadline, a second claimer gives up.
        assert!(set.claim("t", "k", Instant::now()).is_err());
        let waiter = {
            let set = set.clone();
            std::thread::spawn(move || {
                let claim = set
                    .claim("t", "k", Instant::now() + Duration::from_secs(5))
                    .unwrap();
                (claim, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        // The waiter must get the pair only after it is released, and well before its deadline.
        let released = Instant::now();
        drop(first);
        let (second, claimed) = waiter.join().unwrap();
        assert!(
            claimed >= released,
            "claimed {:?} before the release",
            released - claimed
        );
        assert!(
            claimed - released < Duration::from_secs(4),
            "{:?}",
            claimed - released
        );
        drop((second, other_token));
        assert!(set.keys.lock().unwrap().is_empty());
    }
}
