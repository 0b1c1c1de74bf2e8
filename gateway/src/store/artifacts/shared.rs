//! Where the artifacts of file-based signing requests are kept, decided once: with replicas (`audit_db` a
//! PostgreSQL URL) in the shared database, which every replica reaches, so a request submitted to one replica is
//! polled, signed after its approval and downloaded on any other; with one gateway on SQLite in its artifact
//! directory, as before. Either way a gateway's own directory is where an upload is spooled as it streams in and
//! where a layout is unpacked to be checked and signed: local working space, emptied (with replicas) as soon as the
//! files are in the database.
//!
//! Why the database rather than an object store or a shared directory: the replicas already share it, so nothing
//! new has to be run, secured, backed up or checked by `doctor`; a request's record and its files live in one
//! place and commit in order (a replica that sees a request `Completed` finds its signed artifact); and the
//! retention sweep is a `DELETE` any replica may run. A shared directory would make the operator provide (and
//! `doctor` check) storage with atomic renames on every host, and an S3-compatible store a second service, its
//! credentials and a client. The cost is the database's size and WAL volume: an artifact is in it for
//! `retention_hours`, written once and read at most a few times.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _};

use super::{unix_now, ArtifactRequest, ArtifactStore};
use crate::store::StoreError;

/// One of the two files of a file-based signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactFile {
    /// The artifact as it was uploaded.
    Unsigned,
    /// The artifact with its signatures, once the request is completed.
    Signed,
}

impl ArtifactFile {
    /// Its name, in the artifact directory and in the database.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsigned => super::UNSIGNED_FILE,
            Self::Signed => super::SIGNED_FILE,
        }
    }
}

/// Bytes of an artifact read or written at a time: a file of any size passes through in pieces of this size, both
/// into the database and out of it to a client.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The artifacts of file-based requests in a store every replica reaches (PostgreSQL, `store/postgres/artifacts.rs`).
pub trait SharedArtifacts: Send + Sync {
    /// The record of request `request_id`, if there is one.
    fn get(&self, request_id: &str) -> Result<Option<ArtifactRequest>, StoreError>;

    /// Writes the record of a request (the first time, or again as its state changes).
    fn put(&self, request: &ArtifactRequest) -> Result<(), StoreError>;

    /// Stores `file` of request `request_id` from the local file `from`, read in [`CHUNK_SIZE`] pieces, whole or
    /// not at all (a file stored before under the name is replaced).
    fn write(&self, request_id: &str, file: ArtifactFile, from: &std::path::Path) -> Result<(), StoreError>;

    /// The length in bytes and the number of pieces of `file` of request `request_id`, if it is stored.
    fn length(&self, request_id: &str, file: ArtifactFile) -> Result<Option<(u64, u32)>, StoreError>;

    /// Piece `index` (from 0) of `file` of request `request_id`.
    fn chunk(&self, request_id: &str, file: ArtifactFile, index: u32) -> Result<Vec<u8>, StoreError>;

    /// Deletes a request's record and files (a submission that was refused).
    fn delete(&self, request_id: &str) -> Result<(), StoreError>;

    /// Deletes the files of requests submitted before `before` (Unix seconds) and marks their records deleted;
    /// also the files of requests that never got a record. Returns how many requests lost their files.
    fn sweep(&self, before: u64) -> Result<usize, StoreError>;
}

/// The artifacts of a gateway's file-based requests: its own directory, and the shared store where it has one.
/// Every decision between the two is made here.
#[derive(Clone, Copy)]
pub struct Artifacts<'a> {
    local: &'a ArtifactStore,
    shared: Option<&'a Arc<dyn SharedArtifacts>>,
}

impl<'a> Artifacts<'a> {
    pub fn new(local: &'a ArtifactStore, shared: Option<&'a Arc<dyn SharedArtifacts>>) -> Self {
        Self { local, shared }
    }

    /// This gateway's artifact directory: where uploads are spooled and layouts unpacked.
    pub fn here(&self) -> &'a ArtifactStore {
        self.local
    }

    /// The record of `request_id`, if there is one (`request_id` must be a UUID).
    pub fn get(&self, request_id: &str) -> Result<Option<ArtifactRequest>, StoreError> {
        if uuid::Uuid::parse_str(request_id).is_err() {
            return Ok(None);
        }
        match self.shared {
            Some(shared) => shared.get(request_id),
            None => self.local.get(request_id),
        }
    }

    /// Writes the record of a request.
    pub fn put(&self, request: &ArtifactRequest) -> Result<(), StoreError> {
        match self.shared {
            Some(shared) => shared.put(request),
            None => self.local.put(request),
        }
    }

    /// Keeps `file` of `request_id`, written at its path in this gateway's directory, where every gateway that
    /// serves the request finds it. Called before the record that names the file is written.
    pub fn keep(&self, request_id: &str, file: ArtifactFile) -> Result<(), StoreError> {
        match self.shared {
            Some(shared) => shared.write(request_id, file, &self.local.path(request_id, file)),
            None => Ok(()),
        }
    }

    /// The upload of `request_id` in this gateway's directory, fetched from the shared store if it is not here
    /// (the request was submitted to another replica).
    pub fn fetch_unsigned(&self, request_id: &str) -> Result<PathBuf, StoreError> {
        let path = self.local.unsigned(request_id);
        let Some(shared) = self.shared else {
            return Ok(path);
        };
        let (_, chunks) = shared
            .length(request_id, ArtifactFile::Unsigned)?
            .ok_or_else(|| {
                StoreError(format!(
                    "the artifact of signing request {request_id} is not stored"
                ))
            })?;
        self.local.working_directory(request_id)?;
        let write = |e: std::io::Error| StoreError(format!("{}: {e}", path.display()));
        let mut out = std::fs::File::create(&path).map_err(write)?;
        for index in 0..chunks {
            let chunk = shared.chunk(request_id, ArtifactFile::Unsigned, index)?;
            std::io::Write::write_all(&mut out, &chunk).map_err(write)?;
        }
        out.sync_all().map_err(write)?;
        Ok(path)
    }

    /// `file` of `request_id` to send to a client, read as it is sent.
    pub fn open(&self, request_id: &str, file: ArtifactFile) -> Result<ArtifactReader, StoreError> {
        match self.shared {
            Some(shared) => {
                let (length, chunks) = shared.length(request_id, file)?.ok_or_else(|| {
                    StoreError(format!(
                        "the {} artifact of signing request {request_id} is not stored",
                        file.name()
                    ))
                })?;
                Ok(ArtifactReader {
                    length,
                    source: Source::Shared {
                        store: Arc::clone(shared),
                        request_id: request_id.to_owned(),
                        file,
                        chunks,
                    },
                })
            }
            None => {
                let path = self.local.path(request_id, file);
                let opened =
                    std::fs::File::open(&path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
                let length = opened.metadata().map(|m| m.len()).unwrap_or_default();
                Ok(ArtifactReader {
                    length,
                    source: Source::File(opened),
                })
            }
        }
    }

    /// This gateway is done with the working files of `request_id` for now: with a shared store they are all
    /// there, so its directory here goes; alone, the directory is the store and stays.
    pub fn release(&self, request_id: &str) {
        if self.shared.is_some() {
            self.local.discard(request_id);
        }
    }

    /// Removes a refused submission: its directory here, and whatever of it reached the shared store.
    pub fn discard(&self, request_id: &str) {
        self.local.discard(request_id);
        if let Some(shared) = self.shared {
            if let Err(e) = shared.delete(request_id) {
                tracing::warn!(error = %e, request_id, "a refused submission's artifact stays until the retention sweep");
            }
        }
    }

    /// The retention sweep: this gateway's directory, and the shared store. Returns how many requests lost their
    /// artifacts (and how many abandoned uploads went).
    pub fn sweep(&self) -> usize {
        let mut swept = self.local.sweep();
        if let Some(shared) = self.shared {
            let before = unix_now().saturating_sub(self.local.retention().as_secs());
            match shared.sweep(before) {
                Ok(n) => swept += n,
                Err(e) => tracing::warn!(error = %e, "the retention sweep of the shared artifacts failed"),
            }
        }
        swept
    }
}

/// An artifact on its way to a client.
pub struct ArtifactReader {
    /// Its length in bytes (the response's `Content-Length`).
    pub length: u64,
    source: Source,
}

enum Source {
    File(std::fs::File),
    Shared {
        store: Arc<dyn SharedArtifacts>,
        request_id: String,
        file: ArtifactFile,
        chunks: u32,
    },
}

impl ArtifactReader {
    /// The artifact as a stream of bytes, read as the client takes them: from the file a few KiB at a time, or
    /// from the shared store one [`CHUNK_SIZE`] piece at a time (each query on the blocking pool, like a file's
    /// reads), so neither is ever held whole in memory.
    pub fn into_stream(self) -> BoxStream<'static, std::io::Result<Bytes>> {
        match self.source {
            Source::File(file) => tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).boxed(),
            Source::Shared {
                store,
                request_id,
                file,
                chunks,
            } => futures_util::stream::try_unfold(0, move |index| {
                let (store, request_id) = (store.clone(), request_id.clone());
                async move {
                    if index >= chunks {
                        return Ok(None);
                    }
                    let chunk = tokio::task::spawn_blocking(move || store.chunk(&request_id, file, index))
                        .await
                        .map_err(std::io::Error::other)?
                        .map_err(std::io::Error::other)?;
                    Ok(Some((Bytes::from(chunk), index + 1)))
                }
            })
            .boxed(),
        }
    }
}
