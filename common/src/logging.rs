//! Logging as SignPath's Crypto Providers do it: a file `SignPath.CryptoProviders.<Interface>.txt` in
//! `Log.File.Directory` at `Log.File.Level`, and optionally the console at `Log.Console.Level`.
//!
//! The writer is a mutex around the file, not a background appender: a PKCS#11 module may not create threads.
//! The Notation plugin passes `console_allowed = false`, because its stdout and stderr belong to notation.
//!
//! The log directory is the user's own (`$XDG_STATE_HOME/signpath` by default): created 0700, refused when another
//! user owns it, and the file is opened without following a symlink and created 0600, so nobody can redirect or
//! read it. Every line passes [`crate::secret::scrub`] before it is written.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use secrecy::ExposeSecret;

use crate::config::{Config, LogLevel};

fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::None => LevelFilter::OFF,
        LogLevel::Fatal | LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Verbose => LevelFilter::TRACE,
    }
}

/// The log file for an interface (`Notation`, `Cryptoki`).
pub fn log_file_path(config: &Config, interface: &str) -> PathBuf {
    config
        .log_file_directory
        .join(format!("SignPath.CryptoProviders.{interface}.txt"))
}

/// Why a log file was not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogFileError {
    #[error("no log directory: set Log.File.Directory (SIGNPATH_LOG_FILE_DIRECTORY), or HOME")]
    NoDirectory,
    #[error("the log directory {path} belongs to another user (uid {owner}); set Log.File.Directory (SIGNPATH_LOG_FILE_DIRECTORY) to a directory of your own")]
    ForeignDirectory { path: String, owner: u32 },
    #[error("the log directory {path} can be written by every user (mode {mode:o}); chmod o-w it or set Log.File.Directory (SIGNPATH_LOG_FILE_DIRECTORY) to a directory of your own")]
    SharedDirectory { path: String, mode: u32 },
    #[error("cannot open the log file {path}: {reason}")]
    Open { path: String, reason: String },
}

/// The effective user id of this process: whose files and directories are "ours".
pub fn current_user_id() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks that `directory` is this user's: owned by us and not writable by every user (where anyone could plant
/// files or links).
pub fn check_log_directory(directory: &Path) -> Result<(), LogFileError> {
    let path = directory.display().to_string();
    let meta = std::fs::metadata(directory).map_err(|e| LogFileError::Open {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if meta.uid() != current_user_id() {
        return Err(LogFileError::ForeignDirectory {
            path,
            owner: meta.uid(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(LogFileError::SharedDirectory { path, mode });
    }
    Ok(())
}

/// Opens (creating 0700 / 0600 as needed) the log file of `interface` for appending, never through a symlink and
/// never in a directory another user controls.
pub fn open_log_file(config: &Config, interface: &str) -> Result<File, LogFileError> {
    let directory = &config.log_file_directory;
    if directory.as_os_str().is_empty() {
        return Err(LogFileError::NoDirectory);
    }
    let path = log_file_path(config, interface);
    let open_error = |e: std::io::Error| LogFileError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(open_error)?;
    check_log_directory(directory)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => LogFileError::Open {
                path: path.display().to_string(),
                reason: "it is a symbolic link, which is never followed; remove it".into(),
            },
            _ => open_error(e),
        })?;
    // A file that already existed keeps its mode: make it private too.
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    Ok(file)
}

/// Installs the global subscriber once per process; later calls (a second C_Initialize) are no-ops. A log file
/// that cannot be opened disables file logging rather than failing the signature; the reason goes to stderr only
/// when `console_allowed` (never for the Notation plugin, whose stderr belongs to notation).
pub fn init(config: &Config, interface: &str, console_allowed: bool) {
    let file_level = filter(config.log_file_level);
    let console_level = if console_allowed {
        filter(config.log_console_level)
    } else {
        LevelFilter::OFF
    };

    if let Some(token) = &config.api_token {
        crate::secret::remember_token(config.organization_id.as_deref(), token);
    }
    if let Some(token) = &config.id_token {
        crate::secret::remember(token.expose_secret());
    }
    let file = if file_level == LevelFilter::OFF {
        None
    } else {
        match open_log_file(config, interface) {
            Ok(file) => Some(file),
            Err(error) => {
                if console_allowed {
                    eprintln!("SignPath {interface}: file logging is off: {error}");
                }
                None
            }
        }
    };
    let file_level = if file.is_some() {
        file_level
    } else {
        LevelFilter::OFF
    };
    let file_writer = Mutex::new(FileOrSink(file)).with_max_level(level_of(file_level));
    let to_stdout = config.log_console_to_stdout;
    let console_on = console_level != LevelFilter::OFF;
    let console_writer = (move || -> Box<dyn Write> {
        match (console_on, to_stdout) {
            (false, _) => Box::new(std::io::sink()),
            (true, true) => Box::new(Scrubbed(std::io::stdout())),
            (true, false) => Box::new(Scrubbed(std::io::stderr())),
        }
    })
    .with_max_level(level_of(console_level));

    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_thread_ids(true)
        .with_max_level(file_level.max(console_level))
        .with_writer(file_writer.and(console_writer))
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_ok() && config.config_file_is_shared() {
        tracing::warn!(
            file = %config.config_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            "the configuration file can be read by other users and may hold the API token; chmod 600 it"
        );
    }
}

fn level_of(filter: LevelFilter) -> tracing::Level {
    // A writer's max level has no "off"; an off writer gets ERROR, and both off writers discard what they get.
    filter.into_level().unwrap_or(tracing::Level::ERROR)
}

/// A writer that removes the secrets this process holds from each formatted event (the fmt layer writes one event
/// per `write`) before passing it on.
struct Scrubbed<W>(W);

impl<W: Write> Write for Scrubbed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::secret::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

struct FileOrSink(Option<std::fs::File>);

impl Write for FileOrSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(f) => Scrubbed(f).write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config_in(dir: &Path) -> Config {
        let dir = dir.display().to_string();
        let env = move |name: &str| (name == "SIGNPATH_LOG_FILE_DIRECTORY").then(|| dir.clone());
        Config::load(&BTreeMap::new(), &env).unwrap()
    }

    #[test]
    fn log_file_is_private_and_created_with_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let config = config_in(&root.path().join("state/signpath"));
        let mut file = open_log_file(&config, "Test").unwrap();
        writeln!(file, "line").unwrap();
        let path = log_file_path(&config, "Test");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let dir_mode = std::fs::metadata(&config.log_file_directory)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = root.path().join("victim.txt");
        std::fs::write(&target, "precious\n").unwrap();
        let config = config_in(&logs);
        std::os::unix::fs::symlink(&target, log_file_path(&config, "Test")).unwrap();
        let error = open_log_file(&config, "Test").unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("shared");
        std::fs::create_dir(&logs).unwrap();
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let error = open_log_file(&config_in(&logs), "Test").unwrap_err();
        assert!(matches!(error, LogFileError::SharedDirectory { .. }), "{error}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let root = tempfile::tempdir().unwrap();
        // Root can give a directory away; anyone else finds one of root's (`/`).
        let (foreign, owner) = if rustix::process::geteuid().is_root() {
            let dir = root.path().join("nobodys");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            (dir, 65534)
        } else {
            (PathBuf::from("/"), 0)
        };
        let error = open_log_file(&config_in(&foreign), "Test").unwrap_err();
        assert_eq!(
            error,
            LogFileError::ForeignDirectory {
                path: foreign.display().to_string(),
                owner
            }
        );
        assert!(!foreign.join("SignPath.CryptoProviders.Test.txt").exists());
    }
}
