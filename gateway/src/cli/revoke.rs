//! `signpath-gateway revoke`: puts a certificate the gateway's own CA issued (a policy's, or the intermediate CA's)
//! on its issuer's next CRL, with a reason and, optionally, the date since which the key is unfit. Writes
//! `[pki] revocations` (and, with a shared PostgreSQL store, the store, for replicas on other hosts); the running
//! gateway signs a new CRL on the next request for it, and a policy whose chain holds the certificate signs
//! nothing from its next request on, until `policy rotate`. Never imports `http/`.

use std::path::Path;
use std::time::SystemTime;

use common::x509::pem_certificates;
use der::Decode;
use x509_cert::Certificate;

use super::CliResult;
use crate::config::{resolve, GatewayConfig};
use crate::pki::check::signed_by;
use crate::pki::revocations::{format_time, parse_time, Reason, Revocations, Revoked};

fn first_certificate(path: &Path) -> Result<Certificate, Box<dyn std::error::Error + Send + Sync>> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let der = pem_certificates(&pem, &path.display().to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} holds no certificate", path.display()))?;
    Ok(Certificate::from_der(&der)?)
}

/// Whether the policy's chain files hold `cert`.
fn chain_holds(base: &Path, files: &[std::path::PathBuf], cert: &Certificate) -> bool {
    files.iter().any(|file| {
        std::fs::read(resolve(base, file))
            .ok()
            .and_then(|pem| pem_certificates(&pem, "chain").ok())
            .is_some_and(|ders| {
                ders.iter()
                    .any(|der| Certificate::from_der(der).is_ok_and(|c| c == *cert))
            })
    })
}

/// Revokes the certificate of `policy` (`Project/Policy`) or the one in `certificate`.
pub fn run(
    config_path: &Path,
    policy: Option<&str>,
    certificate: Option<&Path>,
    reason: Reason,
    invalidity_date: Option<&str>,
) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let pki = config
        .pki
        .as_ref()
        .ok_or("this setup has no [pki]: its certificates come from an outside CA, which revokes them")?;
    let cert = match (policy, certificate) {
        (Some(wanted), None) => {
            let (project, slug) = wanted
                .split_once('/')
                .ok_or_else(|| format!("{wanted:?} is not Project/Policy"))?;
            let p = config
                .projects
                .iter()
                .filter(|p| p.slug == project)
                .flat_map(|p| &p.policies)
                .find(|p| p.slug == slug)
                .ok_or_else(|| format!("there is no signing policy {wanted}"))?;
            let file = p
                .certificate_chain
                .first()
                .ok_or("the policy has no certificate")?;
            first_certificate(&resolve(&base, file))?
        }
        (None, Some(file)) => first_certificate(file)?,
        _ => return Err("name what to revoke: --policy Project/Policy or --certificate FILE".into()),
    };
    let mut issuer = None;
    for ca in &pki.cas {
        let ca_cert = first_certificate(&resolve(&base, &ca.certificate))?;
        if ca_cert.tbs_certificate.subject == cert.tbs_certificate.issuer
            && signed_by(&cert, &ca_cert).is_ok()
        {
            issuer = Some(ca.name.clone());
        }
    }
    let subject = cert.tbs_certificate.subject.to_string();
    let issuer = issuer.ok_or_else(|| {
        format!("{subject} was not issued by a CA of this gateway; revoke it at the CA that issued it")
    })?;
    let invalidity_date = invalidity_date
        .map(|d| parse_time(d).and_then(format_time))
        .transpose()?;
    let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    let path = resolve(&base, &pki.revocations);
    let mut revocations = Revocations::load(&path)?;
    if revocations.of(&issuer).any(|r| r.serial == serial) {
        return Err(format!("{subject} (serial {serial}) is already revoked").into());
    }
    let revoked = Revoked {
        issuer: issuer.clone(),
        serial: serial.clone(),
        subject: subject.clone(),
        revoked_at: format_time(SystemTime::now())?,
        reason: Some(reason),
        invalidity_date,
    };
    // The shared store first: replicas on other hosts stop signing with the certificate even if writing the file
    // then fails.
    if config
        .audit_db
        .to_str()
        .is_some_and(crate::store::postgres::is_postgres)
    {
        if let Some(shared) = crate::store::Stores::open(&base, &config.audit_db)?.revocations {
            shared.revoke_certificate(&revoked)?;
        }
    }
    revocations.revoked.push(revoked);
    revocations.save(&path)?;
    println!(
        "revoked {subject} (serial {serial}); it is on the next CRL of CA {issuer}: {}",
        pki.crl_url_of(&issuer)
    );
    let stopped: Vec<String> = config
        .projects
        .iter()
        .flat_map(|p| p.policies.iter().map(move |s| (p, s)))
        .filter(|(_, s)| chain_holds(&base, &s.certificate_chain, &cert))
        .map(|(p, s)| format!("{}/{}", p.slug, s.slug))
        .collect();
    for policy in stopped {
        let (project, slug) = policy.split_once('/').unwrap_or_default();
        println!(
            "{policy} signs nothing until it has a new key and certificate: signpath-gateway policy rotate --config {} --project {project} --slug {slug}",
            config_path.display()
        );
    }
    Ok(())
}
