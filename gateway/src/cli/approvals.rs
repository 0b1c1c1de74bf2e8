//! Approvals on the command line: `approve`, `deny` and `pending`. Whoever runs them can read gateway.toml and the
//! database, so the approver is named, not authenticated; each vote goes into the audit log like a web vote.

use std::path::Path;

use super::CliResult;
use crate::config::{ApprovalConfig, GatewayConfig};
use crate::signing::revoked::approver_revocation;
use crate::signing::{conclude, vote_refusal, Answer};
use crate::store::{now, rules, HeldQuery, Record, Stage, Stores, VoteError};

/// An approval or denial from the command line: whoever runs it can read gateway.toml and the database, so the
/// approver is named, not authenticated; the vote and who cast it go into the audit log like a web vote.
pub fn vote(config_path: &Path, id: &str, approver: &str, approve: bool, reason: Option<&str>) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    if !config.approvers.iter().any(|a| a.name == approver) {
        return Err(format!("there is no approver {approver:?} in {}", config_path.display()).into());
    }
    let stores = Stores::open(&base, &config.audit_db)?;
    let mut record = Record {
        request_id: common::protocol::new_request_id(),
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
    let held = stores.approvals.get(id)?;
    let submitter_owner = held.as_ref().and_then(|held| {
        config
            .tokens
            .iter()
            .find(|t| t.id == held.token_id)
            .and_then(|t| t.owner.clone())
    });
    let outcome = match (approver_owner, submitter_owner, held) {
        (_, _, None) => Err(VoteError::NotFound(id.to_owned())),
        (Some(a), Some(t), _) if a.eq_ignore_ascii_case(&t) => Err(VoteError::OwnRequest {
            approver: approver.to_owned(),
            id: id.to_owned(),
        }),
        (_, _, Some(held)) => match approval_in_force(&config, &stores, &held.project, &held.policy)? {
            Some(approval) => stores.approvals.vote(id, approver, approve, reason, &approval),
            None => Err(VoteError::NotAnApprover {
                approver: approver.to_owned(),
                project: held.project,
                policy: held.policy,
            }),
        },
    };
    let answer = match &outcome {
        Ok(held) => {
            record.project = Some(held.project.clone());
            record.policy = Some(held.policy.clone());
            record.digest = Some(held.digest.clone());
            record.release_group = held.release_group.clone();
            record.approval = Some(format!(
                "{} {id} by {approver}{}",
                if approve { "approved" } else { "denied" },
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ));
            Ok(Answer::done(String::new()))
        }
        // The same status and error type as the vote refused on the web page.
        Err(e) => Err(vote_refusal(e)),
    };
    // Audited as every record is, by the signing core's one writer.
    let (audited, _) = conclude(&stores, record, answer);
    let held = outcome?;
    audited.map_err(|refusal| refusal.detail)?;
    // The approvals as they count now: those of approvers the policy still names.
    let (approved, required) = match approval_in_force(&config, &stores, &held.project, &held.policy)? {
        Some(approval) => (rules::counted(&approval, &held.approved_by), approval.required),
        None => (held.approved_by.len(), held.required),
    };
    println!(
        "signing request {id}: {:?} ({approved} of {required} approvals)",
        held.status
    );
    Ok(())
}

/// The approval of `project/policy` as gateway.toml says now, less the approvers removed through another replica
/// (with a shared store), as the gateway applies it (`Core::approval_in_force`).
fn approval_in_force(
    config: &GatewayConfig,
    stores: &Stores,
    project: &str,
    policy: &str,
) -> Result<Option<ApprovalConfig>, crate::store::StoreError> {
    let Some(mut approval) = config.approval(project, policy).cloned() else {
        return Ok(None);
    };
    let revoked = match &stores.revocations {
        Some(shared) => shared.revoked()?,
        None => Vec::new(),
    };
    approval.approvers.retain(|name| {
        config
            .approvers
            .iter()
            .find(|a| &a.name == name)
            .is_some_and(|a| !revoked.contains(&approver_revocation(&a.sha256.to_string())))
    });
    Ok(Some(approval))
}

pub fn print_pending(config_path: &Path, format: super::audit::Format) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let stores = Stores::open(&base, &config.audit_db)?;
    let pending = stores.approvals.list(&HeldQuery {
        policies: None,
        stage: Some(Stage::Waiting),
        offset: 0,
        limit: u32::MAX,
    })?;
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
