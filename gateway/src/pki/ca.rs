//! The gateway's own CAs as `[pki]` describes them: each CA's certificate from its file and its key from the HSM.
//! `init` makes them; `policy rotate` issues leaves with the last (issuing) one; the CRL publisher signs with each.

use std::path::Path;

use common::x509::pem_certificates;
use der::Decode;
use x509_cert::Certificate;

use super::demo::{Ca, PkiError};
use super::hsm_key::HsmKey;
use crate::config::{resolve, PkiConfig};
use crate::hsm::Signer;

/// A named CA of the gateway.
#[derive(Debug)]
pub struct NamedCa<'a> {
    pub name: String,
    pub ca: Ca<'a>,
}

/// Every CA in `[pki]`, root first, with its HSM key.
pub fn load<'a>(pki: &PkiConfig, base: &Path, signer: &'a Signer) -> Result<Vec<NamedCa<'a>>, PkiError> {
    let mut cas = Vec::new();
    for c in &pki.cas {
        let path = resolve(base, &c.certificate);
        let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = pem_certificates(&pem, &path.display().to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{} holds no certificate", path.display()))?;
        let key = HsmKey::open(signer, &c.key_label)
            .map_err(|e| format!("the key of CA {:?} ({:?}): {e}", c.name, c.key_label))?;
        cas.push(NamedCa {
            name: c.name.clone(),
            ca: Ca {
                key,
                cert: Certificate::from_der(&der)?,
            },
        });
    }
    Ok(cas)
}

/// The CA among `cas` that issued `cert` (same name, and its signature checks with the CA's key).
pub fn issuer_of<'c, 'a>(cas: &'c [NamedCa<'a>], cert: &Certificate) -> Option<&'c NamedCa<'a>> {
    cas.iter().find(|c| {
        c.ca.cert.tbs_certificate.subject == cert.tbs_certificate.issuer
            && super::check::signed_by(cert, &c.ca.cert).is_ok()
    })
}
