//! The one slot and its token, described as Rust values (the FFI layer copies them into `CK_*_INFO`), and the
//! PIN forms SignPath's Cryptoki library accepts.

use cryptoki_sys::*;
use secrecy::SecretString;

use common::config::Config;

use crate::error::{Error, Result};

/// SignPath's documentation configures SunPKCS11 with `slot=1`; ours is the same so that configuration works.
pub const SLOT_ID: CK_SLOT_ID = 1;

pub const MANUFACTURER: &str = "SignPath Container Signing";
pub const LIBRARY_DESCRIPTION: &str = "SignPath Cryptoki (remote keys)";
pub const SLOT_DESCRIPTION: &str = "SignPath signing gateway";
pub const TOKEN_MODEL: &str = "Remote HSM";
pub const TOKEN_SERIAL: &str = "1";

/// The literal PIN that means "take OrganizationId and ApiToken from the configuration" (SignPath's word).
pub const CONFIG_PIN: &[u8] = b"CONFIG";

/// The longest PIN we accept: an organization id, a colon and an API token fit easily.
pub const MAX_PIN_LEN: usize = 4096;

/// Checks a slot id from the caller. A wrong one is `CKR_SLOT_ID_INVALID`, as before; the first time in a process
/// the log also says which slot to use, because cosign and pkcs11-tool ask for slot 0 unless told otherwise.
pub fn check_slot(slot: CK_SLOT_ID, token_label: &str) -> Result<()> {
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if slot == SLOT_ID {
        return Ok(());
    }
    if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!("{}", wrong_slot_hint(slot, token_label));
    }
    Err(Error::SlotIdInvalid(slot))
}

/// What the log says about a slot that does not exist.
pub fn wrong_slot_hint(slot: CK_SLOT_ID, token_label: &str) -> String {
    format!(
        "slot {slot} does not exist; the {token_label} token is slot {SLOT_ID} (`--slot-id {SLOT_ID}`, or \
         `pkcs11:token={}` in the URI)",
        uri_escape(token_label)
    )
}

/// A token label as a `pkcs11:` URI path attribute value (RFC 7512 `pchar` minus `;`): unreserved characters
/// stay, others are percent-encoded.
fn uri_escape(label: &str) -> String {
    label
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `major.minor` of this crate, for `libraryVersion`, `hardwareVersion` and `firmwareVersion`.
pub fn version() -> CK_VERSION {
    let number = |s: &str| s.parse::<u8>().unwrap_or(0);
    CK_VERSION {
        major: number(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: number(env!("CARGO_PKG_VERSION_MINOR")),
    }
}

/// A fixed-length PKCS#11 string: UTF-8, blank (0x20) padded, never NUL terminated; cut on a character boundary.
pub fn blank_padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// What `C_GetTokenInfo` reports, besides the constant strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub label: String,
    pub flags: CK_FLAGS,
    pub session_count: usize,
    pub rw_session_count: usize,
}

/// The token never changes and is always present; it holds remote keys only, so it is write protected (RW sessions
/// are still accepted: cosign and SunPKCS11 always open them). Login is required because the policy list depends
/// on the credentials.
pub const TOKEN_FLAGS: CK_FLAGS =
    CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_WRITE_PROTECTED;

/// Organization and token for one login.
#[derive(Debug)]
pub struct Credentials {
    pub organization_id: String,
    pub api_token: SecretString,
}

/// Reads the PIN: `OrganizationId:ApiToken`, or `CONFIG` / empty / NULL for the configured values (crypto11, and
/// so cosign, logs in with a NULL PIN when none is given).
pub fn credentials(pin: Option<&[u8]>, config: &Config) -> Result<Credentials> {
    let pin = pin.unwrap_or_default();
    if pin.is_empty() || pin == CONFIG_PIN {
        let organization_id = config.require_organization_id().map_err(Error::Credentials)?;
        let api_token = config.require_api_token().map_err(Error::Credentials)?;
        return Ok(Credentials {
            organization_id: organization_id.to_owned(),
            api_token: api_token.clone(),
        });
    }
    if pin.len() > MAX_PIN_LEN {
        return Err(Error::PinMalformed);
    }
    let text = std::str::from_utf8(pin).map_err(|_| Error::PinMalformed)?;
    // The PIN as typed, so that it is removed from anything the module sends or logs (see common::secret).
    common::secret::remember(text);
    let (organization_id, api_token) = text.split_once(':').ok_or(Error::PinMalformed)?;
    let organization_id = organization_id.trim();
    if organization_id.is_empty() || api_token.is_empty() {
        return Err(Error::PinMalformed);
    }
    Ok(Credentials {
        organization_id: organization_id.to_owned(),
        api_token: SecretString::from(api_token.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::BTreeMap;

    fn config(pairs: &'static [(&'static str, &'static str)]) -> Config {
        let env = move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Config::load(&BTreeMap::new(), &env).unwrap()
    }

    #[test]
    fn strings_are_blank_padded_and_cut_on_char_boundaries() {
        assert_eq!(&blank_padded::<8>("Sign"), b"Sign    ");
        assert_eq!(&blank_padded::<4>("SignPath"), b"Sign");
        // "é" is two bytes; it must not be split.
        assert_eq!(&blank_padded::<2>("aé"), b"a ");
    }

    #[test]
    fn a_wrong_slot_is_invalid_and_the_hint_names_the_right_one() {
        assert!(matches!(check_slot(0, "SignPath"), Err(Error::SlotIdInvalid(0))));
        assert!(check_slot(SLOT_ID, "SignPath").is_ok());
        assert_eq!(
            wrong_slot_hint(0, "SignPath"),
            "slot 0 does not exist; the SignPath token is slot 1 (`--slot-id 1`, or `pkcs11:token=SignPath` in the URI)"
        );
        assert!(wrong_slot_hint(0, "Team Keys").ends_with("`pkcs11:token=Team%20Keys` in the URI)"));
    }

    #[test]
    fn pin_carries_organization_and_token() {
        let c = credentials(Some(b"org-1:tok:with:colons"), &config(&[])).unwrap();
        assert_eq!(c.organization_id, "org-1");
        assert_eq!(c.api_token.expose_secret(), "tok:with:colons");
        assert!(matches!(
            credentials(Some(b"no-colon"), &config(&[])),
            Err(Error::PinMalformed)
        ));
        assert!(matches!(
            credentials(Some(b":tok"), &config(&[])),
            Err(Error::PinMalformed)
        ));
    }

    #[test]
    fn config_empty_and_null_pins_read_the_configuration() {
        let configured = config(&[("SIGNPATH_ORGANIZATION_ID", "org"), ("SIGNPATH_API_TOKEN", "tok")]);
        for pin in [None, Some(&b""[..]), Some(CONFIG_PIN)] {
            let c = credentials(pin, &configured).unwrap();
            assert_eq!(
                (c.organization_id.as_str(), c.api_token.expose_secret()),
                ("org", "tok")
            );
        }
        assert!(matches!(
            credentials(None, &config(&[])),
            Err(Error::Credentials(_))
        ));
    }
}
