//! Where the tests find the programs they drive: our own release artifacts, the pinned notation and cosign that
//! `scripts/install-deps` builds into `.tools/bin`, and system tools on `PATH` (pkcs11-tool, p11tool, openssl,
//! keytool, jarsigner, docker-registry, softhsm2-util).
//!
//! A test that needs a tool asks for it with [`require_tool!`](crate::require_tool): when the tool is missing the
//! test fails in CI (`CI=true`), so a broken setup cannot pass as a green run, and is skipped with a notice on a
//! developer machine that has not run `scripts/install-deps`, or where a tool did not build: install-deps then
//! lists it in `.tools/missing-tools` (one `NAME<TAB>LOG` a line), and the notice says so and names the log.
//!
//! Environment (set by `scripts/test`; relative paths are taken from the workspace root):
//! - `SIGNPATH_TEST_TOOLS`: directory with notation and cosign (default `<workspace>/.tools/bin`);
//! - `SIGNPATH_GATEWAY_BIN`, `NOTATION_SIGNPATH_BIN`, `SIGNPATH_PKCS11_MODULE`, `SIGNPATH_KMS_PLUGIN_BIN`: our
//!   release artifacts (default `target/release/...`, or under `CARGO_TARGET_DIR`).

use std::env;
use std::path::{Path, PathBuf};

/// The workspace root (the directory with the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_crate
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf()
}

/// A path from the environment; a relative one is taken from the workspace root, because cargo runs each test
/// binary in its crate's directory, not where `scripts/test` was started.
fn env_path(name: &str) -> Option<PathBuf> {
    let value = env::var_os(name).filter(|v| !v.is_empty())?;
    Some(workspace_root().join(value))
}

/// The directory with the pinned notation and cosign builds.
pub fn tools_dir() -> PathBuf {
    env_path("SIGNPATH_TEST_TOOLS").unwrap_or_else(|| workspace_root().join(".tools").join("bin"))
}

/// Finds a tool: first in [`tools_dir`], then on `PATH`. `None` when it is in neither.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let in_tools_dir = tools_dir().join(name);
    if is_executable(&in_tools_dir) {
        return Some(in_tools_dir);
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The path of a tool, or a panic that says how to install it.
pub fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{}", missing_tool_message(name)))
}

fn missing_tool_message(name: &str) -> String {
    match build_failure_log(name) {
        Some(log) => format!(
            "required tool `{name}` could not be built on this machine by scripts/install-deps (its log: {log})"
        ),
        None => format!(
            "required tool `{name}` not found in {} or on PATH; run scripts/install-deps (or scripts/test, which runs it)",
            tools_dir().display()
        ),
    }
}

/// The log of `name`'s failed build, when `scripts/install-deps` recorded one in `missing-tools` beside the tools
/// directory.
fn build_failure_log(name: &str) -> Option<String> {
    let record = std::fs::read_to_string(tools_dir().parent()?.join("missing-tools")).ok()?;
    failed_build_in(&record, name)
}

/// The log `missing-tools` names for `name` (lines of `NAME<TAB>LOG`).
fn failed_build_in(record: &str, name: &str) -> Option<String> {
    record.lines().find_map(|line| {
        let (tool, log) = line.split_once('\t')?;
        (tool == name).then(|| log.to_owned())
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// True when running in CI (`CI` set to anything but empty, `0` or `false`), where missing tools are failures.
pub fn in_ci() -> bool {
    match env::var("CI") {
        Ok(value) => !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        Err(_) => false,
    }
}

/// What [`require_tool!`](crate::require_tool) does: the tool's path; or, when it is missing, a panic in CI and
/// `None` after a notice on stderr elsewhere (the caller then returns, which shows as a passed test).
pub fn require(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    let message = missing_tool_message(name);
    if in_ci() {
        panic!("{message} (CI=true: a missing tool fails the test instead of skipping it)");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Evaluates to the path of a required tool, or ends the test: it fails in CI and returns early (skips with a
/// printed notice) elsewhere. The second form gives the value to return, for tests that return a `Result`.
///
/// ```ignore
/// let notation = require_tool!("notation");
/// let cosign = require_tool!("cosign", Ok(()));
/// ```
#[macro_export]
macro_rules! require_tool {
    ($name:expr) => {
        $crate::require_tool!($name, ())
    };
    ($name:expr, $skip:expr) => {
        match $crate::tools::require($name) {
            Some(path) => path,
            None => return $skip,
        }
    };
}

/// The environment variable that overrides where a release artifact is, for the artifacts `scripts/test` names.
fn artifact_env_var(name: &str) -> Option<&'static str> {
    match name {
        "signpath-gateway" => Some("SIGNPATH_GATEWAY_BIN"),
        "notation-signpath" => Some("NOTATION_SIGNPATH_BIN"),
        "libsignpath_pkcs11.so" => Some("SIGNPATH_PKCS11_MODULE"),
        "sigstore-kms-signpath" => Some("SIGNPATH_KMS_PLUGIN_BIN"),
        _ => None,
    }
}

/// The directory cargo writes release builds to: `$CARGO_TARGET_DIR/release` or `<workspace>/target/release`.
pub fn release_dir() -> PathBuf {
    env_path("CARGO_TARGET_DIR")
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release")
}

/// A finished process's stdout and then stderr, as text, for assertion messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The absolute path of a release artifact (`signpath-gateway`, `notation-signpath`, `libsignpath_pkcs11.so`, or
/// any other file in the release directory), honouring the environment variables `scripts/test` sets. Panics
/// with what to run when the file does not exist: tests never fall back to a debug build, which could be stale.
pub fn release_artifact(name: &str) -> PathBuf {
    let path = artifact_env_var(name)
        .and_then(env_path)
        .unwrap_or_else(|| release_dir().join(name));
    assert!(
        path.is_file(),
        "{} does not exist; build it with `cargo build --workspace --release` (scripts/test does)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("root Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn system_tools_are_found_on_path() {
        // `sh` is on every machine that can run these tests.
        let sh = find_tool("sh").expect("sh on PATH");
        assert!(sh.is_absolute());
    }

    #[test]
    fn a_tool_that_did_not_build_is_named_with_its_log() {
        let record = "p11test\t.tools/build-p11test.log\ncargo-deny\t.tools/install-cargo-deny.log\n";
        assert_eq!(
            failed_build_in(record, "cargo-deny").as_deref(),
            Some(".tools/install-cargo-deny.log")
        );
        assert_eq!(failed_build_in(record, "p11"), None);
        assert_eq!(failed_build_in("", "p11test"), None);
    }

    #[test]
    fn unknown_tool_is_not_found() {
        assert_eq!(find_tool("signpath-no-such-tool"), None);
    }
}
