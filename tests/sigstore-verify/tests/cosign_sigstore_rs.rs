//! cosign signatures made through `libsignpath_pkcs11.so` (EC-256 and RSA-2048 policies of the real gateway, a
//! real registry on loopback) verified by sigstore-rs, the Rust implementation of cosign's verification: its
//! client reads the `.sig` manifest from the registry, checks each layer's payload against the image digest, and
//! `verify_constraints` checks the signature with the public key cosign exported from the token.
//!
//! Negatives: the other policy's key, and a payload altered in the registry, must not verify.

use e2e_tests::cosign::{Cosign, StoredSignature};
use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{ImageRef, Registry, SmallImage};
use e2e_tests::require_tool;

use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

/// Whether sigstore-rs accepts `image`'s cosign signatures as signed by `public_key_pem`. `Err` when it could
/// not even read them (no signature, a payload that does not name the image, a registry error).
async fn sigstore_verifies(image: &ImageRef, public_key_pem: &str) -> Result<bool, String> {
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    };
    let mut client = ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .map_err(|e| e.to_string())?;
    let reference: OciReference = image.reference.parse().map_err(|e| format!("{e}"))?;
    let layers = client
        .trusted_signature_layers(&Auth::Anonymous, &reference)
        .await
        .map_err(|e| e.to_string())?;
    let verifier = PublicKeyVerifier::try_from(public_key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
    Ok(sigstore::cosign::verify_constraints(&layers, constraints.iter()).is_ok())
}

#[tokio::test(flavor = "current_thread")]
async fn sigstore_rs_verifies_ec_and_rsa_cosign_signatures_made_through_the_module() {
    let cosign_binary = require_tool!("cosign");
    require_tool!("docker-registry");
    let gateway = Gateway::start();
    let registry = Registry::start();
    let cosign = Cosign::new(cosign_binary, &gateway);

    let mut signed = Vec::new();
    for policy in ["ec-256", "rsa-2048"] {
        let image = registry.push_image(
            "demo/sigstore-rs",
            policy,
            &SmallImage::with_content(policy.as_bytes()),
        );
        cosign.sign(policy, &image.reference);
        let public_key = cosign.public_key(policy);
        assert_eq!(
            sigstore_verifies(&image, &public_key).await,
            Ok(true),
            "{policy}: sigstore-rs refuses the signature"
        );
        signed.push((policy, image, public_key));
    }

    // Wrong key: each image checked with the other policy's public key.
    for (i, (policy, image, _)) in signed.iter().enumerate() {
        let (other, _, other_key) = &signed[1 - i];
        assert_eq!(
            sigstore_verifies(image, other_key).await,
            Ok(false),
            "{policy}'s signature verified with {other}'s key"
        );
    }

    // Altered payload: the same signature over a payload whose annotation was added in the registry.
    let (policy, image, public_key) = &signed[0];
    let stored = StoredSignature::read(&registry, image);
    let mut payload: serde_json::Value =
        serde_json::from_slice(&stored.payload).expect("simple signing JSON");
    payload["optional"] = serde_json::json!({"tampered": "yes"});
    stored.push_with_payload(&registry, serde_json::to_vec(&payload).expect("JSON"));
    let altered = sigstore_verifies(image, public_key).await;
    assert_eq!(altered, Ok(false), "{policy}: an altered payload verified");
}
