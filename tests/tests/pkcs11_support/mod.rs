//! What the PKCS#11 test binaries share: finding the built module, one gateway per test binary with the process
//! environment pointing at it (the module reads its configuration at `C_Initialize`, and environment variables
//! belong to the process), a raw C caller for the misuse a safe client cannot express, and verification of
//! signatures with the public keys the module itself exposes.
//!
//! Each `pkcs11_*.rs` file is its own test binary so that environment, module state and thread counts of one do
//! not leak into another.
#![allow(dead_code)] // each test binary uses a different part

mod gateway;
pub mod raw;

use std::path::PathBuf;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use common::keys::{Curve, HashAlgorithm, KeyKind, SignatureScheme};
use common::pubkey::PublicKey;

/// The built library (`SIGNPATH_PKCS11_MODULE`, else `target/release`), as every client test loads it.
pub fn module_path() -> PathBuf {
    e2e_tests::tools::release_artifact("libsignpath_pkcs11.so")
}

/// The test binary's gateway. Started once; the process environment then holds its settings, so every
/// `C_Initialize` in this process and every child tool reaches it.
pub struct TestGateway {
    inner: gateway::GatewayProcess,
    /// `OrganizationId:ApiToken`.
    pub pin: String,
    /// Where the module writes its log (`SIGNPATH_LOG_FILE_DIRECTORY`).
    pub log_dir: PathBuf,
}

pub fn gateway() -> &'static TestGateway {
    static GATEWAY: OnceLock<TestGateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let inner = gateway::GatewayProcess::start();
        let log_dir = inner.dir().join("module-logs");
        let mut organization = String::new();
        let mut token = String::new();
        for (name, value) in inner.env_vars() {
            match name.as_str() {
                "SIGNPATH_ORGANIZATION_ID" => organization = value.clone(),
                "SIGNPATH_API_TOKEN" => token = value.clone(),
                _ => {}
            }
            std::env::set_var(name, value);
        }
        std::env::set_var("SIGNPATH_LOG_FILE_DIRECTORY", &log_dir);
        std::env::set_var("SIGNPATH_LOG_FILE_LEVEL", "debug");
        TestGateway {
            inner,
            pin: format!("{organization}:{token}"),
            log_dir,
        }
    })
}

impl TestGateway {
    /// How many SignHash requests the gateway has recorded in its audit log.
    pub fn sign_hash_count(&self) -> usize {
        self.audit_text()
            .lines()
            .filter(|line| {
                line.to_ascii_lowercase()
                    .replace(['-', '_', ' '], "")
                    .contains("signhash")
            })
            .count()
    }

    /// The audit log as text, for "does it mention X" checks.
    pub fn audit_text(&self) -> String {
        self.inner.audit_text()
    }

    /// The root of the policies' certificate chains, as the gateway itself describes them (independent of the
    /// module): the last certificate of a policy's `certificateChain`.
    pub fn root_ca_der(&self) -> Vec<u8> {
        use base64::Engine as _;
        let config = common::config::Config::from_environment().expect("the gateway's settings");
        let client =
            common::client::GatewayClient::new(&config, common::client::ClientOptions::new("tests", "0"))
                .expect("a gateway client");
        let policies = client.my_signing_policies(None, None).expect("MySigningPolicies");
        let chain = policies[0]
            .certificate_chain
            .clone()
            .expect("the gateway sends certificateChain");
        base64::engine::general_purpose::STANDARD
            .decode(chain.last().expect("a non-empty chain"))
            .expect("base64")
    }
}

/// Loads and initializes the module as crypto11 (cosign) does: OS locking.
pub fn initialized(flags: CInitializeFlags) -> Pkcs11 {
    gateway();
    let pkcs11 = Pkcs11::new(module_path()).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(flags))
        .expect("C_Initialize");
    pkcs11
}

/// A read-write session (what cosign opens), logged in with `OrganizationId:ApiToken`.
pub fn logged_in(pkcs11: &Pkcs11) -> Session {
    let slot = pkcs11.get_slots_with_token().expect("slots")[0];
    let session = pkcs11.open_rw_session(slot).expect("C_OpenSession");
    match session.login(UserType::User, Some(&AuthPin::new(gateway().pin.clone().into()))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    session
}

/// A policy's private key and its public key as the module describes it.
pub struct Key {
    pub label: String,
    pub private: ObjectHandle,
    pub public: PublicKey,
}

/// Every policy the token shows, as (label, private key, public key from the public-key object).
pub fn keys(session: &Session) -> Vec<Key> {
    let privates = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .expect("find private keys");
    privates
        .into_iter()
        .map(|private| {
            let label = match &session
                .get_attributes(private, &[AttributeType::Label])
                .expect("label")[..]
            {
                [Attribute::Label(l)] => String::from_utf8(l.clone()).expect("UTF-8 label"),
                other => panic!("unexpected {other:?}"),
            };
            let public = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Id(label.as_bytes().to_vec()),
                ])
                .expect("find public key");
            assert_eq!(public.len(), 1, "one public key for {label}");
            Key {
                public: public_key_of(session, public[0]),
                label,
                private,
            }
        })
        .collect()
}

/// The key with this label suffix (`ec-256`, `rsa-2048`).
pub fn key<'a>(keys: &'a [Key], policy: &str) -> &'a Key {
    keys.iter()
        .find(|k| k.label.ends_with(&format!("/{policy}")))
        .unwrap_or_else(|| {
            panic!(
                "no policy {policy} among {:?}",
                keys.iter().map(|k| &k.label).collect::<Vec<_>>()
            )
        })
}

/// Reads a public-key object the way a client that knows nothing of SPKI does: EC parameters and point, or
/// modulus and exponent; and checks CKA_PUBLIC_KEY_INFO says the same.
pub fn public_key_of(session: &Session, handle: ObjectHandle) -> PublicKey {
    let attributes = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::PublicKeyInfo,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .expect("public key attributes");
    let spki = attributes.iter().find_map(|a| match a {
        Attribute::PublicKeyInfo(der) => Some(der.clone()),
        _ => None,
    });
    let from_spki = PublicKey::from_spki_der(&spki.expect("CKA_PUBLIC_KEY_INFO")).expect("SPKI parses");
    if let KeyKind::Ec(curve) = from_spki.kind() {
        let params = attributes.iter().find_map(|a| match a {
            Attribute::EcParams(p) => Some(p.clone()),
            _ => None,
        });
        let point = attributes.iter().find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p.clone()),
            _ => None,
        });
        assert_eq!(params.expect("CKA_EC_PARAMS"), oid_der(curve));
        let point = point.expect("CKA_EC_POINT");
        let point = octet_string_contents(&point);
        assert_eq!(
            PublicKey::from_ec_point(curve, point).expect("point parses"),
            from_spki
        );
    }
    from_spki
}

fn oid_der(curve: Curve) -> Vec<u8> {
    match curve {
        Curve::P256 => hex::decode("06082a8648ce3d030107"),
        Curve::P384 => hex::decode("06052b81040022"),
        Curve::P521 => hex::decode("06052b81040023"),
    }
    .expect("hex")
}

/// The contents of a DER OCTET STRING (CKA_EC_POINT wraps the point in one).
pub fn octet_string_contents(der: &[u8]) -> &[u8] {
    assert_eq!(der[0], 0x04, "an OCTET STRING");
    let (len, start) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        other => panic!("unexpected length byte {other:#x}"),
    };
    assert_eq!(der.len(), start + len, "nothing after the OCTET STRING");
    &der[start..]
}

/// Verifies a signature over `data` (hashed with `hash`) with the key the module exposes.
pub fn assert_verifies(
    key: &Key,
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    data: &[u8],
    signature: &[u8],
) {
    key.public
        .verify_digest(scheme, hash, &hash.digest(data), signature)
        .unwrap_or_else(|e| panic!("{} {scheme} {hash}: {e}", key.label));
}
