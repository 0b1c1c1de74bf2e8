//! When to try the gateway again, and when to stop: backoff, and the two budgets.
//!
//! SignPath's contract retries network errors, timeouts, 429, 502, 503 and 504 for
//! `ServiceUnavailableTimeoutInSeconds` (600 s by default): right for a gateway that was reachable and is now busy
//! or restarting. A gateway that never answered — refused connections, an unknown host — is far more often a
//! mistyped `ApiUrl` or a stopped gateway, and ten silent minutes help nobody; so while no attempt of a client has
//! ever connected, the shorter `UnreachableTimeoutInSeconds` applies. Pure decisions, no I/O: the client asks,
//! this module answers.

use std::time::Duration;

/// Exponential backoff: `first`, doubling, capped at `max`, plus up to 20 % jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // SignPath's Crypto Providers start at 1.16 s and double.
        Self {
            first_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max_delay);
        // Jitter from the OS random source via a v4 UUID: enough to spread clients, no extra dependency.
        let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0 * 0.2;
        base.mul_f64(1.0 + jitter)
    }
}

/// The two budgets of one logical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `ServiceUnavailableTimeoutInSeconds`: once the gateway has been reached.
    pub service_unavailable: Duration,
    /// `UnreachableTimeoutInSeconds`: while it never has.
    pub unreachable: Duration,
}

/// Which budget binds, so the message can name its setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ServiceUnavailable,
    Unreachable,
}

impl Limit {
    /// The setting a user raises (or checks) and its environment variable.
    pub fn setting(self) -> (&'static str, &'static str) {
        let setting = match self {
            Self::ServiceUnavailable => crate::config::SERVICE_UNAVAILABLE_TIMEOUT,
            Self::Unreachable => crate::config::UNREACHABLE_TIMEOUT,
        };
        (setting.key, setting.env[0])
    }
}

impl Budgets {
    /// The budget in force: the short one while nothing ever connected (never longer than the long one).
    pub fn limit(&self, ever_connected: bool) -> (Limit, Duration) {
        if !ever_connected && self.unreachable < self.service_unavailable {
            (Limit::Unreachable, self.unreachable)
        } else {
            (Limit::ServiceUnavailable, self.service_unavailable)
        }
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep `delay`, then try again; `left` of the budget remains after the sleep.
    Retry { delay: Duration, left: Duration },
    /// The budget is spent (or would be by the next attempt).
    GiveUp(Limit),
}

/// After a transient failure `elapsed` into the request, with the next backoff `delay`: retry or stop.
pub fn decide(budgets: &Budgets, ever_connected: bool, elapsed: Duration, delay: Duration) -> Decision {
    let (limit, budget) = budgets.limit(ever_connected);
    if elapsed + delay >= budget {
        Decision::GiveUp(limit)
    } else {
        Decision::Retry {
            delay,
            left: budget - elapsed - delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGETS: Budgets = Budgets {
        service_unavailable: Duration::from_secs(600),
        unreachable: Duration::from_secs(20),
    };

    #[test]
    fn a_gateway_never_reached_gets_the_short_budget() {
        let second = Duration::from_secs(1);
        assert_eq!(
            decide(&BUDGETS, false, Duration::from_secs(10), second),
            Decision::Retry {
                delay: second,
                left: Duration::from_secs(9)
            }
        );
        assert_eq!(
            decide(&BUDGETS, false, Duration::from_secs(19), second),
            Decision::GiveUp(Limit::Unreachable)
        );
        assert_eq!(Limit::Unreachable.setting().0, "UnreachableTimeoutInSeconds");
    }

    #[test]
    fn a_gateway_reached_once_keeps_the_long_budget() {
        let second = Duration::from_secs(1);
        assert_eq!(
            decide(&BUDGETS, true, Duration::from_secs(19), second),
            Decision::Retry {
                delay: second,
                left: Duration::from_secs(580)
            }
        );
        assert_eq!(
            decide(&BUDGETS, true, Duration::from_secs(599), second),
            Decision::GiveUp(Limit::ServiceUnavailable)
        );
    }

    #[test]
    fn the_short_budget_never_lengthens_the_long_one() {
        let budgets = Budgets {
            service_unavailable: Duration::from_secs(2),
            unreachable: Duration::from_secs(20),
        };
        assert_eq!(
            budgets.limit(false),
            (Limit::ServiceUnavailable, Duration::from_secs(2))
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
        };
        for (attempt, base) in [(1, 1), (2, 2), (3, 4), (9, 4)] {
            let delay = policy.delay(attempt);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= base.mul_f64(1.2),
                "{attempt}: {delay:?}"
            );
        }
    }
}
