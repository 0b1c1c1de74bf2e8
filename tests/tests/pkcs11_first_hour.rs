//! The PKCS#11 module where a new user trips first (issue 20): slot 0, which cosign and pkcs11-tool ask for unless
//! told otherwise, stays `CKR_SLOT_ID_INVALID` and the log says once which slot (or URI) to use; and a gateway that
//! never answered makes `C_Login` fail after `UnreachableTimeoutInSeconds` with `CKR_FUNCTION_FAILED`, its log
//! naming the URL and the setting.
//!
//! This binary's process environment points the module at a closed loopback port; no gateway runs.
//!
//! A test binary of its own, not a module of `e2e/`, for that environment and the module it loads into this process.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use e2e_tests::gateway::free_port;
use e2e_tests::{require_tool, tools};

const ORGANIZATION: &str = "8f5c2a51-7d1e-4c2b-9a55-0c1d2e3f4a5b";
const SLOT_0_HINT: &str =
    "slot 0 does not exist; the SignPath token is slot 1 (`--slot-id 1`, or `pkcs11:token=SignPath` in the URI)";

struct Setup {
    pkcs11: Pkcs11,
    port: u16,
    logs: tempfile::TempDir,
}

impl Setup {
    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("SignPath.CryptoProviders.Cryptoki.txt"))
            .unwrap_or_default()
    }
}

fn module() -> PathBuf {
    tools::release_artifact("libsignpath_pkcs11.so")
}

/// The module, initialized once for this binary, configured for a port nothing listens on.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let port = free_port();
        let logs = tempfile::tempdir().unwrap();
        std::env::set_var("SIGNPATH_API_URL", format!("http://127.0.0.1:{port}"));
        std::env::set_var("SIGNPATH_ALLOW_INSECURE_LOOPBACK_HTTP", "true");
        std::env::set_var("SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS", "600");
        std::env::set_var("SIGNPATH_UNREACHABLE_TIMEOUT_IN_SECONDS", "3");
        std::env::set_var("SIGNPATH_LOG_FILE_DIRECTORY", logs.path());
        std::env::set_var("SIGNPATH_LOG_FILE_LEVEL", "info");
        let pkcs11 = Pkcs11::new(module()).unwrap();
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        Setup { pkcs11, port, logs }
    })
}

fn is_rv(result: Result<impl std::fmt::Debug, Error>, expected: RvError) -> bool {
    matches!(result, Err(Error::Pkcs11(rv, _)) if rv == expected)
}

#[test]
fn slot_0_stays_invalid_and_the_log_names_the_right_slot_once() {
    let setup = setup();
    let slot0 = Slot::try_from(0u64).unwrap();
    assert!(is_rv(setup.pkcs11.get_slot_info(slot0), RvError::SlotIdInvalid));
    assert!(is_rv(setup.pkcs11.get_token_info(slot0), RvError::SlotIdInvalid));
    assert!(is_rv(setup.pkcs11.open_rw_session(slot0), RvError::SlotIdInvalid));
    let log = setup.log();
    let hints: Vec<&str> = log.lines().filter(|l| l.contains(SLOT_0_HINT)).collect();
    assert_eq!(hints.len(), 1, "{log}");
    assert!(hints[0].contains(" WARN "), "{}", hints[0]);
}

#[test]
fn login_against_a_gateway_never_reached_fails_after_the_short_budget() {
    let setup = setup();
    let slot = setup.pkcs11.get_slots_with_token().unwrap()[0];
    let session = setup.pkcs11.open_rw_session(slot).unwrap();
    let started = Instant::now();
    let pin = AuthPin::new(format!("{ORGANIZATION}:first-hour-token").into());
    let result = session.login(UserType::User, Some(&pin));
    let took = started.elapsed();
    assert!(is_rv(result, RvError::FunctionFailed));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    let log = setup.log();
    assert!(
        log.contains(&format!(
            "could not reach the signing gateway at http://127.0.0.1:{}/v1/{ORGANIZATION}/Cryptoki/MySigningPolicies after",
            setup.port
        )),
        "{log}"
    );
    assert!(
        log.contains("UnreachableTimeoutInSeconds (SIGNPATH_UNREACHABLE_TIMEOUT_IN_SECONDS)"),
        "{log}"
    );
    assert!(log.contains("s left of UnreachableTimeoutInSeconds"), "{log}");
    assert!(!log.contains("first-hour-token"), "{log}");
}

/// cosign's `pkcs11-tool list-keys-uris` without `--slot-id` asks for slot 0: it fails, and the module's log says
/// what to use instead.
#[test]
fn cosign_without_a_slot_id_gets_the_hint_in_the_log() {
    let cosign = require_tool!("cosign");
    let logs = tempfile::tempdir().unwrap();
    let output = Command::new(cosign)
        .args(["pkcs11-tool", "list-keys-uris", "--module-path"])
        .arg(module())
        .env_clear()
        .env("HOME", logs.path())
        .env("SIGNPATH_LOG_FILE_DIRECTORY", logs.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", tools::output_text(&output));
    let log = std::fs::read_to_string(logs.path().join("SignPath.CryptoProviders.Cryptoki.txt")).unwrap();
    assert!(log.contains(SLOT_0_HINT), "{log}");
}
