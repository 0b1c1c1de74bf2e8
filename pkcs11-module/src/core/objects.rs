//! The token's objects: computed views of the signing policies the logged-in token may use.
//!
//! Each policy becomes a private key, a public key and a certificate that share `CKA_ID` and `CKA_LABEL`
//! (`Project/Policy`, SignPath's key id): crypto11 (cosign) pairs a private key with its public half by `CKA_ID`,
//! SunPKCS11 (jarsigner) ignores a private key without a certificate of equal `CKA_ID`, pkcs11-tool and
//! SunPKCS11 select by `CKA_LABEL`, libp11 by `CKA_ID`. The CA certificates above the policies' certificates are
//! objects too, so SunPKCS11 can build the chain. A handle is the object's index in the table plus one.

use std::path::Path;
use std::sync::Arc;

use cryptoki_sys::*;
use der::Encode;
use sha2::Digest;

use common::protocol::SigningPolicyInfo;
use common::remote_key::RemoteKey;
use common::x509::ParsedCertificate;

use crate::error::{Error, Result};

/// A policy's key, with the byte strings its objects share.
#[derive(Debug)]
pub struct PolicyKey {
    pub remote: RemoteKey,
    /// `Project/Policy`: CKA_ID and CKA_LABEL of all three objects.
    pub id: Vec<u8>,
    /// DER SubjectPublicKeyInfo (CKA_PUBLIC_KEY_INFO).
    pub spki: Vec<u8>,
}

/// A CA certificate from a policy's chain.
#[derive(Debug)]
pub struct Authority {
    pub certificate: ParsedCertificate,
    pub label: Vec<u8>,
    pub id: Vec<u8>,
    pub spki: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum Object {
    PrivateKey(Arc<PolicyKey>),
    PublicKey(Arc<PolicyKey>),
    Certificate(Arc<PolicyKey>),
    Authority(Arc<Authority>),
}

fn spki_of(certificate: &ParsedCertificate) -> Vec<u8> {
    certificate
        .inner()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap_or_default()
}

/// The objects of one login, in a stable order (policies sorted by key id, then the CA certificates).
#[derive(Debug, Default)]
pub struct ObjectTable {
    objects: Vec<Object>,
}

impl ObjectTable {
    /// Builds the table; a policy whose certificate or key cannot be used is logged and left out, so one broken
    /// policy does not hide the others.
    pub fn from_policies(mut policies: Vec<SigningPolicyInfo>, chain_file: Option<&Path>) -> Self {
        policies.sort_by(|a, b| {
            (&a.project_slug, &a.signing_policy_slug).cmp(&(&b.project_slug, &b.signing_policy_slug))
        });
        let mut objects = Vec::new();
        let mut authorities: Vec<Arc<Authority>> = Vec::new();
        for info in policies {
            let remote = match RemoteKey::from_policy_info(info, chain_file) {
                Ok(remote) => remote,
                Err(error) => {
                    tracing::error!(%error, "signing policy left out of the token");
                    continue;
                }
            };
            for der in remote.chain.iter().skip(1) {
                if authorities.iter().any(|a| a.certificate.der() == der.as_slice()) {
                    continue;
                }
                match ParsedCertificate::from_der(der) {
                    Ok(certificate) => {
                        let fingerprint = sha2::Sha256::digest(certificate.der());
                        authorities.push(Arc::new(Authority {
                            label: certificate.subject().into_bytes(),
                            id: fingerprint[..20].to_vec(),
                            spki: spki_of(&certificate),
                            certificate,
                        }))
                    }
                    Err(error) => {
                        tracing::warn!(key_id = %remote.key_id(), %error, "CA certificate left out of the token")
                    }
                }
            }
            let key = Arc::new(PolicyKey {
                id: remote.key_id().into_bytes(),
                spki: spki_of(&remote.certificate),
                remote,
            });
            objects.push(Object::PrivateKey(key.clone()));
            objects.push(Object::PublicKey(key.clone()));
            objects.push(Object::Certificate(key));
        }
        objects.extend(authorities.into_iter().map(Object::Authority));
        Self { objects }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Result<&Object> {
        usize::try_from(handle)
            .ok()
            .and_then(|h| h.checked_sub(1))
            .and_then(|index| self.objects.get(index))
            .ok_or(Error::ObjectHandleInvalid(handle))
    }

    /// The policy behind a private-key handle.
    pub fn signing_key(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<PolicyKey>> {
        match self.get(handle).map_err(|_| Error::KeyHandleInvalid(handle))? {
            Object::PrivateKey(key) => Ok(key.clone()),
            Object::PublicKey(_) => Err(Error::KeyFunctionNotPermitted(handle)),
            Object::Certificate(_) | Object::Authority(_) => Err(Error::KeyHandleInvalid(handle)),
        }
    }

    /// Every object with its handle.
    pub fn iter(&self) -> impl Iterator<Item = (CK_OBJECT_HANDLE, &Object)> {
        self.objects
            .iter()
            .enumerate()
            .map(|(index, object)| (index as CK_OBJECT_HANDLE + 1, object))
    }
}
