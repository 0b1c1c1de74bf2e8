//! What the gateway's CAs have revoked: `ca/revocations.toml`, written by `signpath-gateway revoke` (atomically,
//! like gateway.toml) and read by the CRL publisher, which puts every entry of a CA on that CA's next CRL.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::CrlReason;

use common::x509::pem_certificates;
use der::Decode;
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::demo::PkiError;
use crate::config::{resolve, PkiConfig};

/// Why a certificate is revoked (RFC 5280 §5.3.1 reason codes an operator uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl Reason {
    /// The reason as `revoke --reason` and the file spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key-compromise",
            Self::CaCompromise => "ca-compromise",
            Self::AffiliationChanged => "affiliation-changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation-of-operation",
        }
    }

    pub fn crl_reason(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
        }
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// The issuing CA's name in `[pki]` (`root`, `intermediate`).
    pub issuer: String,
    /// The certificate's serial number, hex of its DER integer bytes.
    pub serial: String,
    /// The certificate's subject, for people reading the file.
    pub subject: String,
    /// When it was revoked (RFC 3339).
    pub revoked_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Since when the key is known or suspected to be unfit (RFC 3339); signatures timestamped before it stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidity_date: Option<String>,
}

impl Revoked {
    pub fn serial_bytes(&self) -> Result<Vec<u8>, PkiError> {
        Ok(hex::decode(&self.serial)
            .map_err(|e| format!("revoked serial {:?} is not hex: {e}", self.serial))?)
    }

    pub fn revoked_at(&self) -> Result<SystemTime, PkiError> {
        parse_time(&self.revoked_at)
    }

    pub fn invalidity_date(&self) -> Result<Option<SystemTime>, PkiError> {
        self.invalidity_date.as_deref().map(parse_time).transpose()
    }
}

/// RFC 3339 to a time, whole seconds (what a CRL holds).
pub fn parse_time(text: &str) -> Result<SystemTime, PkiError> {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-01-31T12:00:00Z): {e}"))?;
    Ok(SystemTime::from(t.replace_nanosecond(0)?))
}

pub fn format_time(t: SystemTime) -> Result<String, PkiError> {
    Ok(OffsetDateTime::from(t).replace_nanosecond(0)?.format(&Rfc3339)?)
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    #[serde(default)]
    pub revoked: Vec<Revoked>,
}

impl Revocations {
    /// The file, or an empty list where there is none yet.
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        let text = toml::to_string_pretty(self)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)?;
        Ok(())
    }

    /// The entry of the certificate `serial` (hex) of the CA named `issuer`, if it is revoked.
    pub fn find(&self, issuer: &str, serial: &str) -> Option<&Revoked> {
        self.revoked
            .iter()
            .find(|r| r.issuer == issuer && r.serial.eq_ignore_ascii_case(serial))
    }

    /// The revocation of the first certificate of `chain` that is revoked.
    pub fn revocation_of(&self, chain: &[IssuedCertificate]) -> Option<&Revoked> {
        chain.iter().find_map(|c| self.find(&c.issuer, &c.serial))
    }

    /// The entries of one CA.
    pub fn of<'a>(&'a self, issuer: &'a str) -> impl Iterator<Item = &'a Revoked> + 'a {
        self.revoked.iter().filter(move |r| r.issuer == issuer)
    }
}

/// A certificate of a policy's chain that one of the gateway's CAs issued: the CA's name in `[pki]` and the
/// certificate's serial number (hex), as `signpath-gateway revoke` records a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub issuer: String,
    pub serial: String,
    pub subject: String,
}

/// The gateway's CAs (`[pki]`): each one's name and subject.
pub fn gateway_cas(pki: &PkiConfig, base: &Path) -> Result<Vec<(String, Name)>, PkiError> {
    let mut cas = Vec::new();
    for ca in &pki.cas {
        let path = resolve(base, &ca.certificate);
        let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = pem_certificates(&pem, &path.display().to_string())
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{} holds no certificate", path.display()))?;
        let cert = Certificate::from_der(&der)?;
        cas.push((ca.name.clone(), cert.tbs_certificate.subject));
    }
    Ok(cas)
}

/// The certificates of `chain` (DER, leaf first) a CA of `cas` issued, named as `revoke` records them.
pub fn issued_by(cas: &[(String, Name)], chain: &[Vec<u8>]) -> Vec<IssuedCertificate> {
    chain
        .iter()
        .filter_map(|der| Certificate::from_der(der).ok())
        .filter_map(|cert| {
            let tbs = &cert.tbs_certificate;
            let (issuer, _) = cas.iter().find(|(_, subject)| *subject == tbs.issuer)?;
            // A self-signed root is on no CRL of its own.
            (tbs.issuer != tbs.subject).then(|| IssuedCertificate {
                issuer: issuer.clone(),
                serial: hex::encode(tbs.serial_number.as_bytes()),
                subject: tbs.subject.to_string(),
            })
        })
        .collect()
}

/// What tells a changed file from the one read before: modification time, length and inode (`revoke` renames a new
/// file into place).
pub fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}
