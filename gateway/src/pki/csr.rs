//! PKCS#10 certificate signing requests for a policy's HSM key (`policy csr`), asking by default for Notary's
//! signing-certificate profile: critical KeyUsage digitalSignature, EKU codeSigning, BasicConstraints CA:FALSE.
//! The CA decides what it issues; `check` verifies what comes back.

use std::str::FromStr;

use der::EncodePem;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;

use super::demo::PkiError;
use super::hsm_key::{HsmKey, HsmSignature};

/// The CSR (PEM) for `key` with `subject` (RFC 4514, most specific first: `CN=acme/release,O=Acme,C=AT`).
pub fn notary_leaf_request(key: &HsmKey<'_>, subject: &str) -> Result<String, PkiError> {
    let subject = Name::from_str(subject)
        .map_err(|e| format!("{subject:?} is not an RFC 4514 name (CN=…,O=…,C=…): {e}"))?;
    let mut builder = RequestBuilder::new(subject, key)?;
    builder.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))?;
    builder.add_extension(&ExtendedKeyUsage(vec![
        const_oid::db::rfc5280::ID_KP_CODE_SIGNING,
    ]))?;
    builder.add_extension(&BasicConstraints {
        ca: false,
        path_len_constraint: None,
    })?;
    let request = builder.build::<HsmSignature>()?;
    Ok(request.to_pem(der::pem::LineEnding::LF)?)
}
