//! The library's one error type. Each edge translates it once: the plugin into a Notation errorCode, the module
//! into a CKR_ code. Messages say what to do next and never contain a token.

use crate::config::ConfigError;
use crate::encoding::EncodingError;
use crate::pubkey::VerifyError;
use crate::x509::CertificateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("the API URL {url:?} cannot be used: {reason}")]
    InvalidApiUrl { url: String, reason: String },

    #[error("TLS setup failed: {0}")]
    Tls(String),

    #[error("could not reach the signing gateway at {url} after {attempts} attempt(s) in {seconds} s: {reason}; check ApiUrl (SIGNPATH_API_URL), the network and any proxy")]
    Unreachable {
        url: String,
        attempts: u32,
        seconds: u64,
        reason: String,
    },

    /// Not a single attempt of this client connected, and the short budget for that case is spent: most often a
    /// mistyped ApiUrl or a gateway that is not running.
    #[error("could not reach the signing gateway at {url} after {attempts} attempt(s) in {seconds} s: {reason}; no attempt ever connected, so the client stopped after {setting} ({env}): check ApiUrl (SIGNPATH_API_URL), that the gateway is running, the network and any proxy")]
    NeverConnected {
        url: String,
        attempts: u32,
        seconds: u64,
        reason: String,
        setting: &'static str,
        env: &'static str,
    },

    #[error("the signing gateway sent a Location ({location}) outside the API URL's origin {origin}; it was not followed and the token was not sent there: check ApiUrl and the gateway or proxy in front of it")]
    ForeignLocation { location: String, origin: String },

    /// A failure no retry can mend: the gateway's certificate is not trusted or not for this host, or the gateway
    /// refused this client's certificate.
    #[error("the TLS handshake with the signing gateway at {url} failed: {reason}; {hint}")]
    TlsHandshake {
        url: String,
        reason: String,
        hint: &'static str,
    },

    #[error("the signing gateway did not answer within {seconds} s ({attempts} attempt(s)); raise HttpRequestTimeoutInSeconds or ServiceUnavailableTimeoutInSeconds, or check the gateway")]
    Timeout { attempts: u32, seconds: u64 },

    #[error("the signing gateway rejected the API token (HTTP 401): {detail}; check SIGNPATH_API_TOKEN and SIGNPATH_ORGANIZATION_ID")]
    Unauthenticated { detail: String },

    #[error("access denied (HTTP 403): {detail}; ask an administrator to add this token as a submitter of the signing policy")]
    Forbidden { detail: String },

    /// The gateway asked for a CI identity token for an audience this client did not choose: none was fetched, as a
    /// token for another audience (a cloud's, `sts.amazonaws.com`) is a credential wherever that audience trusts
    /// the CI.
    #[error("the signing gateway asks for a CI identity token for the audience {named:?}, but this client fetches identity tokens only for its own audience {own:?} ({chosen_by}, {env}); no token was fetched, as a token for another audience could be used wherever that audience trusts the CI. If {named:?} is this gateway's audience, set IdentityTokenAudience (SIGNPATH_IDENTITY_TOKEN_AUDIENCE) to it, or set SIGNPATH_ID_TOKEN")]
    ForeignIdentityTokenAudience {
        named: String,
        own: String,
        chosen_by: &'static str,
        env: &'static str,
    },

    #[error("not found (HTTP 404): {detail}; check the key id (Project/Policy), OrganizationId and ApiUrl")]
    NotFound { detail: String },

    #[error("signing policy {project}/{policy} is not among the policies this token may use; check the key id and that the token is a submitter of that policy")]
    PolicyNotFound { project: String, policy: String },

    #[error("the signing gateway refused the request (HTTP {status}, {problem_type}): {detail}")]
    Rejected {
        status: u16,
        problem_type: String,
        detail: String,
    },

    #[error("the signing gateway is throttling requests (HTTP 429) and still was after {seconds} s; try again later or raise ServiceUnavailableTimeoutInSeconds")]
    Throttled { seconds: u64, detail: String },

    #[error("the signing gateway is unavailable (HTTP {status}) and still was after {seconds} s: {detail}")]
    Unavailable {
        status: u16,
        seconds: u64,
        detail: String,
    },

    #[error("the signing gateway failed (HTTP {status}): {detail}")]
    Server { status: u16, detail: String },

    #[error("signing request {request_id} was denied: {detail}")]
    Denied { request_id: String, detail: String },

    #[error("signing request {request_id} still waits for approval after {seconds} s{}; approve it and sign again, or raise ApprovalWaitTimeoutInSeconds", web_link.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
    ApprovalTimeout {
        request_id: String,
        web_link: Option<String>,
        seconds: u64,
    },

    #[error("the signing gateway sent an invalid response: {0}")]
    InvalidResponse(String),

    #[error("the signature the gateway returned for {key_id} does not verify with the policy's public key ({source}); it was not used")]
    BadSignature { key_id: String, source: VerifyError },

    #[error("the certificate of {key_id}: {source}")]
    Certificate {
        key_id: String,
        source: CertificateError,
    },

    #[error("{key_id}: {reason}")]
    PolicyKey { key_id: String, reason: String },

    #[error(transparent)]
    Encoding(#[from] EncodingError),

    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

impl Error {
    /// The HTTP status behind this error, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Unauthenticated { .. } => Some(401),
            Self::Forbidden { .. } | Self::ForeignIdentityTokenAudience { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Throttled { .. } => Some(429),
            Self::Rejected { status, .. }
            | Self::Unavailable { status, .. }
            | Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Transient: the service was unreachable, slow or overloaded (SignPath maps these to CKR_FUNCTION_FAILED).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::NeverConnected { .. }
                | Self::Timeout { .. }
                | Self::Throttled { .. }
                | Self::Unavailable { .. }
        )
    }
}
