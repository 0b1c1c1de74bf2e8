//! Held signing requests, votes and release-group uses in SQLite, in the same database file as the audit log, so
//! that a waiting request survives a restart of the gateway and `signpath-gateway approve` (another process) acts
//! on the same state. Every change is one `BEGIN IMMEDIATE` transaction, so the gateway and the command line never
//! interleave a read and a write of the same request.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::connect;
use crate::config::ApprovalConfig;
use crate::store::rules::VoteEffect;
use crate::store::{
    rules, ApprovalStore, GroupUse, Held, HeldCount, HeldQuery, NewHeld, Stage, Status, StoreError, VoteError,
};

pub struct SqliteApprovals {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteApprovals")
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const SELECT: &str =
    "SELECT request_id, token_id, project, policy, request_json, status, required, approvers, \
    denied_by, reason, release_group, image, digest, created, response, binding, signatures FROM held";

/// The condition of [`HeldQuery::policies`]: `?1` is a JSON array of `[project, policy]` pairs, or NULL for all.
const OF_POLICIES: &str = "(?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(?1) AS p \
    WHERE json_extract(p.value, '$[0]') = held.project AND json_extract(p.value, '$[1]') = held.policy))";

impl SqliteApprovals {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = connect(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS held (request_id TEXT PRIMARY KEY, token_id TEXT NOT NULL,
                 project TEXT NOT NULL, policy TEXT NOT NULL, request_json TEXT NOT NULL, status TEXT NOT NULL,
                 required INTEGER NOT NULL, approvers TEXT NOT NULL, denied_by TEXT, reason TEXT,
                 release_group TEXT, image TEXT, digest TEXT NOT NULL, created INTEGER NOT NULL,
                 decided INTEGER, response TEXT);
             CREATE INDEX IF NOT EXISTS held_status ON held (status);
             CREATE INDEX IF NOT EXISTS held_group ON held (project, policy, release_group);
             CREATE TABLE IF NOT EXISTS votes (request_id TEXT NOT NULL, approver TEXT NOT NULL,
                 decision TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL, PRIMARY KEY (request_id, approver));
             CREATE TABLE IF NOT EXISTS group_uses (covering TEXT NOT NULL, request_id TEXT PRIMARY KEY,
                 at INTEGER NOT NULL);",
        )?;
        // Added after the first release: the CI identity a release group's approval is bound to, and the
        // signatures a request makes and a release group's use counted (1 for the hashes held before).
        add_column(&conn, "held", "binding", "TEXT")?;
        add_column(&conn, "held", "signatures", "INTEGER NOT NULL DEFAULT 1")?;
        add_column(&conn, "group_uses", "signatures", "INTEGER NOT NULL DEFAULT 1")?;
        conn.execute_batch("CREATE INDEX IF NOT EXISTS held_policy ON held (project, policy, created)")?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `column` to `table` unless a database made by an earlier version already has it.
fn add_column(conn: &Connection, table: &str, column: &str, declaration: &str) -> rusqlite::Result<()> {
    let exists: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |row| row.get(0),
    )?;
    if !exists {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {declaration}"))?;
    }
    Ok(())
}

/// `policies` as the JSON array [`OF_POLICIES`] reads.
fn policies_json(policies: Option<&[(String, String)]>) -> Option<String> {
    policies.map(|p| serde_json::to_string(p).unwrap_or_else(|_| "[]".into()))
}

impl From<rusqlite::Error> for VoteError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl ApprovalStore for SqliteApprovals {
    fn hold(&self, n: &NewHeld<'_>) -> Result<(), StoreError> {
        let approvers = serde_json::to_string(n.approvers).unwrap_or_else(|_| "[]".into());
        self.conn().execute(
            "INSERT INTO held (request_id, token_id, project, policy, request_json, status, required, approvers, \
             release_group, image, digest, created, binding, signatures) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'Pending', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                n.request_id,
                n.token_id,
                n.project,
                n.policy,
                n.request_json,
                n.required,
                approvers,
                n.release_group,
                n.image,
                n.digest,
                now(),
                n.binding,
                n.signatures
            ],
        )?;
        Ok(())
    }

    fn get(&self, request_id: &str) -> Result<Option<Held>, StoreError> {
        let conn = self.conn();
        Ok(get(&conn, request_id)?)
    }

    fn list(&self, q: &HeldQuery<'_>) -> Result<Vec<Held>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{SELECT} WHERE {OF_POLICIES} AND (?2 IS NULL OR (status = 'Pending') = ?2) \
             ORDER BY created DESC, rowid DESC LIMIT ?3 OFFSET ?4"
        ))?;
        let waiting = q.stage.map(|s| s == Stage::Waiting);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(
                params![policies_json(q.policies), waiting, q.limit, offset],
                row_to_held,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        Ok(rows
            .into_iter()
            .map(|h| with_votes(&conn, h))
            .collect::<rusqlite::Result<_>>()?)
    }

    fn count(&self, policies: Option<&[(String, String)]>) -> Result<Vec<HeldCount>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT project, policy, SUM(status = 'Pending'), SUM(status <> 'Pending') FROM held \
             WHERE {OF_POLICIES} GROUP BY project, policy ORDER BY project, policy"
        ))?;
        let counts = stmt
            .query_map(params![policies_json(policies)], |row| {
                Ok(HeldCount {
                    project: row.get(0)?,
                    policy: row.get(1)?,
                    waiting: row.get::<_, i64>(2)?.unsigned_abs(),
                    decided: row.get::<_, i64>(3)?.unsigned_abs(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(counts)
    }

    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
        approval: &ApprovalConfig,
    ) -> Result<Held, VoteError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held = get(&tx, request_id)?.ok_or_else(|| VoteError::NotFound(request_id.to_owned()))?;
        let effect = rules::vote_effect(&held, approver, approve, approval)?;
        tx.execute(
            "INSERT INTO votes (request_id, approver, decision, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                request_id,
                approver,
                if approve { "approve" } else { "deny" },
                reason,
                now()
            ],
        )?;
        match effect {
            VoteEffect::Denies => {
                tx.execute(
                    "UPDATE held SET status = 'Denied', denied_by = ?2, reason = ?3, decided = ?4 WHERE request_id = ?1",
                    params![request_id, approver, reason, now()],
                )?;
            }
            VoteEffect::Approves => {
                tx.execute(
                    "UPDATE held SET status = 'Approved', decided = ?2 WHERE request_id = ?1",
                    params![request_id, now()],
                )?;
            }
            VoteEffect::Counts => {}
        }
        let updated = get(&tx, request_id)?.ok_or_else(|| VoteError::NotFound(request_id.to_owned()))?;
        tx.commit()?;
        Ok(updated)
    }

    fn claim(&self, request_id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE held SET status = 'Signing' WHERE request_id = ?1 AND status = 'Approved'",
            params![request_id],
        )? == 1)
    }

    fn reopen(&self, request_id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE held SET status = 'Pending', decided = NULL WHERE request_id = ?1 AND status = 'Approved'",
            params![request_id],
        )? == 1)
    }

    fn recover(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("UPDATE held SET status = 'Approved' WHERE status = 'Signing'", [])?)
    }

    fn unclaim(&self, request_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE held SET status = 'Approved' WHERE request_id = ?1 AND status = 'Signing'",
            params![request_id],
        )?;
        Ok(())
    }

    fn complete(&self, request_id: &str, response: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE held SET status = 'Completed', response = ?2 WHERE request_id = ?1",
            params![request_id, response],
        )?;
        Ok(())
    }

    fn use_group(&self, g: &GroupUse<'_>, approval: &ApprovalConfig) -> Result<Option<String>, StoreError> {
        let Some(limits) = &approval.release_group else {
            return Ok(None);
        };
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates = {
            let mut stmt = tx.prepare(&format!(
                "{SELECT} WHERE project = ?1 AND policy = ?2 AND release_group = ?3 AND token_id = ?4 \
                 AND binding IS ?5 AND status IN ('Approved', 'Signing', 'Completed') AND decided >= ?6 \
                 ORDER BY decided DESC, rowid DESC"
            ))?;
            let params = params![
                g.project,
                g.policy,
                g.group,
                g.token_id,
                g.binding,
                rules::window_start(limits, now())
            ];
            let rows = stmt.query_map(params, row_to_held)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut covering = None;
        for held in candidates {
            let held = with_votes(&tx, held)?;
            let used: i64 = tx.query_row(
                "SELECT COALESCE(SUM(signatures), 0) FROM group_uses WHERE covering = ?1",
                params![held.request_id],
                |row| row.get(0),
            )?;
            if rules::group_covers(approval, &held, used.unsigned_abs(), g.signatures) {
                covering = Some(held.request_id);
                break;
            }
        }
        if let Some(c) = &covering {
            tx.execute(
                "INSERT INTO group_uses (covering, request_id, at, signatures) VALUES (?1, ?2, ?3, ?4)",
                params![c, g.request_id, now(), g.signatures],
            )?;
        }
        tx.commit()?;
        Ok(covering)
    }
}

fn get(conn: &Connection, request_id: &str) -> rusqlite::Result<Option<Held>> {
    let held = conn
        .query_row(
            &format!("{SELECT} WHERE request_id = ?1"),
            params![request_id],
            row_to_held,
        )
        .optional()?;
    held.map(|h| with_votes(conn, h)).transpose()
}

fn with_votes(conn: &Connection, mut held: Held) -> rusqlite::Result<Held> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver FROM votes WHERE request_id = ?1 AND decision = 'approve' ORDER BY at",
    )?;
    held.approved_by = stmt
        .query_map(params![held.request_id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(held)
}

fn row_to_held(row: &rusqlite::Row<'_>) -> rusqlite::Result<Held> {
    let approvers: String = row.get(7)?;
    Ok(Held {
        request_id: row.get(0)?,
        token_id: row.get(1)?,
        project: row.get(2)?,
        policy: row.get(3)?,
        request_json: row.get(4)?,
        status: Status::parse(&row.get::<_, String>(5)?),
        required: row.get(6)?,
        approvers: serde_json::from_str(&approvers).unwrap_or_default(),
        approved_by: Vec::new(),
        denied_by: row.get(8)?,
        reason: row.get(9)?,
        release_group: row.get(10)?,
        image: row.get(11)?,
        digest: row.get(12)?,
        created: row.get(13)?,
        response: row.get(14)?,
        binding: row.get(15)?,
        signatures: row.get(16)?,
    })
}

#[cfg(test)]
#[path = "approvals_tests.rs"]
mod tests;
