//! The signing core: the life of one signing request, the same whichever way it came in. A request is
//! authenticated (API token), authorized (token × policy), its origin verified (CI identity token), its
//! idempotency key claimed, its approval or release group applied, then signed in the HSM and audited before it is
//! answered. Plain Rust types in and out ([`Answer`], [`Refusal`], [`Record`]), so every step is testable without
//! a socket.
//!
//! This folder decides whether something may be signed and signs it. It uses `store/` (persistence) and `hsm`
//! (keys); it must never import `http/` or any HTTP type: routes call the core, never the other way round.

mod algorithm;
mod approval_gate;
mod artifacts;
mod auth;
mod claimed_origin;
mod fast_signing;
mod idempotency;
mod oci_artifact;
pub mod origin;
mod outcome;
mod policies;
mod requests;
pub mod revocation_list;
pub mod revoked;
mod sign_hash;
pub mod state;
pub mod timestamp;
mod votes;

use std::sync::{Arc, RwLock};

pub use artifacts::{ArtifactSubmission, Cancel};
pub use outcome::{refuse, store_failure, Answer, Audited, Kind, Refusal};
pub use votes::store_unavailable;

use crate::store::{Record, Stores};
use state::State;

/// The signing core of one gateway: its policies and tokens, and its stores (which hold the idempotency keys in
/// flight, shared with every replica on the same store).
pub struct Core {
    pub state: Arc<State>,
    pub stores: Stores,
    /// Tokens revoked through another replica; shared by every reloaded configuration.
    pub revoked: Arc<revoked::RevokedTokens>,
    /// Certificates the gateway's CAs revoked; shared by every reloaded configuration.
    pub revoked_certificates: Arc<revoked::RevokedCertificates>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    pub fn new(state: Arc<State>, stores: Stores) -> Self {
        Self {
            state,
            stores,
            revoked: Arc::default(),
            revoked_certificates: Arc::default(),
        }
    }

    /// Writes the audit record of a finished request, with the answer under its idempotency key if it has one,
    /// and only then lets the answer go. No record, no answer: a failed write turns the answer into a refusal.
    pub fn finish<T: Audited>(&self, mut record: Record, result: Result<T, Refusal>) -> Result<T, Refusal> {
        record.completed = crate::store::now();
        match result {
            Ok(mut answer) => {
                record.status = answer.status();
                record.outcome = if answer.refused() {
                    "refused"
                } else if record.status == 202 {
                    "pending"
                } else if record.only_read() {
                    "read"
                } else {
                    "allowed"
                }
                .into();
                let (idempotent, claim) = answer.take_idempotency();
                let completion = answer.take_completion();
                let written = self.stores.audit.append(&record, idempotent);
                // Released only now: a duplicate waiting for this key finds the answer in the store.
                drop(claim);
                if let Err(e) = written {
                    tracing::error!(error = %e, request_id = %record.request_id, "audit write failed; answer withheld");
                    if let Some((held, _)) = completion {
                        self.give_back(&held);
                    }
                    return Err(store_failure());
                }
                // A held request is completed only once the record of its signature is durable.
                if let Some((held, response)) = completion {
                    if let Err(e) = self.stores.approvals.complete(&held, &response) {
                        tracing::error!(error = %e, request_id = %held, "could not mark the approved request completed; answer withheld");
                        self.give_back(&held);
                        return Err(store_failure());
                    }
                }
                Ok(answer)
            }
            Err(refusal) => {
                record.status = refusal.kind.status();
                record.outcome = if record.status >= 500 { "error" } else { "refused" }.into();
                record.error_type =
                    Some(common::protocol::problem_types::short(refusal.problem_type).to_owned());
                record.error_detail = Some(refusal.detail.clone());
                tracing::info!(request_id = %record.request_id, status = record.status, route = %record.route,
                    error = %common::protocol::problem_types::short(refusal.problem_type), "request refused");
                if let Err(e) = self.stores.audit.append(&record, None) {
                    tracing::error!(error = %e, request_id = %record.request_id, "audit write failed");
                    return Err(store_failure());
                }
                Err(refusal)
            }
        }
    }

    /// The same core with another configuration: the stores (and with them the idempotency keys in flight) are
    /// shared, so a reload drops nothing that is under way.
    pub fn reconfigured(&self, state: Arc<State>) -> Self {
        Self {
            state,
            stores: self.stores.clone(),
            revoked: self.revoked.clone(),
            revoked_certificates: self.revoked_certificates.clone(),
        }
    }

    /// Gives a claimed held request back for the next poll to sign (its answer could not be stored).
    fn give_back(&self, request_id: &str) {
        if let Err(e) = self.stores.approvals.unclaim(request_id) {
            tracing::error!(error = %e, request_id, "could not give the approved request back; a restart recovers it");
        }
    }

    /// The approvers' page of a signing request.
    pub fn web_link(&self, request_id: &str) -> String {
        format!("{}/Web/SigningRequests/{request_id}", self.state.public_url)
    }
}
/// The core in force, replaced whole when the configuration is reloaded. A request takes the core of the moment
/// it starts and keeps it to its end, so a reload never changes the rules under a request in flight.
#[derive(Debug)]
pub struct LiveCore {
    current: RwLock<Arc<Core>>,
}

impl LiveCore {
    pub fn new(core: Core) -> Self {
        Self {
            current: RwLock::new(Arc::new(core)),
        }
    }

    pub fn current(&self) -> Arc<Core> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a core with `state` in force.
    pub fn reconfigure(&self, state: Arc<State>) {
        let next = Arc::new(self.current().reconfigured(state));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

#[cfg(test)]
mod tests;
