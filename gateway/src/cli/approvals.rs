//! Approvals on the command line: `approve`, `deny` and `pending`. Whoever runs them can read gateway.toml and the
//! database, so the approver is named, not authenticated; each vote goes into the audit log like a web vote.

use std::path::Path;

use super::CliResult;
use crate::config::GatewayConfig;
use crate::store::{now, Record, Status, Stores};

/// An approval or denial from the command line: whoever runs it can read gateway.toml and the database, so the
/// approver is named, not authenticated; the vote and who cast it go into the audit log like a web vote.
pub fn vote(config_path: &Path, id: &str, approver: &str, approve: bool, reason: Option<&str>) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    if !config.approvers.iter().any(|a| a.name == approver) {
        return Err(format!("there is no approver {approver:?} in {}", config_path.display()).into());
    }
    let stores = Stores::open(&base, &config.audit_db)?;
    let mut record = Record {
        request_id: uuid::Uuid::new_v4().to_string(),
        received: now(),
        organization: config.organization_id.clone(),
        token_id: Some(format!("approver:{approver}")),
        client_address: "command line".into(),
        method: "CLI".into(),
        route: format!("signpath-gateway {}", if approve { "approve" } else { "deny" }),
        ..Record::default()
    };
    let approver_owner = config
        .approvers
        .iter()
        .find(|a| a.name == approver)
        .and_then(|a| a.owner.clone());
    let submitter_owner = stores.approvals.get(id)?.and_then(|held| {
        config
            .tokens
            .iter()
            .find(|t| t.id == held.token_id)
            .and_then(|t| t.owner.clone())
    });
    let outcome = match (approver_owner, submitter_owner) {
        (Some(a), Some(t)) if a.eq_ignore_ascii_case(&t) => Err(crate::store::VoteError::OwnRequest {
            approver: approver.to_owned(),
            id: id.to_owned(),
        }),
        _ => stores.approvals.vote(id, approver, approve, reason),
    };
    record.completed = now();
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
    stores.audit.append(&record, None)?;
    let held = outcome?;
    println!(
        "signing request {id}: {:?} ({} of {} approvals)",
        held.status,
        held.approved_by.len(),
        held.required
    );
    Ok(())
}

pub fn print_pending(config_path: &Path, format: super::audit::Format) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let stores = Stores::open(&base, &config.audit_db)?;
    let pending = stores.approvals.list(Some(Status::Pending), 1000)?;
    if format == super::audit::Format::Json {
        for h in &pending {
            println!("{}", serde_json::to_string(h)?);
        }
        return Ok(());
    }
    let wide = format == super::audit::Format::Wide;
    for line in super::pending::table(&pending, super::terminal::width(), wide) {
        println!("{line}");
    }
    Ok(())
}
