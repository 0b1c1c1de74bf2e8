//! `signpath-gateway audit`: the audit log, oldest first, as a table or one JSON object per line, filtered by
//! what was signed.

use std::path::Path;

use super::CliResult;
use crate::config::{resolve, GatewayConfig};
use crate::store::{Record, Stores};

/// Record filters of `audit`; all given must match.
#[derive(Debug, Default, clap::Args)]
pub struct AuditFilter {
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
    fn matches(&self, r: &Record) -> bool {
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

pub fn print_audit(config_path: &Path, json: bool, limit: Option<u32>, filter: &AuditFilter) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let log = Stores::sqlite(&resolve(&base, &config.audit_db))?.audit;
    let mut records: Vec<Record> = log
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
