//! What the signing core answers: an [`Answer`] (a JSON document, done or waiting for approval) or a [`Refusal`]
//! (why not, in SignPath's problem types). Plain data: the HTTP layer decides how each is framed on the wire.

use common::protocol::problem_types as pt;

use super::idempotency::KeyClaim;
use crate::store::IdempotentAnswer;

/// Why a request was not done, in the caller's terms: the kind of refusal, SignPath's stable problem type, and a
/// detail that says what to fix.
#[derive(Debug)]
pub struct Refusal {
    pub kind: Kind,
    pub problem_type: &'static str,
    pub detail: String,
    /// Seconds after which a retry may succeed (busy, unavailable).
    pub retry_after: Option<u64>,
    /// For [`Kind::MethodNotAllowed`]: the one method the route takes.
    pub allow: Option<&'static str>,
    /// For a policy that verifies origin and got no identity token: the audience the token must be issued for, so
    /// a client on a CI that mints tokens on request (GitHub Actions) can fetch one and retry.
    pub identity_token_audience: Option<String>,
}

/// The kinds of refusal. Each has one HTTP status, which the audit record keeps as the status the caller saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RequestTimeout,
    PayloadTooLarge,
    UnprocessableEntity,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::UnprocessableEntity => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

pub fn refuse(kind: Kind, problem_type: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        problem_type,
        detail: detail.into(),
        retry_after: None,
        allow: None,
        identity_token_audience: None,
    }
}

impl Refusal {
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
        Kind::Unavailable,
        pt::INTERNAL,
        "the audit log could not be written, so the request was not completed; try again later",
    )
    .retry_after(5)
}

/// A signing request the core answered: the JSON document, and whether it still waits for approval.
#[derive(Debug)]
pub struct Answer {
    pub body: String,
    /// Waiting for approval: where to poll (an absolute path on the gateway).
    pub waiting: Option<String>,
    /// A signing request created (201): its URL, for `Location`.
    pub created: Option<String>,
    /// Stored with the audit record, so a retry with the same key gets this answer.
    pub(super) idempotency: Option<(String, String, String)>,
    /// The request's hold on its idempotency key, released once the answer is stored.
    pub(super) claim: Option<KeyClaim>,
    /// A held request this answer signs: marked completed (with this answer) only after the audit record of the
    /// signature is durable.
    pub(super) completes: Option<String>,
}

impl Answer {
    pub fn done(body: String) -> Self {
        Self {
            body,
            waiting: None,
            created: None,
            idempotency: None,
            claim: None,
            completes: None,
        }
    }

    pub fn json<T: serde::Serialize>(value: &T) -> Result<Self, Refusal> {
        serde_json::to_string(value)
            .map(Self::done)
            .map_err(|e| refuse(Kind::Internal, pt::INTERNAL, e.to_string()))
    }
}

/// What a finished request tells the audit log about its answer. The core's [`Answer`] is one; the approvers'
/// web pages are another.
pub trait Audited {
    /// The status the caller sees, as the audit record keeps it.
    fn status(&self) -> u16;

    /// The answer to keep under an idempotency key with the record, and the claim to release once it is kept.
    fn take_idempotency(&mut self) -> (Option<IdempotentAnswer>, Option<KeyClaim>) {
        (None, None)
    }

    /// The held request this answer completes, with the answer to store for its later polls.
    fn take_completion(&mut self) -> Option<(String, String)> {
        None
    }

    /// An answer that says no in its own format (a timestamp reply with a failure status): audited as refused.
    fn refused(&self) -> bool {
        false
    }
}

impl Audited for Answer {
    fn status(&self) -> u16 {
        if self.created.is_some() {
            201
        } else if self.waiting.is_some() {
            202
        } else {
            200
        }
    }

    fn take_idempotency(&mut self) -> (Option<IdempotentAnswer>, Option<KeyClaim>) {
        let answer = self
            .idempotency
            .take()
            .map(|(token_id, key, body_sha256)| IdempotentAnswer {
                token_id,
                key,
                body_sha256,
                response: self.body.clone(),
            });
        (answer, self.claim.take())
    }

    fn take_completion(&mut self) -> Option<(String, String)> {
        self.completes.take().map(|id| (id, self.body.clone()))
    }
}
