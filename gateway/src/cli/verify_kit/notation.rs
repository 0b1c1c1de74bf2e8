//! The notation kit: `notation/trustpolicy.json` and `notation/truststore/x509/{ca,signingAuthority,tsa}/
//! <name>/*.pem`, notation's own configuration layout, so `XDG_CONFIG_HOME=KIT notation verify IMAGE` uses the kit
//! as it is. Ratify's kit reuses the trust policy document.

use serde::Serialize;
use serde_json::Value;

use super::{Error, KitFile, Trust};

/// notation's trust policy document (notaryproject specs, "Trust Store and Trust Policy", version 1.0).
#[derive(Debug, Serialize)]
pub struct TrustPolicyDocument {
    pub version: &'static str,
    #[serde(rename = "trustPolicies")]
    pub trust_policies: Vec<TrustPolicy>,
}

#[derive(Debug, Serialize)]
pub struct TrustPolicy {
    pub name: String,
    #[serde(rename = "registryScopes")]
    pub registry_scopes: Vec<String>,
    #[serde(rename = "signatureVerification")]
    pub signature_verification: Value,
    #[serde(rename = "trustStores")]
    pub trust_stores: Vec<String>,
    #[serde(rename = "trustedIdentities")]
    pub trusted_identities: Vec<String>,
}

/// The trust policy for `trust`'s signatures in `scopes`, its trust stores named `store` (`ca:` always — notation
/// with our plugin signs `notary.x509`; `signingAuthority:` when the project's OCI artifact configurations sign
/// with that scheme; `tsa:` when the gateway timestamps). The identity is the policy's leaf subject, so another
/// policy under the same root does not pass.
pub fn trust_policy(trust: &Trust, scopes: &[String], store: &str) -> TrustPolicyDocument {
    let mut trust_stores = vec![format!("ca:{store}")];
    if trust.signing_authority {
        trust_stores.push(format!("signingAuthority:{store}"));
    }
    if trust.tsa_root_pem.is_some() {
        trust_stores.push(format!("tsa:{store}"));
    }
    TrustPolicyDocument {
        version: "1.0",
        trust_policies: vec![TrustPolicy {
            name: trust.name.clone(),
            registry_scopes: scopes.to_vec(),
            signature_verification: serde_json::json!({"level": "strict"}),
            trust_stores,
            trusted_identities: vec![format!("x509.subject: {}", trust.leaf_subject)],
        }],
    }
}

pub fn kit(trust: &Trust, scopes: &[String]) -> Result<Vec<KitFile>, Error> {
    let document = trust_policy(trust, scopes, &trust.name);
    let store = |kind: &str| format!("notation/truststore/x509/{kind}/{}/root.pem", trust.name);
    let mut files = vec![
        KitFile::new("notation/trustpolicy.json", serde_json::to_vec_pretty(&document)?),
        KitFile::new(store("ca"), trust.root_pem.clone()),
    ];
    if trust.signing_authority {
        files.push(KitFile::new(store("signingAuthority"), trust.root_pem.clone()));
    }
    if let Some(tsa) = &trust.tsa_root_pem {
        files.push(KitFile::new(store("tsa"), tsa.clone()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::super::tests::trust;
    use super::*;

    #[test]
    fn the_trust_policy_names_the_scopes_the_stores_and_the_policys_leaf_subject() {
        let files = kit(&trust(), &["localhost:5000/demo/app".into()]).unwrap();
        let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "notation/trustpolicy.json",
                "notation/truststore/x509/ca/signpath-demo-ec-256/root.pem"
            ]
        );
        let document: Value = serde_json::from_slice(&files[0].contents).unwrap();
        assert_eq!(
            document,
            serde_json::json!({"version": "1.0", "trustPolicies": [{
                "name": "signpath-demo-ec-256",
                "registryScopes": ["localhost:5000/demo/app"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:signpath-demo-ec-256"],
                "trustedIdentities": ["x509.subject: CN=demo/ec-256,O=SignPath Gateway Demo,ST=Vienna,C=AT"],
            }]})
        );
    }

    #[test]
    fn signing_authority_and_timestamps_add_their_stores() {
        let mut trust = trust();
        trust.signing_authority = true;
        trust.tsa_root_pem = Some("TSA".into());
        let files = kit(&trust, &["*".into()]).unwrap();
        let document: Value = serde_json::from_slice(&files[0].contents).unwrap();
        assert_eq!(
            document["trustPolicies"][0]["trustStores"],
            serde_json::json!([
                "ca:signpath-demo-ec-256",
                "signingAuthority:signpath-demo-ec-256",
                "tsa:signpath-demo-ec-256"
            ])
        );
        assert!(files
            .iter()
            .any(|f| f.path.ends_with("signingAuthority/signpath-demo-ec-256/root.pem")));
        assert!(files
            .iter()
            .any(|f| f.path.ends_with("tsa/signpath-demo-ec-256/root.pem")));
    }
}
