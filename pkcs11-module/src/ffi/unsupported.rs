//! The functions of the v2.40 list a remote signing token does not offer: after the initialization check every one
//! answers `CKR_FUNCTION_NOT_SUPPORTED`, so a client learns that instead of crashing on a missing entry.

use std::ffi::c_void;

use cryptoki_sys::*;

use crate::error::Error;

macro_rules! unsupported {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(cryptoki_fn! {
            /// Not supported by this module: `CKR_FUNCTION_NOT_SUPPORTED`.
            fn $name($($arg: $ty),*) {
                Err(Error::FunctionNotSupported)
            }
        })*
    };
}

unsupported! {
    C_InitToken(_slot: CK_SLOT_ID, _pin: *mut CK_UTF8CHAR, _pin_len: CK_ULONG, _label: *mut CK_UTF8CHAR);
    C_InitPIN(_session: CK_SESSION_HANDLE, _pin: *mut CK_UTF8CHAR, _pin_len: CK_ULONG);
    C_SetPIN(_session: CK_SESSION_HANDLE, _old: *mut CK_UTF8CHAR, _old_len: CK_ULONG, _new: *mut CK_UTF8CHAR, _new_len: CK_ULONG);
    C_GetOperationState(_session: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _state_len: *mut CK_ULONG);
    C_SetOperationState(_session: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _state_len: CK_ULONG, _encryption_key: CK_OBJECT_HANDLE, _authentication_key: CK_OBJECT_HANDLE);
    C_CreateObject(_session: CK_SESSION_HANDLE, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG, _object: *mut CK_OBJECT_HANDLE);
    C_CopyObject(_session: CK_SESSION_HANDLE, _object: CK_OBJECT_HANDLE, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG, _new_object: *mut CK_OBJECT_HANDLE);
    C_DestroyObject(_session: CK_SESSION_HANDLE, _object: CK_OBJECT_HANDLE);
    C_GetObjectSize(_session: CK_SESSION_HANDLE, _object: CK_OBJECT_HANDLE, _size: *mut CK_ULONG);
    C_SetAttributeValue(_session: CK_SESSION_HANDLE, _object: CK_OBJECT_HANDLE, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG);
    C_EncryptInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _key: CK_OBJECT_HANDLE);
    C_Encrypt(_session: CK_SESSION_HANDLE, _data: *mut CK_BYTE, _data_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_EncryptUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_EncryptFinal(_session: CK_SESSION_HANDLE, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DecryptInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _key: CK_OBJECT_HANDLE);
    C_Decrypt(_session: CK_SESSION_HANDLE, _data: *mut CK_BYTE, _data_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DecryptUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DecryptFinal(_session: CK_SESSION_HANDLE, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DigestInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM);
    C_Digest(_session: CK_SESSION_HANDLE, _data: *mut CK_BYTE, _data_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DigestUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG);
    C_DigestKey(_session: CK_SESSION_HANDLE, _key: CK_OBJECT_HANDLE);
    C_DigestFinal(_session: CK_SESSION_HANDLE, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_SignRecoverInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _key: CK_OBJECT_HANDLE);
    C_SignRecover(_session: CK_SESSION_HANDLE, _data: *mut CK_BYTE, _data_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_VerifyInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _key: CK_OBJECT_HANDLE);
    C_Verify(_session: CK_SESSION_HANDLE, _data: *mut CK_BYTE, _data_len: CK_ULONG, _signature: *mut CK_BYTE, _signature_len: CK_ULONG);
    C_VerifyUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG);
    C_VerifyFinal(_session: CK_SESSION_HANDLE, _signature: *mut CK_BYTE, _signature_len: CK_ULONG);
    C_VerifyRecoverInit(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _key: CK_OBJECT_HANDLE);
    C_VerifyRecover(_session: CK_SESSION_HANDLE, _signature: *mut CK_BYTE, _signature_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DigestEncryptUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DecryptDigestUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_SignEncryptUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_DecryptVerifyUpdate(_session: CK_SESSION_HANDLE, _part: *mut CK_BYTE, _part_len: CK_ULONG, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_GenerateKey(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG, _key: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _public_template: *mut CK_ATTRIBUTE, _public_count: CK_ULONG, _private_template: *mut CK_ATTRIBUTE, _private_count: CK_ULONG, _public_key: *mut CK_OBJECT_HANDLE, _private_key: *mut CK_OBJECT_HANDLE);
    C_WrapKey(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _wrapping_key: CK_OBJECT_HANDLE, _key: CK_OBJECT_HANDLE, _out: *mut CK_BYTE, _out_len: *mut CK_ULONG);
    C_UnwrapKey(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _unwrapping_key: CK_OBJECT_HANDLE, _wrapped: *mut CK_BYTE, _wrapped_len: CK_ULONG, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG, _key: *mut CK_OBJECT_HANDLE);
    C_DeriveKey(_session: CK_SESSION_HANDLE, _mechanism: *mut CK_MECHANISM, _base_key: CK_OBJECT_HANDLE, _template: *mut CK_ATTRIBUTE, _count: CK_ULONG, _key: *mut CK_OBJECT_HANDLE);
    C_WaitForSlotEvent(_flags: CK_FLAGS, _slot: *mut CK_SLOT_ID, _reserved: *mut c_void);
}
