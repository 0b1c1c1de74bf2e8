//! Tokens revoked through another gateway that shares this one's store (replicas on PostgreSQL), whose ids are
//! still in this gateway's configuration: refused as if they were unknown. The set is refreshed from the store by
//! the server (`http/revocations.rs`) and shared by every configuration the gateway reloads.

use std::collections::HashSet;
use std::sync::RwLock;

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
