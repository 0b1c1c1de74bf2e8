//! The artifacts of file-based signing requests in PostgreSQL, where every replica finds them (`store/artifacts/
//! shared.rs` says why here): each request's record as JSON, and its files as 1 MiB `bytea` pieces.
//!
//! Pieces of `bytea` rather than PostgreSQL's large objects: rows go with the request (a `DELETE` removes them,
//! where a large object outlives its reference until someone runs `lo_unlink` or `vacuumlo`), need no privileges
//! beyond the tables' own (a large object belongs to the role that made it), and are dumped and restored with
//! the tables. A piece is far below `bytea`'s 1 GB limit, and a file of any size passes through a replica one
//! piece at a time.

use std::path::Path;

use sqlx::Row as _;
use tokio::io::AsyncReadExt as _;

use super::{unix_now, Database};
use crate::store::artifacts::{ArtifactFile, ArtifactRequest, SharedArtifacts, CHUNK_SIZE};
use crate::store::StoreError;

#[derive(Debug)]
pub struct PgArtifacts {
    db: Database,
}

impl PgArtifacts {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl SharedArtifacts for PgArtifacts {
    fn get(&self, request_id: &str) -> Result<Option<ArtifactRequest>, StoreError> {
        let request_id = request_id.to_owned();
        let row = self.db.run(|pool| async move {
            sqlx::query("SELECT request, submitted, deleted FROM artifact_requests WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(&pool)
                .await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let json: String = row.get(0);
        let mut request: ArtifactRequest =
            serde_json::from_str(&json).map_err(|e| StoreError(format!("artifact_requests: {e}")))?;
        // The columns the sweep reads and writes are the truth.
        request.submitted = u64::try_from(row.get::<i64, _>(1)).unwrap_or_default();
        request.deleted = row.get(2);
        Ok(Some(request))
    }

    fn put(&self, request: &ArtifactRequest) -> Result<(), StoreError> {
        let json = serde_json::to_string(request).map_err(|e| StoreError(e.to_string()))?;
        let request_id = request.request_id.clone();
        let submitted = i64::try_from(request.submitted).unwrap_or(i64::MAX);
        self.db.run(|pool| async move {
            sqlx::query(
                "INSERT INTO artifact_requests (request_id, submitted, request) VALUES ($1, $2, $3) \
                 ON CONFLICT (request_id) DO UPDATE SET request = excluded.request",
            )
            .bind(request_id)
            .bind(submitted)
            .bind(json)
            .execute(&pool)
            .await?;
            Ok(())
        })
    }

    fn write(&self, request_id: &str, file: ArtifactFile, from: &Path) -> Result<(), StoreError> {
        let (request_id, from) = (request_id.to_owned(), from.to_owned());
        self.db.run(|pool| async move {
            let mut source = tokio::fs::File::open(&from).await?;
            let mut tx = pool.begin().await?;
            delete_file(&mut tx, &request_id, file).await?;
            let mut buffer = vec![0; CHUNK_SIZE];
            let (mut length, mut pieces) = (0i64, 0i32);
            loop {
                let filled = fill(&mut source, &mut buffer).await?;
                if filled == 0 {
                    break;
                }
                sqlx::query("INSERT INTO artifact_chunks (request_id, file, piece, data) VALUES ($1, $2, $3, $4)")
                    .bind(&request_id)
                    .bind(file.name())
                    .bind(pieces)
                    .bind(&buffer[..filled])
                    .execute(&mut *tx)
                    .await?;
                length += i64::try_from(filled).unwrap_or(i64::MAX);
                pieces += 1;
            }
            sqlx::query(
                "INSERT INTO artifact_files (request_id, file, length, chunks, stored) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&request_id)
            .bind(file.name())
            .bind(length)
            .bind(pieces)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    fn length(&self, request_id: &str, file: ArtifactFile) -> Result<Option<(u64, u32)>, StoreError> {
        let request_id = request_id.to_owned();
        let row: Option<(i64, i32)> = self.db.run(|pool| async move {
            sqlx::query_as("SELECT length, chunks FROM artifact_files WHERE request_id = $1 AND file = $2")
                .bind(request_id)
                .bind(file.name())
                .fetch_optional(&pool)
                .await
        })?;
        Ok(row.map(|(length, chunks)| {
            (
                u64::try_from(length).unwrap_or_default(),
                u32::try_from(chunks).unwrap_or_default(),
            )
        }))
    }

    fn chunk(&self, request_id: &str, file: ArtifactFile, index: u32) -> Result<Vec<u8>, StoreError> {
        let request_id = request_id.to_owned();
        let piece = i32::try_from(index).unwrap_or(i32::MAX);
        let data: Option<Vec<u8>> = self.db.run(|pool| async move {
            sqlx::query_scalar(
                "SELECT data FROM artifact_chunks WHERE request_id = $1 AND file = $2 AND piece = $3",
            )
            .bind(&request_id)
            .bind(file.name())
            .bind(piece)
            .fetch_optional(&pool)
            .await
        })?;
        data.ok_or_else(|| {
            StoreError(format!(
                "piece {index} of the {} artifact is gone (the retention sweep?)",
                file.name()
            ))
        })
    }

    fn delete(&self, request_id: &str) -> Result<(), StoreError> {
        let request_id = request_id.to_owned();
        self.db.run(|pool| async move {
            let mut tx = pool.begin().await?;
            for file in [ArtifactFile::Unsigned, ArtifactFile::Signed] {
                delete_file(&mut tx, &request_id, file).await?;
            }
            sqlx::query("DELETE FROM artifact_requests WHERE request_id = $1")
                .bind(&request_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    fn sweep(&self, before: u64) -> Result<usize, StoreError> {
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        self.db.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let swept: Vec<String> = sqlx::query_scalar(
                "UPDATE artifact_requests SET deleted = true WHERE NOT deleted AND submitted < $1 RETURNING request_id",
            )
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
            // And files whose request never got its record (a replica that died between the two).
            let orphans: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT f.request_id FROM artifact_files f WHERE f.stored < $1 \
                 AND NOT EXISTS (SELECT 1 FROM artifact_requests r WHERE r.request_id = f.request_id)",
            )
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
            for request_id in swept.iter().chain(&orphans) {
                for file in [ArtifactFile::Unsigned, ArtifactFile::Signed] {
                    delete_file(&mut tx, request_id, file).await?;
                }
            }
            tx.commit().await?;
            Ok(swept.len() + orphans.len())
        })
    }
}

/// Deletes `file` of `request_id`, its pieces and its row.
async fn delete_file(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    request_id: &str,
    file: ArtifactFile,
) -> Result<(), sqlx::Error> {
    for table in ["artifact_chunks", "artifact_files"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE request_id = $1 AND file = $2"
        ))
        .bind(request_id)
        .bind(file.name())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Reads from `source` until `buffer` is full or the file ends; returns how much it holds.
async fn fill(source: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = source.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
