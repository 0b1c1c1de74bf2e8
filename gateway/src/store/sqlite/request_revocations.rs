//! Request revocations in SQLite, in the audit log's database file: one row per revoked scope, its primary key
//! the scope's key, so a second `revoke` of the same thing leaves the first.

use std::path::Path;
use std::sync::Mutex;

use common::revocation_list::{Revocation, Scope};
use rusqlite::{params, Connection};

use super::connect;
use crate::store::request_revocations::{
    candidate_condition, RequestRevocationStore, SignedRequest, SIGNED, SIGNED_COLUMNS,
};
use crate::store::StoreError;

pub struct SqliteRequestRevocations {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteRequestRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteRequestRevocations")
    }
}

impl SqliteRequestRevocations {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = connect(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS request_revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 scope TEXT NOT NULL UNIQUE, entry TEXT NOT NULL);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn select(&self, condition: &str, first: &str, second: &str) -> Result<Vec<SignedRequest>, StoreError> {
        let condition = condition.replace("{1}", "?1").replace("{2}", "?2");
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {SIGNED_COLUMNS} FROM audit WHERE {SIGNED} AND {condition} ORDER BY seq"
        ))?;
        let rows = stmt.query_map(params![first, second], |row| {
            let project: Option<String> = row.get(2)?;
            let policy: Option<String> = row.get(3)?;
            Ok(SignedRequest {
                request_id: row.get(0)?,
                client_request_id: row.get(1)?,
                policy: format!("{}/{}", project.unwrap_or_default(), policy.unwrap_or_default()),
                release_group: row.get(4)?,
                completed: row.get(5)?,
                signature_sha256: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl RequestRevocationStore for SqliteRequestRevocations {
    fn revoke(&self, revocation: &Revocation) -> Result<bool, StoreError> {
        let entry = serde_json::to_string(revocation).map_err(|e| StoreError(e.to_string()))?;
        let inserted = self.conn().execute(
            "INSERT INTO request_revocations (scope, entry) VALUES (?1, ?2) ON CONFLICT (scope) DO NOTHING",
            params![revocation.scope.key(), entry],
        )?;
        Ok(inserted == 1)
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT entry FROM request_revocations ORDER BY seq")?;
        let entries = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        entries
            .iter()
            .map(|e| serde_json::from_str(e).map_err(|e| StoreError(format!("request_revocations: {e}"))))
            .collect()
    }

    fn signed_requests(&self, id: &str) -> Result<Vec<SignedRequest>, StoreError> {
        self.select("(request_id = {1} OR idempotency_key = {2})", id, id)
    }

    fn candidates(&self, scope: &Scope) -> Result<Vec<SignedRequest>, StoreError> {
        let (condition, first, second) = candidate_condition(scope);
        self.select(condition, &first, &second)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::request_revocations::covered;
    use crate::store::sqlite::SqliteAudit;
    use crate::store::{AuditStore, Record};

    fn signed(id: &str, key: &str, policy: &str, group: Option<&str>, completed: &str) -> Record {
        Record {
            request_id: id.into(),
            completed: completed.into(),
            project: Some("P".into()),
            policy: Some(policy.into()),
            idempotency_key: Some(key.into()),
            outcome: "allowed".into(),
            status: 200,
            signature_sha256: Some(format!("sha-{id}")),
            release_group: group.map(str::to_owned),
            ..Record::default()
        }
    }

    fn revocation(scope: Scope) -> Revocation {
        Revocation {
            scope,
            reason: "pulled".into(),
            revoked_at: "2026-01-02T00:00:00Z".into(),
            revoked_by: Some("operator".into()),
            signatures: Vec::new(),
        }
    }

    fn stores() -> (tempfile::TempDir, SqliteAudit, SqliteRequestRevocations) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let audit = SqliteAudit::open(&db).unwrap();
        let revocations = SqliteRequestRevocations::open(&db).unwrap();
        (dir, audit, revocations)
    }

    #[test]
    fn revoking_the_same_scope_twice_keeps_the_first_revocation() {
        let (_dir, _audit, store) = stores();
        let scope = Scope::ReleaseGroup {
            release_group: "v1".into(),
        };
        assert!(store.revoke(&revocation(scope.clone())).unwrap());
        let mut again = revocation(scope);
        again.reason = "another reason".into();
        assert!(!store.revoke(&again).unwrap());
        let all = store.revocations().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].reason, "pulled");
    }

    #[test]
    fn the_audit_log_names_the_signatures_each_scope_covers() {
        let (_dir, audit, store) = stores();
        for r in [
            signed("r1", "k1", "release", Some("g1"), "2026-01-01T10:00:00Z"),
            signed("r2", "k2", "release", Some("g1"), "2026-01-01T12:00:00Z"),
            signed("r3", "k3", "release", None, "2026-01-01T14:00:00Z"),
            signed("r4", "k4", "other", None, "2026-01-01T14:00:00Z"),
        ] {
            audit.append(&r, None).unwrap();
        }
        // A refusal is not a signature.
        let mut refused = signed("r5", "k5", "release", Some("g1"), "2026-01-01T15:00:00Z");
        refused.outcome = "refused".into();
        audit.append(&refused, None).unwrap();
        let ids = |scope: Scope| -> Vec<String> {
            covered(&scope, store.candidates(&scope).unwrap())
                .into_iter()
                .map(|r| r.request_id)
                .collect()
        };
        assert_eq!(
            ids(Scope::Request {
                request_id: "r2".into(),
                client_request_id: Some("k2".into())
            }),
            ["r2"]
        );
        assert_eq!(
            ids(Scope::ReleaseGroup {
                release_group: "g1".into()
            }),
            ["r1", "r2"]
        );
        assert_eq!(
            ids(Scope::PolicySignedAfter {
                policy: "P/release".into(),
                signed_after: "2026-01-01T11:00:00Z".into()
            }),
            ["r2", "r3"]
        );
        let found = store.signed_requests("k3").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].request_id, "r3");
        assert_eq!(found[0].policy, "P/release");
        assert!(store.signed_requests("r5").unwrap().is_empty());
    }
}
