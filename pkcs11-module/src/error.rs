//! The module's one error type and its one translation into a `CK_RV`.
//!
//! Misuse of the API maps to the return code the PKCS#11 v2.40 base specification names for it. Gateway failures
//! follow SignPath's Cryptoki table (transient → `CKR_FUNCTION_FAILED`, other 5xx → `CKR_DEVICE_ERROR`, 4xx →
//! `CKR_ARGUMENTS_BAD`, anything else → `CKR_GENERAL_ERROR`), with three refinements documented in
//! `docs/pkcs11.md`: bad credentials at `C_Login` are `CKR_PIN_INCORRECT`, a policy the token may no longer use
//! (403/404 while signing) is `CKR_KEY_FUNCTION_NOT_PERMITTED`, and a request an approver denied is
//! `CKR_FUNCTION_REJECTED`.

use cryptoki_sys::*;

use common::config::ConfigError;

/// When a gateway call failed; the same HTTP status means different things at login and at signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Login,
    Sign,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the module is not initialized (call C_Initialize first; a forked child must call it again)")]
    NotInitialized,
    #[error("the module is already initialized")]
    AlreadyInitialized,
    #[error("invalid argument: {0}")]
    ArgumentsBad(&'static str),
    #[error("there is no slot {0}")]
    SlotIdInvalid(CK_SLOT_ID),
    #[error("there is no session {0}")]
    SessionHandleInvalid(CK_SESSION_HANDLE),
    #[error("sessions must be opened with CKF_SERIAL_SESSION")]
    SessionParallelNotSupported,
    #[error("there is no object {0}")]
    ObjectHandleInvalid(CK_OBJECT_HANDLE),
    #[error("object {0} is not a private key")]
    KeyHandleInvalid(CK_OBJECT_HANDLE),
    #[error("object {0} cannot sign (it is a public key)")]
    KeyFunctionNotPermitted(CK_OBJECT_HANDLE),
    #[error("mechanism {0:#x} is not supported")]
    MechanismInvalid(CK_MECHANISM_TYPE),
    #[error("bad mechanism parameters: {0}")]
    MechanismParamInvalid(&'static str),
    /// `mechanism` is the mechanism's name (the error table sits below the core, so it names no core type).
    #[error("mechanism {mechanism} does not fit a {key} key")]
    KeyTypeInconsistent {
        mechanism: String,
        key: common::keys::KeyKind,
    },
    #[error("an operation of this kind is already active in the session")]
    OperationActive,
    #[error("no operation of this kind is active in the session")]
    OperationNotInitialized,
    #[error("log in first (C_Login with the PIN OrganizationId:ApiToken or CONFIG)")]
    UserNotLoggedIn,
    #[error("already logged in")]
    UserAlreadyLoggedIn,
    #[error("user type {0} is not supported; only CKU_USER logs in")]
    UserTypeInvalid(CK_USER_TYPE),
    #[error("the PIN must be OrganizationId:ApiToken, CONFIG or empty")]
    PinMalformed,
    #[error("credentials from the configuration: {0}")]
    Credentials(#[source] ConfigError),
    #[error("the data to sign has {actual} bytes: {expected}")]
    DataLenRange { expected: &'static str, actual: usize },
    #[error(transparent)]
    DataInvalid(common::encoding::EncodingError),
    #[error("the output buffer is too small")]
    BufferTooSmall,
    #[error("one or more attributes do not exist on this object")]
    AttributeTypeInvalid,
    #[error("one or more attributes are sensitive and cannot be read")]
    AttributeSensitive,
    #[error("a template attribute has a value of the wrong length")]
    AttributeValueInvalid,
    #[error("the function is not supported by this module")]
    FunctionNotSupported,
    #[error("the token has no random number generator")]
    RandomNoRng,
    #[error("the module runs no function in parallel")]
    FunctionNotParallel,
    #[error("the configuration is invalid: {0}")]
    Config(#[source] ConfigError),
    #[error("gateway ({phase:?}): {source}")]
    Gateway {
        phase: Phase,
        #[source]
        source: common::Error,
    },
    #[error("internal state is inconsistent (a thread panicked while holding a lock)")]
    Poisoned,
}

impl Error {
    pub fn gateway(phase: Phase) -> impl FnOnce(common::Error) -> Self {
        move |source| Self::Gateway { phase, source }
    }

    /// Outcomes a client provokes on purpose (size probes, attribute probes); logged at debug, not as failures.
    pub fn is_routine(&self) -> bool {
        matches!(
            self,
            Self::BufferTooSmall
                | Self::AttributeTypeInvalid
                | Self::AttributeSensitive
                | Self::UserAlreadyLoggedIn
                | Self::FunctionNotSupported
                | Self::RandomNoRng
                | Self::AlreadyInitialized
        )
    }
}

impl From<Error> for CK_RV {
    fn from(error: Error) -> CK_RV {
        match error {
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
            Error::SlotIdInvalid(_) => CKR_SLOT_ID_INVALID,
            Error::SessionHandleInvalid(_) => CKR_SESSION_HANDLE_INVALID,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::ObjectHandleInvalid(_) => CKR_OBJECT_HANDLE_INVALID,
            Error::KeyHandleInvalid(_) => CKR_KEY_HANDLE_INVALID,
            Error::KeyFunctionNotPermitted(_) => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::MechanismInvalid(_) => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid(_) => CKR_MECHANISM_PARAM_INVALID,
            Error::KeyTypeInconsistent { .. } => CKR_KEY_TYPE_INCONSISTENT,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserTypeInvalid(_) => CKR_USER_TYPE_INVALID,
            Error::PinMalformed => CKR_PIN_INCORRECT,
            Error::Credentials(_) => CKR_PIN_INCORRECT,
            Error::DataLenRange { .. } => CKR_DATA_LEN_RANGE,
            Error::DataInvalid(_) => CKR_DATA_INVALID,
            Error::BufferTooSmall => CKR_BUFFER_TOO_SMALL,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::RandomNoRng => CKR_RANDOM_NO_RNG,
            Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            Error::Config(_) => CKR_GENERAL_ERROR,
            Error::Gateway { phase, source } => gateway_rv(phase, &source),
            Error::Poisoned => CKR_GENERAL_ERROR,
        }
    }
}

/// SignPath's table for gateway failures, refined as the module documentation explains.
fn gateway_rv(phase: Phase, error: &common::Error) -> CK_RV {
    use common::protocol::problem_types as pt;
    use common::Error as E;
    if error.is_transient() {
        return CKR_FUNCTION_FAILED;
    }
    match (phase, error) {
        (Phase::Login, E::Unauthenticated { .. }) => CKR_PIN_INCORRECT,
        // Organization unknown to the gateway, or a token that may not list policies: the PIN names them.
        (Phase::Login, E::Forbidden { .. } | E::NotFound { .. }) => CKR_PIN_INCORRECT,
        (
            Phase::Sign,
            E::Forbidden { .. }
            | E::ForeignIdentityTokenAudience { .. }
            | E::NotFound { .. }
            | E::PolicyNotFound { .. },
        ) => CKR_KEY_FUNCTION_NOT_PERMITTED,
        (_, E::Denied { .. }) => CKR_FUNCTION_REJECTED,
        // The policy does not sign this hash (SHA-1 unless the policy lists it): refused by the signing service,
        // as a denial is; the module's log names the policy and the hashes it signs.
        (Phase::Sign, E::Rejected { problem_type, .. })
            if pt::short(problem_type) == pt::short(pt::UNSUPPORTED_ALGORITHM) =>
        {
            CKR_FUNCTION_REJECTED
        }
        (_, E::ApprovalTimeout { .. }) => CKR_FUNCTION_FAILED,
        // The gateway answered with a signature that does not verify, or with something unreadable.
        (_, E::BadSignature { .. } | E::InvalidResponse(_)) => CKR_DEVICE_ERROR,
        // The gateway's TLS certificate is not trusted or not for this host: the token cannot be reached safely.
        (_, E::TlsHandshake { .. }) => CKR_DEVICE_ERROR,
        _ => match error.http_status() {
            Some(400..=499) => CKR_ARGUMENTS_BAD,
            Some(500..=599) => CKR_DEVICE_ERROR,
            _ => CKR_GENERAL_ERROR,
        },
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(phase: Phase, source: common::Error) -> CK_RV {
        Error::Gateway { phase, source }.into()
    }

    #[test]
    fn gateway_failures_follow_signpaths_table() {
        let transient = common::Error::Unavailable {
            status: 503,
            seconds: 1,
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Sign, transient), CKR_FUNCTION_FAILED);
        let timeout = common::Error::Timeout {
            attempts: 1,
            seconds: 1,
        };
        assert_eq!(rv(Phase::Sign, timeout), CKR_FUNCTION_FAILED);
        let server = common::Error::Server {
            status: 500,
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Sign, server), CKR_DEVICE_ERROR);
        let rejected = common::Error::Rejected {
            status: 400,
            problem_type: "invalid-hash".into(),
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Sign, rejected), CKR_ARGUMENTS_BAD);
        let hash_not_signed = common::Error::Rejected {
            status: 400,
            problem_type: common::protocol::problem_types::UNSUPPORTED_ALGORITHM.into(),
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Sign, hash_not_signed), CKR_FUNCTION_REJECTED);
        let io = common::Error::File {
            path: "x".into(),
            reason: "y".into(),
        };
        assert_eq!(rv(Phase::Sign, io), CKR_GENERAL_ERROR);
    }

    #[test]
    fn credentials_and_permissions_depend_on_the_phase() {
        let unauthenticated = || common::Error::Unauthenticated {
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Login, unauthenticated()), CKR_PIN_INCORRECT);
        assert_eq!(rv(Phase::Sign, unauthenticated()), CKR_ARGUMENTS_BAD);
        let forbidden = || common::Error::Forbidden {
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Login, forbidden()), CKR_PIN_INCORRECT);
        assert_eq!(rv(Phase::Sign, forbidden()), CKR_KEY_FUNCTION_NOT_PERMITTED);
        let denied = common::Error::Denied {
            request_id: "r".into(),
            detail: String::new(),
        };
        assert_eq!(rv(Phase::Sign, denied), CKR_FUNCTION_REJECTED);
        let garbage = common::Error::InvalidResponse("x".into());
        assert_eq!(rv(Phase::Sign, garbage), CKR_DEVICE_ERROR);
        let untrusted = || common::Error::TlsHandshake {
            url: "https://gateway/".into(),
            reason: "invalid peer certificate: UnknownIssuer".into(),
            hint: "",
        };
        assert_eq!(rv(Phase::Login, untrusted()), CKR_DEVICE_ERROR);
        assert_eq!(rv(Phase::Sign, untrusted()), CKR_DEVICE_ERROR);
    }

    #[test]
    fn misuse_maps_to_the_spec_codes() {
        assert_eq!(CK_RV::from(Error::NotInitialized), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            CK_RV::from(Error::OperationNotInitialized),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(CK_RV::from(Error::PinMalformed), CKR_PIN_INCORRECT);
        assert_eq!(CK_RV::from(Error::BufferTooSmall), CKR_BUFFER_TOO_SMALL);
    }
}
