//! Tokens revoked through any replica: `signpath-gateway token revoke` writes the token's id here as well as in
//! its own gateway.toml, and every replica reads the table every half second and refuses those tokens, so a
//! revocation reaches replicas whose configuration files were not rewritten. Certificates `signpath-gateway revoke`
//! revoked are kept here the same way, so a policy with a revoked certificate stops signing on every replica.

use super::{unix_now, Database};
use crate::pki::revocations::Revoked;
use crate::store::{RevocationStore, StoreError};

#[derive(Debug)]
pub struct PgRevocations {
    db: Database,
}

impl PgRevocations {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl RevocationStore for PgRevocations {
    fn revoke(&self, token_id: &str) -> Result<(), StoreError> {
        let token_id = token_id.to_owned();
        self.db.run(|pool| async move {
            sqlx::query(
                "INSERT INTO revoked_tokens (token_id, revoked) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(token_id)
            .bind(unix_now())
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn revoked(&self) -> Result<Vec<String>, StoreError> {
        self.db.run(|pool| async move {
            sqlx::query_scalar("SELECT token_id FROM revoked_tokens")
                .fetch_all(&pool)
                .await
        })
    }

    fn revoke_certificate(&self, revoked: &Revoked) -> Result<(), StoreError> {
        let entry = serde_json::to_string(revoked).map_err(|e| StoreError(e.to_string()))?;
        let (issuer, serial) = (revoked.issuer.clone(), revoked.serial.to_ascii_lowercase());
        self.db.run(|pool| async move {
            sqlx::query(
                "INSERT INTO revoked_certificates (issuer, serial, entry) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(issuer)
            .bind(serial)
            .bind(entry)
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn revoked_certificates(&self) -> Result<Vec<Revoked>, StoreError> {
        let entries: Vec<String> = self.db.run(|pool| async move {
            sqlx::query_scalar("SELECT entry FROM revoked_certificates")
                .fetch_all(&pool)
                .await
        })?;
        entries
            .iter()
            .map(|e| serde_json::from_str(e).map_err(|e| StoreError(format!("revoked_certificates: {e}"))))
            .collect()
    }
}
