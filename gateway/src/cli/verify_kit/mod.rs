//! `signpath-gateway verify-kit`: what one verifier needs to trust one signing policy's signatures, and nothing
//! else, as files in a new directory. This module reads the policy's trust material from gateway.toml and the setup
//! (its root CA, its leaf's subject and public key, the TSA's root, the Notary signing schemes its project uses)
//! and writes the files; one submodule per verifier turns that material into the verifier's own format with
//! serde types. Never imports `http/`, `signing/`, `store/` or `hsm`: a kit is public material only.

mod containers;
mod kubernetes;
mod notation;
mod ratify;

use std::path::{Path, PathBuf};

use common::x509::{pem_certificates, ParsedCertificate};
use der::pem::LineEnding;
use der::Encode;
use signpath_oci::notary::SigningScheme;

use super::CliResult;
use crate::config::{resolve, GatewayConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The verifiers a kit is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// notation: a trust policy and trust stores, laid out as notation's configuration directory.
    Notation,
    /// Ratify: `ratify verify --config` with its notation and cosign verifiers.
    Ratify,
    /// Kyverno: a ClusterPolicy with `verifyImages` (a Notary and a cosign key attestor).
    Kyverno,
    /// Sigstore policy-controller: a ClusterImagePolicy with the policy's cosign key.
    PolicyController,
    /// containers/image (skopeo, podman, CRI-O): `policy.json` and a `registries.d` entry for GPG signatures.
    ContainersPolicy,
}

/// `verify-kit`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// The signing policy, `Project/Policy`.
    #[arg(long)]
    pub policy: String,
    #[arg(long, value_enum)]
    pub format: Format,
    /// The directory to write the kit to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace files a kit of the same name already wrote in `--out`.
    #[arg(long)]
    pub force: bool,
    /// A repository the kit trusts the policy for (`registry.example.com/team/app`, or a registry host where the
    /// format allows it); repeatable. Required by notation, ratify and containers-policy.
    #[arg(long = "scope", visible_alias = "registry")]
    pub scopes: Vec<String>,
    /// The images a Kubernetes policy applies to (`registry.example.com/team/*`); repeatable. Required by kyverno
    /// and policy-controller.
    #[arg(long = "image-pattern")]
    pub image_patterns: Vec<String>,
    /// containers-policy: the OpenPGP public key of the policy's GPG key (`gpg --armor --export FPR`, docs/gpg.md).
    #[arg(long)]
    pub gpg_key: Option<PathBuf>,
    /// containers-policy: where verifiers read GPG signatures (the `lookaside` URL of registries.d).
    #[arg(long)]
    pub lookaside: Option<String>,
    /// notation, ratify: the signatures carry the gateway's RFC 3161 timestamp (`notation sign --timestamp-url`):
    /// the kit trusts the gateway's TSA, and notation then requires a timestamp on every signature.
    #[arg(long)]
    pub timestamped: bool,
    /// ratify: the registry speaks plain HTTP (a local test registry).
    #[arg(long)]
    pub plain_http: bool,
}

/// What a verifier may trust for one policy, all of it public.
#[derive(Debug, Clone)]
pub struct Trust {
    /// `Project/Policy`.
    pub policy: String,
    /// A name for files and trust stores: `signpath-project-policy`, in `[A-Za-z0-9_.-]`.
    pub name: String,
    /// The root CA of the policy's certificate chain, PEM.
    pub root_pem: String,
    /// The leaf certificate's subject, RFC 4514.
    pub leaf_subject: String,
    /// The policy's public key, PEM `PUBLIC KEY` (what cosign signatures verify with).
    pub public_key_pem: String,
    /// The gateway's TSA root, PEM, when timestamping is configured (and, in a kit, when signatures are timestamped).
    pub tsa_root_pem: Option<String>,
    /// Whether the project signs OCI artifacts with `notary.x509.signingAuthority`.
    pub signing_authority: bool,
}

/// One file of a kit: its path below `--out` and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

impl KitFile {
    fn new(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
        }
    }
}

/// `verify-kit`: load the policy's trust material, make the format's files, write them.
pub fn run(args: &Args) -> CliResult {
    let (config, base) = GatewayConfig::load(&args.config)?;
    let mut trust = Trust::load(&config, &base, &args.policy)?;
    if !args.timestamped {
        trust.tsa_root_pem = None;
    } else if trust.tsa_root_pem.is_none() {
        return Err("--timestamped: this gateway has no [timestamping] (docs/timestamps.md), so there is no TSA to trust".into());
    }
    let scopes = || -> Result<&[String], Error> {
        if args.scopes.is_empty() {
            return Err(format!(
                "--format {} needs the repositories to trust {} for: --scope registry.example.com/team/app (repeatable)",
                format_name(args.format),
                trust.policy
            )
            .into());
        }
        Ok(&args.scopes)
    };
    let patterns = || -> Result<&[String], Error> {
        if args.image_patterns.is_empty() {
            return Err(format!(
                "--format {} needs the images its policy applies to: --image-pattern 'registry.example.com/team/*' (repeatable)",
                format_name(args.format)
            )
            .into());
        }
        Ok(&args.image_patterns)
    };
    let files = match args.format {
        Format::Notation => notation::kit(&trust, scopes()?)?,
        Format::Ratify => {
            std::fs::create_dir_all(&args.out)?;
            let out = std::fs::canonicalize(&args.out)?;
            ratify::kit(&trust, scopes()?, &out, args.plain_http)?
        }
        Format::Kyverno => kubernetes::kyverno(&trust, patterns()?)?,
        Format::PolicyController => kubernetes::policy_controller(&trust, patterns()?)?,
        Format::ContainersPolicy => {
            let key = args.gpg_key.as_deref().ok_or_else(|| {
                format!(
                    "--format containers-policy needs the OpenPGP public key of {}'s GPG key: the gateway holds the \
                     RSA key, but the OpenPGP key around it is made with gpg (docs/gpg.md, step 2); export it with \
                     `gpg --armor --export FPR > images.asc` and pass --gpg-key images.asc",
                    trust.policy
                )
            })?;
            let lookaside = args.lookaside.as_deref().ok_or(
                "--format containers-policy needs where verifiers read the GPG signatures: --lookaside \
                 https://sigstore.example.com (the `lookaside` of registries.d, docs/gpg.md)",
            )?;
            containers::kit(&trust, scopes()?, &read_gpg_key(key)?, lookaside)?
        }
    };
    write_kit(&args.out, &files, args.force)?;
    for file in &files {
        println!("{}", args.out.join(&file.path).display());
    }
    Ok(())
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Notation => "notation",
        Format::Ratify => "ratify",
        Format::Kyverno => "kyverno",
        Format::PolicyController => "policy-controller",
        Format::ContainersPolicy => "containers-policy",
    }
}

/// An OpenPGP public key file, armored or binary; a private key is refused (a kit is public).
fn read_gpg_key(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the GPG key {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("PRIVATE KEY BLOCK") {
        return Err(format!(
            "{} is a private key; a verification kit takes the public key (`gpg --armor --export FPR`)",
            path.display()
        )
        .into());
    }
    // Binary OpenPGP packets start with a byte whose high bit is set; 0x99 / 0xc6 is a public-key packet.
    let armored = text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----");
    let binary = matches!(bytes.first(), Some(0x98 | 0x99 | 0xc6));
    if !armored && !binary {
        return Err(format!(
            "{} is not an OpenPGP public key (`gpg --armor --export FPR` writes one)",
            path.display()
        )
        .into());
    }
    Ok(bytes)
}

/// Writes the files below `out`; refuses to replace any that exists unless `force`, before writing any.
fn write_kit(out: &Path, files: &[KitFile], force: bool) -> CliResult {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .map(|f| out.join(&f.path))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "the kit would replace {}; choose another --out or pass --force",
                existing.join(", ")
            )
            .into());
        }
    }
    for file in files {
        let path = out.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        crate::fsutil::write_public(&path, &file.contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn pem(label: &str, der: &[u8]) -> Result<String, Error> {
    der::pem::encode_string(label, LineEnding::LF, der)
        .map_err(|e| format!("cannot write {label} as PEM: {e}").into())
}

impl Trust {
    /// The trust material of `Project/Policy` in a setup.
    pub fn load(config: &GatewayConfig, base: &Path, policy: &str) -> Result<Self, Error> {
        let (project_slug, policy_slug) = policy
            .split_once('/')
            .ok_or_else(|| format!("--policy {policy:?}: name the signing policy as Project/Policy"))?;
        let project = config.projects.iter().find(|p| p.slug == project_slug);
        let found = project
            .and_then(|p| p.policies.iter().find(|p| p.slug == policy_slug))
            .ok_or_else(|| {
                let known: Vec<String> = config
                    .projects
                    .iter()
                    .flat_map(|p| p.policies.iter().map(move |q| format!("{}/{}", p.slug, q.slug)))
                    .collect();
                format!(
                    "there is no signing policy {policy} in {}; the policies are: {}",
                    "gateway.toml",
                    known.join(", ")
                )
            })?;
        let chain = read_chain(base, &found.certificate_chain, policy)?;
        let (root, _) = chain
            .split_last()
            .ok_or_else(|| format!("signing policy {policy} has no certificate chain"))?;
        if !root.is_self_issued() {
            return Err(format!(
                "the certificate chain of {policy} ends at {}, which is not a root; its last file must be the root CA",
                root.subject()
            )
            .into());
        }
        let leaf = chain.first().unwrap_or(root);
        let spki = leaf.inner().tbs_certificate.subject_public_key_info.to_der()?;
        let tsa_root_pem = match &config.timestamping {
            Some(tsa) => {
                let tsa_chain = read_chain(base, &tsa.certificate_chain, "the TSA")?;
                match tsa_chain.last() {
                    Some(root) => Some(pem("CERTIFICATE", root.der())?),
                    None => None,
                }
            }
            None => None,
        };
        let signing_authority = project.is_some_and(|p| {
            p.artifact_configurations
                .iter()
                .any(|c| c.signing_scheme == SigningScheme::X509SigningAuthority)
        });
        let name: String = format!("signpath-{project_slug}-{policy_slug}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Ok(Self {
            policy: policy.to_owned(),
            name,
            root_pem: pem("CERTIFICATE", root.der())?,
            leaf_subject: leaf.subject(),
            public_key_pem: pem("PUBLIC KEY", &spki)?,
            tsa_root_pem,
            signing_authority,
        })
    }
}

fn read_chain(base: &Path, files: &[PathBuf], whose: &str) -> Result<Vec<ParsedCertificate>, Error> {
    let mut chain = Vec::new();
    for file in files {
        let path = resolve(base, file);
        let text = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read {}, the certificate chain of {whose}: {e}",
                path.display()
            )
        })?;
        for der in pem_certificates(&text, &path.display().to_string())? {
            chain.push(ParsedCertificate::from_der(&der)?);
        }
    }
    Ok(chain)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Trust material shaped like a demo policy's, for the formats' unit tests.
    pub fn trust() -> Trust {
        Trust {
            policy: "demo/ec-256".into(),
            name: "signpath-demo-ec-256".into(),
            root_pem: "-----BEGIN CERTIFICATE-----\nUk9PVA==\n-----END CERTIFICATE-----\n".into(),
            leaf_subject: "CN=demo/ec-256,O=SignPath Gateway Demo,ST=Vienna,C=AT".into(),
            public_key_pem: "-----BEGIN PUBLIC KEY-----\nS0VZ\n-----END PUBLIC KEY-----\n".into(),
            tsa_root_pem: None,
            signing_authority: false,
        }
    }

    #[test]
    fn an_existing_file_is_not_replaced_without_force_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), "mine").unwrap();
        let files = [KitFile::new("a/a.json", "{}"), KitFile::new("b.json", "{}")];
        let error = write_kit(dir.path(), &files, false).unwrap_err().to_string();
        assert!(error.contains("b.json") && error.contains("--force"), "{error}");
        assert!(!dir.path().join("a/a.json").exists());
        write_kit(dir.path(), &files, true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("b.json")).unwrap(), "{}");
    }

    #[test]
    fn a_private_or_foreign_gpg_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.asc");
        std::fs::write(&private, "-----BEGIN PGP PRIVATE KEY BLOCK-----\n").unwrap();
        assert!(read_gpg_key(&private)
            .unwrap_err()
            .to_string()
            .contains("private key"));
        let pem = dir.path().join("key.pem");
        std::fs::write(&pem, "-----BEGIN PUBLIC KEY-----\n").unwrap();
        assert!(read_gpg_key(&pem)
            .unwrap_err()
            .to_string()
            .contains("not an OpenPGP public key"));
    }
}
