//! OCI image layout tarballs signed on the gateway: the layout is checked when it is submitted (every image's
//! manifests and indexes against their digests; content layers may be stripped), and signed, once allowed, with
//! the `signpath-oci` library over the policy's HSM key: Notary Project signatures (JWS or COSE, under the signing
//! scheme the artifact configuration names) as referrers of each image and/or cosign signatures, written back
//! into a tarball.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::protocol::IMAGE_REFERENCE_PARAMETER;
use signpath_oci::image::{self, Layers};
use signpath_oci::layout::{Layout, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use signpath_oci::notary::SignatureFormat;
use signpath_oci::reference::Reference;
use signpath_oci::sign::{sign_layout, SignOptions};
use signpath_oci::signer::{DigestToSign, Signer, SignerError};

use super::state::Policy;
use crate::config::ArtifactConfigurationConfig;
use crate::hsm;

/// An image of the layout: the name to sign it under (with its digest, so it selects exactly one entry).
#[derive(Debug, Clone)]
pub struct LayoutImage {
    pub reference: String,
    /// The platform manifests of an image index (0 for a manifest), each signed too under `each_platform`.
    pub platforms: usize,
}

/// The signatures signing `images` under `configuration` makes, as [`sign_checked_layout`] makes them: per image
/// its root and, under `each_platform`, each platform manifest, times the formats (a Notary Project signature,
/// a cosign signature). What a release group's limit counts.
pub fn signature_count(images: &[LayoutImage], configuration: &ArtifactConfigurationConfig) -> u32 {
    let subjects: usize = images
        .iter()
        .map(|i| {
            1 + if configuration.each_platform {
                i.platforms
            } else {
                0
            }
        })
        .sum();
    u32::try_from(subjects)
        .unwrap_or(u32::MAX)
        .saturating_mul(configuration.signature_formats())
}

/// The Notary Project signature format `configuration` names, or none.
fn notary_format(configuration: &ArtifactConfigurationConfig) -> Option<SignatureFormat> {
    configuration.notary.format()
}

/// The most descriptors the images of one submitted layout may name, each counted for every image that names it
/// (the work their signing takes): a multi-platform image is a few dozen; this is a hundred or more images.
pub const MAX_LAYOUT_DESCRIPTORS: usize = 10_000;

/// Why a submitted layout is not checked.
#[derive(Debug)]
pub enum LayoutRefusal {
    /// Something is wrong in the tarball, in its terms.
    Invalid(String),
    /// Its images name more than [`MAX_LAYOUT_DESCRIPTORS`].
    TooLarge(String),
    /// The request was dropped (its timeout, or its client gone) while the layout was checked.
    Cancelled,
}

impl From<signpath_oci::Error> for LayoutRefusal {
    fn from(error: signpath_oci::Error) -> Self {
        match error {
            signpath_oci::Error::Cancelled => Self::Cancelled,
            e @ signpath_oci::Error::TooManyDescriptors { .. } => Self::TooLarge(e.to_string()),
            e => Self::Invalid(in_tarball_terms(&e)),
        }
    }
}

/// Unpacks the tarball at `tarball` into `staging` and checks every image in it, each blob once and within
/// [`MAX_LAYOUT_DESCRIPTORS`], stopping when `cancelled` is set. Returns the images, each as `name@digest`; an
/// error says what is wrong in the tarball's terms (a blob that does not match its digest, an index entry without
/// its blob, no image at all, an image named only by a tag when no `reference` says whose).
pub fn check_layout(
    tarball: &Path,
    staging: &Path,
    reference: Option<&str>,
    cancelled: &AtomicBool,
) -> Result<Vec<LayoutImage>, LayoutRefusal> {
    let repository = reference
        .map(repository_of)
        .transpose()
        .map_err(LayoutRefusal::Invalid)?;
    std::fs::create_dir_all(staging).map_err(|e| {
        tracing::error!(error = %e, "cannot create the staging directory");
        LayoutRefusal::Invalid("the gateway could not unpack it".to_owned())
    })?;
    signpath_oci::tarball::unpack_file(tarball, staging)?;
    let layout = Layout::open(staging)?;
    let mut images: Vec<LayoutImage> = Vec::new();
    let mut roots = Vec::new();
    for entry in layout.index()? {
        let name = entry
            .annotation(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| entry.annotation(ANNOTATION_REF_NAME));
        // Only named entries are images to sign; signatures already in the layout (untagged referrers, cosign's
        // `.sig` tags) are not.
        let Some(name) = name.filter(|n| !n.ends_with(".sig")) else {
            continue;
        };
        if !(entry.is_index() || entry.is_manifest()) {
            continue;
        }
        let name = image_name(name, repository.as_ref()).map_err(LayoutRefusal::Invalid)?;
        let reference = format!("{name}@{}", entry.digest);
        if !images.iter().any(|i| i.reference == reference) {
            images.push(LayoutImage {
                reference,
                platforms: 0,
            });
            roots.push(entry);
        }
    }
    if images.is_empty() {
        return Err(LayoutRefusal::Invalid(
            "the layout's index.json names no image manifest or image index".into(),
        ));
    }
    let budget = image::Budget {
        max_descriptors: MAX_LAYOUT_DESCRIPTORS,
        cancelled: Some(cancelled),
    };
    image::check_images(&layout, &roots, Layers::MayBeAbsent, budget)?;
    // The platform manifests each index names, for the release group's count: walked once per distinct index,
    // after the check above bounded what all the images name together.
    let mut platforms_of = std::collections::HashMap::new();
    for (image, root) in images.iter_mut().zip(&roots) {
        if !root.is_index() {
            continue;
        }
        image.platforms = match platforms_of.get(&root.digest) {
            Some(&n) => n,
            None => {
                let n = image::graph(&layout, root, Layers::MayBeAbsent)?.manifests.len();
                platforms_of.insert(root.digest.clone(), n);
                n
            }
        };
    }
    Ok(images)
}

/// The repository `reference` names (`registry.example.com/team/app`, a tag allowed), for images named only by a
/// tag.
fn repository_of(reference: &str) -> Result<Reference, String> {
    let parsed = Reference::parse(reference).map_err(|_| {
        format!("the image reference {reference:?} is not [registry/]repository[:tag], as in registry.example.com/team/app:1.0")
    })?;
    if parsed.digest.is_some() {
        return Err(format!(
            "the image reference {reference:?} names a digest; name the repository (and tag) the images are pushed to"
        ));
    }
    Ok(parsed)
}

/// The full name of an `index.json` entry named `name`: as it is when it is a full name; a bare tag (skopeo's and
/// oras's `ref.name`) under the repository `reference` names, whose tag, if it has one, must be this tag. A bare
/// tag without a reference is refused: signing it under a made-up name would put that name in the signature
/// (cosign's `docker-reference`), and the signature would not verify where the image is pushed.
fn image_name(name: &str, reference: Option<&Reference>) -> Result<String, String> {
    if name.contains(['/', ':']) {
        return Ok(name.to_owned());
    }
    let Some(reference) = reference else {
        return Err(format!(
            "an image is named only by its tag {name:?} (as skopeo and oras write it); name its repository with the \
             {IMAGE_REFERENCE_PARAMETER} parameter (signpath-oci submit --reference registry.example.com/team/app:{name})"
        ));
    };
    if let Some(tag) = reference.tag.as_deref().filter(|tag| *tag != name) {
        return Err(format!(
            "an image is named by the tag {name:?}, but the image reference names the tag {tag:?}; give the reference \
             without a tag, or with this one"
        ));
    }
    let repository = match &reference.registry {
        Some(registry) => format!("{registry}/{}", reference.repository),
        None => reference.repository.clone(),
    };
    Ok(format!("{repository}:{name}"))
}

/// An error of the layout as the submitter sees it: what is wrong in the tarball, never a path on the gateway.
fn in_tarball_terms(error: &signpath_oci::Error) -> String {
    match error {
        signpath_oci::Error::Io { .. } => "it is not a tar archive of an OCI image layout".into(),
        other => other.to_string(),
    }
}

/// Signs every image (`name@digest`) of the checked layout in `staging` and packs it into `signed`. Returns one
/// line per signature (`kind image digest -> signature manifest`) for the audit record.
pub fn sign_checked_layout(
    staging: &Path,
    images: &[String],
    signer: &HsmSigner<'_>,
    configuration: &ArtifactConfigurationConfig,
    signed: &Path,
) -> Result<Vec<String>, String> {
    let notary = notary_format(configuration);
    let now = time::OffsetDateTime::now_utc();
    let options = SignOptions {
        notary,
        signing_scheme: configuration.signing_scheme,
        cosign: configuration.cosign,
        each_platform: configuration.each_platform,
        signing_time: now.replace_nanosecond(0).unwrap_or(now),
        expiry: None,
        signing_agent: format!("signpath-gateway/{}", env!("CARGO_PKG_VERSION")),
    };
    let layout = Layout::open(staging).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for image in images {
        let done = sign_layout(&layout, image, signer, &options).map_err(|e| e.to_string())?;
        for s in done.signatures {
            lines.push(format!(
                "{} {} {} -> {}",
                s.kind, image, s.subject.digest, s.manifest.digest
            ));
        }
    }
    signpath_oci::tarball::pack_file(staging, signed).map_err(|e| e.to_string())?;
    Ok(lines)
}

/// The policy's HSM key as the `signpath-oci` library's [`Signer`].
pub struct HsmSigner<'a> {
    pub hsm: &'a hsm::Signer,
    pub policy: &'a Policy,
}

impl Signer for HsmSigner<'_> {
    fn certificate_chain(&self) -> Result<Vec<Vec<u8>>, SignerError> {
        let chain = self.policy.info.certificate_chain.as_deref().unwrap_or_default();
        chain
            .iter()
            .map(|c| BASE64.decode(c).map_err(|e| SignerError(Box::new(e))))
            .collect()
    }

    fn sign_digest(&self, request: &DigestToSign<'_>) -> Result<Vec<u8>, SignerError> {
        self.hsm
            .sign(
                self.policy.key,
                self.policy.kind,
                request.scheme,
                request.hash,
                request.digest,
            )
            .map_err(|e| SignerError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_named_only_by_a_tag_takes_the_repository_of_the_reference() {
        let reference = repository_of("registry.example.com/team/app:1.0").unwrap();
        assert_eq!(
            image_name("1.0", Some(&reference)).unwrap(),
            "registry.example.com/team/app:1.0"
        );
        let untagged = repository_of("registry.example.com/team/app").unwrap();
        assert_eq!(
            image_name("2.0", Some(&untagged)).unwrap(),
            "registry.example.com/team/app:2.0"
        );
        assert_eq!(
            image_name("registry.example.com/team/app:1.0", None).unwrap(),
            "registry.example.com/team/app:1.0"
        );
    }

    #[test]
    fn an_image_named_only_by_a_tag_without_a_reference_is_refused_not_named_image() {
        let error = image_name("1.0", None).unwrap_err();
        assert_eq!(
            error,
            "an image is named only by its tag \"1.0\" (as skopeo and oras write it); name its repository with the \
             ImageReference parameter (signpath-oci submit --reference registry.example.com/team/app:1.0)"
        );
        let other_tag = repository_of("registry.example.com/team/app:2.0").unwrap();
        assert!(image_name("1.0", Some(&other_tag))
            .unwrap_err()
            .contains("names the tag \"2.0\""));
        assert!(repository_of("registry.example.com/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000")
            .unwrap_err()
            .contains("names a digest"));
    }
}
