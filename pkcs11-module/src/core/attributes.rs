//! Attribute values of the token's objects, as the bytes `C_GetAttributeValue` copies out, and the rules of
//! PKCS#11 v2.40 §5.7 for filling a template.
//!
//! Values are computed from the policy's certificate on every read; nothing is stored twice. `CK_BBOOL` is one
//! byte and `CK_ULONG` values are native-endian `unsigned long`, as the C ABI lays them out.

use cryptoki_sys::*;
use der::asn1::OctetStringRef;
use der::Encode;

use common::keys::KeyKind;

use crate::core::mechanism::{EC_MECHANISMS, RSA_MECHANISMS};
use crate::core::objects::{Authority, Object, ObjectTable, PolicyKey};
use crate::error::Error;

/// One attribute of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Value(Vec<u8>),
    /// Exists but may not be revealed (the private key's secret parts).
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

fn bool(value: bool) -> Attr {
    Attr::Value(vec![if value { CK_TRUE } else { CK_FALSE }])
}

fn ulong(value: CK_ULONG) -> Attr {
    Attr::Value(value.to_ne_bytes().to_vec())
}

fn bytes(value: &[u8]) -> Attr {
    Attr::Value(value.to_vec())
}

fn mechanisms(list: &[CK_MECHANISM_TYPE]) -> Attr {
    Attr::Value(list.iter().flat_map(|m| m.to_ne_bytes()).collect())
}

/// Attributes every object has: storage attributes of a read-only token object.
fn storage(ty: CK_ATTRIBUTE_TYPE, class: CK_OBJECT_CLASS, private: bool, label: &[u8]) -> Attr {
    match ty {
        CKA_CLASS => ulong(class),
        CKA_TOKEN => bool(true),
        CKA_PRIVATE => bool(private),
        CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => bool(false),
        CKA_LABEL => bytes(label),
        _ => Attr::Invalid,
    }
}

/// Attributes common to both halves of a policy's key pair.
fn key_common(ty: CK_ATTRIBUTE_TYPE, key: &PolicyKey) -> Attr {
    let kind = key.remote.kind();
    match ty {
        CKA_KEY_TYPE => ulong(match kind {
            KeyKind::Rsa { .. } => CKK_RSA,
            KeyKind::Ec(_) => CKK_EC,
        }),
        CKA_ID => bytes(&key.id),
        CKA_START_DATE | CKA_END_DATE => bytes(&[]),
        CKA_DERIVE | CKA_LOCAL => bool(false),
        CKA_KEY_GEN_MECHANISM => ulong(CK_UNAVAILABLE_INFORMATION),
        CKA_ALLOWED_MECHANISMS => mechanisms(match kind {
            KeyKind::Rsa { .. } => &RSA_MECHANISMS[..],
            KeyKind::Ec(_) => &EC_MECHANISMS[..],
        }),
        CKA_SUBJECT => bytes(&key.remote.certificate.subject_der()),
        CKA_PUBLIC_KEY_INFO => bytes(&key.spki),
        _ => public_values(ty, key),
    }
}

/// The public numbers of the key: EC parameters and point, RSA modulus and exponent.
fn public_values(ty: CK_ATTRIBUTE_TYPE, key: &PolicyKey) -> Attr {
    let public = &key.remote.public_key;
    match (ty, key.remote.kind()) {
        (CKA_EC_PARAMS, KeyKind::Ec(curve)) => curve.oid().to_der().map_or(Attr::Invalid, Attr::Value),
        (CKA_EC_POINT, KeyKind::Ec(_)) => public
            .ec_point()
            .and_then(|point| OctetStringRef::new(&point).and_then(|o| o.to_der()).ok())
            .map_or(Attr::Invalid, Attr::Value),
        (CKA_MODULUS, KeyKind::Rsa { .. }) => public
            .rsa_parameters()
            .map_or(Attr::Invalid, |(n, _)| Attr::Value(n)),
        (CKA_PUBLIC_EXPONENT, KeyKind::Rsa { .. }) => public
            .rsa_parameters()
            .map_or(Attr::Invalid, |(_, e)| Attr::Value(e)),
        (CKA_MODULUS_BITS, KeyKind::Rsa { bits }) => ulong(CK_ULONG::from(bits)),
        _ => Attr::Invalid,
    }
}

fn private_key(ty: CK_ATTRIBUTE_TYPE, key: &PolicyKey) -> Attr {
    match ty {
        CKA_SENSITIVE | CKA_SIGN | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE => bool(true),
        CKA_DECRYPT
        | CKA_SIGN_RECOVER
        | CKA_UNWRAP
        | CKA_EXTRACTABLE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_ALWAYS_AUTHENTICATE => bool(false),
        // The secret parts exist, in the gateway's HSM.
        CKA_VALUE | CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2
        | CKA_COEFFICIENT => Attr::Sensitive,
        // Only the public half carries the point (PKCS#11 §2.3.4); libp11 and p11tool read it there.
        CKA_EC_POINT => Attr::Invalid,
        _ => match storage(ty, CKO_PRIVATE_KEY, true, &key.id) {
            Attr::Invalid => key_common(ty, key),
            found => found,
        },
    }
}

fn public_key(ty: CK_ATTRIBUTE_TYPE, key: &PolicyKey) -> Attr {
    match ty {
        CKA_VERIFY => bool(true),
        CKA_ENCRYPT | CKA_VERIFY_RECOVER | CKA_WRAP | CKA_TRUSTED => bool(false),
        _ => match storage(ty, CKO_PUBLIC_KEY, false, &key.id) {
            Attr::Invalid => key_common(ty, key),
            found => found,
        },
    }
}

/// Attributes of an X.509 certificate object.
fn certificate(
    ty: CK_ATTRIBUTE_TYPE,
    cert: &common::x509::ParsedCertificate,
    id: &[u8],
    label: &[u8],
    spki: &[u8],
    category: CK_ULONG,
) -> Attr {
    match ty {
        CKA_CERTIFICATE_TYPE => ulong(CKC_X_509),
        CKA_TRUSTED => bool(false),
        CKA_CERTIFICATE_CATEGORY => ulong(category),
        CKA_START_DATE
        | CKA_END_DATE
        | CKA_URL
        | CKA_HASH_OF_SUBJECT_PUBLIC_KEY
        | CKA_HASH_OF_ISSUER_PUBLIC_KEY => bytes(&[]),
        CKA_JAVA_MIDP_SECURITY_DOMAIN => ulong(0),
        CKA_PUBLIC_KEY_INFO => bytes(spki),
        CKA_SUBJECT => bytes(&cert.subject_der()),
        CKA_ISSUER => bytes(&cert.issuer_der()),
        CKA_SERIAL_NUMBER => bytes(&cert.serial_der()),
        CKA_VALUE => bytes(cert.der()),
        CKA_ID => bytes(id),
        _ => storage(ty, CKO_CERTIFICATE, false, label),
    }
}

impl Object {
    pub fn attribute(&self, ty: CK_ATTRIBUTE_TYPE) -> Attr {
        match self {
            Self::PrivateKey(key) => private_key(ty, key),
            Self::PublicKey(key) => public_key(ty, key),
            Self::Certificate(key) => certificate(
                ty,
                &key.remote.certificate,
                &key.id,
                &key.id,
                &key.spki,
                CK_CERTIFICATE_CATEGORY_TOKEN_USER,
            ),
            Self::Authority(ca) => authority(ty, ca),
        }
    }

    /// Visible only after login (`CKA_PRIVATE`).
    pub fn is_private(&self) -> bool {
        matches!(self, Self::PrivateKey(_))
    }
}

fn authority(ty: CK_ATTRIBUTE_TYPE, ca: &Authority) -> Attr {
    certificate(
        ty,
        &ca.certificate,
        &ca.id,
        &ca.label,
        &ca.spki,
        CK_CERTIFICATE_CATEGORY_AUTHORITY,
    )
}

/// What to write back for one template entry: the length, and the value when the caller's buffer takes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Filled {
    pub len: CK_ULONG,
    pub value: Option<Vec<u8>>,
}

/// A filled template and the error to return with it, if any.
#[derive(Debug)]
pub struct TemplateOutcome {
    pub entries: Vec<Filled>,
    pub error: Option<Error>,
}

/// Fills a template by §5.7. `template` holds each entry's type and buffer length (`None` when `pValue` is NULL).
/// Every entry is processed: a NULL buffer gets the length, a large enough one the value, a too small one
/// `CK_UNAVAILABLE_INFORMATION`; sensitive and unknown attributes get `CK_UNAVAILABLE_INFORMATION`. The error is
/// the last one met (the spec lets any of them be returned).
pub fn fill_template(object: &Object, template: &[(CK_ATTRIBUTE_TYPE, Option<usize>)]) -> TemplateOutcome {
    let mut error = None;
    let mut unavailable = |e: Error| {
        error = Some(e);
        Filled {
            len: CK_UNAVAILABLE_INFORMATION,
            value: None,
        }
    };
    let entries = template
        .iter()
        .map(|&(ty, capacity)| match object.attribute(ty) {
            Attr::Value(value) => match capacity {
                None => Filled {
                    len: value.len() as CK_ULONG,
                    value: None,
                },
                Some(capacity) if capacity >= value.len() => Filled {
                    len: value.len() as CK_ULONG,
                    value: Some(value),
                },
                Some(_) => unavailable(Error::BufferTooSmall),
            },
            Attr::Sensitive => unavailable(Error::AttributeSensitive),
            Attr::Invalid => unavailable(Error::AttributeTypeInvalid),
        })
        .collect();
    TemplateOutcome { entries, error }
}

impl ObjectTable {
    /// Handles of the objects whose attributes equal every template entry byte for byte (an attribute the object
    /// lacks, or a sensitive one, never matches).
    pub fn find(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<CK_OBJECT_HANDLE> {
        self.iter()
            .filter(|(_, object)| {
                template
                    .iter()
                    .all(|(ty, value)| matches!(object.attribute(*ty), Attr::Value(v) if v == *value))
            })
            .map(|(handle, _)| handle)
            .collect()
    }
}
