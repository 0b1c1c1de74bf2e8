//! `verify-signature` with `SIGNATURE_VERIFIER.TRUSTED_IDENTITY` and `SIGNATURE_VERIFIER.REVOCATION_CHECK`:
//! notation runs it for envelopes this plugin made (`envelope.rs`; they name it in the critical
//! `io.cncf.notary.verificationPlugin`), after it verified the signature and its chain against the trust store.
//! The trusted-identity check matches the signing certificate's subject against the trust policy's
//! `trustedIdentities` as notation would (`identity.rs`). For revocation the plugin asks whether what signed was
//! revoked: the signing request, its release group, or its policy after a moment (`common::revocation_list`).
//!
//! Sources, from pluginConfig (`notation verify --plugin-config`):
//! - `revocation_url=http://HOST:PORT` (the gateway's CRL listener): online, the gateway's signed answer for the
//!   request, judged by what its audit log recorded of it;
//! - `revocation_list=FILE` (written by `signpath-gateway revocation-list`, or fetched from `/revocations`):
//!   offline, and the fallback when the gateway cannot be reached.
//!
//! Either document must be signed by a CA of the signature's own certificate chain (which notation has just
//! trusted) and be within its validity: an expired, foreign or badly signed one fails the check, closed. With no
//! source the check fails and says so, and notation's trust policy decides what that means (`revocation`:
//! enforce fails the verification, log only warns, skip never asks).
//!
//! Declaring REVOCATION_CHECK makes notation leave revocation to the plugin for these envelopes, so the list also
//! carries the certificates the gateway's CAs revoked, and a revoked certificate of the chain fails the check as
//! notation's own CRL check would.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::revocation_list::{attribute, parse_time, RevocationList, SignatureFacts, SignedList};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::commands::{check_contract_version, parse};
use crate::error::PluginError;

pub use crate::protocol::{CAPABILITY_REVOCATION_CHECK, CAPABILITY_TRUSTED_IDENTITY};

/// pluginConfig keys.
pub const REVOCATION_URL: &str = "revocation_url";
pub const REVOCATION_LIST: &str = "revocation_list";

/// How long the online check waits for the gateway.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureRequest {
    #[serde(default)]
    pub contract_version: Option<String>,
    #[serde(default)]
    pub signature: Option<Signature>,
    #[serde(default)]
    pub trust_policy: Option<TrustPolicy>,
    #[serde(default)]
    pub plugin_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    #[serde(default)]
    pub critical_attributes: Option<CriticalAttributes>,
    #[serde(default)]
    pub unprocessed_attributes: Option<Vec<String>>,
    #[serde(default)]
    pub certificate_chain: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalAttributes {
    #[serde(default)]
    pub authentic_signing_time: Option<String>,
    #[serde(default)]
    pub extended_attributes: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicy {
    #[serde(default)]
    pub trusted_identities: Option<Vec<String>>,
    #[serde(default)]
    pub signature_verification: Option<Vec<String>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct VerificationResult {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureResponse {
    pub verification_results: BTreeMap<String, VerificationResult>,
    pub processed_attributes: Vec<String>,
}

/// `verify-signature`.
pub fn verify_signature(input: &[u8]) -> Result<VerifySignatureResponse, PluginError> {
    const COMMAND: &str = "verify-signature";
    let request: VerifySignatureRequest = parse(COMMAND, input)?;
    check_contract_version(COMMAND, request.contract_version.as_deref())?;
    let signature = request
        .signature
        .ok_or_else(|| PluginError::Request("the verify-signature request has no signature".into()))?;
    let chain = signature
        .certificate_chain
        .unwrap_or_default()
        .iter()
        .map(|c| BASE64.decode(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            PluginError::Request(format!("signature.certificateChain is not standard base64: {e}"))
        })?;
    let critical = signature.critical_attributes.unwrap_or_default();
    let extended = critical.extended_attributes.unwrap_or_default();
    let text = |name: &str| extended.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let (request_id, policy, group, signed_at) = (
        text(attribute::SIGNING_REQUEST),
        text(attribute::SIGNING_POLICY),
        text(attribute::RELEASE_GROUP),
        text(attribute::SIGNED_AT).or(critical.authentic_signing_time),
    );
    let facts = SignatureFacts {
        request: request_id.as_deref(),
        policy: policy.as_deref(),
        release_group: group.as_deref(),
        signed_at: signed_at.as_deref().and_then(|t| parse_time(t).ok()),
        signature_sha256: None,
    };
    let trust_policy = request.trust_policy.unwrap_or_default();
    let wanted = trust_policy.signature_verification.unwrap_or_default();
    let mut results = BTreeMap::new();
    if wanted.iter().any(|c| c == CAPABILITY_TRUSTED_IDENTITY) {
        let trusted = trust_policy.trusted_identities.unwrap_or_default();
        let result = match crate::identity::check(&trusted, chain.first().map(Vec::as_slice)) {
            Ok(()) => VerificationResult {
                success: true,
                reason: None,
            },
            Err(reason) => failed(reason),
        };
        tracing::info!(success = result.success, reason = ?result.reason, "verify-signature: trusted identity check");
        results.insert(CAPABILITY_TRUSTED_IDENTITY.to_owned(), result);
    }
    if wanted.iter().any(|c| c == CAPABILITY_REVOCATION_CHECK) {
        let config = request.plugin_config.unwrap_or_default();
        let get = |key: &str| {
            config
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let result = revocation_check(&facts, &chain, get(REVOCATION_URL), get(REVOCATION_LIST));
        tracing::info!(request = ?facts.request, success = result.success, reason = ?result.reason, "verify-signature: revocation check");
        results.insert(CAPABILITY_REVOCATION_CHECK.to_owned(), result);
    }
    let processed = signature
        .unprocessed_attributes
        .unwrap_or_default()
        .into_iter()
        .filter(|a| attribute::ALL.contains(&a.as_str()))
        .collect();
    Ok(VerifySignatureResponse {
        verification_results: results,
        processed_attributes: processed,
    })
}

fn failed(reason: String) -> VerificationResult {
    VerificationResult {
        success: false,
        reason: Some(reason),
    }
}

/// The check against the online answer, else the list file; fails closed on anything it cannot trust.
fn revocation_check(
    facts: &SignatureFacts<'_>,
    chain: &[Vec<u8>],
    url: Option<String>,
    file: Option<String>,
) -> VerificationResult {
    // The CAs of the signature's chain (not its leaf, whose key signs what submitters send) may sign the list.
    let signers: Vec<Vec<u8>> = chain.iter().skip(1).cloned().collect();
    let now = OffsetDateTime::now_utc();
    let mut unreachable = None;
    if let Some(url) = url.as_deref() {
        match online(url, facts, chain, &signers, now) {
            Ok(Some(result)) => return result,
            Ok(None) => {}
            Err(reason) => unreachable = Some(reason),
        }
    }
    let Some(file) = file else {
        return failed(unreachable.unwrap_or_else(|| {
            format!(
                "no revocation source: set --plugin-config {REVOCATION_URL}=http://GATEWAY-CRL-LISTENER (online) or \
                 {REVOCATION_LIST}=FILE (offline); the trust policy's revocation setting decides what this means"
            )
        }));
    };
    let list = std::fs::read(&file)
        .map_err(|e| format!("cannot read the revocation list {file}: {e}"))
        .and_then(|bytes| read_list(&bytes, &signers, now).map_err(|e| format!("{file}: {e}")));
    match list {
        Ok(list) => with_certificates(judge(&list, facts), &list, chain),
        Err(reason) => failed(match unreachable {
            Some(online) => format!("{online}; and {reason}"),
            None => reason,
        }),
    }
}

fn read_list(bytes: &[u8], signers: &[Vec<u8>], now: OffsetDateTime) -> Result<RevocationList, String> {
    SignedList::parse(bytes)
        .and_then(|s| s.verify(signers, now))
        .map_err(|e| e.to_string())
}

/// The verdict of `list` on the signature.
fn judge(list: &RevocationList, facts: &SignatureFacts<'_>) -> VerificationResult {
    match list.revocation_of(facts) {
        Some(r) => failed(format!(
            "{} was revoked at {}: {}",
            r.scope, r.revoked_at, r.reason
        )),
        None => VerificationResult {
            success: true,
            reason: None,
        },
    }
}

/// `result`, failed if a certificate of the chain is one the gateway's CAs revoked (the list carries their
/// serial numbers, since notation leaves revocation to this plugin for these envelopes).
fn with_certificates(
    result: VerificationResult,
    list: &RevocationList,
    chain: &[Vec<u8>],
) -> VerificationResult {
    for der in chain {
        let Ok(cert) = <x509_cert::Certificate as der::Decode>::from_der(der) else {
            continue;
        };
        let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
        if list
            .revoked_certificates
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&serial))
        {
            return failed(format!(
                "the certificate {} (serial {serial}) of the signature's chain is revoked",
                cert.tbs_certificate.subject
            ));
        }
    }
    result
}

/// The gateway's signed answer for the signature's request: Ok(None) when the signature names no request (the
/// list file, if any, decides), Err when the gateway cannot be reached or its answer cannot be trusted.
fn online(
    url: &str,
    facts: &SignatureFacts<'_>,
    chain: &[Vec<u8>],
    signers: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Option<VerificationResult>, String> {
    let base = url.trim_end_matches('/');
    let client = reqwest::blocking::Client::builder()
        .timeout(ONLINE_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let (address, asked) = match facts.request {
        Some(id) => (format!("{base}/revocations/requests/{id}"), Some(id)),
        None => (format!("{base}/revocations"), None),
    };
    let response = client
        .get(&address)
        .send()
        .map_err(|e| format!("cannot reach the gateway's revocation service at {address}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND && asked.is_some() {
        return Ok(Some(failed(format!(
            "the gateway has no record of signing request {} that signed: the signature names a request the gateway did not sign",
            asked.unwrap_or_default()
        ))));
    }
    if !response.status().is_success() {
        return Err(format!(
            "the gateway answered {address} with HTTP {}",
            response.status()
        ));
    }
    let bytes = response
        .bytes()
        .map_err(|e| format!("cannot read the gateway's answer from {address}: {e}"))?;
    let list =
        read_list(&bytes, signers, now).map_err(|e| format!("the gateway's answer from {address}: {e}"))?;
    if list.request.as_deref() != asked {
        return Err(format!(
            "the gateway's answer from {address} is about {:?}, not the signature's request {asked:?}",
            list.request
        ));
    }
    Ok(Some(with_certificates(judge(&list, facts), &list, chain)))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
