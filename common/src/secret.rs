//! Secrets as their own type: `Debug` prints a placeholder, so a token cannot reach a log by accident, and the
//! value is exposed only where it goes on the wire.

pub use secrecy::{ExposeSecret, SecretString};

/// An API token. `format!("{:?}", token)` prints `SecretBox<str>([REDACTED])`.
pub type ApiToken = SecretString;

/// Replaces secrets that may stand in a command line (cosign's `pin-value=` in a PKCS#11 URI, `--api-token`
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

    #[test]
    fn token_debug_is_redacted() {
        let token = ApiToken::from("very-secret".to_owned());
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
