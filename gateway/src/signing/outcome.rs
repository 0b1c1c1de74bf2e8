//! What the signing core answers: an [`Answer`] (a JSON document, done or waiting for approval) or a [`Refusal`]
//! (why not: `refusal.rs`). Plain data: the HTTP layer decides how each is framed on the wire.

use super::idempotency::KeyClaim;
use super::refusal::{refuse, Reason, Refusal};
use crate::store::IdempotentAnswer;

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
            .map_err(|e| refuse(Reason::Internal, e.to_string()))
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

/// What a finished request came to, in the audit log's words. Decided once, by [`super::Core::conclude`], from
/// the answer or the refusal; the audit record and the request's log line both read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Signed, or otherwise done (a vote, a page).
    Allowed,
    /// A lookup, a poll or a download that signed nothing (`Record::only_read`).
    Read,
    /// Held for approval (202; a keyless certificate request of a CI run that waits for approval, 403).
    Pending,
    /// Refused (4xx), or answered with a refusal in the answer's own format (a timestamp reply with a failure
    /// status, which is 200 on the wire).
    Refused,
    /// The gateway failed (5xx), or the record could not be written and the answer was withheld.
    Error,
}

impl AuditOutcome {
    /// The outcome of an answer the core gives.
    pub fn of_answer<T: Audited>(answer: &T, record: &crate::store::Record) -> Self {
        if answer.refused() {
            Self::Refused
        } else if answer.status() == 202 {
            Self::Pending
        } else if record.only_read() {
            Self::Read
        } else {
            Self::Allowed
        }
    }

    /// The outcome of a refusal.
    pub fn of_refusal(refusal: &Refusal) -> Self {
        if refusal.status() >= 500 {
            Self::Error
        } else if refusal.reason == Reason::ApprovalRequired {
            Self::Pending
        } else {
            Self::Refused
        }
    }

    /// The word the audit log and the request log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Read => "read",
            Self::Pending => "pending",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}
