//! Revocations made through other replicas: with a shared store (PostgreSQL), the ids of revoked tokens and the
//! revoked certificates are read once before serving and then every [`POLL`], and put in force in the core, so a
//! token or a policy's certificate revoked through one replica is refused by all within a poll and a query. A failed
//! read keeps the lists in force and is logged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::signing::LiveCore;
use crate::store::{RevocationStore, StoreError};

/// How often the shared list is read.
const POLL: Duration = Duration::from_millis(500);

/// Reads the shared list and puts it in force.
pub fn refresh(live: &LiveCore, store: &dyn RevocationStore) -> Result<(), StoreError> {
    let ids: HashSet<String> = store.revoked()?.into_iter().collect();
    let certificates = store.revoked_certificates()?;
    let core = live.current();
    core.revoked.replace(ids);
    core.revoked_certificates.replace_shared(certificates);
    Ok(())
}

/// Refreshes the list for as long as the gateway serves.
pub async fn watch(live: Arc<LiveCore>, store: Arc<dyn RevocationStore>) {
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        let (live, store) = (live.clone(), store.clone());
        match tokio::task::spawn_blocking(move || refresh(&live, store.as_ref())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not read the revoked tokens; the list in force stays")
            }
            Err(e) => tracing::error!(error = %e, "the revoked tokens' refresh failed"),
        }
    }
}
