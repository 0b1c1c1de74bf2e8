//! Stores that report to the metrics: every failed operation counts as a database error, and every audit commit's
//! time is observed. A wrapper around any implementation of the traits (SQLite today, another database later), so
//! the implementations stay free of metrics and the signing core does not know it is measured.
//!
//! Like the rest of `store/`, this must never import `signing/`, `http/` or the HSM; it imports only the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    ApprovalStore, AuditStore, GroupUse, Held, HeldCount, HeldQuery, IdempotentAnswer, NewHeld, Record,
    StoreError, StoredAnswer, Stores, VoteError,
};
use crate::config::ApprovalConfig;
use crate::metrics::Metrics;

impl Stores {
    /// The same stores, measured into `metrics`.
    pub fn metered(self, metrics: Arc<Metrics>) -> Self {
        Self {
            audit: Arc::new(MeteredAudit {
                inner: self.audit,
                metrics: metrics.clone(),
            }),
            approvals: Arc::new(MeteredApprovals {
                inner: self.approvals,
                metrics,
            }),
            revocations: self.revocations,
            artifacts: self.artifacts,
            request_revocations: self.request_revocations,
            log: self.log,
        }
    }
}

struct MeteredAudit {
    inner: Arc<dyn AuditStore>,
    metrics: Arc<Metrics>,
}

struct MeteredApprovals {
    inner: Arc<dyn ApprovalStore>,
    metrics: Arc<Metrics>,
}

/// Counts a failed store operation.
fn counted<T>(metrics: &Metrics, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if result.is_err() {
        metrics.database_error();
    }
    result
}

impl AuditStore for MeteredAudit {
    fn append(&self, record: &Record, answer: Option<IdempotentAnswer>) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.append(record, answer);
        self.metrics.audit_commit(started.elapsed());
        counted(&self.metrics, result)
    }

    fn idempotent(&self, token_id: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
        counted(&self.metrics, self.inner.idempotent(token_id, key))
    }

    fn claim_key(
        &self,
        token_id: &str,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        counted(&self.metrics, self.inner.claim_key(token_id, key, holder, lease))
    }

    fn release_key(&self, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError> {
        counted(&self.metrics, self.inner.release_key(token_id, key, holder))
    }

    fn signing_request(&self, token_id: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        counted(&self.metrics, self.inner.signing_request(token_id, request_id))
    }

    fn records(&self, limit: Option<u32>) -> Result<Vec<Record>, StoreError> {
        counted(&self.metrics, self.inner.records(limit))
    }
}

impl ApprovalStore for MeteredApprovals {
    fn hold(&self, held: &NewHeld<'_>) -> Result<(), StoreError> {
        counted(&self.metrics, self.inner.hold(held))
    }

    fn get(&self, request_id: &str) -> Result<Option<Held>, StoreError> {
        counted(&self.metrics, self.inner.get(request_id))
    }

    fn list(&self, query: &HeldQuery<'_>) -> Result<Vec<Held>, StoreError> {
        counted(&self.metrics, self.inner.list(query))
    }

    fn count(&self, policies: Option<&[(String, String)]>) -> Result<Vec<HeldCount>, StoreError> {
        counted(&self.metrics, self.inner.count(policies))
    }

    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
        approval: &ApprovalConfig,
    ) -> Result<Held, VoteError> {
        let result = self.inner.vote(request_id, approver, approve, reason, approval);
        if let Err(VoteError::Store(_)) = &result {
            self.metrics.database_error();
        }
        result
    }

    fn claim(&self, request_id: &str) -> Result<bool, StoreError> {
        counted(&self.metrics, self.inner.claim(request_id))
    }

    fn reopen(&self, request_id: &str) -> Result<bool, StoreError> {
        counted(&self.metrics, self.inner.reopen(request_id))
    }

    fn recover(&self) -> Result<usize, StoreError> {
        counted(&self.metrics, self.inner.recover())
    }

    fn unclaim(&self, request_id: &str) -> Result<(), StoreError> {
        counted(&self.metrics, self.inner.unclaim(request_id))
    }

    fn complete(&self, request_id: &str, response: &str) -> Result<(), StoreError> {
        counted(&self.metrics, self.inner.complete(request_id, response))
    }

    fn use_group(
        &self,
        group: &GroupUse<'_>,
        approval: &ApprovalConfig,
    ) -> Result<Option<String>, StoreError> {
        counted(&self.metrics, self.inner.use_group(group, approval))
    }
}
