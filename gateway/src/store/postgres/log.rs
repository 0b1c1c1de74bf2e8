//! The transparency log's tables in PostgreSQL, shared by replicas. A signature's leaf is inserted by `audit.rs`
//! in its record's transaction; the tree grows here in one transaction that moves `tlog_head` from the size the
//! growth was computed from (a row lock: a replica that lost the race finds zero rows moved and writes nothing).

use sqlx::Row;

use super::Database;
use crate::store::log::{Growth, LogLeaf, LogStore, PendingLeaf};
use crate::store::StoreError;

#[derive(Debug)]
pub struct PgLog {
    db: Database,
}

impl PgLog {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn to_leaf(row: &sqlx::postgres::PgRow) -> Result<LogLeaf, sqlx::Error> {
    let index: Option<i64> = row.try_get(0)?;
    Ok(LogLeaf {
        index: index.map(|i| i as u64),
        request_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        body: row.try_get(3)?,
    })
}

impl LogStore for PgLog {
    fn add(&self, request_id: &str, kind: &str, body: &[u8]) -> Result<(), StoreError> {
        let (request_id, kind, body) = (request_id.to_owned(), kind.to_owned(), body.to_vec());
        self.db.run(|pool| async move {
            sqlx::query("INSERT INTO tlog_leaves (request_id, kind, body) VALUES ($1, $2, $3)")
                .bind(request_id)
                .bind(kind)
                .bind(body)
                .execute(&pool)
                .await
                .map(drop)
        })
    }

    fn pending(&self, limit: usize) -> Result<Vec<PendingLeaf>, StoreError> {
        self.db.run(move |pool| async move {
            let rows = sqlx::query(
                "SELECT seq, body FROM tlog_leaves WHERE leaf_index IS NULL ORDER BY seq LIMIT $1",
            )
            .bind(limit as i64)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(PendingLeaf {
                        seq: row.try_get(0)?,
                        body: row.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    fn hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
        let rows: Vec<(i64, Vec<u8>)> = self.db.run({
            let wanted = wanted.clone();
            move |pool| async move {
                sqlx::query_as("SELECT hash_index, hash FROM tlog_hashes WHERE hash_index = ANY($1)")
                    .bind(wanted)
                    .fetch_all(&pool)
                    .await
            }
        })?;
        let found: std::collections::HashMap<i64, Vec<u8>> = rows.into_iter().collect();
        wanted
            .iter()
            .map(|i| {
                found
                    .get(i)
                    .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                    .ok_or_else(|| StoreError(format!("the log has no stored hash {i}")))
            })
            .collect()
    }

    fn grow(&self, growth: &Growth) -> Result<bool, StoreError> {
        let growth = growth.clone();
        self.db.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query("UPDATE tlog_head SET tree_size = $1 WHERE id = 1 AND tree_size = $2")
                .bind(growth.to as i64)
                .bind(growth.from as i64)
                .execute(&mut *tx)
                .await?;
            if moved.rows_affected() != 1 {
                return Ok(false);
            }
            let (seqs, indexes): (Vec<i64>, Vec<i64>) = growth
                .leaves
                .iter()
                .map(|(seq, index)| (*seq, *index as i64))
                .unzip();
            sqlx::query(
                "UPDATE tlog_leaves SET leaf_index = n.leaf_index FROM UNNEST($1::BIGINT[], $2::BIGINT[]) \
                 AS n(seq, leaf_index) WHERE tlog_leaves.seq = n.seq AND tlog_leaves.leaf_index IS NULL",
            )
            .bind(seqs)
            .bind(indexes)
            .execute(&mut *tx)
            .await?;
            let (hash_indexes, hashes): (Vec<i64>, Vec<Vec<u8>>) =
                growth.hashes.iter().map(|(i, h)| (*i as i64, h.to_vec())).unzip();
            sqlx::query(
                "INSERT INTO tlog_hashes (hash_index, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
            )
            .bind(hash_indexes)
            .bind(hashes)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tlog_checkpoints (tree_size, note) VALUES ($1, $2) \
                 ON CONFLICT (tree_size) DO UPDATE SET note = EXCLUDED.note",
            )
            .bind(growth.to as i64)
            .bind(&growth.checkpoint)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.db.run(|pool| async move {
            let row: Option<(i64, String)> = sqlx::query_as(
                "SELECT c.tree_size, c.note FROM tlog_checkpoints c JOIN tlog_head h ON c.tree_size = h.tree_size",
            )
            .fetch_optional(&pool)
            .await?;
            Ok(row.map(|(size, note)| (size as u64, note)))
        })
    }

    fn bodies(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db.run(move |pool| async move {
            sqlx::query_scalar(
                "SELECT body FROM tlog_leaves WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index",
            )
            .bind(from as i64)
            .bind(to as i64)
            .fetch_all(&pool)
            .await
        })
    }

    fn leaf(&self, request_id: &str) -> Result<Option<LogLeaf>, StoreError> {
        let request_id = request_id.to_owned();
        self.db.run(|pool| async move {
            let row = sqlx::query(
                "SELECT leaf_index, request_id, kind, body FROM tlog_leaves WHERE request_id = $1",
            )
            .bind(request_id)
            .fetch_optional(&pool)
            .await?;
            row.as_ref().map(to_leaf).transpose()
        })
    }

    fn leaves(&self) -> Result<Vec<LogLeaf>, StoreError> {
        self.db.run(|pool| async move {
            let rows = sqlx::query(
                "SELECT leaf_index, request_id, kind, body FROM tlog_leaves \
                 ORDER BY leaf_index IS NULL, leaf_index, seq",
            )
            .fetch_all(&pool)
            .await?;
            rows.iter().map(to_leaf).collect()
        })
    }
}
