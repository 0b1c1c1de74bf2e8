//! Load on the gateway over TLS on loopback, as many clients would put it: SignHash requests with distinct
//! digests, either from a fixed number of clients that each send the next request when the last one is answered
//! (closed loop: what throughput is possible), or at a fixed rate regardless of answers (open loop: the latency a
//! given rate gets). In the open loop every request is its own task, started on schedule whether or not earlier
//! ones were answered, so a slow gateway cannot slow the sender and hide its queue (no coordinated omission).
//! Latency counts from when the request started; how late the sender's timer started requests (tokio's timer
//! has millisecond granularity) is reported beside it, as the sender's own lag.
//!
//! The same load can be RFC 3161 timestamp queries to the gateway's TSA (`POST /timestamp`), each for a distinct
//! SHA-256 imprint with a nonce and `certReq`, as notation sends them: the TSA's figure next to SignHash's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cmpv2::status::PkiStatus;
use common::protocol::{
    new_request_id, EcdsaOptions, EcdsaSignatureFormat, HashSigningData, SignHashRequest, SignatureAlgorithm,
    IDEMPOTENCY_KEY,
};
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use hdrhistogram::Histogram;
use sha2::Digest;
use tokio::sync::Mutex;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

use crate::Result;

/// Where to send and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    pub api_url: String,
    pub organization_id: String,
    pub api_token: String,
    pub tls_ca_pem: Vec<u8>,
    pub project: String,
    pub policy: String,
    pub operation: Operation,
}

/// What each request of the load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/{org}/SigningRequests/SignHash` (EC-256, IEEE P1363), with the API token.
    SignHash,
    /// `POST /timestamp` with a DER TimeStampReq (no token, as a TSA client sends it).
    Timestamp,
}

impl Target {
    /// The same gateway, loaded with timestamp queries instead.
    pub fn timestamps(&self) -> Self {
        Self {
            operation: Operation::Timestamp,
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub signs: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Open loop only: how late the sender started requests, 99th percentile.
    pub sender_lag_p99_ms: f64,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.signs as f64 / self.seconds
    }
}

struct Shared {
    client: reqwest::Client,
    operation: Operation,
    url: String,
    token: String,
    project: String,
    policy: String,
    histogram: Mutex<Histogram<u64>>,
    errors: std::sync::atomic::AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn new(target: &Target) -> Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&target.tls_ca_pem)?)
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = target.api_url.trim_end_matches('/');
        Ok(Arc::new(Self {
            client,
            operation: target.operation,
            url: match target.operation {
                Operation::SignHash => {
                    format!("{base}/v1/{}/SigningRequests/SignHash", target.organization_id)
                }
                Operation::Timestamp => format!("{base}/timestamp"),
            },
            token: target.api_token.clone(),
            project: target.project.clone(),
            policy: target.policy.clone(),
            histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            errors: Default::default(),
            first_error: Default::default(),
        }))
    }

    /// The same client and target with empty counters (after a warm-up).
    fn fresh(&self) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            client: self.client.clone(),
            operation: self.operation,
            url: self.url.clone(),
            token: self.token.clone(),
            project: self.project.clone(),
            policy: self.policy.clone(),
            histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            errors: Default::default(),
            first_error: Default::default(),
        }))
    }

    /// One request for the digest made from `n`.
    async fn send(&self, n: u64) -> std::result::Result<(), String> {
        match self.operation {
            Operation::SignHash => self.sign(n).await,
            Operation::Timestamp => self.timestamp(n).await,
        }
    }

    /// One timestamp query; Ok when the TSA answered 200 with a granted TimeStampResp.
    async fn timestamp(&self, n: u64) -> std::result::Result<(), String> {
        let digest = sha2::Sha256::digest(n.to_be_bytes());
        let query = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::ID_SHA_256,
                    parameters: None,
                },
                hashed_message: OctetString::new(digest.to_vec()).map_err(|e| e.to_string())?,
            },
            req_policy: None,
            nonce: Some(Int::new(&(n | 1 << 62).to_be_bytes()).map_err(|e| e.to_string())?),
            cert_req: true,
            extensions: None,
        }
        .to_der()
        .map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/timestamp-query")
            .body(query)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let reply =
            TimeStampResp::from_der(&body).map_err(|e| format!("{status}: not a TimeStampResp: {e}"))?;
        if status != reqwest::StatusCode::OK
            || !matches!(
                reply.status.status,
                PkiStatus::Accepted | PkiStatus::GrantedWithMods
            )
            || reply.time_stamp_token.is_none()
        {
            return Err(format!("{status}: timestamp not granted: {:?}", reply.status));
        }
        Ok(())
    }

    /// One SignHash of a digest made from `n`; Ok when the gateway answered 200 with a signature.
    async fn sign(&self, n: u64) -> std::result::Result<(), String> {
        let digest = sha2::Sha256::digest(n.to_be_bytes());
        let request = SignHashRequest {
            project_slug: self.project.clone(),
            signing_policy_slug: self.policy.clone(),
            artifact_configuration_slug: None,
            description: None,
            hash_signing_data: HashSigningData {
                signature_algorithm: SignatureAlgorithm::Ecdsa,
                rsa_options: None,
                ecdsa_options: Some(EcdsaOptions {
                    signature_format: Some(EcdsaSignatureFormat::Ieee),
                }),
                hash: BASE64.encode(digest),
                metadata: None,
            },
        };
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            // As the module and the plugin send every SignHash: the gateway looks the key up and stores the answer
            // under it with the audit record.
            .header(IDEMPOTENCY_KEY, new_request_id())
            .json(&request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::OK || !body.windows(9).any(|w| w == b"signature") {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }

    async fn record(&self, result: std::result::Result<(), String>, since: Instant) {
        match result {
            Ok(()) => {
                let micros = since.elapsed().as_micros().max(1) as u64;
                let _ = self.histogram.lock().await.record(micros);
            }
            Err(e) => {
                self.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
            }
        }
    }

    async fn outcome(&self, seconds: f64) -> Result<Outcome> {
        let h = self.histogram.lock().await;
        let errors = self.errors.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = self
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            eprintln!("signpath-bench: {errors} failed requests under load, the first: {e}");
        }
        Ok(Outcome {
            signs: h.len(),
            errors,
            seconds,
            p50_ms: h.value_at_quantile(0.50) as f64 / 1e3,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
            max_ms: h.max() as f64 / 1e3,
            sender_lag_p99_ms: 0.0,
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // One thread: the load generator shares the machine with the gateway and should take as little as it can.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `clients` clients in a closed loop for `seconds`, after a warm-up that opens their connections.
pub fn closed_loop(target: &Target, clients: usize, seconds: f64) -> Result<Outcome> {
    runtime()?.block_on(async {
        let warm = Shared::new(target)?;
        let shared = warm.fresh()?;
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let warm_until = Instant::now() + Duration::from_secs_f64((seconds / 5.0).min(2.0));
        let started = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let tasks: Vec<_> = (0..clients as u64)
            .map(|c| {
                let (warm, shared, started) = (warm.clone(), shared.clone(), started.clone());
                tokio::spawn(async move {
                    let mut n = c << 40;
                    while Instant::now() < warm_until {
                        n += 1;
                        let _ = warm.send(n).await;
                    }
                    started
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(Instant::now);
                    while Instant::now() < deadline {
                        n += 1;
                        let t = Instant::now();
                        let r = shared.send(n).await;
                        shared.record(r, t).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        let from = started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(warm_until);
        shared.outcome(from.elapsed().as_secs_f64()).await
    })
}

/// `rate` requests per second for `seconds`, after a warm-up at the same rate.
pub fn open_loop(target: &Target, rate: f64, seconds: f64) -> Result<Outcome> {
    runtime()?.block_on(async {
        let shared = Shared::new(target)?;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let warm_up = (rate * 2.0) as u64;
        let total = warm_up + (rate * seconds) as u64;
        let start = tokio::time::Instant::now();
        let mut measuring_since = None;
        let mut tasks = Vec::with_capacity(total as usize);
        let mut lag = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval * i as u32;
            tokio::time::sleep_until(due).await;
            let due = due.into_std();
            lag.push(due.elapsed());
            if i == warm_up {
                measuring_since = Some(Instant::now());
            }
            let shared = shared.clone();
            let measured = i >= warm_up;
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let r = shared.send(i).await;
                if measured {
                    shared.record(r, started).await;
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let since = measuring_since.unwrap_or_else(Instant::now);
        let mut outcome = shared.outcome(since.elapsed().as_secs_f64().max(seconds)).await?;
        lag.sort();
        outcome.sender_lag_p99_ms = lag
            .get(lag.len() * 99 / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        Ok(outcome)
    })
}
