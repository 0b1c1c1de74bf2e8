//! The core without a C caller: objects built from policy descriptions, their attributes, the template rules, and
//! the signing operation's length handling — with a gateway that cannot be reached, so any call to it would show.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cryptoki_sys::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;
use common::protocol::{SigningPolicyInfo, WireKeyType};

use super::attributes::{fill_template, Attr};
use super::mechanism::{MechanismRequest, Params};
use super::objects::{Object, ObjectTable};
use super::{Login, Module, Output};
use crate::error::Error;

/// Two P-256 policies whose certificates a common CA issued.
fn policies() -> (Vec<SigningPolicyInfo>, Vec<u8>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test Root CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let infos = ["ec-256", "other"]
        .into_iter()
        .map(|policy| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, policy);
            let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
            SigningPolicyInfo {
                signing_policy_slug: policy.into(),
                project_slug: "demo".into(),
                signing_policy_id: policy.into(),
                key_type: WireKeyType::Ecdsa,
                key_size_in_bits: 256,
                certificate_bytes: BASE64.encode(leaf.der()),
                public_key_bytes: BASE64.encode(key.public_key_raw()),
                rsa_parameters: None,
                certificate_chain: Some(vec![BASE64.encode(leaf.der()), BASE64.encode(ca.der())]),
                hash_algorithms: None,
            }
        })
        .collect();
    (infos, ca.der().to_vec())
}

fn ulong(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

#[test]
fn each_policy_is_three_objects_and_the_shared_ca_one() {
    let (infos, ca_der) = policies();
    let table = ObjectTable::from_policies(infos, None);
    assert_eq!(table.len(), 7);
    let id = b"demo/ec-256".to_vec();
    for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE] {
        let found = table.find(&[
            (CKA_CLASS, ulong(class)),
            (CKA_ID, id.clone()),
            (CKA_LABEL, id.clone()),
        ]);
        assert_eq!(found.len(), 1, "class {class}");
    }
    let authorities = table.find(&[(CKA_CERTIFICATE_CATEGORY, ulong(CK_CERTIFICATE_CATEGORY_AUTHORITY))]);
    assert_eq!(authorities.len(), 1, "the CA both chains share is one object");
    assert_eq!(
        table.get(authorities[0]).unwrap().attribute(CKA_VALUE),
        Attr::Value(ca_der)
    );
    assert!(
        table.find(&[(CKA_CLASS, vec![3])]).is_empty(),
        "a wrong-length CK_ULONG matches nothing"
    );
    assert_eq!(table.find(&[]).len(), 7);
    assert!(matches!(table.get(0), Err(Error::ObjectHandleInvalid(0))));
    assert!(matches!(table.get(8), Err(Error::ObjectHandleInvalid(8))));
    let private = table.find(&[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (CKA_ID, id.clone())])[0];
    let public = table.find(&[(CKA_CLASS, ulong(CKO_PUBLIC_KEY)), (CKA_ID, id)])[0];
    assert!(table.signing_key(private).is_ok());
    assert!(matches!(
        table.signing_key(public),
        Err(Error::KeyFunctionNotPermitted(_))
    ));
    assert!(matches!(
        table.signing_key(authorities[0]),
        Err(Error::KeyHandleInvalid(_))
    ));
}

#[test]
fn key_attributes_describe_the_certificates_key() {
    let (infos, _) = policies();
    let table = ObjectTable::from_policies(infos, None);
    let private = table.get(1).unwrap();
    let public = table.get(2).unwrap();
    let (Object::PrivateKey(key), Object::PublicKey(_)) = (private, public) else {
        panic!("policies come first, private key first");
    };
    let point = key.remote.public_key.ec_point().unwrap();
    let mut wrapped = vec![0x04, point.len() as u8];
    wrapped.extend_from_slice(&point);
    assert_eq!(public.attribute(CKA_EC_POINT), Attr::Value(wrapped));
    let p256 = hex_bytes("06082a8648ce3d030107");
    assert_eq!(public.attribute(CKA_EC_PARAMS), Attr::Value(p256.clone()));
    assert_eq!(private.attribute(CKA_EC_PARAMS), Attr::Value(p256));
    assert_eq!(private.attribute(CKA_EC_POINT), Attr::Invalid);
    assert_eq!(private.attribute(CKA_VALUE), Attr::Sensitive);
    assert_eq!(private.attribute(CKA_MODULUS), Attr::Invalid);
    assert_eq!(private.attribute(CKA_SIGN), Attr::Value(vec![CK_TRUE]));
    assert_eq!(private.attribute(CKA_EXTRACTABLE), Attr::Value(vec![CK_FALSE]));
    assert_eq!(private.attribute(CKA_PRIVATE), Attr::Value(vec![CK_TRUE]));
    assert_eq!(public.attribute(CKA_PRIVATE), Attr::Value(vec![CK_FALSE]));
    assert_eq!(public.attribute(CKA_VERIFY), Attr::Value(vec![CK_TRUE]));
    assert_eq!(private.attribute(CKA_KEY_TYPE), Attr::Value(ulong(CKK_EC)));
    let spki = public.attribute(CKA_PUBLIC_KEY_INFO);
    assert_eq!(private.attribute(CKA_PUBLIC_KEY_INFO), spki);
    let Attr::Value(spki) = spki else { panic!("SPKI") };
    assert_eq!(
        common::pubkey::PublicKey::from_spki_der(&spki).unwrap(),
        key.remote.public_key
    );
    let allowed: Vec<u8> = super::mechanism::EC_MECHANISMS
        .iter()
        .flat_map(|m| m.to_ne_bytes())
        .collect();
    assert_eq!(private.attribute(CKA_ALLOWED_MECHANISMS), Attr::Value(allowed));
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn templates_are_filled_entry_by_entry() {
    let (infos, _) = policies();
    let table = ObjectTable::from_policies(infos, None);
    let outcome = fill_template(
        table.get(1).unwrap(),
        &[
            (CKA_LABEL, None),
            (CKA_LABEL, Some(2)),
            (CKA_ID, Some(64)),
            (CKA_VALUE, None),
            (0xdead, None),
        ],
    );
    assert_eq!(outcome.entries[0].len, 11);
    assert_eq!(outcome.entries[1].len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(outcome.entries[2].value.as_deref(), Some(&b"demo/ec-256"[..]));
    assert_eq!(outcome.entries[3].len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(outcome.entries[4].len, CK_UNAVAILABLE_INFORMATION);
    assert!(matches!(outcome.error, Some(Error::AttributeTypeInvalid)));
}

/// A module logged in to a gateway nobody listens at, with no retry budget: a gateway call fails at once.
fn module_with_unreachable_gateway() -> (Module, CK_SESSION_HANDLE, CK_OBJECT_HANDLE) {
    let env = |name: &str| {
        let value = match name {
            "SIGNPATH_API_URL" => "https://127.0.0.1:1/Api",
            "SIGNPATH_ORGANIZATION_ID" => "org",
            "SIGNPATH_API_TOKEN" => "token",
            "SIGNPATH_SERVICE_UNAVAILABLE_TIMEOUT_IN_SECONDS" => "0",
            "SIGNPATH_HTTP_REQUEST_TIMEOUT_IN_SECONDS" => "1",
            _ => return None,
        };
        Some(value.to_owned())
    };
    let config = Config::load(&BTreeMap::new(), &env).unwrap();
    let client = GatewayClient::new(&config, ClientOptions::new("Cryptoki", "test")).unwrap();
    let module = Module::new();
    module.initialize(config).unwrap();
    let session = module
        .open_session(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    let (infos, _) = policies();
    let objects = ObjectTable::from_policies(infos, None);
    module
        .with(|instance| {
            instance.login = Some(Arc::new(Login {
                client: Arc::new(client),
                objects,
            }));
            Ok(())
        })
        .unwrap();
    (module, session, 1)
}

fn token_slot() -> CK_SLOT_ID {
    super::token::SLOT_ID
}

fn ecdsa() -> MechanismRequest {
    MechanismRequest {
        mechanism: CKM_ECDSA,
        params: Params::None,
    }
}

#[test]
fn size_query_and_short_buffer_do_not_call_the_gateway() {
    let (module, session, key) = module_with_unreachable_gateway();
    module.sign_init(session, ecdsa(), key).unwrap();
    let digest = [1u8; 32];
    assert_eq!(
        module.sign(session, Some(&digest), None).unwrap(),
        Output::Length(64)
    );
    assert_eq!(
        module.sign(session, Some(&digest), Some(63)).unwrap(),
        Output::TooSmall(64)
    );
    // Still active; the real attempt reaches for the (absent) gateway, fails as transient, and ends it.
    let error = module.sign(session, Some(&digest), Some(64)).unwrap_err();
    assert_eq!(CK_RV::from(error), CKR_FUNCTION_FAILED);
    assert!(matches!(
        module.sign(session, Some(&digest), Some(64)),
        Err(Error::OperationNotInitialized)
    ));
}

#[test]
fn bad_input_ends_the_operation_before_any_gateway_call() {
    let (module, session, key) = module_with_unreachable_gateway();
    module.sign_init(session, ecdsa(), key).unwrap();
    assert!(matches!(
        module.sign_init(session, ecdsa(), key),
        Err(Error::OperationActive)
    ));
    assert!(matches!(
        module.sign(session, Some(&[]), Some(64)),
        Err(Error::DataLenRange { actual: 0, .. })
    ));
    assert!(matches!(
        module.sign(session, None, Some(64)),
        Err(Error::OperationNotInitialized)
    ));
    // Multi-part input cannot be finished by C_Sign.
    module
        .sign_init(
            session,
            MechanismRequest {
                mechanism: CKM_ECDSA_SHA256,
                params: Params::None,
            },
            key,
        )
        .unwrap();
    module.sign_update(session, b"part").unwrap();
    assert!(matches!(
        module.sign(session, Some(b"more"), Some(64)),
        Err(Error::OperationActive)
    ));
    assert!(matches!(
        module.sign(session, None, Some(64)),
        Err(Error::OperationNotInitialized)
    ));
}

#[test]
fn logout_ends_operations_and_hides_objects() {
    let (module, session, key) = module_with_unreachable_gateway();
    module.find_init(session, &[]).unwrap();
    assert_eq!(module.find(session, 100).unwrap().len(), 7);
    module.sign_init(session, ecdsa(), key).unwrap();
    module.logout(session).unwrap();
    assert!(matches!(
        module.find(session, 1),
        Err(Error::OperationNotInitialized)
    ));
    assert!(matches!(
        module.sign(session, Some(&[0; 32]), None),
        Err(Error::OperationNotInitialized)
    ));
    module.find_init(session, &[]).unwrap();
    assert!(module.find(session, 100).unwrap().is_empty());
    assert!(matches!(module.logout(session), Err(Error::UserNotLoggedIn)));
    module.finalize().unwrap();
    assert!(matches!(module.find(session, 1), Err(Error::NotInitialized)));
}

#[test]
fn a_panic_under_the_lock_is_survived_by_finalize_and_initialize() {
    let (module, session, _) = module_with_unreachable_gateway();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        module.with(|_| -> crate::error::Result<()> { panic!("a bug") })
    }));
    assert!(panicked.is_err());
    assert!(matches!(module.session_info(session), Err(Error::Poisoned)));
    module.finalize().unwrap();
    let config = Config::load(&BTreeMap::new(), &|_: &str| None).unwrap();
    module.initialize(config).unwrap();
    assert!(module.slot_list().is_ok());
}

#[test]
fn before_login_the_configured_tokens_public_objects_are_visible_and_its_private_keys_are_not() {
    let (module, session, key) = module_with_unreachable_gateway();
    module
        .with(|instance| {
            instance.login = None;
            instance.public = Some(Arc::new(ObjectTable::from_policies(policies().0, None)));
            Ok(())
        })
        .unwrap();
    module.find_init(session, &[]).unwrap();
    let found = module.find(session, 100).unwrap();
    module.find_final(session).unwrap();
    // Two public keys, two certificates and their CA; the two private keys stay hidden.
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(!found.contains(&key));
    module
        .find_init(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))])
        .unwrap();
    assert!(module.find(session, 100).unwrap().is_empty());
    module.find_final(session).unwrap();
    assert!(matches!(
        module.attribute_values(session, key, &[(CKA_LABEL, None)]),
        Err(Error::ObjectHandleInvalid(1))
    ));
    let certificate = module
        .attribute_values(session, found[1], &[(CKA_ID, Some(64))])
        .unwrap();
    assert_eq!(certificate.entries[0].value.as_deref(), Some(&b"demo/ec-256"[..]));
    assert!(matches!(
        module.sign_init(session, ecdsa(), key),
        Err(Error::UserNotLoggedIn)
    ));
    // Closing the last session forgets them, as it forgets a login.
    module.close_session(session).unwrap();
    assert!(module.with(|instance| Ok(instance.public.is_none())).unwrap());
}

#[test]
fn without_configured_credentials_nothing_is_visible_before_login() {
    let env = |name: &str| (name == "SIGNPATH_API_URL").then(|| "https://127.0.0.1:1/Api".to_owned());
    let module = Module::new();
    module
        .initialize(Config::load(&BTreeMap::new(), &env).unwrap())
        .unwrap();
    let session = module.open_session(token_slot(), CKF_SERIAL_SESSION).unwrap();
    module.find_init(session, &[]).unwrap();
    assert!(module.find(session, 100).unwrap().is_empty());
    assert!(module.with(|instance| Ok(instance.public.is_none())).unwrap());
}
