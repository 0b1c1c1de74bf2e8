//! The keyless CA's decision (docs/keyless.md): may this identity token get a certificate for this key, and what
//! does the certificate say. The token is verified as origin verification verifies it (`origin.rs`, the trusted
//! issuers and their keys), then matched against `[keyless]`'s rules; the proof of possession (a signature over
//! the token's subject, or its e-mail address, with the key) is checked; a rule with approval then needs the CI run
//! approved (`keyless_run.rs`); the certificate is issued by the keyless intermediate in the HSM (`pki::keyless`
//! encodes it) and audited through `conclude` like a signature. The Fulcio JSON is parsed and written in
//! `http/fulcio.rs`.

use std::path::Path;
use std::time::SystemTime;

use common::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};
use common::pubkey::PublicKey;
use common::x509::pem_certificates;
use der::{Decode, Encode};
use sha2::Digest as _;
use x509_cert::Certificate;

use super::origin::{glob_matches, OriginError, VerifiedToken};
use super::{refuse, Audited, Core, Reason, Refusal};
use crate::config::{resolve, rule_approval, ApprovalConfig, GatewayConfig, KeylessConfig, KeylessRule};
use crate::error::BoxError;
use crate::hsm::Signer;
use crate::pki::hsm_key::HsmKey;
use crate::pki::keyless::{CsrError, FulcioExtension as F, Identity, Request};
use crate::pki::sigstore_documents::{self, Authority, Services, TransparencyLog};
use crate::pki::Ca;
use crate::store::Record;

/// The keyless CA a configuration names: its chain (the intermediate first, the root last), its key's label, and
/// its rules.
#[derive(Debug)]
pub struct Keyless {
    key_label: String,
    chain: Vec<Vec<u8>>,
    rules: Vec<KeylessRule>,
    /// `trusted_root.json` and `signing_config.json`, naming this gateway's CA, TSA and logs.
    pub documents: SigstoreDocuments,
}

/// The Sigstore documents cosign takes with `--trusted-root` and `--signing-config`, built once per configuration.
#[derive(Debug, Default)]
pub struct SigstoreDocuments {
    pub trusted_root: String,
    pub signing_config: String,
}

impl Keyless {
    /// Reads `[keyless]`: the chain's first certificate is the intermediate's; its key must be in the HSM. The
    /// Sigstore documents name the gateway at `public_url` as the CA, its TSA (`[timestamping]`'s chain, where it
    /// is one) and `logs`.
    pub fn load(
        config: &GatewayConfig,
        keyless: &KeylessConfig,
        base: &Path,
        signer: &Signer,
        logs: Vec<TransparencyLog>,
    ) -> Result<Self, BoxError> {
        let chain = read_chain(&keyless.certificate_chain, base)?;
        let intermediate = chain.first().ok_or("[keyless] names no certificate_chain")?;
        let key = HsmKey::open(signer, &keyless.key_label)
            .map_err(|e| format!("[keyless] key {:?}: {e}", keyless.key_label))?;
        let cert = Certificate::from_der(intermediate)?;
        if cert.tbs_certificate.subject_public_key_info.to_der()? != key.spki_der() {
            return Err(format!(
                "[keyless] the key {:?} is not the key of the first certificate of certificate_chain",
                keyless.key_label
            )
            .into());
        }
        let url = common::protocol::identity_token_audience_of(&config.public_url);
        let tsa_chain = match &config.timestamping {
            Some(tsa) => read_chain(&tsa.certificate_chain, base)?,
            None => Vec::new(),
        };
        let services = Services {
            operator: config.organization_id.clone(),
            ca: Authority {
                url: url.clone(),
                chain: &chain,
            },
            tsa: (!tsa_chain.is_empty()).then(|| Authority {
                url: format!("{url}/timestamp"),
                chain: &tsa_chain,
            }),
            logs,
        };
        let documents = SigstoreDocuments {
            trusted_root: sigstore_documents::trusted_root(&services)?,
            signing_config: sigstore_documents::signing_config(&services)?,
        };
        Ok(Self {
            key_label: keyless.key_label.clone(),
            chain,
            rules: keyless.rules.clone(),
            documents,
        })
    }

    /// The trusted issuers the rules admit, each once: `(iss, audience)`, as Fulcio's configuration lists them.
    pub fn issuers<'o>(&self, origins: &'o super::origin::Origins) -> Vec<(&'o str, &'o str)> {
        let mut issuers: Vec<(&str, &str)> = Vec::new();
        for rule in &self.rules {
            if let Some(issuer) = origins.issuer_and_audience(&rule.issuer) {
                if !issuers.contains(&issuer) {
                    issuers.push(issuer);
                }
            }
        }
        issuers
    }

    /// The approval of the CI runs of `issuer`'s rules, as configured.
    pub fn approval(&self, issuer: &str) -> Option<&ApprovalConfig> {
        rule_approval(&self.rules, issuer)
    }

    /// The issuers whose rules ask for approval, each once.
    pub fn approved_issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.approval.is_some()) {
            if !issuers.contains(&rule.issuer.as_str()) {
                issuers.push(&rule.issuer);
            }
        }
        issuers
    }

    /// The CA chain, DER, the keyless intermediate first and the root last.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}

fn read_chain(files: &[std::path::PathBuf], base: &Path) -> Result<Vec<Vec<u8>>, BoxError> {
    let mut chain = Vec::new();
    for file in files {
        let path = resolve(base, file);
        let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        chain.extend(pem_certificates(&pem, &path.display().to_string())?);
    }
    Ok(chain)
}

/// A certificate request as Fulcio's `POST /api/v2/signingCert` carries it.
pub struct CertificateRequest<'a> {
    /// The OIDC identity token (never logged or audited: only its verified claims are).
    pub identity_token: Option<&'a str>,
    /// The key the certificate is for, and the proof that the requester holds it.
    pub possession: Possession,
}

impl std::fmt::Debug for CertificateRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRequest")
            .field("identity_token", &self.identity_token.map(|_| "[REDACTED]"))
            .field("possession", &self.possession)
            .finish()
    }
}

/// How a request names its key and proves it holds it.
#[derive(Debug)]
pub enum Possession {
    /// Fulcio's `publicKeyRequest`: the key (a DER SubjectPublicKeyInfo) and its signature over the token's subject
    /// (or e-mail address), what cosign sends.
    Signed { public_key: Vec<u8>, proof: Vec<u8> },
    /// Fulcio's `certificateSigningRequest`: a DER PKCS#10 request, whose self-signature is the proof.
    Csr(Vec<u8>),
}

/// An issued certificate: the chain to send, leaf first.
#[derive(Debug)]
pub struct IssuedCertificate {
    pub chain: Vec<Vec<u8>>,
}

impl Audited for IssuedCertificate {
    fn status(&self) -> u16 {
        200
    }
}

impl Core {
    /// Issues a keyless certificate for `request`, or says why not; what was checked goes into `record`.
    pub fn issue_keyless_certificate(
        &self,
        request: &CertificateRequest<'_>,
        record: &mut Record,
    ) -> Result<IssuedCertificate, Refusal> {
        let Some(keyless) = &self.state.keyless else {
            return Err(refuse(
                Reason::KeylessOff,
                "this gateway issues no keyless certificates: its configuration has no [keyless]",
            ));
        };
        let token = request.identity_token.ok_or_else(|| {
            refuse(
                Reason::OriginRejected,
                "send the CI's OIDC identity token (Authorization: Bearer, or credentials.oidcIdentityToken)",
            )
        })?;
        let names: Vec<&str> = keyless.rules.iter().map(|r| r.issuer.as_str()).collect();
        let verified = self
            .state
            .origins
            .verify_any(&names, token)
            .map_err(|e| match e {
                OriginError::NotAdmitted { .. } => refuse(Reason::IdentityNotAllowed, e.to_string()),
                _ => refuse(Reason::OriginRejected, e.to_string()),
            })?;
        record.origin = Some(verified.audited());
        let rule = admitting_rule(&keyless.rules, &verified)?;
        let public_key = match &request.possession {
            Possession::Signed { public_key, proof } => {
                let key = PublicKey::from_spki_der(public_key)
                    .map_err(|e| refuse(Reason::UnsupportedAlgorithm, e.to_string()))?;
                record.algorithm = Some(key.kind().to_string());
                check_proof_of_possession(&key, &verified, proof)?;
                public_key.clone()
            }
            Possession::Csr(der) => {
                let spki = crate::pki::keyless::csr_public_key(der).map_err(|e| match e {
                    CsrError::Malformed(_) => refuse(Reason::MalformedRequest, e.to_string()),
                    CsrError::Signature(_) => refuse(Reason::ProofOfPossessionFailed, e.to_string()),
                })?;
                let key = PublicKey::from_spki_der(&spki)
                    .map_err(|e| refuse(Reason::UnsupportedAlgorithm, e.to_string()))?;
                record.algorithm = Some(key.kind().to_string());
                spki
            }
        };
        // After the proof of possession: a request that fails it holds no run.
        if rule.approval.is_some() {
            self.keyless_run_approved(&rule.issuer, &verified, record)?;
        }
        let certificate_request = certificate_request(&verified)?;
        let ca_key = HsmKey::open(&self.state.signer, &keyless.key_label).map_err(|e| {
            tracing::error!(error = %e, "the keyless CA's key is not available");
            refuse(
                Reason::HsmUnavailable,
                "the HSM could not sign the certificate; try again later",
            )
        })?;
        let ca_cert = keyless
            .chain
            .first()
            .and_then(|der| Certificate::from_der(der).ok())
            .ok_or_else(|| refuse(Reason::Internal, "the keyless CA's certificate could not be read"))?;
        let ca = Ca {
            key: ca_key,
            cert: ca_cert,
        };
        let leaf = crate::pki::keyless::issue(&ca, &public_key, &certificate_request, SystemTime::now())
            .and_then(|cert| Ok(cert.to_der()?))
            .map_err(|e| {
                tracing::error!(error = %e, "keyless certificate not issued");
                refuse(
                    Reason::HsmUnavailable,
                    "the HSM could not sign the certificate; try again later",
                )
            })?;
        record.certificate_sha256 = Some(hex::encode(sha2::Sha256::digest(&leaf)));
        record.metadata = Some(
            serde_json::json!({
                "keyless": {
                    "identity": identity_text(&certificate_request.identity),
                    "issuer": verified.claim("iss"),
                    "trustedIssuer": verified.issuer_name,
                }
            })
            .to_string(),
        );
        let mut chain = vec![leaf];
        chain.extend(keyless.chain.iter().cloned());
        Ok(IssuedCertificate { chain })
    }
}

/// The first rule that admits the token, or a refusal that names what did not match.
fn admitting_rule<'r>(rules: &'r [KeylessRule], token: &VerifiedToken) -> Result<&'r KeylessRule, Refusal> {
    let repository = token.claim("repository").or_else(|| token.claim("project_path"));
    let git_ref = token.claim("ref");
    let workflow = token
        .claim("job_workflow_ref")
        .or_else(|| token.claim("ci_config_ref_uri"));
    let any = |patterns: &[String], value: &Option<String>| {
        value
            .as_deref()
            .is_some_and(|v| patterns.iter().any(|p| glob_matches(p, v)))
    };
    let mut why = format!(
        "no [keyless] rule admits tokens of the trusted issuer {}",
        token.issuer_name
    );
    for rule in rules.iter().filter(|r| r.issuer == token.issuer_name) {
        if !any(&rule.repositories, &repository) {
            why = format!(
                "the repository {} is not one the [keyless] rules admit for issuer {}",
                shown(&repository),
                rule.issuer
            );
        } else if !rule.refs.is_empty() && !any(&rule.refs, &git_ref) {
            why = format!(
                "the ref {} is not one the [keyless] rules admit for {}",
                shown(&git_ref),
                shown(&repository)
            );
        } else if !rule.workflows.is_empty() && !any(&rule.workflows, &workflow) {
            why = format!(
                "the workflow {} is not one the [keyless] rules admit for {}",
                shown(&workflow),
                shown(&repository)
            );
        } else {
            return Ok(rule);
        }
    }
    Err(refuse(Reason::IdentityNotAllowed, why))
}

fn shown(value: &Option<String>) -> String {
    value
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
}

/// What the client signed to prove it holds the key: the token's e-mail address where it has one, else its
/// subject, as Fulcio and sigstore-go take it.
fn challenge(token: &VerifiedToken) -> Result<String, Refusal> {
    token
        .claim("email")
        .filter(|e| !e.is_empty())
        .or_else(|| token.claim("sub"))
        .ok_or_else(|| refuse(Reason::OriginRejected, "the identity token has no subject (sub)"))
}

/// The proof of possession: `proof` is the key's signature over the challenge (ECDSA with the hash of its size,
/// RSA PKCS#1 v1.5 with SHA-256, as sigstore-go signs it).
fn check_proof_of_possession(key: &PublicKey, token: &VerifiedToken, proof: &[u8]) -> Result<(), Refusal> {
    let challenge = challenge(token)?;
    let (scheme, hash) = match key.kind() {
        KeyKind::Ec(Curve::P256) => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha256),
        KeyKind::Ec(Curve::P384) => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha384),
        KeyKind::Ec(Curve::P521) => (SignatureScheme::EcdsaAsn1, HashAlgorithm::Sha512),
        KeyKind::Rsa { .. } => (SignatureScheme::RsaPkcs1, HashAlgorithm::Sha256),
    };
    key.verify_message(scheme, hash, challenge.as_bytes(), proof)
        .map_err(|_| {
            refuse(
                Reason::ProofOfPossessionFailed,
                format!(
                    "the proof of possession is not the public key's signature of the token's {} {challenge:?} ({}, \
                     {}, {}): sign that string with the key the certificate is for",
                    if token.claim("email").is_some_and(|e| !e.is_empty()) {
                        "email"
                    } else {
                        "subject"
                    },
                    key.kind(),
                    match scheme {
                        SignatureScheme::RsaPkcs1 => "PKCS#1 v1.5",
                        _ => "ECDSA, DER",
                    },
                    hash.signpath_name(),
                ),
            )
        })
}

fn identity_text(identity: &Identity) -> &str {
    match identity {
        Identity::Email(s) | Identity::Uri(s) | Identity::Username(s) => s,
    }
}

/// The certificate's identity and extensions from the verified claims, as Fulcio maps them: a GitHub Actions job
/// (a `job_workflow_ref`), a GitLab CI job (a `ci_config_ref_uri`), a person (a verified `email`), else the
/// subject as Fulcio's username principal.
fn certificate_request(token: &VerifiedToken) -> Result<Request, Refusal> {
    let iss = token.claim("iss").unwrap_or_default();
    let host = format!("https://{}", token.repository_host);
    let claim = |name: &str| token.claim(name).filter(|v| !v.is_empty());
    let mut extensions = vec![(F::IssuerV1, iss.clone()), (F::Issuer, iss.clone())];
    let mut put = |extension: F, value: Option<String>| {
        if let Some(value) = value {
            extensions.push((extension, value));
        }
    };
    let under_host = |value: Option<String>| value.map(|v| format!("{host}/{v}"));
    let identity = if let Some(job_workflow_ref) = claim("job_workflow_ref") {
        let signer = format!("{host}/{job_workflow_ref}");
        put(F::GithubWorkflowTrigger, claim("event_name"));
        put(F::GithubWorkflowSha, claim("sha"));
        put(F::GithubWorkflowName, claim("workflow"));
        put(F::GithubWorkflowRepository, claim("repository"));
        put(F::GithubWorkflowRef, claim("ref"));
        put(F::BuildSignerUri, Some(signer.clone()));
        put(F::BuildSignerDigest, claim("job_workflow_sha"));
        put(F::RunnerEnvironment, claim("runner_environment"));
        put(F::SourceRepositoryUri, under_host(claim("repository")));
        put(F::SourceRepositoryDigest, claim("sha"));
        put(F::SourceRepositoryRef, claim("ref"));
        put(F::SourceRepositoryIdentifier, claim("repository_id"));
        put(F::SourceRepositoryOwnerUri, under_host(claim("repository_owner")));
        put(F::SourceRepositoryOwnerIdentifier, claim("repository_owner_id"));
        put(F::BuildConfigUri, under_host(claim("workflow_ref")));
        put(F::BuildConfigDigest, claim("workflow_sha"));
        put(F::BuildTrigger, claim("event_name"));
        if let (Some(repository), Some(run), Some(attempt)) =
            (claim("repository"), claim("run_id"), claim("run_attempt"))
        {
            put(
                F::RunInvocationUri,
                Some(format!(
                    "{host}/{repository}/actions/runs/{run}/attempts/{attempt}"
                )),
            );
        }
        put(
            F::SourceRepositoryVisibilityAtSigning,
            claim("repository_visibility"),
        );
        Identity::Uri(signer)
    } else if let Some(config_uri) = claim("ci_config_ref_uri") {
        let signer = format!("https://{config_uri}");
        let git_ref = match (claim("ref_type").as_deref(), claim("ref")) {
            (Some("branch"), Some(r)) => Some(format!("refs/heads/{r}")),
            (Some("tag"), Some(r)) => Some(format!("refs/tags/{r}")),
            (_, r) => r,
        };
        put(F::BuildSignerUri, Some(signer.clone()));
        put(F::BuildSignerDigest, claim("ci_config_sha"));
        put(F::RunnerEnvironment, claim("runner_environment"));
        put(F::SourceRepositoryUri, under_host(claim("project_path")));
        put(F::SourceRepositoryDigest, claim("sha"));
        put(F::SourceRepositoryRef, git_ref);
        put(F::SourceRepositoryIdentifier, claim("project_id"));
        put(F::SourceRepositoryOwnerUri, under_host(claim("namespace_path")));
        put(F::SourceRepositoryOwnerIdentifier, claim("namespace_id"));
        put(F::BuildConfigUri, Some(signer.clone()));
        put(F::BuildConfigDigest, claim("ci_config_sha"));
        put(F::BuildTrigger, claim("pipeline_source"));
        if let (Some(project), Some(job)) = (claim("project_path"), claim("job_id")) {
            put(
                F::RunInvocationUri,
                Some(format!("{host}/{project}/-/jobs/{job}")),
            );
        }
        put(
            F::SourceRepositoryVisibilityAtSigning,
            claim("project_visibility"),
        );
        Identity::Uri(signer)
    } else if let Some(email) = claim("email") {
        if token.claims.get("email_verified") != Some(&serde_json::Value::Bool(true)) {
            return Err(refuse(
                Reason::IdentityNotAllowed,
                format!(
                    "the identity token's email {email:?} is not verified by its issuer (email_verified)"
                ),
            ));
        }
        Identity::Email(email)
    } else {
        let sub = claim("sub")
            .ok_or_else(|| refuse(Reason::OriginRejected, "the identity token has no subject (sub)"))?;
        let issuer_host = reqwest::Url::parse(&iss)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or(iss.clone());
        Identity::Username(format!("{sub}!{issuer_host}"))
    };
    extensions.sort_by_key(|(extension, _)| *extension);
    Ok(Request { identity, extensions })
}

#[cfg(test)]
#[path = "keyless_tests.rs"]
mod tests;
