//! One audit record: who asked for what, through which route, and what the gateway answered. Written for every
//! request, allowed or refused, before the answer leaves.

use serde::Serialize;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Record {
    pub request_id: String,
    pub received: String,
    pub completed: String,
    pub organization: String,
    pub project: Option<String>,
    pub policy: Option<String>,
    pub token_id: Option<String>,
    pub client_address: String,
    pub user_agent: Option<String>,
    pub method: String,
    pub route: String,
    pub algorithm: Option<String>,
    pub hash_algorithm: Option<String>,
    pub digest: Option<String>,
    pub signature_sha256: Option<String>,
    pub certificate_sha256: Option<String>,
    pub metadata: Option<String>,
    pub idempotency_key: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub error_type: Option<String>,
    pub error_detail: Option<String>,
    /// The verified claims of the CI identity token, for policies that check where requests come from.
    pub origin: Option<String>,
    pub release_group: Option<String>,
    /// Who approved, or which approved request of the release group covered this one.
    pub approval: Option<String>,
}

impl Record {
    /// Whether the request only read: a GET (a policy lookup, a status poll, a download) that signed nothing. Its
    /// outcome is `read`, so the log does not count it among the signatures (`allowed`).
    pub fn only_read(&self) -> bool {
        self.method == "GET" && self.signature_sha256.is_none() && self.algorithm.is_none()
    }
}

/// The current time as the audit log writes it (RFC 3339, UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
