//! What a signing request held for approval looks like in a store, and why a vote can fail.

use serde::Serialize;

use super::StoreError;

/// Where a request stands. `Signing` is held by the one poll that signs it, so a request is signed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Signing,
    Completed,
}

impl Status {
    pub fn parse(s: &str) -> Self {
        match s {
            "Approved" => Self::Approved,
            "Denied" => Self::Denied,
            "Signing" => Self::Signing,
            "Completed" => Self::Completed,
            _ => Self::Pending,
        }
    }
}

/// A signing request that needed approval.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub request_id: String,
    pub token_id: String,
    pub project: String,
    pub policy: String,
    /// The SignHash request as received, signed once approved.
    #[serde(skip)]
    pub request_json: String,
    pub status: Status,
    pub required: u32,
    pub approvers: Vec<String>,
    pub approved_by: Vec<String>,
    pub denied_by: Option<String>,
    pub reason: Option<String>,
    pub release_group: Option<String>,
    /// The verified CI identity the request came with (policies with origin verification): what its release
    /// group's approval is bound to, beside the token.
    pub binding: Option<String>,
    /// `registry/repository:tag@digest`, as much of it as the client named.
    pub image: Option<String>,
    pub digest: String,
    /// The signatures the request makes once approved: 1 for a hash, images × signature formats for an artifact.
    pub signatures: u32,
    pub created: i64,
    #[serde(skip)]
    pub response: Option<String>,
}

/// What a new held request records.
#[derive(Debug)]
pub struct NewHeld<'a> {
    pub request_id: &'a str,
    pub token_id: &'a str,
    pub project: &'a str,
    pub policy: &'a str,
    pub request_json: &'a str,
    pub required: u32,
    pub approvers: &'a [String],
    pub release_group: Option<&'a str>,
    pub binding: Option<&'a str>,
    pub image: Option<&'a str>,
    pub digest: &'a str,
    pub signatures: u32,
}

/// Where a held request stands, as the approvers' page and `pending` list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `Pending`: waiting for approval.
    Waiting,
    /// Every other status.
    Decided,
}

/// Which held requests to list: newest first, `limit` of them after the first `offset`.
#[derive(Debug, Clone, Copy)]
pub struct HeldQuery<'a> {
    /// Only the requests of these policies, as (project, policy); every policy if None.
    pub policies: Option<&'a [(String, String)]>,
    /// Only the requests in this stage; both if None.
    pub stage: Option<Stage>,
    pub offset: u64,
    pub limit: u32,
}

/// How many held requests of one policy wait and how many are decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCount {
    pub project: String,
    pub policy: String,
    pub waiting: u64,
    pub decided: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    #[error("there is no signing request {0} that needs approval")]
    NotFound(String),
    #[error("{approver} is not an approver of {project}/{policy}")]
    NotAnApprover {
        approver: String,
        project: String,
        policy: String,
    },
    #[error("signing request {id} is {status:?}, no longer waiting for approval")]
    Decided { id: String, status: Status },
    #[error("{approver} has already decided on signing request {id}")]
    AlreadyVoted { approver: String, id: String },
    #[error(
        "{approver} owns the token that submitted signing request {id}; another approver must decide on it"
    )]
    OwnRequest { approver: String, id: String },
    #[error("the approval database: {0}")]
    Store(#[from] StoreError),
}
