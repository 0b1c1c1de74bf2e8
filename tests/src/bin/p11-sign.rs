//! `p11-sign MODULE KEY_LABEL DIGEST_HEX`: one `CKM_ECDSA` signature through a PKCS#11 module, as a host
//! application makes it (initialize, open a session, log in with the PIN `CONFIG`, find the private key by label,
//! sign once), with no retry or fallback of its own. Prints the signature in hex, or the failing function and its
//! return code (`C_Sign CKR_DEVICE_ERROR`) and exits 1. The fault matrix uses it to see the module's own answer;
//! OpenSC's pkcs11-tool, by contrast, retries a failed `C_Sign` as `C_SignUpdate`/`C_SignFinal`.

use std::process::ExitCode;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, label, digest] = args.as_slice() else {
        eprintln!("usage: p11-sign MODULE KEY_LABEL DIGEST_HEX");
        return ExitCode::from(2);
    };
    let Ok(digest) = hex::decode(digest) else {
        eprintln!("DIGEST_HEX is not hex");
        return ExitCode::from(2);
    };
    match sign(module, label, &digest) {
        Ok(signature) => {
            println!("{}", hex::encode(signature));
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("{error}");
            ExitCode::from(1)
        }
    }
}

fn sign(module: &str, label: &str, digest: &[u8]) -> Result<Vec<u8>, String> {
    let pkcs11 = Pkcs11::new(module).map_err(|e| format!("load {module}: {e}"))?;
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(ckr)?;
    let slot = *pkcs11
        .get_slots_with_token()
        .map_err(ckr)?
        .first()
        .ok_or("no slot with a token")?;
    let session = pkcs11.open_ro_session(slot).map_err(ckr)?;
    session
        .login(UserType::User, Some(&AuthPin::new("CONFIG".into())))
        .map_err(ckr)?;
    let key = *session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ckr)?
        .first()
        .ok_or_else(|| format!("no private key labelled {label}"))?;
    session.sign(&Mechanism::Ecdsa, key, digest).map_err(ckr)
}

/// `C_Sign CKR_DEVICE_ERROR` from cryptoki's error: its function and its return value's name, as the
/// specification spells it (cryptoki's `Display` gives the specification's prose instead).
fn ckr(error: cryptoki::error::Error) -> String {
    match error {
        cryptoki::error::Error::Pkcs11(rv, function) => {
            let mut name = String::from("CKR");
            for c in format!("{rv:?}").chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            format!("C_{function:?} {name}")
        }
        other => other.to_string(),
    }
}
