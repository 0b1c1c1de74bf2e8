//! A closed stdout ends a command quietly, as it ends `cat` or `grep`: `signpath-gateway audit | head` stops when
//! `head` has its lines, without "failed printing to stdout: Broken pipe" and a backtrace.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe is an `EPIPE` error, and `println!` turns that error into a
//! panic. Restoring SIGPIPE's default action would need `unsafe` (and `libc`) in every binary, and would also kill a
//! gateway whose client hung up; instead a panic hook recognizes the one panic `println!` raises for it and exits
//! with status 0, as ripgrep does on a broken pipe. Every other panic goes to the hook installed before.

use std::panic::PanicHookInfo;

/// Installs the hook in front of the current one; call it once, first thing in `main` (after a program's own hook).
pub fn exit_quietly_on_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_broken_pipe(info) {
            std::process::exit(0);
        }
        previous(info);
    }));
}

/// Whether `info` is the panic of `print!`/`println!` on a stdout (or `eprint!` on a stderr) whose reader is gone.
fn is_broken_pipe(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    is_broken_pipe_message(message)
}

/// The standard library's words for it: "failed printing to stdout: Broken pipe (os error 32)".
fn is_broken_pipe_message(message: &str) -> bool {
    let broken_pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    let os_broken_pipe =
        std::io::Error::from_raw_os_error(rustix::io::Errno::PIPE.raw_os_error()).to_string();
    message.starts_with("failed printing to std")
        && (message.ends_with(&os_broken_pipe) || message.ends_with(&broken_pipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_of_println_on_a_closed_pipe_is_recognized() {
        assert!(is_broken_pipe_message(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_broken_pipe_message(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
    }

    #[test]
    fn other_panics_are_not() {
        assert!(!is_broken_pipe_message(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_pipe_message("Broken pipe (os error 32)"));
        assert!(!is_broken_pipe_message("index out of bounds"));
    }
}
