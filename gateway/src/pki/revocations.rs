//! What the gateway's CAs have revoked: `ca/revocations.toml`, written by `signpath-gateway revoke` (atomically,
//! like gateway.toml) and read by the CRL publisher, which puts every entry of a CA on that CA's next CRL.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::CrlReason;

use super::demo::PkiError;

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

    /// The entries of one CA.
    pub fn of<'a>(&'a self, issuer: &'a str) -> impl Iterator<Item = &'a Revoked> + 'a {
        self.revoked.iter().filter(move |r| r.issuer == issuer)
    }
}
