//! Request revocations: what one signing request, one release group, or a policy after a moment signed, withdrawn
//! without revoking the policy's key (`signpath-gateway revoke --request | --release-group | --policy
//! --signed-after`). Kept in the gateway's database (SQLite, or PostgreSQL shared by replicas), one row per
//! revoked scope, so revoking the same thing twice keeps the first revocation. The audit log that shares the
//! database answers which signatures a revocation covers. The rule of what a revocation covers is
//! `common::revocation_list`'s; this file only stores.

use common::revocation_list::{parse_time, Revocation, Scope};

use super::StoreError;

/// A signing request that signed, as the audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub request_id: String,
    /// The client's id of the request: its Idempotency-Key.
    pub client_request_id: Option<String>,
    /// `Project/Policy`.
    pub policy: String,
    pub release_group: Option<String>,
    /// When the gateway answered (RFC 3339).
    pub completed: String,
    pub signature_sha256: Option<String>,
}

pub trait RequestRevocationStore: Send + Sync {
    /// Records `revocation`; false (and the first revocation kept) if its scope was revoked before.
    fn revoke(&self, revocation: &Revocation) -> Result<bool, StoreError>;

    /// Every revocation, oldest first.
    fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;

    /// The signing requests that signed whose request id, or client request id, is `id`.
    fn signed_requests(&self, id: &str) -> Result<Vec<SignedRequest>, StoreError>;

    /// The requests that signed and that `scope` may cover (those of the request, the release group, the policy).
    fn candidates(&self, scope: &Scope) -> Result<Vec<SignedRequest>, StoreError>;
}

/// The SQL condition and its two parameters selecting the candidates of `scope` among the audit's signed
/// requests (placeholders `{1}` and `{2}`, which each store spells its own way).
pub(crate) fn candidate_condition(scope: &Scope) -> (&'static str, String, String) {
    match scope {
        Scope::Request {
            request_id,
            client_request_id,
        } => (
            "(request_id = {1} OR idempotency_key = {2})",
            request_id.clone(),
            client_request_id.clone().unwrap_or_else(|| request_id.clone()),
        ),
        Scope::ReleaseGroup { release_group } => (
            "(release_group = {1} OR release_group = {2})",
            release_group.clone(),
            release_group.clone(),
        ),
        Scope::PolicySignedAfter { policy, .. } => {
            let (project, slug) = policy.split_once('/').unwrap_or((policy, ""));
            (
                "(project = {1} AND policy = {2})",
                project.to_owned(),
                slug.to_owned(),
            )
        }
    }
}

/// The condition that makes an audit record a signing request that signed.
pub(crate) const SIGNED: &str = "outcome = 'allowed' AND signature_sha256 IS NOT NULL";

/// The audit columns a [`SignedRequest`] is read from, in this order.
pub(crate) const SIGNED_COLUMNS: &str =
    "request_id, idempotency_key, project, policy, release_group, completed, signature_sha256";

/// Of `candidates`, those `scope` covers: a policy's revocation only what it signed after its moment.
pub fn covered(scope: &Scope, candidates: Vec<SignedRequest>) -> Vec<SignedRequest> {
    match scope {
        Scope::PolicySignedAfter { signed_after, .. } => {
            let Ok(after) = parse_time(signed_after) else {
                return candidates;
            };
            candidates
                .into_iter()
                .filter(|c| parse_time(&c.completed).map_or(true, |t| t > after))
                .collect()
        }
        _ => candidates,
    }
}
