//! The PKCS#11 module: filled in by the module work.
