//! Signing an image in a layout: Notary Project signatures attached as referrers (an `index.json` entry per
//! signature manifest, so `oras cp -r --from-oci-layout` carries them and `notation verify --oci-layout` finds
//! them) and cosign signatures under their `sha256-<hex>.sig` tag. An image index gets its index signed, and each
//! platform manifest too when asked.

use std::collections::BTreeMap;
use std::path::Path;

use time::OffsetDateTime;

use crate::cosign;
use crate::error::Result;
use crate::image::{self, Image, Layers};
use crate::layout::{Descriptor, Layout, ANNOTATION_REF_NAME, OCI_MANIFEST};
use crate::notary::{self, manifest::EMPTY_CONFIG, NotaryOptions, SignatureFormat, SigningScheme};
use crate::signer::{Signer, SigningTarget};
use crate::tarball;

/// What to sign with.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// A Notary Project signature in this format, or none.
    pub notary: Option<SignatureFormat>,
    /// The Notary Project signing scheme of that signature.
    pub signing_scheme: SigningScheme,
    pub cosign: bool,
    /// Also sign each platform manifest of an image index.
    pub each_platform: bool,
    pub signing_time: OffsetDateTime,
    pub expiry: Option<OffsetDateTime>,
    pub signing_agent: String,
}

/// One signature written into the layout.
#[derive(Debug, Clone)]
pub struct Signature {
    /// `notary` or `cosign`.
    pub kind: &'static str,
    /// What was signed.
    pub subject: Descriptor,
    /// The signature manifest.
    pub manifest: Descriptor,
}

#[derive(Debug, Clone)]
pub struct Signed {
    pub image: Image,
    pub signatures: Vec<Signature>,
}

/// Signs the image `reference` names in the tarball at `tarball` (rewritten in place). Layers may have been
/// stripped: only manifests are read.
pub fn sign_tarball(
    tarball: &Path,
    reference: &str,
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Signed> {
    let staging = tarball::staging_dir(tarball)?;
    tarball::unpack_file(tarball, staging.path())?;
    let layout = Layout::open(staging.path())?;
    let signed = sign_layout(&layout, reference, signer, options)?;
    tarball::pack_file(staging.path(), tarball)?;
    Ok(signed)
}

/// [`sign_tarball`] on an unpacked layout directory.
pub fn sign_layout(
    layout: &Layout,
    reference: &str,
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Signed> {
    let image = image::find(layout, reference)?;
    let graph = image::graph(layout, &image.descriptor, Layers::MayBeAbsent)?;
    let mut subjects = vec![image.descriptor.bare()];
    if options.each_platform && image.descriptor.is_index() {
        subjects.extend(graph.manifests.iter().map(Descriptor::bare));
    }
    let mut signatures = Vec::new();
    for subject in subjects {
        if let Some(format) = options.notary {
            let target = SigningTarget {
                reference: reference.to_owned(),
                descriptor: subject.clone(),
                purpose: "notary",
            };
            let notary_options = NotaryOptions {
                format,
                signing_scheme: options.signing_scheme,
                signing_time: options.signing_time,
                expiry: options.expiry,
                signing_agent: options.signing_agent.clone(),
                extended: Vec::new(),
            };
            let envelope = notary::sign(signer, &target, &notary_options)?;
            let created = notary::rfc3339(options.signing_time);
            let (manifest, _) = notary::manifest::signature_manifest(&subject, &envelope, &created);
            layout.write_blob(EMPTY_CONFIG)?;
            layout.write_blob(&envelope.bytes)?;
            let descriptor = Descriptor::of(OCI_MANIFEST, &manifest);
            layout.write_blob(&manifest)?;
            layout.add_index_entry(&descriptor)?;
            signatures.push(Signature {
                kind: "notary",
                subject: subject.clone(),
                manifest: descriptor,
            });
        }
        if options.cosign {
            let target = SigningTarget {
                reference: reference.to_owned(),
                descriptor: subject.clone(),
                purpose: "cosign",
            };
            let signature = cosign::sign(signer, &image.parsed, &target)?;
            layout.write_blob(&signature.payload)?;
            layout.write_blob(&signature.config)?;
            layout.write_blob(&signature.manifest)?;
            let mut descriptor = Descriptor::of(OCI_MANIFEST, &signature.manifest);
            descriptor.annotations = BTreeMap::from([(ANNOTATION_REF_NAME.to_owned(), signature.tag)]);
            layout.add_index_entry(&descriptor)?;
            signatures.push(Signature {
                kind: "cosign",
                subject,
                manifest: descriptor,
            });
        }
    }
    Ok(Signed { image, signatures })
}
