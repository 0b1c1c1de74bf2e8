//! The command line: clap definitions (their doc comments are `--help`), dispatch, and one line of output per
//! result. Errors print as `signpath-oci: error: ...` with exit code 1; usage errors exit 2 (clap).

mod check_revocation;
mod gateway_signer;
mod submit;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use signpath_oci::notary::{SignatureFormat, SigningScheme};
use signpath_oci::sign::SignOptions;
use signpath_oci::{repack, sign, strip};

const EXIT_FAILURE: i32 = 1;

/// Prepares OCI image layout tarballs for signing before push, and signs them.
#[derive(Debug, Parser)]
#[command(name = "signpath-oci", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Moves the content layers of the image REF out of the tarball into DIR (rewriting the tarball in place).
    /// Manifests, configs and index.json stay byte-identical, so the image's digest does not change.
    Strip {
        /// The OCI image layout tarball (docker buildx build -o type=oci,dest=image.tar).
        tarball: PathBuf,
        /// The image: [registry/]repository[:tag] or ...@sha256:<hex>, as in the tarball's index.json.
        #[arg(long)]
        reference: String,
        /// Where the layers go (DIR/sha256/<hex>).
        #[arg(long)]
        directory: PathBuf,
    },
    /// Puts the layers of the image REF back from DIR into the (signed) tarball, each checked against its digest.
    Repack {
        tarball: PathBuf,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        directory: PathBuf,
    },
    /// Signs the image REF in the tarball through the gateway's SignHash API and writes the signatures into it
    /// (SIGNPATH_API_URL, SIGNPATH_ORGANIZATION_ID, SIGNPATH_API_TOKEN, ... as for the other clients).
    Sign {
        tarball: PathBuf,
        #[arg(long)]
        reference: String,
        /// Notary Project envelope format; `none` signs with cosign only.
        #[arg(long, value_enum, default_value = "jws")]
        format: Format,
        /// Also write a cosign signature (tag sha256-<hex>.sig).
        #[arg(long)]
        cosign: bool,
        /// Also sign every platform manifest of a multi-platform image index.
        #[arg(long)]
        each_platform: bool,
        /// The signing policy as Project/Policy (default: SIGNPATH_PROJECT_SLUG / SIGNPATH_SIGNING_POLICY_SLUG).
        #[arg(long)]
        key: Option<String>,
        /// Signature expiry in seconds from now (a critical signed attribute).
        #[arg(long)]
        expiry_seconds: Option<u32>,
    },
    /// Submits the tarball to the gateway (SignPath's SubmitWithArtifact), waits for the request to complete
    /// (approval included) and downloads the signed tarball, which holds every image's signatures.
    Submit {
        tarball: PathBuf,
        /// The signing policy as Project/Policy (default: SIGNPATH_PROJECT_SLUG / SIGNPATH_SIGNING_POLICY_SLUG).
        #[arg(long)]
        key: Option<String>,
        /// The artifact configuration (which signatures: Notary JWS or COSE, cosign); the project's default if
        /// not given.
        #[arg(long)]
        artifact_configuration: Option<String>,
        /// A description for the approvers and the audit log (e.g. the release).
        #[arg(long)]
        description: Option<String>,
        /// The repository the images are pushed to, [registry/]repository[:tag], for images the tarball names
        /// only by a tag (ref.name = 1.0, as skopeo and oras write it); they are signed under it. Without it,
        /// such a tarball is refused.
        #[arg(long)]
        reference: Option<String>,
        /// Where the signed tarball goes (default: image-signed.tar next to image.tar).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Checks signatures against the gateway's request revocation list (`signpath-gateway revocation-list`, or
    /// GET {crl_url}/revocations): a Notary JWS or COSE envelope, or `cosign download signature` output. Exits 1
    /// if one is revoked, or if the list is expired or not signed by a trusted CA.
    CheckRevocation {
        /// The signatures: an envelope file, or the output of `cosign download signature IMAGE`.
        signatures: PathBuf,
        /// The revocation list.
        #[arg(long)]
        list: PathBuf,
        /// The CA that signs the list (the gateway's issuing CA, e.g. DIR/ca/intermediate.pem); repeatable.
        #[arg(long, required = true)]
        trusted_ca: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Jws,
    Cose,
    None,
}

pub fn run() -> i32 {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("signpath-oci: error: {message}");
            EXIT_FAILURE
        }
    }
}

fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::CheckRevocation {
            signatures,
            list,
            trusted_ca,
        } => check_revocation::run(&list, &trusted_ca, &signatures)?,
        Command::Strip {
            tarball,
            reference,
            directory,
        } => {
            let stripped = strip::strip(&tarball, &reference, &directory).map_err(|e| e.to_string())?;
            println!(
                "stripped {} layers ({} bytes) of {} ({}) into {}",
                stripped.layers.len(),
                stripped.bytes(),
                reference,
                stripped.image.descriptor.digest,
                directory.display()
            );
        }
        Command::Repack {
            tarball,
            reference,
            directory,
        } => {
            let repacked = repack::repack(&tarball, &reference, &directory).map_err(|e| e.to_string())?;
            println!(
                "repacked {} layers of {} ({}) from {}",
                repacked.restored.len(),
                reference,
                repacked.image.descriptor.digest,
                directory.display()
            );
        }
        Command::Sign {
            tarball,
            reference,
            format,
            cosign,
            each_platform,
            key,
            expiry_seconds,
        } => {
            let notary = match format {
                Format::Jws => Some(SignatureFormat::Jws),
                Format::Cose => Some(SignatureFormat::Cose),
                Format::None => None,
            };
            if notary.is_none() && !cosign {
                return Err("--format none without --cosign signs nothing".into());
            }
            let signer = gateway_signer::GatewaySigner::connect(key.as_deref())?;
            let now = time::OffsetDateTime::now_utc();
            let signing_time = now.replace_nanosecond(0).unwrap_or(now);
            let options = SignOptions {
                notary,
                signing_scheme: SigningScheme::X509,
                cosign,
                each_platform,
                signing_time,
                expiry: expiry_seconds.map(|s| signing_time + time::Duration::seconds(s.into())),
                signing_agent: format!("signpath-oci/{}", env!("CARGO_PKG_VERSION")),
            };
            let signed =
                sign::sign_tarball(&tarball, &reference, &signer, &options).map_err(|e| e.to_string())?;
            for s in &signed.signatures {
                println!(
                    "signed {} {} ({}): signature manifest {}",
                    reference, s.subject.digest, s.kind, s.manifest.digest
                );
            }
        }
        Command::Submit {
            tarball,
            key,
            artifact_configuration,
            description,
            reference,
            output,
        } => {
            let (project, policy) = policy_slugs(key.as_deref())?;
            let reference = reference.map(|r| submit::ImageReference::parse(&r)).transpose()?;
            let output = output.unwrap_or_else(|| signed_name(&tarball));
            let submission = submit::Submission {
                tarball: &tarball,
                project,
                policy,
                artifact_configuration,
                description,
                reference: reference.as_ref(),
                output: output.clone(),
            };
            let id = submit::submit(&submission)?;
            println!(
                "signing request {id} completed: signed tarball {}",
                output.display()
            );
            for line in submit::summary(&output, reference.as_ref())? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// `--key Project/Policy`, or the policy the configuration names.
fn policy_slugs(key: Option<&str>) -> Result<(String, String), String> {
    if let Some(key) = key {
        return key
            .split_once('/')
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .ok_or_else(|| format!("--key {key:?} is not Project/Policy"));
    }
    let config = common::config::Config::from_environment().map_err(|e| e.to_string())?;
    match (config.project_slug, config.signing_policy_slug) {
        (Some(p), Some(s)) => Ok((p, s)),
        _ => Err(
            "no signing policy: give --key Project/Policy or set SIGNPATH_PROJECT_SLUG and SIGNPATH_SIGNING_POLICY_SLUG"
                .into(),
        ),
    }
}

/// `image.tar` -> `image-signed.tar`, beside it.
fn signed_name(tarball: &std::path::Path) -> PathBuf {
    let stem = tarball
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let name = match tarball.extension() {
        Some(ext) => format!("{stem}-signed.{}", ext.to_string_lossy()),
        None => format!("{stem}-signed"),
    };
    tarball.with_file_name(name)
}
