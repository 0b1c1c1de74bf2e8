//! OCI image layout tarballs for signing before push, SignPath's "sp-oci" flow: read and write layouts streamed
//! (never a whole layer in memory), strip content layers out and repack them with every digest checked, and sign
//! images in the layout with Notary Project (JWS, COSE) and cosign signatures through a [`signer::Signer`].
//!
//! - [`digest`], [`layout`], [`tarball`]: digests, the layout on disk, its tarball form.
//! - [`reference`], [`image`]: which image a reference names, and what it consists of.
//! - [`strip`], [`repack`]: layers out and back in.
//! - [`signer`], [`notary`], [`cosign`], [`sign`]: signatures and writing them into the layout.
//!
//! This library never talks to the network or a key store itself: the caller's [`signer::Signer`] does (the
//! gateway's HSM, or the gateway's hash API in the `signpath-oci` CLI). It must never import the gateway crate.

pub mod cosign;
pub mod digest;
pub mod error;
pub mod image;
pub mod layout;
pub mod notary;
pub mod reference;
pub mod repack;
pub mod sign;
pub mod signer;
pub mod strip;
pub mod tarball;

pub use error::{Error, Result};
