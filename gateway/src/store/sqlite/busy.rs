//! What a connection does when another connection holds the database's write lock: wait in short steps. It owns
//! that schedule and imports nothing of the gateway.
//!
//! SQLite's own busy handler (what `busy_timeout` installs) sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries.
//! The audit writer commits in about 0.2 ms, and a vote or a revocation written on its own connection as fast, so
//! the connection that waits for either slept a whole millisecond (SQLite's first step) for a lock held a fifth of
//! that, holding every request of its batch with it. These steps start at 50 µs and never exceed 2 ms, and the
//! wait still gives up after [`GIVE_UP_AFTER`].

use std::time::Duration;

/// How long a connection waits for the write lock before its statement fails with SQLITE_BUSY.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

const FIRST_STEP: Duration = Duration::from_micros(50);
const LONGEST_STEP: Duration = Duration::from_millis(2);

/// The sleep before try number `attempt + 1` (`attempt` counts the tries made since the lock was found busy).
fn step(attempt: u32) -> Duration {
    FIRST_STEP
        .checked_mul(1 << attempt.min(16))
        .map_or(LONGEST_STEP, |step| step.min(LONGEST_STEP))
}

/// The time slept before try number `attempt + 1`, all steps before it summed.
fn slept_before(attempt: u32) -> Duration {
    (0..attempt).map(step).sum()
}

/// The busy handler SQLite calls with the number of times it called it for this lock: sleeps one step and asks
/// for another try, until the steps add up to [`GIVE_UP_AFTER`].
pub fn wait_a_step(attempt: i32) -> bool {
    let attempt = u32::try_from(attempt).unwrap_or(0);
    if slept_before(attempt) >= GIVE_UP_AFTER {
        return false;
    }
    std::thread::sleep(step(attempt));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_start_short_stay_short_and_give_up_after_five_seconds() {
        assert_eq!(step(0), Duration::from_micros(50));
        assert_eq!(step(1), Duration::from_micros(100));
        assert_eq!(step(5), Duration::from_micros(1600));
        assert_eq!(step(6), LONGEST_STEP);
        assert_eq!(step(u32::MAX), LONGEST_STEP);
        // The first five steps, a lock held for a commit's time, sleep 1.55 ms in all.
        assert_eq!(slept_before(5), Duration::from_micros(1550));
        let last = (0..).find(|&a| slept_before(a) >= GIVE_UP_AFTER).unwrap();
        assert!(slept_before(last) < GIVE_UP_AFTER + LONGEST_STEP);
        assert!(!wait_a_step(i32::try_from(last).unwrap()));
    }

    /// A connection that finds the write lock taken waits for it and writes once it is free, within the wait.
    #[test]
    fn a_writer_waits_for_the_lock_another_connection_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let holder = super::super::connect(&path).unwrap();
        holder.execute_batch("CREATE TABLE t (x)").unwrap();
        holder
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let conn = super::super::connect(&path).unwrap();
                conn.execute("INSERT INTO t VALUES (2)", []).map(drop)
            });
            std::thread::sleep(Duration::from_millis(50));
            holder.execute_batch("COMMIT").unwrap();
            waiter.join().unwrap().unwrap();
        });
        let count: i64 = holder
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
    }
}
