//! What `serve` holds in memory: the policies with their key handles and certificates, the token hashes, and the
//! HSM signer. Built at start and again, whole, when gateway.toml changes (`LiveCore`); the HSM session pool is
//! shared across reloads. Built only from a configuration `GatewayConfig::load` checked (`config/validate.rs`):
//! what is left to fail here is what the files, the HSM and the issuers' keys hold.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::keys::{HashAlgorithm, KeyKind};
use common::protocol::{RsaParameters, SigningPolicyInfo, WireKeyType};
use common::x509::{pem_certificates, ParsedCertificate};
use cryptoki::object::ObjectHandle;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::origin::Origins;
use crate::config::{resolve, ApprovalConfig, ArtifactConfigurationConfig, GatewayConfig, OriginConfig};
use crate::hsm::Signer;
use crate::store::artifacts::ArtifactStore;

pub type StateError = crate::error::BoxError;

#[derive(Debug)]
pub struct Policy {
    pub project: String,
    pub slug: String,
    pub key: ObjectHandle,
    pub kind: KeyKind,
    pub submitters: HashSet<String>,
    pub certificate_sha256: String,
    /// The certificates of its chain the gateway's own CAs issued, leaf first: a revocation of any of them stops
    /// the policy signing.
    pub issued: Vec<crate::pki::revocations::IssuedCertificate>,
    /// The hash algorithms the policy signs (`hash_algorithms`).
    pub hash_algorithms: Vec<HashAlgorithm>,
    /// The `MySigningPolicies` entry, precomputed.
    pub info: SigningPolicyInfo,
    pub approval: Option<ApprovalConfig>,
    pub origin: Option<OriginConfig>,
}

#[derive(Debug)]
pub struct State {
    pub organization_id: String,
    pub public_url: String,
    pub policies: Vec<Policy>,
    tokens: Vec<(String, [u8; 32])>,
    approvers: Vec<(String, [u8; 32])>,
    /// Token id → the person it belongs to, approver name → the person behind it (where configured).
    token_owners: std::collections::HashMap<String, String>,
    approver_owners: std::collections::HashMap<String, String>,
    pub origins: Origins,
    pub signer: Arc<Signer>,
    /// The time-stamping authority, when `[timestamping]` is configured.
    pub timestamping: Option<super::timestamp::Timestamping>,
    /// Artifacts of file-based signing requests, and each project's artifact configurations.
    pub artifacts: ArtifactStore,
    pub artifact_configurations: Vec<(String, ArtifactConfigurationConfig)>,
    /// `[pki] revocations`, where the gateway has CAs of its own.
    pub revocations_file: Option<std::path::PathBuf>,
    /// SignPath's GitHub connector, when `[github]` is configured.
    pub github: Option<crate::config::GithubConfig>,
    /// The keyless CA, when `[keyless]` is configured.
    pub keyless: Option<super::keyless::Keyless>,
}

impl State {
    pub fn load(config: &GatewayConfig, base: &Path, signer: Arc<Signer>) -> Result<Self, StateError> {
        let origins = Origins::load(base, &config.trusted_issuers, &config.public_url)?;
        let cas = match &config.pki {
            Some(pki) => crate::pki::revocations::gateway_cas(pki, base)?,
            None => Vec::new(),
        };
        let mut policies = Vec::new();
        for project in &config.projects {
            for p in &project.policies {
                let mut chain = Vec::new();
                for file in &p.certificate_chain {
                    let path = resolve(base, file);
                    let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    chain.extend(pem_certificates(&pem, &path.display().to_string())?);
                }
                let leaf_der = chain
                    .first()
                    .ok_or_else(|| format!("policy {} has no certificate", p.slug))?;
                let leaf = ParsedCertificate::from_der(leaf_der)?;
                let public_key = leaf.public_key()?;
                let kind = public_key.kind();
                let (key_type, key_size_in_bits) = match kind {
                    KeyKind::Rsa { bits } => (WireKeyType::Rsa, bits),
                    KeyKind::Ec(curve) => (WireKeyType::Ecdsa, curve.bits()),
                };
                let rsa_parameters = public_key.rsa_parameters().map(|(n, e)| RsaParameters {
                    public_exponent: BASE64.encode(e),
                    modulus: BASE64.encode(n),
                });
                let key = signer.find_key(&p.key_label)?;
                let hash_algorithms = p.hash_algorithms.clone();
                let hash_names = hash_algorithms
                    .iter()
                    .map(|h| h.signpath_name().to_owned())
                    .collect();
                policies.push(Policy {
                    project: project.slug.clone(),
                    slug: p.slug.clone(),
                    key,
                    kind,
                    submitters: p.submitters.iter().cloned().collect(),
                    certificate_sha256: leaf.sha256_fingerprint(),
                    issued: crate::pki::revocations::issued_by(&cas, &chain),
                    hash_algorithms,
                    info: SigningPolicyInfo {
                        signing_policy_slug: p.slug.clone(),
                        project_slug: project.slug.clone(),
                        signing_policy_id: p.id.clone(),
                        key_type,
                        key_size_in_bits,
                        certificate_bytes: BASE64.encode(leaf_der),
                        public_key_bytes: BASE64.encode(public_key.signpath_public_key_bytes()),
                        rsa_parameters,
                        certificate_chain: Some(chain.iter().map(|c| BASE64.encode(c)).collect()),
                        hash_algorithms: Some(hash_names),
                    },
                    approval: p.approval.clone(),
                    origin: p.origin.clone(),
                });
            }
        }
        let tokens = config.tokens.iter().map(|t| (t.id.clone(), t.sha256.0)).collect();
        let approvers = config
            .approvers
            .iter()
            .map(|a| (a.name.clone(), a.sha256.0))
            .collect();
        let token_owners = config
            .tokens
            .iter()
            .filter_map(|t| Some((t.id.clone(), t.owner.clone()?)))
            .collect();
        let approver_owners = config
            .approvers
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.owner.clone()?)))
            .collect();
        let timestamping = match &config.timestamping {
            Some(tsa) => Some(super::timestamp::Timestamping::load(tsa, base, &signer)?),
            None => None,
        };
        let keyless = match &config.keyless {
            Some(keyless) => Some(super::keyless::Keyless::load(
                config,
                keyless,
                base,
                &signer,
                vec![transparency_log(config, &signer)?],
            )?),
            None => None,
        };
        let artifact_configurations = config
            .projects
            .iter()
            .flat_map(|p| {
                p.artifact_configurations
                    .iter()
                    .map(|c| (p.slug.clone(), c.clone()))
            })
            .collect();
        Ok(Self {
            revocations_file: config.pki.as_ref().map(|p| resolve(base, &p.revocations)),
            timestamping,
            artifacts: ArtifactStore::new(base, &config.artifacts),
            artifact_configurations,
            github: config.github.clone(),
            keyless,
            approvers,
            token_owners,
            approver_owners,
            origins,
            organization_id: config.organization_id.clone(),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            policies,
            tokens,
            signer,
        })
    }

    /// The id of the token with this value, compared in constant time against every stored hash.
    pub fn token_id(&self, token: &str) -> Option<String> {
        find_hashed(&self.tokens, token)
    }

    /// Whether `approver` is the person behind token `token_id` (both name the same owner).
    pub fn is_own_token(&self, approver: &str, token_id: &str) -> bool {
        matches!(
            (self.approver_owners.get(approver), self.token_owners.get(token_id)),
            (Some(a), Some(t)) if a.eq_ignore_ascii_case(t)
        )
    }

    /// The name of the approver whose token this is.
    pub fn approver(&self, token: &str) -> Option<String> {
        find_hashed(&self.approvers, token)
    }

    /// The SHA-256 of approver `name`'s token, if `name` is an approver of this configuration.
    pub fn approver_token_sha256(&self, name: &str) -> Option<[u8; 32]> {
        self.approvers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, hash)| *hash)
    }
}

/// The SHA-256 of a token, as the configuration keeps tokens and approver tokens.
pub fn token_sha256(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn find_hashed(entries: &[(String, [u8; 32])], token: &str) -> Option<String> {
    let presented = token_sha256(token);
    let mut found = None;
    for (id, hash) in entries {
        if bool::from(presented.ct_eq(hash)) {
            found = Some(id.clone());
        }
    }
    found
}

/// The gateway's transparency log as the Sigstore documents name it: a Rekor v2 log at the gateway's URL, its
/// checkpoint key from the HSM.
fn transparency_log(
    config: &GatewayConfig,
    signer: &Signer,
) -> Result<crate::pki::sigstore_documents::TransparencyLog, StateError> {
    let key = crate::tlog::sequencer::log_key(signer, crate::tlog::origin(&config.public_url))?;
    Ok(crate::pki::sigstore_documents::TransparencyLog {
        base_url: common::protocol::identity_token_audience_of(&config.public_url),
        api_version: 2,
        key_details: "PKIX_ECDSA_P256_SHA_256".into(),
        log_id: key.log_id().to_vec(),
        public_key: key.spki,
    })
}
