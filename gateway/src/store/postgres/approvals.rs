//! Held signing requests, votes and release-group uses in PostgreSQL, shared by every replica: an approval given
//! on one replica's web page releases a request polled on another.
//!
//! A vote locks its request (`SELECT … FOR UPDATE`) for its read-check-write; a release group's uses are counted
//! under a transaction-scoped advisory lock on (project, policy, group); a claim is one conditional `UPDATE`, so
//! one replica takes an approved request. A claim carries its time: a request left `Signing` longer than
//! [`CLAIM_LEASE`] belongs to a replica that died while signing, and the next poll may take it again. Signing
//! takes milliseconds, so the lease only ever expires for a dead claimer.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{unix_now, Database};
use crate::config::ReleaseGroupConfig;
use crate::store::{ApprovalStore, GroupUse, Held, NewHeld, Status, StoreError, VoteError};

#[derive(Debug)]
pub struct PgApprovals {
    db: Database,
}

/// Seconds after which a claim is taken for a dead replica's.
pub const CLAIM_LEASE: i64 = 30;

const SELECT: &str =
    "SELECT request_id, token_id, project, policy, request_json, status, required, approvers, \
    denied_by, reason, release_group, image, digest, created, response, binding FROM held";

impl PgApprovals {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Runs a statement that changes rows; the number it changed.
    fn execute(&self, sql: &'static str, binds: Vec<Bind>) -> Result<u64, StoreError> {
        self.db.run(|pool| async move {
            let mut query = sqlx::query(sql);
            for b in binds {
                query = match b {
                    Bind::Text(t) => query.bind(t),
                    Bind::Int(i) => query.bind(i),
                };
            }
            Ok(query.execute(&pool).await?.rows_affected())
        })
    }
}

/// A parameter of [`PgApprovals::execute`].
enum Bind {
    Text(String),
    Int(i64),
}

/// What a vote transaction found wrong, before it is turned into a [`VoteError`].
type Voted = Result<Held, VoteError>;

impl ApprovalStore for PgApprovals {
    fn hold(&self, n: &NewHeld<'_>) -> Result<(), StoreError> {
        let approvers = serde_json::to_string(n.approvers).unwrap_or_else(|_| "[]".into());
        let values: Vec<Option<String>> = vec![
            Some(n.request_id.to_owned()),
            Some(n.token_id.to_owned()),
            Some(n.project.to_owned()),
            Some(n.policy.to_owned()),
            Some(n.request_json.to_owned()),
            Some(approvers),
            n.release_group.map(str::to_owned),
            n.image.map(str::to_owned),
            Some(n.digest.to_owned()),
            n.binding.map(str::to_owned),
        ];
        let required = i32::try_from(n.required).unwrap_or(i32::MAX);
        self.db.run(move |pool| async move {
            let mut query = sqlx::query(
                "INSERT INTO held (request_id, token_id, project, policy, request_json, approvers, release_group, \
                 image, digest, binding, status, required, created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Pending', $11, $12)",
            );
            for v in values {
                query = query.bind(v);
            }
            query.bind(required).bind(unix_now()).execute(&pool).await?;
            Ok(())
        })
    }

    fn get(&self, request_id: &str) -> Result<Option<Held>, StoreError> {
        let id = request_id.to_owned();
        self.db.run(|pool| async move {
            let mut conn = pool.acquire().await?;
            get(&mut conn, &id, "").await
        })
    }

    fn list(&self, status: Option<Status>, limit: u32) -> Result<Vec<Held>, StoreError> {
        self.db.run(move |pool| async move {
            let mut conn = pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "{SELECT} WHERE ($1::text IS NULL OR status = $1) ORDER BY created DESC, seq DESC LIMIT $2"
            ))
            .bind(status.map(Status::as_str))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            let mut held = Vec::with_capacity(rows.len());
            for row in &rows {
                held.push(with_votes(&mut conn, to_held(row)?).await?);
            }
            Ok(held)
        })
    }

    fn count(&self, status: Status) -> Result<u64, StoreError> {
        let count: i64 = self.db.run(move |pool| async move {
            sqlx::query_scalar("SELECT count(*) FROM held WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(&pool)
                .await
        })?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
    ) -> Result<Held, VoteError> {
        let (id, approver, reason) = (
            request_id.to_owned(),
            approver.to_owned(),
            reason.map(str::to_owned),
        );
        let voted: Voted = self.db.run(move |pool| async move {
            let mut tx = pool.begin().await?;
            let Some(held) = get(&mut tx, &id, " FOR UPDATE").await? else {
                return Ok(Err(VoteError::NotFound(id)));
            };
            if !held.approvers.contains(&approver) {
                return Ok(Err(VoteError::NotAnApprover {
                    approver,
                    project: held.project,
                    policy: held.policy,
                }));
            }
            if held.status != Status::Pending {
                return Ok(Err(VoteError::Decided {
                    id: held.request_id,
                    status: held.status,
                }));
            }
            if held.approved_by.contains(&approver) {
                return Ok(Err(VoteError::AlreadyVoted {
                    approver,
                    id: held.request_id,
                }));
            }
            let now = unix_now();
            sqlx::query("INSERT INTO votes (request_id, approver, decision, reason, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(&approver)
                .bind(if approve { "approve" } else { "deny" })
                .bind(&reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if !approve {
                sqlx::query(
                    "UPDATE held SET status = 'Denied', denied_by = $2, reason = $3, decided = $4 WHERE request_id = $1",
                )
                .bind(&id)
                .bind(&approver)
                .bind(&reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            } else if held.approved_by.len() + 1 >= held.required as usize {
                sqlx::query("UPDATE held SET status = 'Approved', decided = $2 WHERE request_id = $1")
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let updated = get(&mut tx, &id, "").await?;
            tx.commit().await?;
            Ok(updated.ok_or(VoteError::NotFound(id)))
        })?;
        voted
    }

    fn claim(&self, request_id: &str) -> Result<bool, StoreError> {
        let now = unix_now();
        Ok(self.execute(
            "UPDATE held SET status = 'Signing', claimed = $2 WHERE request_id = $1 \
             AND (status = 'Approved' OR (status = 'Signing' AND claimed < $3))",
            vec![
                Bind::Text(request_id.to_owned()),
                Bind::Int(now),
                Bind::Int(now - CLAIM_LEASE),
            ],
        )? == 1)
    }

    fn recover(&self) -> Result<usize, StoreError> {
        // Only claims past their lease: another replica may be signing the younger ones right now.
        let recovered = self.execute(
            "UPDATE held SET status = 'Approved' WHERE status = 'Signing' AND claimed < $1",
            vec![Bind::Int(unix_now() - CLAIM_LEASE)],
        )?;
        Ok(usize::try_from(recovered).unwrap_or(usize::MAX))
    }

    fn unclaim(&self, request_id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE held SET status = 'Approved' WHERE request_id = $1 AND status = 'Signing'",
            vec![Bind::Text(request_id.to_owned())],
        )?;
        Ok(())
    }

    fn complete(&self, request_id: &str, response: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE held SET status = 'Completed', response = $2 WHERE request_id = $1",
            vec![Bind::Text(request_id.to_owned()), Bind::Text(response.to_owned())],
        )?;
        Ok(())
    }

    fn use_group(&self, g: &GroupUse<'_>, limits: &ReleaseGroupConfig) -> Result<Option<String>, StoreError> {
        let (project, policy, group, token_id, binding, request_id) = (
            g.project.to_owned(),
            g.policy.to_owned(),
            g.group.to_owned(),
            g.token_id.to_owned(),
            g.binding.map(str::to_owned),
            g.request_id.to_owned(),
        );
        let since = unix_now().saturating_sub(i64::try_from(limits.window_seconds).unwrap_or(i64::MAX));
        let max = i64::from(limits.max_signatures);
        self.db.run(move |pool| async move {
            let mut tx = pool.begin().await?;
            // Replicas counting the same group's uses take turns; each statement after the lock sees the others'.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("release-group\u{0}{project}\u{0}{policy}\u{0}{group}"))
                .execute(&mut *tx)
                .await?;
            let covering: Option<String> = sqlx::query_scalar(
                "SELECT request_id FROM held WHERE project = $1 AND policy = $2 AND release_group = $3 \
                 AND token_id = $6 AND binding IS NOT DISTINCT FROM $7 \
                 AND status IN ('Approved', 'Signing', 'Completed') AND decided >= $4 \
                 AND 1 + (SELECT COUNT(*) FROM group_uses WHERE covering = held.request_id) < $5 \
                 ORDER BY decided DESC LIMIT 1",
            )
            .bind(&project)
            .bind(&policy)
            .bind(&group)
            .bind(since)
            .bind(max)
            .bind(&token_id)
            .bind(&binding)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(c) = &covering {
                sqlx::query("INSERT INTO group_uses (covering, request_id, at) VALUES ($1, $2, $3)")
                    .bind(c)
                    .bind(&request_id)
                    .bind(unix_now())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(covering)
        })
    }
}

/// One held request with its approvals; `lock` is appended to the query (`" FOR UPDATE"` in a vote).
async fn get(conn: &mut PgConnection, request_id: &str, lock: &str) -> Result<Option<Held>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE request_id = $1{lock}"))
        .bind(request_id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(Some(with_votes(conn, to_held(&row)?).await?)),
        None => Ok(None),
    }
}

async fn with_votes(conn: &mut PgConnection, mut held: Held) -> Result<Held, sqlx::Error> {
    held.approved_by = sqlx::query_scalar(
        "SELECT approver FROM votes WHERE request_id = $1 AND decision = 'approve' ORDER BY at, approver",
    )
    .bind(&held.request_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(held)
}

fn to_held(row: &PgRow) -> Result<Held, sqlx::Error> {
    let approvers: String = row.try_get(7)?;
    let required: i32 = row.try_get(6)?;
    Ok(Held {
        request_id: row.try_get(0)?,
        token_id: row.try_get(1)?,
        project: row.try_get(2)?,
        policy: row.try_get(3)?,
        request_json: row.try_get(4)?,
        status: Status::parse(&row.try_get::<String, _>(5)?),
        required: u32::try_from(required).unwrap_or_default(),
        approvers: serde_json::from_str(&approvers).unwrap_or_default(),
        approved_by: Vec::new(),
        denied_by: row.try_get(8)?,
        reason: row.try_get(9)?,
        release_group: row.try_get(10)?,
        image: row.try_get(11)?,
        digest: row.try_get(12)?,
        created: row.try_get(13)?,
        response: row.try_get(14)?,
        binding: row.try_get(15)?,
    })
}
