//! Envelope bytes checked by code we did not write: a JWS verifier (jsonwebtoken) and a CBOR decoder (ciborium)
//! with the p256 verifier, over a local P-256 key and a self-signed certificate (rcgen).

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ciborium::Value;
use common::keys::SignatureScheme;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;

use super::*;
use crate::layout::{Descriptor, OCI_MANIFEST};
use crate::signer::{DigestToSign, SignerError};

struct LocalSigner {
    key: p256::ecdsa::SigningKey,
    certificate: Vec<u8>,
}

impl LocalSigner {
    fn new() -> Self {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let certificate = params.self_signed(&key_pair).unwrap().der().to_vec();
        Self {
            key: p256::ecdsa::SigningKey::from_pkcs8_der(&key_pair.serialize_der()).unwrap(),
            certificate,
        }
    }
}

impl Signer for LocalSigner {
    fn certificate_chain(&self) -> Result<Vec<Vec<u8>>, SignerError> {
        Ok(vec![self.certificate.clone()])
    }

    fn sign_digest(&self, request: &DigestToSign<'_>) -> Result<Vec<u8>, SignerError> {
        assert_eq!(request.scheme, SignatureScheme::EcdsaIeee);
        assert_eq!(request.digest, request.hash.digest(request.message));
        let signature: p256::ecdsa::Signature = self.key.sign_prehash(request.digest).unwrap();
        Ok(signature.to_bytes().to_vec())
    }
}

fn target() -> SigningTarget {
    SigningTarget {
        reference: "localhost:5000/app:1.0".into(),
        descriptor: Descriptor::of(OCI_MANIFEST, br#"{"schemaVersion":2}"#),
        purpose: "notary",
    }
}

fn options(format: SignatureFormat) -> NotaryOptions {
    NotaryOptions {
        format,
        signing_scheme: SigningScheme::X509,
        signing_time: time::macros::datetime!(2025-06-01 12:00:00 UTC),
        expiry: Some(time::macros::datetime!(2025-07-01 12:00:00 UTC)),
        signing_agent: "signpath-oci/test".into(),
        extended: Vec::new(),
    }
}

#[test]
fn jws_envelope_verifies_with_jsonwebtoken_and_carries_the_signed_attributes() {
    let signer = LocalSigner::new();
    let envelope = sign(&signer, &target(), &options(SignatureFormat::Jws)).unwrap();
    let jws: serde_json::Value = serde_json::from_slice(&envelope.bytes).unwrap();
    let protected = jws["protected"].as_str().unwrap();
    let payload = jws["payload"].as_str().unwrap();
    // jsonwebtoken's EC "DER" key is the uncompressed point (what ring verifies with).
    let point = signer.key.verifying_key().to_encoded_point(false);
    let key = jsonwebtoken::DecodingKey::from_ec_der(point.as_bytes());
    let signing_input = format!("{protected}.{payload}");
    assert!(jsonwebtoken::crypto::verify(
        jws["signature"].as_str().unwrap(),
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::ES256
    )
    .unwrap());
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "cty": PAYLOAD_MEDIA_TYPE,
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2025-06-01T12:00:00Z",
            "io.cncf.notary.expiry": "2025-07-01T12:00:00Z"})
    );
    let body: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let t = target().descriptor;
    assert_eq!(
        body,
        json!({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": t.digest.to_string(), "size": t.size}})
    );
    assert_eq!(
        jws["header"]["x5c"],
        json!([STANDARD.encode(&signer.certificate)])
    );
    assert_eq!(jws["header"]["io.cncf.notary.signingAgent"], "signpath-oci/test");
}

/// The decoded protected header of a JWS envelope.
fn jws_protected_header(envelope: &Envelope) -> serde_json::Value {
    let jws: serde_json::Value = serde_json::from_slice(&envelope.bytes).unwrap();
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jws["protected"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn jws_under_the_signing_authority_scheme_carries_a_critical_authentic_signing_time_and_no_signing_time() {
    let signer = LocalSigner::new();
    let mut options = options(SignatureFormat::Jws);
    options.signing_scheme = SigningScheme::X509SigningAuthority;
    let header = jws_protected_header(&sign(&signer, &target(), &options).unwrap());
    // notation-core-go's order: the scheme, the authentic signing time, then expiry.
    assert_eq!(
        header,
        json!({"alg": "ES256", "cty": PAYLOAD_MEDIA_TYPE,
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime",
                "io.cncf.notary.expiry"],
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.authenticSigningTime": "2025-06-01T12:00:00Z",
            "io.cncf.notary.expiry": "2025-07-01T12:00:00Z"})
    );
    options.expiry = None;
    let header = jws_protected_header(&sign(&signer, &target(), &options).unwrap());
    assert_eq!(
        header["crit"],
        json!([
            "io.cncf.notary.signingScheme",
            "io.cncf.notary.authenticSigningTime"
        ])
    );
    assert!(header.get("io.cncf.notary.signingTime").is_none());
}

#[test]
fn signing_schemes_are_spelled_as_the_specification_spells_them() {
    #[derive(serde::Deserialize)]
    struct Configured {
        signing_scheme: SigningScheme,
    }
    let parse = |s: &str| serde_json::from_str::<Configured>(&format!("{{\"signing_scheme\": \"{s}\"}}"));
    assert_eq!(parse("notary.x509").unwrap().signing_scheme, SigningScheme::X509);
    assert_eq!(
        parse("notary.x509.signingAuthority").unwrap().signing_scheme,
        SigningScheme::X509SigningAuthority
    );
    let error = parse("notary.x509.signingauthority").err().unwrap().to_string();
    assert!(
        error.contains("expected `notary.x509` or `notary.x509.signingAuthority`"),
        "{error}"
    );
    assert_eq!(SigningScheme::default(), SigningScheme::X509);
    assert_eq!(
        SigningScheme::X509SigningAuthority.to_string(),
        "notary.x509.signingAuthority"
    );
}

fn map_get<'a>(map: &'a [(Value, Value)], key: &Value) -> &'a Value {
    &map.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn cose_envelope_decodes_with_ciborium_and_verifies_with_p256() {
    let signer = LocalSigner::new();
    let envelope = sign(&signer, &target(), &options(SignatureFormat::Cose)).unwrap();
    let value: Value = ciborium::from_reader(envelope.bytes.as_slice()).unwrap();
    let Value::Tag(18, inner) = value else {
        panic!("not a tagged COSE_Sign1: {value:?}")
    };
    let Value::Array(parts) = *inner else {
        panic!("not an array")
    };
    let [Value::Bytes(protected), Value::Map(unprotected), Value::Bytes(payload), Value::Bytes(signature)] =
        parts.as_slice()
    else {
        panic!("not a COSE_Sign1: {parts:?}")
    };
    let header: Value = ciborium::from_reader(protected.as_slice()).unwrap();
    let header = header.as_map().unwrap();
    assert_eq!(
        map_get(header, &Value::Integer(1.into())),
        &Value::Integer((-7).into())
    );
    assert_eq!(
        map_get(header, &Value::Integer(2.into())),
        &Value::Array(vec![
            Value::Text("io.cncf.notary.signingScheme".into()),
            Value::Text("io.cncf.notary.expiry".into())
        ])
    );
    assert_eq!(
        map_get(header, &Value::Integer(3.into())),
        &Value::Text(PAYLOAD_MEDIA_TYPE.into())
    );
    assert_eq!(
        map_get(header, &Value::Text(HEADER_SIGNING_SCHEME.into())),
        &Value::Text("notary.x509".into())
    );
    assert_eq!(
        map_get(header, &Value::Text(HEADER_SIGNING_TIME.into())),
        &Value::Tag(1, Box::new(Value::Integer(1_748_779_200.into())))
    );
    assert_eq!(
        map_get(unprotected, &Value::Integer(33.into())),
        &Value::Array(vec![Value::Bytes(signer.certificate.clone())])
    );
    assert_eq!(payload, &payload_bytes());
    // Sig_structure = ["Signature1", protected, external_aad, payload] (RFC 9052 §4.4).
    let mut to_be_signed = Vec::new();
    let structure = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.clone()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    ciborium::into_writer(&structure, &mut to_be_signed).unwrap();
    let key = *signer.key.verifying_key();
    let signature = p256::ecdsa::Signature::from_slice(signature).unwrap();
    key.verify(&to_be_signed, &signature).unwrap();
}

#[test]
fn cose_under_the_signing_authority_scheme_carries_a_critical_authentic_signing_time_and_no_signing_time() {
    let signer = LocalSigner::new();
    let mut options = options(SignatureFormat::Cose);
    options.signing_scheme = SigningScheme::X509SigningAuthority;
    let envelope = sign(&signer, &target(), &options).unwrap();
    let value: Value = ciborium::from_reader(envelope.bytes.as_slice()).unwrap();
    let Value::Tag(18, inner) = value else {
        panic!("not a tagged COSE_Sign1: {value:?}")
    };
    let Value::Array(parts) = *inner else {
        panic!("not an array")
    };
    let Value::Bytes(protected) = &parts[0] else {
        panic!("no protected header: {parts:?}")
    };
    let header: Value = ciborium::from_reader(protected.as_slice()).unwrap();
    let header = header.as_map().unwrap();
    assert_eq!(
        map_get(header, &Value::Integer(2.into())),
        &Value::Array(vec![
            Value::Text("io.cncf.notary.signingScheme".into()),
            Value::Text("io.cncf.notary.authenticSigningTime".into()),
            Value::Text("io.cncf.notary.expiry".into())
        ])
    );
    assert_eq!(
        map_get(header, &Value::Text(HEADER_SIGNING_SCHEME.into())),
        &Value::Text("notary.x509.signingAuthority".into())
    );
    // tdate as epoch seconds, CBOR tag 1, as for signingTime.
    assert_eq!(
        map_get(header, &Value::Text("io.cncf.notary.authenticSigningTime".into())),
        &Value::Tag(1, Box::new(Value::Integer(1_748_779_200.into())))
    );
    assert!(!header
        .iter()
        .any(|(k, _)| k == &Value::Text(HEADER_SIGNING_TIME.into())));
}

fn payload_bytes() -> Vec<u8> {
    payload(&target().descriptor)
}

#[test]
fn signature_manifest_is_a_referrer_with_the_chain_thumbprints() {
    let signer = LocalSigner::new();
    let envelope = sign(&signer, &target(), &options(SignatureFormat::Cose)).unwrap();
    let subject = target().descriptor;
    let (bytes, layer) = manifest::signature_manifest(&subject, &envelope, "2025-06-01T12:00:00Z");
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    // notation's own form, the one `notation verify --oci-layout` finds: the artifact type as the config's.
    assert_eq!(m["config"]["mediaType"], SIGNATURE_ARTIFACT_TYPE);
    assert!(m.get("artifactType").is_none());
    assert_eq!(m["subject"]["digest"], subject.digest.to_string());
    assert_eq!(m["layers"][0]["mediaType"], "application/cose");
    assert_eq!(layer.digest, crate::digest::Digest::sha256(&envelope.bytes));
    let thumbprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&signer.certificate));
    assert_eq!(
        m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"],
        format!("[\"{thumbprint}\"]")
    );
}

/// The Notation plugin's attributes: `io.cncf.notary.verificationPlugin` critical, the signing request not.
fn plugin_attributes() -> Vec<ExtendedAttribute> {
    vec![
        ExtendedAttribute {
            name: HEADER_VERIFICATION_PLUGIN.into(),
            value: "signpath".into(),
            critical: true,
        },
        ExtendedAttribute {
            name: "io.signpath.signingRequest".into(),
            value: "c-1".into(),
            critical: false,
        },
    ]
}

#[test]
fn extended_attributes_are_signed_and_critical_ones_listed_in_crit() {
    let signer = LocalSigner::new();
    let mut jws_options = options(SignatureFormat::Jws);
    jws_options.extended = plugin_attributes();
    let header = jws_protected_header(&sign(&signer, &target(), &jws_options).unwrap());
    assert_eq!(
        header["crit"],
        json!([
            "io.cncf.notary.signingScheme",
            "io.cncf.notary.expiry",
            HEADER_VERIFICATION_PLUGIN
        ])
    );
    assert_eq!(header[HEADER_VERIFICATION_PLUGIN], "signpath");
    assert_eq!(header["io.signpath.signingRequest"], "c-1");

    let mut cose_options = options(SignatureFormat::Cose);
    cose_options.extended = plugin_attributes();
    let envelope = sign(&signer, &target(), &cose_options).unwrap();
    let Value::Tag(18, inner) = ciborium::from_reader(envelope.bytes.as_slice()).unwrap() else {
        panic!("not a tagged COSE_Sign1")
    };
    let Value::Array(parts) = *inner else {
        panic!("not an array")
    };
    let Value::Bytes(protected) = &parts[0] else {
        panic!("no protected header")
    };
    let header: Value = ciborium::from_reader(protected.as_slice()).unwrap();
    let header = header.as_map().unwrap();
    assert_eq!(
        map_get(header, &Value::Integer(2.into())),
        &Value::Array(vec![
            Value::Text("io.cncf.notary.signingScheme".into()),
            Value::Text("io.cncf.notary.expiry".into()),
            Value::Text(HEADER_VERIFICATION_PLUGIN.into()),
        ])
    );
    assert_eq!(
        map_get(header, &Value::Text("io.signpath.signingRequest".into())),
        &Value::Text("c-1".into())
    );
}
