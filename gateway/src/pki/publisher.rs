//! The CRLs `serve` publishes: one per CA of `[pki]`, signed in the HSM when first asked for, again when it has
//! lived half its validity, and at once when `ca/revocations.toml` changes (a `revoke` takes effect on the next
//! request for the CRL). nextUpdate is thisUpdate plus `crl_validity_seconds`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::demo::PkiError;
use crate::config::{resolve, PkiConfig};
use crate::hsm::Signer;

#[derive(Debug, Clone)]
struct Published {
    der: Arc<Vec<u8>>,
    this_update: SystemTime,
    revocations: Option<(SystemTime, u64, u64)>,
}

/// The CRLs of the gateway's CAs.
pub struct Publisher {
    pki: PkiConfig,
    base: PathBuf,
    signer: Arc<Signer>,
    published: Mutex<HashMap<String, Published>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("cas", &self.pki.cas.len())
            .finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(pki: PkiConfig, base: &Path, signer: Arc<Signer>) -> Self {
        Self {
            pki,
            base: base.to_path_buf(),
            signer,
            published: Mutex::new(HashMap::new()),
        }
    }

    /// The current CRL (DER) of the CA named `ca`, or None if the gateway has no such CA. Blocking (HSM, files).
    pub fn crl(&self, ca: &str) -> Result<Option<Arc<Vec<u8>>>, PkiError> {
        if !self.pki.cas.iter().any(|c| c.name == ca) {
            return Ok(None);
        }
        let revocations_path = resolve(&self.base, &self.pki.revocations);
        let stamp = super::revocations::stamp(&revocations_path);
        let now = SystemTime::now();
        let validity = Duration::from_secs(self.pki.crl_validity_seconds.max(2));
        if let Some(p) = self.lock().get(ca) {
            let fresh = now
                .duration_since(p.this_update)
                .is_ok_and(|age| age < validity / 2);
            if fresh && p.revocations == stamp {
                return Ok(Some(p.der.clone()));
            }
        }
        let cas = super::ca::load(&self.pki, &self.base, &self.signer)?;
        let issuer = cas
            .iter()
            .find(|c| c.name == ca)
            .ok_or_else(|| format!("CA {ca:?} vanished from [pki]"))?;
        let revocations = super::revocations::Revocations::load(&revocations_path)?;
        let revoked: Vec<_> = revocations.of(ca).collect();
        let der = Arc::new(super::crl::build(
            &issuer.ca.cert,
            &issuer.ca.key,
            &revoked,
            now,
            now + validity,
        )?);
        tracing::info!(ca, revoked = revoked.len(), "signed a new CRL");
        self.lock().insert(
            ca.to_owned(),
            Published {
                der: der.clone(),
                this_update: now,
                revocations: stamp,
            },
        );
        Ok(Some(der))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Published>> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }
}
