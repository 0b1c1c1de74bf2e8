//! Who may do what, on the command line: owners of tokens and approvers, revoking a token and removing an
//! approver. Each command rewrites gateway.toml atomically; a running `serve` picks the change up by itself.

use std::path::Path;

use super::CliResult;
use crate::config::GatewayConfig;
use crate::signing::revoked::approver_revocation;
use crate::store::postgres::is_postgres;
use crate::store::Stores;

/// Names the person behind token `name` (`--owner` of `token add`).
pub fn set_token_owner(config_path: &Path, name: &str, owner: &str) -> CliResult {
    let (mut config, _) = GatewayConfig::load(config_path)?;
    let token = config
        .tokens
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("there is no token named {name:?}"))?;
    token.owner = Some(owner.to_owned());
    config.save(config_path)?;
    Ok(())
}

/// Names the person behind approver `name` (`--owner` of `approver add`).
pub fn set_approver_owner(config_path: &Path, name: &str, owner: &str) -> CliResult {
    let (mut config, _) = GatewayConfig::load(config_path)?;
    let approver = config
        .approvers
        .iter_mut()
        .find(|a| a.name == name)
        .ok_or_else(|| format!("there is no approver {name:?}"))?;
    approver.owner = Some(owner.to_owned());
    config.save(config_path)?;
    Ok(())
}

/// Revokes a token by name or id: it is removed from the tokens and from every policy's submitters. With a shared
/// (PostgreSQL) store the revocation is written there first, for the replicas whose gateway.toml still names it.
pub fn revoke_token(config_path: &Path, name_or_id: &str) -> CliResult {
    let (mut config, base) = GatewayConfig::load(config_path)?;
    let id = config
        .tokens
        .iter()
        .find(|t| t.name == name_or_id || t.id == name_or_id)
        .map(|t| t.id.clone())
        .ok_or_else(|| format!("there is no token named {name_or_id:?} (name or id)"))?;
    if config.audit_db.to_str().is_some_and(is_postgres) {
        if let Some(shared) = Stores::open(&base, &config.audit_db)?.revocations {
            shared.revoke(&id)?;
        }
    }
    config.tokens.retain(|t| t.id != id);
    for policy in config.projects.iter_mut().flat_map(|p| p.policies.iter_mut()) {
        policy.submitters.retain(|s| *s != id);
    }
    config.save(config_path)?;
    println!("token {id} revoked; a running gateway refuses it within 2 seconds");
    Ok(())
}

/// Removes an approver; policies that still name them must be changed first. A running gateway ends their web
/// sessions and stops counting their votes as soon as it reads the change (and as soon as they are out of a
/// policy, for that policy). With a shared (PostgreSQL) store the removal is written there first, by their
/// token's SHA-256, for the replicas whose gateway.toml still names them.
pub fn remove_approver(config_path: &Path, name: &str) -> CliResult {
    let (mut config, base) = GatewayConfig::load(config_path)?;
    let Some(sha256) = config
        .approvers
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.sha256.clone())
    else {
        return Err(format!("there is no approver {name:?}").into());
    };
    let policies: Vec<String> = config
        .projects
        .iter()
        .flat_map(|p| p.policies.iter().map(move |s| (p, s)))
        .filter(|(_, s)| {
            s.approval
                .as_ref()
                .is_some_and(|a| a.approvers.iter().any(|n| n == name))
        })
        .map(|(p, s)| format!("{}/{}", p.slug, s.slug))
        .collect();
    if !policies.is_empty() {
        return Err(format!(
            "{name} approves {}; take them out of those policies' approvers first",
            policies.join(", ")
        )
        .into());
    }
    if config.audit_db.to_str().is_some_and(is_postgres) {
        if let Some(shared) = Stores::open(&base, &config.audit_db)?.revocations {
            shared.revoke(&approver_revocation(&sha256))?;
        }
    }
    config.approvers.retain(|a| a.name != name);
    config.save(config_path)?;
    println!(
        "approver {name} removed; within 2 seconds a running gateway refuses their token, ends their sessions and \
         no longer counts their votes"
    );
    Ok(())
}
