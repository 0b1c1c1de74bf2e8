//! `init`'s time-stamping authority: an EC P-256 key generated in the HSM, a TSA certificate for it under a
//! self-signed TSA root (whose key is dropped after this one issuance), and the files an operator hands to
//! clients: `tsa/root.pem` (notation's `--timestamp-root-cert`, `notation cert add --type tsa`) and
//! `tsa/chain.pem` (cosign's `--timestamp-certificate-chain`). Like `init.rs`, it must never import `http/`.

use std::path::{Path, PathBuf};

use common::keys::KeySpec;

use crate::config::TimestampingConfig;
use crate::error::BoxError;
use crate::fsutil::write_public;
use crate::{hsm, pki};

/// CKA_LABEL of the TSA key.
pub const TSA_KEY_LABEL: &str = "tsa";

/// The TSA policy OID `init` configures: OpenSSL's example TSA policy (`tsa_policy1` in its openssl.cnf), for a
/// demonstration setup; a site names its own policy OID in `[timestamping] policy`.
pub const DEMO_TSA_POLICY: &str = "1.2.3.4.1";

pub fn setup(dir: &Path, signer: &hsm::Signer) -> Result<TimestampingConfig, BoxError> {
    std::fs::create_dir_all(dir.join("tsa"))?;
    let spki = signer.generate_key(KeySpec::Ec256, TSA_KEY_LABEL)?;
    let issued = pki::tsa::issue(
        "SignPath Gateway Demo TSA Root",
        "SignPath Gateway Demo TSA",
        &spki,
    )?;
    let tsa_pem = pki::pem(&issued.tsa)?;
    let root_pem = pki::pem(&issued.root)?;
    write_public(&dir.join("tsa/tsa.pem"), tsa_pem.as_bytes())?;
    write_public(&dir.join("tsa/root.pem"), root_pem.as_bytes())?;
    write_public(
        &dir.join("tsa/chain.pem"),
        format!("{tsa_pem}{root_pem}").as_bytes(),
    )?;
    Ok(TimestampingConfig {
        key_label: TSA_KEY_LABEL.to_owned(),
        certificate_chain: vec![PathBuf::from("tsa/tsa.pem"), PathBuf::from("tsa/root.pem")],
        policy: DEMO_TSA_POLICY.to_owned(),
    })
}
