//! RFC 3161 over HTTP (section 3.4): `POST /timestamp` takes an `application/timestamp-query` and answers an
//! `application/timestamp-reply`, granted or with a failure status. Only a request that is not a timestamp query
//! at all (another media type) gets a problem document. No API token: notation and cosign send none to a TSA.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use common::protocol::problem_types as pt;

use super::call::Call;
use super::render::Render;
use super::CurrentCore;
use crate::signing::timestamp::TimestampReply;
use crate::signing::{refuse, Kind};

pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

/// Handles the `POST /timestamp` route.
pub async fn timestamp(CurrentCore(core): CurrentCore, call: Call) -> Response {
    call.run(&core, |core, incoming, record| {
        let media_type = incoming
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media_type.as_deref() != Some(TIMESTAMP_QUERY) {
            return Err(refuse(
                Kind::UnsupportedMediaType,
                pt::MALFORMED_REQUEST,
                format!("POST /timestamp takes a DER TimeStampReq as {TIMESTAMP_QUERY} (RFC 3161)"),
            ));
        }
        core.timestamp(&incoming.body, record)
    })
    .await
}

impl Render for TimestampReply {
    fn render(self) -> Response {
        let mut response = Response::new(Body::from(self.der));
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(TIMESTAMP_REPLY));
        response
    }
}
