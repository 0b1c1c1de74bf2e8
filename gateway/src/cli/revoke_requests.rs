//! `signpath-gateway revoke --request ID | --release-group NAME | --policy P --signed-after TIME --reason R` and
//! `signpath-gateway revocations`: withdraw what one signing request, one release group, or everything a policy
//! signed after a moment produced, without revoking the policy's key (that is `revoke --policy` alone, the CRL's
//! business, in `revoke.rs`). Each revocation is stored once (a second `revoke` of the same thing says so and
//! changes nothing), in the database the gateway shares with its replicas, and goes into the audit log; the
//! gateway's revocation list and its online answer carry it from the next request on. Never imports `http/`.

use std::path::Path;

use common::revocation_list::{format_time, parse_time, Revocation, Scope};
use time::OffsetDateTime;

use super::CliResult;
use crate::config::GatewayConfig;
use crate::store::request_revocations::covered;
use crate::store::{now, Record, Stores};

/// What `revoke` withdraws, as its flags name it.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    Request(&'a str),
    ReleaseGroup(&'a str),
    PolicySignedAfter { policy: &'a str, signed_after: &'a str },
}

/// The longest reason kept: it is published in the revocation list.
const MAX_REASON: usize = 500;

/// Revokes `target` with `reason`.
pub fn run(config_path: &Path, target: Target<'_>, reason: &str) -> CliResult {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(format!(
            "say why in --reason (1 to {MAX_REASON} characters): it is published to verifiers"
        )
        .into());
    }
    let (config, base) = GatewayConfig::load(config_path)?;
    let stores = Stores::open(&base, &config.audit_db)?;
    let store = &stores.request_revocations;
    let scope = match target {
        Target::Request(id) => {
            let signed = store.signed_requests(id)?;
            let first = signed.iter().find(|s| s.request_id == id).or(signed.first()).ok_or_else(|| {
                format!("the audit log has no signing request {id} that signed; `signpath-gateway audit --json` lists them")
            })?;
            Scope::Request {
                request_id: first.request_id.clone(),
                client_request_id: first.client_request_id.clone(),
            }
        }
        Target::ReleaseGroup(name) => {
            if name.trim().is_empty() {
                return Err("--release-group needs the group's name".into());
            }
            Scope::ReleaseGroup {
                release_group: name.to_owned(),
            }
        }
        Target::PolicySignedAfter { policy, signed_after } => {
            let (project, slug) = policy
                .split_once('/')
                .ok_or_else(|| format!("{policy:?} is not Project/Policy"))?;
            if !config
                .projects
                .iter()
                .any(|p| p.slug == project && p.policies.iter().any(|s| s.slug == slug))
            {
                return Err(format!("there is no signing policy {policy}").into());
            }
            let after = parse_time(signed_after).map_err(|_| {
                format!("--signed-after {signed_after:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)")
            })?;
            Scope::PolicySignedAfter {
                policy: policy.to_owned(),
                signed_after: format_time(after),
            }
        }
    };
    let revocation = Revocation {
        scope: scope.clone(),
        reason: reason.to_owned(),
        revoked_at: format_time(OffsetDateTime::now_utc()),
        revoked_by: operator(),
        signatures: Vec::new(),
    };
    let new = store.revoke(&revocation)?;
    let covered = covered(&scope, store.candidates(&scope)?).len();
    let mut record = Record {
        request_id: common::protocol::new_request_id(),
        received: now(),
        completed: now(),
        organization: config.organization_id.clone(),
        client_address: "command line".into(),
        method: "CLI".into(),
        route: "signpath-gateway revoke".into(),
        outcome: if new { "allowed" } else { "read" }.into(),
        status: if new { 200 } else { 409 },
        metadata: serde_json::to_string(&revocation).ok(),
        ..Record::default()
    };
    if let Scope::PolicySignedAfter { policy, .. } = &scope {
        let (project, slug) = policy.split_once('/').unwrap_or_default();
        record.project = Some(project.to_owned());
        record.policy = Some(slug.to_owned());
    }
    if let Scope::ReleaseGroup { release_group } = &scope {
        record.release_group = Some(release_group.clone());
    }
    if !new {
        record.error_detail = Some(format!("{scope} was already revoked"));
    }
    stores.audit.append(&record, None)?;
    if new {
        println!("revoked {scope} ({covered} signature(s) in the audit log so far): {reason}");
    } else {
        println!("{scope} was already revoked; the first revocation stays (`signpath-gateway revocations` shows it)");
    }
    println!("verifiers see it in the gateway's next revocation list and at once online (docs/verify.md)");
    Ok(())
}

/// The operator's account on this host, for the record: who ran `revoke`.
fn operator() -> Option<String> {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// `signpath-gateway revocations`: every request revocation, oldest first.
pub fn list(config_path: &Path, json: bool) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let stores = Stores::open(&base, &config.audit_db)?;
    let revocations = stores.request_revocations.revocations()?;
    for r in &revocations {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!(
                "{}  {}  {}{}",
                r.revoked_at,
                r.scope,
                r.reason,
                r.revoked_by
                    .as_deref()
                    .map(|b| format!("  (by {b})"))
                    .unwrap_or_default()
            );
        }
    }
    if revocations.is_empty() && !json {
        println!("no signing request, release group or policy is revoked");
    }
    Ok(())
}

/// `signpath-gateway revocation-list`: the revocation list, signed now by the issuing CA and valid for
/// `valid_for_seconds` (default `[pki] crl_validity_seconds`), written to `output`, for verifiers that cannot reach
/// the gateway.
pub fn export(config_path: &Path, output: &Path, valid_for_seconds: Option<u64>) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let pki = config
        .pki
        .clone()
        .ok_or("this setup has no [pki]: the revocation list is signed by the gateway's issuing CA")?;
    let valid_for =
        std::time::Duration::from_secs(valid_for_seconds.unwrap_or(pki.crl_validity_seconds).max(1));
    let stores = Stores::open(&base, &config.audit_db)?;
    let signer = std::sync::Arc::new(super::policy::open_hsm(&config, &base)?);
    let publisher = crate::signing::revocation_list::ListPublisher::new(
        pki,
        &base,
        config.organization_id.clone(),
        signer,
        stores.request_revocations.clone(),
    );
    let bytes = publisher.export(valid_for)?;
    crate::fsutil::write_public(output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    println!(
        "wrote the revocation list to {} (valid for {} s); verifiers read it offline (docs/verify.md)",
        output.display(),
        valid_for.as_secs()
    );
    Ok(())
}
