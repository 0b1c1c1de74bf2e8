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
use crate::config::ApprovalConfig;
use crate::store::rules::VoteEffect;
use crate::store::{
    rules, ApprovalStore, GroupUse, Held, HeldCount, HeldQuery, NewHeld, Stage, Status, StoreError, VoteError,
};

#[derive(Debug)]
pub struct PgApprovals {
    db: Database,
}

/// Seconds after which a claim is taken for a dead replica's.
pub const CLAIM_LEASE: i64 = 30;

const SELECT: &str =
    "SELECT request_id, token_id, project, policy, request_json, status, required, approvers, \
    denied_by, reason, release_group, image, digest, created, response, binding, signatures FROM held";

/// The condition of [`HeldQuery::policies`]: `$1` and `$2` are the projects and the policies, pairwise, or NULL
/// for all.
const OF_POLICIES: &str =
    "($1::text[] IS NULL OR (project, policy) IN (SELECT * FROM unnest($1::text[], $2::text[])))";

/// `policies` as the two arrays [`OF_POLICIES`] reads.
fn policy_arrays(policies: Option<&[(String, String)]>) -> (Option<Vec<String>>, Option<Vec<String>>) {
    match policies {
        Some(p) => (
            Some(p.iter().map(|(project, _)| project.clone()).collect()),
            Some(p.iter().map(|(_, policy)| policy.clone()).collect()),
        ),
        None => (None, None),
    }
}

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
        let signatures = i64::from(n.signatures);
        self.db.run(move |pool| async move {
            let mut query = sqlx::query(
                "INSERT INTO held (request_id, token_id, project, policy, request_json, approvers, release_group, \
                 image, digest, binding, status, required, created, signatures) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Pending', $11, $12, $13)",
            );
            for v in values {
                query = query.bind(v);
            }
            query
                .bind(required)
                .bind(unix_now())
                .bind(signatures)
                .execute(&pool)
                .await?;
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

    fn list(&self, q: &HeldQuery<'_>) -> Result<Vec<Held>, StoreError> {
        let (projects, policies) = policy_arrays(q.policies);
        let waiting = q.stage.map(|s| s == Stage::Waiting);
        let (limit, offset) = (i64::from(q.limit), i64::try_from(q.offset).unwrap_or(i64::MAX));
        self.db.run(move |pool| async move {
            let mut conn = pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "{SELECT} WHERE {OF_POLICIES} AND ($3::bool IS NULL OR (status = 'Pending') = $3) \
                 ORDER BY created DESC, seq DESC LIMIT $4 OFFSET $5"
            ))
            .bind(projects)
            .bind(policies)
            .bind(waiting)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?;
            let mut held = Vec::with_capacity(rows.len());
            for row in &rows {
                held.push(with_votes(&mut conn, to_held(row)?).await?);
            }
            Ok(held)
        })
    }

    fn count(&self, policies: Option<&[(String, String)]>) -> Result<Vec<HeldCount>, StoreError> {
        let (projects, policies) = policy_arrays(policies);
        self.db.run(move |pool| async move {
            let rows = sqlx::query(&format!(
                "SELECT project, policy, COUNT(*) FILTER (WHERE status = 'Pending'), \
                 COUNT(*) FILTER (WHERE status <> 'Pending') FROM held WHERE {OF_POLICIES} \
                 GROUP BY project, policy ORDER BY project, policy"
            ))
            .bind(projects)
            .bind(policies)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(HeldCount {
                        project: row.try_get(0)?,
                        policy: row.try_get(1)?,
                        waiting: row.try_get::<i64, _>(2)?.unsigned_abs(),
                        decided: row.try_get::<i64, _>(3)?.unsigned_abs(),
                    })
                })
                .collect()
        })
    }

    fn vote(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
        approval: &ApprovalConfig,
    ) -> Result<Held, VoteError> {
        let (id, approver, reason, approval) = (
            request_id.to_owned(),
            approver.to_owned(),
            reason.map(str::to_owned),
            approval.clone(),
        );
        let voted: Voted = self.db.run(move |pool| async move {
            let mut tx = pool.begin().await?;
            let Some(held) = get(&mut tx, &id, " FOR UPDATE").await? else {
                return Ok(Err(VoteError::NotFound(id)));
            };
            let effect = match rules::vote_effect(&held, &approver, approve, &approval) {
                Ok(effect) => effect,
                Err(refused) => return Ok(Err(refused)),
            };
            let now = unix_now();
            sqlx::query("INSERT INTO votes (request_id, approver, decision, reason, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(&approver)
                .bind(if approve { "approve" } else { "deny" })
                .bind(&reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            match effect {
                VoteEffect::Denies => {
                    sqlx::query(
                        "UPDATE held SET status = 'Denied', denied_by = $2, reason = $3, decided = $4 WHERE request_id = $1",
                    )
                    .bind(&id)
                    .bind(&approver)
                    .bind(&reason)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                VoteEffect::Approves => {
                    sqlx::query("UPDATE held SET status = 'Approved', decided = $2 WHERE request_id = $1")
                        .bind(&id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                VoteEffect::Counts => {}
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

    fn reopen(&self, request_id: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "UPDATE held SET status = 'Pending', decided = NULL WHERE request_id = $1 AND status = 'Approved'",
            vec![Bind::Text(request_id.to_owned())],
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

    fn use_group(&self, g: &GroupUse<'_>, approval: &ApprovalConfig) -> Result<Option<String>, StoreError> {
        let Some(limits) = &approval.release_group else {
            return Ok(None);
        };
        let (project, policy, group, token_id, binding, request_id) = (
            g.project.to_owned(),
            g.policy.to_owned(),
            g.group.to_owned(),
            g.token_id.to_owned(),
            g.binding.map(str::to_owned),
            g.request_id.to_owned(),
        );
        let since = rules::window_start(limits, unix_now());
        let (approval, wanted) = (approval.clone(), g.signatures);
        self.db.run(move |pool| async move {
            let mut tx = pool.begin().await?;
            // Replicas counting the same group's uses take turns; each statement after the lock sees the others'.
            // The key names the group as JSON: unambiguous, and free of the NUL bytes PostgreSQL text refuses.
            let key = serde_json::json!(["release-group", project, policy, group]).to_string();
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(&format!(
                "{SELECT} WHERE project = $1 AND policy = $2 AND release_group = $3 AND token_id = $4 \
                 AND binding IS NOT DISTINCT FROM $5 AND status IN ('Approved', 'Signing', 'Completed') \
                 AND decided >= $6 ORDER BY decided DESC, seq DESC"
            ))
            .bind(&project)
            .bind(&policy)
            .bind(&group)
            .bind(&token_id)
            .bind(&binding)
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
            let mut covering = None;
            for row in &rows {
                let held = with_votes(&mut tx, to_held(row)?).await?;
                let used: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(SUM(signatures), 0)::BIGINT FROM group_uses WHERE covering = $1",
                )
                .bind(&held.request_id)
                .fetch_one(&mut *tx)
                .await?;
                if rules::group_covers(&approval, &held, used.unsigned_abs(), wanted) {
                    covering = Some(held.request_id);
                    break;
                }
            }
            if let Some(c) = &covering {
                sqlx::query(
                    "INSERT INTO group_uses (covering, request_id, at, signatures) VALUES ($1, $2, $3, $4)",
                )
                .bind(c)
                .bind(&request_id)
                .bind(unix_now())
                .bind(i64::from(wanted))
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
        signatures: u32::try_from(row.try_get::<i64, _>(16)?).unwrap_or(u32::MAX),
    })
}
