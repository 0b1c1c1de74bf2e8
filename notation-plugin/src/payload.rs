//! What is being signed, for the gateway's audit log: the target artifact's digest and media type, read from the
//! bytes notation asks us to sign. Best effort: anything unexpected gives `None`, never an error, because the
//! signature does not depend on it.
//!
//! The bytes are either the JWS signing input, ASCII `b64url(protected) "." b64url(payload)`, or the COSE
//! Sig_structure, the CBOR array `["Signature1", protected, external_aad, payload]`; in both the payload is the
//! Notary payload `{"targetArtifact":{"mediaType":…,"digest":…,"size":…}}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

/// The descriptor of the signed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetArtifact {
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotaryPayload {
    target_artifact: TargetArtifact,
}

/// The target artifact named in a JWS signing input or a COSE Sig_structure, if it can be read.
pub fn target_artifact(to_be_signed: &[u8]) -> Option<TargetArtifact> {
    let payload = cose_payload(to_be_signed).or_else(|| jws_payload(to_be_signed))?;
    serde_json::from_slice::<NotaryPayload>(&payload)
        .ok()
        .map(|p| p.target_artifact)
}

fn jws_payload(signing_input: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(signing_input).ok()?;
    let (_protected, payload) = text.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
}

fn cose_payload(sig_structure: &[u8]) -> Option<Vec<u8>> {
    const ARRAY: u8 = 4;
    const BYTES: u8 = 2;
    const TEXT: u8 = 3;
    let mut cbor = Cbor(sig_structure);
    if cbor.head()? != (ARRAY, 4) || cbor.item(TEXT)? != b"Signature1" {
        return None;
    }
    let _protected = cbor.item(BYTES)?;
    let _external_aad = cbor.item(BYTES)?;
    let payload = cbor.item(BYTES)?;
    cbor.0.is_empty().then(|| payload.to_vec())
}

/// Just enough CBOR (RFC 8949) for a Sig_structure: definite-length heads and byte or text strings.
struct Cbor<'a>(&'a [u8]);

impl<'a> Cbor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    /// Major type and argument of the next data item.
    fn head(&mut self) -> Option<(u8, u64)> {
        let initial = *self.take(1)?.first()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let width = match info {
            0..=23 => return Some((major, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None, // indefinite lengths and reserved values do not occur in a Sig_structure
        };
        let argument = self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Some((major, argument))
    }

    /// The content of the next item, which must be a string of the given major type.
    fn item(&mut self, major: u8) -> Option<&'a [u8]> {
        let (found, len) = self.head()?;
        if found != major {
            return None;
        }
        self.take(usize::try_from(len).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTARY_PAYLOAD: &str = r#"{"targetArtifact":{"digest":"sha256:73c8","mediaType":"application/vnd.oci.image.manifest.v1+json","size":16724}}"#;

    fn expected() -> TargetArtifact {
        TargetArtifact {
            digest: Some("sha256:73c8".into()),
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        }
    }

    /// A CBOR head for a length, in the shortest form as encoders write it.
    fn head(major: u8, len: usize) -> Vec<u8> {
        match len {
            0..=23 => vec![(major << 5) | len as u8],
            24..=0xff => vec![(major << 5) | 24, len as u8],
            _ => {
                let mut h = vec![(major << 5) | 25];
                h.extend_from_slice(&(len as u16).to_be_bytes());
                h
            }
        }
    }

    fn sig_structure(payload: &[u8]) -> Vec<u8> {
        let protected = [0xa1, 0x01, 0x26]; // {1: -7}
        let mut out = vec![0x84];
        out.extend(head(3, 10));
        out.extend_from_slice(b"Signature1");
        out.extend(head(2, protected.len()));
        out.extend_from_slice(&protected);
        out.extend(head(2, 0));
        out.extend(head(2, payload.len()));
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_the_target_from_a_jws_signing_input() {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(NOTARY_PAYLOAD)
        );
        assert_eq!(target_artifact(input.as_bytes()), Some(expected()));
    }

    #[test]
    fn reads_the_target_from_a_cose_sig_structure() {
        assert_eq!(
            target_artifact(&sig_structure(NOTARY_PAYLOAD.as_bytes())),
            Some(expected())
        );
    }

    #[test]
    fn anything_else_gives_nothing() {
        assert_eq!(target_artifact(b""), None);
        assert_eq!(target_artifact(b"not a jws"), None);
        assert_eq!(target_artifact(b"a.b.c"), None);
        assert_eq!(target_artifact(&sig_structure(b"not json")), None);
        let mut truncated = sig_structure(NOTARY_PAYLOAD.as_bytes());
        truncated.truncate(truncated.len() - 3);
        assert_eq!(target_artifact(&truncated), None);
        assert_eq!(target_artifact(&[0x84, 0x7f]), None);
    }
}
