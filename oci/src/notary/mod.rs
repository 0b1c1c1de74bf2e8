//! Notary Project signatures (notaryproject/specifications `signature-specification.md`), made here in Rust:
//! the payload (the target's descriptor), the JWS and COSE envelopes with the signed attributes
//! (`io.cncf.notary.signingScheme`, the signing time, optional critical `expiry`) and the certificate chain, and
//! the signature manifest that attaches an envelope to the image as an OCI referrer.
//!
//! Two signing schemes: `notary.x509` (a claimed `signingTime`; only an RFC 3161 countersignature makes a time
//! authentic) and `notary.x509.signingAuthority` (a critical `authenticSigningTime` the signer vouches for,
//! verified against a `signingAuthority` trust store; notation checks revocation at that time).
//!
//! The key's kind decides the algorithm (RSA → RSASSA-PSS, EC → ECDSA, hash sized to the key), as the
//! specification's "Algorithm Selection" requires. This module never touches files; [`crate::sign`] does.

pub mod cose;
pub mod jws;
pub mod manifest;

use common::keys::{HashAlgorithm, KeyKind, KeySpec, SignatureScheme};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::layout::Descriptor;
use crate::signer::{Signer, SigningKey, SigningTarget};

pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub const HEADER_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const HEADER_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const HEADER_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const HEADER_EXPIRY: &str = "io.cncf.notary.expiry";
pub const HEADER_SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
pub const SIGNING_SCHEME_X509: &str = "notary.x509";
pub const SIGNING_SCHEME_X509_SIGNING_AUTHORITY: &str = "notary.x509.signingAuthority";

/// The Notary Project signing scheme (`io.cncf.notary.signingScheme`), spelled as the specification spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningScheme {
    /// `notary.x509`: the signing time is the signer's claim (`io.cncf.notary.signingTime`).
    #[default]
    #[serde(rename = "notary.x509")]
    X509,
    /// `notary.x509.signingAuthority`: the signer is a signing authority that attests the time it signed
    /// (`io.cncf.notary.authenticSigningTime`, critical).
    #[serde(rename = "notary.x509.signingAuthority")]
    X509SigningAuthority,
}

impl SigningScheme {
    /// The value of `io.cncf.notary.signingScheme`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X509 => SIGNING_SCHEME_X509,
            Self::X509SigningAuthority => SIGNING_SCHEME_X509_SIGNING_AUTHORITY,
        }
    }

    /// The signed attribute that carries the signing time under this scheme.
    pub fn time_header(self) -> &'static str {
        match self {
            Self::X509 => HEADER_SIGNING_TIME,
            Self::X509SigningAuthority => HEADER_AUTHENTIC_SIGNING_TIME,
        }
    }

    /// Whether the signing time attribute must be listed as critical (only the authentic signing time is).
    pub fn time_is_critical(self) -> bool {
        self == Self::X509SigningAuthority
    }

    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl std::fmt::Display for SigningScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The envelope format (`notation sign --signature-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    Jws,
    Cose,
}

impl SignatureFormat {
    /// The media type of the envelope blob (the signature manifest's layer).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jws => "application/jose+json",
            Self::Cose => "application/cose",
        }
    }
}

/// The signed attributes a signature carries besides the payload.
#[derive(Debug, Clone)]
pub struct NotaryOptions {
    pub format: SignatureFormat,
    pub signing_scheme: SigningScheme,
    /// Truncated to whole seconds, as notation does. `signingTime` or `authenticSigningTime`, as the scheme says.
    pub signing_time: OffsetDateTime,
    /// When set, a critical `io.cncf.notary.expiry` attribute.
    pub expiry: Option<OffsetDateTime>,
    /// The unsigned `io.cncf.notary.signingAgent` (`signpath-oci/0.1.0`).
    pub signing_agent: String,
    /// Signed extended attributes (the Notation plugin's `io.cncf.notary.verificationPlugin` and signing request).
    pub extended: Vec<ExtendedAttribute>,
}

/// A signed attribute beyond the specification's own: in the protected header, and in `crit` when critical (a
/// verifier that does not know it must refuse the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedAttribute {
    pub name: String,
    pub value: String,
    pub critical: bool,
}

/// The attribute that names the plugin notation must run to verify a signature (critical: a notation without the
/// plugin refuses the signature instead of skipping its checks).
pub const HEADER_VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";

/// A finished envelope and the chain it carries.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub format: SignatureFormat,
    pub bytes: Vec<u8>,
    pub certificate_chain: Vec<Vec<u8>>,
}

/// What Notary pairs with a key: the spec, its hash, and the raw signature scheme (PSS, or ECDSA r||s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotaryAlgorithm {
    pub spec: KeySpec,
    pub hash: HashAlgorithm,
    pub scheme: SignatureScheme,
}

impl NotaryAlgorithm {
    pub fn for_key(kind: KeyKind) -> Result<Self> {
        let spec = kind.key_spec().ok_or_else(|| {
            Error::UnsupportedKey(format!(
                "a {kind} key; Notary allows RSA 2048/3072/4096 and EC P-256/P-384/P-521"
            ))
        })?;
        let scheme = match kind {
            KeyKind::Rsa { .. } => SignatureScheme::RsaPss,
            KeyKind::Ec(_) => SignatureScheme::EcdsaIeee,
        };
        Ok(Self {
            spec,
            hash: spec.hash(),
            scheme,
        })
    }

    /// The JWS `alg` (`PS256`, `ES384`, ...).
    pub fn jws_name(self) -> &'static str {
        match self.spec {
            KeySpec::Rsa2048 => "PS256",
            KeySpec::Rsa3072 => "PS384",
            KeySpec::Rsa4096 => "PS512",
            KeySpec::Ec256 => "ES256",
            KeySpec::Ec384 => "ES384",
            KeySpec::Ec521 => "ES512",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    target_artifact: &'a Descriptor,
}

/// The Notary payload: `{"targetArtifact": <descriptor>}` with media type, digest and size (and the target's
/// annotations, none here).
pub fn payload(target: &Descriptor) -> Vec<u8> {
    let bare = target.bare();
    serde_json::to_vec(&Payload {
        target_artifact: &bare,
    })
    .unwrap_or_default()
}

/// Signs `target` with `signer` into an envelope of `options.format`.
pub fn sign(signer: &dyn Signer, target: &SigningTarget, options: &NotaryOptions) -> Result<Envelope> {
    let key = SigningKey::of(signer)?;
    let algorithm = NotaryAlgorithm::for_key(key.kind)?;
    let payload = payload(&target.descriptor);
    let sign = |message: &[u8]| key.sign(signer, algorithm.scheme, algorithm.hash, message, target);
    let bytes = match options.format {
        SignatureFormat::Jws => jws::envelope(&payload, algorithm, &key.chain, options, sign)?,
        SignatureFormat::Cose => cose::envelope(&payload, algorithm, &key.chain, options, sign)?,
    };
    Ok(Envelope {
        format: options.format,
        bytes,
        certificate_chain: key.chain,
    })
}

/// Builds an envelope of `options.format` around `payload` (a Notary payload as someone else wrote it, such as
/// notation's request to an envelope-generating plugin) for a key of `kind` whose chain is `chain`; `sign` signs
/// the to-be-signed bytes (the JWS signing input, the COSE Sig_structure) with the key's Notary scheme (RSASSA-PSS,
/// or ECDSA r||s) and hash, which [`signature_scheme`] names.
pub fn envelope_for_payload(
    payload: &[u8],
    kind: KeyKind,
    chain: &[Vec<u8>],
    options: &NotaryOptions,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let algorithm = NotaryAlgorithm::for_key(kind)?;
    match options.format {
        SignatureFormat::Jws => jws::envelope(payload, algorithm, chain, options, sign),
        SignatureFormat::Cose => cose::envelope(payload, algorithm, chain, options, sign),
    }
}

/// The signature scheme and hash Notary pairs with a key of `kind`.
pub fn signature_scheme(kind: KeyKind) -> Result<(SignatureScheme, HashAlgorithm)> {
    let algorithm = NotaryAlgorithm::for_key(kind)?;
    Ok((algorithm.scheme, algorithm.hash))
}

/// RFC 3339 in whole seconds, UTC (`2025-06-01T12:00:00Z`), as Go's time marshals a truncated time.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests;
