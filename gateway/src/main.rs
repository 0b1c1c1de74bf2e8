//! signpath-gateway: a self-hostable signing gateway that serves SignPath's hash-signing API with keys in a
//! PKCS#11 HSM, and keeps an audit log of every request.

mod api;
mod approval;
mod audit;
mod config;
mod fsutil;
mod hsm;
mod init;
mod origin;
mod pki;
mod serve;
mod state;
mod web;

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
    /// Print the audit log, oldest first; the filters select records of what was signed.
    Audit {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the last N matching records.
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Approve a signing request that waits for approval.
    Approve {
        /// The signing request id (logged by the client, shown on the web page and by `pending`).
        id: String,
        #[arg(long)]
        config: PathBuf,
        /// The approver's name, as in gateway.toml.
        #[arg(long = "as")]
        approver: String,
    },
    /// Deny a signing request; one denial aborts it.
    Deny {
        id: String,
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "as")]
        approver: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the signing requests that wait for approval.
    Pending {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Manage approvers.
    Approver {
        #[command(subcommand)]
        command: ApproverCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ApproverCommand {
    /// Adds an approver and prints their token (for the web page) once.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

/// Record filters of `audit`; all given must match.
#[derive(Debug, Default, clap::Args)]
struct AuditFilter {
    /// Registry of the signed image (e.g. registry.example.com:5000).
    #[arg(long)]
    registry: Option<String>,
    #[arg(long)]
    repository: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// Manifest digest of the signed image (sha256:...).
    #[arg(long)]
    digest: Option<String>,
    /// Project/Policy.
    #[arg(long)]
    policy: Option<String>,
    /// Release group.
    #[arg(long)]
    group: Option<String>,
    /// allowed, refused, pending or error.
    #[arg(long)]
    outcome: Option<String>,
    /// A signing request id.
    #[arg(long)]
    request: Option<String>,
}

impl AuditFilter {
    fn matches(&self, r: &audit::Record) -> bool {
        let metadata: Option<serde_json::Value> =
            r.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok());
        let oci = |field: &str| {
            metadata
                .as_ref()
                .and_then(|m| m.pointer(&format!("/oci/{field}")))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let eq = |want: &Option<String>, have: Option<String>| {
            want.as_ref().is_none_or(|w| have.as_deref() == Some(w.as_str()))
        };
        let policy = match (&r.project, &r.policy) {
            (Some(p), Some(s)) => Some(format!("{p}/{s}")),
            _ => None,
        };
        eq(&self.registry, oci("registry"))
            && eq(&self.repository, oci("repository"))
            && eq(&self.tag, oci("tag"))
            && eq(&self.digest, oci("digest"))
            && eq(&self.policy, policy)
            && eq(&self.group, r.release_group.clone())
            && eq(&self.outcome, Some(r.outcome.clone()))
            && eq(&self.request, Some(r.request_id.clone()))
    }
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
        Command::Audit {
            config,
            json,
            limit,
            filter,
        } => print_audit(&config, json, limit, &filter),
        Command::Approve { id, config, approver } => cli_vote(&config, &id, &approver, true, None),
        Command::Deny {
            id,
            config,
            approver,
            reason,
        } => cli_vote(&config, &id, &approver, false, reason.as_deref()),
        Command::Pending { config, json } => print_pending(&config, json),
        Command::Approver {
            command: ApproverCommand::Add { config, name },
        } => init::add_approver(&config, &name).map(|token| println!("{token}")),
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

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// An approval or denial from the command line: whoever runs it can read gateway.toml and the database, so the
/// approver is named, not authenticated; the vote and who cast it go into the audit log like a web vote.
fn cli_vote(
    config_path: &std::path::Path,
    id: &str,
    approver: &str,
    approve: bool,
    reason: Option<&str>,
) -> CliResult {
    let (config, base) = config::GatewayConfig::load(config_path)?;
    if !config.approvers.iter().any(|a| a.name == approver) {
        return Err(format!("there is no approver {approver:?} in {}", config_path.display()).into());
    }
    let db = config::resolve(&base, &config.audit_db);
    let approvals = approval::Approvals::open(&db)?;
    let log = audit::AuditLog::open(&db)?;
    let mut record = audit::Record {
        request_id: uuid::Uuid::new_v4().to_string(),
        received: api::now(),
        organization: config.organization_id.clone(),
        token_id: Some(format!("approver:{approver}")),
        client_address: "command line".into(),
        method: "CLI".into(),
        route: format!("signpath-gateway {}", if approve { "approve" } else { "deny" }),
        ..audit::Record::default()
    };
    let outcome = approvals.vote(id, approver, approve, reason);
    record.completed = api::now();
    match &outcome {
        Ok(held) => {
            record.outcome = "allowed".into();
            record.status = 200;
            record.project = Some(held.project.clone());
            record.policy = Some(held.policy.clone());
            record.digest = Some(held.digest.clone());
            record.release_group = held.release_group.clone();
            record.approval = Some(format!(
                "{} {id} by {approver}{}",
                if approve { "approved" } else { "denied" },
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        Err(e) => {
            record.outcome = "refused".into();
            record.status = 409;
            record.error_detail = Some(e.to_string());
        }
    }
    log.append(&record)?;
    let held = outcome?;
    println!(
        "signing request {id}: {:?} ({} of {} approvals)",
        held.status,
        held.approved_by.len(),
        held.required
    );
    Ok(())
}

fn print_pending(config_path: &std::path::Path, json: bool) -> CliResult {
    let (config, base) = config::GatewayConfig::load(config_path)?;
    let approvals = approval::Approvals::open(&config::resolve(&base, &config.audit_db))?;
    let pending = approvals.list(Some(approval::Status::Pending), 1000)?;
    for h in &pending {
        if json {
            println!("{}", serde_json::to_string(h)?);
        } else {
            println!(
                "{} {}/{} {} {} approvals {}/{} of {}{}",
                h.request_id,
                h.project,
                h.policy,
                h.image.as_deref().unwrap_or("-"),
                h.digest,
                h.approved_by.len(),
                h.required,
                h.approvers.join(","),
                h.release_group
                    .as_deref()
                    .map(|g| format!(" group {g}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn print_audit(
    config_path: &std::path::Path,
    json: bool,
    limit: Option<u32>,
    filter: &AuditFilter,
) -> CliResult {
    let (config, base) = config::GatewayConfig::load(config_path)?;
    let log = audit::AuditLog::open(&config::resolve(&base, &config.audit_db))?;
    let mut records: Vec<audit::Record> = log
        .records(None)?
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    if let Some(limit) = limit {
        let skip = records.len().saturating_sub(limit as usize);
        records.drain(..skip);
    }
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
