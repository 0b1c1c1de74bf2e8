//! Logging as SignPath's Crypto Providers do it: a file `SignPath.CryptoProviders.<Interface>.txt` in
//! `Log.File.Directory` at `Log.File.Level`, and optionally the console at `Log.Console.Level`.
//!
//! The writer is a mutex around the file, not a background appender: a PKCS#11 module may not create threads.
//! The Notation plugin passes `console_allowed = false`, because its stdout and stderr belong to notation.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

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

/// Installs the global subscriber once per process; later calls (a second C_Initialize) are no-ops. A log file
/// that cannot be opened disables file logging rather than failing the signature.
pub fn init(config: &Config, interface: &str, console_allowed: bool) {
    let file_level = filter(config.log_file_level);
    let console_level = if console_allowed {
        filter(config.log_console_level)
    } else {
        LevelFilter::OFF
    };

    let file = (file_level != LevelFilter::OFF)
        .then(|| {
            std::fs::create_dir_all(&config.log_file_directory).ok()?;
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_file_path(config, interface))
                .ok()
        })
        .flatten();
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
            (true, true) => Box::new(std::io::stdout()),
            (true, false) => Box::new(std::io::stderr()),
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

struct FileOrSink(Option<std::fs::File>);

impl Write for FileOrSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.write(buf),
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
