//! Request revocations: what one signing request, one release group, or everything a policy signed after a moment
//! produced, withdrawn without revoking the policy's key. The gateway keeps them (`signpath-gateway revoke
//! --request | --release-group | --policy --signed-after`) and publishes them as a revocation list signed by the
//! CA that issued the policies' certificates; the Notation plugin's `verify-signature` and `signpath-oci verify`
//! check signatures against it. The rule deciding whether a revocation covers a signature lives here, once, for
//! the gateway's online answer and both offline verifiers.
//!
//! The list is JSON, not JWS: the CA's HSM key makes DER ECDSA and PKCS#1 v1.5 signatures (as for certificates and
//! CRLs), and every reader of the list is ours. The document carries the list's bytes (base64), the algorithm, the
//! signature over those bytes, and the signer's certificate (then its issuers).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use crate::x509::ParsedCertificate;

/// The media type of a signed revocation list.
pub const MEDIA_TYPE: &str = "application/vnd.signpath.revocation-list.v1+json";

/// The signed attributes a Notary signature made through the Notation plugin's envelope generation carries.
pub mod attribute {
    /// The id the plugin gave its signing request (sent as the request's `Idempotency-Key`; the gateway records
    /// it beside its own request id).
    pub const SIGNING_REQUEST: &str = "io.signpath.signingRequest";
    /// `Project/Policy`.
    pub const SIGNING_POLICY: &str = "io.signpath.signingPolicy";
    /// The release group the request named, if any.
    pub const RELEASE_GROUP: &str = "io.signpath.releaseGroup";
    /// When the plugin signed (RFC 3339): notation hands a verification plugin no signing time under `notary.x509`.
    pub const SIGNED_AT: &str = "io.signpath.signedAt";
    /// Every attribute above.
    pub const ALL: [&str; 4] = [SIGNING_REQUEST, SIGNING_POLICY, RELEASE_GROUP, SIGNED_AT];
}

/// What a revocation withdraws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Scope {
    /// Every signature one signing request made.
    #[serde(rename_all = "camelCase")]
    Request {
        request_id: String,
        /// The id the client gave the request (its Idempotency-Key), which signatures carry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_request_id: Option<String>,
    },
    /// Every signature made by a request of this release group.
    #[serde(rename_all = "camelCase")]
    ReleaseGroup { release_group: String },
    /// Every signature `policy` (`Project/Policy`) made after `signed_after` (RFC 3339).
    #[serde(rename_all = "camelCase")]
    PolicySignedAfter { policy: String, signed_after: String },
}

impl Scope {
    /// The key one revocation is stored under: revoking the same thing twice finds the first.
    pub fn key(&self) -> String {
        match self {
            Self::Request { request_id, .. } => format!("request:{request_id}"),
            Self::ReleaseGroup { release_group } => format!("release-group:{release_group}"),
            Self::PolicySignedAfter { policy, signed_after } => format!("policy:{policy}@{signed_after}"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request { request_id, .. } => write!(f, "signing request {request_id}"),
            Self::ReleaseGroup { release_group } => write!(f, "release group {release_group}"),
            Self::PolicySignedAfter { policy, signed_after } => {
                write!(f, "what {policy} signed after {signed_after}")
            }
        }
    }
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    #[serde(flatten)]
    pub scope: Scope,
    pub reason: String,
    /// RFC 3339.
    pub revoked_at: String,
    /// Who revoked it (the operator's account on the gateway's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// The SHA-256 (hex) of each signature the gateway's audit log shows the revocation covers, filled in when
    /// the list is published: how a verifier that has only the signature (cosign, a hash-path Notary signature)
    /// finds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
}

/// What a verifier knows of one signature. Each field is optional: a signature made through the hash path
/// carries none of the attributes, only its bytes.
#[derive(Debug, Clone, Default)]
pub struct SignatureFacts<'a> {
    /// The signing request id the signature carries (the client's id or the gateway's).
    pub request: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub release_group: Option<&'a str>,
    pub signed_at: Option<OffsetDateTime>,
    /// SHA-256 (hex) of the signature bytes.
    pub signature_sha256: Option<&'a str>,
}

impl Revocation {
    /// Whether this revocation covers the signature. A signature of the revoked policy whose signing time is not
    /// known is covered (fail closed).
    pub fn covers(&self, facts: &SignatureFacts<'_>) -> bool {
        if let Some(sha) = facts.signature_sha256 {
            if self.signatures.iter().any(|s| s.eq_ignore_ascii_case(sha)) {
                return true;
            }
        }
        match &self.scope {
            Scope::Request {
                request_id,
                client_request_id,
            } => facts
                .request
                .is_some_and(|r| r == request_id || client_request_id.as_deref() == Some(r)),
            Scope::ReleaseGroup { release_group } => facts.release_group == Some(release_group.as_str()),
            Scope::PolicySignedAfter { policy, signed_after } => {
                facts.policy == Some(policy.as_str())
                    && match (facts.signed_at, parse_time(signed_after)) {
                        (Some(at), Ok(after)) => at > after,
                        _ => true,
                    }
            }
        }
    }
}

/// The list the gateway publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationList {
    pub version: u32,
    /// The gateway's organization id.
    pub organization: String,
    /// In an online answer: the signing request it is about (`revoked` holds what covers it, if anything). A
    /// verifier checks that it names the request it asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339: after this the list is expired, and a verifier that reads it fails closed.
    pub next_update: String,
    pub revoked: Vec<Revocation>,
    /// The serial numbers (hex) of the certificates the gateway's CAs revoked: a verifier to which notation leaves
    /// revocation (the plugin's REVOCATION_CHECK) refuses a chain holding one, as notation's CRL check would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_certificates: Vec<String>,
}

impl RevocationList {
    /// The first revocation that covers the signature.
    pub fn revocation_of(&self, facts: &SignatureFacts<'_>) -> Option<&Revocation> {
        self.revoked.iter().find(|r| r.covers(facts))
    }
}

/// A revocation list with its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedList {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The list's JSON, base64.
    pub list: String,
    /// `ECDSA-SHA-256` (DER signature) or `RSASSA-PKCS1-SHA-256` (and the 384 and 512 forms).
    pub algorithm: String,
    /// Over the list's bytes, base64.
    pub signature: String,
    /// The signer's certificate, then its issuers (DER, base64).
    pub certificates: Vec<String>,
}

/// Why a revocation list cannot be used. Every one of these makes a verifier fail closed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("the revocation list is malformed: {0}")]
    Malformed(String),
    #[error("the revocation list's signature does not verify: {0}")]
    BadSignature(String),
    #[error(
        "the revocation list is signed by {signer}, which is not a CA of the signature's certificate chain"
    )]
    UntrustedSigner { signer: String },
    #[error(
        "the revocation list expired at {next_update} (issued {issued_at}); fetch a new one from the gateway"
    )]
    Expired { issued_at: String, next_update: String },
    #[error("the revocation list was issued at {issued_at}, in the future; check the clocks")]
    NotYetValid { issued_at: String },
}

fn malformed(e: impl std::fmt::Display) -> ListError {
    ListError::Malformed(e.to_string())
}

/// The algorithm name of a CA key's list signatures: the scheme HSMs make for CAs (DER ECDSA, PKCS#1 v1.5).
pub fn algorithm_name(kind: KeyKind, hash: HashAlgorithm) -> String {
    let family = match kind {
        KeyKind::Ec(_) => "ECDSA",
        KeyKind::Rsa { .. } => "RSASSA-PKCS1",
    };
    format!("{family}-{}", hash.notation_name())
}

fn parse_algorithm(name: &str) -> Result<(SignatureScheme, HashAlgorithm), ListError> {
    let unknown = || ListError::Malformed(format!("unknown signature algorithm {name:?}"));
    let (scheme, hash) = if let Some(hash) = name.strip_prefix("ECDSA-") {
        (SignatureScheme::EcdsaAsn1, hash)
    } else if let Some(hash) = name.strip_prefix("RSASSA-PKCS1-") {
        (SignatureScheme::RsaPkcs1, hash)
    } else {
        return Err(unknown());
    };
    Ok((
        scheme,
        HashAlgorithm::from_notation_name(hash).ok_or_else(unknown)?,
    ))
}

impl SignedList {
    /// Wraps a list's bytes, signed by the first of `certificates`.
    pub fn new(list: &[u8], algorithm: String, signature: &[u8], certificates: &[Vec<u8>]) -> Self {
        Self {
            media_type: MEDIA_TYPE.into(),
            list: STANDARD.encode(list),
            algorithm,
            signature: STANDARD.encode(signature),
            certificates: certificates.iter().map(|c| STANDARD.encode(c)).collect(),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ListError> {
        let signed: Self = serde_json::from_slice(bytes).map_err(malformed)?;
        if signed.media_type != MEDIA_TYPE {
            return Err(ListError::Malformed(format!(
                "media type {:?}, expected {MEDIA_TYPE}",
                signed.media_type
            )));
        }
        Ok(signed)
    }

    /// The list, if its signature verifies with its signer's key, its signer is one of `trusted_signers` (DER
    /// certificates: the CAs of the chain of the signature being checked), and `now` is within its validity.
    pub fn verify(
        &self,
        trusted_signers: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<RevocationList, ListError> {
        let signer_der = STANDARD
            .decode(
                self.certificates
                    .first()
                    .ok_or_else(|| malformed("no signer certificate"))?,
            )
            .map_err(malformed)?;
        let signer = ParsedCertificate::from_der(&signer_der).map_err(malformed)?;
        if !trusted_signers.contains(&signer_der) {
            return Err(ListError::UntrustedSigner {
                signer: signer.subject(),
            });
        }
        let (scheme, hash) = parse_algorithm(&self.algorithm)?;
        let list_bytes = STANDARD.decode(&self.list).map_err(malformed)?;
        let signature = STANDARD.decode(&self.signature).map_err(malformed)?;
        signer
            .public_key()
            .map_err(malformed)?
            .verify_message(scheme, hash, &list_bytes, &signature)
            .map_err(|e| ListError::BadSignature(e.to_string()))?;
        let list: RevocationList = serde_json::from_slice(&list_bytes).map_err(malformed)?;
        let issued = parse_time(&list.issued_at)?;
        let next = parse_time(&list.next_update)?;
        // A minute of clock skew between the gateway and the verifier is tolerated at the start, none at the end.
        if now + time::Duration::minutes(1) < issued {
            return Err(ListError::NotYetValid {
                issued_at: list.issued_at,
            });
        }
        if now >= next {
            return Err(ListError::Expired {
                issued_at: list.issued_at,
                next_update: list.next_update,
            });
        }
        Ok(list)
    }
}

/// An RFC 3339 time.
pub fn parse_time(text: &str) -> Result<OffsetDateTime, ListError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| ListError::Malformed(format!("time {text:?}: {e}")))
}

/// RFC 3339 in whole seconds, UTC.
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
