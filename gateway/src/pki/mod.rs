//! X.509 for the gateway: the PKI `init` makes (`demo`) and its CAs (`ca`), keys in the HSM signing through
//! x509-cert's builders (`hsm_key`), certificate signing requests for policy keys (`csr`), the checks a policy's
//! chain passes before it is put in force (`check`), revocation (`revocations`, `crl`), keyless certificates as
//! Fulcio issues them (`keyless`) and the Sigstore documents that name the gateway's CA and TSA
//! (`sigstore_documents`). Certificates and keys only: this folder must never import `signing/`, `http/` or
//! `store/`.

pub mod ca;
pub mod check;
pub mod crl;
pub mod csr;
mod demo;
pub mod hsm_key;
pub mod keyless;
pub mod publisher;
pub mod revocations;
pub mod sigstore_documents;
pub mod tsa;

pub use demo::{intermediate, leaf, pem, root, tls, Ca};
