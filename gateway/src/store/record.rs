//! One audit record: who asked for what, through which route, and what the gateway answered. Written for every
//! request, allowed or refused, before the answer leaves.
//!
//! Most of a record is the caller's choice (the path, the user agent, the project it names, its metadata), and
//! many records are written before the caller is authenticated; so every field is stored within a bound of its
//! own ([`Record::bounded`], applied by every [`super::AuditStore`]): a record's size is never the caller's choice.

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

/// The most bytes a field keeps when stored: room for every value the gateway itself writes, far less than what a
/// request can carry (64 KiB of body, a path as long as the client likes).
mod bound {
    /// Identifiers, names, times, addresses, digests, outcomes.
    pub const SHORT: usize = 256;
    pub const USER_AGENT: usize = 512;
    pub const ROUTE: usize = 2048;
    pub const ERROR_DETAIL: usize = 2048;
    pub const APPROVAL: usize = 1024;
    /// The verified claims of a CI identity token (JSON).
    pub const ORIGIN: usize = 8192;
    /// The client's signing metadata, or what the gateway notes of an artifact or a timestamp (JSON).
    pub const METADATA: usize = 16384;
}

impl Record {
    /// The record as stored: each field cut to its bound, a cut field ending in a marker that says how long it was
    /// (a cut JSON field no longer parses, and readers treat it as absent).
    pub fn bounded(&self) -> Self {
        let mut r = self.clone();
        for (field, max) in [
            (&mut r.request_id, bound::SHORT),
            (&mut r.received, bound::SHORT),
            (&mut r.completed, bound::SHORT),
            (&mut r.organization, bound::SHORT),
            (&mut r.client_address, bound::SHORT),
            (&mut r.method, bound::SHORT),
            (&mut r.route, bound::ROUTE),
            (&mut r.outcome, bound::SHORT),
        ] {
            clip(field, max);
        }
        for (field, max) in [
            (&mut r.project, bound::SHORT),
            (&mut r.policy, bound::SHORT),
            (&mut r.token_id, bound::SHORT),
            (&mut r.user_agent, bound::USER_AGENT),
            (&mut r.algorithm, bound::SHORT),
            (&mut r.hash_algorithm, bound::SHORT),
            (&mut r.digest, bound::SHORT),
            (&mut r.signature_sha256, bound::SHORT),
            (&mut r.certificate_sha256, bound::SHORT),
            (&mut r.metadata, bound::METADATA),
            (&mut r.idempotency_key, bound::SHORT),
            (&mut r.error_type, bound::SHORT),
            (&mut r.error_detail, bound::ERROR_DETAIL),
            (&mut r.origin, bound::ORIGIN),
            (&mut r.release_group, bound::SHORT),
            (&mut r.approval, bound::APPROVAL),
        ] {
            if let Some(text) = field {
                clip(text, max);
            }
        }
        r
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary, ending in a marker with its full length.
fn clip(text: &mut String, max: usize) {
    let length = text.len();
    if length <= max {
        return;
    }
    let marker = format!("…[cut: {length} bytes]");
    let mut keep = max.saturating_sub(marker.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(&marker);
}

impl Record {
    /// Whether the request only read: a GET (a policy lookup, a status poll, a download) that signed nothing. Its
    /// outcome is `read`, so the log does not count it among the signatures (`allowed`).
    pub fn only_read(&self) -> bool {
        self.method == "GET" && self.signature_sha256.is_none() && self.algorithm.is_none()
    }
}

impl Record {
    /// Whether the record is of a signature the gateway made (a hash, an artifact, a keyless certificate, a
    /// timestamp): allowed, and naming what was signed or certified. Exactly these records get a transparency log
    /// leaf, in the record's own transaction; `log verify` holds the log to the same rule.
    pub fn is_signature(&self) -> bool {
        self.outcome == "allowed" && (self.signature_sha256.is_some() || self.certificate_sha256.is_some())
    }

    /// The transparency log leaf of a signature record ([`Record::is_signature`]): the record's signing facts as
    /// canonical JSON (these keys in this order, no white space), so anyone holding the record can recompute the
    /// leaf and its hash. None for a record that is not a signature. Computed from the record as stored
    /// ([`Record::bounded`]).
    pub fn log_entry(&self) -> Option<Vec<u8>> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Entry<'a> {
            kind: &'static str,
            request_id: &'a str,
            time: &'a str,
            organization: &'a str,
            project: Option<&'a str>,
            policy: Option<&'a str>,
            route: &'a str,
            hash_algorithm: Option<&'a str>,
            digest: Option<&'a str>,
            signature_sha256: Option<&'a str>,
            certificate_sha256: Option<&'a str>,
        }
        if !self.is_signature() {
            return None;
        }
        serde_json::to_vec(&Entry {
            kind: "signpath-gateway/signature/v1",
            request_id: &self.request_id,
            time: &self.completed,
            organization: &self.organization,
            project: self.project.as_deref(),
            policy: self.policy.as_deref(),
            route: &self.route,
            hash_algorithm: self.hash_algorithm.as_deref(),
            digest: self.digest.as_deref(),
            signature_sha256: self.signature_sha256.as_deref(),
            certificate_sha256: self.certificate_sha256.as_deref(),
        })
        .ok()
    }
}

/// The current time as the audit log writes it (RFC 3339, UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_longer_than_its_bound_is_cut_on_a_character_boundary_with_a_marker() {
        // A 60 KB path of two-byte characters: no cut may fall inside one.
        let record = Record {
            route: format!("/{}", "é".repeat(30_000)),
            error_detail: Some(format!("there is no route /{}", "é".repeat(30_000))),
            metadata: Some("x".repeat(100_000)),
            user_agent: Some("curl".into()),
            ..Record::default()
        };
        let stored = record.bounded();
        assert!(stored.route.len() <= bound::ROUTE, "{}", stored.route.len());
        assert!(stored.route.starts_with("/éé"));
        assert!(
            stored.route.ends_with("…[cut: 60001 bytes]"),
            "{}",
            &stored.route[2000..]
        );
        let detail = stored.error_detail.as_deref().unwrap_or_default();
        assert!(detail.len() <= bound::ERROR_DETAIL && detail.starts_with("there is no route /é"));
        assert!(stored.metadata.as_deref().unwrap_or_default().len() <= bound::METADATA);
        assert_eq!(
            stored.user_agent.as_deref(),
            Some("curl"),
            "a short field is kept whole"
        );
    }

    #[test]
    fn a_field_within_its_bound_is_kept_whole() {
        let mut text = "a".repeat(bound::ROUTE);
        clip(&mut text, bound::ROUTE);
        assert_eq!(text.len(), bound::ROUTE);
        assert!(!text.contains('…'));
    }
}
