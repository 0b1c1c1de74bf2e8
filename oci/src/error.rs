//! The crate's one error type: every variant names the layout object, file or reference a user has to look at.
//! It sits above `digest` (whose parse error it carries) and below everything that signs or reads a layout, so
//! it imports nothing but `digest`.

use crate::digest::{Digest, InvalidDigest};

/// A failure of a [`crate::signer::Signer`], carried as its source error (an HSM error, a gateway error, a
/// denial). Defined here, beside the [`Error::Signing`] that carries it, so the error type needs nothing from
/// `signer`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SignerError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("the tarball entry {path:?} cannot be part of an OCI image layout: {reason}")]
    UnexpectedEntry { path: String, reason: &'static str },

    #[error(transparent)]
    InvalidDigest(#[from] InvalidDigest),

    #[error(
        "blob {digest} does not match its digest: its content hashes to {actual}; the tarball is damaged or was \
         altered"
    )]
    BlobDigestMismatch { digest: Digest, actual: Digest },

    #[error(
        "the layout has no {0}: is this an OCI image layout tarball (docker buildx build -o type=oci,dest=image.tar)?"
    )]
    MissingLayoutFile(&'static str),

    #[error("{what} is not valid: {reason}")]
    InvalidDocument { what: String, reason: String },

    #[error(
        "{what} names blob {digest}, but the layout has no such blob: the index does not match the blobs"
    )]
    MissingBlob { digest: Digest, what: String },

    #[error(
        "blob {digest} has {actual} bytes, but {what} says {expected}: the index does not match the blobs"
    )]
    SizeMismatch {
        digest: Digest,
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error("no image in the layout matches the reference {reference:?}; the layout names: {available}")]
    ReferenceNotFound { reference: String, available: String },

    #[error("the reference {reference:?} matches several images ({digests}); give the full reference")]
    AmbiguousReference { reference: String, digests: String },

    #[error("{0:?} is not an image reference ([registry/]repository[:tag][@digest])")]
    InvalidReference(String),

    #[error("layer {digest} of {reference} is missing: it is neither in the tarball nor at {path}")]
    LayerMissing {
        digest: Digest,
        reference: String,
        path: String,
    },

    #[error("layer {digest} at {path} was altered: its content hashes to {actual} ({size} bytes, the manifest says {expected_size})")]
    LayerAltered {
        digest: Digest,
        path: String,
        actual: Digest,
        size: u64,
        expected_size: u64,
    },

    #[error("the signing key cannot make Notary Project signatures: {0}")]
    UnsupportedKey(String),

    #[error("the signing certificate chain is not usable: {0}")]
    CertificateChain(String),

    #[error("signing {target} failed: {source}")]
    Signing {
        target: String,
        #[source]
        source: SignerError,
    },

    #[error("the signature over {target} does not verify with the signing certificate's key: {reason}")]
    SignatureCheck { target: String, reason: String },

    #[error("building the COSE envelope failed: {0}")]
    Cose(String),

    #[error("the layout's images name more than {limit} descriptors (indexes, manifests, configs and layers, counted for each image that names them); send fewer images per tarball")]
    TooManyDescriptors { limit: usize },

    #[error("the check of the layout was cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
