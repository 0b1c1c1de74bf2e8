//! RFC 3161 over HTTP (section 3.4): `POST /timestamp` takes an `application/timestamp-query` and answers an
//! `application/timestamp-reply`, granted or with a failure status. Only a request that is not a timestamp query
//! at all (another media type) gets a problem document. No API token: notation and cosign send none to a TSA.
//!
//! Since anyone may ask and every token costs an HSM signature, each client address (an IPv6 /64) may send
//! `[server] max_timestamps_per_address_per_second` queries a second, in bursts of as many; more are answered 429
//! with `Retry-After`, before the body is read, and without an audit record each (a flood would bury the log).
//! governor's keyed rate limiter (GCRA) does the counting.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::call::{Call, Peer};
use super::failed_auth::client_key;
use super::render::{problem, Render};
use super::CurrentCore;
use crate::config::ServerConfig;
use crate::signing::timestamp::TimestampReply;
use crate::signing::{refuse, Reason};

/// The timestamp queries of each client address; None when the limit is off.
pub type QueryRate = Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>;

/// The limiter `[server]` asks for, with a task that forgets addresses that have been quiet for a second, so a
/// flood from many addresses leaves nothing behind.
pub fn query_rate(limits: &ServerConfig) -> QueryRate {
    let per_second = NonZeroU32::new(limits.max_timestamps_per_address_per_second)?;
    let limiter = Arc::new(RateLimiter::keyed(Quota::per_second(per_second)));
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let kept = Arc::downgrade(&limiter);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(10));
            loop {
                ticks.tick().await;
                let Some(limiter) = kept.upgrade() else { return };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
    Some(limiter)
}

/// The layer on `POST /timestamp`: a query over its address's rate is answered 429 before anything else is done.
pub async fn limit(State(rate): State<QueryRate>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<Peer>().map(|p| p.0.ip());
    if let (Some(limiter), Some(address)) = (&rate, peer) {
        if let Err(not_until) = limiter.check_key(&client_key(address)) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let refusal = refuse(
                Reason::Throttled,
                "too many timestamp queries from this address; try again later",
            )
            .retry_after(retry_after.max(1));
            return problem(&refusal, &uuid::Uuid::new_v4().to_string());
        }
    }
    next.run(request).await
}

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
                Reason::UnsupportedMediaType,
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
