//! The Notary signature manifest: an OCI image manifest whose config has the media type
//! `application/vnd.cncf.notary.signature` (no `artifactType`: this is the form notation itself writes, and the
//! only one `notation verify --oci-layout` finds in a layout), the empty JSON object as that config, the envelope as its one layer, the signed image as
//! its `subject` (which makes it a referrer), and the annotation `io.cncf.notary.x509chain.thumbprint#S256`
//! (the SHA-256 of each certificate in the chain, leaf first, as a JSON array of hex strings), as notation writes it.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{Envelope, SIGNATURE_ARTIFACT_TYPE};
use crate::layout::{Descriptor, ANNOTATION_CREATED, OCI_MANIFEST};

pub const ANNOTATION_THUMBPRINT: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// The empty JSON object every artifact manifest without a config points to.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// The manifest bytes, and the descriptor of the envelope blob they name (the caller stores both blobs).
pub fn signature_manifest(subject: &Descriptor, envelope: &Envelope, created: &str) -> (Vec<u8>, Descriptor) {
    let layer = Descriptor::of(envelope.format.media_type(), &envelope.bytes);
    let thumbprints: Vec<String> = envelope
        .certificate_chain
        .iter()
        .map(|c| hex::encode(Sha256::digest(c)))
        .collect();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_THUMBPRINT.to_owned(),
        serde_json::to_string(&thumbprints).unwrap_or_default(),
    );
    annotations.insert(ANNOTATION_CREATED.to_owned(), created.to_owned());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::of(SIGNATURE_ARTIFACT_TYPE, EMPTY_CONFIG),
        "layers": [layer],
        "subject": subject.bare(),
        "annotations": annotations,
    });
    (serde_json::to_vec(&manifest).unwrap_or_default(), layer)
}
