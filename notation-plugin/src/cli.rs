//! The command line notation uses: `notation-signpath <command>`, the request on stdin. clap's own messages (an
//! unknown command, no command, an extra argument) become the error JSON too, because notation parses whatever the
//! plugin writes to stderr; only an explicit `--help` or `--version` prints text.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

use crate::commands;
use crate::error::PluginError;
use crate::output;

/// Notation plugin (`--plugin signpath`) that signs container images with SignPath signing policies, through
/// SignPath or a SignPath-compatible signing gateway. notation runs it; each command reads one JSON request on
/// stdin and writes one JSON response on stdout (or one error JSON on stderr, with exit code 1).
///
/// Settings: SIGNPATH_API_TOKEN (never on a command line), SIGNPATH_ORGANIZATION_ID, SIGNPATH_API_URL and the
/// other SignPath Crypto Provider settings, or notation's --plugin-config OrganizationId=... ApiUrl=...; see
/// docs/notation.md.
#[derive(Debug, Parser)]
#[command(name = "notation-signpath", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Print the plugin's name, version and capabilities (static; reads {"pluginConfig":{...}} or nothing).
    GetPluginMetadata,
    /// Print the key spec of a signing policy ({"contractVersion":"1.0","keyId":"Project/Policy"}).
    DescribeKey,
    /// Sign a payload with a signing policy (the request notation sends for SIGNATURE_GENERATOR.RAW).
    GenerateSignature,
    /// Sign a Notary payload into a JWS or COSE envelope (SIGNATURE_GENERATOR.ENVELOPE, with pluginConfig
    /// envelope=true).
    GenerateEnvelope,
    /// Check a signature this plugin's envelope names it for: the trust policy's trusted identities
    /// (SIGNATURE_VERIFIER.TRUSTED_IDENTITY) and revocation of its signing request, release group or policy
    /// (SIGNATURE_VERIFIER.REVOCATION_CHECK).
    VerifySignature,
    /// For people, not notation: check the settings (gateway reachable, TLS CA and name, token, policies, clock,
    /// file modes) and print each problem with its fix; exit code 1 when there is one. Reads no stdin.
    Doctor {
        /// Also check that this key id (Project/Policy, notation's --id) is among the token's policies.
        #[arg(long)]
        key_id: Option<String>,
    },
}

const COMMANDS: &str =
    "get-plugin-metadata, describe-key, generate-signature, generate-envelope or verify-signature";

/// Runs the plugin for these arguments and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return match error.print() {
                Ok(()) => output::EXIT_SUCCESS,
                Err(e) => output::fail(&PluginError::Output(e.to_string())),
            };
        }
        Err(error) => return output::fail(&PluginError::Request(usage_message(&error))),
    };
    // The doctor is for people: no request on stdin, text on stdout. Every other command is notation's.
    let command: fn(&[u8]) -> Result<Vec<u8>, PluginError> = match cli.command {
        Command::Doctor { key_id } => return crate::doctor::run(key_id.as_deref()),
        Command::GetPluginMetadata => {
            |input| commands::get_plugin_metadata(input).and_then(|r| output::json(&r))
        }
        Command::DescribeKey => |input| commands::describe_key(input).and_then(|r| output::json(&r)),
        Command::GenerateSignature => {
            |input| commands::generate_signature(input).and_then(|r| output::json(&r))
        }
        Command::GenerateEnvelope => {
            |input| crate::envelope::generate_envelope(input).and_then(|r| output::json(&r))
        }
        Command::VerifySignature => {
            |input| crate::verify::verify_signature(input).and_then(|r| output::json(&r))
        }
    };
    let input = match output::read_stdin() {
        Ok(input) => input,
        Err(error) => return output::fail(&error),
    };
    let result = command(&input);
    match result {
        Ok(json) => output::succeed(&json),
        Err(error) => output::fail(&error),
    }
}

/// One line for a command-line mistake, in place of clap's multi-line usage text.
fn usage_message(error: &clap::Error) -> String {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(value)) => Some(value.clone()),
        _ => None,
    };
    let problem = match error.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown command {:?}",
            context(ContextKind::InvalidSubcommand).unwrap_or_default()
        ),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given".to_owned()
        }
        ErrorKind::UnknownArgument => format!(
            "unexpected argument {:?}",
            context(ContextKind::InvalidArg).unwrap_or_default()
        ),
        _ => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned(),
    };
    format!(
        "{problem}: notation-signpath takes one command, {COMMANDS}, and reads its request as JSON on stdin; \
         notation runs it (notation sign --plugin signpath --id Project/Policy)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(args: &[&str]) -> String {
        let error = Cli::try_parse_from(args.iter().map(OsString::from)).unwrap_err();
        usage_message(&error)
    }

    #[test]
    fn command_line_mistakes_become_one_line() {
        assert!(message(&["notation-signpath", "sign"]).starts_with("unknown command \"sign\": "));
        assert!(message(&["notation-signpath"]).starts_with("no command given: "));
        assert!(message(&["notation-signpath", "describe-key", "extra"])
            .starts_with("unexpected argument \"extra\": "));
        assert!(!message(&["notation-signpath"]).contains('\n'));
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
