//! A raw C caller: the module's function list called with the pointers a C client passes, including the NULLs
//! and short buffers a safe wrapper such as `cryptoki` never produces.
//!
//! This is the FFI-test exception to the workspace's `unsafe_code = "deny"`: calling a C function list is unsafe
//! by nature. Every call passes NULL or a pointer to a live local of the size the length argument says.
#![allow(unsafe_code)]

use std::ptr::null_mut;

use cryptoki_sys::*;

pub struct Raw {
    _library: cryptoki_sys::Pkcs11,
    list: CK_FUNCTION_LIST,
}

/// Calls one entry of the function list.
macro_rules! call {
    ($raw:expr, $f:ident($($arg:expr),* $(,)?)) => {{
        let f = $raw.list.$f.expect(concat!(stringify!($f), " is in the function list"));
        // SAFETY: the arguments are NULL or point at live locals of the sizes their length arguments give.
        unsafe { f($($arg),*) }
    }};
}

impl Raw {
    pub fn load() -> Self {
        // SAFETY: loading the module runs no initializer with preconditions (it has no constructors).
        let library = unsafe { cryptoki_sys::Pkcs11::new(super::module_path()) }.expect("dlopen the module");
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { library.C_GetFunctionList(&mut list) }, CKR_OK);
        // SAFETY: the module returned a pointer to its static function list.
        let list = unsafe { *list };
        Self {
            _library: library,
            list,
        }
    }

    pub fn initialize(&self, flags: Option<CK_FLAGS>) -> CK_RV {
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: flags.unwrap_or(0),
            ..Default::default()
        };
        let pointer = if flags.is_some() {
            (&mut args as *mut CK_C_INITIALIZE_ARGS).cast()
        } else {
            null_mut()
        };
        call!(self, C_Initialize(pointer))
    }

    pub fn initialize_with_reserved(&self) -> CK_RV {
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            pReserved: (&mut 0u8 as *mut u8).cast(),
            ..Default::default()
        };
        call!(
            self,
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast())
        )
    }

    pub fn finalize(&self) -> CK_RV {
        call!(self, C_Finalize(null_mut()))
    }

    pub fn get_info_null(&self) -> CK_RV {
        call!(self, C_GetInfo(null_mut()))
    }

    /// The module's slot (its id is fixed, so this also works before `C_Initialize`).
    pub fn slot(&self) -> CK_SLOT_ID {
        let mut slot: CK_SLOT_ID = 1;
        let mut count: CK_ULONG = 1;
        call!(self, C_GetSlotList(CK_TRUE, &mut slot, &mut count));
        slot
    }

    pub fn open_session(&self, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE, CK_RV> {
        let mut session = 0;
        match call!(
            self,
            C_OpenSession(self.slot(), flags, null_mut(), None, &mut session)
        ) {
            CKR_OK => Ok(session),
            rv => Err(rv),
        }
    }

    pub fn open_session_null(&self) -> CK_RV {
        call!(
            self,
            C_OpenSession(self.slot(), CKF_SERIAL_SESSION, null_mut(), None, null_mut())
        )
    }

    pub fn close_session(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        call!(self, C_CloseSession(session))
    }

    pub fn login(&self, session: CK_SESSION_HANDLE, pin: Option<&str>) -> CK_RV {
        let (pointer, len) = match pin {
            Some(pin) => (pin.as_ptr().cast_mut(), pin.len() as CK_ULONG),
            None => (null_mut(), 0),
        };
        call!(self, C_Login(session, CKU_USER, pointer, len))
    }

    pub fn logout(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        call!(self, C_Logout(session))
    }

    pub fn session_state(&self, session: CK_SESSION_HANDLE) -> Result<CK_STATE, CK_RV> {
        let mut info = CK_SESSION_INFO::default();
        match call!(self, C_GetSessionInfo(session, &mut info)) {
            CKR_OK => Ok(info.state),
            rv => Err(rv),
        }
    }

    /// `C_SignInit` with `parameter` as the mechanism's parameter bytes.
    pub fn sign_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut mechanism = CK_MECHANISM {
            mechanism,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        call!(self, C_SignInit(session, &mut mechanism, key))
    }

    pub fn sign_init_pss(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        params: CK_RSA_PKCS_PSS_PARAMS,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut params = params;
        let mut mechanism = CK_MECHANISM {
            mechanism,
            pParameter: (&mut params as *mut CK_RSA_PKCS_PSS_PARAMS).cast(),
            ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        call!(self, C_SignInit(session, &mut mechanism, key))
    }

    /// `C_Sign` with a buffer of `capacity` bytes (`None`: NULL, a length query). Returns the code, the length
    /// the module wrote back and the buffer.
    pub fn sign(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> (CK_RV, CK_ULONG, Vec<u8>) {
        let mut buffer = vec![0u8; capacity.unwrap_or(0)];
        let mut len = capacity.unwrap_or(0) as CK_ULONG;
        let out = if capacity.is_some() {
            buffer.as_mut_ptr()
        } else {
            null_mut()
        };
        let rv = call!(
            self,
            C_Sign(
                session,
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                out,
                &mut len
            )
        );
        if rv == CKR_OK && capacity.is_some() {
            buffer.truncate(len as usize);
        }
        (rv, len, buffer)
    }

    pub fn sign_null_length(&self, session: CK_SESSION_HANDLE, data: &[u8]) -> CK_RV {
        call!(
            self,
            C_Sign(
                session,
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                null_mut(),
                null_mut()
            )
        )
    }

    pub fn sign_update(&self, session: CK_SESSION_HANDLE, data: &[u8]) -> CK_RV {
        call!(
            self,
            C_SignUpdate(session, data.as_ptr().cast_mut(), data.len() as CK_ULONG)
        )
    }

    pub fn sign_final(
        &self,
        session: CK_SESSION_HANDLE,
        capacity: Option<usize>,
    ) -> (CK_RV, CK_ULONG, Vec<u8>) {
        let mut buffer = vec![0u8; capacity.unwrap_or(0)];
        let mut len = capacity.unwrap_or(0) as CK_ULONG;
        let out = if capacity.is_some() {
            buffer.as_mut_ptr()
        } else {
            null_mut()
        };
        let rv = call!(self, C_SignFinal(session, out, &mut len));
        if rv == CKR_OK && capacity.is_some() {
            buffer.truncate(len as usize);
        }
        (rv, len, buffer)
    }

    /// Handles of the objects of one class.
    pub fn find_by_class(
        &self,
        session: CK_SESSION_HANDLE,
        class: CK_OBJECT_CLASS,
    ) -> Result<Vec<CK_OBJECT_HANDLE>, CK_RV> {
        self.find(session, &[(CKA_CLASS, class.to_ne_bytes().to_vec())])
    }

    /// `C_FindObjectsInit` with this template, `C_FindObjects` two at a time until none is left, `C_FindObjectsFinal`.
    pub fn find(
        &self,
        session: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<CK_OBJECT_HANDLE>, CK_RV> {
        let mut values: Vec<Vec<u8>> = template.iter().map(|(_, v)| v.clone()).collect();
        let mut template: Vec<CK_ATTRIBUTE> = template
            .iter()
            .zip(values.iter_mut())
            .map(|((ty, _), value)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: value.as_mut_ptr().cast(),
                ulValueLen: value.len() as CK_ULONG,
            })
            .collect();
        match call!(
            self,
            C_FindObjectsInit(session, template.as_mut_ptr(), template.len() as CK_ULONG)
        ) {
            CKR_OK => {}
            rv => return Err(rv),
        }
        let mut found = Vec::new();
        loop {
            let mut handles = [0 as CK_OBJECT_HANDLE; 2];
            let mut count: CK_ULONG = 0;
            match call!(self, C_FindObjects(session, handles.as_mut_ptr(), 2, &mut count)) {
                CKR_OK if count == 0 => break,
                CKR_OK => found.extend_from_slice(&handles[..count as usize]),
                rv => return Err(rv),
            }
        }
        assert_eq!(call!(self, C_FindObjectsFinal(session)), CKR_OK);
        Ok(found)
    }

    /// `C_GetAttributeValue` for a template of (type, buffer capacity or NULL): the code and, per entry, the
    /// length written back and the bytes.
    pub fn attributes(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        request: &[(CK_ATTRIBUTE_TYPE, Option<usize>)],
    ) -> (CK_RV, Vec<(CK_ULONG, Vec<u8>)>) {
        let mut buffers: Vec<Vec<u8>> = request.iter().map(|(_, c)| vec![0u8; c.unwrap_or(0)]).collect();
        let mut template: Vec<CK_ATTRIBUTE> = request
            .iter()
            .zip(buffers.iter_mut())
            .map(|((ty, capacity), buffer)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: if capacity.is_some() {
                    buffer.as_mut_ptr().cast()
                } else {
                    null_mut()
                },
                ulValueLen: capacity.unwrap_or(0) as CK_ULONG,
            })
            .collect();
        let rv = call!(
            self,
            C_GetAttributeValue(session, object, template.as_mut_ptr(), template.len() as CK_ULONG)
        );
        let values = template
            .iter()
            .zip(buffers)
            .map(|(entry, mut buffer)| {
                if (entry.ulValueLen as usize) <= buffer.len() {
                    buffer.truncate(entry.ulValueLen as usize);
                }
                (entry.ulValueLen, buffer)
            })
            .collect();
        (rv, values)
    }
}
