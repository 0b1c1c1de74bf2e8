//! `signpath-gateway policy …`: a policy's key and certificate over their life. `add` creates the key in the HSM
//! (pending until a certificate is imported), `csr` writes a PKCS#10 request signed by that key, `certificate
//! import` checks the chain the CA issued (`pki::check`) and only then puts key and chain in force, `rotate`
//! starts the same for a policy in force (at once when the gateway's own CA issued its certificate). A running
//! gateway picks up gateway.toml's change within a second, so nothing stops. Never imports `http/`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::keys::KeySpec;
use common::x509::{pem_certificates, ParsedCertificate};
use der::Decode;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

use super::CliResult;
use crate::config::{resolve, GatewayConfig, PolicyConfig, ProjectConfig};
use crate::fsutil::write_public;
use crate::hsm::{self, Signer};
use crate::pki::{self, hsm_key::HsmKey};

/// The HSM of a setup, logged in.
pub fn open_hsm(
    config: &GatewayConfig,
    base: &Path,
) -> Result<Signer, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(conf) = &config.hsm.softhsm2_conf {
        hsm::use_softhsm_conf(&resolve(base, conf));
    }
    let pin = config.hsm.read_pin(base)?;
    let pkcs11 = hsm::open(&config.hsm.module)?;
    Ok(Signer::new(pkcs11, &config.hsm.token_label, &pin)?)
}

/// A key made for a policy that has no certificate for it yet: `pki/pending.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingKey {
    project: String,
    slug: String,
    key_label: String,
    key_spec: String,
    #[serde(default)]
    submitters: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    #[serde(default)]
    key: Vec<PendingKey>,
}

impl Pending {
    fn path(base: &Path) -> PathBuf {
        base.join("pki/pending.toml")
    }

    fn load(base: &Path) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match std::fs::read_to_string(Self::path(base)) {
            Ok(text) => Ok(toml::from_str(&text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, base: &Path) -> CliResult {
        std::fs::create_dir_all(base.join("pki"))?;
        let path = Self::path(base);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, toml::to_string_pretty(self)?)?;
        std::fs::rename(tmp, path)?;
        Ok(())
    }

    fn find(&self, project: &str, slug: &str) -> Option<&PendingKey> {
        self.key.iter().find(|k| k.project == project && k.slug == slug)
    }
}

fn policy<'c>(config: &'c GatewayConfig, project: &str, slug: &str) -> Option<&'c PolicyConfig> {
    config
        .projects
        .iter()
        .filter(|p| p.slug == project)
        .flat_map(|p| &p.policies)
        .find(|p| p.slug == slug)
}

fn new_key_label(project: &str, slug: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    Ok(format!("{project}/{slug}/{}", now.as_millis()))
}

/// `policy add`: a new policy's key in the HSM, pending until its certificate is imported.
pub fn add(config_path: &Path, project: &str, slug: &str, spec: &str, submitters: &[String]) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let spec = KeySpec::from_notation_name(spec).ok_or_else(|| {
        format!("{spec:?} is not a key spec; use EC-256, EC-384, EC-521, RSA-2048, RSA-3072 or RSA-4096")
    })?;
    if policy(&config, project, slug).is_some() {
        return Err(format!(
            "there is already a signing policy {project}/{slug}; `policy rotate` gives it a new key"
        )
        .into());
    }
    let mut pending = Pending::load(&base)?;
    if pending.find(project, slug).is_some() {
        return Err(format!("{project}/{slug} already has a key waiting for its certificate; run `policy csr` and `policy certificate import`").into());
    }
    let mut submitter_ids = Vec::new();
    for s in submitters {
        let token = config
            .tokens
            .iter()
            .find(|t| &t.name == s || &t.id == s)
            .ok_or_else(|| format!("there is no token {s:?}"))?;
        submitter_ids.push(token.id.clone());
    }
    let signer = open_hsm(&config, &base)?;
    let key_label = new_key_label(project, slug)?;
    signer.generate_key(spec, &key_label)?;
    pending.key.push(PendingKey {
        project: project.to_owned(),
        slug: slug.to_owned(),
        key_label: key_label.clone(),
        key_spec: spec.notation_name().to_owned(),
        submitters: submitter_ids,
    });
    pending.save(&base)?;
    println!("created the {spec} key {key_label:?} in the HSM for {project}/{slug}");
    println!(
        "  next: signpath-gateway policy csr --config {} --project {project} --slug {slug} --out {slug}.csr",
        config_path.display()
    );
    Ok(())
}

/// The key a CSR or an import is for: the pending one, else the one in force.
fn key_label_for(
    config: &GatewayConfig,
    base: &Path,
    project: &str,
    slug: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(k) = Pending::load(base)?.find(project, slug) {
        return Ok(k.key_label.clone());
    }
    policy(config, project, slug)
        .map(|p| p.key_label.clone())
        .ok_or_else(|| {
            format!("there is no signing policy {project}/{slug}; create its key with `policy add`").into()
        })
}

/// `policy csr`: a PKCS#10 request signed by the policy's (pending) key, to stdout or `out`.
pub fn csr(
    config_path: &Path,
    project: &str,
    slug: &str,
    subject: Option<&str>,
    out: Option<&Path>,
) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let label = key_label_for(&config, &base, project, slug)?;
    let signer = open_hsm(&config, &base)?;
    let key = HsmKey::open(&signer, &label)?;
    let subject = subject.map_or_else(|| format!("CN={project}/{slug}"), str::to_owned);
    let pem = pki::csr::notary_leaf_request(&key, &subject)?;
    match out {
        Some(path) => {
            write_public(path, pem.as_bytes())?;
            eprintln!(
                "wrote the certificate signing request for {project}/{slug} to {}",
                path.display()
            );
        }
        None => print!("{pem}"),
    }
    Ok(())
}

/// `policy certificate import`: checks `chain_file` against the policy's (pending) key and Notary's rules, then
/// puts key and chain in force.
pub fn import(config_path: &Path, project: &str, slug: &str, chain_file: &Path) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let label = key_label_for(&config, &base, project, slug)?;
    let pem = std::fs::read(chain_file).map_err(|e| format!("cannot read {}: {e}", chain_file.display()))?;
    let chain = pem_certificates(&pem, &chain_file.display().to_string())?;
    let signer = open_hsm(&config, &base)?;
    let spki = signer.public_key(&label)?;
    pki::check::policy_chain(&chain, &spki, SystemTime::now()).map_err(|e| {
        format!(
            "{} cannot be put in force for {project}/{slug}: {e}",
            chain_file.display()
        )
    })?;
    put_in_force(config_path, project, slug, &label, &chain)
}

/// Writes the chain next to the setup and points the policy (created if new) at it and at `label`.
fn put_in_force(config_path: &Path, project: &str, slug: &str, label: &str, chain: &[Vec<u8>]) -> CliResult {
    let (mut config, base) = GatewayConfig::load(config_path)?;
    let leaf = ParsedCertificate::from_der(chain.first().ok_or("empty chain")?)?;
    let relative = PathBuf::from(format!(
        "pki/{project}-{slug}-{}.pem",
        &leaf.sha256_fingerprint()[..16]
    ));
    let mut text = String::new();
    for der in chain {
        text.push_str(&pki::pem(&Certificate::from_der(der)?)?);
    }
    std::fs::create_dir_all(base.join("pki"))?;
    write_public(&base.join(&relative), text.as_bytes())?;
    let mut pending = Pending::load(&base)?;
    let waiting = pending.find(project, slug).cloned();
    match config
        .projects
        .iter_mut()
        .filter(|p| p.slug == project)
        .flat_map(|p| p.policies.iter_mut())
        .find(|p| p.slug == slug)
    {
        Some(p) => {
            p.key_label = label.to_owned();
            p.certificate_chain = vec![relative];
        }
        None => {
            let new = PolicyConfig {
                slug: slug.to_owned(),
                id: uuid::Uuid::new_v4().to_string(),
                key_label: label.to_owned(),
                certificate_chain: vec![relative],
                submitters: waiting.map(|w| w.submitters).unwrap_or_default(),
                hash_algorithms: crate::config::default_hash_algorithms(),
                approval: None,
                origin: None,
            };
            match config.projects.iter_mut().find(|p| p.slug == project) {
                Some(p) => p.policies.push(new),
                None => config.projects.push(ProjectConfig {
                    slug: project.to_owned(),
                    policies: vec![new],
                    artifact_configurations: Vec::new(),
                }),
            }
        }
    }
    config.save(config_path)?;
    pending.key.retain(|k| !(k.project == project && k.slug == slug));
    pending.save(&base)?;
    println!(
        "{project}/{slug} now signs with key {label:?} and certificate {} (SHA-256 {})",
        leaf.subject(),
        leaf.sha256_fingerprint()
    );
    Ok(())
}

/// `policy rotate`: a new key for a policy in force. Issued and in force at once when the gateway's own CA issued
/// the current certificate; otherwise pending, for `policy csr` and `policy certificate import`.
pub fn rotate(config_path: &Path, project: &str, slug: &str, spec: Option<&str>) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    let current = policy(&config, project, slug)
        .ok_or_else(|| format!("there is no signing policy {project}/{slug}; create it with `policy add`"))?;
    let first = resolve(
        &base,
        current
            .certificate_chain
            .first()
            .ok_or("the policy has no certificate")?,
    );
    let pem = std::fs::read(&first).map_err(|e| format!("{}: {e}", first.display()))?;
    let leaf_der = pem_certificates(&pem, &first.display().to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} holds no certificate", first.display()))?;
    let leaf = ParsedCertificate::from_der(&leaf_der)?;
    let spec = match spec {
        Some(s) => KeySpec::from_notation_name(s).ok_or_else(|| format!("{s:?} is not a key spec"))?,
        None => leaf
            .public_key()?
            .kind()
            .key_spec()
            .ok_or("the current key is no Notary key spec; pass --key-spec")?,
    };
    let signer = open_hsm(&config, &base)?;
    let cas = match &config.pki {
        Some(pki_config) => pki::ca::load(pki_config, &base, &signer)?,
        None => Vec::new(),
    };
    let label = new_key_label(project, slug)?;
    let spki = signer.generate_key(spec, &label)?;
    let Some(issuer) = pki::ca::issuer_of(&cas, leaf.inner()) else {
        let mut pending = Pending::load(&base)?;
        pending.key.retain(|k| !(k.project == project && k.slug == slug));
        pending.key.push(PendingKey {
            project: project.to_owned(),
            slug: slug.to_owned(),
            key_label: label.clone(),
            key_spec: spec.notation_name().to_owned(),
            submitters: Vec::new(),
        });
        pending.save(&base)?;
        println!("created the {spec} key {label:?}; {project}/{slug} keeps signing with the old one until the new certificate is imported");
        println!("  next: signpath-gateway policy csr --config {} --project {project} --slug {slug} --out {slug}.csr", config_path.display());
        return Ok(());
    };
    let pki_config = config.pki.as_ref().ok_or("no [pki]")?;
    let new_leaf = pki::leaf(
        &format!("{project}/{slug}"),
        &spki,
        &issuer.ca,
        &pki_config.crl_url_of(&issuer.name),
    )?;
    // The chain above the new leaf: the issuer and its issuers, as the gateway's CAs hold them.
    let mut chain = vec![der::Encode::to_der(&new_leaf)?];
    let mut above = &issuer.ca.cert;
    loop {
        chain.push(der::Encode::to_der(above)?);
        if above.tbs_certificate.issuer == above.tbs_certificate.subject {
            break;
        }
        match pki::ca::issuer_of(&cas, above) {
            Some(next) if chain.len() <= cas.len() + 1 => above = &next.ca.cert,
            _ => {
                return Err(
                    format!("the gateway's CA {} has no issuer among [pki]'s CAs", issuer.name).into(),
                )
            }
        }
    }
    pki::check::policy_chain(&chain, &spki, SystemTime::now())?;
    drop(cas);
    put_in_force(config_path, project, slug, &label, &chain)
}
