//! Revocations the core enforces. Tokens revoked through another gateway that shares this one's store (replicas on
//! PostgreSQL), whose ids are still in this gateway's configuration: refused as if they were unknown. An approver
//! removed through another replica is in that set too, by the SHA-256 of their token ([`approver_revocation`]):
//! their token, their sessions and their votes stop counting on every replica, and an approver added again under
//! the same name (with a new token) is not caught by the old entry. Certificates the gateway's CAs revoked: a
//! policy whose certificate (or a CA above it) is revoked signs nothing until `policy rotate` gives it a new key
//! and certificate. Both are refreshed from the shared store by the server (`http/revocations.rs`) and shared by
//! every configuration the gateway reloads.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::pki::revocations::{IssuedCertificate, Revocations, Revoked};

/// The revocation entry of an approver whose token has this SHA-256 (hex, as gateway.toml keeps it).
pub fn approver_revocation(token_sha256_hex: &str) -> String {
    format!("approver-sha256:{}", token_sha256_hex.to_ascii_lowercase())
}

#[derive(Debug, Default)]
pub struct RevokedTokens {
    ids: RwLock<HashSet<String>>,
}

impl RevokedTokens {
    /// Puts the store's current list in force.
    pub fn replace(&self, ids: HashSet<String>) {
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    pub fn contains(&self, token_id: &str) -> bool {
        self.ids
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(token_id)
    }
}

/// Certificates the gateway's CAs revoked, which no policy signs with any more: `[pki] revocations`, read again
/// whenever the file changed (one `stat` per signing request, so a `revoke` takes effect with the next request),
/// and, with a shared store, the revocations written there by `revoke` on any replica's host (refreshed by the
/// server with the revoked tokens). Shared by every configuration the gateway reloads.
#[derive(Debug, Default)]
pub struct RevokedCertificates {
    file: Mutex<FileRead>,
    shared: RwLock<Arc<Revocations>>,
}

#[derive(Debug, Default)]
struct FileRead {
    stamp: Option<(SystemTime, u64, u64)>,
    read: Arc<Revocations>,
}

impl RevokedCertificates {
    /// Puts the shared store's current list in force.
    pub fn replace_shared(&self, revoked: Vec<Revoked>) {
        *self.shared.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Revocations { revoked });
    }

    /// The revocation of the first of `chain` that is revoked, in the file at `file` or in the shared store.
    pub fn revocation_of(&self, file: Option<&Path>, chain: &[IssuedCertificate]) -> Option<Revoked> {
        if chain.is_empty() {
            return None;
        }
        let from_file = file.map(|path| self.read(path)).unwrap_or_default();
        let shared = self.shared.read().unwrap_or_else(|p| p.into_inner()).clone();
        from_file
            .revocation_of(chain)
            .or_else(|| shared.revocation_of(chain))
            .cloned()
    }

    /// The file as it is now: read again only when its stamp changed. A file that cannot be read or parsed keeps
    /// the list read before in force (and is logged): `revoke` replaces it atomically, so that is an operator's edit.
    fn read(&self, path: &Path) -> Arc<Revocations> {
        let stamp = crate::pki::revocations::stamp(path);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if stamp != file.stamp {
            match Revocations::load(path) {
                Ok(read) => file.read = Arc::new(read),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the revocations; the list read before stays in force")
                }
            }
            file.stamp = stamp;
        }
        file.read.clone()
    }
}
