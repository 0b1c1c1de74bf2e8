//! The gateway as an RFC 3161 time-stamping authority: the TSA certificate `init` issues (`certificate`), a
//! `TimeStampReq` read and checked against what the TSA will sign (`request`), and the `TimeStampResp` with its
//! signed token (`token`). Notation and cosign verify these tokens, so every check they make is met here (see
//! docs/timestamps.md).
//!
//! The TSA key stays in the HSM: this folder never signs by itself, it hands the digest of the token's signed
//! attributes to a signing function the caller supplies. Like the rest of `pki/`, it must never import `signing/`,
//! `http/`, `store/` or `hsm`.

mod certificate;
mod request;
mod token;

pub use certificate::issue;
pub use request::{read_request, Query};
pub use token::{failure_reply, granted_reply, Authority};

/// The `PKIFailureInfo` bits (RFC 3161 section 2.4.2) this TSA reports, by their bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureInfo {
    /// Unrecognized or unsupported algorithm identifier.
    BadAlg = 0,
    /// Transaction not permitted or supported (here: a request or nonce larger than this TSA takes).
    BadRequest = 2,
    /// The data submitted has the wrong format.
    BadDataFormat = 5,
    /// The requested TSA policy is not supported.
    UnacceptedPolicy = 15,
    /// The requested extension is not supported.
    UnacceptedExtension = 16,
}

/// What can go wrong building a timestamp, in the operator's terms.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("the TSA certificate cannot be used: {0}")]
    Certificate(String),
    #[error("the timestamp could not be encoded: {0}")]
    Encoding(#[from] der::Error),
    #[error("the TSA key could not sign the timestamp: {0}")]
    Signing(String),
}
