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

/// The largest `TimeStampReq` taken. The largest this TSA grants (a SHA-512 imprint, a long policy OID, a
/// 160-bit nonce, no extensions) is under 200 bytes; anyone may send one, so a larger one is refused unread.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// The largest nonce taken, in bits. RFC 3161 nonces are random INTEGERs, 64 bits in the common clients (notation,
/// cosign, openssl ts); one that is larger only makes the token (and the audit record of it) larger.
pub const MAX_NONCE_BITS: usize = 160;

/// Reads a DER `TimeStampReq` and checks it against what this TSA does: at most [`MAX_REQUEST_BYTES`], SHA-256,
/// SHA-384 or SHA-512 imprints of the right length, the TSA's own policy if one is asked for, a nonce of at most
/// [`MAX_NONCE_BITS`], no extensions.
pub fn read_request(der: &[u8], policy: &der::asn1::ObjectIdentifier) -> Result<Query, Failure> {
    if der.len() > MAX_REQUEST_BYTES {
        return Err(fail(
            FailureInfo::BadRequest,
            format!(
                "the request is {} bytes; this TSA takes a TimeStampReq of at most {MAX_REQUEST_BYTES} bytes",
                der.len()
            ),
        ));
    }
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
    if let Some(nonce) = &request.nonce {
        // The two's-complement bytes, less the sign byte DER puts before a positive value's high bit.
        let bytes = nonce.as_bytes();
        let magnitude = bytes.strip_prefix(&[0u8][..]).unwrap_or(bytes);
        if magnitude.len() * 8 > MAX_NONCE_BITS {
            return Err(fail(
                FailureInfo::BadRequest,
                format!(
                    "the nonce is {} bits; this TSA takes nonces of at most {MAX_NONCE_BITS} bits",
                    magnitude.len() * 8
                ),
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
        with_nonce(oid, digest_len, &[0x01, 0x02])
    }

    fn with_nonce(oid: der::asn1::ObjectIdentifier, digest_len: usize, nonce: &[u8]) -> Vec<u8> {
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
            nonce: Some(Int::new(nonce).expect("int")),
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

    #[test]
    fn a_nonce_of_160_bits_is_taken_and_a_longer_one_is_a_bad_request() {
        let sha256 = const_oid::db::rfc5912::ID_SHA_256;
        // 160 bits with the high bit set: DER puts a zero sign byte before them.
        let mut largest = vec![0u8];
        largest.extend([0xffu8; 20]);
        let query = read_request(&with_nonce(sha256, 32, &largest), &POLICY).expect("granted");
        assert_eq!(query.nonce.expect("nonce").as_bytes(), &largest[..]);
        let failure = read_request(&with_nonce(sha256, 32, &[0x7fu8; 21]), &POLICY).expect_err("refused");
        assert_eq!(failure.info, FailureInfo::BadRequest);
        assert_eq!(
            failure.text,
            "the nonce is 168 bits; this TSA takes nonces of at most 160 bits"
        );
    }

    #[test]
    fn a_60_kb_nonce_is_a_bad_request_unread() {
        let der = with_nonce(const_oid::db::rfc5912::ID_SHA_256, 32, &[0x42u8; 60_000]);
        let failure = read_request(&der, &POLICY).expect_err("refused");
        assert_eq!(failure.info, FailureInfo::BadRequest);
        assert!(failure.text.starts_with("the request is 600"), "{}", failure.text);
    }
}
