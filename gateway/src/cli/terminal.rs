//! Printing client data on an operator's terminal: every string a client chose (OCI metadata, slugs, release
//! groups, reasons) goes through [`escape`] first, so an ESC sequence, a `\r` or a bidi override cannot repaint or
//! reorder the line an approver reads; and tables fit the terminal's width ([`width`], [`fit`]).
//!
//! Owns terminal output only; it must never import the stores or `http/`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal as _;

/// The width used when stdout is not a terminal and `COLUMNS` is not set (a pipe, a file, a test).
const DEFAULT_WIDTH: usize = 100;
/// Narrower than this, the tables stop shrinking (and wrap).
const MIN_WIDTH: usize = 80;

/// Whether `c` could move the cursor, change colours or reorder text on a terminal: C0 and C1 controls, DEL, and
/// Unicode's bidirectional formatting characters (the "Trojan Source" set).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a visible escape (`\x1b`, `\r`, `\u{202e}`), and a backslash as
/// `\\` so an escape in the output always means one in the input.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The terminal's width in columns: `COLUMNS` if set, else the size of the terminal on stdout, else 100.
pub fn width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
    {
        return columns.max(MIN_WIDTH);
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
            if size.ws_col > 0 {
                return usize::from(size.ws_col).max(MIN_WIDTH);
            }
        }
    }
    DEFAULT_WIDTH
}

/// `text` (already escaped) in at most `max` characters: cut at the start with `…` when longer, since the end of
/// an image reference (repository, tag, digest) says most about it.
pub fn fit_end(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(1);
    let tail: String = text.chars().skip(count - keep).collect();
    format!("…{tail}")
}

/// `text` (already escaped) in at most `max` characters, cut at the end with `…`.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{head}…")
}

/// `text` padded with spaces to `width` characters (counting characters, not bytes, unlike `{:<width$}`).
pub fn pad(text: &str, width: usize) -> String {
    let count = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(count)))
}

/// An image as `registry/repository:tag@digest`, escaped, with the digest cut to its algorithm and 12 hex
/// digits (what `docker images` shows); when longer than `max`, without the registry, then cut from the start.
pub fn image_reference(
    registry: Option<&str>,
    repository: Option<&str>,
    tag: Option<&str>,
    digest: Option<&str>,
    max: usize,
) -> String {
    let mut name = String::new();
    if let Some(registry) = registry.filter(|r| !r.is_empty()) {
        name.push_str(&escape(registry));
        name.push('/');
    }
    name.push_str(&escape(repository.unwrap_or("?")));
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        name.push(':');
        name.push_str(&escape(tag));
    }
    if let Some(digest) = digest.filter(|d| !d.is_empty()) {
        name.push('@');
        name.push_str(&short_digest(&escape(digest)));
    }
    if name.chars().count() > max {
        // The registry says least about what was signed: drop it before cutting the repository.
        if let Some((_, rest)) = name
            .split_once('/')
            .filter(|_| registry.is_some_and(|r| !r.is_empty()))
        {
            name = rest.to_owned();
        }
    }
    fit_end(&name, max)
}

/// `sha256:0123456789ab…` → `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(19).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_shown_not_obeyed() {
        assert_eq!(escape("acme/app"), "acme/app");
        assert_eq!(escape("v1\x1b[2K\rok"), "v1\\x1b[2K\\rok");
        assert_eq!(escape("a\u{9b}31m"), "a\\x9b31m");
        assert_eq!(escape("evil\u{202e}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(escape("a\\x1b"), "a\\\\x1b");
        assert_eq!(escape("bell\x07del\x7f"), "bell\\x07del\\x7f");
        assert_eq!(escape("grüße"), "grüße");
    }

    #[test]
    fn image_references_keep_their_end() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            image_reference(Some("reg:5000"), Some("acme/app"), Some("v1"), Some(&digest), 60),
            "reg:5000/acme/app:v1@sha256:abababababab"
        );
        let long = image_reference(
            Some("registry.example.com:5000"),
            Some("team/very/long/path/to/the/app"),
            Some("v1.2.3"),
            Some(&digest),
            40,
        );
        assert_eq!(long.chars().count(), 40);
        assert!(
            long.starts_with('…') && long.ends_with("app:v1.2.3@sha256:abababababab"),
            "{long}"
        );
        assert_eq!(
            image_reference(None, Some("a\x1b[31m"), None, None, 40),
            "a\\x1b[31m"
        );
    }

    #[test]
    fn fit_and_pad_count_characters() {
        assert_eq!(fit("demo/ec-256", 20), "demo/ec-256");
        assert_eq!(fit("demo/a-very-long-policy", 10), "demo/a-ve…");
        assert_eq!(pad("é", 3), "é  ");
    }
}
