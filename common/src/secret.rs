//! Secrets as their own type: `Debug` prints a placeholder, so a token cannot reach a log by accident, and the
//! value is exposed only where it goes on the wire.
//!
//! Two layers keep secrets out of what a client sends or logs: [`scrub`] removes the exact values this process
//! holds (the API token, the `OrganizationId:ApiToken` PIN, the CI identity token), in plain or percent-encoded
//! form; [`redact_command_line`] then removes what *looks* like a secret by pattern, for values we never saw.

use std::sync::{Mutex, OnceLock};

pub use secrecy::{ExposeSecret, SecretString};

/// What a removed secret is replaced with.
pub const REDACTED: &str = "***";

/// The exact secrets this process holds. Longest first, so the PIN `ORG:TOKEN` goes before the token inside it.
fn known() -> &'static Mutex<Vec<SecretString>> {
    static KNOWN: OnceLock<Mutex<Vec<SecretString>>> = OnceLock::new();
    KNOWN.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds a secret value to those [`scrub`] removes. Blank values are ignored.
pub fn remember(secret: &str) {
    let secret = secret.trim();
    if secret.is_empty() {
        return;
    }
    let mut known = known().lock().unwrap_or_else(|p| p.into_inner());
    if known.iter().any(|k| k.expose_secret() == secret) {
        return;
    }
    known.push(SecretString::from(secret.to_owned()));
    known.sort_by_key(|k| std::cmp::Reverse(k.expose_secret().len()));
}

/// Adds an API token and the PIN that carries it (`OrganizationId:ApiToken`, SignPath's Cryptoki PIN form).
pub fn remember_token(organization_id: Option<&str>, token: &SecretString) {
    if let Some(organization) = organization_id.filter(|o| !o.trim().is_empty()) {
        remember(&format!("{}:{}", organization.trim(), token.expose_secret()));
    }
    remember(token.expose_secret());
}

/// `text` without any secret this process holds (see [`remember`]), each occurrence replaced by `***`.
pub fn scrub(text: &str) -> String {
    let known = known().lock().unwrap_or_else(|p| p.into_inner());
    if known.is_empty() {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for secret in known.iter() {
        out = remove_secret(&out, secret.expose_secret());
    }
    out
}

/// [`scrub`], then [`redact_command_line`]: what a client may put into `sourceProcess.commandLine`.
pub fn clean_command_line(command_line: &str) -> String {
    redact_command_line(&scrub(command_line))
}

/// Replaces every occurrence of `secret` in `text`, written plainly or with any of its bytes percent-encoded (as in
/// a `pkcs11:` URI's `pin-value`, in either hex case). Hand-written because no decoder maps a match in the decoded
/// text back to the bytes of the original, which is what replacing in place needs.
fn remove_secret(text: &str, secret: &str) -> String {
    let plain = text.replace(secret, REDACTED);
    let bytes = plain.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match match_encoded(&bytes[i..], secret.as_bytes()) {
            Some(len) => {
                out.extend_from_slice(REDACTED.as_bytes());
                i += len;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only whole ASCII sequences were replaced, so the result is as valid UTF-8 as `text` was.
    String::from_utf8(out).unwrap_or(plain)
}

/// The length of the prefix of `text` that spells `secret` with each byte plain or as `%XX` (`+` for a space).
fn match_encoded(text: &[u8], secret: &[u8]) -> Option<usize> {
    let mut at = 0;
    for &want in secret {
        let encoded = text
            .get(at..at + 3)
            .filter(|t| t[0] == b'%')
            .and_then(|t| Some(hex_value(t[1])? << 4 | hex_value(t[2])?));
        if encoded == Some(want) {
            at += 3;
        } else if text.get(at) == Some(&want) || (want == b' ' && text.get(at) == Some(&b'+')) {
            at += 1;
        } else {
            return None;
        }
    }
    Some(at)
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// An API token. `format!("{:?}", token)` prints `SecretBox<str>([REDACTED])`.
pub type ApiToken = SecretString;

/// The second layer: replaces secrets that may stand in a command line (cosign's `pin-value=` in a PKCS#11 URI, `--api-token`
/// arguments, `Bearer` values) with `***`, so what we send or log as the caller's command line carries none.
pub fn redact_command_line(command_line: &str) -> String {
    let mut out = String::with_capacity(command_line.len());
    let mut redact_next_word = false;
    for (i, word) in command_line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if redact_next_word {
            out.push_str("***");
            redact_next_word = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "--api-token" | "--pin" | "--password" | "-p" | "bearer"
        ) {
            redact_next_word = true;
            out.push_str(word);
            continue;
        }
        out.push_str(&redact_word(word));
    }
    out
}

fn redact_word(word: &str) -> String {
    const KEYS: [&str; 5] = ["pin-value=", "--api-token=", "--pin=", "--password=", "apitoken="];
    let lower = word.to_ascii_lowercase();
    for key in KEYS {
        if let Some(pos) = lower.find(key) {
            let start = pos + key.len();
            let end = word[start..]
                .find(['&', ';', '"', '\''])
                .map_or(word.len(), |e| start + e);
            return format!("{}***{}", &word[..start], redact_word(&word[end..]));
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_tokens_are_redacted() {
        assert_eq!(
            redact_command_line("cosign sign --key pkcs11:token=SignPath;object=a%2Fb?module-path=/x.so&pin-value=org:tok%2Bx img"),
            "cosign sign --key pkcs11:token=SignPath;object=a%2Fb?module-path=/x.so&pin-value=*** img"
        );
        assert_eq!(
            redact_command_line("tool --api-token secret --x"),
            "tool --api-token *** --x"
        );
        assert_eq!(redact_command_line("tool --pin=1234"), "tool --pin=***");
        assert_eq!(redact_command_line("plain words only"), "plain words only");
    }

    /// Every way issue 13 found a token on a command line, scrubbed by the exact value whatever the option.
    #[test]
    fn held_secrets_are_removed_from_every_command_line_form() {
        let token = SecretString::from("tOk+en/Zq7=xW2:a".to_owned());
        remember_token(Some("org-7f3a"), &token);
        let encoded = "tOk%2Ben%2FZq7%3dxW2%3Aa";
        let lines = [
            "pkcs11-tool --module m.so -p org-7f3a:tOk+en/Zq7=xW2:a --sign".to_owned(),
            "pkcs11-tool --module m.so --pin=org-7f3a:tOk+en/Zq7=xW2:a --sign".to_owned(),
            "jarsigner -storepass org-7f3a:tOk+en/Zq7=xW2:a -keystore NONE app.jar".to_owned(),
            "keytool -list -keypass org-7f3a:tOk+en/Zq7=xW2:a".to_owned(),
            "openssl pkeyutl -sign -passin pass:org-7f3a:tOk+en/Zq7=xW2:a -in x".to_owned(),
            "p11tool --set-pin=org-7f3a:tOk+en/Zq7=xW2:a --list-all".to_owned(),
            format!("cosign sign --key pkcs11:token=SignPath?pin-value=org-7f3a%3A{encoded} img"),
            "cosign sign --key pkcs11:token=SignPath?x-secret=org-7f3a%3atOk%2ben%2fZq7%3dxW2%3aa img"
                .to_owned(),
            "tool ORGANIZATION=org-7f3a TOKEN=tOk+en/Zq7=xW2:a".to_owned(),
        ];
        for line in &lines {
            // The exact-value layer alone, without the patterns' help.
            let cleaned = scrub(line);
            assert!(!cleaned.contains("tOk"), "{line} -> {cleaned}");
            assert!(
                !cleaned.to_ascii_lowercase().contains("tok%2ben"),
                "{line} -> {cleaned}"
            );
            assert!(cleaned.contains(REDACTED), "{line} -> {cleaned}");
        }
        assert_eq!(
            clean_command_line("pkcs11-tool -p org-7f3a:tOk+en/Zq7=xW2:a --sign"),
            "pkcs11-tool -p *** --sign"
        );
        assert_eq!(
            scrub("openssl -passin pass:org-7f3a:tOk+en/Zq7=xW2:a"),
            "openssl -passin pass:***"
        );
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn encoded_matching_follows_each_byte() {
        assert_eq!(match_encoded(b"a%2Fb!", b"a/b"), Some(5));
        assert_eq!(match_encoded(b"a%2fb", b"a/b"), Some(5));
        assert_eq!(match_encoded(b"a+b", b"a b"), Some(3));
        assert_eq!(match_encoded(b"a%2", b"a/"), None);
        assert_eq!(remove_secret("x=a%2Fb&y", "a/b"), "x=***&y");
    }

    #[test]
    fn token_debug_is_redacted() {
        let token = ApiToken::from("very-secret".to_owned());
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
