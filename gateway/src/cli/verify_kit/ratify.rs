//! The Ratify kit: `ratify/config.json` for `ratify verify --config` (Ratify v1's configuration file: the oras
//! store with cosign signatures, the config policy, the notation verifier with the notation kit's trust policy
//! and the cosign verifier with the policy's key), and the files it names, by absolute path (Ratify reads paths
//! relative to its working directory, not to the configuration).

use std::path::Path;

use serde_json::json;

use super::notation::trust_policy;
use super::{Error, KitFile, Trust};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Ratify's certificates for `verificationCerts` form one trust store named `certs`.
const RATIFY_STORE: &str = "certs";

pub fn kit(trust: &Trust, scopes: &[String], out: &Path, plain_http: bool) -> Result<Vec<KitFile>, Error> {
    let root = out.join("ratify/certs/root.pem");
    let key = out.join("ratify/cosign.pub");
    let mut store = json!({"name": "oras", "cosignEnabled": true});
    if plain_http {
        store["useHttp"] = json!(true);
    }
    let config = json!({
        "store": {"version": "1.0.0", "plugins": [store]},
        // "any" as `notation verify` and `cosign verify` do: one signature of the policy suffices, and another
        // team's signature beside it does not fail the image (Ratify's default, "all", would).
        "policy": {"version": "1.0.0", "plugin": {"name": "configPolicy", "artifactVerificationPolicies": {
            NOTARY_SIGNATURE: "any", COSIGN_SIGNATURE: "any",
        }}},
        "verifier": {"version": "1.0.0", "plugins": [
            {"name": "notation", "artifactTypes": NOTARY_SIGNATURE, "verificationCerts": [root],
             "trustPolicyDoc": trust_policy(trust, scopes, RATIFY_STORE)},
            {"name": "cosign", "artifactTypes": COSIGN_SIGNATURE, "key": key},
        ]},
    });
    let mut certs = trust.root_pem.clone();
    if let Some(tsa) = &trust.tsa_root_pem {
        certs.push_str(tsa);
    }
    Ok(vec![
        KitFile::new("ratify/config.json", serde_json::to_vec_pretty(&config)?),
        KitFile::new("ratify/certs/root.pem", certs),
        KitFile::new("ratify/cosign.pub", trust.public_key_pem.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::tests::trust;
    use super::*;

    #[test]
    fn the_config_names_the_kits_own_files_and_both_verifiers() {
        let files = kit(
            &trust(),
            &["localhost:5000/demo/app".into()],
            Path::new("/kit"),
            true,
        )
        .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&files[0].contents).unwrap();
        assert_eq!(config["store"]["plugins"][0]["useHttp"], true);
        let policies = &config["policy"]["plugin"]["artifactVerificationPolicies"];
        assert_eq!(policies[NOTARY_SIGNATURE], "any");
        assert_eq!(policies[COSIGN_SIGNATURE], "any");
        let verifiers = &config["verifier"]["plugins"];
        assert_eq!(verifiers[0]["verificationCerts"][0], "/kit/ratify/certs/root.pem");
        assert_eq!(
            verifiers[0]["trustPolicyDoc"]["trustPolicies"][0]["trustStores"],
            json!(["ca:certs"])
        );
        assert_eq!(verifiers[1]["key"], "/kit/ratify/cosign.pub");
        assert_eq!(files[2].contents, trust().public_key_pem.as_bytes());
    }
}
