//! A per-user cache of signing-policy keys (certificate chain and key type), so that one `notation sign` costs one
//! gateway round trip: notation starts the plugin three times (get-plugin-metadata, describe-key,
//! generate-signature), describe-key fetches the key once and generate-signature finds it here.
//!
//! Entries live in `$XDG_CACHE_HOME/notation-signpath/` (else `~/.cache/notation-signpath/`), directory 0700 and
//! files 0600, written atomically (a temporary file renamed into place). An entry is named by a hash of the API
//! base URL (which contains the organization), the key id and the CertificateChainFile, never the token, and is
//! used for [`TTL`] after it was written. The cache is a shortcut, never a source of failure: an entry that is
//! missing, expired, corrupt, or not private to this user is ignored, and a cache that cannot be written is
//! skipped. Entries hold only public data (certificates).

use std::fs::{self, DirBuilder};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use common::protocol::SigningPolicyInfo;

/// How long an entry is used: long enough for one `notation sign`, short enough that a renewed certificate is
/// picked up within minutes.
pub const TTL: Duration = Duration::from_secs(300);

/// Entries written this far in the future (another clock) are ignored.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A policy entry is a few kilobytes; anything much larger is not ours.
const MAX_ENTRY: u64 = 1024 * 1024;

const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    format: u32,
    stored_at: u64,
    policy: SigningPolicyInfo,
}

#[derive(Debug, Clone)]
pub struct KeyCache {
    dir: Option<PathBuf>,
}

impl KeyCache {
    /// The current user's cache directory, or a cache that holds nothing when neither `XDG_CACHE_HOME` nor `HOME`
    /// is set.
    pub fn for_user() -> Self {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let base = from_env("XDG_CACHE_HOME").or_else(|| from_env("HOME").map(|home| home.join(".cache")));
        Self {
            dir: base.map(|b| b.join("notation-signpath")),
        }
    }

    #[cfg(test)]
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The entry name for a key: a hash of where the key comes from, never of the token.
    pub fn entry_name(api_base: &str, key_id: &str, chain_file: Option<&Path>) -> String {
        let mut hasher = Sha256::new();
        for part in [api_base, key_id] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        if let Some(path) = chain_file {
            // A changed chain file makes a new entry.
            hasher.update(path.as_os_str().as_encoded_bytes());
            if let Ok(meta) = fs::metadata(path) {
                hasher.update(meta.len().to_be_bytes());
                hasher.update(meta.mtime().to_be_bytes());
                hasher.update(meta.mtime_nsec().to_be_bytes());
            }
        }
        format!("{}.json", hex::encode(hasher.finalize()))
    }

    /// A fresh entry, or `None` (with the reason in the log).
    pub fn load(&self, name: &str, now: SystemTime) -> Option<SigningPolicyInfo> {
        let dir = self.dir.as_deref()?;
        let path = dir.join(name);
        let result = (|| -> Result<SigningPolicyInfo, String> {
            let uid = current_uid().ok_or("the current user id is unknown")?;
            check_private(dir, uid, true)?;
            let meta = fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
            check_private(&path, uid, false)?;
            if meta.len() > MAX_ENTRY {
                return Err("too large".into());
            }
            let entry: Entry = serde_json::from_slice(&fs::read(&path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            if entry.format != FORMAT {
                return Err(format!("format {}", entry.format));
            }
            let now = seconds(now);
            if entry.stored_at > now + CLOCK_SKEW.as_secs() {
                return Err("written in the future".into());
            }
            if now.saturating_sub(entry.stored_at) >= TTL.as_secs() {
                return Err("expired".into());
            }
            Ok(entry.policy)
        })();
        match result {
            Ok(policy) => Some(policy),
            Err(reason) => {
                tracing::debug!(entry = %path.display(), %reason, "key cache entry not used");
                None
            }
        }
    }

    /// Writes an entry; failures only reach the log.
    pub fn store(&self, name: &str, policy: &SigningPolicyInfo, now: SystemTime) {
        let Some(dir) = self.dir.as_deref() else {
            return;
        };
        let result = (|| -> Result<(), String> {
            let uid = current_uid().ok_or("the current user id is unknown")?;
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| e.to_string())?;
            check_private(dir, uid, true)?;
            let entry = Entry {
                format: FORMAT,
                stored_at: seconds(now),
                policy: policy.clone(),
            };
            let body = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
            // NamedTempFile creates the file 0600 in the same directory, so the rename is atomic.
            let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
            file.write_all(&body).map_err(|e| e.to_string())?;
            file.as_file().sync_all().map_err(|e| e.to_string())?;
            file.persist(dir.join(name)).map_err(|e| e.to_string())?;
            Ok(())
        })();
        if let Err(reason) = result {
            tracing::warn!(dir = %dir.display(), %reason, "cannot write the key cache; every command will ask the gateway");
        }
    }

    /// Forgets an entry (a key that turned out to be stale).
    pub fn remove(&self, name: &str) {
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join(name));
        }
    }
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The effective user id: Linux makes `/proc/self` belong to it.
fn current_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A cache path must be ours, not a symlink, and closed to group and others. A directory we own with a looser
/// mode is tightened (an older tool may have made it).
fn check_private(path: &Path, uid: u32, is_dir: bool) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let kind_ok = if is_dir {
        meta.file_type().is_dir()
    } else {
        meta.file_type().is_file()
    };
    if !kind_ok {
        return Err(format!(
            "{} is not a plain {}",
            path.display(),
            if is_dir { "directory" } else { "file" }
        ));
    }
    if meta.uid() != uid {
        return Err(format!("{} belongs to another user", path.display()));
    }
    if meta.mode() & 0o077 != 0 {
        if !is_dir {
            return Err(format!("{} is readable or writable by others", path.display()));
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::protocol::WireKeyType;

    fn policy() -> SigningPolicyInfo {
        SigningPolicyInfo {
            signing_policy_slug: "ec-256".into(),
            project_slug: "demo".into(),
            signing_policy_id: "id".into(),
            key_type: WireKeyType::Ecdsa,
            key_size_in_bits: 256,
            certificate_bytes: "AAAA".into(),
            public_key_bytes: "BBBB".into(),
            rsa_parameters: None,
            certificate_chain: Some(vec!["AAAA".into()]),
            hash_algorithms: None,
        }
    }

    #[test]
    fn an_entry_is_used_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::at(&dir.path().join("notation-signpath"));
        let name = KeyCache::entry_name("https://gw/v1/org/", "demo/ec-256", None);
        let now = SystemTime::now();
        assert!(cache.load(&name, now).is_none());
        cache.store(&name, &policy(), now);
        assert_eq!(cache.load(&name, now + Duration::from_secs(10)), Some(policy()));
        assert!(cache.load(&name, now + TTL).is_none());
        assert!(cache.load(&name, now - Duration::from_secs(3600)).is_none());
    }

    #[test]
    fn the_cache_is_private_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("notation-signpath");
        let cache = KeyCache::at(&cache_dir);
        let name = KeyCache::entry_name("https://gw/v1/org/", "demo/ec-256", None);
        cache.store(&name, &policy(), SystemTime::now());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(mode(&cache_dir.join(&name)), 0o600);
        // Nothing but the entry: the temporary file was renamed, not left behind.
        assert_eq!(fs::read_dir(&cache_dir).unwrap().count(), 1);

        fs::set_permissions(cache_dir.join(&name), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(cache.load(&name, SystemTime::now()).is_none());
    }

    #[test]
    fn corrupt_entries_are_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::at(dir.path());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let name = KeyCache::entry_name("https://gw/v1/org/", "demo/ec-256", None);
        let path = dir.path().join(&name);
        fs::write(&path, b"{not json").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.load(&name, SystemTime::now()).is_none());
        cache.store(&name, &policy(), SystemTime::now());
        assert_eq!(cache.load(&name, SystemTime::now()), Some(policy()));
    }

    #[test]
    fn entry_names_depend_on_url_organization_and_key_but_not_on_anything_secret() {
        let a = KeyCache::entry_name("https://gw/v1/org-a/", "demo/ec-256", None);
        assert_ne!(
            a,
            KeyCache::entry_name("https://gw/v1/org-b/", "demo/ec-256", None)
        );
        assert_ne!(
            a,
            KeyCache::entry_name("https://gw/v1/org-a/", "demo/ec-384", None)
        );
        assert_ne!(
            a,
            KeyCache::entry_name("https://gw/v1/org-a/", "demo/ec-256", Some(Path::new("/x.pem")))
        );
        assert_eq!(
            a,
            KeyCache::entry_name("https://gw/v1/org-a/", "demo/ec-256", None)
        );
    }
}
