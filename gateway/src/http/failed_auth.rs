//! Failed authentications per client address. After `max_failed_authentications` answers of 401 to one address
//! within `failed_authentication_window_seconds`, every request from that address is answered 429 with
//! `Retry-After` for `failed_authentication_block_seconds`, before its credentials are looked at. The audit log
//! stays bounded under a flood: the failures up to the limit have their records as any request does, then one
//! record says the address is blocked, and one more, when the block ends, how many requests it refused.
//!
//! Written here rather than with a rate-limiting crate (governor, tower_governor): those count requests and
//! consume capacity when asked, while this counts only failed answers, must ask "is this address blocked?" without
//! counting, and must report how many requests a block refused.
//!
//! This file owns the counting and the layer; the records of blocks are written by the signing core
//! (`Core::conclude`), as every audit record is, so their outcome, status and error type are the core's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::call::Peer;
use super::render::problem;
use crate::config::ServerConfig;
use crate::signing::{refuse, Answer, AuditOutcome, LiveCore, Reason, Refusal};
use crate::store::{now, Record};

/// The most addresses tracked at once; beyond it, new addresses are not limited (and a warning is logged) until
/// old windows expire. Bounds the memory a flood from many addresses can take.
const MAX_TRACKED: usize = 65_536;

/// Where the limits come from: `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub block: Duration,
}

impl Limits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            max_failures: server.max_failed_authentications,
            window: Duration::from_secs(server.failed_authentication_window_seconds),
            block: Duration::from_secs(server.failed_authentication_block_seconds),
        }
    }
}

/// The addresses that failed to authenticate recently.
#[derive(Debug)]
pub struct FailedAuthentications {
    limits: Limits,
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Debug)]
struct Client {
    window_started: Instant,
    failures: u32,
    blocked: Option<Block>,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    until: Instant,
    refused: u64,
}

/// What [`FailedAuthentications::check`] decides for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Pass,
    /// Blocked: answer 429 with this many seconds in `Retry-After`.
    Refuse {
        retry_after: u64,
    },
    /// Pass, and the address's last block has ended having refused this many requests (to audit).
    BlockEnded {
        refused: u64,
    },
}

/// Which client a request counts for: the address, or for IPv6 its /64, which one host usually holds whole.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

impl FailedAuthentications {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before the request is served: whether `address` is blocked.
    pub fn check(&self, address: IpAddr, at: Instant) -> Check {
        let mut clients = self.clients();
        let Some(client) = clients.get_mut(&client_key(address)) else {
            return Check::Pass;
        };
        match client.blocked {
            Some(ref mut block) if at < block.until => {
                block.refused += 1;
                let left = block.until.saturating_duration_since(at);
                Check::Refuse {
                    retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                }
            }
            Some(block) => {
                client.blocked = None;
                client.failures = 0;
                client.window_started = at;
                Check::BlockEnded {
                    refused: block.refused,
                }
            }
            None => Check::Pass,
        }
    }

    /// After a 401 to `address`: counts it; `Some(failures)` when this failure starts a block.
    pub fn failed(&self, address: IpAddr, at: Instant) -> Option<u32> {
        if self.limits.max_failures == 0 {
            return None;
        }
        let mut clients = self.clients();
        let key = client_key(address);
        if !clients.contains_key(&key) && clients.len() >= MAX_TRACKED {
            let window = self.limits.window;
            clients.retain(|_, c| {
                c.blocked.is_some_and(|b| at < b.until) || at.duration_since(c.window_started) < window
            });
            if clients.len() >= MAX_TRACKED {
                tracing::warn!(
                    "too many clients failing to authenticate to track another; {address} is not limited"
                );
                return None;
            }
        }
        let client = clients.entry(key).or_insert(Client {
            window_started: at,
            failures: 0,
            blocked: None,
        });
        if client.blocked.is_some() {
            // A request that passed `check` just before the block began.
            return None;
        }
        if at.duration_since(client.window_started) >= self.limits.window {
            client.window_started = at;
            client.failures = 0;
        }
        client.failures += 1;
        (client.failures >= self.limits.max_failures).then(|| {
            client.blocked = Some(Block {
                until: at + self.limits.block,
                refused: 0,
            });
            client.failures
        })
    }

    /// The block of every address whose block is over and that has not come back since: (address, refused).
    pub fn take_ended(&self, at: Instant) -> Vec<(IpAddr, u64)> {
        let mut ended = Vec::new();
        self.clients().retain(|address, client| match client.blocked {
            Some(block) if at >= block.until => {
                ended.push((*address, block.refused));
                false
            }
            Some(_) => true,
            None => at.duration_since(client.window_started) < self.limits.window,
        });
        ended
    }
}

/// The layer's state: the counts, and the core that audits blocks.
#[derive(Debug, Clone)]
pub struct Guard {
    pub failures: Arc<FailedAuthentications>,
    pub live: Arc<LiveCore>,
}

/// The middleware: refuses blocked addresses, counts 401s, audits the start and end of each block.
pub async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(peer) = request.extensions().get::<Peer>().map(|p| p.0) else {
        return next.run(request).await;
    };
    // Kept as they are (cheap clones); written out only for the audit record of a block.
    let (uri, method) = (request.uri().clone(), request.method().clone());
    match guard.failures.check(peer.ip(), Instant::now()) {
        Check::Refuse { retry_after } => {
            let refusal = blocked().retry_after(retry_after);
            return problem(&refusal, &uuid::Uuid::new_v4().to_string());
        }
        Check::BlockEnded { refused } => audit_block_end(&guard, peer.ip(), refused).await,
        Check::Pass => {}
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Some(failures) = guard.failures.failed(peer.ip(), Instant::now()) {
            let limits = guard.failures.limits;
            let detail = format!(
                "{failures} failed authentications within {} s: requests from this address are refused for {} s",
                limits.window.as_secs(),
                limits.block.as_secs()
            );
            tracing::warn!(client = %peer, "{detail}");
            let refusal = Refusal { detail, ..blocked() };
            audit(&guard, record(peer, method.as_str(), uri.path()), refusal).await;
        }
    }
    response
}

/// Audits the blocks that ended without their address coming back; run every few seconds while serving.
pub async fn audit_ended_blocks(guard: Guard) {
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticks.tick().await;
        for (address, refused) in guard.failures.take_ended(Instant::now()) {
            audit_block_end(&guard, address, refused).await;
        }
    }
}

async fn audit_block_end(guard: &Guard, address: IpAddr, refused: u64) {
    let refusal = Refusal {
        detail: format!("the block on this address ended; it refused {refused} requests"),
        ..blocked()
    };
    audit(guard, record(SocketAddr::new(address, 0), "-", "-"), refusal).await;
}

/// What a blocked address is told, and what the records of its block say (with their own detail).
fn blocked() -> Refusal {
    refuse(
        Reason::Throttled,
        "too many failed authentications from this address; try again later with a valid API token",
    )
}

/// The record of a block: who and what; the core fills in the outcome from the refusal.
fn record(peer: SocketAddr, method: &str, route: &str) -> Record {
    Record {
        request_id: common::protocol::new_request_id(),
        received: now(),
        client_address: peer.to_string(),
        method: method.to_owned(),
        route: route.to_owned(),
        ..Record::default()
    }
}

/// Audits a block through the core, as every record is audited.
async fn audit(guard: &Guard, record: Record, refusal: Refusal) {
    let core = guard.live.current();
    let concluded =
        tokio::task::spawn_blocking(move || core.conclude::<Answer>(record, Err(refusal)).1).await;
    if !matches!(concluded, Ok(AuditOutcome::Refused)) {
        tracing::error!("could not audit a block of failed authentications");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_failures: 3,
            window: Duration::from_secs(60),
            block: Duration::from_secs(30),
        }
    }

    #[test]
    fn an_address_is_blocked_after_the_limit_and_released_after_the_block() {
        let failures = FailedAuthentications::new(limits());
        let (attacker, other): (IpAddr, IpAddr) =
            ("192.0.2.7".parse().unwrap(), "192.0.2.8".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(failures.failed(attacker, t0), None);
        assert_eq!(failures.failed(attacker, t0), None);
        assert_eq!(failures.check(attacker, t0), Check::Pass);
        assert_eq!(failures.failed(attacker, t0), Some(3));
        assert_eq!(
            failures.check(attacker, t0 + Duration::from_millis(500)),
            Check::Refuse { retry_after: 30 }
        );
        assert_eq!(
            failures.check(attacker, t0 + Duration::from_secs(29)),
            Check::Refuse { retry_after: 1 }
        );
        assert_eq!(
            failures.check(other, t0),
            Check::Pass,
            "another address is not blocked"
        );
        assert_eq!(
            failures.check(attacker, t0 + Duration::from_secs(30)),
            Check::BlockEnded { refused: 2 }
        );
        assert_eq!(
            failures.check(attacker, t0 + Duration::from_secs(31)),
            Check::Pass
        );
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let failures = FailedAuthentications::new(limits());
        let address: IpAddr = "2001:db8::1".parse().unwrap();
        let t0 = Instant::now();
        failures.failed(address, t0);
        failures.failed(address, t0);
        assert_eq!(failures.failed(address, t0 + Duration::from_secs(61)), None);
        // The same /64 is the same client.
        let neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        failures.failed(neighbour, t0 + Duration::from_secs(61));
        assert_eq!(failures.failed(neighbour, t0 + Duration::from_secs(62)), Some(3));
    }

    #[test]
    fn ended_blocks_are_reported_once() {
        let failures = FailedAuthentications::new(limits());
        let address: IpAddr = "198.51.100.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            failures.failed(address, t0);
        }
        failures.check(address, t0);
        assert!(failures.take_ended(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            failures.take_ended(t0 + Duration::from_secs(30)),
            vec![(address, 1)]
        );
        assert!(failures.take_ended(t0 + Duration::from_secs(31)).is_empty());
    }
}
