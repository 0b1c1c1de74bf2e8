//! The audit log and idempotency records in PostgreSQL. A record and its idempotent answer commit in one
//! transaction (durable with PostgreSQL's default `synchronous_commit = on`), before the caller answers.
//!
//! One answer per idempotency key whichever replica signs: the key is the primary key, and a second answer under a
//! fresh key (another replica signed the same key at the same moment) fails the whole transaction, record and
//! all, so that second answer is never handed out; the client's retry finds the first answer. That second
//! signature is not made in the first place: a request takes its key's claim (`claims.rs`) before it signs, and
//! a request with a key claimed elsewhere waits for the answer.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{unix_now, Database};
use crate::store::log::KIND_SIGNATURE;
use crate::store::{AuditStore, IdempotentAnswer, Record, StoreError, StoredAnswer};

#[derive(Debug)]
pub struct PgAudit {
    db: Database,
}

const COLUMNS: &str = "request_id, received, completed, organization, project, policy, token_id, client_address, \
    user_agent, method, route, algorithm, hash_algorithm, digest, signature_sha256, certificate_sha256, metadata, \
    idempotency_key, outcome, status, error_type, error_detail, origin, release_group, approval";

/// How long an idempotent answer is kept for replays, as in the embedded store.
const IDEMPOTENCY_SECONDS: i64 = 86_400;

impl PgAudit {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl AuditStore for PgAudit {
    fn append(&self, record: &Record, answer: Option<IdempotentAnswer>) -> Result<(), StoreError> {
        let r = record.bounded();
        self.db.run(|pool| async move {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO audit ({COLUMNS}) VALUES \
                 ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)"
            ))
            .bind(&r.request_id)
            .bind(&r.received)
            .bind(&r.completed)
            .bind(&r.organization)
            .bind(&r.project)
            .bind(&r.policy)
            .bind(&r.token_id)
            .bind(&r.client_address)
            .bind(&r.user_agent)
            .bind(&r.method)
            .bind(&r.route)
            .bind(&r.algorithm)
            .bind(&r.hash_algorithm)
            .bind(&r.digest)
            .bind(&r.signature_sha256)
            .bind(&r.certificate_sha256)
            .bind(&r.metadata)
            .bind(&r.idempotency_key)
            .bind(&r.outcome)
            .bind(i32::from(r.status))
            .bind(&r.error_type)
            .bind(&r.error_detail)
            .bind(&r.origin)
            .bind(&r.release_group)
            .bind(&r.approval)
            .execute(&mut *tx)
            .await?;
            // A signature's leaf commits with its record or not at all.
            if let Some(entry) = r.log_entry() {
                sqlx::query("INSERT INTO tlog_leaves (request_id, kind, body) VALUES ($1, $2, $3)")
                    .bind(&r.request_id)
                    .bind(KIND_SIGNATURE)
                    .bind(entry)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(i) = answer {
                let now = unix_now();
                // An expired answer under the key is replaced; a fresh one from another request is not.
                let written = sqlx::query(
                    "INSERT INTO idempotency (token_id, key, request_id, body_sha256, response, created) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (token_id, key) DO UPDATE SET request_id = EXCLUDED.request_id, \
                         body_sha256 = EXCLUDED.body_sha256, response = EXCLUDED.response, created = EXCLUDED.created \
                     WHERE idempotency.created <= $7",
                )
                .bind(&i.token_id)
                .bind(&i.key)
                .bind(&r.request_id)
                .bind(&i.body_sha256)
                .bind(&i.response)
                .bind(now)
                .bind(now - IDEMPOTENCY_SECONDS)
                .execute(&mut *tx)
                .await?;
                if written.rows_affected() != 1 {
                    // Dropping the transaction rolls the record back with it.
                    return Ok(Err(StoreError(
                        "another gateway answered this idempotency key first; this answer is withheld".into(),
                    )));
                }
            }
            tx.commit().await?;
            Ok(Ok(()))
        })?
    }

    fn idempotent(&self, token_id: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
        let (token_id, key) = (token_id.to_owned(), key.to_owned());
        self.db.run(|pool| async move {
            let row = sqlx::query(
                "SELECT body_sha256, response FROM idempotency WHERE token_id = $1 AND key = $2 AND created > $3",
            )
            .bind(token_id)
            .bind(key)
            .bind(unix_now() - IDEMPOTENCY_SECONDS)
            .fetch_optional(&pool)
            .await?;
            row.map(|row| {
                Ok(StoredAnswer {
                    body_sha256: row.try_get(0)?,
                    response: row.try_get(1)?,
                })
            })
            .transpose()
        })
    }

    fn claim_key(
        &self,
        token_id: &str,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        super::claims::claim(&self.db, token_id, key, holder, lease)
    }

    fn release_key(&self, token_id: &str, key: &str, holder: &str) -> Result<(), StoreError> {
        super::claims::release(&self.db, token_id, key, holder)
    }

    fn signing_request(&self, token_id: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        let (token_id, request_id) = (token_id.to_owned(), request_id.to_owned());
        self.db.run(|pool| async move {
            sqlx::query_scalar("SELECT response FROM idempotency WHERE request_id = $1 AND token_id = $2")
                .bind(request_id)
                .bind(token_id)
                .fetch_optional(&pool)
                .await
        })
    }

    fn records(&self, limit: Option<u32>) -> Result<Vec<Record>, StoreError> {
        self.db.run(move |pool| async move {
            let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1"))
                .bind(limit.map(i64::from))
                .fetch_all(&pool)
                .await?;
            let mut records = rows.iter().map(to_record).collect::<Result<Vec<_>, _>>()?;
            records.reverse();
            Ok(records)
        })
    }
}

fn to_record(row: &PgRow) -> Result<Record, sqlx::Error> {
    let status: i32 = row.try_get(19)?;
    Ok(Record {
        request_id: row.try_get(0)?,
        received: row.try_get(1)?,
        completed: row.try_get(2)?,
        organization: row.try_get(3)?,
        project: row.try_get(4)?,
        policy: row.try_get(5)?,
        token_id: row.try_get(6)?,
        client_address: row.try_get(7)?,
        user_agent: row.try_get(8)?,
        method: row.try_get(9)?,
        route: row.try_get(10)?,
        algorithm: row.try_get(11)?,
        hash_algorithm: row.try_get(12)?,
        digest: row.try_get(13)?,
        signature_sha256: row.try_get(14)?,
        certificate_sha256: row.try_get(15)?,
        metadata: row.try_get(16)?,
        idempotency_key: row.try_get(17)?,
        outcome: row.try_get(18)?,
        status: u16::try_from(status).unwrap_or_default(),
        error_type: row.try_get(20)?,
        error_detail: row.try_get(21)?,
        origin: row.try_get(22)?,
        release_group: row.try_get(23)?,
        approval: row.try_get(24)?,
    })
}
