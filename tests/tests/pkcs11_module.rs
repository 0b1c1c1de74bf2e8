//! The built `libsignpath_pkcs11.so` against the real gateway, driven as clients drive it: through the `cryptoki`
//! crate (a safe client, like crypto11 in cosign) and through the raw function list (for the NULLs, short buffers
//! and wrong orders real C clients produce). Every signature is verified with the public key the module exposes.
//!
//! The tests share the module's process-wide state, so they take turns (`serial()`); each initializes and
//! finalizes the module itself.
//!
//! A test binary of its own, not a module of `e2e/`: it loads the module into this process (`C_Initialize` state is
//! process-wide) and points the process environment at its gateway.

mod pkcs11_module_support;
mod pkcs11_support;

use cryptoki::context::CInitializeFlags;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki_sys::*;

use common::encoding::encode_digest_info;
use common::keys::{HashAlgorithm, KeyKind, SignatureScheme};

use pkcs11_module_support::{
    assert_ca_certificates_on_token, assert_certificate_object, assert_private_key_objects, pss, serial,
};
use pkcs11_support::raw::Raw;
use pkcs11_support::{assert_verifies, gateway, initialized, key, keys, logged_in};

const OS_LOCKING: CInitializeFlags = CInitializeFlags::OS_LOCKING_OK;

#[test]
fn token_slot_and_mechanisms_are_described_as_clients_expect() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let info = pkcs11.get_library_info().unwrap();
    assert_eq!(
        (info.cryptoki_version().major(), info.cryptoki_version().minor()),
        (2, 40)
    );
    let slots = pkcs11.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].id(), 1, "SignPath's documented slot id");
    let token = pkcs11.get_token_info(slots[0]).unwrap();
    assert_eq!(token.label(), "SignPath");
    assert!(token.login_required() && token.token_initialized() && token.user_pin_initialized());

    let mechanisms = pkcs11.get_mechanism_list(slots[0]).unwrap();
    for wanted in [
        MechanismType::ECDSA,
        MechanismType::ECDSA_SHA256,
        MechanismType::ECDSA_SHA384,
        MechanismType::ECDSA_SHA512,
        MechanismType::RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA384_RSA_PKCS,
        MechanismType::SHA512_RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::SHA384_RSA_PKCS_PSS,
        MechanismType::SHA512_RSA_PKCS_PSS,
    ] {
        assert!(mechanisms.contains(&wanted), "{wanted} is listed");
        let info = pkcs11.get_mechanism_info(slots[0], wanted).unwrap();
        assert!(info.sign() && info.hardware(), "{wanted}: CKF_SIGN | CKF_HW");
    }
    let ecdsa = pkcs11.get_mechanism_info(slots[0], MechanismType::ECDSA).unwrap();
    assert!(ecdsa.ec_f_p() && ecdsa.ec_from_oid() && ecdsa.ec_uncompressed());
    assert_eq!((ecdsa.min_key_size(), ecdsa.max_key_size()), (256, 521));
    pkcs11.finalize().unwrap();
}

#[test]
fn every_policy_is_a_private_key_public_key_and_certificate_with_one_id_and_label() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    assert!(keys.len() >= 2, "the gateway's policies are listed");
    for key in &keys {
        assert_certificate_object(&session, key);
        assert_private_key_objects(&session, key);
    }
    assert_ca_certificates_on_token(&session);
    pkcs11.finalize().unwrap();
}

#[test]
fn attribute_templates_follow_section_5_7() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let ec = key(&keys, "ec-256");
    let raw = Raw::load();
    let h = session.handle();
    let private = ec.private.handle();

    // NULL pValue: the length; a large enough buffer: the value.
    let (rv, values) = raw.attributes(h, private, &[(CKA_LABEL, None), (CKA_KEY_TYPE, Some(8))]);
    assert_eq!(rv, CKR_OK);
    assert_eq!(values[0].0 as usize, ec.label.len());
    assert_eq!(values[1], (8, CKK_EC.to_ne_bytes().to_vec()));
    // Too small: that entry gets CK_UNAVAILABLE_INFORMATION, the others are still filled.
    let (rv, values) = raw.attributes(h, private, &[(CKA_LABEL, Some(3)), (CKA_SIGN, Some(1))]);
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
    assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(values[1], (1, vec![CK_TRUE]));
    // Unknown and sensitive attributes, in one template with a good one.
    let (rv, values) = raw.attributes(h, private, &[(CKA_MODULUS, None), (CKA_ID, None)]);
    assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
    assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(values[1].0 as usize, ec.label.len());
    let (rv, values) = raw.attributes(h, private, &[(CKA_VALUE, None)]);
    assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(values[0].0, CK_UNAVAILABLE_INFORMATION);
    // Bad object handle.
    assert_eq!(
        raw.attributes(h, 0, &[(CKA_CLASS, None)]).0,
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(
        raw.attributes(h, 100_000, &[(CKA_CLASS, None)]).0,
        CKR_OBJECT_HANDLE_INVALID
    );
    pkcs11.finalize().unwrap();
}

#[test]
fn every_mechanism_signs_and_the_signature_verifies() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let data = b"the artifact to sign";
    use HashAlgorithm::{Sha256, Sha384, Sha512};

    for ec in keys.iter().filter(|k| matches!(k.public.kind(), KeyKind::Ec(_))) {
        let field = match ec.public.kind() {
            KeyKind::Ec(curve) => curve.field_len(),
            KeyKind::Rsa { .. } => unreachable!(),
        };
        // Every digest length with every curve: a short digest is the integer it is (SHA-1 and SHA-256 on P-521).
        for hash in [HashAlgorithm::Sha1, Sha256, Sha384, Sha512] {
            if ec.label == "demo/ec-521" && hash == HashAlgorithm::Sha1 {
                // Its policy keeps the default list, without SHA-1: the gateway refuses, the module says so.
                let refused = session.sign(&Mechanism::Ecdsa, ec.private, &hash.digest(data));
                assert!(
                    matches!(
                        refused,
                        Err(cryptoki::error::Error::Pkcs11(
                            cryptoki::error::RvError::FunctionRejected,
                            _
                        ))
                    ),
                    "{refused:?}"
                );
                continue;
            }
            let signature = session
                .sign(&Mechanism::Ecdsa, ec.private, &hash.digest(data))
                .unwrap();
            assert_eq!(signature.len(), 2 * field, "raw r||s");
            assert_verifies(ec, SignatureScheme::EcdsaIeee, hash, data, &signature);
        }
        for (mechanism, hash) in [
            (Mechanism::EcdsaSha256, Sha256),
            (Mechanism::EcdsaSha384, Sha384),
            (Mechanism::EcdsaSha512, Sha512),
        ] {
            let signature = session.sign(&mechanism, ec.private, data).unwrap();
            assert_verifies(ec, SignatureScheme::EcdsaIeee, hash, data, &signature);
            // Multi-part: the same data in pieces.
            session.sign_init(&mechanism, ec.private).unwrap();
            session.sign_update(&data[..5]).unwrap();
            session.sign_update(&data[5..]).unwrap();
            let signature = session.sign_final().unwrap();
            assert_verifies(ec, SignatureScheme::EcdsaIeee, hash, data, &signature);
        }
    }

    let rsa = key(&keys, "rsa-2048");
    for hash in [Sha256, Sha384, Sha512] {
        // CKM_RSA_PKCS over a DigestInfo, as cosign (crypto11) and OpenSSL send it.
        let digest_info = encode_digest_info(hash, &hash.digest(data));
        let signature = session
            .sign(&Mechanism::RsaPkcs, rsa.private, &digest_info)
            .unwrap();
        assert_eq!(signature.len(), 256);
        assert_verifies(rsa, SignatureScheme::RsaPkcs1, hash, data, &signature);
        let signature = session
            .sign(&Mechanism::RsaPkcsPss(pss(hash)), rsa.private, &hash.digest(data))
            .unwrap();
        assert_verifies(rsa, SignatureScheme::RsaPss, hash, data, &signature);
    }
    for (mechanism, hash) in [
        (Mechanism::Sha256RsaPkcs, Sha256),
        (Mechanism::Sha384RsaPkcs, Sha384),
        (Mechanism::Sha512RsaPkcs, Sha512),
        (Mechanism::Sha256RsaPkcsPss(pss(Sha256)), Sha256),
        (Mechanism::Sha384RsaPkcsPss(pss(Sha384)), Sha384),
        (Mechanism::Sha512RsaPkcsPss(pss(Sha512)), Sha512),
    ] {
        let scheme = if matches!(mechanism.mechanism_type(), t if t == MechanismType::SHA256_RSA_PKCS || t == MechanismType::SHA384_RSA_PKCS || t == MechanismType::SHA512_RSA_PKCS)
        {
            SignatureScheme::RsaPkcs1
        } else {
            SignatureScheme::RsaPss
        };
        let signature = session.sign(&mechanism, rsa.private, data).unwrap();
        assert_verifies(rsa, scheme, hash, data, &signature);
        session.sign_init(&mechanism, rsa.private).unwrap();
        session.sign_update(data).unwrap();
        let signature = session.sign_final().unwrap();
        assert_verifies(rsa, scheme, hash, data, &signature);
    }
    pkcs11.finalize().unwrap();
}

#[test]
fn a_length_query_or_a_short_buffer_never_calls_the_gateway() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let raw = Raw::load();
    let h = session.handle();
    let digest = HashAlgorithm::Sha256.digest(b"data");

    for (policy, expected_len) in [("ec-256", 64), ("rsa-2048", 256)] {
        let key = key(&keys, policy);
        let (mechanism, input) = match key.public.kind() {
            KeyKind::Ec(_) => (CKM_ECDSA, digest.clone()),
            KeyKind::Rsa { .. } => (CKM_RSA_PKCS, encode_digest_info(HashAlgorithm::Sha256, &digest)),
        };
        let before = gateway().sign_hash_count();
        assert_eq!(raw.sign_init(h, mechanism, key.private.handle()), CKR_OK);
        let (rv, len, _) = raw.sign(h, &input, None);
        assert_eq!((rv, len), (CKR_OK, expected_len), "{policy}: length query");
        let (rv, len, _) = raw.sign(h, &input, Some(10));
        assert_eq!(
            (rv, len),
            (CKR_BUFFER_TOO_SMALL, expected_len),
            "{policy}: short buffer"
        );
        assert_eq!(gateway().sign_hash_count(), before, "{policy}: no SignHash yet");
        // The operation is still active: the retry with a big enough buffer signs, once.
        let (rv, len, signature) = raw.sign(h, &input, Some(512));
        assert_eq!((rv, len), (CKR_OK, expected_len));
        let scheme = match key.public.kind() {
            KeyKind::Ec(_) => SignatureScheme::EcdsaIeee,
            KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1,
        };
        assert_verifies(key, scheme, HashAlgorithm::Sha256, b"data", &signature);
        assert_eq!(
            gateway().sign_hash_count(),
            before + 1,
            "{policy}: exactly one SignHash"
        );
        // And it has ended.
        assert_eq!(raw.sign(h, &input, Some(512)).0, CKR_OPERATION_NOT_INITIALIZED);
    }

    // The same for C_SignFinal.
    let ec = key(&keys, "ec-256");
    let before = gateway().sign_hash_count();
    assert_eq!(raw.sign_init(h, CKM_ECDSA_SHA256, ec.private.handle()), CKR_OK);
    assert_eq!(raw.sign_update(h, b"data"), CKR_OK);
    assert_eq!(raw.sign_final(h, None).0, CKR_OK);
    assert_eq!(raw.sign_final(h, Some(1)).0, CKR_BUFFER_TOO_SMALL);
    assert_eq!(gateway().sign_hash_count(), before);
    let (rv, _, signature) = raw.sign_final(h, Some(64));
    assert_eq!(rv, CKR_OK);
    assert_verifies(
        ec,
        SignatureScheme::EcdsaIeee,
        HashAlgorithm::Sha256,
        b"data",
        &signature,
    );
    assert_eq!(gateway().sign_hash_count(), before + 1);
    pkcs11.finalize().unwrap();
}

#[test]
fn misuse_gets_the_codes_the_specification_names() {
    let _serial = serial();
    let raw = Raw::load();
    gateway();
    // Before C_Initialize.
    assert_eq!(
        raw.open_session(CKF_SERIAL_SESSION),
        Err(CKR_CRYPTOKI_NOT_INITIALIZED)
    );
    assert_eq!(raw.finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(raw.initialize_with_reserved(), CKR_ARGUMENTS_BAD);
    assert_eq!(raw.initialize(None), CKR_OK);
    assert_eq!(
        raw.initialize(Some(CKF_OS_LOCKING_OK)),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    assert_eq!(raw.get_info_null(), CKR_ARGUMENTS_BAD);
    assert_eq!(raw.open_session_null(), CKR_ARGUMENTS_BAD);
    assert_eq!(
        raw.open_session(CKF_RW_SESSION),
        Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    );

    let h = raw.open_session(CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    // Before login there are no keys to sign with.
    assert_eq!(raw.sign_init(h, CKM_ECDSA, 1), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(raw.login(h, Some(&gateway().pin)), CKR_OK);
    let privates = raw.find_by_class(h, CKO_PRIVATE_KEY).unwrap();
    let publics = raw.find_by_class(h, CKO_PUBLIC_KEY).unwrap();
    let certificates = raw.find_by_class(h, CKO_CERTIFICATE).unwrap();
    let (ec, rsa) = {
        let kind = |handle| {
            raw.attributes(h, handle, &[(CKA_KEY_TYPE, Some(8))]).1[0]
                .1
                .clone()
        };
        let ec = *privates
            .iter()
            .find(|p| kind(**p) == CKK_EC.to_ne_bytes())
            .unwrap();
        let rsa = *privates
            .iter()
            .find(|p| kind(**p) == CKK_RSA.to_ne_bytes())
            .unwrap();
        (ec, rsa)
    };
    let digest = [7u8; 32];

    // Wrong order and bad handles.
    assert_eq!(raw.sign(h, &digest, Some(64)).0, CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(raw.sign_update(h, &digest), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(raw.sign_final(h, Some(64)).0, CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(raw.sign_init(h + 1000, CKM_ECDSA, ec), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(raw.sign_init(h, CKM_ECDSA, 100_000), CKR_KEY_HANDLE_INVALID);
    assert_eq!(
        raw.sign_init(h, CKM_ECDSA, certificates[0]),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        raw.sign_init(h, CKM_ECDSA, publics[0]),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(raw.sign_init(h, CKM_ECDSA, rsa), CKR_KEY_TYPE_INCONSISTENT);
    assert_eq!(
        raw.sign_init(h, CKM_SHA256_RSA_PKCS, ec),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(raw.sign_init(h, CKM_AES_CBC, ec), CKR_MECHANISM_INVALID);
    assert_eq!(raw.sign_init(h, CKM_ECDSA, ec), CKR_OK);
    assert_eq!(raw.sign_init(h, CKM_ECDSA, ec), CKR_OPERATION_ACTIVE);
    assert_eq!(raw.sign_null_length(h, &digest), CKR_ARGUMENTS_BAD);
    assert_eq!(
        raw.sign(h, &digest, Some(64)).0,
        CKR_OPERATION_NOT_INITIALIZED,
        "an error ended it"
    );

    // Input the gateway would refuse is refused here, and ends the operation.
    assert_eq!(raw.sign_init(h, CKM_ECDSA, ec), CKR_OK);
    assert_eq!(
        raw.sign(h, &[], Some(64)).0,
        CKR_DATA_LEN_RANGE,
        "ECDSA of nothing"
    );
    assert_eq!(raw.sign(h, &digest, Some(64)).0, CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(raw.sign_init(h, CKM_RSA_PKCS, rsa), CKR_OK);
    assert_eq!(
        raw.sign(h, &digest, Some(256)).0,
        CKR_DATA_INVALID,
        "not a DigestInfo"
    );
    let good = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    for bad in [
        CK_RSA_PKCS_PSS_PARAMS { sLen: 20, ..good },
        CK_RSA_PKCS_PSS_PARAMS {
            mgf: CKG_MGF1_SHA1,
            ..good
        },
        CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA384,
            ..good
        },
    ] {
        assert_eq!(
            raw.sign_init_pss(h, CKM_SHA256_RSA_PKCS_PSS, bad, rsa),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
    assert_eq!(
        raw.sign_init(h, CKM_RSA_PKCS_PSS, rsa),
        CKR_MECHANISM_PARAM_INVALID,
        "PSS without parameters"
    );
    assert_eq!(raw.sign_init_pss(h, CKM_RSA_PKCS_PSS, good, rsa), CKR_OK);
    assert_eq!(
        raw.sign(h, &[7u8; 48], Some(256)).0,
        CKR_DATA_LEN_RANGE,
        "not a SHA-256 digest"
    );

    assert_eq!(raw.close_session(h), CKR_OK);
    assert_eq!(raw.close_session(h), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(raw.finalize(), CKR_OK);
    assert_eq!(raw.finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);
}

#[test]
fn login_takes_signpaths_pin_forms_once_per_application() {
    let _serial = serial();
    let raw = Raw::load();
    let pin = gateway().pin.clone();
    let organization = pin.split_once(':').unwrap().0.to_owned();
    assert_eq!(raw.initialize(Some(CKF_OS_LOCKING_OK)), CKR_OK);
    let a = raw.open_session(CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    let b = raw.open_session(CKF_SERIAL_SESSION).unwrap();
    assert_eq!(raw.session_state(a), Ok(CKS_RW_PUBLIC_SESSION));

    assert_eq!(
        raw.login(a, Some(&format!("{organization}:wrong-token"))),
        CKR_PIN_INCORRECT
    );
    assert_eq!(raw.login(a, Some("no colon")), CKR_PIN_INCORRECT);
    assert_eq!(raw.login(a, Some(&pin)), CKR_OK);
    // Login state belongs to the application: every session is logged in, a second login is refused.
    assert_eq!(raw.session_state(a), Ok(CKS_RW_USER_FUNCTIONS));
    assert_eq!(raw.session_state(b), Ok(CKS_RO_USER_FUNCTIONS));
    assert_eq!(raw.login(b, Some(&pin)), CKR_USER_ALREADY_LOGGED_IN);
    assert!(!raw.find_by_class(b, CKO_PRIVATE_KEY).unwrap().is_empty());
    assert_eq!(raw.logout(b), CKR_OK);
    assert_eq!(raw.logout(a), CKR_USER_NOT_LOGGED_IN);
    assert!(
        raw.find_by_class(a, CKO_PRIVATE_KEY).unwrap().is_empty(),
        "no objects after logout"
    );

    // CONFIG and an empty PIN (crypto11 sends NULL) take the credentials from the environment.
    for form in [Some("CONFIG"), Some(""), None] {
        assert_eq!(raw.login(a, form), CKR_OK, "{form:?}");
        assert!(!raw.find_by_class(a, CKO_PRIVATE_KEY).unwrap().is_empty());
        assert_eq!(raw.logout(a), CKR_OK);
    }
    // Closing the last session logs out.
    assert_eq!(raw.login(a, Some(&pin)), CKR_OK);
    assert_eq!(raw.close_session(a), CKR_OK);
    assert_eq!(raw.close_session(b), CKR_OK);
    let c = raw.open_session(CKF_SERIAL_SESSION).unwrap();
    assert_eq!(raw.session_state(c), Ok(CKS_RO_PUBLIC_SESSION));
    assert_eq!(raw.finalize(), CKR_OK);
}

#[test]
fn finalize_then_initialize_again_works_as_cosign_needs() {
    let _serial = serial();
    for _ in 0..2 {
        let pkcs11 = initialized(OS_LOCKING);
        let session = logged_in(&pkcs11);
        let keys = keys(&session);
        let ec = key(&keys, "ec-256");
        let digest = HashAlgorithm::Sha256.digest(b"again");
        let signature = session.sign(&Mechanism::Ecdsa, ec.private, &digest).unwrap();
        assert_verifies(
            ec,
            SignatureScheme::EcdsaIeee,
            HashAlgorithm::Sha256,
            b"again",
            &signature,
        );
        drop(session);
        pkcs11.finalize().unwrap();
    }
}

#[test]
fn thirty_two_threads_sign_at_once_and_every_signature_verifies() {
    let _serial = serial();
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let slot = pkcs11.get_slots_with_token().unwrap()[0];
    let before = gateway().sign_hash_count();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..32)
            .map(|i| {
                let pkcs11 = &pkcs11;
                let keys = &keys;
                scope.spawn(move || {
                    let session = pkcs11.open_ro_session(slot).unwrap();
                    let key = if i % 2 == 0 {
                        key(keys, "ec-256")
                    } else {
                        key(keys, "rsa-2048")
                    };
                    let data = format!("artifact {i}");
                    let (mechanism, scheme) = match key.public.kind() {
                        KeyKind::Ec(_) => (Mechanism::EcdsaSha256, SignatureScheme::EcdsaIeee),
                        KeyKind::Rsa { .. } => (Mechanism::Sha256RsaPkcs, SignatureScheme::RsaPkcs1),
                    };
                    let signature = session.sign(&mechanism, key.private, data.as_bytes()).unwrap();
                    assert_verifies(key, scheme, HashAlgorithm::Sha256, data.as_bytes(), &signature);
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a signing thread failed");
        }
    });
    assert_eq!(gateway().sign_hash_count(), before + 32);
    drop(session);
    pkcs11.finalize().unwrap();
}

#[test]
fn the_audit_log_gets_the_callers_metadata_and_never_the_token() {
    let _serial = serial();
    std::env::set_var("SIGNPATH_OCI_REPOSITORY", "metadata-test/app");
    std::env::set_var("SIGNPATH_OCI_DIGEST", format!("sha256:{}", "ab".repeat(32)));
    let pkcs11 = initialized(OS_LOCKING);
    let session = logged_in(&pkcs11);
    let keys = keys(&session);
    let ec = key(&keys, "ec-256");
    session
        .sign(&Mechanism::EcdsaSha256, ec.private, b"with metadata")
        .unwrap();
    std::env::remove_var("SIGNPATH_OCI_REPOSITORY");
    std::env::remove_var("SIGNPATH_OCI_DIGEST");
    let audit: String = gateway().audit_text();
    assert!(
        audit.contains("metadata-test/app"),
        "the oci metadata reaches the audit log"
    );
    let token = gateway().pin.split_once(':').unwrap().1.to_owned();
    assert!(!audit.contains(&token), "the API token is never in the audit log");
    let log =
        std::fs::read_to_string(gateway().log_dir.join("SignPath.CryptoProviders.Cryptoki.txt")).unwrap();
    assert!(log.contains("signing"), "the module logs to its file");
    assert!(
        !log.contains(&token),
        "the API token is never in the module's log"
    );
    pkcs11.finalize().unwrap();
}
