//! Everything the plugin writes to notation: one JSON value on stdout on success, one error JSON on stderr on
//! failure, nothing else ever. A panic, the last resort, also ends as an error JSON.

use std::io::{Read, Write};

use serde::Serialize;

use crate::error::{code, error_code, PluginError};
use crate::protocol::ErrorResponse;
use crate::settings;

/// Exit codes: the plugin contract knows success and failure, and notation reads stderr on any failure.
pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;

/// A request is a few kilobytes (the payload is a JWS signing input or a COSE Sig_structure); notation itself
/// caps a plugin's output at 64 MiB.
const MAX_INPUT: u64 = 16 * 1024 * 1024;

pub fn read_stdin() -> Result<Vec<u8>, PluginError> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| PluginError::Request(format!("cannot read the request from stdin: {e}")))?;
    if input.len() as u64 > MAX_INPUT {
        return Err(PluginError::Request(format!(
            "the request on stdin is larger than {MAX_INPUT} bytes; notation sends a few kilobytes"
        )));
    }
    Ok(input)
}

pub fn json<T: Serialize>(response: &T) -> Result<Vec<u8>, PluginError> {
    serde_json::to_vec(response).map_err(|e| PluginError::Output(e.to_string()))
}

/// Writes the response to stdout; exit code 0, or 1 when stdout cannot take it.
pub fn succeed(json: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(json).and_then(|()| stdout.flush()) {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => fail(&PluginError::Output(e.to_string())),
    }
}

/// Logs the error to the log file and writes its JSON to stderr; exit code 1.
pub fn fail(error: &PluginError) -> i32 {
    let code = error_code(error);
    let message = error.to_string();
    settings::ensure_logging();
    tracing::error!(error_code = code, "{message}");
    write_error(code, &message);
    EXIT_FAILURE
}

fn write_error(code: &str, message: &str) {
    let body = serde_json::to_vec(&ErrorResponse {
        error_code: code,
        error_message: message,
    })
    .unwrap_or_else(|_| br#"{"errorCode":"ERROR","errorMessage":"notation-signpath failed"}"#.to_vec());
    let mut stderr = std::io::stderr().lock();
    // Nowhere is left to report a failing stderr.
    let _ = stderr.write_all(&body).and_then(|()| stderr.flush());
}

/// Replaces Rust's panic message (text on stderr that notation could not parse) with an error JSON and exit 1.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("panic{location}: {info}");
        write_error(
            code::ERROR,
            &format!(
                "notation-signpath failed unexpectedly{location}; this is a bug, please report it with the log file \
                 SignPath.CryptoProviders.Notation.txt (Log.File.Directory, default ~/.local/state/signpath)"
            ),
        );
        std::process::exit(EXIT_FAILURE);
    }));
}
