//! `gateway.toml`: where the gateway listens, which HSM holds the keys, and who may sign with which policy.
//! Relative paths are relative to the file's directory, so a whole setup moves as one folder.
//!
//! Read in two steps: [`GatewayConfig::read`] parses the file into these types (an unknown key, or a value outside
//! its set, is refused with its line and table), and `validate.rs` checks the rules between values once;
//! [`GatewayConfig::load`] does both. `values.rs` holds the typed values, `edit.rs` the edits in place. Owns
//! gateway.toml only; it must never import `http/`, `signing/` or `store/`.

use std::path::{Path, PathBuf};

use common::keys::HashAlgorithm;
use serde::{Deserialize, Serialize};
use signpath_oci::notary::SigningScheme;

pub use validate::{findings, Invalid};
pub use values::{NotaryEnvelope, TokenSha256};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on, e.g. `127.0.0.1:8443`; port 0 takes a port the system picks, which `serve` prints.
    pub listen: String,
    /// The URL clients use (`ApiUrl`), for links in responses. Port 0 (`https://127.0.0.1:0`, what `init --port 0`
    /// writes) stands for the port the gateway listens on.
    pub public_url: String,
    pub organization_id: String,
    /// The audit database: a SQLite file (the default), or a `postgres://` URL that replicas share.
    pub audit_db: PathBuf,
    pub tls: TlsConfig,
    pub hsm: HsmConfig,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
    /// People who approve signing requests (by CLI or the web page), each with a token of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<ApproverConfig>,
    /// OIDC issuers whose identity tokens prove where a request comes from (a CI system).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_issuers: Vec<IssuerConfig>,
    /// Timeouts and the connection cap that keep slow or idle clients from holding the server.
    #[serde(default)]
    pub server: ServerConfig,
    /// The gateway's own CAs and their CRLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki: Option<PkiConfig>,
    /// RFC 3161 timestamping (`POST /timestamp`): off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamping: Option<TimestampingConfig>,
    /// Artifacts of file-based signing requests (`SubmitWithArtifact`): where they are kept, how large, how long.
    #[serde(default)]
    pub artifacts: ArtifactsConfig,
    /// SignPath's GitHub connector (`connector-url` = this gateway): off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubConfig>,
    /// The gateway as a Fulcio-compatible CA for keyless signing (docs/keyless.md): off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessConfig>,
}

/// `[timestamping]`: the gateway as a time-stamping authority (docs/timestamps.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampingConfig {
    /// CKA_LABEL of the TSA's private key in the HSM.
    pub key_label: String,
    /// PEM files: the TSA certificate (EKU timeStamping only, critical), then its CA certificates up to the root.
    pub certificate_chain: Vec<PathBuf>,
    /// The TSA policy OID every token names (`TSTInfo.policy`).
    pub policy: String,
}

/// `[server]`: limits on what one client may hold. Every field has a default; see docs/configuration.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// API connections served at once; further connections wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Connections the plain-HTTP CRL listener (`[pki] crl_listen`) serves at once, apart from the API's: a flood of
    /// one listener never takes the other's connections. Both caps are kept within the open-file limit
    /// (docs/configuration.md); the header-read and request timeouts below apply to the CRL listener too.
    pub crl_max_connections: usize,
    /// Time for a client to finish the TLS handshake.
    pub tls_handshake_timeout_seconds: u64,
    /// Time for a request's line and headers to arrive, counted from when the server starts waiting for them:
    /// it also bounds how long a kept-alive connection may sit idle between requests.
    pub header_read_timeout_seconds: u64,
    /// Longest pause between two pieces of a request body.
    pub body_read_timeout_seconds: u64,
    /// Time for a whole request, from its headers to the answer (body read and signing included).
    pub request_timeout_seconds: u64,
    /// Failed authentications (answers of 401) one client address may have within
    /// `failed_authentication_window_seconds` before its requests are refused with 429 for
    /// `failed_authentication_block_seconds`. 0 turns the limit off.
    pub max_failed_authentications: u32,
    pub failed_authentication_window_seconds: u64,
    pub failed_authentication_block_seconds: u64,
    /// After SIGTERM or SIGINT: how long to keep accepting connections while `/readyz` answers 503, so a load
    /// balancer's health check sees it before the port closes (docs/operations.md).
    pub drain_delay_seconds: u64,
    /// Then: how long requests in flight may take to finish and be audited before the process exits anyway.
    pub drain_timeout_seconds: u64,
    /// Timestamp queries (`POST /timestamp`, no token) one client address may make per second, in bursts of as
    /// many; more are answered 429. 0 turns the limit off.
    pub max_timestamps_per_address_per_second: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            crl_max_connections: 64,
            tls_handshake_timeout_seconds: 10,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_failed_authentications: 50,
            failed_authentication_window_seconds: 60,
            failed_authentication_block_seconds: 60,
            drain_delay_seconds: 0,
            drain_timeout_seconds: 30,
            max_timestamps_per_address_per_second: 20,
        }
    }
}

/// An approver: a name shown in the audit log and a token (stored as its SHA-256) for the web page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverConfig {
    pub name: String,
    pub sha256: TokenSha256,
    /// The person behind this approver (e-mail or directory name). A token with the same owner is theirs: they
    /// cannot approve a request submitted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// An OIDC issuer (GitHub Actions, GitLab, ...) and where its signing keys are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The name policies refer to.
    pub name: String,
    /// The `iss` claim, e.g. `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// The `aud` claim the tokens must carry; by default the gateway's URL as its clients are configured with it
    /// (`public_url` without a trailing `/` or `/Api`), the audience GitHub Actions clients fetch tokens for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The host of the repositories this issuer's tokens speak for, which a file-based request's
    /// `Origin.RepositoryData.Url` must name; by default `github.com` for GitHub Actions
    /// (`https://token.actions.githubusercontent.com`), `NAME.ghe.com` for `https://token.actions.NAME.ghe.com`,
    /// and the issuer's own host otherwise (a GitLab instance, GitHub Enterprise Server's `https://HOST/_services/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_host: Option<String>,
    /// A JWKS file (air-gapped sites), or...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// ...the issuer's JWKS URL, fetched at start and again when a token names an unknown key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM server certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// The PKCS#11 module holding the keys (any HSM; SoftHSM2 by default).
    pub module: PathBuf,
    /// For SoftHSM2: its configuration file, exported as SOFTHSM2_CONF for this process only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softhsm2_conf: Option<PathBuf>,
    pub token_label: String,
    /// File holding the token's user PIN (mode 0600).
    pub pin_file: PathBuf,
}

impl HsmConfig {
    /// The token's user PIN from `pin_file` (relative to `base`), refused if another user could have written the
    /// file (a PIN of theirs would log the gateway in to their token).
    pub fn read_pin(&self, base: &Path) -> Result<String, ConfigError> {
        let path = resolve(base, &self.pin_file);
        crate::fsutil::check_owner_only_writes(&path, "the HSM PIN file")?;
        let pin = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(pin.trim().to_owned())
    }
}

/// An API token, stored as the SHA-256 of its value (tokens are 256-bit random, so a plain hash suffices).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub id: String,
    pub name: String,
    pub sha256: TokenSha256,
    /// The person (or team) this token belongs to; see [`ApproverConfig::owner`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub slug: String,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// How artifacts submitted to this project are signed (SignPath's artifact configurations); the first is the
    /// default. Without any, OCI image layouts get a Notary Project JWS signature on each image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_configurations: Vec<ArtifactConfigurationConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub slug: String,
    /// Stable id reported as `signingPolicyId`.
    pub id: String,
    /// CKA_LABEL of the private key in the HSM.
    pub key_label: String,
    /// PEM files: the policy's certificate, then its CA certificates up to the root.
    pub certificate_chain: Vec<PathBuf>,
    /// Token ids that may submit signing requests to this policy.
    #[serde(default)]
    pub submitters: Vec<String>,
    /// The hash algorithms this policy signs, in SignPath's names (`Sha256`, `Sha384`, `Sha512`, `Sha1`). SHA-1
    /// has known collisions: it is signed only where a policy lists it.
    #[serde(default = "default_hash_algorithms", with = "values::hash_algorithm_names")]
    pub hash_algorithms: Vec<HashAlgorithm>,
    /// Signatures wait until enough approvers agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalConfig>,
    /// Requests must carry an identity token of a trusted CI that meets these conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginConfig>,
}

/// What a policy signs unless it says otherwise: the SHA-2 family.
pub fn default_hash_algorithms() -> Vec<HashAlgorithm> {
    vec![
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ]
}

/// k of n approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Names of [`ApproverConfig`]s who may approve or deny.
    pub approvers: Vec<String>,
    /// How many approvals a request needs (k); one denial aborts.
    pub required: u32,
    /// Release groups: one approval covers later requests of the same group, within these limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_group: Option<ReleaseGroupConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseGroupConfig {
    /// Signatures one approval covers, the approved request's included: a hash is one signature, an artifact one
    /// per image (and platform manifest, under `each_platform`) and signature format. A request that would go past
    /// the limit waits for an approval of its own.
    pub max_signatures: u32,
    /// For how long after the approval.
    pub window_seconds: u64,
}

impl IssuerConfig {
    /// The audience the tokens must be issued for: `audience`, else the gateway's URL (see [`IssuerConfig::audience`]).
    pub fn audience_or(&self, public_url: &str) -> String {
        self.audience
            .clone()
            .unwrap_or_else(|| common::protocol::identity_token_audience_of(public_url))
    }

    /// The host a repository URL of this issuer's tokens must name, in lower case (see
    /// [`IssuerConfig::repository_host`]).
    pub fn repository_host(&self) -> String {
        if let Some(host) = &self.repository_host {
            return host.trim().to_ascii_lowercase();
        }
        let host = reqwest::Url::parse(&self.issuer)
            .ok()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        match host.strip_prefix("token.actions.") {
            Some("githubusercontent.com") => "github.com".to_owned(),
            Some(tenant) if tenant.ends_with(".ghe.com") => tenant.to_owned(),
            _ => host,
        }
    }
}

/// What a request's OIDC identity token must show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// The [`IssuerConfig`] name.
    pub issuer: String,
    /// Claim name → required value, matched by `/`-separated segments: a `*` segment matches one whole segment,
    /// a trailing `/*` anything below (`refs/tags/*`, `acme/*`). One condition must bind a repository.
    #[serde(default)]
    pub conditions: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// gateway.toml or the PIN file could have been written by another user (see [`crate::fsutil`]).
    #[error(transparent)]
    Shared(#[from] crate::fsutil::SharedFile),
    #[error("{path} is not a valid gateway configuration: {reason}")]
    Parse { path: String, reason: String },
    /// The file parses but breaks a rule between its values (`validate.rs`).
    #[error("{path} is not a valid gateway configuration: {invalid}")]
    Invalid {
        path: String,
        #[source]
        invalid: Invalid,
    },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

impl GatewayConfig {
    /// The approval of the held requests of `project/policy` as this configuration says: a policy's `[approval]`,
    /// or, for project [`KEYLESS_PROJECT`], the approval of the `[keyless]` rules of issuer `policy`.
    pub fn approval(&self, project: &str, policy: &str) -> Option<&ApprovalConfig> {
        if project == KEYLESS_PROJECT {
            return self.keyless.as_ref()?.approval(policy);
        }
        self.projects
            .iter()
            .filter(|p| p.slug == project)
            .flat_map(|p| &p.policies)
            .find(|p| p.slug == policy)?
            .approval
            .as_ref()
    }

    /// Every approval this configuration asks for, as `(project, policy, approval)`: each policy's, then each
    /// `[keyless]` rule's (project [`KEYLESS_PROJECT`], policy the rule's issuer).
    pub fn approvals(&self) -> Vec<(&str, &str, &ApprovalConfig)> {
        let policies = self.projects.iter().flat_map(|p| {
            p.policies
                .iter()
                .filter_map(move |s| Some((p.slug.as_str(), s.slug.as_str(), s.approval.as_ref()?)))
        });
        let keyless = self.keyless.iter().flat_map(|k| {
            k.rules
                .iter()
                .filter_map(|r| Some((KEYLESS_PROJECT, r.issuer.as_str(), r.approval.as_ref()?)))
        });
        policies.chain(keyless).collect()
    }

    /// The configuration as served by a process whose API listener got `listening`: a `public_url` with port 0
    /// names that port instead, so links and the origin check name the address clients reach.
    pub fn listening_on(mut self, listening: std::net::SocketAddr) -> Self {
        let url = self.public_url.trim_end_matches('/');
        if let Some(host) = url.strip_suffix(":0") {
            self.public_url = format!("{host}:{}", listening.port());
        }
        self
    }

    /// Reads and checks gateway.toml, as `serve`, the reload, `doctor` and the commands that only read it do:
    /// [`GatewayConfig::read`], then every rule of `validate.rs`.
    pub fn load(path: &Path) -> Result<(Self, PathBuf), ConfigError> {
        let (config, base) = Self::read(path)?;
        validate::validate(&config).map_err(|invalid| ConfigError::Invalid {
            path: path.display().to_string(),
            invalid,
        })?;
        Ok((config, base))
    }

    /// Reads gateway.toml into its types without the rules between values: refused if another user could have
    /// written it, if it has a key the gateway does not know (a misspelt `[projects.policies.aproval]` would
    /// otherwise drop the approval silently), or a value outside its set. The commands that rewrite the file read
    /// it so, and an operator can build it up in steps (name an approver in a policy, then `approver add` them)
    /// and always revoke a token; `serve` refuses what the rules refuse.
    pub fn read(path: &Path) -> Result<(Self, PathBuf), ConfigError> {
        crate::fsutil::check_owner_only_writes(path, "the gateway configuration")?;
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: parse_error(&text, &e),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, base))
    }

    /// Writes the configuration to `path`. An existing file is edited in place (`edit`): only what changed is
    /// written, and the operator's comments and order stay.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_error = |reason: String| ConfigError::Write {
            path: path.display().to_string(),
            reason,
        };
        let serialized = toml::to_string_pretty(self).map_err(|e| write_error(e.to_string()))?;
        let text = match std::fs::read_to_string(path) {
            Ok(existing) => match existing.parse::<toml_edit::DocumentMut>() {
                Ok(mut document) => {
                    let wanted = serialized
                        .parse::<toml_edit::DocumentMut>()
                        .map_err(|e| write_error(e.to_string()))?;
                    edit::merge(&mut document, &wanted);
                    document.to_string()
                }
                Err(_) => serialized,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serialized,
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        crate::fsutil::write_private(path, text.as_bytes()).map_err(|e| write_error(e.to_string()))
    }
}

/// A TOML or serde error on one line, with where it is: `line 20, column 1, in [[projects.policies]]: unknown
/// field `aproval`, expected one of ...` (the table is the last header before the error, so an unknown key is
/// named with the table it was written in).
fn parse_error(text: &str, error: &toml::de::Error) -> String {
    let Some(before) = error.span().and_then(|span| text.get(..span.start)) else {
        return error.message().to_owned();
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - line_start + 1;
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|header| format!(", in {}", header.split('#').next().unwrap_or(header).trim()))
        .unwrap_or_default();
    format!("line {line}, column {column}{table}: {}", error.message())
}

/// Resolves a configured path against the configuration's directory.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// `[pki]`: the gateway's own CAs (the PKI `init` makes, keys in the HSM) and the plain-HTTP listener that
/// publishes their CRLs. Absent where every policy carries certificates of an outside CA.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiConfig {
    /// Address of the plain-HTTP CRL listener, e.g. `127.0.0.1:8080` (notation fetches CRLs over http only).
    pub crl_listen: String,
    /// The base URL certificates name as CRL distribution point: `{crl_url}/crl/{ca}.crl`.
    pub crl_url: String,
    /// How long a CRL is valid (its nextUpdate); the gateway signs a new one at half that age, and at once after a
    /// `revoke`. Clients cache a CRL until its nextUpdate, so this bounds how late they learn of a revocation.
    #[serde(default = "default_crl_validity_seconds")]
    pub crl_validity_seconds: u64,
    /// What the CAs revoked (`signpath-gateway revoke` writes it).
    pub revocations: PathBuf,
    /// The CAs, root first.
    pub cas: Vec<CaConfig>,
}

fn default_crl_validity_seconds() -> u64 {
    24 * 3600
}

/// One CA of the gateway: a name (its CRL is `{name}.crl`), its certificate, and its key's label in the HSM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    pub name: String,
    pub certificate: PathBuf,
    pub key_label: String,
}

impl PkiConfig {
    /// Where the CRL of the CA `name` is published.
    pub fn crl_url_of(&self, name: &str) -> String {
        format!("{}/crl/{name}.crl", self.crl_url.trim_end_matches('/'))
    }
}

/// `[artifacts]`: the unsigned and signed artifacts of file-based signing requests, kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// Directory for the artifacts (relative to gateway.toml).
    pub directory: PathBuf,
    /// Largest artifact taken; a larger one is refused (413) before it is stored.
    pub max_size_bytes: u64,
    /// Hours an artifact is kept after its request was submitted; the request's status outlives it.
    pub retention_hours: u64,
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        Self {
            directory: "artifacts".into(),
            max_size_bytes: 4 << 30,
            retention_hours: 24,
        }
    }
}

/// One artifact configuration: which signatures an OCI image layout artifact gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactConfigurationConfig {
    pub slug: String,
    /// Notary Project signature envelope: `jws`, `cose` or `none`.
    #[serde(default)]
    pub notary: NotaryEnvelope,
    /// Also a cosign signature (tag `sha256-<hex>.sig`).
    #[serde(default)]
    pub cosign: bool,
    /// Also sign each platform manifest of a multi-platform image index.
    #[serde(default)]
    pub each_platform: bool,
    /// The Notary Project signing scheme: `notary.x509` (the default) or `notary.x509.signingAuthority` (the
    /// gateway attests the time it signed, and notation checks revocation at that time).
    #[serde(default, skip_serializing_if = "SigningScheme::is_default")]
    pub signing_scheme: SigningScheme,
}

impl ArtifactConfigurationConfig {
    /// The signatures this configuration makes per signed image or platform manifest: a Notary Project signature
    /// (unless `notary = "none"`) and a cosign one (if `cosign`). What a release group's limit counts.
    pub fn signature_formats(&self) -> u32 {
        u32::from(self.notary.format().is_some()) + u32::from(self.cosign)
    }
}

mod edit;
mod github;
mod keyless;
mod validate;
mod values;

pub use github::GithubConfig;
pub use keyless::{rule_approval, KeylessConfig, KeylessRule, KEYLESS_PROJECT};
pub use validate::REPOSITORY_CLAIMS;

#[cfg(test)]
mod tests;
