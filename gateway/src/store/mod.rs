//! Stores: everything the gateway persists, behind small traits so that the signing core never names a database.
//! The audit log (with the idempotency records that share its transactions) is one [`AuditStore`]; signing requests
//! held for approval, their votes and release-group uses are one [`ApprovalStore`]. SQLite (`sqlite/`) is the
//! embedded implementation; PostgreSQL (`postgres/`) the shared one that lets replicas act as one gateway, and
//! the only one with a [`RevocationStore`] (one gateway on SQLite reads revocations from its own gateway.toml) and
//! with [`artifacts::SharedArtifacts`] (one gateway on SQLite keeps artifacts in its own directory).
//! Both keep request revocations ([`RequestRevocationStore`]).
//!
//! This folder owns persistence only. It must never import `signing/`, `http/` or the HSM: it stores what it is
//! given and answers what it is asked, and knows nothing of tokens, policies or HTTP.

pub mod artifacts;
mod held;
pub mod log;
mod metered;
pub mod postgres;
mod record;
pub mod request_revocations;
pub mod rules;
pub mod sqlite;

/// The approval rules both stores keep, run against each.
#[cfg(test)]
mod approvals_tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use held::{Held, HeldCount, HeldQuery, NewHeld, Stage, Status, VoteError};
pub use record::{now, Record};
pub use request_revocations::RequestRevocationStore;

use crate::config::ApprovalConfig;

/// A store that could not do what was asked (the database is unreachable, full, corrupt, ...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// A signing response kept under its idempotency key, written in the same transaction as its audit record.
#[derive(Debug, Clone)]
pub struct IdempotentAnswer {
    pub token_id: String,
    pub key: String,
    pub body_sha256: String,
    pub response: String,
}

/// An answer found under an idempotency key: the SHA-256 of the request body it answered, and the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub body_sha256: String,
    pub response: String,
}

/// The audit log and the idempotency records.
pub trait AuditStore: Send + Sync {
    /// Commits one record durably (and the idempotent answer, if any, in the same transaction), each of its fields
    /// within its bound ([`Record::bounded`]). The caller answers its client only after this returned Ok: no
    /// record, no answer.
    fn append(&self, record: &Record, answer: Option<IdempotentAnswer>) -> Result<(), StoreError>;

    /// The answer stored for a key of this token, if younger than 24 hours.
    fn idempotent(&self, token_id: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError>;

    /// Claims a key of this token for `holder` (a request id) for `lease`, shared by every gateway on the store:
    /// true if the key was free or its claim's lease had run out (its holder died), false while another holder's
    /// claim stands; a holder claiming its own key again extends the lease. Of two gateways claiming at once
    /// exactly one gets true (PostgreSQL: one statement; SQLite, whose file one process serves: that process's
    /// memory).
    fn claim_key(&self, token_id: &str, key: &str, holder: &str, lease: Duration)
        -> Result<bool, StoreError>;

    /// Gives back `holder`'s claim on the key; a claim taken over by another holder since is left alone.
    fn release_key(&self, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError>;

    /// A completed signing request's stored response, for the polling routes.
    fn signing_request(&self, token_id: &str, request_id: &str) -> Result<Option<String>, StoreError>;

    /// The newest `limit` records (all if None), oldest first.
    fn records(&self, limit: Option<u32>) -> Result<Vec<Record>, StoreError>;
}

/// Signing requests that wait for approval, the approvers' votes, and release groups. Every change is atomic, so
/// two gateways (or the gateway and `signpath-gateway approve`) never interleave a read and a write of a request.
///
/// Whose approvals count is decided against the policy's approval as configured when asked (`approval`), never
/// against the approvers named when the request was held: an approver taken out of a policy loses their votes at
/// once (`rules`).
pub trait ApprovalStore: Send + Sync {
    fn hold(&self, held: &NewHeld<'_>) -> Result<(), StoreError>;

    fn get(&self, request_id: &str) -> Result<Option<Held>, StoreError>;

    /// The held requests `query` selects, newest first.
    fn list(&self, query: &HeldQuery<'_>) -> Result<Vec<Held>, StoreError>;

    /// How many held requests wait and how many are decided, per policy (of `policies` only, if given).
    fn count(&self, policies: Option<&[(String, String)]>) -> Result<Vec<HeldCount>, StoreError>;

    /// Records `approver`'s approval or denial under the request's policy's approval as configured now
    /// (`approval`): only an approver it names may vote, and only the approvals of approvers it names count
    /// towards its `required`. One denial decides.
    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
        approval: &ApprovalConfig,
    ) -> Result<Held, VoteError>;

    /// Takes an approved request for signing; false when it is not (or no longer) approved.
    fn claim(&self, request_id: &str) -> Result<bool, StoreError>;

    /// Puts an approved request that has not been taken for signing back to waiting for approval (its approvals
    /// no longer meet its policy's approval: an approver was removed). False if it was not `Approved`.
    fn reopen(&self, request_id: &str) -> Result<bool, StoreError>;

    /// At start: requests left `Signing` by a gateway that died while signing go back to `Approved`. Their
    /// signature was never handed out (a signature is stored before it is answered, and a stored one is
    /// `Completed`), so the next poll signs them. Returns how many.
    fn recover(&self) -> Result<usize, StoreError>;

    /// Gives a claimed request back (its signing failed), for the next poll to try again.
    fn unclaim(&self, request_id: &str) -> Result<(), StoreError>;

    /// Stores the signed answer of a claimed request and marks it `Completed`.
    fn complete(&self, request_id: &str, response: &str) -> Result<(), StoreError>;

    /// If an approved request of release group `group` on this policy, submitted with the same token and the same
    /// verified CI identity (`binding`), still covers the request's signatures (`rules::group_covers` under
    /// `approval` as configured now), counts them against it and returns the covering request's id.
    fn use_group(
        &self,
        group: &GroupUse<'_>,
        approval: &ApprovalConfig,
    ) -> Result<Option<String>, StoreError>;
}

/// Tokens revoked through any gateway sharing the store, for the others whose gateway.toml still names them; and
/// certificates the gateway's CAs revoked, for the replicas on hosts whose `[pki] revocations` file was not the one
/// `revoke` wrote.
pub trait RevocationStore: Send + Sync {
    fn revoke(&self, token_id: &str) -> Result<(), StoreError>;

    /// The ids of every revoked token.
    fn revoked(&self) -> Result<Vec<String>, StoreError>;

    /// Records a revoked certificate (once per issuer and serial).
    fn revoke_certificate(&self, revoked: &crate::pki::revocations::Revoked) -> Result<(), StoreError>;

    /// Every revoked certificate.
    fn revoked_certificates(&self) -> Result<Vec<crate::pki::revocations::Revoked>, StoreError>;
}

/// A request that asks to be covered by its release group's approval.
#[derive(Debug, Clone, Copy)]
pub struct GroupUse<'a> {
    pub project: &'a str,
    pub policy: &'a str,
    pub group: &'a str,
    pub token_id: &'a str,
    pub binding: Option<&'a str>,
    pub request_id: &'a str,
    /// The signatures the request makes: 1 for a hash, images × signature formats for an artifact.
    pub signatures: u32,
}

/// The stores of one gateway.
#[derive(Clone)]
pub struct Stores {
    pub audit: Arc<dyn AuditStore>,
    pub approvals: Arc<dyn ApprovalStore>,
    /// Shared revocations, where the store is shared (PostgreSQL).
    pub revocations: Option<Arc<dyn RevocationStore>>,
    /// The artifacts of file-based requests, where the store is shared (PostgreSQL); else in `[artifacts]
    /// directory` (`artifacts::Artifacts` decides).
    pub artifacts: Option<Arc<dyn artifacts::SharedArtifacts>>,
    /// Revoked signing requests, release groups and policies after a moment.
    pub request_revocations: Arc<dyn RequestRevocationStore>,
    /// The transparency log, whose leaves the audit store writes with their records.
    pub log: Arc<dyn log::LogStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

impl Stores {
    /// The SQLite stores in one database file.
    pub fn sqlite(path: &Path) -> Result<Self, StoreError> {
        let audit = sqlite::SqliteAudit::open(path)?;
        let log = sqlite::SqliteLog::open(path, audit.writer())?;
        Ok(Self {
            audit: Arc::new(audit),
            approvals: Arc::new(sqlite::SqliteApprovals::open(path)?),
            revocations: None,
            artifacts: None,
            request_revocations: Arc::new(sqlite::SqliteRequestRevocations::open(path)?),
            log: Arc::new(log),
        })
    }

    /// The stores `audit_db` names: a `postgres://` URL (its migrations applied first), or else a SQLite file
    /// relative to `base`, the configuration's directory.
    pub fn open(base: &Path, audit_db: &Path) -> Result<Self, StoreError> {
        match audit_db.to_str().filter(|url| postgres::is_postgres(url)) {
            Some(url) => {
                let db = postgres::Database::connect(url)?;
                postgres::migrate(&db)?;
                Ok(Self::postgres(db))
            }
            None => Self::sqlite(&crate::config::resolve(base, audit_db)),
        }
    }

    /// The PostgreSQL stores of one database, shared with every replica that names it.
    pub fn postgres(db: postgres::Database) -> Self {
        Self {
            audit: Arc::new(postgres::PgAudit::new(db.clone())),
            approvals: Arc::new(postgres::PgApprovals::new(db.clone())),
            revocations: Some(Arc::new(postgres::PgRevocations::new(db.clone()))),
            artifacts: Some(Arc::new(postgres::PgArtifacts::new(db.clone()))),
            request_revocations: Arc::new(postgres::PgRequestRevocations::new(db.clone())),
            log: Arc::new(postgres::PgLog::new(db)),
        }
    }
}
