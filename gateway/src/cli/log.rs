//! `signpath-gateway log verify | key | checkpoint`: the transparency log from the command line, read straight from
//! the stores and the HSM (the gateway may be serving meanwhile).

use std::path::Path;

use pkcs8::der::pem::LineEnding;

use super::policy::open_hsm;
use super::CliResult;
use crate::config::GatewayConfig;
use crate::store::Stores;
use crate::tlog::{self, LogKey};

/// The log's stores and key: the key from the HSM, named as the newest checkpoint names the log (a gateway on
/// port 0 learns its origin only when it listens), else as the configuration's public URL does.
fn open(config_path: &Path) -> Result<(Stores, LogKey), crate::error::BoxError> {
    let (config, base) = GatewayConfig::load(config_path)?;
    let stores = Stores::open(&base, &config.audit_db)?;
    let signer = open_hsm(&config, &base)?;
    let spki = signer.public_key(tlog::KEY_LABEL).map_err(|e| {
        format!(
            "the HSM has no checkpoint key ({}): {e}; `serve` makes it on its first start",
            tlog::KEY_LABEL
        )
    })?;
    let origin = match stores.log.checkpoint()? {
        Some((_, note)) => note.lines().next().unwrap_or_default().to_owned(),
        None => tlog::origin(&config.public_url),
    };
    Ok((stores, LogKey { origin, spki }))
}

/// `log verify`.
pub fn verify(config_path: &Path, since: Option<&Path>) -> CliResult {
    let (stores, key) = open(config_path)?;
    let since = since
        .map(|path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())))
        .transpose()?;
    let records = stores.audit.records(None)?;
    match tlog::verify::verify(stores.log.as_ref(), &key, &records, since.as_deref()) {
        Ok(verified) => {
            println!(
                "the log of {} agrees with its checkpoint and the audit log: {} leaves ({} signatures), root {}{}{}",
                key.origin,
                verified.size,
                verified.signature_leaves,
                verified.root,
                if verified.pending > 0 { format!(", {} waiting to be sequenced", verified.pending) } else { String::new() },
                if since.is_some() { "; consistent with the older checkpoint" } else { "" },
            );
            Ok(())
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("log verify: {problem}");
            }
            Err(format!(
                "the transparency log of {} does not verify ({} problems)",
                key.origin,
                problems.len()
            )
            .into())
        }
    }
}

/// `log key`: the public key as PEM.
pub fn key(config_path: &Path) -> CliResult {
    let (_, key) = open(config_path)?;
    let document =
        spki::Document::try_from(key.spki.as_slice()).map_err(|e| format!("the checkpoint key: {e}"))?;
    print!(
        "{}",
        document
            .to_pem("PUBLIC KEY", LineEnding::LF)
            .map_err(|e| format!("the checkpoint key: {e}"))?
    );
    Ok(())
}

/// `log checkpoint`.
pub fn checkpoint(config_path: &Path) -> CliResult {
    let (stores, _) = open(config_path)?;
    match stores.log.checkpoint()? {
        Some((_, note)) => {
            print!("{note}");
            Ok(())
        }
        None => Err("the log has no checkpoint yet; `serve` signs the first on start".into()),
    }
}
