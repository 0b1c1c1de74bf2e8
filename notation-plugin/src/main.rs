//! notation-signpath: a Notation plugin (`SIGNATURE_GENERATOR.RAW`) that signs with SignPath signing policies
//! through SignPath's hash-signing API, against SignPath itself or our signing gateway.
//!
//! - [`cli`]: argv, dispatch, clap errors as error JSON;
//! - [`commands`]: get-plugin-metadata, describe-key, generate-signature; [`envelope`]: generate-envelope
//!   (opt-in); [`verify`]: verify-signature, the revocation check; [`identity`]: its trusted-identity match;
//! - [`protocol`]: the plugin contract's JSON; [`error`]: errors and their one mapping to Notation error codes;
//! - [`settings`]: key id, configuration, log file; [`key`] and [`cache`]: policy keys, cached per user;
//! - [`chain`]: Notary's certificate-chain rules; [`payload`]: what is signed, for the audit log;
//! - [`output`]: stdout, stderr and the panic hook;
//! - [`doctor`]: `notation-signpath doctor`, a settings check for people, outside the plugin contract.

mod cache;
mod chain;
mod cli;
mod commands;
mod doctor;
mod envelope;
mod error;
mod identity;
mod key;
mod output;
mod payload;
mod protocol;
mod settings;
mod verify;

fn main() {
    output::install_panic_hook();
    common::broken_pipe::exit_quietly_on_broken_pipe();
    let code = cli::run(std::env::args_os());
    std::process::exit(code);
}
