//! The Kubernetes admission kits, as typed serde documents written as YAML:
//!
//! - Kyverno (`kyverno.io/v1` ClusterPolicy): `kyverno/notary.yaml` with a Notary attestor holding the policy's
//!   root CA, and `kyverno/cosign.yaml` with a cosign key attestor holding the policy's public key. Two policies,
//!   because one rule's `verifyImages` entries must all pass and an image may carry only one kind of signature.
//! - Sigstore policy-controller (`policy.sigstore.dev/v1beta1` ClusterImagePolicy): a key authority with the
//!   policy's public key. The gateway's cosign signatures are made with a key (cosign through the PKCS#11 module),
//!   never keyless, so no TrustRoot (Fulcio, Rekor) is part of the kit; and they are not in a transparency log
//!   (`--tlog-upload=false`), so Kyverno's attestor ignores the log and the authority names no `ctlog`.

use serde::{Deserialize, Serialize};

use super::{Error, KitFile, Trust};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource<Spec> {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub name: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Kyverno

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPolicySpec {
    pub validation_failure_action: String,
    pub background: bool,
    pub webhook_timeout_seconds: u32,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(rename = "match")]
    pub match_resources: Match,
    pub verify_images: Vec<ImageVerification>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub any: Vec<ResourceFilter>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    pub resources: ResourceDescription,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceDescription {
    pub kinds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageVerification {
    #[serde(rename = "type")]
    pub kind: String,
    pub image_references: Vec<String>,
    pub attestors: Vec<AttestorSet>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttestorSet {
    pub count: u32,
    pub entries: Vec<Attestor>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attestor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<CertificateAttestor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyAttestor>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateAttestor {
    /// The trust anchor: Kyverno's Notary verifier trusts chains that end at it.
    pub cert: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyAttestor {
    pub public_keys: String,
    pub rekor: Rekor,
    pub ctlog: CtLog,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rekor {
    pub ignore_tlog: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CtLog {
    #[serde(rename = "ignoreSCT")]
    pub ignore_sct: bool,
}

fn cluster_policy(
    trust: &Trust,
    suffix: &str,
    verification: ImageVerification,
) -> Resource<ClusterPolicySpec> {
    Resource {
        api_version: "kyverno.io/v1".into(),
        kind: "ClusterPolicy".into(),
        metadata: Metadata {
            name: format!(
                "{}-{suffix}",
                trust.name.to_ascii_lowercase().replace(['_', '.'], "-")
            ),
        },
        spec: ClusterPolicySpec {
            validation_failure_action: "Enforce".into(),
            background: false,
            webhook_timeout_seconds: 30,
            rules: vec![Rule {
                name: format!("{suffix}-signature"),
                match_resources: Match {
                    any: vec![ResourceFilter {
                        resources: ResourceDescription {
                            kinds: vec!["Pod".into()],
                        },
                    }],
                },
                verify_images: vec![verification],
            }],
        },
    }
}

pub fn kyverno(trust: &Trust, patterns: &[String]) -> Result<Vec<KitFile>, Error> {
    let notary = cluster_policy(
        trust,
        "notary",
        ImageVerification {
            kind: "Notary".into(),
            image_references: patterns.to_vec(),
            attestors: vec![AttestorSet {
                count: 1,
                entries: vec![Attestor {
                    certificates: Some(CertificateAttestor {
                        cert: trust.root_pem.clone(),
                    }),
                    keys: None,
                }],
            }],
        },
    );
    let cosign = cluster_policy(
        trust,
        "cosign",
        ImageVerification {
            kind: "Cosign".into(),
            image_references: patterns.to_vec(),
            attestors: vec![AttestorSet {
                count: 1,
                entries: vec![Attestor {
                    certificates: None,
                    keys: Some(KeyAttestor {
                        public_keys: trust.public_key_pem.clone(),
                        rekor: Rekor { ignore_tlog: true },
                        ctlog: CtLog { ignore_sct: true },
                    }),
                }],
            }],
        },
    );
    Ok(vec![
        KitFile::new("kyverno/notary.yaml", serde_yaml::to_string(&notary)?),
        KitFile::new("kyverno/cosign.yaml", serde_yaml::to_string(&cosign)?),
    ])
}

// ---------------------------------------------------------------------------------------------------------------
// policy-controller

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterImagePolicySpec {
    pub images: Vec<ImagePattern>,
    pub authorities: Vec<Authority>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImagePattern {
    pub glob: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    pub name: String,
    pub key: KeyRef,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRef {
    pub data: String,
    pub hash_algorithm: String,
}

pub fn policy_controller(trust: &Trust, patterns: &[String]) -> Result<Vec<KitFile>, Error> {
    let policy = Resource {
        api_version: "policy.sigstore.dev/v1beta1".into(),
        kind: "ClusterImagePolicy".into(),
        metadata: Metadata {
            name: trust.name.to_ascii_lowercase().replace(['_', '.'], "-"),
        },
        spec: ClusterImagePolicySpec {
            images: patterns
                .iter()
                .map(|glob| ImagePattern { glob: glob.clone() })
                .collect(),
            authorities: vec![Authority {
                name: "signpath-key".into(),
                key: KeyRef {
                    data: trust.public_key_pem.clone(),
                    hash_algorithm: "sha256".into(),
                },
            }],
        },
    };
    Ok(vec![KitFile::new(
        "policy-controller/clusterimagepolicy.yaml",
        serde_yaml::to_string(&policy)?,
    )])
}

#[cfg(test)]
mod tests {
    use super::super::tests::trust;
    use super::*;

    /// The YAML reads back into the same typed document (every field known: `deny_unknown_fields`), and names
    /// the fields as the CRDs spell them.
    #[test]
    fn kyverno_policies_hold_the_root_for_notary_and_the_key_for_cosign() {
        let files = kyverno(&trust(), &["localhost:5000/demo/*".into()]).unwrap();
        let notary: Resource<ClusterPolicySpec> = serde_yaml::from_slice(&files[0].contents).unwrap();
        assert_eq!(notary.api_version, "kyverno.io/v1");
        assert_eq!(notary.kind, "ClusterPolicy");
        assert_eq!(notary.metadata.name, "signpath-demo-ec-256-notary");
        let verification = &notary.spec.rules[0].verify_images[0];
        assert_eq!(verification.kind, "Notary");
        assert_eq!(verification.image_references, ["localhost:5000/demo/*"]);
        let entry = &verification.attestors[0].entries[0];
        assert_eq!(entry.certificates.as_ref().unwrap().cert, trust().root_pem);

        let cosign: Resource<ClusterPolicySpec> = serde_yaml::from_slice(&files[1].contents).unwrap();
        let keys = cosign.spec.rules[0].verify_images[0].attestors[0].entries[0]
            .keys
            .as_ref()
            .unwrap();
        assert_eq!(keys.public_keys, trust().public_key_pem);
        let yaml = String::from_utf8(files[1].contents.clone()).unwrap();
        for field in [
            "verifyImages:",
            "imageReferences:",
            "publicKeys:",
            "ignoreTlog: true",
            "ignoreSCT: true",
        ] {
            assert!(yaml.contains(field), "{field} missing:\n{yaml}");
        }
    }

    #[test]
    fn the_cluster_image_policy_is_a_key_authority_for_the_patterns() {
        let files = policy_controller(&trust(), &["localhost:5000/demo/**".into()]).unwrap();
        let policy: Resource<ClusterImagePolicySpec> = serde_yaml::from_slice(&files[0].contents).unwrap();
        assert_eq!(policy.api_version, "policy.sigstore.dev/v1beta1");
        assert_eq!(policy.kind, "ClusterImagePolicy");
        assert_eq!(policy.spec.images[0].glob, "localhost:5000/demo/**");
        assert_eq!(policy.spec.authorities[0].key.data, trust().public_key_pem);
        let yaml = String::from_utf8(files[0].contents.clone()).unwrap();
        assert!(yaml.contains("hashAlgorithm: sha256"), "{yaml}");
    }
}
