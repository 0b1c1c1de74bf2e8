//! `signpath-gateway keyless init`: the keyless CA for a setup `init` made before it had one, made as `init`
//! makes it (`init::keyless_intermediate`) under the root of `[pki]`, and `[keyless]` written into gateway.toml.

use std::path::Path;

use super::policy::open_hsm;
use super::CliResult;
use crate::config::GatewayConfig;
use crate::init::{keyless_intermediate, KEYLESS_KEY_LABEL};
use crate::pki;

pub fn init(config_path: &Path) -> CliResult {
    let (mut config, base) = GatewayConfig::load(config_path)?;
    if config.keyless.is_some() {
        return Err(format!("{} already has [keyless]", config_path.display()).into());
    }
    let pki_config = config
        .pki
        .clone()
        .ok_or("the keyless CA is made under the gateway's own root, and this setup has no [pki]")?;
    if base.join("ca/keyless.pem").exists() {
        return Err(format!(
            "{} exists; move it away first",
            base.join("ca/keyless.pem").display()
        )
        .into());
    }
    let signer = open_hsm(&config, &base)?;
    if signer.public_key(KEYLESS_KEY_LABEL).is_ok() {
        return Err(format!("the HSM already holds a key {KEYLESS_KEY_LABEL:?}").into());
    }
    let cas = pki::ca::load(&pki_config, &base, &signer)?;
    let root = cas.first().ok_or("[pki] names no CA")?;
    let keyless = keyless_intermediate(&base, &signer, &root.ca, &pki_config)?;
    config.keyless = Some(keyless);
    config.save(config_path)?;
    println!(
        "made the keyless CA {} (key {KEYLESS_KEY_LABEL:?}) under {}; add [[keyless.rules]] and restart serve",
        base.join("ca/keyless.pem").display(),
        root.name
    );
    Ok(())
}
