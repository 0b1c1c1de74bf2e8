//! The HTTP API: SignPath's hash-signing routes, each request authenticated, authorized, validated, executed and
//! audited. Routing is by hand over path segments because SignPath's paths are matched case-insensitively and may
//! sit under `/Api`; every answer, including a 404 or 405, is a problem document with an audit record.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use common::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use common::protocol::{
    problem_types as pt, EcdsaSignatureFormat, HashEcho, HashSigningResult, MySigningPolicies, PaddingMode,
    Problem, SignHashRequest, SignHashResponse, SignatureAlgorithm, SigningRequestStatus, IDEMPOTENCY_KEY,
    PROBLEM_JSON,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Digest;

use crate::approval::{Approvals, Held, NewHeld, Status};
use crate::audit::{AuditLog, Record};
use crate::state::{Policy, State};

const MAX_BODY: usize = 64 * 1024;

/// A refusal: status, stable type, and a detail that says what to fix.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub problem_type: &'static str,
    pub detail: String,
    pub retry_after: Option<u64>,
    /// For 405: the one method the route takes (RFC 9110 requires the `Allow` header).
    pub allow: Option<Method>,
}

/// The longest `Idempotency-Key` the gateway takes (docs/openapi.yaml).
const MAX_IDEMPOTENCY_KEY: usize = 200;

pub fn refuse(status: StatusCode, problem_type: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        problem_type,
        detail: detail.into(),
        retry_after: None,
        allow: None,
    }
}

pub struct Api {
    pub state: Arc<State>,
    pub audit: Arc<AuditLog>,
    pub approvals: Arc<Approvals>,
    in_flight: Arc<InFlight>,
}

/// How long a request waits for an earlier one with its idempotency key to finish before it answers 409.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(10);

/// The (token, idempotency key) pairs whose first request is being processed, and a signal when one is released.
#[derive(Debug, Default)]
struct InFlight {
    keys: Mutex<HashSet<(String, String)>>,
    released: Condvar,
}

/// One request's hold on its (token, key) pair. Released when dropped: for a signature, after its answer is in
/// the idempotency store, so whoever claims the pair next finds the answer there.
#[derive(Debug)]
pub struct InFlightClaim {
    set: Arc<InFlight>,
    key: (String, String),
}

impl Drop for InFlightClaim {
    fn drop(&mut self) {
        self.set
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
        self.set.released.notify_all();
    }
}

impl InFlight {
    /// Claims the pair, waiting while another request holds it; `Err(())` if it is still held at `deadline`.
    fn claim(self: &Arc<Self>, token_id: &str, key: &str, deadline: Instant) -> Result<InFlightClaim, ()> {
        let pair = (token_id.to_owned(), key.to_owned());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        while keys.contains(&pair) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(());
            }
            keys = self
                .released
                .wait_timeout(keys, remaining)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        keys.insert(pair.clone());
        Ok(InFlightClaim {
            set: self.clone(),
            key: pair,
        })
    }
}

/// What the router needs of a request.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub origin_token: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub body: &'a [u8],
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api")
    }
}

type Reply = Response<Full<Bytes>>;

impl Api {
    pub fn new(state: Arc<State>, audit: Arc<AuditLog>, approvals: Arc<Approvals>) -> Self {
        Self {
            state,
            audit,
            approvals,
            in_flight: Arc::new(InFlight::default()),
        }
    }

    pub async fn handle(self: Arc<Self>, peer: SocketAddr, request: Request<hyper::body::Incoming>) -> Reply {
        let received = now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = request.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // Some(None): the header is there but not 1 to 200 visible ASCII characters (docs/openapi.yaml).
        let idempotency_key = parts.headers.get(IDEMPOTENCY_KEY).map(|value| {
            value
                .to_str()
                .ok()
                .filter(|key| (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()))
                .map(str::to_owned)
        });
        let record = Record {
            request_id: request_id.clone(),
            received,
            organization: String::new(),
            client_address: peer.to_string(),
            // Clipped: the record is written before authentication, so its size must not be the caller's choice.
            user_agent: header("user-agent").map(|agent| agent.chars().take(512).collect()),
            method: parts.method.to_string(),
            route: parts.uri.path().chars().take(2048).collect(),
            idempotency_key: idempotency_key.clone().flatten(),
            ..Record::default()
        };
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                pt::MALFORMED_REQUEST,
                format!("the request body is larger than {MAX_BODY} bytes"),
            )),
            Err(e) => Err(refuse(
                StatusCode::BAD_REQUEST,
                pt::MALFORMED_REQUEST,
                format!("cannot read the body: {e}"),
            )),
        };
        let body = match idempotency_key {
            Some(None) => Err(refuse(
                StatusCode::BAD_REQUEST,
                pt::MALFORMED_REQUEST,
                format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            )),
            _ => body,
        };
        let api = self.clone();
        let authorization = header("authorization");
        let content_type = header("content-type");
        let origin_token = header(common::protocol::ORIGIN_TOKEN_HEADER);
        let cookie = header("cookie");
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(str::to_owned);
        // The work (HSM, SQLite) is blocking; it runs on the blocking pool, never on the reactor.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut record = record;
            let result = body.and_then(|body| {
                let incoming = Incoming {
                    method: &method,
                    path: &path,
                    query: query.as_deref(),
                    authorization: authorization.as_deref(),
                    content_type: content_type.as_deref(),
                    origin_token: origin_token.as_deref(),
                    cookie: cookie.as_deref(),
                    body: &body,
                };
                api.route(&incoming, &mut record)
            });
            api.finish(record, result)
        })
        .await;
        match outcome {
            Ok(reply) => reply,
            Err(_) => problem_reply(
                &Refusal {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    problem_type: pt::INTERNAL,
                    detail: "the request failed inside the gateway".into(),
                    retry_after: None,
                    allow: None,
                },
                &request_id,
            ),
        }
    }

    /// Writes the audit record, then builds the response. No record, no answer: a failed write is a 503.
    fn finish(&self, mut record: Record, result: Result<Success, Refusal>) -> Reply {
        record.completed = now();
        match result {
            Ok(mut success) => {
                // Held until the answer is stored (below), so a duplicate waiting for it finds it.
                let claim = success.claim.take();
                record.outcome = if success.status == StatusCode::ACCEPTED {
                    "pending"
                } else {
                    "allowed"
                }
                .into();
                record.status = success.status.as_u16();
                let written = match &success.idempotency {
                    Some((token, key, body_hash)) => {
                        self.audit
                            .append_with_idempotency(&record, token, key, body_hash, &success.body)
                    }
                    None => self.audit.append(&record),
                };
                drop(claim);
                if let Err(e) = written {
                    tracing::error!(error = %e, request_id = %record.request_id, "audit write failed; answer withheld");
                    return problem_reply(&audit_failure(), &record.request_id);
                }
                reply(success)
            }
            Err(refusal) => {
                record.outcome = if refusal.status.is_server_error() {
                    "error"
                } else {
                    "refused"
                }
                .into();
                record.status = refusal.status.as_u16();
                record.error_type = Some(pt::short(refusal.problem_type).to_owned());
                record.error_detail = Some(refusal.detail.clone());
                tracing::info!(request_id = %record.request_id, status = record.status, route = %record.route,
                    error = %pt::short(refusal.problem_type), "request refused");
                if let Err(e) = self.audit.append(&record) {
                    tracing::error!(error = %e, request_id = %record.request_id, "audit write failed");
                    return problem_reply(&audit_failure(), &record.request_id);
                }
                problem_reply(&refusal, &record.request_id)
            }
        }
    }

    fn route(&self, incoming: &Incoming<'_>, record: &mut Record) -> Result<Success, Refusal> {
        let Incoming {
            method,
            path,
            query,
            authorization,
            content_type,
            origin_token,
            body,
            ..
        } = *incoming;
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first().is_some_and(|s| s.eq_ignore_ascii_case("web")) {
            return crate::web::route(self, incoming, &segments[1..], record);
        }
        if segments.first().is_some_and(|s| s.eq_ignore_ascii_case("api")) {
            segments.remove(0);
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let (org, rest) = match lower.as_slice() {
            ["v1", _, rest @ ..] if !rest.is_empty() => (segments[1], rest),
            _ => {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    pt::NOT_FOUND,
                    format!("there is no route {path}"),
                ))
            }
        };
        record.organization = org.to_owned();
        let expect = |m: Method| {
            if *method == m {
                Ok(())
            } else {
                Err(Refusal {
                    allow: Some(m.clone()),
                    ..refuse(
                        StatusCode::METHOD_NOT_ALLOWED,
                        pt::METHOD_NOT_ALLOWED,
                        format!("{path} accepts {m} only"),
                    )
                })
            }
        };
        let known = matches!(
            rest,
            ["cryptoki", "mysigningpolicies"]
                | ["signingrequests", "signhash"]
                | ["signingrequests", _]
                | ["signingrequests", _, "status"]
        );
        if !known {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                pt::NOT_FOUND,
                format!("there is no route {path}"),
            ));
        }
        let token_id = self.authenticate(authorization)?;
        record.token_id = Some(token_id.clone());
        if org != self.state.organization_id {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                pt::FORBIDDEN,
                format!("this token does not belong to organization {org}; check OrganizationId (SIGNPATH_ORGANIZATION_ID)"),
            ));
        }
        match rest {
            ["cryptoki", "mysigningpolicies"] => {
                expect(Method::GET)?;
                self.my_signing_policies(&token_id, query)
            }
            ["signingrequests", "signhash"] => {
                expect(Method::POST)?;
                if !content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json")) {
                    return Err(refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        pt::MALFORMED_REQUEST,
                        "send the request as Content-Type: application/json",
                    ));
                }
                self.sign_hash(&token_id, body, origin_token, record)
            }
            ["signingrequests", _, status] => {
                expect(Method::GET)?;
                let id = segments[segments.len() - 2];
                let _ = status;
                self.request_status(&token_id, id, true, record)
            }
            _ => {
                expect(Method::GET)?;
                let id = segments[segments.len() - 1];
                self.request_status(&token_id, id, false, record)
            }
        }
    }

    fn authenticate(&self, authorization: Option<&str>) -> Result<String, Refusal> {
        let unauthenticated = |detail: &str| {
            refuse(
                StatusCode::UNAUTHORIZED,
                pt::UNAUTHENTICATED,
                format!("{detail}; send Authorization: Bearer <API token> (SIGNPATH_API_TOKEN)"),
            )
        };
        let value = authorization.ok_or_else(|| unauthenticated("no API token"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated("the Authorization header is not a Bearer token"))?
            .trim();
        // SignPath's trusted-build-system form `token:tbsToken`: the API token is the part before the colon.
        let token = token.split(':').next().unwrap_or_default();
        self.state
            .token_id(token)
            .ok_or_else(|| unauthenticated("the API token is not valid"))
    }

    fn my_signing_policies(&self, token_id: &str, query: Option<&str>) -> Result<Success, Refusal> {
        let mut project = None;
        let mut policy = None;
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "projectslug" => project = Some(v.into_owned()),
                "signingpolicyslug" => policy = Some(v.into_owned()),
                _ => {}
            }
        }
        let list: Vec<_> = self
            .state
            .policies
            .iter()
            .filter(|p| p.submitters.contains(token_id))
            .filter(|p| {
                project
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(&p.project))
            })
            .filter(|p| policy.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&p.slug)))
            .map(|p| p.info.clone())
            .collect();
        Success::json(
            StatusCode::OK,
            &MySigningPolicies {
                signing_policies: list,
            },
            None,
        )
    }

    fn request_status(
        &self,
        token_id: &str,
        id: &str,
        status_only: bool,
        record: &mut Record,
    ) -> Result<Success, Refusal> {
        let not_found = || {
            refuse(
                StatusCode::NOT_FOUND,
                pt::SIGNING_REQUEST_NOT_FOUND,
                format!("no signing request {id} of this token"),
            )
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        if let Some(held) = self
            .approvals
            .get(id)
            .map_err(|_| audit_failure())?
            .filter(|h| h.token_id == token_id)
        {
            return self.held_status(held, status_only, record);
        }
        let stored = self
            .audit
            .signing_request(token_id, id)
            .map_err(|_| audit_failure())?
            .ok_or_else(not_found)?;
        if status_only {
            let status = SigningRequestStatus {
                status: "Completed".into(),
                is_final_status: true,
                web_link: None,
            };
            return Success::json(StatusCode::OK, &status, None);
        }
        Ok(Success::new(StatusCode::OK, stored))
    }

    /// A request that needed approval, as its client polls it: still waiting (202), denied, or approved, in which
    /// case the first poll that claims it signs it, once, and every later poll gets that answer.
    fn held_status(&self, held: Held, status_only: bool, record: &mut Record) -> Result<Success, Refusal> {
        record.project = Some(held.project.clone());
        record.policy = Some(held.policy.clone());
        record.release_group = held.release_group.clone();
        let web_link = Some(self.web_link(&held.request_id));
        let status_name = match held.status {
            Status::Pending | Status::Approved | Status::Signing => "WaitingForApproval",
            Status::Denied => "Denied",
            Status::Completed => "Completed",
        };
        if status_only {
            let status = SigningRequestStatus {
                status: status_name.into(),
                is_final_status: matches!(held.status, Status::Denied | Status::Completed),
                web_link,
            };
            return Success::json(StatusCode::OK, &status, None);
        }
        match held.status {
            Status::Completed => {
                let response = held.response.unwrap_or_default();
                Ok(Success::new(StatusCode::OK, response))
            }
            Status::Denied => {
                record.approval = Some(format!(
                    "denied by {}{}",
                    held.denied_by.as_deref().unwrap_or("an approver"),
                    held.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
                let response = SignHashResponse {
                    signing_request_id: held.request_id.clone(),
                    web_link,
                    status: Some("Denied".into()),
                    hash_signing_data: None,
                    hash_signing_result: None,
                };
                Success::json(StatusCode::OK, &response, None)
            }
            Status::Approved
                if self
                    .approvals
                    .claim(&held.request_id)
                    .map_err(|_| audit_failure())? =>
            {
                let signed = self.sign_approved(&held, record);
                match &signed {
                    Ok(success) => self
                        .approvals
                        .complete(&held.request_id, &success.body)
                        .map_err(|_| audit_failure())?,
                    Err(_) => self
                        .approvals
                        .unclaim(&held.request_id)
                        .map_err(|_| audit_failure())?,
                }
                signed
            }
            _ => self.waiting(&held.request_id, web_link),
        }
    }

    /// Signs a held request its approvers approved; the audit record of this poll carries the signature.
    fn sign_approved(&self, held: &Held, record: &mut Record) -> Result<Success, Refusal> {
        let request: SignHashRequest = serde_json::from_str(&held.request_json)
            .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, pt::INTERNAL, e.to_string()))?;
        let policy = self.authorize(&held.token_id, &held.project, &held.policy)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());
        record.approval = Some(format!("approved by {}", held.approved_by.join(", ")));
        // The record of the signature names what was signed, as the request's own record does.
        record.metadata = request
            .hash_signing_data
            .metadata
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok());
        let prepared = prepare(policy, &request.hash_signing_data, record)?;
        let response = self.sign_prepared(policy, &request, &prepared, &held.request_id, record)?;
        Success::json(StatusCode::OK, &response, None)
    }

    fn waiting(&self, request_id: &str, web_link: Option<String>) -> Result<Success, Refusal> {
        let response = SignHashResponse {
            signing_request_id: request_id.to_owned(),
            web_link,
            status: Some("WaitingForApproval".into()),
            hash_signing_data: None,
            hash_signing_result: None,
        };
        let mut success = Success::json(StatusCode::ACCEPTED, &response, None)?;
        success.headers.push((
            "location",
            format!("/v1/{}/SigningRequests/{request_id}", self.state.organization_id),
        ));
        success.headers.push(("retry-after", "2".into()));
        Ok(success)
    }

    pub fn web_link(&self, request_id: &str) -> String {
        format!("{}/Web/SigningRequests/{request_id}", self.state.public_url)
    }

    fn sign_hash(
        &self,
        token_id: &str,
        body: &[u8],
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Success, Refusal> {
        let request: SignHashRequest = serde_json::from_slice(body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                pt::MALFORMED_REQUEST,
                format!("the body is not a SignHash request: {e}"),
            )
        })?;
        record.project = Some(request.project_slug.clone());
        record.policy = Some(request.signing_policy_slug.clone());
        let metadata = request.hash_signing_data.metadata.as_ref();
        record.metadata = metadata.and_then(|m| serde_json::to_string(m).ok());
        record.release_group = metadata.and_then(|m| m.release_group.clone());
        let policy = self.authorize(token_id, &request.project_slug, &request.signing_policy_slug)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());

        let body_hash = hex::encode(sha2::Sha256::digest(body));
        let (idempotency, claim) = match record.idempotency_key.clone() {
            Some(key) => {
                // A client whose first attempt timed out retries while the gateway still works on it: the retry
                // waits for that answer instead of signing again.
                let claim = self
                    .in_flight
                    .claim(token_id, &key, Instant::now() + IN_FLIGHT_WAIT)
                    .map_err(|()| Refusal {
                        retry_after: Some(1),
                        ..refuse(
                            StatusCode::CONFLICT,
                            pt::IDEMPOTENCY_KEY_REUSED,
                            "a request with this Idempotency-Key is still being processed; retry shortly",
                        )
                    })?;
                // Looked up under the claim: whoever held it before stored its answer before releasing it.
                if let Some(stored) = self
                    .audit
                    .idempotent(token_id, &key)
                    .map_err(|_| audit_failure())?
                {
                    drop(claim);
                    return self.replay(token_id, stored, &body_hash, record);
                }
                (Some((token_id.to_owned(), key, body_hash.clone())), Some(claim))
            }
            None => (None, None),
        };

        let prepared = prepare(policy, &request.hash_signing_data, record)?;
        if let Some(rule) = &policy.origin {
            let verified = self
                .state
                .origins
                .verify(rule, origin_token)
                .map_err(|e| refuse(StatusCode::FORBIDDEN, pt::ORIGIN_REJECTED, e.to_string()))?;
            record.origin = Some(verified);
        }
        if let Some(approval) = &policy.approval {
            let covering = match (&record.release_group, &approval.release_group) {
                (Some(group), Some(limits)) => self
                    .approvals
                    .use_group(&policy.project, &policy.slug, group, limits, &record.request_id)
                    .map_err(|_| audit_failure())?
                    .map(|c| (group.clone(), c)),
                _ => None,
            };
            match covering {
                Some((group, covering)) => {
                    record.approval = Some(format!("release group {group}, approved with {covering}"));
                }
                None => {
                    let image = metadata.and_then(|m| m.oci.as_ref()).map(image_reference);
                    let request_json = serde_json::to_string(&request).map_err(|e| {
                        refuse(StatusCode::INTERNAL_SERVER_ERROR, pt::INTERNAL, e.to_string())
                    })?;
                    self.approvals
                        .hold(&NewHeld {
                            request_id: &record.request_id,
                            token_id,
                            project: &policy.project,
                            policy: &policy.slug,
                            request_json: &request_json,
                            required: approval.required,
                            approvers: &approval.approvers,
                            release_group: record.release_group.as_deref(),
                            image: image.as_deref(),
                            digest: record.digest.as_deref().unwrap_or_default(),
                        })
                        .map_err(|_| audit_failure())?;
                    record.approval = Some(format!(
                        "waiting for {} of {}",
                        approval.required,
                        approval.approvers.join(", ")
                    ));
                    tracing::info!(request_id = %record.request_id, policy = %format!("{}/{}", policy.project, policy.slug),
                        "signing request waits for approval");
                    let mut success =
                        self.waiting(&record.request_id, Some(self.web_link(&record.request_id)))?;
                    success.idempotency = idempotency;
                    success.claim = claim;
                    return Ok(success);
                }
            }
        }
        let response = self.sign_prepared(policy, &request, &prepared, &record.request_id.clone(), record)?;
        // Every signature is kept by request id (for polling); the idempotency key defaults to the request id.
        let idempotency =
            idempotency.or_else(|| Some((token_id.to_owned(), record.request_id.clone(), body_hash)));
        let mut success = Success::json(StatusCode::OK, &response, idempotency)?;
        success.claim = claim;
        Ok(success)
    }

    /// The stored answer to an earlier request with this idempotency key, if the body is the same.
    fn replay(
        &self,
        token_id: &str,
        (stored_hash, response): (String, String),
        body_hash: &str,
        record: &mut Record,
    ) -> Result<Success, Refusal> {
        if stored_hash != body_hash {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                pt::IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ));
        }
        record.algorithm = Some("replay".into());
        // A replay of a request that went to approval answers with where that request stands now.
        if let Ok(first) = serde_json::from_str::<SignHashResponse>(&response) {
            if first.status.as_deref() == Some("WaitingForApproval") {
                return self.request_status(token_id, &first.signing_request_id, false, record);
            }
        }
        Ok(Success::new(StatusCode::OK, response))
    }

    /// Signs in the HSM and builds the answer.
    fn sign_prepared(
        &self,
        policy: &Policy,
        request: &SignHashRequest,
        prepared: &Prepared,
        request_id: &str,
        record: &mut Record,
    ) -> Result<SignHashResponse, Refusal> {
        let signature = self
            .state
            .signer
            .sign(
                policy.key,
                policy.kind,
                prepared.scheme,
                prepared.hash,
                &prepared.digest,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "HSM signing failed");
                Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    problem_type: pt::HSM_UNAVAILABLE,
                    detail: "the HSM could not sign; try again later".into(),
                    retry_after: Some(5),
                    allow: None,
                }
            })?;
        record.signature_sha256 = Some(hex::encode(sha2::Sha256::digest(&signature)));
        Ok(SignHashResponse {
            signing_request_id: request_id.to_owned(),
            web_link: Some(self.web_link(request_id)),
            status: Some("Completed".into()),
            hash_signing_data: Some(HashEcho {
                hash: request.hash_signing_data.hash.clone(),
            }),
            hash_signing_result: Some(HashSigningResult {
                signature: BASE64.encode(&signature),
            }),
        })
    }

    fn authorize(&self, token_id: &str, project: &str, policy: &str) -> Result<&Policy, Refusal> {
        let found = self
            .state
            .policies
            .iter()
            .find(|p| p.project.eq_ignore_ascii_case(project) && p.slug.eq_ignore_ascii_case(policy))
            .ok_or_else(|| {
                refuse(
                    StatusCode::NOT_FOUND,
                    pt::POLICY_NOT_FOUND,
                    format!("there is no signing policy {project}/{policy}"),
                )
            })?;
        if !found.submitters.contains(token_id) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                pt::FORBIDDEN,
                format!(
                    "this token is not a submitter of {project}/{policy}; ask an administrator to add it"
                ),
            ));
        }
        Ok(found)
    }
}

/// A request checked against its policy, ready for the HSM.
struct Prepared {
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    digest: Vec<u8>,
}

fn prepare(
    policy: &Policy,
    data: &common::protocol::HashSigningData,
    record: &mut Record,
) -> Result<Prepared, Refusal> {
    let (scheme, hash) = choose_algorithm(policy.kind, data)?;
    record.algorithm = Some(scheme.to_string());
    record.hash_algorithm = Some(hash.notation_name().to_owned());
    let digest = BASE64.decode(data.hash.trim()).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            pt::INVALID_HASH,
            format!("hash is not base64: {e}"),
        )
    })?;
    record.digest = Some(hex::encode(&digest));
    if digest.len() != hash.output_len() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            pt::INVALID_HASH,
            format!(
                "a {hash} digest has {} bytes, this one has {}",
                hash.output_len(),
                digest.len()
            ),
        ));
    }
    Ok(Prepared { scheme, hash, digest })
}

/// `registry/repository:tag@digest`, as much of it as the client named.
pub fn image_reference(oci: &common::protocol::OciMetadata) -> String {
    let mut s = String::new();
    if let Some(r) = &oci.registry {
        s.push_str(r);
        s.push('/');
    }
    s.push_str(oci.repository.as_deref().unwrap_or("?"));
    if let Some(t) = &oci.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &oci.digest {
        s.push('@');
        s.push_str(d);
    }
    s
}

/// The scheme and hash a request asks for, checked against the policy's key.
fn choose_algorithm(
    kind: KeyKind,
    data: &common::protocol::HashSigningData,
) -> Result<(SignatureScheme, HashAlgorithm), Refusal> {
    let unsupported = |detail: String| refuse(StatusCode::BAD_REQUEST, pt::UNSUPPORTED_ALGORITHM, detail);
    match (data.signature_algorithm, kind) {
        (SignatureAlgorithm::Rsa, KeyKind::Rsa { .. }) => {
            let options = data.rsa_options.clone().unwrap_or_default();
            let hash = match (&options.hash_algorithm_name, &options.hash_algorithm_oid) {
                (Some(name), _) => HashAlgorithm::from_signpath_name(name).ok_or_else(|| {
                    unsupported(format!(
                        "hashAlgorithmName {name:?} is not Sha1, Sha256, Sha384 or Sha512"
                    ))
                })?,
                (None, Some(oid)) => oid
                    .parse()
                    .ok()
                    .and_then(|oid| HashAlgorithm::from_oid(&oid))
                    .ok_or_else(|| {
                        unsupported(format!("hashAlgorithmOid {oid} is not a SHA-1 or SHA-2 OID"))
                    })?,
                (None, None) => {
                    return Err(unsupported(
                        "rsaOptions needs hashAlgorithmName or hashAlgorithmOid".into(),
                    ))
                }
            };
            let scheme = match options.padding_mode.unwrap_or(PaddingMode::Pkcs1) {
                PaddingMode::Pkcs1 => SignatureScheme::RsaPkcs1,
                PaddingMode::Pss => SignatureScheme::RsaPss,
            };
            Ok((scheme, hash))
        }
        (SignatureAlgorithm::Ecdsa, KeyKind::Ec(_)) => {
            let format = data
                .ecdsa_options
                .as_ref()
                .and_then(|o| o.signature_format)
                .unwrap_or(EcdsaSignatureFormat::Ieee);
            let len = BASE64.decode(data.hash.trim()).map(|d| d.len()).unwrap_or(0);
            // ECDSA names no hash: the digest's length does (SHA-1 for PKCS#11 callers that still send it).
            let hash = match len {
                20 => HashAlgorithm::Sha1,
                len => HashAlgorithm::from_output_len(len).unwrap_or(HashAlgorithm::Sha256),
            };
            let scheme = match format {
                EcdsaSignatureFormat::Ieee => SignatureScheme::EcdsaIeee,
                EcdsaSignatureFormat::Asn1 => SignatureScheme::EcdsaAsn1,
            };
            Ok((scheme, hash))
        }
        (requested, kind) => Err(unsupported(format!(
            "this policy holds a {kind} key; signatureAlgorithm {requested:?} cannot be used"
        ))),
    }
}

pub struct Success {
    pub status: StatusCode,
    pub body: String,
    pub idempotency: Option<(String, String, String)>,
    /// The request's hold on its idempotency key, released once the answer is stored.
    pub claim: Option<InFlightClaim>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Success {
    pub fn new(status: StatusCode, body: String) -> Self {
        Self {
            status,
            body,
            idempotency: None,
            claim: None,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    pub fn html(status: StatusCode, body: String) -> Self {
        Self {
            content_type: "text/html; charset=utf-8",
            ..Self::new(status, body)
        }
    }

    fn json<T: serde::Serialize>(
        status: StatusCode,
        value: &T,
        idempotency: Option<(String, String, String)>,
    ) -> Result<Self, Refusal> {
        let body = serde_json::to_string(value)
            .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, pt::INTERNAL, e.to_string()))?;
        Ok(Self {
            idempotency,
            ..Self::new(status, body)
        })
    }
}

fn audit_failure() -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        problem_type: pt::INTERNAL,
        detail: "the audit log could not be written, so the request was not completed; try again later"
            .into(),
        retry_after: Some(5),
        allow: None,
    }
}

fn reply(success: Success) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(success.body)));
    *response.status_mut() = success.status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(success.content_type),
    );
    for (name, value) in success.headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}

fn problem_reply(refusal: &Refusal, request_id: &str) -> Reply {
    let problem = Problem {
        problem_type: refusal.problem_type.to_owned(),
        title: refusal.status.canonical_reason().unwrap_or("Error").to_owned(),
        status: refusal.status.as_u16(),
        detail: Some(refusal.detail.clone()),
        instance: None,
        request_id: Some(request_id.to_owned()),
    };
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = refusal.status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(PROBLEM_JSON),
    );
    if refusal.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            "www-authenticate",
            hyper::header::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(seconds) = refusal.retry_after {
        headers.insert("retry-after", hyper::header::HeaderValue::from(seconds));
    }
    if let Some(method) = &refusal.allow {
        if let Ok(value) = hyper::header::HeaderValue::from_str(method.as_str()) {
            headers.insert(hyper::header::ALLOW, value);
        }
    }
    response
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_key_makes_others_wait_until_it_is_released() {
        let set = Arc::new(InFlight::default());
        let soon = || Instant::now() + Duration::from_secs(5);
        let first = set.claim("t", "k", soon()).unwrap();
        // Another token's key of the same name is another pair.
        let other_token = set.claim("u", "k", soon()).unwrap();
        // Past its deadline, a second claimer gives up.
        assert!(set.claim("t", "k", Instant::now()).is_err());
        let waiter = {
            let set = set.clone();
            std::thread::spawn(move || {
                let claim = set
                    .claim("t", "k", Instant::now() + Duration::from_secs(5))
                    .unwrap();
                (claim, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        // The waiter must get the pair only after it is released, and well before its deadline.
        let released = Instant::now();
        drop(first);
        let (second, claimed) = waiter.join().unwrap();
        assert!(
            claimed >= released,
            "claimed {:?} before the release",
            released - claimed
        );
        assert!(
            claimed - released < Duration::from_secs(4),
            "{:?}",
            claimed - released
        );
        drop((second, other_token));
        assert!(set.keys.lock().unwrap().is_empty());
    }
    use common::keys::Curve;
    use common::protocol::{EcdsaOptions, HashSigningData, RsaOptions};

    fn data(algorithm: SignatureAlgorithm, hash_len: usize) -> HashSigningData {
        HashSigningData {
            signature_algorithm: algorithm,
            rsa_options: None,
            ecdsa_options: None,
            hash: BASE64.encode(vec![1u8; hash_len]),
            metadata: None,
        }
    }

    #[test]
    fn rsa_defaults_to_pkcs1_and_takes_a_name_or_an_oid() {
        let rsa = KeyKind::Rsa { bits: 2048 };
        let mut d = data(SignatureAlgorithm::Rsa, 48);
        d.rsa_options = Some(RsaOptions {
            hash_algorithm_name: Some("sha384".into()),
            ..Default::default()
        });
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap(),
            (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha384)
        );
        d.rsa_options = Some(RsaOptions {
            hash_algorithm_oid: Some("2.16.840.1.101.3.4.2.3".into()),
            padding_mode: Some(PaddingMode::Pss),
            ..Default::default()
        });
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap(),
            (SignatureScheme::RsaPss, HashAlgorithm::Sha512)
        );
        d.rsa_options = None;
        assert_eq!(
            choose_algorithm(rsa, &d).unwrap_err().problem_type,
            pt::UNSUPPORTED_ALGORITHM
        );
    }

    #[test]
    fn ecdsa_takes_the_hash_from_the_digest_length_and_defaults_to_ieee() {
        let ec = KeyKind::Ec(Curve::P384);
        assert_eq!(
            choose_algorithm(ec, &data(SignatureAlgorithm::Ecdsa, 48)).unwrap(),
            (SignatureScheme::EcdsaIeee, HashAlgorithm::Sha384)
        );
        let mut d = data(SignatureAlgorithm::Ecdsa, 64);
        d.ecdsa_options = Some(EcdsaOptions {
            signature_format: Some(EcdsaSignatureFormat::Asn1),
        });
        assert_eq!(
            choose_algorithm(ec, &d).unwrap(),
            (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha512)
        );
    }

    #[test]
    fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let refusal =
            choose_algorithm(KeyKind::Ec(Curve::P256), &data(SignatureAlgorithm::Rsa, 32)).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal.problem_type, pt::UNSUPPORTED_ALGORITHM);
    }
}
