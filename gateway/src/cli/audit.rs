//! `signpath-gateway audit`: the audit log, oldest first, filtered by what was signed: a table that fits the
//! terminal (`--wide` for every column) or one JSON object per line. Client data is escaped (`terminal`).

use std::collections::HashMap;
use std::path::Path;

use super::{terminal, CliResult};
use crate::config::GatewayConfig;
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
    /// allowed (signed), read (a lookup or a poll that signed nothing), refused, pending or error.
    #[arg(long)]
    outcome: Option<String>,
    /// A signing request id.
    #[arg(long)]
    request: Option<String>,
}

impl AuditFilter {
    fn matches(&self, r: &Record) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        let policy = match (&r.project, &r.policy) {
            (Some(p), Some(s)) => Some(format!("{p}/{s}")),
            _ => None,
        };
        let wants_image = self.registry.is_some()
            || self.repository.is_some()
            || self.tag.is_some()
            || self.digest.is_some();
        // One image must match every image filter given: the digest of one image and the tag of another is not
        // a match.
        let image_matches = || {
            images_named(r).iter().any(|image| {
                eq(&self.registry, image.registry.as_deref())
                    && eq(&self.repository, image.repository.as_deref())
                    && eq(&self.tag, image.tag.as_deref())
                    && eq(&self.digest, image.digest.as_deref())
            })
        };
        (!wants_image || image_matches())
            && eq(&self.policy, policy.as_deref())
            && eq(&self.group, r.release_group.as_deref())
            && eq(&self.outcome, Some(r.outcome.as_str()))
            && eq(&self.request, Some(r.request_id.as_str()))
    }
}

/// An image a record names, as far as the record knows it.
#[derive(Debug, Default, PartialEq, Eq)]
struct NamedImage {
    registry: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
}

/// Every image a record names: the one a hash signature was for (`metadata.oci`, as notation and cosign send it),
/// and those of a signed OCI layout tarball (`metadata.artifact.images`, each `name@digest`, and the subject of
/// each signature written, which includes each platform manifest).
fn images_named(r: &Record) -> Vec<NamedImage> {
    let Some(metadata) = r
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
    else {
        return Vec::new();
    };
    let mut images = Vec::new();
    if let Some(oci) = metadata.get("oci") {
        let field = |name: &str| oci.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        images.push(NamedImage {
            registry: field("registry"),
            repository: field("repository"),
            tag: field("tag"),
            digest: field("digest"),
        });
    }
    let artifact = |name: &str| {
        metadata
            .pointer(&format!("/artifact/{name}"))
            .or_else(|| metadata.get(name))
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
    };
    for reference in artifact("images") {
        images.extend(image_of_reference(reference, None));
    }
    // `kind name@digest subject-digest -> signature-digest`
    for line in artifact("signatures") {
        let mut words = line.split_whitespace().skip(1);
        if let (Some(reference), Some(subject)) = (words.next(), words.next()) {
            images.extend(image_of_reference(reference, Some(subject)));
        }
    }
    images
}

/// `registry/repository:tag@digest` as a [`NamedImage`], the digest replaced by `subject` where given.
fn image_of_reference(reference: &str, subject: Option<&str>) -> Option<NamedImage> {
    let parsed = signpath_oci::reference::Reference::parse(reference).ok()?;
    Some(NamedImage {
        registry: parsed.registry,
        repository: Some(parsed.repository),
        tag: parsed.tag,
        digest: subject
            .map(str::to_owned)
            .or_else(|| parsed.digest.map(|d| d.to_string())),
    })
}

/// How `audit` and `pending` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table that fits the terminal.
    Table,
    /// Every column, however wide.
    Wide,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn from_flags(json: bool, wide: bool) -> Self {
        match (json, wide) {
            (true, _) => Self::Json,
            (false, true) => Self::Wide,
            (false, false) => Self::Table,
        }
    }
}

pub fn print_audit(
    config_path: &Path,
    format: Format,
    limit: Option<u32>,
    filter: &AuditFilter,
) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let log = Stores::open(&base, &config.audit_db)?.audit;
    let mut records: Vec<Record> = log
        .records(None)?
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    if let Some(limit) = limit {
        let skip = records.len().saturating_sub(limit as usize);
        records.drain(..skip);
    }
    match format {
        Format::Json => {
            for r in &records {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Table => {
            let token_names: HashMap<&str, &str> = config
                .tokens
                .iter()
                .map(|t| (t.id.as_str(), t.name.as_str()))
                .collect();
            for line in table(&records, &token_names, terminal::width()) {
                println!("{line}");
            }
        }
        Format::Wide => print_wide(&records),
    }
    Ok(())
}

/// The table `audit` prints: time, outcome, policy, token name, and what was signed (or why not), `width`
/// columns at most.
fn table(records: &[Record], token_names: &HashMap<&str, &str>, width: usize) -> Vec<String> {
    const TIME: usize = 19;
    const OUTCOME: usize = 7;
    const POLICY: usize = 16;
    const TOKEN: usize = 12;
    let what = width.saturating_sub(TIME + OUTCOME + POLICY + TOKEN + 4).max(20);
    let row = |time: &str, outcome: &str, policy: &str, token: &str, subject: &str| {
        format!(
            "{} {} {} {} {}",
            terminal::pad(time, TIME),
            terminal::pad(&terminal::fit(outcome, OUTCOME), OUTCOME),
            terminal::pad(&terminal::fit(policy, POLICY), POLICY),
            terminal::pad(&terminal::fit(token, TOKEN), TOKEN),
            subject
        )
        .trim_end()
        .to_owned()
    };
    let mut lines = vec![row("TIME", "OUTCOME", "POLICY", "TOKEN", "SIGNED (OR WHY NOT)")];
    for r in records {
        let time = r.received.get(..19).unwrap_or(&r.received).replace('T', " ");
        let policy = match (&r.project, &r.policy) {
            (Some(p), Some(s)) => terminal::escape(&format!("{p}/{s}")).into_owned(),
            _ => "-".into(),
        };
        let token = r
            .token_id
            .as_deref()
            .map(|id| token_names.get(id).copied().unwrap_or(id))
            .map_or_else(|| "-".to_owned(), |t| terminal::escape(t).into_owned());
        lines.push(row(&time, &r.outcome, &policy, &token, &subject(r, what)));
    }
    lines
}

/// What a record signed, `registry/repository:tag@digest` shortened to `max`; for a refusal, why.
fn subject(r: &Record, max: usize) -> String {
    if r.outcome != "allowed" {
        if let Some(error) = &r.error_type {
            let kind = error.rsplit('/').next().unwrap_or(error);
            let detail = r.error_detail.as_deref().unwrap_or_default();
            return terminal::fit(&terminal::escape(&format!("{kind}: {detail}")), max);
        }
    }
    let metadata: Option<serde_json::Value> =
        r.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok());
    let oci = |field: &str| {
        metadata
            .as_ref()
            .and_then(|m| m.pointer(&format!("/oci/{field}")))
            .and_then(|v| v.as_str())
    };
    if oci("repository").is_some() || oci("digest").is_some() {
        return terminal::image_reference(oci("registry"), oci("repository"), oci("tag"), oci("digest"), max);
    }
    // A submitted tarball: the images it signed (`name@digest`), not the tarball's own hash.
    let images: Vec<&str> = metadata
        .as_ref()
        .and_then(|m| m.pointer("/artifact/images"))
        .and_then(|v| v.as_array())
        .map(|images| images.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if let Some(first) = images.first() {
        let more = match images.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        let (name, digest) = first
            .rsplit_once('@')
            .map_or((*first, None), |(n, d)| (n, Some(d)));
        // The first part is a registry when it looks like a host, as in a docker reference.
        let (registry, repository) = match name.split_once('/') {
            Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => (Some(host), rest),
            _ => (None, name),
        };
        let width = max.saturating_sub(more.chars().count());
        return terminal::image_reference(registry, Some(repository), None, digest, width) + &more;
    }
    if let Some(approval) = &r.approval {
        return terminal::fit(&terminal::escape(approval), max);
    }
    match &r.digest {
        Some(digest) => terminal::fit(&format!("hash {}", terminal::escape(digest)), max),
        None => terminal::fit(&terminal::escape(&r.route), max),
    }
}

/// `audit --wide`: every column, client data escaped.
fn print_wide(records: &[Record]) {
    println!(
        "{:<20} {:<36} {:<8} {:<6} {:<16} {:<20} {:<10} {:<18} {:<14} DETAIL",
        "TIME", "REQUEST", "OUTCOME", "STATUS", "ROUTE", "POLICY", "TOKEN", "ALGORITHM", "PROCESS"
    );
    for r in records {
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
        let line = format!(
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
        println!("{}", terminal::escape(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_record() -> Record {
        Record {
            request_id: "0b6f7a2e-53a4-4a43-9d4e-1f0c2b7d9e11".into(),
            received: "2026-11-30T06:01:02.123456Z".into(),
            organization: "org".into(),
            project: Some("demo".into()),
            policy: Some("rsa-4096".into()),
            token_id: Some("tok_0123456789abcdef0123456789abcdef".into()),
            client_address: "127.0.0.1:50000".into(),
            method: "POST".into(),
            route: "/v1/org/SigningRequests/SignHash".into(),
            digest: Some("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=".into()),
            metadata: Some(
                serde_json::json!({"oci": {
                    "registry": "registry.example.com:5000",
                    "repository": "acme/platform/payments-service",
                    "tag": "v1.24.3-rc.1",
                    "digest": format!("sha256:{}", "9f".repeat(32)),
                }, "sourceProcess": {"commandLine": "notation sign registry.example.com:5000/acme/app"}})
                .to_string(),
            ),
            outcome: "allowed".into(),
            status: 200,
            ..Record::default()
        }
    }

    #[test]
    fn a_typical_record_fits_in_120_columns() {
        let names = HashMap::from([("tok_0123456789abcdef0123456789abcdef", "release-ci")]);
        // A 120-column terminal.
        let lines = table(&[signed_record()], &names, 119);
        let line = &lines[1];
        assert!(
            line.chars().count() < 120,
            "{} columns: {line}",
            line.chars().count()
        );
        assert!(
            line.starts_with("2026-11-30 06:01:02 allowed demo/rsa-4096"),
            "{line}"
        );
        assert!(line.contains("release-ci"), "{line}");
        assert!(
            line.ends_with("payments-service:v1.24.3-rc.1@sha256:9f9f9f9f9f9f"),
            "{line}"
        );
    }

    #[test]
    fn client_data_cannot_repaint_the_table() {
        let mut record = signed_record();
        record.metadata = Some(
            serde_json::json!({"oci": {"repository": "acme/app\r\u{1b}[2Kdemo/ok", "tag": "v1\u{202e}"}})
                .to_string(),
        );
        let lines = table(&[record], &HashMap::new(), 100);
        assert!(
            !lines[1].chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{:?}",
            lines[1]
        );
        assert!(
            lines[1].contains("acme/app\\r\\x1b[2Kdemo/ok:v1\\u{202e}"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_submitted_tarball_is_found_by_each_image_it_signed() {
        let platform = format!("sha256:{}", "2b".repeat(32));
        let index = format!("sha256:{}", "1a".repeat(32));
        let record = Record {
            request_id: "artifact".into(),
            outcome: "allowed".into(),
            digest: Some(format!("sha256:{}", "77".repeat(32))),
            metadata: Some(
                serde_json::json!({"artifact": {
                    "images": [format!("registry.example.com/team/app:1.0@{index}")],
                }, "parameters": {}})
                .to_string(),
            ),
            ..Record::default()
        };
        let mut signed = record.clone();
        signed.metadata = Some(
            serde_json::json!({"artifact": {
                "images": [format!("registry.example.com/team/app:1.0@{index}")],
            }, "signatures": [
                format!("notary registry.example.com/team/app:1.0@{index} {index} -> sha256:{}", "3c".repeat(32)),
                format!("notary registry.example.com/team/app:1.0@{index} {platform} -> sha256:{}", "4d".repeat(32)),
            ]})
            .to_string(),
        );
        let filter = |digest: &str, tag: Option<&str>| AuditFilter {
            digest: Some(digest.to_owned()),
            tag: tag.map(str::to_owned),
            ..AuditFilter::default()
        };
        assert!(filter(&index, None).matches(&record));
        assert!(filter(&index, Some("1.0")).matches(&record));
        assert!(!filter(&index, Some("2.0")).matches(&record));
        assert!(!filter(&platform, None).matches(&record));
        assert!(filter(&platform, None).matches(&signed));
        let repository = AuditFilter {
            registry: Some("registry.example.com".into()),
            repository: Some("team/app".into()),
            ..AuditFilter::default()
        };
        assert!(repository.matches(&signed));
        assert!(filter(&format!("sha256:{}", "9f".repeat(32)), None).matches(&signed_record()));
        assert!(!filter(&index, None).matches(&signed_record()));
    }

    #[test]
    fn a_submitted_tarball_shows_the_images_it_signed_not_its_own_hash() {
        let image = |hex: &str| format!("registry.example.com/team/app:1.0@sha256:{}", hex.repeat(32));
        let mut record = Record {
            outcome: "allowed".into(),
            digest: Some(format!("sha256:{}", "77".repeat(32))),
            metadata: Some(serde_json::json!({"artifact": {"images": [image("1a")]}}).to_string()),
            ..Record::default()
        };
        let short = "registry.example.com/team/app:1.0@sha256:1a1a1a1a1a1a";
        assert_eq!(subject(&record, 200), short);
        // Narrow: the registry goes first, the digest stays.
        assert_eq!(subject(&record, 40), "team/app:1.0@sha256:1a1a1a1a1a1a");
        record.metadata = Some(
            serde_json::json!({"artifact": {"images": [image("1a"), image("2b"), image("3c")]}}).to_string(),
        );
        assert_eq!(subject(&record, 200), format!("{short} (+2 more)"));
    }
}
