//! The `TimeStampResp` (RFC 3161 section 2.4.2): a granted one carries a `TimeStampToken`, a CMS SignedData over
//! the `TSTInfo` signed by the TSA key; a failed one only its `PKIStatusInfo`. The CMS and TSP types are
//! RustCrypto's (`cms`, `x509-tsp`, `cmpv2`). Declared here, as derived DER structures: the ESS
//! `SigningCertificateV2` attribute (RFC 5035), which no crate of this generation defines, and the response with
//! its `PKIStatusInfo`, because cmpv2 0.2 declares `PKIFailureInfo`'s named bits as masks rather than bit numbers
//! (`badAlg` encodes as no bit at all, `badDataFormat` as two), so its failure replies would say the wrong thing.

use cmpv2::status::PkiStatus;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use common::keys::{Curve, HashAlgorithm, KeyKind};
use common::pubkey::PublicKey;
use der::asn1::{BitString, GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode, Sequence};
use x509_cert::attr::{Attribute, AttributeValue};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_tsp::{Accuracy, TimeStampToken, TspVersion, TstInfo};

use super::{FailureInfo, Query, TsaError};

/// id-ct-TSTInfo (RFC 3161), the content type of a timestamp token.
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... OPTIONAL }` (RFC 5035).
#[derive(Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// `ESSCertIDv2`: `hashAlgorithm` is left out, so it is its DEFAULT, SHA-256 (DER omits default values).
#[derive(Debug, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

/// `TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }`.
#[derive(Debug, Sequence)]
struct TimeStampResp<'a> {
    status: PkiStatusInfo<'a>,
    time_stamp_token: Option<TimeStampToken>,
}

/// `PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo
/// OPTIONAL }`, the failure info a plain BIT STRING.
#[derive(Debug, Sequence)]
struct PkiStatusInfo<'a> {
    status: PkiStatus,
    status_string: Option<Vec<Utf8StringRef<'a>>>,
    fail_info: Option<BitString>,
}

/// A named-bit BIT STRING with only bit `bit` set (DER: no trailing zero bits).
fn failure_bits(info: FailureInfo) -> Result<BitString, der::Error> {
    let bit = info as usize;
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] = 0x80 >> (bit % 8);
    BitString::new((7 - bit % 8) as u8, bytes)
}

#[derive(Debug, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// The TSA as the token builder needs it: its policy, its certificate, and the algorithms its key signs with.
#[derive(Debug)]
pub struct Authority {
    pub policy: ObjectIdentifier,
    certificate: Certificate,
    /// SHA-256 of the certificate's DER, for `ESSCertIDv2` and the audit log.
    pub certificate_sha256: [u8; 32],
    pub kind: KeyKind,
    /// The digest of the signed attributes handed to the key.
    pub signature_hash: HashAlgorithm,
    signature_algorithm: AlgorithmIdentifierOwned,
}

/// A granted timestamp: the reply's DER and what the audit log keeps of it.
#[derive(Debug)]
pub struct Granted {
    pub reply: Vec<u8>,
    /// The token's serial number, in hex.
    pub serial: String,
    /// genTime, RFC 3339.
    pub gen_time: String,
}

impl Authority {
    /// The TSA of this certificate (DER), issuing under `policy`.
    pub fn new(policy: ObjectIdentifier, certificate_der: &[u8]) -> Result<Self, TsaError> {
        let bad = |e: &dyn std::fmt::Display| TsaError::Certificate(e.to_string());
        let certificate = Certificate::from_der(certificate_der).map_err(|e| bad(&e))?;
        let spki = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| bad(&e))?;
        let kind = PublicKey::from_spki_der(&spki).map_err(|e| bad(&e))?.kind();
        use const_oid::db::rfc5912 as oids;
        let (signature_hash, oid, parameters) = match kind {
            KeyKind::Ec(Curve::P256) => (HashAlgorithm::Sha256, oids::ECDSA_WITH_SHA_256, None),
            KeyKind::Ec(Curve::P384) => (HashAlgorithm::Sha384, oids::ECDSA_WITH_SHA_384, None),
            KeyKind::Ec(Curve::P521) => (HashAlgorithm::Sha512, oids::ECDSA_WITH_SHA_512, None),
            KeyKind::Rsa { .. } => (
                HashAlgorithm::Sha256,
                oids::SHA_256_WITH_RSA_ENCRYPTION,
                Some(Any::from(der::asn1::Null)),
            ),
        };
        Ok(Self {
            policy,
            certificate_sha256: sha2_256(certificate_der),
            certificate,
            kind,
            signature_hash,
            signature_algorithm: AlgorithmIdentifierOwned { oid, parameters },
        })
    }
}

fn sha2_256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn digest_algorithm(hash: HashAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: hash.oid(),
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, TsaError> {
    let mut values = SetOfVec::new();
    values.insert(AttributeValue::from_der(&value.to_der()?)?)?;
    Ok(Attribute { oid, values })
}

/// A random positive 128-bit serial: unique without a counter to keep across restarts.
fn serial() -> Result<Int, TsaError> {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(Int::new(&bytes)?)
}

/// Builds the granted reply for `query` at `now`. `sign` gets the digest (`authority.signature_hash`) of the
/// DER signed attributes and returns the signature value (DER ECDSA, or PKCS#1 v1.5 for RSA).
pub fn granted_reply(
    authority: &Authority,
    query: &Query,
    now: std::time::SystemTime,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<Granted, TsaError> {
    let serial_number = serial()?;
    let gen_time = GeneralizedTime::from_system_time(now)?;
    let tst_info = TstInfo {
        version: TspVersion::V1,
        policy: authority.policy,
        message_imprint: query.message_imprint.clone(),
        serial_number: serial_number.clone(),
        gen_time,
        accuracy: Some(Accuracy {
            seconds: Some(1),
            millis: None,
            micros: None,
        }),
        ordering: false,
        nonce: query.nonce.clone(),
        tsa: None,
        extensions: None,
    }
    .to_der()?;

    let hash = authority.signature_hash;
    let tbs = &authority.certificate.tbs_certificate;
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(authority.certificate_sha256.to_vec())?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                serial_number: tbs.serial_number.clone(),
            },
        }],
    };
    let mut signed_attributes = SetOfVec::new();
    signed_attributes.insert(attribute(
        const_oid::db::rfc5911::ID_CONTENT_TYPE,
        &ID_CT_TST_INFO,
    )?)?;
    signed_attributes.insert(attribute(
        const_oid::db::rfc5911::ID_MESSAGE_DIGEST,
        &OctetString::new(hash.digest(&tst_info))?,
    )?)?;
    signed_attributes.insert(attribute(
        const_oid::db::rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2,
        &ess,
    )?)?;
    let signature = sign(&hash.digest(&signed_attributes.to_der()?)).map_err(TsaError::Signing)?;

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_algorithm(hash),
        signed_attrs: Some(signed_attributes),
        signature_algorithm: authority.signature_algorithm.clone(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_algorithm(hash))?;
    let certificates = if query.cert_req {
        let mut set = SetOfVec::new();
        set.insert(cms::cert::CertificateChoices::Certificate(
            authority.certificate.clone(),
        ))?;
        Some(CertificateSet(set))
    } else {
        None
    };
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info)?;
    let signed_data = SignedData {
        // Version 3: the encapsulated content is not id-data (RFC 5652 section 5.1).
        version: CmsVersion::V3,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_CT_TST_INFO,
            econtent: Some(Any::encode_from(&OctetString::new(tst_info)?)?),
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let token = ContentInfo {
        content_type: const_oid::db::rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    };
    let reply = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Accepted,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    }
    .to_der()?;
    let gen_time = time::OffsetDateTime::from(gen_time.to_system_time())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(Granted {
        reply,
        serial: hex::encode(serial_number.as_bytes()),
        gen_time,
    })
}

/// A reply that grants nothing: status rejection, the failure bit and a text saying why.
pub fn failure_reply(info: FailureInfo, text: &str) -> Result<Vec<u8>, TsaError> {
    let status_string = match Utf8StringRef::new(text) {
        Ok(text) => Some(vec![text]),
        Err(_) => None,
    };
    Ok(TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string,
            fail_info: Some(failure_bits(info)?),
        },
        time_stamp_token: None,
    }
    .to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_info_is_the_named_bit() {
        // badAlg is bit 0: one byte 0x80 with seven unused bits; badDataFormat is bit 5: 0x04, two unused bits.
        assert_eq!(
            failure_bits(FailureInfo::BadAlg)
                .expect("bits")
                .to_der()
                .expect("der"),
            [0x03, 0x02, 0x07, 0x80]
        );
        assert_eq!(
            failure_bits(FailureInfo::BadDataFormat)
                .expect("bits")
                .to_der()
                .expect("der"),
            [0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            failure_bits(FailureInfo::UnacceptedExtension)
                .expect("bits")
                .to_der()
                .expect("der"),
            [0x03, 0x04, 0x07, 0x00, 0x00, 0x80]
        );
    }
}
