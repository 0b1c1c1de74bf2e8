//! The command line's definitions (clap derive; the doc comments are the `--help` text): every command and its
//! options, in one place. `main.rs` parses them and starts `serve`; `cli::run` runs the others.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A signing gateway speaking SignPath's hash-signing API, with keys in a PKCS#11 HSM.
#[derive(Debug, Parser)]
#[command(name = "signpath-gateway", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a complete setup in a new directory: SoftHSM2 token and keys, PKI, TLS certificate, API token.
    Init {
        /// The directory to create (must be new or empty).
        #[arg(long)]
        dir: PathBuf,
        /// The HTTPS port on 127.0.0.1; 0 lets `serve` take any free port and print it (tests run many at once).
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// The plain-HTTP port on 127.0.0.1 that serves the CA's CRLs (default: the HTTPS port + 1). The
        /// certificates `init` issues name it, so it cannot be 0; with `--port 0` it has to be given.
        #[arg(long)]
        crl_port: Option<u16>,
        /// The PKCS#11 module to create the keys in.
        #[arg(long, default_value = crate::init::DEFAULT_SOFTHSM_MODULE)]
        module: PathBuf,
    },
    /// Serve the API.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// How to write the log on stderr: `text` for people, `json` for a log shipper (one object per line).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Print the audit log, oldest first; the filters select records of what was signed.
    Audit {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Every column, however wide the lines get (the table fits the terminal by default).
        #[arg(long, conflicts_with = "json")]
        wide: bool,
        /// Only the last N matching records.
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        filter: super::audit::AuditFilter,
    },
    /// Approve a signing request that waits for approval.
    Approve {
        /// The signing request id (logged by the client, shown on the web page and by `pending`).
        id: String,
        #[arg(long)]
        config: PathBuf,
        /// The approver's name, as in gateway.toml.
        #[arg(long = "as")]
        approver: String,
    },
    /// Deny a signing request; one denial aborts it.
    Deny {
        id: String,
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "as")]
        approver: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the signing requests that wait for approval.
    Pending {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Every column (approvers, the hash), however wide the lines get.
        #[arg(long, conflicts_with = "json")]
        wide: bool,
    },
    /// Manage approvers.
    Approver {
        #[command(subcommand)]
        command: ApproverCommand,
    },
    /// Check a setup for what operators get wrong (TLS, HSM and PIN, keys, certificate chains, file modes,
    /// origin rules); each problem with its fix. Exits non-zero on a problem.
    Doctor {
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The transparency log of every signature: check it against the audit log, print its key or checkpoint (see
    /// docs/transparency-log.md).
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Applies the database's missing schema migrations (`serve` applies them on start too).
    Migrate {
        #[arg(long)]
        config: PathBuf,
    },
    /// The keyless CA (Fulcio's API, docs/keyless.md).
    Keyless {
        #[command(subcommand)]
        command: KeylessCommand,
    },
    /// A signing policy's key and certificate: create, request, import, rotate (see docs/pki.md).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Write what one verifier (notation, Ratify, Kyverno, policy-controller, skopeo/podman) needs to trust a
    /// signing policy's signatures, and nothing else (see docs/verify.md).
    VerifyKit(super::verify_kit::Args),
    /// Revoke a certificate the gateway's own CA issued (it is on that CA's next CRL), or withdraw what one
    /// signing request, one release group, or a policy after a moment signed, keeping the key (docs/verify.md).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["policy", "certificate", "request", "release_group"])))]
    Revoke {
        #[arg(long)]
        config: PathBuf,
        /// The certificate in force for this `Project/Policy`; with --signed-after, what it signed after then.
        #[arg(long)]
        policy: Option<String>,
        /// A PEM certificate (a policy's earlier one, or the intermediate CA's).
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// A signing request's id (the gateway's, or the client's Idempotency-Key): its signatures are revoked.
        #[arg(long, conflicts_with_all = ["policy", "certificate", "release_group"])]
        request: Option<String>,
        /// A release group: the signatures of every request that named it are revoked.
        #[arg(long, conflicts_with_all = ["policy", "certificate"])]
        release_group: Option<String>,
        /// With --policy: revoke what the policy signed after this time (RFC 3339), not its certificate.
        #[arg(long, requires = "policy", conflicts_with_all = ["certificate", "invalidity_date"])]
        signed_after: Option<String>,
        /// For a certificate: unspecified (default), key-compromise, ca-compromise, affiliation-changed,
        /// superseded, cessation-of-operation. For a request, release group or --signed-after: why, in words
        /// (required; verifiers see it).
        #[arg(long)]
        reason: Option<String>,
        /// Since when the key is known or suspected to be unfit (RFC 3339, e.g. 2026-01-31T12:00:00Z).
        #[arg(long)]
        invalidity_date: Option<String>,
    },
    /// Write the request revocation list, signed by the issuing CA, for verifiers offline (it is also served
    /// beside the CRLs at /revocations).
    RevocationList {
        #[arg(long)]
        config: PathBuf,
        /// The file to write.
        #[arg(long)]
        output: PathBuf,
        /// How long the list is valid (default: `[pki] crl_validity_seconds`); verifiers refuse it after that.
        #[arg(long)]
        valid_for_seconds: Option<u64>,
    },
    /// List the revoked signing requests, release groups and policies-after-a-moment, oldest first.
    Revocations {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line, as the revocation list publishes them.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a new policy's key in the HSM; the policy is in force once its certificate is imported.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        project: String,
        #[arg(long)]
        slug: String,
        /// EC-256, EC-384, EC-521, RSA-2048, RSA-3072 or RSA-4096.
        #[arg(long)]
        key_spec: String,
        /// A token (name or id) that may submit to the policy; repeatable.
        #[arg(long = "submitter")]
        submitters: Vec<String>,
    },
    /// Write a PKCS#10 request signed by the policy's new (or current) key, for Notary's leaf profile.
    Csr {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        project: String,
        #[arg(long)]
        slug: String,
        /// The subject, RFC 4514 (default `CN=Project/Policy`).
        #[arg(long)]
        subject: Option<String>,
        /// Where to write the PEM request (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import the certificate chain a CA issued for the policy's key.
    Certificate {
        #[command(subcommand)]
        command: CertificateCommand,
    },
    /// Give a policy a new key: in force at once when the gateway's CA issues it, else after import.
    Rotate {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        project: String,
        #[arg(long)]
        slug: String,
        /// The new key's spec (default: the current one's).
        #[arg(long)]
        key_spec: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertificateCommand {
    /// Check the chain (key match, Notary's rules, chain to a self-signed root) and put it in force.
    Import {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        project: String,
        #[arg(long)]
        slug: String,
        /// PEM: the policy's certificate first, then its CAs up to the root.
        #[arg(long)]
        chain: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ApproverCommand {
    /// Adds an approver and prints their token (for the web page) once.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// The person behind the approver; they cannot approve requests of tokens with the same owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Removes an approver (take them out of every policy's approvers first): their web sessions end and their
    /// votes stop counting.
    Remove {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeylessCommand {
    /// Makes the keyless intermediate of a setup `init` made before it had one: a key in the HSM, its certificate
    /// under the root of `[pki]`, and `[keyless]` in gateway.toml without rules (restart `serve` to take it).
    Init {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token that may submit to the given policies; it is printed once and stored only hashed.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// `Project/Policy`, repeatable.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// The person or team the token belongs to; an approver with the same owner cannot approve its requests.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revokes a token (by name or id); a running gateway refuses it within 2 seconds.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        /// The token's name or id.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Recompute the log from its stored leaves and check its hashes (every tile), its newest checkpoint
    /// (signature and root) and the audit log (every signature record has its leaf and every leaf its record);
    /// exits non-zero naming each disagreement.
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// An older checkpoint (a file as `GET /checkpoint` or `log checkpoint` gave it): also check that the
        /// newest checkpoint is consistent with it (the log only grew).
        #[arg(long)]
        since: Option<PathBuf>,
    },
    /// Print the log's public key (PEM), the key a verifier trusts: in a Sigstore trusted root, the log's key.
    Key {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the newest checkpoint (a signed note), to keep for a later `log verify --since`.
    Checkpoint {
        #[arg(long)]
        config: PathBuf,
    },
}
