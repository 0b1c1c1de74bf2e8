//! The containers/image kit (skopeo, podman, CRI-O): `containers/policy.json` requiring a GPG `signedBy`
//! signature of the policy's OpenPGP key (embedded as `keyData`, so the kit moves as one folder) in each scope and
//! rejecting everything else, and `containers/registries.d/<name>.yaml` saying where the signatures are read
//! (`lookaside`). Formats: containers-policy.json(5) and containers-registries.d(5).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::json;

use super::{Error, KitFile, Trust};

#[derive(Debug, Serialize)]
struct RegistriesD {
    docker: BTreeMap<String, Lookaside>,
}

#[derive(Debug, Serialize)]
struct Lookaside {
    lookaside: String,
}

pub fn kit(trust: &Trust, scopes: &[String], gpg_key: &[u8], lookaside: &str) -> Result<Vec<KitFile>, Error> {
    let requirement = json!([{"type": "signedBy", "keyType": "GPGKeys", "keyData": BASE64.encode(gpg_key)}]);
    let docker: serde_json::Map<String, serde_json::Value> = scopes
        .iter()
        .map(|scope| (scope.clone(), requirement.clone()))
        .collect();
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": docker},
    });
    let registries = RegistriesD {
        docker: scopes
            .iter()
            .map(|scope| {
                (
                    scope.clone(),
                    Lookaside {
                        lookaside: lookaside.to_owned(),
                    },
                )
            })
            .collect(),
    };
    Ok(vec![
        KitFile::new("containers/policy.json", serde_json::to_vec_pretty(&policy)?),
        KitFile::new(
            format!("containers/registries.d/{}.yaml", trust.name),
            serde_yaml::to_string(&registries)?,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::tests::trust;
    use super::*;

    #[test]
    fn each_scope_requires_the_gpg_key_and_reads_the_lookaside() {
        let key = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n...";
        let files = kit(
            &trust(),
            &["localhost:5000/demo".into()],
            key,
            "https://sigstore.example.com",
        )
        .unwrap();
        let policy: serde_json::Value = serde_json::from_slice(&files[0].contents).unwrap();
        assert_eq!(policy["default"], json!([{"type": "reject"}]));
        let requirement = &policy["transports"]["docker"]["localhost:5000/demo"][0];
        assert_eq!(requirement["type"], "signedBy");
        assert_eq!(requirement["keyType"], "GPGKeys");
        assert_eq!(
            BASE64.decode(requirement["keyData"].as_str().unwrap()).unwrap(),
            key
        );
        assert_eq!(
            files[1].path.display().to_string(),
            "containers/registries.d/signpath-demo-ec-256.yaml"
        );
        let registries: serde_yaml::Value = serde_yaml::from_slice(&files[1].contents).unwrap();
        assert_eq!(
            registries["docker"]["localhost:5000/demo"]["lookaside"],
            "https://sigstore.example.com"
        );
    }
}
