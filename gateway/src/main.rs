//! signpath-gateway: a self-hostable signing gateway that serves SignPath's hash-signing API with keys in a
//! PKCS#11 HSM, and keeps an audit log of every request.

mod api;
mod audit;
mod config;
mod fsutil;
mod hsm;
mod init;
mod pki;
mod serve;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A signing gateway speaking SignPath's hash-signing API, with keys in a PKCS#11 HSM.
#[derive(Debug, Parser)]
#[command(name = "signpath-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a complete setup in a new directory: SoftHSM2 token and keys, PKI, TLS certificate, API token.
    Init {
        /// The directory to create (must be new or empty).
        #[arg(long)]
        dir: PathBuf,
        /// The HTTPS port on 127.0.0.1.
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// The PKCS#11 module to create the keys in.
        #[arg(long, default_value = init::DEFAULT_SOFTHSM_MODULE)]
        module: PathBuf,
    },
    /// Serve the API.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the audit log.
    Audit {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the last N records.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token that may submit to the given policies; it is printed once and stored only hashed.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// `Project/Policy`, repeatable.
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGNPATH_GATEWAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = match cli.command {
        Command::Init { dir, port, module } => init::run(&dir, port, &module),
        Command::Serve { config } => serve::run(&config),
        Command::Audit { config, json, limit } => print_audit(&config, json, limit),
        Command::Token {
            command:
                TokenCommand::Add {
                    config,
                    name,
                    policies,
                },
        } => init::add_token(&config, &name, &policies).map(|token| println!("{token}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signpath-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_audit(
    config_path: &std::path::Path,
    json: bool,
    limit: Option<u32>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (config, base) = config::GatewayConfig::load(config_path)?;
    let log = audit::AuditLog::open(&config::resolve(&base, &config.audit_db))?;
    let records = log.records(limit)?;
    if json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "{:<20} {:<36} {:<8} {:<6} {:<16} {:<20} {:<10} {:<18} {:<14} DETAIL",
        "TIME", "REQUEST", "OUTCOME", "STATUS", "ROUTE", "POLICY", "TOKEN", "ALGORITHM", "PROCESS"
    );
    for r in &records {
        let route = r.route.rsplit('/').next().unwrap_or_default();
        let policy = match (&r.project, &r.policy) {
            (Some(p), Some(s)) => format!("{p}/{s}"),
            _ => "-".into(),
        };
        let metadata: Option<serde_json::Value> =
            r.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok());
        let process = metadata
            .as_ref()
            .and_then(|m| {
                m.pointer("/sourceProcess/commandLine")?
                    .as_str()
                    .map(str::to_owned)
            })
            .and_then(|c| {
                c.split_whitespace()
                    .next()
                    .map(|w| w.rsplit('/').next().unwrap_or(w).to_owned())
            })
            .unwrap_or_else(|| "-".into());
        let oci = metadata
            .as_ref()
            .and_then(|m| m.get("oci"))
            .map(|o| format!(" {}", o))
            .unwrap_or_default();
        let detail = r
            .error_type
            .clone()
            .map(|t| format!("{t}: {}", r.error_detail.clone().unwrap_or_default()));
        println!(
            "{:<20} {:<36} {:<8} {:<6} {:<16} {:<20} {:<10} {:<18} {:<14} {}{}",
            r.received.get(..19).unwrap_or(&r.received),
            r.request_id,
            r.outcome,
            r.status,
            route,
            policy,
            r.token_id.as_deref().unwrap_or("-"),
            r.algorithm.as_deref().unwrap_or("-"),
            process,
            detail.unwrap_or_else(|| r
                .digest
                .as_deref()
                .map(|d| format!("digest {d}"))
                .unwrap_or_default()),
            oci
        );
    }
    Ok(())
}
