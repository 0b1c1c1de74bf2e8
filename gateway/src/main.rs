//! signpath-gateway: a self-hostable signing gateway that serves SignPath's hash-signing API with keys in a
//! PKCS#11 HSM, and keeps an audit log of every request.
//!
//! The layers, top to bottom: `http/` (routes, rendering, the server) → `signing/` (may this be signed, and sign
//! it) → `store/` (what is persisted) and `hsm`, `pki/` (keys and certificates). `cli/` and `init` are the
//! command line's other commands (`cli/args.rs` defines them all). Each layer imports only the ones below it.

mod cli;
mod config;
mod error;
mod fsutil;
mod hsm;
mod http;
mod init;
mod init_tsa;
mod metrics;
mod open_files;
mod pki;
mod signing;
mod store;
mod tlog;

use std::process::ExitCode;

use clap::Parser as _;
use cli::args::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    common::broken_pipe::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    // Colour only for a person at a terminal: a log redirected to a file or a journal gets plain text.
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGNPATH_GATEWAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    match cli.command {
        // One JSON object per line, the event's fields at the top level, for log shippers.
        Command::Serve {
            log_format: LogFormat::Json,
            ..
        } => log
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        _ => log.init(),
    }
    // `serve` is the one command that imports `http/`; `cli::run` runs every other.
    let result = match cli.command {
        Command::Serve { config, .. } => http::serve::run(&config),
        command => cli::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signpath-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
