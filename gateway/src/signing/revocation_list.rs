//! The request revocation list the gateway publishes (`common::revocation_list`): every revoked signing request,
//! release group and policy-after-a-moment, each with the SHA-256 of the signatures the audit log shows it covers,
//! an issue time and a next update (`[pki] crl_validity_seconds`, as for the CRLs), signed in the HSM by the
//! issuing CA, the last of `[pki]`.
//!
//! Why the CA's key and not a policy's: a policy's key signs whatever digest a submitter sends, so a submitter
//! could have it sign a list of their own making; the CA's key signs only what the gateway itself makes
//! (certificates, CRLs, and this list). And every verifier of a policy's signatures already holds that CA's
//! certificate in the signature's own chain, so it needs nothing more to trust the list.
//!
//! The online answer ("is request X revoked") is the same document for one request: the revocations that cover
//! it, judged against what the audit log recorded of it (its policy, release group and time), signed the same way
//! and naming the request, so a verifier checks both forms with one code path and no TLS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::revocation_list::{
    algorithm_name, format_time, parse_time, Revocation, RevocationList, SignatureFacts, SignedList,
};
use time::OffsetDateTime;

use crate::config::PkiConfig;
use crate::error::BoxError;
use crate::hsm::Signer;
use crate::store::request_revocations::covered;
use crate::store::RequestRevocationStore;

/// How long a published list, or an online answer, is served again unchanged (the revocations themselves are read
/// on every request).
const REUSE: Duration = Duration::from_secs(30);

/// How many requests' online answers are kept for [`REUSE`]. The online answer is served on the plain-HTTP listener
/// to anyone: without the reuse, each query would cost an HSM signature, and a loop of queries for one public
/// request id (it is in the signature) would keep the HSM busy. With it, one signature per request id and 30 s.
const KEPT_ANSWERS: usize = 10_000;

/// What an online answer says.
#[derive(Debug)]
pub enum Answer {
    /// The signed answer (its `revoked` empty if nothing covers the request).
    Signed(Vec<u8>),
    /// The audit log has no signing request with this id that signed.
    Unknown,
}

/// Publishes the list and the online answers.
pub struct ListPublisher {
    pki: PkiConfig,
    base: PathBuf,
    organization: String,
    signer: Arc<Signer>,
    store: Arc<dyn RequestRevocationStore>,
    published: Mutex<Option<Published>>,
    /// Online answers by the id they were asked for. Held while an answer is signed, so queries never sign in
    /// parallel.
    answers: Mutex<HashMap<String, Published>>,
}

struct Published {
    at: Instant,
    revocations: Vec<Revocation>,
    bytes: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ListPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListPublisher").finish_non_exhaustive()
    }
}

impl ListPublisher {
    pub fn new(
        pki: PkiConfig,
        base: &Path,
        organization: String,
        signer: Arc<Signer>,
        store: Arc<dyn RequestRevocationStore>,
    ) -> Self {
        Self {
            pki,
            base: base.to_path_buf(),
            organization,
            signer,
            store,
            published: Mutex::new(None),
            answers: Mutex::new(HashMap::new()),
        }
    }

    fn validity(&self) -> Duration {
        Duration::from_secs(self.pki.crl_validity_seconds.max(2))
    }

    /// The current list, signed. Blocking (database, HSM).
    pub fn list(&self) -> Result<Arc<Vec<u8>>, BoxError> {
        let revocations = self.store.revocations()?;
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = published.as_ref() {
            if p.revocations == revocations && p.at.elapsed() < REUSE.min(self.validity() / 2) {
                return Ok(p.bytes.clone());
            }
        }
        let bytes = Arc::new(self.export(self.validity())?);
        *published = Some(Published {
            at: Instant::now(),
            revocations,
            bytes: bytes.clone(),
        });
        Ok(bytes)
    }

    /// A list valid for `valid_for`, signed now (`signpath-gateway revocation-list` for verifiers offline).
    pub fn export(&self, valid_for: Duration) -> Result<Vec<u8>, BoxError> {
        let mut revoked = self.store.revocations()?;
        for r in &mut revoked {
            r.signatures = covered(&r.scope, self.store.candidates(&r.scope)?)
                .into_iter()
                .filter_map(|c| c.signature_sha256)
                .collect();
        }
        self.sign(revoked, None, valid_for)
    }

    /// The online answer for request `id` (the gateway's id or the client's).
    pub fn answer(&self, id: &str) -> Result<Answer, BoxError> {
        let requests = self.store.signed_requests(id)?;
        if requests.is_empty() {
            return Ok(Answer::Unknown);
        }
        let revocations = self.store.revocations()?;
        let mut covering: Vec<Revocation> = Vec::new();
        for request in &requests {
            let facts = SignatureFacts {
                request: Some(&request.request_id),
                policy: Some(&request.policy),
                release_group: request.release_group.as_deref(),
                signed_at: parse_time(&request.completed).ok(),
                signature_sha256: None,
            };
            let client = SignatureFacts {
                request: request.client_request_id.as_deref(),
                ..facts.clone()
            };
            for r in &revocations {
                if (r.covers(&facts) || r.covers(&client)) && !covering.contains(r) {
                    covering.push(r.clone());
                }
            }
        }
        let reuse = REUSE.min(self.validity() / 2);
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = answers.get(id) {
            if kept.revocations == covering && kept.at.elapsed() < reuse {
                return Ok(Answer::Signed(kept.bytes.as_ref().clone()));
            }
        }
        let bytes = Arc::new(self.sign(covering.clone(), Some(id), self.validity())?);
        if answers.len() >= KEPT_ANSWERS {
            answers.retain(|_, kept| kept.at.elapsed() < reuse);
            if answers.len() >= KEPT_ANSWERS {
                answers.clear();
            }
        }
        answers.insert(
            id.to_owned(),
            Published {
                at: Instant::now(),
                revocations: covering,
                bytes: bytes.clone(),
            },
        );
        Ok(Answer::Signed(bytes.as_ref().clone()))
    }

    /// The serials of the certificates the gateway's CAs revoked (`[pki] revocations`; `revoke` writes the shared
    /// store and that file alike).
    fn revoked_certificates(&self) -> Result<Vec<String>, BoxError> {
        let path = crate::config::resolve(&self.base, &self.pki.revocations);
        let revocations = crate::pki::revocations::Revocations::load(&path)?;
        Ok(revocations
            .revoked
            .iter()
            .map(|r| r.serial.to_ascii_lowercase())
            .collect())
    }

    fn sign(
        &self,
        revoked: Vec<Revocation>,
        request: Option<&str>,
        valid_for: Duration,
    ) -> Result<Vec<u8>, BoxError> {
        let now = OffsetDateTime::now_utc();
        let list = RevocationList {
            version: 1,
            organization: self.organization.clone(),
            request: request.map(str::to_owned),
            issued_at: format_time(now),
            next_update: format_time(now + valid_for),
            revoked,
            revoked_certificates: self.revoked_certificates()?,
        };
        let bytes = serde_json::to_vec(&list)?;
        let cas = crate::pki::ca::load(&self.pki, &self.base, &self.signer)?;
        let issuing = cas
            .last()
            .ok_or("[pki] names no CA to sign the revocation list")?;
        let (kind, hash) = issuing.ca.key.kind_and_hash();
        let signature = issuing.ca.key.sign_message(&bytes)?;
        let mut certificates = Vec::new();
        for ca in cas.iter().rev() {
            certificates.push(der::Encode::to_der(&ca.ca.cert)?);
        }
        let signed = SignedList::new(&bytes, algorithm_name(kind, hash), &signature, &certificates);
        Ok(serde_json::to_vec_pretty(&signed)?)
    }
}
