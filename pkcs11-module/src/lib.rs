//! `libsignpath_pkcs11.so`: a PKCS#11 v2.40 module whose keys are the signing policies of a SignPath-compatible
//! gateway. cosign, pkcs11-tool, p11tool, OpenSSL's pkcs11 engine and Java's SunPKCS11 load it and sign; the
//! private keys never leave the gateway's HSM.
//!
//! - `ffi` (private): the C ABI — the only place with `unsafe`. Thin `C_*` functions that check
//!   pointers, convert C types and call the core, each inside `catch_unwind`.
//! - [`core`]: the safe core — state, sessions, objects, attributes, mechanisms, signing.
//! - [`error`]: the one error type and its one translation into `CK_RV`.
//!
//! `docs/pkcs11.md` is the user's guide (PIN, URIs for cosign and the other clients, error codes).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod core;
pub mod error;
mod ffi;
