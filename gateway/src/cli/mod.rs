//! The command line's own commands beside `serve`: `args.rs` defines every command (clap), [`run`] runs each but
//! `serve`; `access.rs` holds who may do what (tokens, approvers), `approvals.rs` and `pending.rs` the votes,
//! `audit.rs` the audit log, `doctor/` the checks of a setup. They open the stores directly; they never import
//! `http/`.

pub mod access;
pub mod approvals;
pub mod args;
pub mod audit;
pub mod doctor;
pub mod migrate;
pub mod pending;
pub mod policy;
pub mod revoke;
pub mod terminal;
pub mod verify_kit;

use args::{ApproverCommand, CertificateCommand, Command, PolicyCommand, TokenCommand};

pub type CliResult = Result<(), crate::error::BoxError>;

/// Runs `command`; `serve` is `main`'s, which alone may import `http/`.
pub fn run(command: Command) -> CliResult {
    match command {
        Command::Init {
            dir,
            port,
            crl_port,
            module,
        } => crate::init::crl_port(port, crl_port)
            .and_then(|crl_port| crate::init::run(&dir, port, crl_port, &module)),
        Command::Serve { .. } => {
            Err("serve is started by main, not by the command line's other commands".into())
        }
        Command::Audit {
            config,
            json,
            wide,
            limit,
            filter,
        } => audit::print_audit(&config, audit::Format::from_flags(json, wide), limit, &filter),
        Command::Approve { id, config, approver } => approvals::vote(&config, &id, &approver, true, None),
        Command::Deny {
            id,
            config,
            approver,
            reason,
        } => approvals::vote(&config, &id, &approver, false, reason.as_deref()),
        Command::Doctor { config } => doctor::run(&config),
        Command::Pending { config, json, wide } => {
            approvals::print_pending(&config, audit::Format::from_flags(json, wide))
        }
        Command::Approver {
            command: ApproverCommand::Add { config, name, owner },
        } => access::add_approver(&config, &name, owner.as_deref()).map(|token| println!("{token}")),
        Command::Approver {
            command: ApproverCommand::Remove { config, name },
        } => access::remove_approver(&config, &name),
        Command::Token {
            command:
                TokenCommand::Add {
                    config,
                    name,
                    policies,
                    owner,
                },
        } => access::add_token(&config, &name, &policies, owner.as_deref()).map(|token| println!("{token}")),
        Command::Token {
            command: TokenCommand::Revoke { config, token },
        } => access::revoke_token(&config, &token),
        Command::Migrate { config } => migrate::run(&config),
        Command::Policy { command } => run_policy(command),
        Command::VerifyKit(args) => verify_kit::run(&args),
        Command::Revoke {
            config,
            policy,
            certificate,
            reason,
            invalidity_date,
        } => revoke::run(
            &config,
            policy.as_deref(),
            certificate.as_deref(),
            reason,
            invalidity_date.as_deref(),
        ),
    }
}

fn run_policy(command: PolicyCommand) -> CliResult {
    match command {
        PolicyCommand::Add {
            config,
            project,
            slug,
            key_spec,
            submitters,
        } => policy::add(&config, &project, &slug, &key_spec, &submitters),
        PolicyCommand::Csr {
            config,
            project,
            slug,
            subject,
            out,
        } => policy::csr(&config, &project, &slug, subject.as_deref(), out.as_deref()),
        PolicyCommand::Certificate {
            command:
                CertificateCommand::Import {
                    config,
                    project,
                    slug,
                    chain,
                },
        } => policy::import(&config, &project, &slug, &chain),
        PolicyCommand::Rotate {
            config,
            project,
            slug,
            key_spec,
        } => policy::rotate(&config, &project, &slug, key_spec.as_deref()),
    }
}
