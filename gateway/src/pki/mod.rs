//! X.509 for the gateway: today the demonstration PKI `init` makes (`demo`); certificate signing requests,
//! revocation lists and timestamps belong here too. Certificates and keys only: this folder must never import
//! `signing/`, `http/` or `store/`.

mod demo;
pub mod tsa;

pub use demo::{intermediate, leaf, pem, root, tls};
