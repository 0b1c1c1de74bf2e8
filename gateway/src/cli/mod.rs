//! The command line's own commands beside `serve`: `args.rs` defines every command (clap), [`run`] runs each but
//! `serve`; `access.rs` holds who may do what (tokens, approvers), `approvals.rs` and `pending.rs` the votes,
//! `audit.rs` the audit log, `doctor/` the checks of a setup, `keyless.rs` the keyless CA of an older setup. They
//! open the stores directly; they never import `http/`.

pub mod access;
pub mod approvals;
pub mod args;
pub mod audit;
pub mod doctor;
pub mod keyless;
pub mod log;
pub mod migrate;
pub mod pending;
pub mod policy;
pub mod revoke;
pub mod revoke_requests;
pub mod terminal;
pub mod verify_kit;

use args::{
    ApproverCommand, CertificateCommand, Command, KeylessCommand, LogCommand, PolicyCommand, TokenCommand,
};

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
        Command::Keyless {
            command: KeylessCommand::Init { config },
        } => keyless::init(&config),
        Command::Log { command } => match command {
            LogCommand::Verify { config, since } => log::verify(&config, since.as_deref()),
            LogCommand::Key { config } => log::key(&config),
            LogCommand::Checkpoint { config } => log::checkpoint(&config),
        },
        Command::Policy { command } => run_policy(command),
        Command::VerifyKit(args) => verify_kit::run(&args),
        Command::Revoke {
            config,
            policy,
            certificate,
            request,
            release_group,
            signed_after,
            reason,
            invalidity_date,
        } => run_revoke(
            &config,
            RevokeArgs {
                policy,
                certificate,
                request,
                release_group,
                signed_after,
                reason,
                invalidity_date,
            },
        ),
        Command::Revocations { config, json } => revoke_requests::list(&config, json),
        Command::RevocationList {
            config,
            output,
            valid_for_seconds,
        } => revoke_requests::export(&config, &output, valid_for_seconds),
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

/// `revoke`'s flags past the configuration.
struct RevokeArgs {
    policy: Option<String>,
    certificate: Option<std::path::PathBuf>,
    request: Option<String>,
    release_group: Option<String>,
    signed_after: Option<String>,
    reason: Option<String>,
    invalidity_date: Option<String>,
}

/// `revoke`: a certificate (`--policy` alone, `--certificate`) goes on the CRL; a request, a release group or a
/// policy's signatures after a moment go on the revocation list.
fn run_revoke(config: &std::path::Path, a: RevokeArgs) -> CliResult {
    use revoke_requests::Target;
    let target = match (&a.request, &a.release_group, &a.policy, &a.signed_after) {
        (Some(id), _, _, _) => Some(Target::Request(id)),
        (_, Some(group), _, _) => Some(Target::ReleaseGroup(group)),
        (_, _, Some(policy), Some(after)) => Some(Target::PolicySignedAfter {
            policy,
            signed_after: after,
        }),
        _ => None,
    };
    if let Some(target) = target {
        let reason = a
            .reason
            .as_deref()
            .ok_or("say why with --reason \"...\": the reason is published with the revocation")?;
        return revoke_requests::run(config, target, reason);
    }
    use crate::pki::revocations::Reason;
    let reason = match a.reason.as_deref() {
        None => Reason::Unspecified,
        Some(r) => <Reason as clap::ValueEnum>::from_str(r, true).map_err(|_| {
            format!("a certificate's --reason is one of unspecified, key-compromise, ca-compromise, affiliation-changed, superseded, cessation-of-operation, not {r:?}")
        })?,
    };
    revoke::run(
        config,
        a.policy.as_deref(),
        a.certificate.as_deref(),
        reason,
        a.invalidity_date.as_deref(),
    )
}
