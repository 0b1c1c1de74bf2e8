//! The Notary Project COSE envelope (`signature-envelope-cose.md`): a tagged COSE_Sign1 with the payload attached.
//! Protected: `alg`, `crit` (the signing scheme, the authentic signing time under `notary.x509.signingAuthority`,
//! and expiry when set), content type = the Notary payload type, the signing scheme, and the signing time
//! (`signingTime` or `authenticSigningTime`, as the scheme says) and expiry as CBOR tag 1 epoch seconds; extended attributes as text (critical ones in `crit`).
//! Unprotected: `x5chain` (label 33, leaf first) and the signing agent. Built with `coset`.

use coset::cbor::Value;
use coset::iana;
use coset::{CoseSign1Builder, HeaderBuilder, RegisteredLabel, TaggedCborSerializable};

use super::{
    NotaryAlgorithm, NotaryOptions, HEADER_EXPIRY, HEADER_SIGNING_AGENT, HEADER_SIGNING_SCHEME,
    PAYLOAD_MEDIA_TYPE,
};
use crate::error::{Error, Result};
use common::keys::KeySpec;

/// COSE header label of `x5chain` (RFC 9360).
const LABEL_X5CHAIN: i64 = 33;

fn cose_algorithm(algorithm: NotaryAlgorithm) -> iana::Algorithm {
    match algorithm.spec {
        KeySpec::Rsa2048 => iana::Algorithm::PS256,
        KeySpec::Rsa3072 => iana::Algorithm::PS384,
        KeySpec::Rsa4096 => iana::Algorithm::PS512,
        KeySpec::Ec256 => iana::Algorithm::ES256,
        KeySpec::Ec384 => iana::Algorithm::ES384,
        KeySpec::Ec521 => iana::Algorithm::ES512,
    }
}

fn epoch_time(t: time::OffsetDateTime) -> Value {
    Value::Tag(1, Box::new(Value::Integer(t.unix_timestamp().into())))
}

/// Builds the tagged COSE_Sign1; `sign` signs the `Sig_structure` (ToBeSigned) bytes.
pub(crate) fn envelope(
    payload: &[u8],
    algorithm: NotaryAlgorithm,
    chain: &[Vec<u8>],
    options: &NotaryOptions,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let scheme = options.signing_scheme;
    let mut protected = HeaderBuilder::new()
        .algorithm(cose_algorithm(algorithm))
        .add_critical_label(RegisteredLabel::Text(HEADER_SIGNING_SCHEME.into()));
    if scheme.time_is_critical() {
        protected = protected.add_critical_label(RegisteredLabel::Text(scheme.time_header().into()));
    }
    protected = protected
        .content_type(PAYLOAD_MEDIA_TYPE.into())
        .text_value(HEADER_SIGNING_SCHEME.into(), Value::Text(scheme.as_str().into()))
        .text_value(scheme.time_header().into(), epoch_time(options.signing_time));
    if let Some(expiry) = options.expiry {
        protected = protected
            .add_critical_label(RegisteredLabel::Text(HEADER_EXPIRY.into()))
            .text_value(HEADER_EXPIRY.into(), epoch_time(expiry));
    }
    for attribute in &options.extended {
        if attribute.critical {
            protected = protected.add_critical_label(RegisteredLabel::Text(attribute.name.clone()));
        }
        protected = protected.text_value(attribute.name.clone(), Value::Text(attribute.value.clone()));
    }
    let unprotected = HeaderBuilder::new()
        .value(
            LABEL_X5CHAIN,
            Value::Array(chain.iter().map(|c| Value::Bytes(c.clone())).collect()),
        )
        .text_value(
            HEADER_SIGNING_AGENT.into(),
            Value::Text(options.signing_agent.clone()),
        );
    let message = CoseSign1Builder::new()
        .protected(protected.build())
        .unprotected(unprotected.build())
        .payload(payload.to_vec())
        .try_create_signature(&[], sign)?
        .build();
    message.to_tagged_vec().map_err(|e| Error::Cose(format!("{e:?}")))
}
