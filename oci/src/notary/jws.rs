//! The Notary Project JWS envelope (`signature-envelope-jws.md`): JSON serialization, flattened. The protected
//! header holds `alg`, `cty` = the Notary payload type, the signing scheme, the signing time (`signingTime`, or
//! under `notary.x509.signingAuthority` `authenticSigningTime`), the optional expiry, extended attributes, and `crit` naming
//! the scheme (then the authentic signing time, then expiry, in notation-core-go's order, then critical extended
//! attributes); the unprotected header holds
//! `x5c` (standard base64 DER, leaf first) and the signing agent. Written by hand because it is a few fields of
//! JSON, which no JOSE crate of ours builds with Notary's private header parameters.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{
    rfc3339, NotaryAlgorithm, NotaryOptions, HEADER_EXPIRY, HEADER_SIGNING_AGENT, HEADER_SIGNING_SCHEME,
    PAYLOAD_MEDIA_TYPE,
};
use crate::error::Result;

/// The protected header's JSON bytes (keys in lexical order, as Go marshals a map).
pub(crate) fn protected_header(algorithm: NotaryAlgorithm, options: &NotaryOptions) -> Vec<u8> {
    let mut header = Map::new();
    header.insert("alg".into(), json!(algorithm.jws_name()));
    let scheme = options.signing_scheme;
    let mut crit = vec![json!(HEADER_SIGNING_SCHEME)];
    if scheme.time_is_critical() {
        crit.push(json!(scheme.time_header()));
    }
    if let Some(expiry) = options.expiry {
        crit.push(json!(HEADER_EXPIRY));
        header.insert(HEADER_EXPIRY.into(), json!(rfc3339(expiry)));
    }
    for attribute in &options.extended {
        if attribute.critical {
            crit.push(json!(attribute.name));
        }
        header.insert(attribute.name.clone(), json!(attribute.value));
    }
    header.insert("crit".into(), Value::Array(crit));
    header.insert("cty".into(), json!(PAYLOAD_MEDIA_TYPE));
    header.insert(HEADER_SIGNING_SCHEME.into(), json!(scheme.as_str()));
    header.insert(scheme.time_header().into(), json!(rfc3339(options.signing_time)));
    serde_json::to_vec(&Value::Object(header)).unwrap_or_default()
}

/// Builds the envelope; `sign` signs the JWS signing input (`BASE64URL(protected) '.' BASE64URL(payload)`).
pub(crate) fn envelope(
    payload: &[u8],
    algorithm: NotaryAlgorithm,
    chain: &[Vec<u8>],
    options: &NotaryOptions,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let protected = URL_SAFE_NO_PAD.encode(protected_header(algorithm, options));
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signing_input = format!("{protected}.{payload}");
    let signature = sign(signing_input.as_bytes())?;
    let envelope = json!({
        "payload": payload,
        "protected": protected,
        "header": {
            "x5c": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
            HEADER_SIGNING_AGENT: options.signing_agent,
        },
        "signature": URL_SAFE_NO_PAD.encode(signature),
    });
    Ok(serde_json::to_vec(&envelope).unwrap_or_default())
}
