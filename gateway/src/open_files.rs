//! The open-file budget of `serve`. Every connection holds a file descriptor, and the API listener, the CRL
//! listener, the database, the HSM module and the artifacts being written all draw on one process limit
//! (RLIMIT_NOFILE). Each listener has a cap of its own (`[server] max_connections`, `crl_max_connections`), and the
//! caps together are kept within the limit: a flood of connections to one listener then waits in that listener's
//! backlog, and never takes the descriptors the other listener (or the database) needs.
//!
//! `serve` raises the soft limit to the hard limit and applies the budget; `doctor` reports it. This file imports
//! only the configuration.

use rustix::process::{getrlimit, setrlimit, Resource};

use crate::config::ServerConfig;

/// Descriptors kept for everything but connections: the database (SQLite's files, or PostgreSQL's pool of 16
/// connections), the HSM module's files, the log, configuration reloads and JWKS fetches.
pub const RESERVED: u64 = 128;

/// Descriptors one API connection may hold: its socket, and the file an artifact upload is written to.
pub const PER_API_CONNECTION: u64 = 2;

/// The connections each listener may hold, as the open-file limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The open-file limit the budget is made for (`None`: unlimited).
    pub limit: Option<u64>,
    /// Connections the API listener serves at once.
    pub api: usize,
    /// Connections the CRL listener serves at once (0 without `[pki]`).
    pub crl: usize,
    /// Whether the configured caps did not fit the limit and were lowered.
    pub lowered: bool,
}

impl Budget {
    /// The caps `server` asks for (`crl_listener`: whether there is a CRL listener), within `limit` open files:
    /// as configured if they fit, else both lowered in proportion (at least 1 each).
    pub fn within(limit: Option<u64>, server: &ServerConfig, crl_listener: bool) -> Self {
        let api = server.max_connections.max(1);
        let crl = if crl_listener {
            server.crl_max_connections.max(1)
        } else {
            0
        };
        let wanted = PER_API_CONNECTION * api as u64 + crl as u64;
        let available = limit.map_or(u64::MAX, |limit| limit.saturating_sub(RESERVED));
        if wanted <= available {
            return Self {
                limit,
                api,
                crl,
                lowered: false,
            };
        }
        // Both in proportion, rounded down: PER_API_CONNECTION * api + crl stays within `available`.
        let scale = |n: usize| (n as u128 * u128::from(available) / u128::from(wanted)) as usize;
        Self {
            limit,
            api: scale(api).max(1),
            crl: if crl_listener { scale(crl).max(1) } else { 0 },
            lowered: true,
        }
    }

    /// What the budget says, for the start's log line and `doctor`.
    pub fn describe(&self, server: &ServerConfig) -> String {
        let limit = self
            .limit
            .map_or_else(|| "unlimited".to_owned(), |limit| limit.to_string());
        let mut text = format!(
            "open-file limit {limit}: up to {} API connections (max_connections = {})",
            self.api, server.max_connections
        );
        if self.crl > 0 {
            text.push_str(&format!(
                " and {} CRL connections (crl_max_connections = {})",
                self.crl, server.crl_max_connections
            ));
        }
        text.push_str(&format!(
            ", {PER_API_CONNECTION} descriptors per API connection, {RESERVED} kept for the rest"
        ));
        text
    }
}

/// The hard limit on open files: what `serve` raises its soft limit to (`None`: unlimited).
pub fn hard_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).maximum
}

/// Raises the soft limit on open files to the hard limit (the default soft limit, often 1024, is far below what
/// the caps allow); the limit in force afterwards.
pub fn raise_to_hard_limit() -> Option<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(api: usize, crl: usize) -> ServerConfig {
        ServerConfig {
            max_connections: api,
            crl_max_connections: crl,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn caps_that_fit_are_kept() {
        let budget = Budget::within(Some(65_536), &server(1024, 64), true);
        assert_eq!((budget.api, budget.crl, budget.lowered), (1024, 64, false));
        let unlimited = Budget::within(None, &server(1024, 64), true);
        assert_eq!(
            (unlimited.api, unlimited.crl, unlimited.lowered),
            (1024, 64, false)
        );
    }

    #[test]
    fn caps_that_do_not_fit_are_lowered_in_proportion_and_stay_within_the_limit() {
        for limit in [140, 512, 1024, 2000] {
            let budget = Budget::within(Some(limit), &server(1024, 64), true);
            assert!(budget.lowered, "{limit}");
            assert!(budget.api >= 1 && budget.crl >= 1, "{budget:?}");
            let used = PER_API_CONNECTION * budget.api as u64 + budget.crl as u64 + RESERVED;
            assert!(used <= limit, "{budget:?} uses {used} of {limit}");
        }
        let budget = Budget::within(Some(1024), &server(1024, 64), true);
        assert_eq!((budget.api, budget.crl), (434, 27));
    }

    #[test]
    fn without_a_crl_listener_the_api_has_the_budget() {
        let budget = Budget::within(Some(1024), &server(1024, 64), false);
        assert_eq!((budget.api, budget.crl), (448, 0));
    }
}
