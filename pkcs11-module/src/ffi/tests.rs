//! The exported functions called in-process as a C caller would, with the misuse a client can commit: exact
//! return codes for NULL pointers, bad handles, calls before `C_Initialize` and in the wrong order. Everything
//! here runs before a login, so no gateway is needed; the signing paths are covered by the end-to-end tests that
//! load the built library. One test function, because the module's state is one static.

use std::ptr::null_mut;

use cryptoki_sys::*;

use super::exports::*;
use super::function_list::C_GetFunctionList;
use super::unsupported::C_Encrypt;

fn session_info(session: CK_SESSION_HANDLE) -> (CK_RV, CK_SESSION_INFO) {
    let mut info = CK_SESSION_INFO::default();
    // SAFETY: a valid out-pointer.
    let rv = unsafe { C_GetSessionInfo(session, &mut info) };
    (rv, info)
}

#[test]
fn misuse_returns_the_codes_the_specification_names() {
    // SAFETY: every pointer below is NULL on purpose or points at a live local of the right type and size.
    unsafe {
        // Before C_Initialize only C_GetFunctionList works.
        let mut info = CK_INFO::default();
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        let mut session = 0;
        assert_eq!(
            C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_Encrypt(1, null_mut(), 0, null_mut(), null_mut()),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        let (mut first, mut second) = (null_mut(), null_mut());
        assert_eq!(C_GetFunctionList(&mut first), CKR_OK);
        assert_eq!(C_GetFunctionList(&mut second), CKR_OK);
        assert_eq!(first, second);
        assert_eq!((*first).version.major, 2);
        assert_eq!((*first).version.minor, 40);
        assert_eq!(C_GetFunctionList(null_mut()), CKR_ARGUMENTS_BAD);

        // Initialization arguments.
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            pReserved: std::ptr::dangling_mut(),
            ..Default::default()
        };
        assert_eq!(
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()),
            CKR_ARGUMENTS_BAD
        );
        extern "C" fn create(_: *mut *mut std::ffi::c_void) -> CK_RV {
            CKR_OK
        }
        args.pReserved = null_mut();
        args.CreateMutex = Some(create);
        assert_eq!(
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()),
            CKR_ARGUMENTS_BAD
        );
        args.CreateMutex = None;
        // GnuTLS's flags: the module creates no thread, so this is fine.
        args.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS;
        assert_eq!(
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()),
            CKR_OK
        );
        assert_eq!(C_Initialize(null_mut()), CKR_CRYPTOKI_ALREADY_INITIALIZED);

        // Library, slot and token information: blank padded, one slot.
        assert_eq!(C_GetInfo(null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetInfo(&mut info), CKR_OK);
        assert_eq!((info.cryptokiVersion.major, info.cryptokiVersion.minor), (2, 40));
        assert_eq!(info.flags, 0);
        assert!(!info.manufacturerID.contains(&0));
        assert_eq!(C_GetSlotList(CK_TRUE, null_mut(), null_mut()), CKR_ARGUMENTS_BAD);
        let mut count: CK_ULONG = 0;
        assert_eq!(C_GetSlotList(CK_TRUE, null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 1);
        let mut slots: [CK_SLOT_ID; 2] = [0; 2];
        count = 0;
        assert_eq!(
            C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(count, 1);
        count = 2;
        assert_eq!(C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count), CKR_OK);
        let slot = slots[0];
        let mut token = CK_TOKEN_INFO::default();
        assert_eq!(C_GetTokenInfo(slot + 1, &mut token), CKR_SLOT_ID_INVALID);
        assert_eq!(C_GetTokenInfo(slot, &mut token), CKR_OK);
        assert_eq!(&token.label[..9], b"SignPath ");
        assert!(token.label[8..].iter().all(|b| *b == b' '));
        assert_ne!(token.flags & CKF_LOGIN_REQUIRED, 0);
        assert_ne!(token.flags & CKF_TOKEN_INITIALIZED, 0);
        assert_eq!(token.ulMaxRwSessionCount, CK_EFFECTIVELY_INFINITE);

        // Mechanisms.
        assert_eq!(C_GetMechanismList(slot, null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 12);
        let mut mechanism_info = CK_MECHANISM_INFO::default();
        assert_eq!(C_GetMechanismInfo(slot, CKM_ECDSA, &mut mechanism_info), CKR_OK);
        assert_eq!(
            mechanism_info.flags,
            CKF_SIGN | CKF_HW | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS
        );
        assert_eq!(
            C_GetMechanismInfo(slot, CKM_AES_CBC, &mut mechanism_info),
            CKR_MECHANISM_INVALID
        );

        // Sessions.
        assert_eq!(
            C_OpenSession(slot, 0, null_mut(), None, &mut session),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_eq!(
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_OpenSession(99, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_SLOT_ID_INVALID
        );
        let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        assert_eq!(C_OpenSession(slot, rw, null_mut(), None, &mut session), CKR_OK);
        let (rv, state) = session_info(session);
        assert_eq!((rv, state.state), (CKR_OK, CKS_RW_PUBLIC_SESSION));
        assert_eq!(session_info(session + 100).0, CKR_SESSION_HANDLE_INVALID);

        // Operations in the wrong order.
        let mut len: CK_ULONG = 0;
        assert_eq!(
            C_Sign(session, null_mut(), 0, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_SignFinal(session, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        let mut mechanism = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(C_SignInit(session, null_mut(), 1), CKR_ARGUMENTS_BAD);
        assert_eq!(C_SignInit(session, &mut mechanism, 1), CKR_USER_NOT_LOGGED_IN);
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        assert_eq!(
            C_FindObjects(session, found.as_mut_ptr(), 4, &mut count),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_FindObjectsInit(session, null_mut(), 1), CKR_ARGUMENTS_BAD);
        assert_eq!(C_FindObjectsInit(session, null_mut(), 0), CKR_OK);
        assert_eq!(C_FindObjectsInit(session, null_mut(), 0), CKR_OPERATION_ACTIVE);
        assert_eq!(C_FindObjects(session, found.as_mut_ptr(), 4, &mut count), CKR_OK);
        assert_eq!(count, 0, "objects appear only after login");
        assert_eq!(C_FindObjectsFinal(session), CKR_OK);
        assert_eq!(C_FindObjectsFinal(session), CKR_OPERATION_NOT_INITIALIZED);
        let mut class: CK_ULONG = 0;
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: (&mut class as *mut CK_ULONG).cast(),
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        }];
        assert_eq!(
            C_GetAttributeValue(session, 1, template.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(C_GetAttributeValue(session, 1, null_mut(), 1), CKR_ARGUMENTS_BAD);

        // Login misuse that needs no gateway.
        let pin = b"no-colon-here";
        assert_eq!(
            C_Login(session, 99, pin.as_ptr().cast_mut(), pin.len() as CK_ULONG),
            CKR_USER_TYPE_INVALID
        );
        assert_eq!(
            C_Login(session, CKU_USER, pin.as_ptr().cast_mut(), pin.len() as CK_ULONG),
            CKR_PIN_INCORRECT
        );
        assert_eq!(C_Login(session, CKU_USER, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(C_Logout(session), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(
            C_Login(session + 100, CKU_USER, null_mut(), 0),
            CKR_SESSION_HANDLE_INVALID
        );

        // Legacy and unsupported functions.
        assert_eq!(C_GetFunctionStatus(session), CKR_FUNCTION_NOT_PARALLEL);
        assert_eq!(
            C_Encrypt(session, null_mut(), 0, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        let list = &*first;
        let verify_init = list.C_VerifyInit.expect("every entry is set");
        assert_eq!(
            verify_init(session, &mut mechanism, 1),
            CKR_FUNCTION_NOT_SUPPORTED
        );

        // Closing, finalizing, and starting again in the same process (cosign does).
        assert_eq!(C_CloseSession(session), CKR_OK);
        assert_eq!(C_CloseSession(session), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_Finalize(std::ptr::dangling_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_Finalize(null_mut()), CKR_OK);
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Initialize(null_mut()), CKR_OK);
        assert_eq!(
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_OK
        );
        let (rv, state) = session_info(session);
        assert_eq!((rv, state.state), (CKR_OK, CKS_RO_PUBLIC_SESSION));
        assert_eq!(C_Finalize(null_mut()), CKR_OK);
    }
}
