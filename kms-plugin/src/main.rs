//! sigstore-kms-signpath: a cosign KMS plugin. cosign (v2.5 and later, its release binaries included) runs
//! `sigstore-kms-<scheme>` from PATH for `--key <scheme>://<key>`, so `--key signpath://Project/Policy` signs and
//! verifies through SignPath's hash-signing API, against SignPath itself or our signing gateway.
//!
//! One process per method call (sigstore/sigstore `pkg/signature/kms/cliplugin`): argv[1] the protocol version,
//! argv[2] the method and its arguments as JSON, the message on stdin, one JSON answer on stdout. Errors travel
//! in that answer's `errorMessage` (cosign ignores the exit status); stderr reaches cosign's stderr.
//!
//! - [`protocol`]: the JSON; [`methods`]: what each method does; [`message`]: digests and stdin;
//!   [`error`]: the messages cosign shows.
//!
//! It builds on `common` alone (configuration, client, keys, audit metadata) and must never import the other
//! clients or the gateway: what it shares with them belongs in `common`.

mod error;
mod message;
mod methods;
mod protocol;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use error::PluginError;
use protocol::{PluginArgs, PluginResp, PROTOCOL_VERSION};

/// cosign KMS plugin: `cosign sign --key signpath://Project/Policy` signs with a SignPath signing policy.
///
/// cosign runs this program; people rarely do. It reads the same settings as the Notation plugin and the PKCS#11
/// module: SIGNPATH_API_URL, SIGNPATH_ORGANIZATION_ID, SIGNPATH_API_TOKEN, ... or the JSON file named by
/// SIGNPATH_CONFIG_FILE.
#[derive(Debug, Parser)]
#[command(name = "sigstore-kms-signpath", version)]
struct Cli {
    /// The plugin protocol version cosign speaks (v1).
    protocol_version: String,
    /// The method to call and its arguments, as JSON.
    arguments: String,
}

fn main() -> ExitCode {
    let answer = match Cli::try_parse() {
        Ok(cli) => answer(&cli),
        Err(e) if !e.use_stderr() => {
            // --help and --version, for people.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => PluginResp::error(format!("sigstore-kms-signpath is run by cosign: {}", e.kind())),
    };
    let failed = answer.error_message.is_some();
    if let Some(message) = &answer.error_message {
        tracing::error!("{message}");
    }
    let written = serde_json::to_vec(&answer)
        .map_err(std::io::Error::other)
        .and_then(|json| {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&json)?;
            stdout.flush()
        });
    if written.is_err() || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The answer to one call; a panic becomes an error answer too, so cosign always reads JSON.
fn answer(cli: &Cli) -> PluginResp {
    // The default hook would print the panic on cosign's stderr before the answer says the same.
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| -> Result<PluginResp, PluginError> {
        if cli.protocol_version != PROTOCOL_VERSION {
            return Err(PluginError::UnsupportedProtocol(cli.protocol_version.clone()));
        }
        let args: PluginArgs = serde_json::from_str(&cli.arguments)
            .map_err(|e| PluginError::Request(format!("the plugin arguments are not valid v1 JSON: {e}")))?;
        let version = &args.init_options.protocol_version;
        if !version.is_empty() && version != PROTOCOL_VERSION {
            return Err(PluginError::UnsupportedProtocol(version.clone()));
        }
        methods::call(args, &mut std::io::stdin().lock())
    });
    match result {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => PluginResp::error(error.message()),
        Err(_) => {
            PluginResp::error("sigstore-kms-signpath failed unexpectedly (a bug); run cosign again".into())
        }
    }
}
