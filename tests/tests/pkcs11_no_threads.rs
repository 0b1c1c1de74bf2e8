//! `CKF_LIBRARY_CANT_CREATE_OS_THREADS`, as GnuTLS passes it: the module initializes, logs in and signs without
//! creating a single thread. Its own test binary with one test, so the harness starts no other test thread while
//! the threads of this process are counted.

mod pkcs11_support;

use cryptoki::context::CInitializeFlags;
use cryptoki::mechanism::Mechanism;

use common::keys::{HashAlgorithm, SignatureScheme};

use pkcs11_support::{assert_verifies, initialized, key, keys, logged_in};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

#[test]
fn signs_without_creating_a_thread_when_the_caller_forbids_it() {
    pkcs11_support::gateway();
    let before = thread_count();
    let pkcs11 =
        initialized(CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS | CInitializeFlags::OS_LOCKING_OK);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    for policy in ["ec-256", "rsa-2048"] {
        let key = key(&keys, policy);
        let (mechanism, scheme) = match policy {
            "ec-256" => (Mechanism::EcdsaSha256, SignatureScheme::EcdsaIeee),
            _ => (Mechanism::Sha256RsaPkcs, SignatureScheme::RsaPkcs1),
        };
        let signature = session.sign(&mechanism, key.private, b"no threads").unwrap();
        assert_verifies(key, scheme, HashAlgorithm::Sha256, b"no threads", &signature);
    }
    assert_eq!(
        thread_count(),
        before,
        "C_Initialize, C_Login and C_Sign created no thread"
    );
    drop(session);
    pkcs11.finalize().unwrap();
    assert_eq!(thread_count(), before);
}
