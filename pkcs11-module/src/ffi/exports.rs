//! The `C_*` functions the module implements. Each converts its C arguments, calls the core, and writes the
//! results back; section numbers refer to the PKCS#11 v2.40 base specification.

use std::ffi::c_void;

use cryptoki_sys::*;

use common::config::Config;

use super::ptr;
use super::MODULE;
use crate::core::mechanism::{MechanismRequest, Params};
use crate::core::token::{self, blank_padded};
use crate::error::Error;

/// Mechanisms whose parameter is a `CK_RSA_PKCS_PSS_PARAMS`.
const PSS_MECHANISMS: [CK_MECHANISM_TYPE; 4] = [
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];

cryptoki_fn! {
    /// §5.4 `C_Initialize`. Accepts every locking combination: the module always uses its own (OS) locks, and it
    /// creates no thread, so `CKF_LIBRARY_CANT_CREATE_OS_THREADS` (GnuTLS passes it) is honoured as given.
    uninitialized fn C_Initialize(init_args: *mut c_void) {
        if !init_args.is_null() {
            // SAFETY: a non-NULL argument points at a CK_C_INITIALIZE_ARGS (§5.4).
            let args = unsafe { ptr::input(init_args as *const CK_C_INITIALIZE_ARGS, "init args") }?;
            if !args.pReserved.is_null() {
                return Err(Error::ArgumentsBad("CK_C_INITIALIZE_ARGS.pReserved must be NULL"));
            }
            let mutex_functions = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if mutex_functions.contains(&true) && mutex_functions.contains(&false) {
                return Err(Error::ArgumentsBad("give all four mutex functions or none"));
            }
        }
        let config = Config::from_environment();
        // The log goes where the configuration says; a configuration that cannot be read is logged to the default
        // place before C_Initialize fails.
        match config {
            Ok(config) => {
                common::logging::init(&config, "Cryptoki", true);
                MODULE.initialize(config)?;
                tracing::info!(version = crate::core::VERSION, "initialized");
                Ok(())
            }
            Err(error) => {
                if let Ok(defaults) = Config::load(&Default::default(), &|_: &str| None) {
                    common::logging::init(&defaults, "Cryptoki", true);
                }
                Err(Error::Config(error))
            }
        }
    }
}

cryptoki_fn! {
    /// §5.4 `C_Finalize`: closes every session and forgets the login.
    uninitialized fn C_Finalize(reserved: *mut c_void) {
        if !reserved.is_null() {
            return Err(Error::ArgumentsBad("C_Finalize's argument must be NULL"));
        }
        MODULE.finalize()
    }
}

cryptoki_fn! {
    /// §5.4 `C_GetInfo`.
    fn C_GetInfo(info: *mut CK_INFO) {
        // SAFETY: caller's contract (§5.4).
        let info = unsafe { ptr::out(info, "NULL CK_INFO") }?;
        *info = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 2, minor: 40 },
            manufacturerID: blank_padded(token::MANUFACTURER),
            flags: 0,
            libraryDescription: blank_padded(token::LIBRARY_DESCRIPTION),
            libraryVersion: token::version(),
        };
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.5 `C_GetSlotList`: one slot, always with its token.
    fn C_GetSlotList(_token_present: CK_BBOOL, slots: *mut CK_SLOT_ID, count: *mut CK_ULONG) {
        let list = MODULE.slot_list()?;
        // SAFETY: caller's contract (§5.5).
        unsafe { ptr::write_list(&list, slots, count) }
    }
}

cryptoki_fn! {
    /// §5.5 `C_GetSlotInfo`.
    fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) {
        MODULE.check_slot(slot)?;
        // SAFETY: caller's contract (§5.5).
        let info = unsafe { ptr::out(info, "NULL CK_SLOT_INFO") }?;
        *info = CK_SLOT_INFO {
            slotDescription: blank_padded(token::SLOT_DESCRIPTION),
            manufacturerID: blank_padded(token::MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: token::version(),
            firmwareVersion: token::version(),
        };
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.5 `C_GetTokenInfo`. Session limits are "effectively infinite" (crypto11 sizes its pool from them).
    fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) {
        let token_info = MODULE.token_info(slot)?;
        // SAFETY: caller's contract (§5.5).
        let info = unsafe { ptr::out(info, "NULL CK_TOKEN_INFO") }?;
        *info = CK_TOKEN_INFO {
            label: blank_padded(&token_info.label),
            manufacturerID: blank_padded(token::MANUFACTURER),
            model: blank_padded(token::TOKEN_MODEL),
            serialNumber: blank_padded(token::TOKEN_SERIAL),
            flags: token_info.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: token_info.session_count as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: token_info.rw_session_count as CK_ULONG,
            ulMaxPinLen: token::MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: 0,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: token::version(),
            firmwareVersion: token::version(),
            utcTime: blank_padded(""),
        };
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.5 `C_GetMechanismList`.
    fn C_GetMechanismList(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG) {
        let mechanisms = MODULE.mechanism_list(slot)?;
        // SAFETY: caller's contract (§5.5).
        unsafe { ptr::write_list(&mechanisms, list, count) }
    }
}

cryptoki_fn! {
    /// §5.5 `C_GetMechanismInfo`.
    fn C_GetMechanismInfo(slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO) {
        let mechanism_info = MODULE.mechanism_info(slot, mechanism)?;
        // SAFETY: caller's contract (§5.5).
        *unsafe { ptr::out(info, "NULL CK_MECHANISM_INFO") }? = mechanism_info;
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.6 `C_OpenSession`. Read-write sessions are accepted (cosign and SunPKCS11 always open them), although
    /// nothing on the token can be written. Notification callbacks are never called.
    fn C_OpenSession(
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        _application: *mut c_void,
        _notify: CK_NOTIFY,
        session: *mut CK_SESSION_HANDLE,
    ) {
        // SAFETY: caller's contract (§5.6).
        let session = unsafe { ptr::out(session, "NULL session handle pointer") }?;
        *session = MODULE.open_session(slot, flags)?;
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.6 `C_CloseSession`.
    fn C_CloseSession(session: CK_SESSION_HANDLE) {
        MODULE.close_session(session)
    }
}

cryptoki_fn! {
    /// §5.6 `C_CloseAllSessions`.
    fn C_CloseAllSessions(slot: CK_SLOT_ID) {
        MODULE.close_all_sessions(slot)
    }
}

cryptoki_fn! {
    /// §5.6 `C_GetSessionInfo`.
    fn C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) {
        let (slot, state, flags) = MODULE.session_info(session)?;
        // SAFETY: caller's contract (§5.6).
        *unsafe { ptr::out(info, "NULL CK_SESSION_INFO") }? = CK_SESSION_INFO {
            slotID: slot,
            state,
            flags,
            ulDeviceError: 0,
        };
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.6 `C_Login`. The PIN is `OrganizationId:ApiToken`, `CONFIG`, or empty/NULL (both: from the
    /// configuration).
    network fn C_Login(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) {
        // SAFETY: caller's contract (§5.6): pin is NULL or pin_len readable bytes.
        let pin = unsafe { ptr::slice(pin, pin_len, "NULL PIN with a length") }?;
        MODULE.login(session, user_type, Some(pin))
    }
}

cryptoki_fn! {
    /// §5.6 `C_Logout`.
    fn C_Logout(session: CK_SESSION_HANDLE) {
        MODULE.logout(session)
    }
}

cryptoki_fn! {
    /// §5.7 `C_GetAttributeValue`: every entry is processed; see `core::attributes::fill_template`.
    fn C_GetAttributeValue(
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
    ) {
        let request: Vec<(CK_ATTRIBUTE_TYPE, Option<usize>)> = {
            // SAFETY: caller's contract (§5.7): template holds count entries.
            let entries = unsafe { ptr::slice(template, count, "NULL template") }?;
            entries
                .iter()
                .map(|a| (a.type_, (!a.pValue.is_null()).then_some(a.ulValueLen as usize)))
                .collect()
        };
        let outcome = MODULE.attribute_values(session, object, &request)?;
        for (index, filled) in outcome.entries.iter().enumerate() {
            // SAFETY: index < count, so the entry is inside the caller's template; no other reference to it lives.
            let entry = unsafe { &mut *template.add(index) };
            if let Some(value) = &filled.value {
                // SAFETY: pValue is writable for ulValueLen bytes (§5.7); the core checked the value fits.
                unsafe { ptr::copy_out(value, entry.pValue as *mut u8, entry.ulValueLen as usize) }?;
            }
            entry.ulValueLen = filled.len;
        }
        outcome.error.map_or(Ok(()), Err)
    }
}

cryptoki_fn! {
    /// §5.7 `C_FindObjectsInit`: exact byte matches on any attribute.
    fn C_FindObjectsInit(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG) {
        // SAFETY: caller's contract (§5.7): template holds count entries.
        let entries = unsafe { ptr::slice(template, count, "NULL template") }?;
        let mut wanted = Vec::with_capacity(entries.len());
        for entry in entries {
            // SAFETY: each entry's pValue holds ulValueLen readable bytes.
            let value = unsafe { ptr::slice(entry.pValue as *const u8, entry.ulValueLen, "NULL attribute value") }?;
            wanted.push((entry.type_, value.to_vec()));
        }
        MODULE.find_init(session, &wanted)
    }
}

cryptoki_fn! {
    /// §5.7 `C_FindObjects`.
    fn C_FindObjects(
        session: CK_SESSION_HANDLE,
        objects: *mut CK_OBJECT_HANDLE,
        max: CK_ULONG,
        count: *mut CK_ULONG,
    ) {
        // SAFETY: caller's contract (§5.7).
        let count = unsafe { ptr::out(count, "NULL count pointer") }?;
        if objects.is_null() {
            return Err(Error::ArgumentsBad("NULL object handle array"));
        }
        let found = MODULE.find(session, usize::try_from(max).unwrap_or(usize::MAX))?;
        // SAFETY: objects is non-NULL and writable for max handles; found.len() <= max.
        unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), objects, found.len()) };
        *count = found.len() as CK_ULONG;
        Ok(())
    }
}

cryptoki_fn! {
    /// §5.7 `C_FindObjectsFinal`.
    fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) {
        MODULE.find_final(session)
    }
}

cryptoki_fn! {
    /// §5.11 `C_SignInit`.
    fn C_SignInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) {
        // SAFETY: caller's contract (§5.11).
        let mechanism = unsafe { ptr::input(mechanism, "NULL mechanism") }?;
        let params = if mechanism.pParameter.is_null() {
            if mechanism.ulParameterLen != 0 {
                return Err(Error::ArgumentsBad("NULL mechanism parameter with a length"));
            }
            Params::None
        } else if mechanism.ulParameterLen == 0 {
            Params::None
        } else if PSS_MECHANISMS.contains(&mechanism.mechanism)
            && mechanism.ulParameterLen as usize == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>()
        {
            // SAFETY: the parameter of a PSS mechanism is a CK_RSA_PKCS_PSS_PARAMS of the length just checked;
            // read unaligned because nothing obliges the caller to align it.
            let pss = unsafe { std::ptr::read_unaligned(mechanism.pParameter as *const CK_RSA_PKCS_PSS_PARAMS) };
            Params::Pss {
                hash_alg: pss.hashAlg,
                mgf: pss.mgf,
                salt_len: pss.sLen,
            }
        } else {
            Params::Other { len: mechanism.ulParameterLen as usize }
        };
        let request = MechanismRequest {
            mechanism: mechanism.mechanism,
            params,
        };
        MODULE.sign_init(session, request, key)
    }
}

cryptoki_fn! {
    /// §5.11 `C_Sign`. A NULL `signature` asks for the length; neither that nor a too-small buffer calls the
    /// gateway or ends the operation.
    network fn C_Sign(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        signature: *mut CK_BYTE,
        signature_len: *mut CK_ULONG,
    ) {
        // SAFETY: caller's contract (§5.11).
        let read = unsafe { ptr::capacity(signature, signature_len) }
            // SAFETY: caller's contract (§5.11): data holds data_len bytes.
            .and_then(|capacity| Ok((capacity, unsafe { ptr::slice(data, data_len, "NULL data") }?)));
        let (capacity, data) = match read {
            Ok(read) => read,
            Err(error) => {
                MODULE.cancel_sign(session);
                return Err(error);
            }
        };
        let output = MODULE.sign(session, Some(data), capacity)?;
        // SAFETY: caller's contract (§5.11).
        unsafe { ptr::write_output(output, signature, signature_len) }
    }
}

cryptoki_fn! {
    /// §5.11 `C_SignUpdate`.
    fn C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) {
        // SAFETY: caller's contract (§5.11): part holds part_len bytes.
        let part = match unsafe { ptr::slice(part, part_len, "NULL data") } {
            Ok(part) => part,
            Err(error) => {
                MODULE.cancel_sign(session);
                return Err(error);
            }
        };
        MODULE.sign_update(session, part)
    }
}

cryptoki_fn! {
    /// §5.11 `C_SignFinal`, with the same length conventions as `C_Sign`.
    network fn C_SignFinal(session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG) {
        // SAFETY: caller's contract (§5.11).
        let capacity = match unsafe { ptr::capacity(signature, signature_len) } {
            Ok(capacity) => capacity,
            Err(error) => {
                MODULE.cancel_sign(session);
                return Err(error);
            }
        };
        let output = MODULE.sign(session, None, capacity)?;
        // SAFETY: caller's contract (§5.11).
        unsafe { ptr::write_output(output, signature, signature_len) }
    }
}

cryptoki_fn! {
    /// §5.14 `C_SeedRandom`: the token has no RNG (`CKF_RNG` is not set), which pkcs11-tool's `--test` accepts.
    fn C_SeedRandom(session: CK_SESSION_HANDLE, _seed: *mut CK_BYTE, _seed_len: CK_ULONG) {
        MODULE.session_info(session)?;
        Err(Error::RandomNoRng)
    }
}

cryptoki_fn! {
    /// §5.14 `C_GenerateRandom`: the token has no RNG.
    fn C_GenerateRandom(session: CK_SESSION_HANDLE, _out: *mut CK_BYTE, _out_len: CK_ULONG) {
        MODULE.session_info(session)?;
        Err(Error::RandomNoRng)
    }
}

cryptoki_fn! {
    /// §5.15 `C_GetFunctionStatus`: a legacy function; the module runs nothing in parallel.
    fn C_GetFunctionStatus(_session: CK_SESSION_HANDLE) {
        Err(Error::FunctionNotParallel)
    }
}

cryptoki_fn! {
    /// §5.15 `C_CancelFunction`: a legacy function; the module runs nothing in parallel.
    fn C_CancelFunction(_session: CK_SESSION_HANDLE) {
        Err(Error::FunctionNotParallel)
    }
}
