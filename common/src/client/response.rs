//! What the gateway answered, read as the client needs it: a raw response, a transient failure to retry, the
//! error a final answer becomes (with the problem document's detail), and the JSON inside. No I/O here.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::error::Error;
use crate::protocol::Problem;
use crate::retry::Limit;

pub(super) struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub(super) enum Failure {
    Status(RawResponse),
    Network(reqwest::Error),
}

impl Failure {
    pub fn describe(&self) -> String {
        match self {
            Self::Status(r) => format!("HTTP {}", r.status.as_u16()),
            Self::Network(e) => error_chain(e),
        }
    }

    pub fn into_error(self, url: &Url, attempts: u32, elapsed: Duration, limit: Limit) -> Error {
        let seconds = elapsed.as_secs();
        match self {
            Self::Status(r) if r.status == StatusCode::TOO_MANY_REQUESTS => Error::Throttled {
                seconds,
                detail: problem_detail(&r),
            },
            Self::Status(r) => Error::Unavailable {
                status: r.status.as_u16(),
                seconds,
                detail: problem_detail(&r),
            },
            Self::Network(e) if e.is_timeout() => Error::Timeout { attempts, seconds },
            Self::Network(e) if limit == Limit::Unreachable => {
                let mut shown = url.clone();
                shown.set_query(None);
                let (setting, env) = limit.setting();
                Error::NeverConnected {
                    url: shown.to_string(),
                    attempts,
                    seconds,
                    reason: error_chain(&e),
                    setting,
                    env,
                }
            }
            Self::Network(e) => {
                let mut shown = url.clone();
                shown.set_query(None);
                Error::Unreachable {
                    url: shown.to_string(),
                    attempts,
                    seconds,
                    reason: error_chain(&e),
                }
            }
        }
    }
}

pub(super) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by gateways; it is ignored).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(super) fn status_error(response: &RawResponse) -> Error {
    let detail = problem_detail(response);
    match response.status.as_u16() {
        401 => Error::Unauthenticated { detail },
        403 => Error::Forbidden { detail },
        404 => Error::NotFound { detail },
        status @ 400..=499 => {
            let problem_type = serde_json::from_slice::<Problem>(&response.body)
                .map(|p| crate::protocol::problem_types::short(&p.problem_type).to_owned())
                .unwrap_or_else(|_| "about:blank".to_owned());
            Error::Rejected {
                status,
                problem_type,
                detail,
            }
        }
        status => Error::Server { status, detail },
    }
}

/// The problem document's detail (or title); a non-problem body is summarised, never echoed at length.
fn problem_detail(response: &RawResponse) -> String {
    if let Ok(problem) = serde_json::from_slice::<Problem>(&response.body) {
        if let Some(detail) = problem.detail.filter(|d| !d.is_empty()) {
            return detail;
        }
        if !problem.title.is_empty() {
            return problem.title;
        }
    }
    let text: String = String::from_utf8_lossy(&response.body)
        .chars()
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() || text.contains('\u{fffd}') {
        response
            .status
            .canonical_reason()
            .unwrap_or("no details")
            .to_owned()
    } else {
        text.to_owned()
    }
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidResponse(format!("unexpected JSON ({e})")))
}

pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
