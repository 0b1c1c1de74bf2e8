//! The safe core: the module's state and every PKCS#11 function as a Rust method, without a pointer in sight.
//! It owns sessions, objects, login and signing, and must never import `ffi` (the C ABI sits above it).
//!
//! [`Module`] owns one optional `Instance` (present between `C_Initialize` and `C_Finalize`) behind a mutex
//! that is held only to look things up or record them. Sessions sit behind their own mutexes, so threads in
//! different sessions sign in parallel; the gateway is called with no lock held (`C_Login` and `C_Sign` take
//! what the call needs, unlock, call, and re-lock to record the outcome). Login state belongs to the application,
//! as the specification says: one login serves every session.
//!
//! Before login a session sees the token's public objects (certificates, public keys) when the configuration
//! already names the organization and the API token, as a hardware token shows them: gnupg-pkcs11-scd and libp11
//! enumerate certificates before they log in. Without configured credentials there is nothing to show until
//! `C_Login`, because the policy list depends on them.
//!
//! An instance remembers the process that created it. After `fork` the child sees "not initialized" until it calls
//! `C_Initialize`, which abandons the parent's instance without dropping it: its connections and I/O driver are
//! shared with the parent, and tearing them down in the child could disturb the parent.

pub mod attributes;
pub mod mechanism;
pub mod objects;
pub mod session;
pub mod sign;
pub mod token;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki_sys::*;

use common::client::{ClientOptions, GatewayClient};
use common::config::Config;

use crate::error::{Error, Phase, Result};
use attributes::TemplateOutcome;
use mechanism::{Mechanism, MechanismRequest};
use objects::ObjectTable;
use session::Session;
use sign::SignOperation;
use token::{check_slot, Credentials, TokenInfo, SLOT_ID};

/// The version the module reports to the gateway in its User-Agent.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a successful login holds: the client for that token and the objects of its policies.
#[derive(Debug)]
pub struct Login {
    client: Arc<GatewayClient>,
    objects: ObjectTable,
}

type SharedSession = Arc<Mutex<Session>>;

#[derive(Debug)]
struct Instance {
    pid: u32,
    /// Distinguishes instances, so a login that finishes after `C_Finalize` is not recorded in the next one.
    epoch: u64,
    config: Arc<Config>,
    sessions: BTreeMap<CK_SESSION_HANDLE, SharedSession>,
    next_session: CK_SESSION_HANDLE,
    login: Option<Arc<Login>>,
    /// The configured token's objects, read at the first look before login; private keys among them stay hidden.
    public: Option<Arc<ObjectTable>>,
}

impl Instance {
    fn session(&self, handle: CK_SESSION_HANDLE) -> Result<SharedSession> {
        self.sessions
            .get(&handle)
            .cloned()
            .ok_or(Error::SessionHandleInvalid(handle))
    }
}

/// The objects a session may see now: the login's, the configured token's public ones, or none.
#[derive(Debug)]
enum View {
    LoggedIn(Arc<Login>),
    Public(Arc<ObjectTable>),
    Nothing,
}

impl View {
    fn object(&self, handle: CK_OBJECT_HANDLE) -> Result<&objects::Object> {
        match self {
            Self::LoggedIn(login) => login.objects.get(handle),
            Self::Public(table) => table
                .get(handle)
                .ok()
                .filter(|object| !object.is_private())
                .ok_or(Error::ObjectHandleInvalid(handle)),
            Self::Nothing => Err(Error::ObjectHandleInvalid(handle)),
        }
    }

    fn find(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<CK_OBJECT_HANDLE> {
        match self {
            Self::LoggedIn(login) => login.objects.find(template),
            Self::Public(table) => table
                .find(template)
                .into_iter()
                .filter(|handle| table.get(*handle).is_ok_and(|object| !object.is_private()))
                .collect(),
            Self::Nothing => Vec::new(),
        }
    }
}

/// How a length-returning function answered (PKCS#11 §5.2): the caller asked for the length, its buffer was too
/// small (the operation stays active), or here is the output.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Length(usize),
    TooSmall(usize),
    Done(Vec<u8>),
}

/// The module's state. The FFI layer owns one in a `static`; tests make their own.
#[derive(Debug, Default)]
pub struct Module {
    state: Mutex<Option<Instance>>,
    epochs: std::sync::atomic::AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| Error::Poisoned)
}

impl Module {
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(None),
            epochs: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The state for `C_Initialize` and `C_Finalize`, which replace it whole: a panic that poisoned the lock (every
    /// other function then answers `CKR_GENERAL_ERROR`) must not keep the application from starting over.
    fn lock_for_reset(&self) -> MutexGuard<'_, Option<Instance>> {
        self.state.lock().unwrap_or_else(|poisoned| {
            self.state.clear_poison();
            poisoned.into_inner()
        })
    }

    /// Runs `f` on the live instance of this process.
    fn with<R>(&self, f: impl FnOnce(&mut Instance) -> Result<R>) -> Result<R> {
        let mut state = lock(&self.state)?;
        match state.as_mut() {
            Some(instance) if instance.pid == std::process::id() => f(instance),
            _ => Err(Error::NotInitialized),
        }
    }

    fn session(&self, handle: CK_SESSION_HANDLE) -> Result<SharedSession> {
        self.with(|i| i.session(handle))
    }

    pub fn is_initialized(&self) -> bool {
        self.with(|_| Ok(())).is_ok()
    }

    /// `C_Initialize`: reads the configuration and starts logging. No thread is created, now or later, so
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS` needs nothing from us.
    pub fn initialize(&self, config: Config) -> Result<()> {
        let mut state = self.lock_for_reset();
        if let Some(instance) = state.take() {
            if instance.pid == std::process::id() {
                *state = Some(instance);
                return Err(Error::AlreadyInitialized);
            }
            // Inherited from the parent across fork: abandon it (see the module documentation).
            std::mem::forget(instance);
        }
        let epoch = self.epochs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *state = Some(Instance {
            pid: std::process::id(),
            epoch,
            config: Arc::new(config),
            sessions: BTreeMap::new(),
            next_session: 1,
            login: None,
            public: None,
        });
        Ok(())
    }

    /// `C_Finalize`: closes every session and forgets the login, so `C_Initialize` starts afresh.
    pub fn finalize(&self) -> Result<()> {
        let mut state = self.lock_for_reset();
        match state.take() {
            Some(instance) if instance.pid == std::process::id() => Ok(()),
            Some(inherited) => {
                std::mem::forget(inherited);
                Err(Error::NotInitialized)
            }
            None => Err(Error::NotInitialized),
        }
    }

    pub fn check_initialized(&self) -> Result<()> {
        self.with(|_| Ok(()))
    }

    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        self.with(|_| Ok(vec![SLOT_ID]))
    }

    pub fn check_slot(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.with(|i| check_slot(slot, &i.config.token_label))
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo> {
        self.with(|i| {
            check_slot(slot, &i.config.token_label)?;
            let mut rw_session_count = 0;
            for session in i.sessions.values() {
                if lock(session)?.read_write {
                    rw_session_count += 1;
                }
            }
            Ok(TokenInfo {
                label: i.config.token_label.clone(),
                flags: token::TOKEN_FLAGS,
                session_count: i.sessions.len(),
                rw_session_count,
            })
        })
    }

    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.with(|i| check_slot(slot, &i.config.token_label).map(|()| mechanism::all()))
    }

    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        self.with(|i| check_slot(slot, &i.config.token_label).and_then(|()| mechanism::info(mechanism)))
    }

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        self.with(|i| {
            check_slot(slot, &i.config.token_label)?;
            if flags & CKF_SERIAL_SESSION == 0 {
                return Err(Error::SessionParallelNotSupported);
            }
            let handle = i.next_session;
            i.next_session += 1;
            let session = Session::new(flags & CKF_RW_SESSION != 0);
            i.sessions.insert(handle, Arc::new(Mutex::new(session)));
            Ok(handle)
        })
    }

    /// Closing the application's last session logs it out (PKCS#11 §5.6, `C_CloseSession`).
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with(|i| {
            i.sessions
                .remove(&handle)
                .ok_or(Error::SessionHandleInvalid(handle))?;
            if i.sessions.is_empty() {
                i.login = None;
                i.public = None;
            }
            Ok(())
        })
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.with(|i| {
            check_slot(slot, &i.config.token_label)?;
            i.sessions.clear();
            i.login = None;
            i.public = None;
            Ok(())
        })
    }

    /// `(slot, state, flags)` of a session.
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, CK_STATE, CK_FLAGS)> {
        self.with(|i| {
            let session = i.session(handle)?;
            let session = lock(&session)?;
            let rw = if session.read_write { CKF_RW_SESSION } else { 0 };
            Ok((SLOT_ID, session.state(i.login.is_some()), CKF_SERIAL_SESSION | rw))
        })
    }

    /// `C_Login`: checks the credentials by fetching the policy list once; its objects then stay until logout.
    pub fn login(
        &self,
        handle: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> Result<()> {
        let (config, epoch) = self.with(|i| {
            i.session(handle)?;
            match user_type {
                CKU_USER => {}
                // No operation needs re-authentication: CKA_ALWAYS_AUTHENTICATE is false on every key.
                CKU_CONTEXT_SPECIFIC => return Err(Error::OperationNotInitialized),
                other => return Err(Error::UserTypeInvalid(other)),
            }
            if i.login.is_some() {
                return Err(Error::UserAlreadyLoggedIn);
            }
            Ok((i.config.clone(), i.epoch))
        })?;
        let credentials = token::credentials(pin, &config)?;
        let login = Arc::new(connect(&config, credentials)?);
        tracing::info!(objects = login.objects.len(), "logged in");
        self.with(|i| {
            if i.epoch != epoch {
                return Err(Error::SessionHandleInvalid(handle));
            }
            i.session(handle)?;
            if i.login.is_some() {
                return Err(Error::UserAlreadyLoggedIn);
            }
            i.login = Some(login);
            Ok(())
        })
    }

    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with(|i| {
            i.session(handle)?;
            i.login.take().ok_or(Error::UserNotLoggedIn)?;
            for session in i.sessions.values() {
                lock(session)?.end_operations();
            }
            Ok(())
        })
    }

    /// The login, if any, and the session: what every object function starts from.
    fn session_and_login(&self, handle: CK_SESSION_HANDLE) -> Result<(SharedSession, Option<Arc<Login>>)> {
        self.with(|i| Ok((i.session(handle)?, i.login.clone())))
    }

    /// The session and the objects it sees. Before login, the first look reads the configured token's policies
    /// (with no lock held) and keeps them until the last session closes; if the gateway cannot answer, the session
    /// sees nothing, as before login without configured credentials, and the next look asks again.
    fn session_and_view(&self, handle: CK_SESSION_HANDLE) -> Result<(SharedSession, View)> {
        let (session, login, public, config, epoch) = self.with(|i| {
            Ok((
                i.session(handle)?,
                i.login.clone(),
                i.public.clone(),
                i.config.clone(),
                i.epoch,
            ))
        })?;
        if let Some(login) = login {
            return Ok((session, View::LoggedIn(login)));
        }
        if let Some(public) = public {
            return Ok((session, View::Public(public)));
        }
        let Ok(credentials) = token::credentials(None, &config) else {
            return Ok((session, View::Nothing));
        };
        let table = match connect(&config, credentials) {
            Ok(login) => Arc::new(login.objects),
            Err(error) => {
                tracing::warn!(%error, "the token's public objects are not shown before login");
                return Ok((session, View::Nothing));
            }
        };
        tracing::info!(
            objects = table.len(),
            "public objects of the configured token read before login"
        );
        let table = self.with(|i| {
            if i.epoch != epoch {
                return Err(Error::SessionHandleInvalid(handle));
            }
            Ok(i.public.get_or_insert(table).clone())
        })?;
        Ok((session, View::Public(table)))
    }

    pub fn attribute_values(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Option<usize>)],
    ) -> Result<TemplateOutcome> {
        let (_, view) = self.session_and_view(handle)?;
        Ok(attributes::fill_template(view.object(object)?, template))
    }

    /// `C_FindObjectsInit`: every object after login; before it, the public objects of the configured token (see
    /// [`Module::session_and_view`]).
    pub fn find_init(
        &self,
        handle: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        // Checked before the view too: a second init must not cost a gateway call.
        if lock(self.session(handle)?.as_ref())?.find.is_some() {
            return Err(Error::OperationActive);
        }
        let (session, view) = self.session_and_view(handle)?;
        let mut session = lock(&session)?;
        if session.find.is_some() {
            return Err(Error::OperationActive);
        }
        session.find = Some(view.find(template).into());
        Ok(())
    }

    pub fn find(&self, handle: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(handle)?;
        let mut session = lock(&session)?;
        let found = session.find.as_mut().ok_or(Error::OperationNotInitialized)?;
        let n = max.min(found.len());
        Ok(found.drain(..n).collect())
    }

    pub fn find_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(handle)?;
        let mut session = lock(&session)?;
        session
            .find
            .take()
            .map(drop)
            .ok_or(Error::OperationNotInitialized)
    }

    pub fn sign_init(
        &self,
        handle: CK_SESSION_HANDLE,
        request: MechanismRequest,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let (session, login) = self.session_and_login(handle)?;
        let mut session = lock(&session)?;
        if session.sign.is_some() {
            return Err(Error::OperationActive);
        }
        let login = login.ok_or(Error::UserNotLoggedIn)?;
        let mechanism = Mechanism::parse(request)?;
        let key = login.objects.signing_key(key)?;
        session.sign = Some(SignOperation::new(mechanism, key, login.client.clone())?);
        Ok(())
    }

    /// `C_Sign` (`data` given) and `C_SignFinal` (`None`). `capacity` is the caller's buffer length, `None` for a
    /// length query.
    pub fn sign(
        &self,
        handle: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        capacity: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(handle)?;
        let (operation, request) = {
            let mut session = lock(&session)?;
            let operation = session.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
            let len = operation.signature_len();
            match capacity {
                None => return Ok(Output::Length(len)),
                Some(capacity) if capacity < len => return Ok(Output::TooSmall(len)),
                Some(_) => {}
            }
            // From here on the operation ends, whatever happens.
            let mut operation = session.sign.take().ok_or(Error::OperationNotInitialized)?;
            if let Some(data) = data {
                if operation.is_multi_part() {
                    return Err(Error::OperationActive);
                }
                operation.update(data)?;
            }
            let request = operation.digest_to_sign()?;
            (operation, request)
        };
        operation.sign(&request).map(Output::Done)
    }

    /// Ends the session's sign operation: an argument error in `C_Sign` ends it, as every error but
    /// `CKR_BUFFER_TOO_SMALL` does.
    pub fn cancel_sign(&self, handle: CK_SESSION_HANDLE) {
        if let Ok(session) = self.session(handle) {
            if let Ok(mut session) = lock(&session) {
                session.sign = None;
            }
        }
    }

    pub fn sign_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut session = lock(&session)?;
        let operation = session.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
        let outcome = operation.update(data);
        if outcome.is_err() {
            session.sign = None;
        }
        outcome
    }
}

/// Builds the gateway client for these credentials and reads the policies the token may use (narrowed to
/// `ProjectSlug`/`SigningPolicySlug` when the configuration names them).
fn connect(config: &Config, credentials: Credentials) -> Result<Login> {
    let mut config = config.clone();
    config.organization_id = Some(credentials.organization_id);
    config.api_token = Some(credentials.api_token);
    let client =
        GatewayClient::new(&config, ClientOptions::new("Cryptoki", VERSION)).map_err(|e| match e {
            common::Error::Config(c) => Error::Credentials(c),
            other => Error::Gateway {
                phase: Phase::Login,
                source: other,
            },
        })?;
    let policies = client
        .my_signing_policies(
            config.project_slug.as_deref(),
            config.signing_policy_slug.as_deref(),
        )
        .map_err(Error::gateway(Phase::Login))?;
    let objects = ObjectTable::from_policies(policies, config.certificate_chain_file.as_deref());
    Ok(Login {
        client: Arc::new(client),
        objects,
    })
}

#[cfg(test)]
mod tests;
