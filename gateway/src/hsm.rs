//! The HSM behind the gateway, through PKCS#11 (cryptoki): create a token and keys at `init`, sign digests at
//! `serve`. Private keys are generated inside the token, sensitive and not extractable; the gateway never sees
//! them.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use common::encoding::{ecdsa_raw_to_der, encode_digest_info};
use common::keys::{Curve, HashAlgorithm, KeyKind, KeySpec, SignatureScheme};
use common::pubkey::PublicKey;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use der::{Decode, Encode};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("PKCS#11: {0}")]
    Pkcs11(#[from] cryptoki::error::Error),
    #[error("no token labelled {0:?} in the HSM")]
    NoToken(String),
    #[error("no private key labelled {0:?} in the HSM")]
    NoKey(String),
    #[error("the HSM returned an unusable public key: {0}")]
    PublicKey(String),
}

/// Points SoftHSM2 at a setup's own configuration. Called once at start, before any thread exists.
pub fn use_softhsm_conf(conf: &Path) {
    std::env::set_var("SOFTHSM2_CONF", conf);
}

pub fn open(module: &Path) -> Result<Pkcs11, HsmError> {
    let pkcs11 = Pkcs11::new(module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    Ok(pkcs11)
}

/// Initializes a fresh token in the first free slot and sets its user PIN.
pub fn init_token(pkcs11: &Pkcs11, label: &str, so_pin: &str, user_pin: &str) -> Result<(), HsmError> {
    let slot = pkcs11
        .get_all_slots()?
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| HsmError::NoToken("(a free slot)".into()))?;
    let so = AuthPin::from(so_pin.to_owned());
    pkcs11.init_token(slot, &so, label)?;
    let session = open_session(pkcs11, label)?;
    session.login(UserType::So, Some(&so))?;
    session.init_pin(&AuthPin::from(user_pin.to_owned()))?;
    session.logout()?;
    Ok(())
}

fn open_session(pkcs11: &Pkcs11, label: &str) -> Result<Session, HsmError> {
    // SoftHSM renumbers slots when a token is initialized: find it by label every time.
    let slot = pkcs11
        .get_slots_with_initialized_token()?
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .map(|t| t.label().trim_end() == label)
                .unwrap_or(false)
        })
        .ok_or_else(|| HsmError::NoToken(label.to_owned()))?;
    Ok(pkcs11.open_rw_session(slot)?)
}

/// Logs in as the token's user.
pub fn login(pkcs11: &Pkcs11, label: &str, pin: &str) -> Result<Session, HsmError> {
    let session = open_session(pkcs11, label)?;
    session.login(UserType::User, Some(&AuthPin::from(pin.to_owned())))?;
    Ok(session)
}

/// Generates a key pair of the given spec inside the token and returns its SubjectPublicKeyInfo (DER).
pub fn generate_key(session: &Session, spec: KeySpec, label: &str) -> Result<Vec<u8>, HsmError> {
    let id = label.as_bytes().to_vec();
    let common_private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id),
    ];
    match spec.kind() {
        KeyKind::Ec(curve) => {
            let params = curve
                .oid()
                .to_der()
                .map_err(|e| HsmError::PublicKey(e.to_string()))?;
            public.push(Attribute::EcParams(params));
            let (pub_handle, _) =
                session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &common_private)?;
            let point = attribute(session, pub_handle, AttributeType::EcPoint)?;
            let point =
                der::asn1::OctetString::from_der(&point).map_err(|e| HsmError::PublicKey(e.to_string()))?;
            ec_spki(curve, point.as_bytes())
        }
        KeyKind::Rsa { bits } => {
            public.push(Attribute::ModulusBits(u64::from(bits).into()));
            public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            let (pub_handle, _) =
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &common_private)?;
            let n = attribute(session, pub_handle, AttributeType::Modulus)?;
            let e = attribute(session, pub_handle, AttributeType::PublicExponent)?;
            rsa_spki(&n, &e)
        }
    }
}

fn ec_spki(curve: Curve, point: &[u8]) -> Result<Vec<u8>, HsmError> {
    let bad = |e: &dyn std::fmt::Display| HsmError::PublicKey(e.to_string());
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::asn1::Any::from(curve.oid())),
        },
        subject_public_key: der::asn1::BitString::from_bytes(point).map_err(|e| bad(&e))?,
    };
    let der = spki.to_der().map_err(|e| bad(&e))?;
    PublicKey::from_spki_der(&der).map_err(|e| bad(&e))?;
    Ok(der)
}

fn rsa_spki(n: &[u8], e: &[u8]) -> Result<Vec<u8>, HsmError> {
    let bad = |e: &dyn std::fmt::Display| HsmError::PublicKey(e.to_string());
    let key = pkcs1::RsaPublicKey {
        modulus: pkcs1::UintRef::new(n).map_err(|e| bad(&e))?,
        public_exponent: pkcs1::UintRef::new(e).map_err(|e| bad(&e))?,
    };
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
        subject_public_key: der::asn1::BitString::from_bytes(&key.to_der().map_err(|e| bad(&e))?)
            .map_err(|e| bad(&e))?,
    };
    let der = spki.to_der().map_err(|e| bad(&e))?;
    PublicKey::from_spki_der(&der).map_err(|e| bad(&e))?;
    Ok(der)
}

fn attribute(session: &Session, handle: ObjectHandle, kind: AttributeType) -> Result<Vec<u8>, HsmError> {
    let attrs = session.get_attributes(handle, &[kind])?;
    for attr in attrs {
        match attr {
            Attribute::EcPoint(v) | Attribute::Modulus(v) | Attribute::PublicExponent(v) => return Ok(v),
            _ => {}
        }
    }
    Err(HsmError::PublicKey(format!("attribute {kind} missing")))
}

/// A pool of logged-in sessions for signing. A session is used by one thread at a time and never held across
/// anything but the PKCS#11 call itself.
pub struct Signer {
    pkcs11: Pkcs11,
    label: String,
    sessions: Mutex<Vec<Session>>,
    /// Kept open so the login state (per application) lasts.
    _login: Mutex<Session>,
    /// Where every signature the HSM makes is counted, once `serve` has metrics.
    metrics: OnceLock<Arc<Metrics>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(pkcs11: Pkcs11, label: &str, pin: &str) -> Result<Self, HsmError> {
        let login = login(&pkcs11, label, pin)?;
        Ok(Self {
            pkcs11,
            label: label.to_owned(),
            sessions: Mutex::new(Vec::new()),
            _login: Mutex::new(login),
            metrics: OnceLock::new(),
        })
    }

    /// Counts every signature from now on into `metrics` (`serve` calls it once; a second call changes nothing).
    pub fn count_signatures(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Finds a private key by label.
    pub fn find_key(&self, key_label: &str) -> Result<ObjectHandle, HsmError> {
        let session = self.session()?;
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ]);
        self.give_back(session);
        found?
            .into_iter()
            .next()
            .ok_or_else(|| HsmError::NoKey(key_label.to_owned()))
    }

    /// Whether the token can be used now: a session opens (or a pooled one still answers) and the token is
    /// present. For readiness checks; costs one PKCS#11 call.
    pub fn check(&self) -> Result<(), HsmError> {
        let session = self.session()?;
        let info = session.get_session_info();
        match info {
            Ok(_) => {
                self.give_back(session);
                Ok(())
            }
            // A session that fails is dropped (closed), not pooled again.
            Err(e) => Err(e.into()),
        }
    }

    fn session(&self) -> Result<Session, HsmError> {
        let pooled = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(s) => Ok(s),
            None => open_session(&self.pkcs11, &self.label),
        }
    }

    fn give_back(&self, session: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
    }

    /// Signs a digest. ECDSA comes back from PKCS#11 as r||s; `EcdsaAsn1` converts it to DER.
    pub fn sign(
        &self,
        key: ObjectHandle,
        kind: KeyKind,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let started = Instant::now();
        let signature = self.sign_unmetered(key, kind, scheme, hash, digest)?;
        if let Some(metrics) = self.metrics.get() {
            metrics.hsm_signature(started.elapsed());
        }
        Ok(signature)
    }

    /// Signs as [`Signer::sign`] does, without counting the signature in `signpath_gateway_hsm_signatures_total`:
    /// for the gateway's own housekeeping signatures that no request asked for and that come at times of their
    /// own (the transparency log's checkpoints), which would make the count of signatures made for requests
    /// unreadable.
    pub fn sign_unmetered(
        &self,
        key: ObjectHandle,
        kind: KeyKind,
        scheme: SignatureScheme,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let session = self.session()?;
        let result = match scheme {
            SignatureScheme::EcdsaIeee | SignatureScheme::EcdsaAsn1 => {
                session.sign(&Mechanism::Ecdsa, key, digest)
            }
            SignatureScheme::RsaPkcs1 => {
                session.sign(&Mechanism::RsaPkcs, key, &encode_digest_info(hash, digest))
            }
            SignatureScheme::RsaPss => {
                let (hash_alg, mgf) = match hash {
                    HashAlgorithm::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
                    HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
                    HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
                    HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
                };
                let params = PkcsPssParams {
                    hash_alg,
                    mgf,
                    s_len: (hash.output_len() as u64).into(),
                };
                session.sign(&Mechanism::RsaPkcsPss(params), key, digest)
            }
        };
        // A session whose call failed may be in a bad state; drop it rather than pool it.
        let signature = result?;
        self.give_back(session);
        match (scheme, kind) {
            (SignatureScheme::EcdsaAsn1, KeyKind::Ec(curve)) => {
                ecdsa_raw_to_der(curve, &signature).map_err(|e| HsmError::PublicKey(e.to_string()))
            }
            _ => Ok(signature),
        }
    }
}

/// Key management beside signing: `policy add|rotate` and `init` create keys through the logged-in pool, and
/// `policy csr|certificate import` read a key's public half back.
impl Signer {
    /// Generates a key pair of `spec` labelled `label` in the token; its SubjectPublicKeyInfo (DER).
    pub fn generate_key(&self, spec: KeySpec, label: &str) -> Result<Vec<u8>, HsmError> {
        let session = self.session()?;
        let spki = generate_key(&session, spec, label)?;
        self.give_back(session);
        Ok(spki)
    }

    /// The SubjectPublicKeyInfo (DER) of the public key labelled `label`.
    pub fn public_key(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        let session = self.session()?;
        let spki = public_key_of(&session, label);
        self.give_back(session);
        spki
    }
}

fn public_key_of(session: &Session, label: &str) -> Result<Vec<u8>, HsmError> {
    let handle = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?
        .into_iter()
        .next()
        .ok_or_else(|| HsmError::NoKey(label.to_owned()))?;
    let params = session.get_attributes(handle, &[AttributeType::EcParams])?;
    let ec_params = params.into_iter().find_map(|a| match a {
        Attribute::EcParams(v) => Some(v),
        _ => None,
    });
    match ec_params {
        Some(params) => {
            let oid = const_oid::ObjectIdentifier::from_der(&params)
                .map_err(|e| HsmError::PublicKey(e.to_string()))?;
            let curve = Curve::from_oid(&oid)
                .ok_or_else(|| HsmError::PublicKey(format!("unsupported curve {oid}")))?;
            let point = attribute(session, handle, AttributeType::EcPoint)?;
            let point =
                der::asn1::OctetString::from_der(&point).map_err(|e| HsmError::PublicKey(e.to_string()))?;
            ec_spki(curve, point.as_bytes())
        }
        None => {
            let n = attribute(session, handle, AttributeType::Modulus)?;
            let e = attribute(session, handle, AttributeType::PublicExponent)?;
            rsa_spki(&n, &e)
        }
    }
}
