//! `SignHash`: a digest in, a signature out, through every check the policy asks for. A request that needs
//! approval is held (and answered 202) unless an approved request of its release group covers it.

use std::time::Instant;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::protocol::{HashEcho, HashSigningResult, SignHashRequest, SignHashResponse};
use sha2::Digest;

use super::algorithm::{prepare, Prepared};
use super::approval_gate::{Gate, Hold};
use super::idempotency::{claim_or_answer, Claimed, KeyClaim, Unclaimed, IN_FLIGHT_WAIT};
use super::outcome::Answer;
use super::refusal::{refuse, store_failure, Reason, Refusal};
use super::state::Policy;
use super::Core;
use crate::store::{Record, StoredAnswer};

/// What [`Core::sign_request`] decided about a typed `SignHash` request.
pub(super) enum Signing {
    /// Answered without a new signature: held for approval, or the stored answer to an earlier request with the
    /// same idempotency key. Goes out as it is.
    Answered(Answer),
    /// Signed now. Each caller writes its own document around the signature ([`Signed::answer`]).
    Signed(Signed),
}

/// A request signed now: the `SignHash` response, and the request's idempotency key and claim, which the answer
/// carries to the audit writer.
pub(super) struct Signed {
    pub response: SignHashResponse,
    idempotency: Option<(String, String, String)>,
    claim: Option<KeyClaim>,
}

impl Signed {
    /// The base64 signature of the response.
    pub fn signature(&self) -> Result<&str, Refusal> {
        self.response
            .hash_signing_result
            .as_ref()
            .map(|result| result.signature.as_str())
            .ok_or_else(|| refuse(Reason::Internal, "the signature is missing"))
    }

    /// The answer with `body` as its document; stored under the request's idempotency key with its record.
    pub fn answer(self, body: String) -> Answer {
        let mut answer = Answer::done(body);
        answer.idempotency = self.idempotency;
        answer.claim = self.claim;
        answer
    }
}

impl Core {
    /// `POST /v1/{org}/SigningRequests/SignHash`: the whole life of one hash-signing request after
    /// authentication. `body` is the request as received (its hash keys idempotency).
    pub fn sign_hash(
        &self,
        token_id: &str,
        body: &[u8],
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let request: SignHashRequest = serde_json::from_slice(body).map_err(|e| {
            refuse(
                Reason::MalformedRequest,
                format!("the body is not a SignHash request: {e}"),
            )
        })?;
        let body_hash = hex::encode(sha2::Sha256::digest(body));
        match self.sign_request(token_id, &request, body_hash, origin_token, record)? {
            Signing::Answered(answer) => Ok(answer),
            Signing::Signed(signed) => {
                let body = serde_json::to_string(&signed.response)
                    .map_err(|e| refuse(Reason::Internal, e.to_string()))?;
                Ok(signed.answer(body))
            }
        }
    }

    /// One typed `SignHash` request through every check its policy asks for (authorization, idempotency, origin,
    /// approval), then signed in the HSM. `body_hash` is the hex SHA-256 of the request as its client sent it:
    /// a retry under the same idempotency key must send the same. Both the `SignHash` route and fast signing
    /// (`fast_signing`) come here.
    pub(super) fn sign_request(
        &self,
        token_id: &str,
        request: &SignHashRequest,
        body_hash: String,
        origin_token: Option<&str>,
        record: &mut Record,
    ) -> Result<Signing, Refusal> {
        record.project = Some(request.project_slug.clone());
        record.policy = Some(request.signing_policy_slug.clone());
        let metadata = request.hash_signing_data.metadata.as_ref();
        record.metadata = metadata.and_then(|m| serde_json::to_string(m).ok());
        record.release_group = metadata.and_then(|m| m.release_group.clone());
        let policy = self.authorize(token_id, &request.project_slug, &request.signing_policy_slug)?;
        record.certificate_sha256 = Some(policy.certificate_sha256.clone());

        let (idempotency, mut claim) = match record.idempotency_key.clone() {
            Some(key) => {
                // A client whose first attempt timed out retries while a gateway (this one or another replica)
                // still works on it: the retry waits for that answer instead of signing again.
                let deadline = Instant::now() + IN_FLIGHT_WAIT;
                let claim =
                    match claim_or_answer(&self.stores.audit, token_id, &key, &record.request_id, deadline) {
                        Ok(Claimed::Claim(claim)) => claim,
                        Ok(Claimed::Answered(stored)) => {
                            return self
                                .replay(token_id, stored, &body_hash, record)
                                .map(Signing::Answered)
                        }
                        Err(Unclaimed::StillHeld) => {
                            return Err(refuse(
                                Reason::IdempotencyKeyInFlight,
                                "a request with this Idempotency-Key is still being processed; retry shortly",
                            ))
                        }
                        Err(Unclaimed::Store(e)) => {
                            tracing::error!(error = %e, "could not claim the idempotency key");
                            return Err(store_failure());
                        }
                    };
                (Some((token_id.to_owned(), key, body_hash.clone())), Some(claim))
            }
            None => (None, None),
        };

        let prepared = prepare(policy, &request.hash_signing_data, record)?;
        let binding = self.check_origin(policy, origin_token, None, record)?;
        if policy.approval.is_some() {
            let image = metadata.and_then(|m| m.oci.as_ref()).map(image_reference);
            let request_json =
                serde_json::to_string(request).map_err(|e| refuse(Reason::Internal, e.to_string()))?;
            let digest = record.digest.clone().unwrap_or_default();
            let hold = Hold {
                request_json: &request_json,
                image: image.as_deref(),
                digest: &digest,
                signatures: 1,
            };
            if self.approval_gate(policy, token_id, binding.as_deref(), hold, record)? == Gate::Held {
                let mut answer = self.waiting(&record.request_id, Some(self.web_link(&record.request_id)))?;
                answer.idempotency = idempotency;
                answer.claim = claim;
                return Ok(Signing::Answered(answer));
            }
        }
        if let Some(claim) = claim.as_mut() {
            if !claim.still_held().map_err(|_| store_failure())? {
                return Err(refuse(
                    Reason::IdempotencyKeyInFlight,
                    "this request outlived the claim on its Idempotency-Key and a retry took it over; the retry answers",
                ));
            }
        }
        let response = self.sign_prepared(policy, request, &prepared, &record.request_id.clone(), record)?;
        // Every signature is kept by request id (for polling); the idempotency key defaults to the request id.
        let idempotency =
            idempotency.or_else(|| Some((token_id.to_owned(), record.request_id.clone(), body_hash)));
        Ok(Signing::Signed(Signed {
            response,
            idempotency,
            claim,
        }))
    }

    /// The stored answer to an earlier request with this idempotency key, if the body is the same.
    fn replay(
        &self,
        token_id: &str,
        stored: StoredAnswer,
        body_hash: &str,
        record: &mut Record,
    ) -> Result<Answer, Refusal> {
        let StoredAnswer {
            body_sha256: stored_hash,
            response,
        } = stored;
        if stored_hash != body_hash {
            return Err(refuse(
                Reason::IdempotencyKeyReused,
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
        Ok(Answer::done(response))
    }

    /// Signs in the HSM and builds the answer.
    pub(super) fn sign_prepared(
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
                refuse(Reason::HsmUnavailable, "the HSM could not sign; try again later")
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
}

/// `registry/repository:tag@digest`, as much of it as the client named.
fn image_reference(oci: &common::protocol::OciMetadata) -> String {
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
