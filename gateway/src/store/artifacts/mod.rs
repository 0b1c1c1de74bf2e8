//! Artifacts of file-based signing requests. A gateway's artifact directory has one directory per request holding
//! the upload (`unsigned`), its unpacked OCI layout from the check at submission to the signing (`layout/`), the
//! result (`signed`) and, for one gateway on SQLite, what the request was (`request.json`). Uploads are written
//! here as they stream in, never held in memory whole; a retention sweep deletes the artifact files (not the
//! request's record) after the configured hours. With replicas, the records and files are kept in the shared
//! database instead and the directory is only working space (`shared.rs` decides, and says why).
//!
//! This folder owns the artifact files only. Like the rest of `store/`, it must never import `signing/`, `http/`
//! or the HSM: it keeps what it is given and knows nothing of policies or HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use shared::{ArtifactFile, ArtifactReader, Artifacts, SharedArtifacts, CHUNK_SIZE};

use super::StoreError;
use crate::config::ArtifactsConfig;

mod shared;

const REQUEST_FILE: &str = "request.json";
const UNSIGNED_FILE: &str = "unsigned";
const SIGNED_FILE: &str = "signed";
const RECEIVED_FILE: &str = "received";
const STAGING_DIR: &str = "layout";

/// Where a file-based request stands, as its directory records it. Approval itself lives in the approval store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArtifactState {
    /// Waiting for approval (the approval store decides).
    Waiting,
    Completed,
    Failed,
}

/// What a file-based signing request was, kept beside its artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactRequest {
    pub request_id: String,
    pub token_id: String,
    pub project: String,
    pub policy: String,
    pub policy_id: String,
    pub artifact_configuration: String,
    pub file_name: String,
    pub description: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub origin: BTreeMap<String, String>,
    pub size: u64,
    pub sha256: String,
    /// Seconds since the Unix epoch.
    pub submitted: u64,
    /// Every image in the artifact, as `name@digest`.
    pub images: Vec<String>,
    pub state: ArtifactState,
    /// Why signing failed, for `Failed`.
    pub failure: Option<String>,
    /// The artifact files were deleted by the retention sweep.
    #[serde(default)]
    pub deleted: bool,
    /// The ZIP archive the artifact came in (a GitHub artifact), whose one entry is `file_name`: the signed
    /// artifact goes back in a ZIP of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// The GitHub workflow run the gateway verified the artifact came from (GitHub's API), as audited claims;
    /// a resubmission checks the new policy's origin rule against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_run: Option<BTreeMap<String, String>>,
}

/// The artifact directory of one gateway.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    pub max_size: u64,
    retention: Duration,
}

impl ArtifactStore {
    pub fn new(base: &Path, config: &ArtifactsConfig) -> Self {
        Self {
            root: crate::config::resolve(base, &config.directory),
            max_size: config.max_size_bytes,
            retention: Duration::from_secs(config.retention_hours.saturating_mul(3600)),
        }
    }

    /// The directory of request `request_id` (a UUID, checked by the caller), created private.
    pub fn create(&self, request_id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir(request_id);
        std::fs::create_dir_all(&self.root).map_err(|e| io_error(&self.root, &e))?;
        let mut builder = std::fs::DirBuilder::new();
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(|e| io_error(&dir, &e))?;
        Ok(dir)
    }

    /// The directory of request `request_id` (a UUID, checked by the caller), created private if it is not there
    /// yet: where a replica fetches a request another replica took.
    pub fn working_directory(&self, request_id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir(request_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        self.create(request_id)
    }

    fn dir(&self, request_id: &str) -> PathBuf {
        self.root.join(request_id)
    }

    /// Where `file` of `request_id` is (being) written.
    pub fn path(&self, request_id: &str, file: ArtifactFile) -> PathBuf {
        self.dir(request_id).join(file.name())
    }

    /// How long artifacts are kept after their request was submitted.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Where the upload of `request_id` is (being) written.
    pub fn unsigned(&self, request_id: &str) -> PathBuf {
        self.path(request_id, ArtifactFile::Unsigned)
    }

    /// Where the upload of `request_id` is unpacked, kept from the check at submission to the signing (a held
    /// request keeps it until it is approved, or until the retention sweep).
    pub fn staging(&self, request_id: &str) -> PathBuf {
        self.dir(request_id).join(STAGING_DIR)
    }

    /// Where an artifact fetched from elsewhere (a GitHub artifact's ZIP) is written before the upload is taken
    /// out of it into [`ArtifactStore::unsigned`].
    pub fn received(&self, request_id: &str) -> PathBuf {
        self.dir(request_id).join(RECEIVED_FILE)
    }

    /// Where the signed artifact of `request_id` is.
    pub fn signed(&self, request_id: &str) -> PathBuf {
        self.path(request_id, ArtifactFile::Signed)
    }

    /// The record of `request_id`, if there is one (`request_id` must be a UUID: it names a directory).
    pub fn get(&self, request_id: &str) -> Result<Option<ArtifactRequest>, StoreError> {
        if uuid::Uuid::parse_str(request_id).is_err() {
            return Ok(None);
        }
        let path = self.dir(request_id).join(REQUEST_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, &e)),
        }
    }

    /// Writes the record of a request, atomically (a reader sees the old or the new one).
    pub fn put(&self, request: &ArtifactRequest) -> Result<(), StoreError> {
        let dir = self.dir(&request.request_id);
        let bytes = serde_json::to_vec(request).map_err(|e| StoreError(e.to_string()))?;
        let temporary = dir.join(format!("{REQUEST_FILE}.tmp"));
        std::fs::write(&temporary, bytes).map_err(|e| io_error(&temporary, &e))?;
        std::fs::rename(&temporary, dir.join(REQUEST_FILE)).map_err(|e| io_error(&dir, &e))
    }

    /// Removes a request's directory whole (a submission that was refused).
    pub fn discard(&self, request_id: &str) {
        let _ = std::fs::remove_dir_all(self.dir(request_id));
    }

    /// Deletes the artifact files of requests submitted more than the retention period ago (their records stay,
    /// marked deleted): the upload, the result and the unpacked layout of a request that was held, denied or never
    /// polled again; and directories left without a record (an upload that was cut off). Returns how many.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let now = unix_now();
        let mut swept = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > self.retention);
            match self.get(&name) {
                Ok(Some(mut request))
                    if !request.deleted
                        && now.saturating_sub(request.submitted) > self.retention.as_secs() =>
                {
                    let _ = std::fs::remove_file(self.unsigned(&name));
                    let _ = std::fs::remove_file(self.signed(&name));
                    let _ = std::fs::remove_file(self.received(&name));
                    let _ = std::fs::remove_dir_all(self.staging(&name));
                    request.deleted = true;
                    if self.put(&request).is_ok() {
                        swept += 1;
                    }
                }
                Ok(None) if old => {
                    let _ = std::fs::remove_dir_all(entry.path());
                    swept += 1;
                }
                _ => {}
            }
        }
        swept
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError(format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
mod tests {
    use super::*;

    fn request(id: &str, submitted: u64) -> ArtifactRequest {
        ArtifactRequest {
            request_id: id.into(),
            token_id: "t".into(),
            project: "p".into(),
            policy: "s".into(),
            policy_id: "i".into(),
            artifact_configuration: "Default".into(),
            file_name: "image.tar".into(),
            description: None,
            parameters: BTreeMap::new(),
            origin: BTreeMap::new(),
            size: 1,
            sha256: String::new(),
            submitted,
            images: Vec::new(),
            state: ArtifactState::Completed,
            failure: None,
            deleted: false,
            archive: None,
            github_run: None,
        }
    }

    #[test]
    fn retention_sweep_deletes_old_artifacts_but_keeps_their_record() {
        let base = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(base.path(), &ArtifactsConfig::default());
        let old = uuid::Uuid::new_v4().to_string();
        let young = uuid::Uuid::new_v4().to_string();
        for (id, submitted) in [(&old, unix_now() - 25 * 3600), (&young, unix_now())] {
            store.create(id).unwrap();
            std::fs::write(store.unsigned(id), b"artifact").unwrap();
            store.put(&request(id, submitted)).unwrap();
        }
        assert_eq!(store.sweep(), 1);
        assert!(!store.unsigned(&old).exists());
        assert!(store.get(&old).unwrap().unwrap().deleted);
        assert!(store.unsigned(&young).exists());
        assert!(!store.get(&young).unwrap().unwrap().deleted);
    }

    #[test]
    fn retention_sweep_deletes_the_unpacked_layout_of_held_and_denied_requests() {
        let base = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(base.path(), &ArtifactsConfig::default());
        let held = uuid::Uuid::new_v4().to_string();
        store.create(&held).unwrap();
        std::fs::write(store.unsigned(&held), b"artifact").unwrap();
        std::fs::create_dir_all(store.staging(&held).join("blobs/sha256")).unwrap();
        std::fs::write(store.staging(&held).join("blobs/sha256/00"), b"layer").unwrap();
        let mut request = request(&held, unix_now() - 25 * 3600);
        request.state = ArtifactState::Waiting;
        store.put(&request).unwrap();
        assert_eq!(store.sweep(), 1);
        assert!(!store.staging(&held).exists());
        assert!(!store.unsigned(&held).exists());
        let kept: Vec<_> = std::fs::read_dir(store.dir(&held))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(kept, [REQUEST_FILE]);
    }

    #[test]
    fn a_request_id_that_is_not_a_uuid_names_no_directory() {
        let base = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(base.path(), &ArtifactsConfig::default());
        assert!(store.get("../../etc").unwrap().is_none());
    }
}
