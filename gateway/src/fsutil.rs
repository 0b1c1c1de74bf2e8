//! Files that hold secrets are created 0600 from the start, never chmod-ed after the fact; and the files the gateway
//! trusts (gateway.toml, the HSM PIN file, the SQLite database) are read only when no one but their owner can
//! write them, as ssh demands of its own files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

pub fn write_public(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// A random token of 256 bits in the URL-safe alphabet: no `+`, `/` or `=`, which cosign's PKCS#11 URI parser
/// would mangle.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Why a file the gateway trusts is refused: someone besides its owner could have written it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SharedFile {
    #[error("{what} {path} has mode {mode:04o}: other users can write it, so what it holds may be theirs; run `chmod go-w {path}` and check its contents")]
    Writable { what: String, path: String, mode: u32 },
    #[error("{what} {path} is owned by uid {owner}, neither root nor the user reading it (uid {user}): that user could write anything in it; run the gateway and its commands as the file's owner, or `chown {user} {path}` and check its contents")]
    Owner {
        what: String,
        path: String,
        owner: u32,
        user: u32,
    },
    #[error("cannot read {what} {path}: {reason}")]
    Unreadable {
        what: String,
        path: String,
        reason: String,
    },
}

/// Refuses `path` (`what` names it in the error) if a user other than its owner could have written it: the file or
/// the directory holding it is writable by group or others (a directory with the sticky bit, as /tmp, is not: no
/// one may replace another's file in it), or either is owned by someone other than root or the gateway's own user.
/// A token planted in gateway.toml, or a PIN file or database swapped for another, would otherwise be trusted.
pub fn check_owner_only_writes(path: &Path, what: &str) -> Result<(), SharedFile> {
    let file = std::fs::metadata(path).map_err(|e| SharedFile::Unreadable {
        what: what.to_owned(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    check_one(path, &file, what)?;
    let directory = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Ok(()),
    };
    match std::fs::metadata(directory) {
        Ok(metadata) => check_one(directory, &metadata, &format!("the directory of {what}")),
        // The file was just read through it; a directory that vanished since is not a writer.
        Err(_) => Ok(()),
    }
}

fn check_one(path: &Path, metadata: &std::fs::Metadata, what: &str) -> Result<(), SharedFile> {
    use std::os::unix::fs::MetadataExt;
    let mode = metadata.mode() & 0o7777;
    let sticky_directory = metadata.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_directory {
        return Err(SharedFile::Writable {
            what: what.to_owned(),
            path: path.display().to_string(),
            mode,
        });
    }
    let (owner, user) = (metadata.uid(), rustix::process::geteuid().as_raw());
    if owner != 0 && owner != user {
        return Err(SharedFile::Owner {
            what: what.to_owned(),
            path: path.display().to_string(),
            owner,
            user,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_others_can_write_is_refused_naming_it_and_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "").unwrap();
        for mode in [0o600, 0o640, 0o644, 0o400] {
            chmod(&file, mode);
            assert_eq!(
                check_owner_only_writes(&file, "the configuration"),
                Ok(()),
                "{mode:o}"
            );
        }
        for mode in [0o620, 0o602, 0o666, 0o664] {
            chmod(&file, mode);
            let error = check_owner_only_writes(&file, "the configuration").unwrap_err();
            assert_eq!(
                error,
                SharedFile::Writable {
                    what: "the configuration".into(),
                    path: file.display().to_string(),
                    mode
                }
            );
            let text = error.to_string();
            assert!(
                text.contains(&format!("{mode:04o}")) && text.contains("gateway.toml"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_directory_others_can_write_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let setup = dir.path().join("setup");
        std::fs::create_dir(&setup).unwrap();
        let file = setup.join("hsm-pin");
        std::fs::write(&file, "1234").unwrap();
        chmod(&file, 0o600);
        chmod(&setup, 0o777);
        let error = check_owner_only_writes(&file, "the HSM PIN file").unwrap_err();
        assert!(
            matches!(&error, SharedFile::Writable { what, mode: 0o777, .. } if what == "the directory of the HSM PIN file"),
            "{error}"
        );
        chmod(&setup, 0o1777);
        assert_eq!(check_owner_only_writes(&file, "the HSM PIN file"), Ok(()));
        chmod(&setup, 0o755);
        assert_eq!(check_owner_only_writes(&file, "the HSM PIN file"), Ok(()));
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o600);
        // Giving a file away takes root; elsewhere the rule is shown by the owner and root passing.
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&file, Some(4242), None).unwrap();
            let error = check_owner_only_writes(&file, "the configuration").unwrap_err();
            assert!(
                matches!(
                    error,
                    SharedFile::Owner {
                        owner: 4242,
                        user: 0,
                        ..
                    }
                ),
                "{error}"
            );
            assert!(error.to_string().contains("uid 4242"), "{error}");
        } else {
            assert_eq!(check_owner_only_writes(&file, "the configuration"), Ok(()));
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = check_owner_only_writes(&dir.path().join("absent"), "the configuration").unwrap_err();
        assert!(
            error.to_string().starts_with("cannot read the configuration "),
            "{error}"
        );
    }
}
