//! The two documents cosign (v2.6 and later, through sigstore-go) reads to sign and verify without the public
//! Sigstore: `trusted_root.json` (`--trusted-root`: the keys and certificates of the CA, the transparency logs and
//! the TSAs) and `signing_config.json` (`--signing-config`: where the CA, the logs and the TSAs are), in the JSON
//! of sigstore/protobuf-specs (`TrustedRoot` v0.1, `SigningConfig` v0.2). Both name this gateway only: the keyless
//! CA, the RFC 3161 TSA, and the transparency logs the caller passes in. Plain data in, JSON out.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use der::Decode;
use serde_json::{json, Value};
use x509_cert::Certificate;

use super::demo::PkiError;

pub const TRUSTED_ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
pub const SIGNING_CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";

/// A transparency log for the documents, as the log's side describes it.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    /// The log's base URL (clients add `/api/v2/log/entries`).
    pub base_url: String,
    /// Its major API version (2 for Rekor v2).
    pub api_version: u32,
    /// Its public key, a DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The key's algorithm in protobuf-specs' words (`PKIX_ECDSA_P256_SHA_256`, `PKIX_ED25519`).
    pub key_details: String,
    /// The log id clients match entries with (Rekor v2: the checkpoint key id).
    pub log_id: Vec<u8>,
}

/// A CA or TSA: its URL and its chain, DER, leaf (or intermediate) first, root last.
#[derive(Debug, Clone)]
pub struct Authority<'a> {
    pub url: String,
    pub chain: &'a [Vec<u8>],
}

/// What the documents are built from.
#[derive(Debug, Clone)]
pub struct Services<'a> {
    /// The organization that runs them (`operator` in the signing config).
    pub operator: String,
    pub ca: Authority<'a>,
    pub tsa: Option<Authority<'a>>,
    pub logs: Vec<TransparencyLog>,
}

/// `trusted_root.json`.
pub fn trusted_root(services: &Services<'_>) -> Result<String, PkiError> {
    let mut tsas = Vec::new();
    if let Some(tsa) = &services.tsa {
        tsas.push(certificate_authority(tsa)?);
    }
    let log_start = root_valid_from(&services.ca)?;
    let tlogs: Vec<Value> = services
        .logs
        .iter()
        .map(|log| {
            json!({
                "baseUrl": log.base_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": BASE64.encode(&log.public_key),
                    "keyDetails": log.key_details,
                    "validFor": {"start": log_start},
                },
                "logId": {"keyId": BASE64.encode(&log.log_id)},
            })
        })
        .collect();
    let document = json!({
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": tlogs,
        "certificateAuthorities": [certificate_authority(&services.ca)?],
        "ctlogs": [],
        "timestampAuthorities": tsas,
    });
    Ok(serde_json::to_string_pretty(&document)?)
}

/// `signing_config.json`: this gateway's CA and TSA, and the logs; no OIDC provider (CI jobs bring their token).
pub fn signing_config(services: &Services<'_>) -> Result<String, PkiError> {
    let service = |url: &str, version: u32, start: &str| {
        json!({
            "url": url,
            "majorApiVersion": version,
            "validFor": {"start": start},
            "operator": services.operator,
        })
    };
    let ca_start = valid_from(&services.ca)?;
    let log_start = root_valid_from(&services.ca)?;
    let mut tsas = Vec::new();
    if let Some(tsa) = &services.tsa {
        tsas.push(service(&tsa.url, 1, &valid_from(tsa)?));
    }
    let logs: Vec<Value> = services
        .logs
        .iter()
        .map(|log| service(&log.base_url, log.api_version, &log_start))
        .collect();
    let document = json!({
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [service(&services.ca.url, 1, &ca_start)],
        "oidcUrls": [],
        "rekorTlogUrls": logs,
        "tsaUrls": tsas,
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    });
    Ok(serde_json::to_string_pretty(&document)?)
}

/// A `CertificateAuthority` entry: subject, URI, chain, and valid from its first certificate's notBefore.
fn certificate_authority(authority: &Authority<'_>) -> Result<Value, PkiError> {
    let first = Certificate::from_der(authority.chain.first().ok_or("an empty certificate chain")?)?;
    let subject = &first.tbs_certificate.subject;
    Ok(json!({
        "subject": {
            "organization": attribute(subject, const_oid::db::rfc4519::O),
            "commonName": attribute(subject, const_oid::db::rfc4519::CN),
        },
        "uri": authority.url,
        "certChain": {
            "certificates": authority
                .chain
                .iter()
                .map(|der| json!({"rawBytes": BASE64.encode(der)}))
                .collect::<Vec<_>>(),
        },
        "validFor": {"start": valid_from(authority)?},
    }))
}

/// The notBefore of the chain's first certificate, RFC 3339.
fn valid_from(authority: &Authority<'_>) -> Result<String, PkiError> {
    not_before(authority.chain.first())
}

/// Since when the logs are valid: the notBefore of the CA chain's root. The log's key is made with the
/// organization's CAs (or later), and an entry the log holds from before the keyless CA (a key-based upload, a
/// signature the gateway made) must still verify.
fn root_valid_from(ca: &Authority<'_>) -> Result<String, PkiError> {
    not_before(ca.chain.last())
}

fn not_before(certificate: Option<&Vec<u8>>) -> Result<String, PkiError> {
    let first = Certificate::from_der(certificate.ok_or("an empty certificate chain")?)?;
    let seconds = first
        .tbs_certificate
        .validity
        .not_before
        .to_unix_duration()
        .as_secs();
    let time = time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds)?)?;
    Ok(time.format(&time::format_description::well_known::Rfc3339)?)
}

fn attribute(name: &x509_cert::name::Name, oid: const_oid::ObjectIdentifier) -> String {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid)
        .and_then(|atv| std::str::from_utf8(atv.value.value()).ok())
        .unwrap_or_default()
        .to_owned()
}
