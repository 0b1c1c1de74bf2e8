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
mod artifact_zip;
mod artifacts;
mod auth;
mod claimed_origin;
mod fast_signing;
mod github_api;
pub mod github_artifact;
mod github_origin;
mod idempotency;
pub mod keyless;
mod keyless_run;
mod oci_artifact;
pub mod origin;
mod origin_check;
mod outcome;
mod policies;
mod refusal;
mod requests;
mod resubmit;
pub mod revocation_list;
pub mod revoked;
mod sign_hash;
pub mod state;
pub mod timestamp;
mod votes;

use std::sync::{Arc, RwLock};

pub use artifacts::{ArtifactSubmission, Cancel};
pub use outcome::{Answer, AuditOutcome, Audited};
pub use refusal::{refuse, store_failure, store_unavailable, Reason, Refusal};
pub use resubmit::Resubmission;
pub use votes::vote_refusal;

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
    pub fn finish<T: Audited>(&self, record: Record, result: Result<T, Refusal>) -> Result<T, Refusal> {
        self.conclude(record, result).0
    }

    /// [`Core::finish`], and the outcome it audited, which the request's log line repeats: [`conclude`] with this
    /// core's stores.
    pub fn conclude<T: Audited>(
        &self,
        record: Record,
        result: Result<T, Refusal>,
    ) -> (Result<T, Refusal>, AuditOutcome) {
        conclude(&self.stores, record, result)
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

    /// The approvers' page of a signing request.
    pub fn web_link(&self, request_id: &str) -> String {
        format!("{}/Web/SigningRequests/{request_id}", self.state.public_url)
    }
}

/// Writes the audit record of a finished request, and decides its outcome, which the request's log line repeats.
/// Every audit record goes through here: the gateway's requests ([`Core::conclude`]), the records that answer no
/// request of their own (a block of failed authentications), and the command line's votes (which have the stores
/// but no HSM, so no core). Its outcome, status and error type are decided in one place. A record that could not
/// be written comes back as [`AuditOutcome::Error`] with a [`store_failure`].
pub fn conclude<T: Audited>(
    stores: &Stores,
    mut record: Record,
    result: Result<T, Refusal>,
) -> (Result<T, Refusal>, AuditOutcome) {
    record.completed = crate::store::now();
    match result {
        Ok(mut answer) => {
            let outcome = AuditOutcome::of_answer(&answer, &record);
            record.status = answer.status();
            record.outcome = outcome.as_str().into();
            let (idempotent, claim) = answer.take_idempotency();
            let completion = answer.take_completion();
            let written = stores.audit.append(&record, idempotent);
            // Released only now: a duplicate waiting for this key finds the answer in the store.
            drop(claim);
            if let Err(e) = written {
                tracing::error!(error = %e, request_id = %record.request_id, "audit write failed; answer withheld");
                if let Some((held, _)) = completion {
                    give_back(stores, &held);
                }
                return (Err(store_failure()), AuditOutcome::Error);
            }
            // A held request is completed only once the record of its signature is durable.
            if let Some((held, response)) = completion {
                if let Err(e) = stores.approvals.complete(&held, &response) {
                    tracing::error!(error = %e, request_id = %held, "could not mark the approved request completed; answer withheld");
                    give_back(stores, &held);
                    return (Err(store_failure()), AuditOutcome::Error);
                }
            }
            (Ok(answer), outcome)
        }
        Err(refusal) => {
            let outcome = AuditOutcome::of_refusal(&refusal);
            record.status = refusal.status();
            record.outcome = outcome.as_str().into();
            record.error_type =
                Some(common::protocol::problem_types::short(refusal.problem_type()).to_owned());
            record.error_detail = Some(refusal.detail.clone());
            tracing::info!(request_id = %record.request_id, status = record.status, route = %record.route,
                    error = %common::protocol::problem_types::short(refusal.problem_type()), "request refused");
            if let Err(e) = stores.audit.append(&record, None) {
                tracing::error!(error = %e, request_id = %record.request_id, "audit write failed");
                return (Err(store_failure()), AuditOutcome::Error);
            }
            (Err(refusal), outcome)
        }
    }
}

/// Gives a claimed held request back for the next poll to sign (its answer could not be stored).
fn give_back(stores: &Stores, request_id: &str) {
    if let Err(e) = stores.approvals.unclaim(request_id) {
        tracing::error!(error = %e, request_id, "could not give the approved request back; a restart recovers it");
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
