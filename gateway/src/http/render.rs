//! Answers on the wire: the core's JSON answers (200, or 202 with `Location` and `Retry-After` while a request
//! waits for approval) and RFC 9457 problem documents for every refusal, each naming the request id.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use common::protocol::{Problem, PROBLEM_JSON};

use crate::signing::{Answer, Reason, Refusal};

/// An answer that knows its HTTP form.
pub trait Render {
    fn render(self) -> Response;
}

impl Render for Answer {
    fn render(self) -> Response {
        let waiting = self.waiting.clone();
        let created = self.created.clone();
        let mut response = Response::new(Body::from(self.body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(location) = created {
            *response.status_mut() = StatusCode::CREATED;
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        if let Some(location) = waiting {
            *response.status_mut() = StatusCode::ACCEPTED;
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&location) {
                headers.insert(header::LOCATION, value);
            }
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A refusal as a problem document.
pub fn problem(refusal: &Refusal, request_id: &str) -> Response {
    let status = status(refusal.status());
    let document = Problem {
        problem_type: refusal.problem_type().to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: Some(refusal.detail.clone()),
        instance: None,
        request_id: Some(request_id.to_owned()),
        identity_token_audience: refusal.identity_token_audience.clone(),
    };
    let body = serde_json::to_string(&document).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if refusal.reason == Reason::Unauthenticated {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = refusal.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(method) = refusal.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(method));
    }
    response
}
