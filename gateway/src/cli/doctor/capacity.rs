//! `doctor`'s checks of what the configured limits cover: a release group's signatures, and the connection caps
//! within the open-file limit. Must never import `http/`.

use super::report::Report;
use crate::config::GatewayConfig;
use crate::open_files::{self, Budget};

/// What each release group's limit covers, now that it counts signatures rather than requests: an artifact makes
/// one per image and signature format, so a limit sized in requests lets fewer tarballs through. A limit that
/// leaves no room for one image of an artifact configuration is a problem: such tarballs always wait.
pub fn release_groups(config: &GatewayConfig, report: &mut Report) {
    for project in &config.projects {
        let per_image = project
            .artifact_configurations
            .iter()
            .map(|c| (c.slug.as_str(), c.signature_formats()))
            .collect::<Vec<_>>();
        for policy in &project.policies {
            let Some(limits) = policy.approval.as_ref().and_then(|a| a.release_group.as_ref()) else {
                continue;
            };
            let name = format!("{}/{}", project.slug, policy.slug);
            let room = limits.max_signatures.saturating_sub(1);
            let shapes = per_image
                .iter()
                .map(|(slug, n)| format!("{n} per image with artifact configuration {slug}"))
                .chain((per_image.is_empty()).then(|| "1 per image for a tarball".to_owned()))
                .collect::<Vec<_>>()
                .join(", ");
            report.ok(format!(
                "policy {name}: a release group's approval covers {} signatures, the approved request's included \
                 (a hash is 1; {shapes})",
                limits.max_signatures
            ));
            for (slug, n) in &per_image {
                if *n > room {
                    report.problem(
                        format!(
                            "policy {name}: release group max_signatures = {} leaves {room} after the approved hash, \
                             fewer than the {n} signatures one image makes with artifact configuration {slug}: \
                             no tarball is ever covered by a group's approval",
                            limits.max_signatures
                        ),
                        "Raise max_signatures to the signatures a release makes (images × signature formats, plus \
                         the approved request), or drop release_group if every tarball is to be approved alone.",
                    );
                }
            }
        }
    }
}

/// The connection caps against the open-file limit `serve` will raise itself to (this shell's hard limit: a
/// service manager may set another, as systemd's `LimitNOFILE=` does), and the limits operators have met as
/// changed behaviour.
pub fn limits(config: &GatewayConfig, report: &mut Report) {
    let server = &config.server;
    let budget = Budget::within(open_files::hard_limit(), server, config.pki.is_some());
    if budget.lowered {
        report.problem(
            format!(
                "the connection caps do not fit the open-file limit, and serve lowers them: {}",
                budget.describe(server)
            ),
            "Raise the hard limit on open files (systemd `LimitNOFILE=`, `ulimit -Hn`), or lower max_connections \
             and crl_max_connections in [server].",
        );
    } else {
        report.ok(budget.describe(server));
    }
    if let Some(pki) = &config.pki {
        report.ok(format!(
            "the CRL listener on {} serves at most {} connections and closes one idle for {} s",
            pki.crl_listen, budget.crl, server.header_read_timeout_seconds
        ));
    }
    if config.timestamping.is_some() {
        match server.max_timestamps_per_address_per_second {
            0 => report.ok("timestamp queries are not limited per address (max_timestamps_per_address_per_second = 0)"),
            n => report.ok(format!(
                "timestamp queries beyond {n} a second from one address are answered 429 (max_timestamps_per_address_per_second)"
            )),
        }
    }
}
