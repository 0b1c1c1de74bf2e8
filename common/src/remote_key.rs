//! A signing policy seen as a key: its certificate chain and public key, and a `sign_digest` that asks the gateway
//! and checks the answer before returning it.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::client::GatewayClient;
use crate::error::Error;
use crate::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use crate::protocol::{
    EcdsaOptions, EcdsaSignatureFormat, HashSigningData, Metadata, PaddingMode, RsaOptions, SignHashRequest,
    SignatureAlgorithm, SigningPolicyInfo, WireKeyType,
};
use crate::pubkey::PublicKey;
use crate::x509::{pem_certificates, ParsedCertificate};

/// A key id as every client takes it: a SignPath project slug and signing policy slug, `Project/Policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId {
    pub project: String,
    pub policy: String,
}

impl KeyId {
    /// `Project/Policy` with both parts non-blank, no second `/` and no surrounding white space; `None` otherwise
    /// (each client says what to pass instead, in its own terms).
    pub fn parse(key_id: &str) -> Option<Self> {
        match key_id.split_once('/') {
            Some((project, policy))
                if !project.trim().is_empty()
                    && !policy.trim().is_empty()
                    && !policy.contains('/')
                    && key_id.trim() == key_id =>
            {
                Some(Self {
                    project: project.to_owned(),
                    policy: policy.to_owned(),
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.project, self.policy)
    }
}

/// A policy's key material as the gateway describes it.
#[derive(Debug, Clone)]
pub struct RemoteKey {
    pub project: String,
    pub policy: String,
    pub info: SigningPolicyInfo,
    pub certificate: ParsedCertificate,
    pub public_key: PublicKey,
    /// DER certificates, leaf first: the gateway's `certificateChain`, or the leaf followed by the configured
    /// `CertificateChainFile`.
    pub chain: Vec<Vec<u8>>,
}

impl RemoteKey {
    /// Builds the key from a `MySigningPolicies` entry, checking that the certificate's key is what the policy
    /// claims. `chain_file` supplies the CA certificates when the gateway returns only the leaf.
    pub fn from_policy_info(info: SigningPolicyInfo, chain_file: Option<&Path>) -> Result<Self, Error> {
        let key_id = format!("{}/{}", info.project_slug, info.signing_policy_slug);
        let cert_error = |source| Error::Certificate {
            key_id: key_id.clone(),
            source,
        };
        let leaf_der = BASE64
            .decode(info.certificate_bytes.trim())
            .map_err(|e| Error::PolicyKey {
                key_id: key_id.clone(),
                reason: format!("certificateBytes is not base64: {e}"),
            })?;
        let certificate = ParsedCertificate::from_der(&leaf_der).map_err(cert_error)?;
        let public_key = certificate.public_key().map_err(cert_error)?;
        let expected = match info.key_type {
            WireKeyType::Rsa => KeyKind::Rsa {
                bits: info.key_size_in_bits,
            },
            WireKeyType::Ecdsa => match crate::keys::Curve::from_bits(info.key_size_in_bits) {
                Some(curve) => KeyKind::Ec(curve),
                None => {
                    return Err(Error::PolicyKey {
                        key_id,
                        reason: format!("unsupported ECDSA key size {}", info.key_size_in_bits),
                    })
                }
            },
        };
        if public_key.kind() != expected {
            return Err(Error::PolicyKey {
                key_id,
                reason: format!(
                    "the policy says {expected} but its certificate holds a {} key",
                    public_key.kind()
                ),
            });
        }
        let mut chain = match &info.certificate_chain {
            Some(chain) if !chain.is_empty() => chain
                .iter()
                .map(|c| BASE64.decode(c.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::PolicyKey {
                    key_id: key_id.clone(),
                    reason: format!("certificateChain holds something that is not base64: {e}"),
                })?,
            _ => vec![leaf_der.clone()],
        };
        if chain[0] != leaf_der {
            return Err(Error::PolicyKey {
                key_id,
                reason: "certificateChain does not start with the policy's certificate".into(),
            });
        }
        if chain.len() == 1 {
            if let Some(path) = chain_file {
                let pem = std::fs::read(path).map_err(|e| Error::File {
                    path: path.display().to_string(),
                    reason: format!("{e} (CertificateChainFile / SIGNPATH_CERTIFICATE_CHAIN_FILE)"),
                })?;
                chain.extend(pem_certificates(&pem, &path.display().to_string()).map_err(cert_error)?);
            }
        }
        Ok(Self {
            project: info.project_slug.clone(),
            policy: info.signing_policy_slug.clone(),
            info,
            certificate,
            public_key,
            chain,
        })
    }

    /// `Project/Policy`: the key id in Notation, the label and id in PKCS#11.
    pub fn key_id(&self) -> String {
        format!("{}/{}", self.project, self.policy)
    }

    pub fn kind(&self) -> KeyKind {
        self.public_key.kind()
    }

    /// Signs `digest` (made with `hash`) through the gateway and verifies the result with the policy's public key.
    /// The signature comes back in the encoding `scheme` names (raw r||s for `EcdsaIeee`).
    pub fn sign_digest(
        &self,
        client: &GatewayClient,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
        metadata: Option<Metadata>,
    ) -> Result<Vec<u8>, Error> {
        self.sign_digest_as(client, scheme, hash, digest, metadata, None)
    }

    /// [`Self::sign_digest`], the request sent under `idempotency_key` when given (the client's id of the request).
    pub fn sign_digest_as(
        &self,
        client: &GatewayClient,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
        metadata: Option<Metadata>,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let request = self.sign_request(scheme, hash, digest, metadata)?;
        let response = match idempotency_key {
            Some(key) => client.sign_hash_as(&request, key)?,
            None => client.sign_hash(&request)?,
        };
        let encoded = response
            .hash_signing_result
            .ok_or_else(|| Error::InvalidResponse("the answer has no hashSigningResult".into()))?
            .signature;
        let signature = BASE64
            .decode(encoded.trim())
            .map_err(|e| Error::InvalidResponse(format!("the signature is not base64: {e}")))?;
        self.public_key
            .verify_digest(scheme, hash, digest, &signature)
            .map_err(|source| Error::BadSignature {
                key_id: self.key_id(),
                source,
            })?;
        Ok(signature)
    }

    /// The `SignHash` body for a digest; checks the digest's length and that the scheme fits the key.
    pub fn sign_request(
        &self,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
        metadata: Option<Metadata>,
    ) -> Result<SignHashRequest, Error> {
        if digest.len() != hash.output_len() {
            return Err(Error::PolicyKey {
                key_id: self.key_id(),
                reason: format!(
                    "a {hash} digest has {} bytes, not {}",
                    hash.output_len(),
                    digest.len()
                ),
            });
        }
        if !scheme.fits(self.kind()) {
            return Err(Error::PolicyKey {
                key_id: self.key_id(),
                reason: format!("{scheme} cannot be used with a {} key", self.kind()),
            });
        }
        let (signature_algorithm, rsa_options, ecdsa_options) = match scheme {
            SignatureScheme::RsaPkcs1 | SignatureScheme::RsaPss => (
                SignatureAlgorithm::Rsa,
                Some(RsaOptions {
                    hash_algorithm_name: Some(hash.signpath_name().to_owned()),
                    hash_algorithm_oid: None,
                    padding_mode: Some(if scheme == SignatureScheme::RsaPss {
                        PaddingMode::Pss
                    } else {
                        PaddingMode::Pkcs1
                    }),
                }),
                None,
            ),
            SignatureScheme::EcdsaIeee | SignatureScheme::EcdsaAsn1 => (
                SignatureAlgorithm::Ecdsa,
                None,
                Some(EcdsaOptions {
                    signature_format: Some(if scheme == SignatureScheme::EcdsaAsn1 {
                        EcdsaSignatureFormat::Asn1
                    } else {
                        EcdsaSignatureFormat::Ieee
                    }),
                }),
            ),
        };
        Ok(SignHashRequest {
            project_slug: self.project.clone(),
            signing_policy_slug: self.policy.clone(),
            artifact_configuration_slug: None,
            description: None,
            hash_signing_data: HashSigningData {
                signature_algorithm,
                rsa_options,
                ecdsa_options,
                hash: BASE64.encode(digest),
                metadata,
            },
        })
    }
}

impl GatewayClient {
    /// Fetches one policy's key (`GET MySigningPolicies?projectSlug=..&signingPolicySlug=..`).
    pub fn fetch_key(
        &self,
        project: &str,
        policy: &str,
        chain_file: Option<&Path>,
    ) -> Result<RemoteKey, Error> {
        let policies = self.my_signing_policies(Some(project), Some(policy))?;
        let info = policies
            .into_iter()
            .find(|p| {
                p.project_slug.eq_ignore_ascii_case(project)
                    && p.signing_policy_slug.eq_ignore_ascii_case(policy)
            })
            .ok_or_else(|| Error::PolicyNotFound {
                project: project.to_owned(),
                policy: policy.to_owned(),
            })?;
        RemoteKey::from_policy_info(info, chain_file)
    }
}
