//! `signpath-gateway doctor --config FILE`: checks what an operator gets wrong before `serve` meets a client — the
//! configuration itself (unknown keys, and every rule `serve` applies: `config/validate.rs`'s findings, worded as
//! `serve` refuses them), the TLS certificate and key, the HSM module, token
//! and PIN, each policy's key (in the HSM, and the one its certificate names) and certificate chain, the modes of
//! the files that hold secrets, and who besides their owner could write gateway.toml, the PIN file or the database.
//! Each problem is printed with its fix in one sentence; any problem makes the exit status non-zero. Notes say what
//! works but may surprise (an issuer audience GitHub Actions clients do not fetch by default) and change nothing.
//! Clock skew cannot be judged from the gateway alone and is not checked.
//!
//! Owns these checks only; it must never import `http/`. `report.rs` holds the findings, `capacity.rs` the checks of
//! what configured limits cover (release groups, connection caps).

mod capacity;
mod report;
#[cfg(test)]
mod tests;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use common::x509::ParsedCertificate;

use super::CliResult;
use crate::config::{resolve, ConfigError, GatewayConfig, PolicyConfig};
use crate::hsm;
use capacity::{limits, release_groups};
use report::Report;

pub fn run(config_path: &Path) -> CliResult {
    let report = diagnose(config_path);
    for line in &report.passed {
        println!("ok       {line}");
    }
    for n in &report.notes {
        println!(
            "note     {}\n         to do: {}",
            super::terminal::escape(&n.what),
            n.fix
        );
    }
    for p in &report.problems {
        println!(
            "PROBLEM  {}\n         fix: {}",
            super::terminal::escape(&p.what),
            p.fix
        );
    }
    println!("clock skew is not checked: compare this host's clock with an NTP server (`timedatectl`, `chronyc tracking`).");
    if report.problems.is_empty() {
        println!("no problems found");
        Ok(())
    } else {
        Err(format!("{} problem(s) found", report.problems.len()).into())
    }
}

/// Every finding about the setup of `config_path`. A file that parses is checked against every rule (all broken
/// ones are reported, where `serve` names the first) and then against the files and the HSM it names.
fn diagnose(config_path: &Path) -> Report {
    let mut report = Report::default();
    match GatewayConfig::read(config_path) {
        Ok((config, base)) => {
            rules(config_path, &config, &mut report);
            check(&config, &base, &mut report);
        }
        Err(e @ ConfigError::Shared(_)) => report.problem(
            e.to_string(),
            "Let only its owner (root or the gateway's user) write it; `serve` refuses it, and a running gateway keeps the configuration it has.",
        ),
        Err(e) => report.problem(
            e.to_string(),
            "Correct gateway.toml (a key the gateway does not know is refused, not ignored: check its spelling against docs/configuration.md); `serve` refuses it as it is, and a running gateway keeps the configuration it has.",
        ),
    }
    report
}

/// The rules `serve` applies when it loads gateway.toml (`config/validate.rs`): each broken one is reported in the
/// words `serve` refuses the file with.
fn rules(config_path: &Path, config: &GatewayConfig, report: &mut Report) {
    let found = crate::config::findings(config);
    if found.is_empty() {
        report.ok("gateway.toml parses, has no unknown key, only its owner can write it, and keeps every rule `serve` applies (approvers and k of n, trusted issuers and origin rules, hash algorithms, certificate chains, JWKS sources)");
    }
    for invalid in found {
        let error = ConfigError::Invalid {
            path: config_path.display().to_string(),
            invalid,
        };
        report.problem(
            error.to_string(),
            "Correct gateway.toml as the message says (docs/configuration.md, docs/governance.md); `serve` refuses it as it is, and a running gateway keeps the configuration it has.",
        );
    }
}

fn check(config: &GatewayConfig, base: &Path, report: &mut Report) {
    let pin_file = resolve(base, &config.hsm.pin_file);
    private_file(&pin_file, "the HSM PIN file", report);
    owner_only_writes(&pin_file, "the HSM PIN file", report);
    private_file(&resolve(base, &config.tls.key), "the TLS key", report);
    let audit_db = resolve(base, &config.audit_db);
    if audit_db.exists() {
        private_file(&audit_db, "the audit database", report);
        owner_only_writes(&audit_db, "the audit database", report);
    }
    issuers(config, report);
    tls(config, base, report);
    keys(config, base, report);
    release_groups(config, report);
    limits(config, report);
}

/// gateway.toml, the PIN file and the database are refused by `serve` when someone else could write them.
fn owner_only_writes(path: &Path, what: &str, report: &mut Report) {
    match crate::fsutil::check_owner_only_writes(path, what) {
        Ok(()) => report.ok(format!("{what} {} is written by its owner only", path.display())),
        // A file that cannot be read is reported by `private_file`.
        Err(crate::fsutil::SharedFile::Unreadable { .. }) => {}
        Err(e) => report.problem(
            e.to_string(),
            "Let only its owner (root or the gateway's user) write the file and its directory; `serve` refuses it.",
        ),
    }
}

/// The audience and repository host each trusted issuer's tokens are checked for. An audience other than the
/// gateway's URL works, but GitHub Actions clients fetch tokens only for the gateway's URL unless told otherwise.
fn issuers(config: &GatewayConfig, report: &mut Report) {
    let url_audience = common::protocol::identity_token_audience_of(&config.public_url);
    for issuer in &config.trusted_issuers {
        let audience = issuer.audience_or(&config.public_url);
        report.ok(format!(
            "trusted issuer {}: tokens for the audience {audience:?}; Origin.RepositoryData.Url must name a repository on {}",
            issuer.name,
            issuer.repository_host()
        ));
        if audience != url_audience {
            report.note(
                format!(
                    "trusted issuer {} verifies tokens for the audience {audience:?}, not the gateway's URL {url_audience:?}: clients on GitHub Actions fetch tokens only for the gateway's URL as they know it, and refuse a gateway that asks for another audience",
                    issuer.name
                ),
                format!(
                    "Remove `audience` from [[trusted_issuers]] {} (it then defaults to the gateway's URL), or set SIGNPATH_IDENTITY_TOKEN_AUDIENCE={audience} in the jobs that sign. GitLab jobs name the audience in `id_tokens` and need neither.",
                    issuer.name
                ),
            );
        }
    }
}

/// A file holding a secret must be readable by its owner only.
fn private_file(path: &Path, what: &str, report: &mut Report) {
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => report.problem(
            format!(
                "{what} {} has mode {:o}: others can read it",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
            format!("Run `chmod 600 {}`.", path.display()),
        ),
        Ok(_) => report.ok(format!("{what} {} is private (0600)", path.display())),
        Err(e) => report.problem(
            format!("{what} {}: {e}", path.display()),
            "Point gateway.toml at the file, or create it (mode 0600).",
        ),
    }
}

fn tls(config: &GatewayConfig, base: &Path, report: &mut Report) {
    let cert_path = resolve(base, &config.tls.certificate);
    let key_path = resolve(base, &config.tls.key);
    let certs = std::fs::read(&cert_path)
        .map_err(|e| e.to_string())
        .and_then(|pem| {
            rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        });
    let key = std::fs::read(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|pem| rustls_pemfile::private_key(&mut pem.as_slice()).map_err(|e| e.to_string()));
    let (certs, key) = match (certs, key) {
        (Ok(certs), Ok(Some(key))) if !certs.is_empty() => (certs, key),
        (Err(e), _) | (_, Err(e)) => {
            return report.problem(
                format!("the TLS certificate or key cannot be read: {e}"),
                "Point [tls] at a PEM certificate chain and its PEM private key.",
            )
        }
        _ => {
            return report.problem(
                format!(
                    "{} or {} holds no certificate or key",
                    cert_path.display(),
                    key_path.display()
                ),
                "Point [tls] at a PEM certificate chain and its PEM private key.",
            )
        }
    };
    let provider = rustls::crypto::ring::default_provider();
    match provider
        .key_provider
        .load_private_key(key)
        .map(|signing_key| rustls::sign::CertifiedKey::new(certs.clone(), signing_key))
        .map_err(|e| e.to_string())
        .and_then(|certified| certified.keys_match().map_err(|e| e.to_string()))
    {
        Ok(()) => report.ok("the TLS key matches its certificate"),
        Err(e) => report.problem(
            format!("the TLS key does not match the certificate: {e}"),
            "Configure the key that belongs to the certificate (or issue a new certificate for the key).",
        ),
    }
    match ParsedCertificate::from_der(&certs[0]) {
        Ok(leaf) => {
            expiry(&leaf, "the TLS certificate", report);
            let host = config
                .public_url
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_owned();
            if host.is_empty() {
                report.problem(
                    format!("public_url {:?} has no host name", config.public_url),
                    "Set public_url to the https:// URL clients use.",
                );
            } else if names_host(&leaf, &host) {
                report.ok(format!("the TLS certificate is valid for {host} (public_url)"));
            } else {
                report.problem(
                    format!("the TLS certificate is not valid for {host}, the host of public_url"),
                    "Issue the certificate for the name clients use, or correct public_url.",
                );
            }
        }
        Err(e) => report.problem(
            format!("the TLS certificate cannot be parsed: {e}"),
            "Configure a PEM X.509 certificate.",
        ),
    }
}

/// Whether the certificate's subjectAltName holds `host` (a DNS name, or an IP address).
fn names_host(cert: &ParsedCertificate, host: &str) -> bool {
    use der::Decode as _;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let ip: Option<std::net::IpAddr> = host.trim_start_matches('[').trim_end_matches(']').parse().ok();
    let extensions = cert
        .inner()
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    extensions
        .iter()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .filter_map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
        .flat_map(|san| san.0)
        .any(|name| match (name, ip) {
            (GeneralName::DnsName(dns), None) => dns.as_str().eq_ignore_ascii_case(host),
            (GeneralName::IpAddress(octets), Some(std::net::IpAddr::V4(v4))) => {
                octets.as_bytes() == v4.octets()
            }
            (GeneralName::IpAddress(octets), Some(std::net::IpAddr::V6(v6))) => {
                octets.as_bytes() == v6.octets()
            }
            _ => false,
        })
}

fn expiry(cert: &ParsedCertificate, what: &str, report: &mut Report) {
    let validity = &cert.inner().tbs_certificate.validity;
    let not_after = validity.not_after.to_unix_duration();
    let not_before = validity.not_before.to_unix_duration();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if now > not_after {
        report.problem(
            format!("{what} ({}) has expired", cert.subject()),
            "Renew the certificate and point gateway.toml at the new one.",
        );
    } else if now < not_before {
        report.problem(
            format!("{what} ({}) is not valid yet", cert.subject()),
            "Check this host's clock, or wait until the certificate's notBefore.",
        );
    } else {
        report.ok(format!("{what} ({}) is within its validity", cert.subject()));
    }
}

fn keys(config: &GatewayConfig, base: &Path, report: &mut Report) {
    if let Some(conf) = &config.hsm.softhsm2_conf {
        hsm::use_softhsm_conf(&resolve(base, conf));
    }
    let pin = match config.hsm.read_pin(base) {
        Ok(pin) => pin,
        Err(_) => return, // reported with the file's mode and writers
    };
    let pkcs11 = match hsm::open(&config.hsm.module) {
        Ok(p) => p,
        Err(e) => {
            return report.problem(
                format!(
                    "the HSM module {} cannot be loaded: {e}",
                    config.hsm.module.display()
                ),
                "Install the HSM's PKCS#11 library and set [hsm] module to its path.",
            )
        }
    };
    report.ok(format!("the HSM module {} loads", config.hsm.module.display()));
    let signer = match hsm::Signer::new(pkcs11, &config.hsm.token_label, &pin) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            return report.problem(
                format!("cannot log in to token {:?}: {e}", config.hsm.token_label),
                "Check [hsm] token_label and that the PIN file holds the token's user PIN.",
            )
        }
    };
    report.ok(format!("logged in to token {:?}", config.hsm.token_label));
    for project in &config.projects {
        for policy in &project.policies {
            let name = format!("{}/{}", project.slug, policy.slug);
            match signer.find_key(&policy.key_label) {
                Ok(_) => {
                    report.ok(format!("policy {name}: key {:?} is in the HSM", policy.key_label));
                    certificate_is_for_the_key(&signer, &name, policy, base, report);
                }
                Err(e) => report.problem(
                    format!("policy {name}: {e}"),
                    format!(
                        "Create the key labelled {:?} in the token, or correct key_label.",
                        policy.key_label
                    ),
                ),
            }
            chain(&name, &policy.certificate_chain, base, report);
            usage(&name, &policy.certificate_chain, base, report);
            revocation(
                config,
                base,
                (&project.slug, &policy.slug),
                &policy.certificate_chain,
                report,
            );
        }
    }
    if let Some(tsa) = &config.timestamping {
        if let Some(cert) = first_certificate(&tsa.certificate_chain, base) {
            match crate::pki::check::tsa_usage(&cert) {
                Ok(()) => report.ok("the TSA's certificate is for time stamping only (critical timeStamping)"),
                Err(e) => report.problem(
                    format!("[timestamping]: {e}"),
                    "Issue the TSA a certificate with a critical extended key usage of timeStamping only (the one `signpath-gateway init` issues is) and point certificate_chain at it.",
                ),
            }
        }
    }
}

/// The first certificate of a chain's first file, if it can be read (`chain` reports it otherwise).
fn first_certificate(files: &[std::path::PathBuf], base: &Path) -> Option<x509_cert::Certificate> {
    use der::Decode as _;
    let pem = std::fs::read(resolve(base, files.first()?)).ok()?;
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    x509_cert::Certificate::from_der(&der).ok()
}

/// No certificate of the policy's chain is revoked in `[pki] revocations`: `serve` refuses every signing request of
/// a policy whose chain holds one (`signing-certificate-revoked`) until `policy rotate` replaces it.
fn revocation(
    config: &GatewayConfig,
    base: &Path,
    (project, slug): (&str, &str),
    files: &[std::path::PathBuf],
    report: &mut Report,
) {
    use crate::pki::revocations::{gateway_cas, issued_by, Revocations};
    let Some(pki) = &config.pki else {
        return;
    };
    let Ok(cas) = gateway_cas(pki, base) else {
        return;
    };
    let chain: Vec<Vec<u8>> = files
        .iter()
        .filter_map(|file| std::fs::read(resolve(base, file)).ok())
        .flat_map(|pem| {
            rustls_pemfile::certs(&mut pem.as_slice())
                .filter_map(|c| Some(c.ok()?.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let path = resolve(base, &pki.revocations);
    let revocations = match Revocations::load(&path) {
        Ok(r) => r,
        Err(e) => {
            return report.problem(
                e.to_string(),
                "Restore the file `signpath-gateway revoke` writes; `serve` keeps the revocations it read before.",
            )
        }
    };
    match revocations.revocation_of(&issued_by(&cas, &chain)) {
        Some(r) => report.problem(
            format!(
                "policy {project}/{slug}: its chain holds {} (serial {}), revoked on {} ({}); the gateway refuses every signing request of the policy",
                r.subject,
                r.serial,
                r.revoked_at,
                r.reason.map_or("unspecified", |reason| reason.name())
            ),
            format!(
                "Give the policy a new key and certificate: `signpath-gateway policy rotate --config {} --project {project} --slug {slug}`.",
                base.join("gateway.toml").display()
            ),
        ),
        None => report.ok(format!(
            "policy {project}/{slug}: no certificate of its chain is revoked"
        )),
    }
}

/// The policy's certificate allows code signing and nothing more (`pki::check::leaf_usage`, the rule
/// `policy certificate import` applies): a certificate put in force before that rule lets every submitter sign as
/// a TLS client, an OCSP responder or a CA.
fn usage(policy: &str, files: &[std::path::PathBuf], base: &Path, report: &mut Report) {
    let Some(leaf) = first_certificate(files, base) else {
        return;
    };
    match crate::pki::check::leaf_usage(&leaf) {
        Ok(()) => report.ok(format!("policy {policy}: its certificate allows code signing only")),
        Err(e) => report.problem(
            format!("policy {policy}: {e}"),
            "Put a code-signing-only certificate in force (`signpath-gateway policy rotate`, then, for an outside CA, `policy csr` and `policy certificate import`) and revoke this one (`signpath-gateway revoke`, or at the CA that issued it).",
        ),
    }
}

/// The policy's certificate names the HSM key's public key. A certificate for another key would let `serve` start
/// and every signature fail its verification, at the gateway or at the verifier.
fn certificate_is_for_the_key(
    signer: &hsm::Signer,
    name: &str,
    policy: &PolicyConfig,
    base: &Path,
    report: &mut Report,
) {
    use der::{Decode as _, Encode as _};
    let Some(first) = policy.certificate_chain.first() else {
        return;
    };
    let path = resolve(base, first);
    // An unreadable chain is reported by `chain`.
    let Some(leaf) = std::fs::read(&path)
        .ok()
        .and_then(|pem| rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok())
        .and_then(|der| x509_cert::Certificate::from_der(&der).ok())
        .and_then(|cert| cert.tbs_certificate.subject_public_key_info.to_der().ok())
    else {
        return;
    };
    match signer.public_key(&policy.key_label) {
        Ok(hsm) if hsm == leaf => report.ok(format!(
            "policy {name}: its certificate is for key {:?}",
            policy.key_label
        )),
        Ok(_) => report.problem(
            format!(
                "policy {name}: {} is a certificate for another key than {:?} in the HSM",
                path.display(),
                policy.key_label
            ),
            "Put the certificate the CA issued for this key in force (`signpath-gateway policy certificate import`), or correct key_label.",
        ),
        Err(e) => report.problem(
            format!("policy {name}: the public key of {:?} cannot be read: {e}", policy.key_label),
            "Keep the key pair's public key object in the token beside its private key, with the same label.",
        ),
    }
}

/// The policy's certificates parse, each is issued by the next, and none has expired.
fn chain(policy: &str, files: &[std::path::PathBuf], base: &Path, report: &mut Report) {
    let mut certs = Vec::new();
    for file in files {
        let path = resolve(base, file);
        let parsed = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|pem| {
            rustls_pemfile::certs(&mut pem.as_slice())
                .map(|c| {
                    c.map_err(|e| e.to_string())
                        .and_then(|c| ParsedCertificate::from_der(&c).map_err(|e| e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
        });
        match parsed {
            Ok(parsed) => certs.extend(parsed),
            Err(e) => {
                return report.problem(
                    format!("policy {policy}: {}: {e}", path.display()),
                    "Point certificate_chain at PEM certificates: the policy's, then its CAs up to the root.",
                )
            }
        }
    }
    for pair in certs.windows(2) {
        if pair[0].issuer_der() != pair[1].subject_der() {
            return report.problem(
                format!(
                    "policy {policy}: {} is not issued by {}",
                    pair[0].subject(),
                    pair[1].subject()
                ),
                "List certificate_chain in order: the policy's certificate, then each issuer up to the root.",
            );
        }
    }
    for cert in &certs {
        expiry(cert, &format!("policy {policy}: certificate"), report);
    }
}
