//! `generate-envelope` (`SIGNATURE_GENERATOR.ENVELOPE`), for policies and callers that opt in with pluginConfig
//! `envelope=true`: the plugin builds the JWS or COSE envelope itself, with `signpath-oci`'s envelope code, so that
//! it can sign attributes a RAW signer cannot set: the critical `io.cncf.notary.verificationPlugin` naming this
//! plugin (notation then runs `verify-signature`, and a notation without the plugin refuses the signature), and
//! the signing request's id, policy, release group and time (critical too, since notation hands a verification
//! plugin only critical attributes), which revocations of one request, one release group or a policy after a
//! moment are matched against.
//!
//! The request id is the one the plugin gives its `SignHash` (its Idempotency-Key), since the envelope's signed
//! attributes must be fixed before the gateway signs; the gateway records it beside its own id. These attributes
//! are the plugin's statement: a submitter who runs a changed plugin can write others, which is why a revocation
//! of a compromised signer's key is the policy certificate's (`revoke --policy`), and why the online check judges
//! a request by what the gateway's audit log recorded of it.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::revocation_list::{attribute, format_time};
use serde::{Deserialize, Serialize};
use signpath_oci::notary::{
    envelope_for_payload, signature_scheme, ExtendedAttribute, NotaryOptions, SignatureFormat, SigningScheme,
    HEADER_VERIFICATION_PLUGIN, PAYLOAD_MEDIA_TYPE,
};
use time::OffsetDateTime;

use crate::commands::{
    audit_metadata, check_contract_version, key_id, parse, required, Session, PLUGIN_NAME, VERSION,
};
use crate::error::PluginError;

/// `generate-envelope` request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeRequest {
    #[serde(default)]
    pub contract_version: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub payload_type: Option<String>,
    #[serde(default)]
    pub signature_envelope_type: Option<String>,
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub expiry_duration_in_seconds: Option<u64>,
    #[serde(default)]
    pub plugin_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeResponse {
    pub signature_envelope: String,
    pub signature_envelope_type: String,
    /// Added to the signature manifest: the signing request's id, for people reading the registry.
    pub annotations: BTreeMap<String, String>,
}

/// The envelope format notation asks for.
fn format(media_type: &str) -> Result<SignatureFormat, PluginError> {
    match media_type {
        "application/jose+json" => Ok(SignatureFormat::Jws),
        "application/cose" => Ok(SignatureFormat::Cose),
        other => Err(PluginError::Request(format!(
            "signatureEnvelopeType {other:?} is not application/jose+json or application/cose"
        ))),
    }
}

/// `generate-envelope`: signs the Notary payload notation sent into an envelope of the asked format.
pub fn generate_envelope(input: &[u8]) -> Result<GenerateEnvelopeResponse, PluginError> {
    const COMMAND: &str = "generate-envelope";
    let request: GenerateEnvelopeRequest = parse(COMMAND, input)?;
    check_contract_version(COMMAND, request.contract_version.as_deref())?;
    let key_id = key_id(COMMAND, request.key_id.as_deref())?;
    let payload_type = required(
        COMMAND,
        "payloadType",
        request.payload_type.as_deref(),
        PAYLOAD_MEDIA_TYPE,
    )?;
    if payload_type != PAYLOAD_MEDIA_TYPE {
        return Err(PluginError::Request(format!(
            "payloadType {payload_type:?} is not {PAYLOAD_MEDIA_TYPE}"
        )));
    }
    let envelope_type = required(
        COMMAND,
        "signatureEnvelopeType",
        request.signature_envelope_type.as_deref(),
        "application/jose+json or application/cose",
    )?;
    let format = format(envelope_type)?;
    let payload = required(
        COMMAND,
        "payload",
        request.payload.as_deref(),
        "the Notary payload, standard base64",
    )?;
    let payload = BASE64
        .decode(payload)
        .map_err(|e| PluginError::Request(format!("payload is not standard base64 ({e})")))?;

    let session = Session::open(request.plugin_config.as_ref())?;
    let key = session.keys().get(&key_id)?;
    let kind = key.key.kind();
    let (scheme, hash) = signature_scheme(kind).map_err(|_| PluginError::UnsupportedKey {
        key_id: key_id.to_string(),
        kind,
    })?;
    let request_id = common::protocol::new_request_id();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    let mut extended = vec![
        (HEADER_VERIFICATION_PLUGIN, PLUGIN_NAME.to_owned()),
        (attribute::SIGNING_REQUEST, request_id.clone()),
        (attribute::SIGNING_POLICY, key_id.to_string()),
        (attribute::SIGNED_AT, format_time(now)),
    ];
    if let Some(group) = &session.config.release_group {
        extended.push((attribute::RELEASE_GROUP, group.clone()));
    }
    let options = NotaryOptions {
        format,
        signing_scheme: SigningScheme::X509,
        signing_time: now,
        expiry: request
            .expiry_duration_in_seconds
            .filter(|s| *s > 0)
            .map(|s| now + time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2))),
        signing_agent: format!("notation-signpath/{VERSION}"),
        extended: extended
            .into_iter()
            .map(|(name, value)| ExtendedAttribute {
                name: name.to_owned(),
                value,
                critical: true,
            })
            .collect(),
    };
    // The gateway's error, kept whole: the envelope code only carries its text.
    let mut failure = None;
    let envelope = envelope_for_payload(&payload, kind, &key.key.chain, &options, |message| {
        key.key
            .sign_digest_as(
                &session.client,
                scheme,
                hash,
                &hash.digest(message),
                // Read from the to-be-signed bytes, as for RAW signatures: what the audit log names.
                Some(audit_metadata(message)),
                Some(&request_id),
            )
            .map_err(|e| {
                let text = e.to_string();
                failure = Some(e);
                signpath_oci::Error::Cose(text)
            })
    });
    let envelope = match (envelope, failure) {
        (Ok(bytes), _) => bytes,
        (Err(_), Some(gateway)) => return Err(gateway.into()),
        (Err(e), None) => return Err(PluginError::Envelope(e.to_string())),
    };
    tracing::info!(key_id = %key_id, request_id = %request_id, envelope = envelope_type, "generate-envelope: signed");
    Ok(GenerateEnvelopeResponse {
        signature_envelope: BASE64.encode(envelope),
        signature_envelope_type: envelope_type.to_owned(),
        annotations: BTreeMap::from([(attribute::SIGNING_REQUEST.to_owned(), request_id)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_code;
    use crate::protocol::envelope_requested as wanted;

    #[test]
    fn envelope_generation_is_opt_in() {
        let config = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(wanted(Some(&config("envelope", "true"))));
        assert!(wanted(Some(&config("Envelope", "TRUE"))));
        assert!(!wanted(Some(&config("envelope", "false"))));
        assert!(!wanted(None));
    }

    #[test]
    fn a_request_for_another_payload_or_envelope_type_is_refused_before_any_network() {
        let refused = |json: &str| {
            let e = generate_envelope(json.as_bytes()).unwrap_err();
            (error_code(&e), e.to_string())
        };
        let (code, message) = refused(
            r#"{"contractVersion":"1.0","keyId":"demo/ec-256","payloadType":"text/plain","signatureEnvelopeType":"application/cose","payload":"e30="}"#,
        );
        assert_eq!(code, "VALIDATION_ERROR");
        assert_eq!(
            message,
            "payloadType \"text/plain\" is not application/vnd.cncf.notary.payload.v1+json"
        );
        let (code, message) = refused(
            r#"{"contractVersion":"1.0","keyId":"demo/ec-256","payloadType":"application/vnd.cncf.notary.payload.v1+json","signatureEnvelopeType":"application/pkcs7","payload":"e30="}"#,
        );
        assert_eq!(code, "VALIDATION_ERROR");
        assert!(message.contains("application/pkcs7"), "{message}");
    }
}
