//! `notation-signpath doctor`: checks, from the settings the plugin would use, what a new user most often gets
//! wrong, and prints each problem with its fix in one sentence. It is not part of notation's plugin contract (it
//! reads no request and writes plain text), and the contract's commands do not depend on it.
//!
//! Checks, in order: the configuration loads; OrganizationId and ApiToken are set; the TLS files can be read; the
//! gateway at ApiUrl can be reached and its TLS certificate is trusted and for that host; the token is valid for
//! the organization and which signing policies it may use (`Cryptoki/MySigningPolicies`); the clock agrees with
//! the gateway's (its `Date` header); the log directory and the configuration file are private.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;

use crate::commands::VERSION;
use crate::output::{EXIT_FAILURE, EXIT_SUCCESS};

/// Clocks further apart than this make identity tokens and approval deadlines misbehave.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How long `doctor` tries a gateway that does not answer: long enough for a slow network, short for a person.
const PROBE_BUDGET: Duration = Duration::from_secs(5);

/// One finding: what was checked and, for a problem, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Problem { what: String, fix: String },
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding::Problem {
        what: what.into(),
        fix: fix.into(),
    }
}

/// Runs every check and prints the findings; exit code 1 when there is a problem.
pub fn run(key_id: Option<&str>) -> i32 {
    let findings = check(key_id);
    let mut problems = 0;
    for finding in &findings {
        match finding {
            Finding::Ok(what) => println!("ok       {what}"),
            Finding::Problem { what, fix } => {
                problems += 1;
                println!("PROBLEM  {what}\n         fix: {fix}");
            }
        }
    }
    if problems == 0 {
        println!("no problems found");
        EXIT_SUCCESS
    } else {
        println!("{problems} problem(s) found");
        EXIT_FAILURE
    }
}

fn check(key_id: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config = match Config::from_environment() {
        Ok(config) => config,
        Err(error) => {
            findings.push(problem(
                format!("the configuration cannot be read: {error}"),
                "Correct the setting or file named in the message (docs/configuration.md lists every setting).",
            ));
            return findings;
        }
    };
    findings.extend(check_files(&config));
    findings.extend(check_gateway(&config, key_id));
    findings
}

/// The gateway: reachable, TLS trusted, token valid, policies, clock.
fn check_gateway(config: &Config, key_id: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut probing = config.clone();
    probing.service_unavailable_timeout = config.service_unavailable_timeout.min(PROBE_BUDGET);
    probing.unreachable_timeout = config.unreachable_timeout.min(PROBE_BUDGET);
    probing.http_request_timeout = config.http_request_timeout.min(PROBE_BUDGET);
    let client = match GatewayClient::new(&probing, ClientOptions::new("Notation.Doctor", VERSION)) {
        Ok(client) => client,
        Err(error) => {
            findings.push(problem(
                error.to_string(),
                "Set the setting the message names (SIGNPATH_* variables or the file named by SIGNPATH_CONFIG_FILE).",
            ));
            return findings;
        }
    };
    let url = &config.api_url;
    let organization = config.organization_id.as_deref().unwrap_or_default();
    let probe = match client.probe() {
        Ok(probe) => probe,
        Err(error) => {
            findings.push(gateway_problem(url, organization, &error));
            return findings;
        }
    };
    findings.push(Finding::Ok(format!(
        "ApiUrl {url} is reachable and its TLS certificate is trusted"
    )));
    findings.push(Finding::Ok(format!(
        "the API token is valid for organization {organization}"
    )));
    let policies: Vec<String> = probe
        .policies
        .iter()
        .map(|p| format!("{}/{}", p.project_slug, p.signing_policy_slug))
        .collect();
    if policies.is_empty() {
        findings.push(problem(
            "the API token may use no signing policy",
            "Ask an administrator to make this token a submitter of a signing policy (signpath-gateway token add --policy Project/Policy).",
        ));
    } else {
        findings.push(Finding::Ok(format!(
            "the token may sign with: {}",
            policies.join(", ")
        )));
    }
    if let Some(key_id) = key_id {
        if !policies.iter().any(|p| p == key_id) {
            findings.push(problem(
                format!("the key id {key_id} is not among the token's signing policies"),
                "Pass notation's --id as one of the Project/Policy names listed above, or have the token added to that policy.",
            ));
        }
    }
    findings.push(clock_finding(probe.date.as_deref(), SystemTime::now()));
    findings
}

/// The one-sentence fix for a gateway error.
fn gateway_problem(url: &str, organization: &str, error: &common::Error) -> Finding {
    use common::Error as E;
    let fix = match error {
        E::NeverConnected { .. } | E::Unreachable { .. } | E::Timeout { .. } => {
            "Check that ApiUrl (SIGNPATH_API_URL) is the gateway's URL, that the gateway is running, and any proxy (SIGNPATH_HTTP_PROXY)."
        }
        E::TlsHandshake { .. } | E::Tls(_) => {
            "Set TlsCaBundle (SIGNPATH_TLS_CA_BUNDLE) to the CA file of the gateway's TLS certificate, and use in ApiUrl the host name that certificate is for."
        }
        E::Unauthenticated { .. } => {
            "Set SIGNPATH_API_TOKEN to a token of this organization (signpath-gateway token add prints one) and check SIGNPATH_ORGANIZATION_ID."
        }
        E::NotFound { .. } | E::Forbidden { .. } => {
            "Check SIGNPATH_ORGANIZATION_ID and that ApiUrl ends where the API starts (https://host:port, or https://app.signpath.io/Api)."
        }
        E::InvalidApiUrl { .. } | E::Config(_) | E::File { .. } => {
            "Correct the setting the message names."
        }
        _ => "Check the gateway's own log; `signpath-gateway doctor` checks its side.",
    };
    let what = match error {
        E::Unauthenticated { .. } => {
            format!("the gateway at {url} rejected the API token for organization {organization}: {error}")
        }
        _ => format!("the gateway at {url}: {error}"),
    };
    problem(what, fix)
}

/// Compares the gateway's `Date` with ours.
fn clock_finding(date: Option<&str>, now: SystemTime) -> Finding {
    let Some(theirs) = date.and_then(|d| httpdate::parse_http_date(d).ok()) else {
        return Finding::Ok("the gateway sent no Date header; clock skew not checked".into());
    };
    let (skew, ahead) = match now.duration_since(theirs) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    if skew > MAX_CLOCK_SKEW {
        problem(
            format!(
                "this machine's clock is {} s {} the gateway's",
                skew.as_secs(),
                if ahead { "ahead of" } else { "behind" }
            ),
            "Synchronise the clock (for example `timedatectl set-ntp true`), or the gateway's if it is the one that is wrong.",
        )
    } else {
        Finding::Ok(format!(
            "the clock agrees with the gateway's (within {} s)",
            skew.as_secs()
        ))
    }
}

/// The log directory and file, and the configuration file: private to this user.
fn check_files(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let directory = &config.log_file_directory;
    if directory.exists() {
        match common::logging::check_log_directory(directory) {
            Ok(()) => findings.push(Finding::Ok(format!(
                "the log directory {} is yours",
                directory.display()
            ))),
            Err(error) => findings.push(problem(
                error.to_string(),
                format!(
                    "Use a directory only you can write to: unset SIGNPATH_LOG_FILE_DIRECTORY for the default, or chmod 700 {}.",
                    directory.display()
                ),
            )),
        }
        let file = common::logging::log_file_path(config, "Notation");
        if let Ok(meta) = std::fs::symlink_metadata(&file) {
            if meta.file_type().is_symlink() {
                findings.push(problem(
                    format!("the log file {} is a symbolic link", file.display()),
                    "Remove the link; the plugin never writes through one and logs nothing while it is there.",
                ));
            } else if meta.permissions().mode() & 0o077 != 0
                || meta.uid() != common::logging::current_user_id()
            {
                findings.push(problem(
                    format!(
                        "the log file {} can be read by other users (mode {:o})",
                        file.display(),
                        meta.permissions().mode() & 0o777
                    ),
                    format!("chmod 600 {}.", file.display()),
                ));
            }
        }
    }
    if config.config_file_is_shared() {
        let path = config
            .config_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        findings.push(problem(
            format!("the configuration file {path} can be read by other users and may hold the API token"),
            format!("chmod 600 {path}."),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_beyond_a_minute_is_a_problem() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now - Duration::from_secs(300));
        assert!(matches!(
            clock_finding(Some(&date), now),
            Finding::Problem { what, .. } if what == "this machine's clock is 300 s ahead of the gateway's"
        ));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert!(matches!(clock_finding(Some(&date), now), Finding::Ok(_)));
    }
}
