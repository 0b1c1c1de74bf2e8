//! cosign signatures, key-based, as `cosign sign --key` stores them (sigstore/cosign `specs/SIGNATURE_SPEC.md`):
//! the simple-signing payload naming the image's repository and manifest digest, signed over its SHA-256
//! (ECDSA as DER, RSA as PKCS#1 v1.5, which is what `cosign verify --key` checks), stored as a layer of the
//! manifest tagged `sha256-<hex>.sig` with the base64 signature in `dev.cosignproject.cosign/signature`.
//!
//! This module builds the documents; [`crate::sign`] writes them into the layout.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::keys::{HashAlgorithm, KeyKind, SignatureScheme};
use serde_json::json;

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::{Descriptor, OCI_CONFIG, OCI_MANIFEST};
use crate::reference::Reference;
use crate::signer::{Signer, SigningKey, SigningTarget};

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";

/// The blobs of one cosign signature: payload, config, manifest, and the tag the manifest goes under.
#[derive(Debug, Clone)]
pub struct CosignSignature {
    pub payload: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// `sha256-<hex>.sig`.
    pub tag: String,
}

/// The simple-signing payload, as `cosign generate` writes it.
pub fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .unwrap_or_default()
}

/// The tag cosign looks a signature up by: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm().name(), digest.hex())
}

/// Signs the image `target` names, for the repository of `reference`.
pub fn sign(signer: &dyn Signer, reference: &Reference, target: &SigningTarget) -> Result<CosignSignature> {
    let key = SigningKey::of(signer)?;
    let scheme = match key.kind {
        KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1,
        KeyKind::Ec(_) => SignatureScheme::EcdsaAsn1,
    };
    let payload = payload(&reference.cosign_repository(), &target.descriptor.digest);
    let signature = key.sign(signer, scheme, HashAlgorithm::Sha256, &payload, target)?;
    let mut layer = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, &payload);
    layer.annotations = BTreeMap::from([(ANNOTATION_SIGNATURE.to_owned(), STANDARD.encode(signature))]);
    // An image config whose one uncompressed layer is the payload, as go-containerregistry makes it.
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]},
        "config": {},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::of(OCI_CONFIG, &config),
        "layers": [layer],
    }))
    .unwrap_or_default();
    Ok(CosignSignature {
        payload,
        config,
        manifest,
        tag: signature_tag(&target.descriptor.digest),
    })
}
