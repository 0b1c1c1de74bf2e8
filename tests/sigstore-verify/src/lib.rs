//! Nothing to export: the crate exists for its test, `tests/cosign_sigstore_rs.rs`, which checks cosign signatures
//! made through `libsignpath_pkcs11.so` with sigstore-rs. It must not import our signing code (common, the
//! module): a verifier shares nothing with the signer it checks.
