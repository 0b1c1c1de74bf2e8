//! A forked child inherits the parent's initialized module but not its right to use it: every call answers
//! `CKR_CRYPTOKI_NOT_INITIALIZED` until the child calls `C_Initialize`, after which it logs in and signs with
//! connections of its own, while the parent goes on signing with its own.
//!
//! Testing this needs a real `fork` (a spawned process inherits nothing), which is the FFI-test exception to the
//! workspace's `unsafe_code = "deny"`. The child only calls the module and exits with a status; it never returns
//! into the test harness.
//!
//! A test binary of its own, not a module of `e2e/`: it forks, and a forked child of a process running other
//! suites' threads would inherit their locks.
#![allow(unsafe_code)]

mod pkcs11_support;

use cryptoki::context::CInitializeFlags;
use cryptoki::mechanism::Mechanism;

use common::keys::{HashAlgorithm, SignatureScheme};

use pkcs11_support::{assert_verifies, initialized, key, keys, logged_in};

/// What the child checks; its exit status is the number of the first check that failed (0: all passed).
fn child(pkcs11: &cryptoki::context::Pkcs11, parent_session: &cryptoki::session::Session) -> i32 {
    use cryptoki::error::{Error, RvError};
    let not_initialized =
        |r: Result<_, Error>| matches!(r, Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)));
    if !not_initialized(parent_session.get_session_info().map(|_| ())) {
        return 1;
    }
    if !not_initialized(pkcs11.get_slots_with_token().map(|_| ())) {
        return 2;
    }
    if pkcs11
        .initialize(cryptoki::context::CInitializeArgs::new(
            CInitializeFlags::OS_LOCKING_OK,
        ))
        .is_err()
    {
        return 3;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let session = logged_in(pkcs11);
        let keys = keys(&session);
        let ec = key(&keys, "ec-256");
        let signature = session
            .sign(&Mechanism::EcdsaSha256, ec.private, b"child")
            .expect("the child signs");
        assert_verifies(
            ec,
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            b"child",
            &signature,
        );
    }));
    if outcome.is_err() {
        return 4;
    }
    0
}

#[test]
fn a_forked_child_must_initialize_again_and_then_signs() {
    let pkcs11 = initialized(CInitializeFlags::OS_LOCKING_OK);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let ec = key(&keys, "ec-256");
    // The parent has used its connections before the fork.
    session
        .sign(&Mechanism::EcdsaSha256, ec.private, b"parent before")
        .unwrap();

    // SAFETY: the child runs only `child` (module calls, no locks the harness may hold) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = child(&pkcs11, &session);
        // SAFETY: ends the child without running the parent's exit handlers or the harness.
        unsafe { libc::_exit(status) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child exited normally");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's failed check (see `child`)"
    );

    // The parent is unaffected.
    let signature = session
        .sign(&Mechanism::EcdsaSha256, ec.private, b"parent after")
        .unwrap();
    assert_verifies(
        ec,
        SignatureScheme::EcdsaIeee,
        HashAlgorithm::Sha256,
        b"parent after",
        &signature,
    );
    drop(session);
    pkcs11.finalize().unwrap();
}
