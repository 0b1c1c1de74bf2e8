//! Why a request is not done, in the domain's words ([`Reason`]), and the one table that says how each reason
//! reaches the caller: its HTTP status and SignPath problem type (`docs/gateway-api.md`, "Errors"). A call site
//! names the reason and says what to fix; it never picks a status or a problem type, so two call sites with the
//! same reason cannot answer differently. The table is the gateway's counterpart of the PKCS#11 module's
//! `impl From<Error> for CK_RV`. Plain data: the status is a number, and `http/render.rs` frames it.

use common::protocol::problem_types as pt;

/// Declares [`Reason`] and its table in one list, so a reason cannot exist without its status and problem type,
/// and [`Reason::ALL`] cannot miss one.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $status:literal, $problem_type:ident;)*) => {
        /// Why a request is refused. Each has one HTTP status and one SignPath problem type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, for the tests of the table.
            #[cfg(test)]
            pub const ALL: &[Self] = &[$(Self::$name),*];

            /// The HTTP status the caller sees (and the audit record keeps).
            pub fn status(self) -> u16 {
                match self {
                    $(Self::$name => $status,)*
                }
            }

            /// SignPath's stable problem type, on which clients branch.
            pub fn problem_type(self) -> &'static str {
                match self {
                    $(Self::$name => pt::$problem_type,)*
                }
            }
        }
    };
}

reasons! {
    // Who is asking.
    /// No API token, not a Bearer token, an unknown or revoked token; no approver token or session on the web pages.
    Unauthenticated => 401, UNAUTHENTICATED;
    /// The organization in the route is not the gateway's.
    ForeignOrganization => 403, FORBIDDEN;
    /// Too many failed authentications or timestamp queries from one address.
    Throttled => 429, THROTTLED;

    // What the caller may do.
    /// No signing policy of that project and slug, or of that `SigningPolicyId`.
    UnknownPolicy => 404, POLICY_NOT_FOUND;
    /// The policy's project has no artifact configuration of that slug.
    UnknownArtifactConfiguration => 404, POLICY_NOT_FOUND;
    /// The token is not a submitter of the policy.
    TokenNotAllowed => 403, FORBIDDEN;
    /// The policy's certificate, or a CA certificate above it, is revoked.
    CertificateRevoked => 403, CERTIFICATE_REVOKED;
    /// The policy verifies origin and the identity token is missing or invalid, or the claimed origin disagrees.
    OriginRejected => 403, ORIGIN_REJECTED;
    /// A verified identity token that no `[keyless]` rule admits (its issuer, repository, ref or workflow).
    IdentityNotAllowed => 403, ORIGIN_REJECTED;
    /// A keyless certificate request of a CI run that waits for the approval its `[keyless]` rule requires (audited
    /// as pending, as a held signing request is).
    ApprovalRequired => 403, FORBIDDEN;
    /// A keyless certificate request of a CI run an approver denied.
    RunDenied => 403, REQUEST_DENIED;
    /// The approver is not (or no longer) an approver of the request's policy or of this gateway.
    NotAnApprover => 403, FORBIDDEN;
    /// The approver owns the token that submitted the request.
    OwnRequest => 403, FORBIDDEN;
    /// A form post without the session's CSRF token, or from a page of another site.
    CrossSiteForm => 403, FORBIDDEN;

    // What the caller sent.
    /// Not the request the route takes: not JSON, missing or unknown fields, an unreadable form or header.
    MalformedRequest => 400, MALFORMED_REQUEST;
    /// A body of another media type than the route takes.
    UnsupportedMediaType => 415, MALFORMED_REQUEST;
    /// A body, form part or upload over the gateway's limit.
    BodyTooLarge => 413, MALFORMED_REQUEST;
    /// A hash that is not base64, or not as long as its algorithm's digests.
    InvalidHash => 400, INVALID_HASH;
    /// A keyless certificate request whose proof of possession is not the key's signature over the token's subject.
    ProofOfPossessionFailed => 400, INVALID_PROOF_OF_POSSESSION;
    /// A signature algorithm, format or hash the key cannot sign with, or that the gateway does not know.
    UnsupportedAlgorithm => 400, UNSUPPORTED_ALGORITHM;
    /// A hash algorithm the policy does not sign (SHA-1 unless the policy lists it).
    HashAlgorithmNotAllowed => 400, UNSUPPORTED_ALGORITHM;
    /// An upload that is neither an OCI image layout tarball the gateway can sign nor a valid `payload.json`.
    InvalidArtifact => 422, INVALID_ARTIFACT;
    /// An OCI layout that names more than the gateway signs in one request.
    ArtifactTooLarge => 400, INVALID_ARTIFACT;
    /// Another request with this `Idempotency-Key` is still being processed, or took the key over.
    IdempotencyKeyInFlight => 409, IDEMPOTENCY_KEY_REUSED;
    /// The `Idempotency-Key` was used for a different request body.
    IdempotencyKeyReused => 422, IDEMPOTENCY_KEY_REUSED;

    // What the caller asked for.
    /// No route (or web page) at that path.
    NoSuchRoute => 404, NOT_FOUND;
    /// The route does not take that method.
    MethodNotAllowed => 405, METHOD_NOT_ALLOWED;
    /// A timestamp query to a gateway without `[timestamping]`.
    NotATimestampAuthority => 404, NOT_FOUND;
    /// A GitHub connector request to a gateway without `[github]`.
    GithubConnectorOff => 404, NOT_FOUND;
    /// A keyless certificate request to a gateway without `[keyless]`.
    KeylessOff => 404, NOT_FOUND;
    /// No signing request of that id (of this token, or waiting for this approver).
    UnknownSigningRequest => 404, SIGNING_REQUEST_NOT_FOUND;
    /// A vote on a request that is already decided, or a second vote of the same approver.
    AlreadyDecided => 409, REQUEST_DENIED;
    /// The request's artifacts were deleted after the retention period.
    ArtifactDeleted => 404, ARTIFACT_NOT_AVAILABLE;
    /// The signed artifact of a request that is not completed.
    ArtifactNotSigned => 400, ARTIFACT_NOT_AVAILABLE;
    /// The request ended (`request_timeout_seconds`, or the client went away) before it was done.
    RequestTimedOut => 408, REQUEST_TIMEOUT;

    // The gateway's side.
    /// The HSM did not sign.
    HsmUnavailable => 503, HSM_UNAVAILABLE;
    /// Where the GitHub connector fetches an artifact from (GitHub's API) did not answer, or not as documented.
    ArtifactSourceUnavailable => 503, ARTIFACT_NOT_AVAILABLE;
    /// The audit log, the approval database or the artifact store could not be read or written.
    StoreUnavailable => 503, INTERNAL;
    /// A fault inside the gateway.
    Internal => 500, INTERNAL;
}

impl Reason {
    /// Seconds after which a retry may succeed, for the reasons that pass by themselves. A throttle knows its own
    /// (the time left of the block) and sets it with [`Refusal::retry_after`].
    pub fn retry_after(self) -> Option<u64> {
        match self {
            Self::HsmUnavailable | Self::StoreUnavailable => Some(5),
            Self::IdempotencyKeyInFlight => Some(1),
            Self::ArtifactSourceUnavailable => Some(10),
            _ => None,
        }
    }
}

/// Why a request was not done, in the caller's terms: the reason (and with it the status and problem type) and a
/// detail that says what to fix.
#[derive(Debug)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
    /// Seconds after which a retry may succeed (busy, unavailable).
    pub retry_after: Option<u64>,
    /// For [`Reason::MethodNotAllowed`]: the one method the route takes.
    pub allow: Option<&'static str>,
    /// For a policy that verifies origin and got no identity token: the audience the token must be issued for, so
    /// a client on a CI that mints tokens on request (GitHub Actions) can fetch one and retry.
    pub identity_token_audience: Option<String>,
}

/// A refusal for `reason`, with a detail that says what to fix.
pub fn refuse(reason: Reason, detail: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        detail: detail.into(),
        retry_after: reason.retry_after(),
        allow: None,
        identity_token_audience: None,
    }
}

impl Refusal {
    /// The HTTP status the caller sees.
    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// SignPath's problem type.
    pub fn problem_type(&self) -> &'static str {
        self.reason.problem_type()
    }

    pub fn retry_after(self, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..self
        }
    }
}

/// A store that failed: the request is not done, and the caller may retry later.
pub fn store_failure() -> Refusal {
    refuse(
        Reason::StoreUnavailable,
        "the audit log could not be written, so the request was not completed; try again later",
    )
}

/// The approval store failed: logged here, and the caller told to try again later.
pub fn store_unavailable<E: std::fmt::Display>(e: E) -> Refusal {
    tracing::error!(error = %e, "approval database");
    refuse(
        Reason::StoreUnavailable,
        "the approval database is not available; try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire answer of every reason, written out once more on purpose: a change to the table must change
    /// this list too, in the same commit, where a reviewer sees it.
    fn expected(reason: Reason) -> (u16, &'static str) {
        use Reason::*;
        match reason {
            Unauthenticated => (401, "unauthenticated"),
            ForeignOrganization => (403, "forbidden"),
            Throttled => (429, "throttled"),
            UnknownPolicy => (404, "signing-policy-not-found"),
            UnknownArtifactConfiguration => (404, "signing-policy-not-found"),
            TokenNotAllowed => (403, "forbidden"),
            CertificateRevoked => (403, "signing-certificate-revoked"),
            OriginRejected => (403, "origin-rejected"),
            NotAnApprover => (403, "forbidden"),
            OwnRequest => (403, "forbidden"),
            CrossSiteForm => (403, "forbidden"),
            MalformedRequest => (400, "malformed-request"),
            UnsupportedMediaType => (415, "malformed-request"),
            BodyTooLarge => (413, "malformed-request"),
            InvalidHash => (400, "invalid-hash"),
            UnsupportedAlgorithm => (400, "unsupported-algorithm"),
            HashAlgorithmNotAllowed => (400, "unsupported-algorithm"),
            InvalidArtifact => (422, "invalid-artifact"),
            ArtifactTooLarge => (400, "invalid-artifact"),
            IdempotencyKeyInFlight => (409, "idempotency-key-reused"),
            IdempotencyKeyReused => (422, "idempotency-key-reused"),
            NoSuchRoute => (404, "not-found"),
            MethodNotAllowed => (405, "method-not-allowed"),
            NotATimestampAuthority => (404, "not-found"),
            GithubConnectorOff => (404, "not-found"),
            KeylessOff => (404, "not-found"),
            IdentityNotAllowed => (403, "origin-rejected"),
            ApprovalRequired => (403, "forbidden"),
            RunDenied => (403, "signing-request-denied"),
            ProofOfPossessionFailed => (400, "invalid-proof-of-possession"),
            UnknownSigningRequest => (404, "signing-request-not-found"),
            AlreadyDecided => (409, "signing-request-denied"),
            ArtifactDeleted => (404, "artifact-not-available"),
            ArtifactNotSigned => (400, "artifact-not-available"),
            RequestTimedOut => (408, "request-timeout"),
            HsmUnavailable => (503, "hsm-unavailable"),
            ArtifactSourceUnavailable => (503, "artifact-not-available"),
            StoreUnavailable => (503, "internal-error"),
            Internal => (500, "internal-error"),
        }
    }

    #[test]
    fn each_reason_has_its_status_and_problem_type() {
        for &reason in Reason::ALL {
            assert_eq!(
                (reason.status(), pt::short(reason.problem_type())),
                expected(reason),
                "{reason:?}"
            );
            assert!(
                pt::ALL.contains(&reason.problem_type()),
                "{reason:?}: a problem type of the protocol"
            );
        }
    }

    #[test]
    fn every_reason_is_listed_once() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert!(!Reason::ALL[..i].contains(reason), "{reason:?} twice");
        }
    }

    #[test]
    fn the_api_documentation_lists_each_reasons_type_with_its_status() {
        let documented = include_str!("../../../docs/gateway-api.md");
        for &reason in Reason::ALL {
            let short = pt::short(reason.problem_type());
            let row = documented
                .lines()
                .find(|line| line.starts_with(&format!("| `{short}` |")))
                .unwrap_or_else(|| panic!("docs/gateway-api.md has no row for `{short}` ({reason:?})"));
            let statuses = row.split('|').nth(2).unwrap_or_default();
            assert!(
                statuses
                    .split(',')
                    .any(|s| s.trim() == reason.status().to_string()),
                "docs/gateway-api.md gives `{short}` the statuses {statuses:?}, not {} ({reason:?})",
                reason.status()
            );
        }
    }

    #[test]
    fn only_the_reasons_that_pass_by_themselves_say_when_to_retry() {
        for &reason in Reason::ALL {
            let refusal = refuse(reason, "detail");
            match reason {
                Reason::HsmUnavailable | Reason::StoreUnavailable => assert_eq!(refusal.retry_after, Some(5)),
                Reason::IdempotencyKeyInFlight => assert_eq!(refusal.retry_after, Some(1)),
                Reason::ArtifactSourceUnavailable => assert_eq!(refusal.retry_after, Some(10)),
                _ => assert_eq!(refusal.retry_after, None, "{reason:?}"),
            }
        }
        assert_eq!(
            refuse(Reason::Throttled, "slow down").retry_after(7).retry_after,
            Some(7)
        );
    }
}
