//! Request revocations in PostgreSQL, shared by every replica: one row per revoked scope (its key unique), so a
//! second `revoke` of the same thing, through any replica's host, leaves the first. Which signatures a revocation
//! covers is read from the shared audit log.

use common::revocation_list::{Revocation, Scope};
use sqlx::Row;

use super::Database;
use crate::store::request_revocations::{
    candidate_condition, RequestRevocationStore, SignedRequest, SIGNED, SIGNED_COLUMNS,
};
use crate::store::StoreError;

#[derive(Debug)]
pub struct PgRequestRevocations {
    db: Database,
}

impl PgRequestRevocations {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    fn select(
        &self,
        condition: &str,
        first: String,
        second: String,
    ) -> Result<Vec<SignedRequest>, StoreError> {
        let sql = format!(
            "SELECT {SIGNED_COLUMNS} FROM audit WHERE {SIGNED} AND {} ORDER BY seq",
            condition.replace("{1}", "$1").replace("{2}", "$2")
        );
        self.db.run(|pool| async move {
            let rows = sqlx::query(&sql)
                .bind(first)
                .bind(second)
                .fetch_all(&pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let project: Option<String> = row.try_get(2)?;
                    let policy: Option<String> = row.try_get(3)?;
                    Ok(SignedRequest {
                        request_id: row.try_get(0)?,
                        client_request_id: row.try_get(1)?,
                        policy: format!("{}/{}", project.unwrap_or_default(), policy.unwrap_or_default()),
                        release_group: row.try_get(4)?,
                        completed: row.try_get(5)?,
                        signature_sha256: row.try_get(6)?,
                    })
                })
                .collect()
        })
    }
}

impl RequestRevocationStore for PgRequestRevocations {
    fn revoke(&self, revocation: &Revocation) -> Result<bool, StoreError> {
        let entry = serde_json::to_string(revocation).map_err(|e| StoreError(e.to_string()))?;
        let scope = revocation.scope.key();
        self.db.run(|pool| async move {
            let done = sqlx::query(
                "INSERT INTO request_revocations (scope, entry) VALUES ($1, $2) ON CONFLICT (scope) DO NOTHING",
            )
            .bind(scope)
            .bind(entry)
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let entries: Vec<String> = self.db.run(|pool| async move {
            sqlx::query_scalar("SELECT entry FROM request_revocations ORDER BY seq")
                .fetch_all(&pool)
                .await
        })?;
        entries
            .iter()
            .map(|e| serde_json::from_str(e).map_err(|e| StoreError(format!("request_revocations: {e}"))))
            .collect()
    }

    fn signed_requests(&self, id: &str) -> Result<Vec<SignedRequest>, StoreError> {
        self.select(
            "(request_id = {1} OR idempotency_key = {2})",
            id.to_owned(),
            id.to_owned(),
        )
    }

    fn candidates(&self, scope: &Scope) -> Result<Vec<SignedRequest>, StoreError> {
        let (condition, first, second) = candidate_condition(scope);
        self.select(condition, first, second)
    }
}
