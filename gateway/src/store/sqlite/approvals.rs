//! Held signing requests, votes and release-group uses in SQLite, in the same database file as the audit log, so
//! that a waiting request survives a restart of the gateway and `signpath-gateway approve` (another process) acts
//! on the same state. Every change is one `BEGIN IMMEDIATE` transaction, so the gateway and the command line never
//! interleave a read and a write of the same request.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::connect;
use crate::config::ReleaseGroupConfig;
use crate::store::{ApprovalStore, GroupUse, Held, NewHeld, Status, StoreError, VoteError};

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
    denied_by, reason, release_group, image, digest, created, response, binding FROM held";

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
        // Added after the first release: the CI identity a release group's approval is bound to.
        let has_binding: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('held') WHERE name = 'binding'",
            [],
            |row| row.get(0),
        )?;
        if !has_binding {
            conn.execute_batch("ALTER TABLE held ADD COLUMN binding TEXT")?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
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
             release_group, image, digest, created, binding) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'Pending', ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
                n.binding
            ],
        )?;
        Ok(())
    }

    fn get(&self, request_id: &str) -> Result<Option<Held>, StoreError> {
        let conn = self.conn();
        Ok(get(&conn, request_id)?)
    }

    fn list(&self, status: Option<Status>, limit: u32) -> Result<Vec<Held>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{SELECT} WHERE (?1 IS NULL OR status = ?1) ORDER BY created DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![status.map(Status::as_str), limit], row_to_held)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        Ok(rows
            .into_iter()
            .map(|h| with_votes(&conn, h))
            .collect::<rusqlite::Result<_>>()?)
    }

    fn count(&self, status: Status) -> Result<u64, StoreError> {
        let count: i64 = self.conn().query_row(
            "SELECT count(*) FROM held WHERE status = ?1",
            params![status.as_str()],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
    ) -> Result<Held, VoteError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held = get(&tx, request_id)?.ok_or_else(|| VoteError::NotFound(request_id.to_owned()))?;
        if !held.approvers.iter().any(|a| a == approver) {
            return Err(VoteError::NotAnApprover {
                approver: approver.to_owned(),
                project: held.project,
                policy: held.policy,
            });
        }
        if held.status != Status::Pending {
            return Err(VoteError::Decided {
                id: held.request_id,
                status: held.status,
            });
        }
        if held.approved_by.iter().any(|a| a == approver) {
            return Err(VoteError::AlreadyVoted {
                approver: approver.to_owned(),
                id: held.request_id,
            });
        }
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
        if !approve {
            tx.execute(
                "UPDATE held SET status = 'Denied', denied_by = ?2, reason = ?3, decided = ?4 WHERE request_id = ?1",
                params![request_id, approver, reason, now()],
            )?;
        } else if held.approved_by.len() + 1 >= held.required as usize {
            tx.execute(
                "UPDATE held SET status = 'Approved', decided = ?2 WHERE request_id = ?1",
                params![request_id, now()],
            )?;
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

    fn use_group(&self, g: &GroupUse<'_>, limits: &ReleaseGroupConfig) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let since = now() - i64::try_from(limits.window_seconds).unwrap_or(i64::MAX);
        let covering: Option<String> = tx
            .query_row(
                "SELECT request_id FROM held WHERE project = ?1 AND policy = ?2 AND release_group = ?3 \
                 AND token_id = ?6 AND binding IS ?7 \
                 AND status IN ('Approved', 'Signing', 'Completed') AND decided >= ?4 \
                 AND 1 + (SELECT COUNT(*) FROM group_uses WHERE covering = held.request_id) < ?5 \
                 ORDER BY decided DESC LIMIT 1",
                params![
                    g.project,
                    g.policy,
                    g.group,
                    since,
                    limits.max_signatures,
                    g.token_id,
                    g.binding
                ],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(c) = &covering {
            tx.execute(
                "INSERT INTO group_uses (covering, request_id, at) VALUES (?1, ?2, ?3)",
                params![c, g.request_id, now()],
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
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn held(a: &SqliteApprovals, id: &str, group: Option<&str>, required: u32) {
        let approvers = ["alice".to_owned(), "bob".to_owned()];
        a.hold(&NewHeld {
            request_id: id,
            token_id: "tok",
            project: "demo",
            policy: "ec-256",
            request_json: "{}",
            required,
            approvers: &approvers,
            release_group: group,
            binding: None,
            image: None,
            digest: "00",
        })
        .unwrap();
    }

    #[test]
    fn count_is_the_number_in_a_status() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteApprovals::open(&dir.path().join("db")).unwrap();
        for id in ["r1", "r2", "r3"] {
            held(&a, id, None, 1);
        }
        a.vote("r3", "alice", false, None).unwrap();
        assert_eq!(a.count(Status::Pending).unwrap(), 2);
        assert_eq!(a.count(Status::Denied).unwrap(), 1);
        assert_eq!(a.count(Status::Approved).unwrap(), 0);
    }

    #[test]
    fn k_of_n_approves_one_denial_aborts_and_strangers_cannot_vote() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteApprovals::open(&dir.path().join("db")).unwrap();
        held(&a, "r1", None, 2);
        assert!(matches!(
            a.vote("r1", "mallory", true, None),
            Err(VoteError::NotAnApprover { .. })
        ));
        assert_eq!(a.vote("r1", "alice", true, None).unwrap().status, Status::Pending);
        assert!(matches!(
            a.vote("r1", "alice", true, None),
            Err(VoteError::AlreadyVoted { .. })
        ));
        assert!(!a.claim("r1").unwrap(), "not approved yet");
        assert_eq!(a.vote("r1", "bob", true, None).unwrap().status, Status::Approved);
        assert!(a.claim("r1").unwrap());
        assert!(!a.claim("r1").unwrap(), "claimed once only");
        // The gateway died while signing: after a restart the request can be claimed again, once.
        let restarted = SqliteApprovals::open(&dir.path().join("db")).unwrap();
        assert_eq!(restarted.recover().unwrap(), 1);
        assert!(restarted.claim("r1").unwrap());
        restarted.complete("r1", "{}").unwrap();
        assert_eq!(
            restarted.recover().unwrap(),
            0,
            "a completed request stays completed"
        );

        held(&a, "r2", None, 2);
        a.vote("r2", "alice", true, None).unwrap();
        let denied = a.vote("r2", "bob", false, Some("not this one")).unwrap();
        assert_eq!(denied.status, Status::Denied);
        assert_eq!(denied.reason.as_deref(), Some("not this one"));
        assert!(matches!(
            a.vote("r2", "alice", true, None),
            Err(VoteError::Decided { .. })
        ));
    }

    fn group_use<'a>(group: &'a str, token: &'a str, binding: Option<&'a str>, id: &'a str) -> GroupUse<'a> {
        GroupUse {
            project: "demo",
            policy: "ec-256",
            group,
            token_id: token,
            binding,
            request_id: id,
        }
    }

    #[test]
    fn an_approved_release_group_covers_up_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteApprovals::open(&dir.path().join("db")).unwrap();
        let limits = ReleaseGroupConfig {
            max_signatures: 3,
            window_seconds: 3600,
        };
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x0"), &limits)
                .unwrap(),
            None
        );
        held(&a, "g1", Some("rel-1"), 1);
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x1"), &limits)
                .unwrap(),
            None,
            "not approved"
        );
        a.vote("g1", "alice", true, None).unwrap();
        assert_eq!(
            a.use_group(&group_use("rel-2", "tok", None, "x2"), &limits)
                .unwrap(),
            None,
            "another group"
        );
        assert_eq!(
            a.use_group(&group_use("rel-1", "another-token", None, "y1"), &limits)
                .unwrap(),
            None,
            "another token's request is not covered by this token's approval"
        );
        assert_eq!(
            a.use_group(
                &group_use("rel-1", "tok", Some("{\"repository\":\"evil/app\"}"), "y2"),
                &limits
            )
            .unwrap(),
            None,
            "another CI identity is not covered"
        );
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x3"), &limits)
                .unwrap()
                .as_deref(),
            Some("g1")
        );
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x4"), &limits)
                .unwrap()
                .as_deref(),
            Some("g1")
        );
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x5"), &limits)
                .unwrap(),
            None,
            "3 signatures used"
        );
        let expired = ReleaseGroupConfig {
            max_signatures: 10,
            window_seconds: 0,
        };
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            a.use_group(&group_use("rel-1", "tok", None, "x6"), &expired)
                .unwrap(),
            None,
            "window over"
        );
    }
}
