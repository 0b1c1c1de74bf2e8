//! A `TimeStampReq` (RFC 3161 section 2.4.1) read and checked: what the TSA will put in the token (the message
//! imprint exactly as sent, the nonce, whether to include the certificate), or the failure to report in a
//! `PKIStatusInfo`.

use common::keys::HashAlgorithm;
use der::asn1::Int;
use der::{Decode, Encode};
use x509_tsp::{MessageImprint, TimeStampReq};

use super::FailureInfo;

/// A request the TSA will sign.
#[derive(Debug)]
pub struct Query {
    /// Re-encoded from the parsed request: DER has one encoding, so this is byte-equal to what the client sent
    /// (the hash algorithm's NULL parameters included, when it sent them).
    pub message_imprint: MessageImprint,
    pub hash: HashAlgorithm,
    pub nonce: Option<Int>,
    pub cert_req: bool,
}

/// Why a request is not granted: the `PKIFailureInfo` bit and a text for the `PKIStatusInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub info: FailureInfo,
    pub text: String,
}

fn fail(info: FailureInfo, text: impl Into<String>) -> Failure {
    Failure {
        info,
        text: text.into(),
    }
}

/// Reads a DER `TimeStampReq` and checks it against what this TSA does: SHA-256, SHA-384 or SHA-512 imprints of
/// the right length, the TSA's own policy if one is asked for, no extensions.
pub fn read_request(der: &[u8], policy: &der::asn1::ObjectIdentifier) -> Result<Query, Failure> {
    let request = TimeStampReq::from_der(der).map_err(|e| {
        fail(
            FailureInfo::BadDataFormat,
            format!("the body is not a DER TimeStampReq (RFC 3161): {e}"),
        )
    })?;
    let algorithm = &request.message_imprint.hash_algorithm;
    let hash = HashAlgorithm::from_oid(&algorithm.oid)
        .filter(|h| *h != HashAlgorithm::Sha1)
        .ok_or_else(|| {
            fail(
                FailureInfo::BadAlg,
                format!(
                    "hash algorithm {} is not supported; use SHA-256, SHA-384 or SHA-512",
                    algorithm.oid
                ),
            )
        })?;
    if let Some(parameters) = &algorithm.parameters {
        if parameters.to_der().ok().as_deref() != Some(&[0x05, 0x00][..]) {
            return Err(fail(
                FailureInfo::BadAlg,
                "the hash algorithm's parameters must be absent or NULL",
            ));
        }
    }
    let length = request.message_imprint.hashed_message.as_bytes().len();
    if length != hash.output_len() {
        return Err(fail(
            FailureInfo::BadDataFormat,
            format!(
                "the message imprint is {length} bytes, but a {hash} digest is {} bytes",
                hash.output_len()
            ),
        ));
    }
    if let Some(asked) = &request.req_policy {
        if asked != policy {
            return Err(fail(
                FailureInfo::UnacceptedPolicy,
                format!("this TSA issues timestamps under policy {policy} only, not {asked}"),
            ));
        }
    }
    if request.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(fail(
            FailureInfo::UnacceptedExtension,
            "this TSA accepts no request extensions",
        ));
    }
    Ok(Query {
        message_imprint: request.message_imprint,
        hash,
        nonce: request.nonce,
        cert_req: request.cert_req,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::OctetString;
    use x509_cert::spki::AlgorithmIdentifier;
    use x509_tsp::TspVersion;

    const POLICY: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4.1");

    fn request(oid: der::asn1::ObjectIdentifier, digest_len: usize) -> Vec<u8> {
        TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifier {
                    oid,
                    parameters: Some(der::Any::from(der::asn1::Null)),
                },
                hashed_message: OctetString::new(vec![7u8; digest_len]).expect("octets"),
            },
            req_policy: None,
            nonce: Some(Int::new(&[0x01, 0x02]).expect("int")),
            cert_req: true,
            extensions: None,
        }
        .to_der()
        .expect("encode")
    }

    #[test]
    fn sha384_request_is_taken_with_its_imprint_unchanged() {
        let der = request(const_oid::db::rfc5912::ID_SHA_384, 48);
        let query = read_request(&der, &POLICY).expect("granted");
        assert_eq!(query.hash, HashAlgorithm::Sha384);
        assert!(query.cert_req);
        let imprint = query.message_imprint.to_der().expect("encode");
        assert!(der.windows(imprint.len()).any(|w| w == imprint));
    }

    #[test]
    fn sha1_is_refused_with_bad_alg() {
        let der = request(const_oid::db::rfc5912::ID_SHA_1, 20);
        let failure = read_request(&der, &POLICY).expect_err("refused");
        assert_eq!(failure.info, FailureInfo::BadAlg);
    }

    #[test]
    fn short_imprint_and_garbage_are_bad_data_format() {
        let der = request(const_oid::db::rfc5912::ID_SHA_256, 31);
        let failure = read_request(&der, &POLICY).expect_err("refused");
        assert_eq!(failure.info, FailureInfo::BadDataFormat);
        let failure = read_request(b"not DER", &POLICY).expect_err("refused");
        assert_eq!(failure.info, FailureInfo::BadDataFormat);
    }
}
