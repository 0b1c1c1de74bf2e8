//! Tokens revoked through another gateway that shares this one's store (replicas on PostgreSQL), whose ids are
//! still in this gateway's configuration: refused as if they were unknown. The set is refreshed from the store by
//! the server (`http/revocations.rs`) and shared by every configuration the gateway reloads. An approver removed
//! through another replica is in the set too, by the SHA-256 of their token ([`approver_revocation`]): their
//! token, their sessions and their votes stop counting on every replica, and an approver added again under the
//! same name (with a new token) is not caught by the old entry.

use std::collections::HashSet;
use std::sync::RwLock;

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
