//! The one wrapper every exported function runs in: `catch_unwind`, the translation of the core's error into a
//! `CK_RV`, and logging of the outcome (routine outcomes such as a size probe at debug level, failures at warn).

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::{CKR_GENERAL_ERROR, CKR_OK, CK_RV};

use crate::error::Result;

/// Runs the body of `C_<name>`. A panic must not unwind into the host (cosign, a JVM): it becomes
/// `CKR_GENERAL_ERROR`.
pub fn guard(name: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            tracing::trace!(function = name, "CKR_OK");
            CKR_OK
        }
        Ok(Err(error)) => {
            if error.is_routine() {
                tracing::debug!(function = name, %error);
            } else {
                tracing::warn!(function = name, %error);
            }
            error.into()
        }
        Err(_) => {
            tracing::error!(function = name, "panicked; returning CKR_GENERAL_ERROR");
            CKR_GENERAL_ERROR
        }
    }
}

/// Defines an exported `C_*` function whose body returns `crate::error::Result<()>` and runs in [`guard`].
///
/// Every function first checks that the module is initialized in this process (`CKR_CRYPTOKI_NOT_INITIALIZED`
/// otherwise, also in a forked child that has not called `C_Initialize`); the two that may run before that
/// (`C_Initialize`, `C_GetFunctionList`) are declared `uninitialized fn`. The ones that talk to the gateway
/// (`C_Login`, `C_Sign`, `C_SignFinal`) are declared `network fn`: they run with SIGPIPE blocked (see `sigpipe`).
macro_rules! cryptoki_fn {
    ($(#[doc = $doc:literal])* network fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        cryptoki_fn! {
            $(#[doc = $doc])*
            fn $name($($arg: $ty),*) {
                let _sigpipe = $crate::ffi::sigpipe::SigpipeBlocked::new();
                $body
            }
        }
    };
    ($(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        cryptoki_fn! {
            $(#[doc = $doc])*
            uninitialized fn $name($($arg: $ty),*) {
                $crate::ffi::MODULE.check_initialized()?;
                $body
            }
        }
    };
    ($(#[doc = $doc:literal])* uninitialized fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[doc = $doc])*
        ///
        /// # Safety
        ///
        /// Every pointer argument is NULL or valid for the reads and writes the PKCS#11 v2.40 base specification
        /// describes for this function (buffers as long as their length arguments say).
        #[no_mangle]
        #[allow(non_snake_case)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> cryptoki_sys::CK_RV {
            $crate::ffi::guard::guard(stringify!($name), move || -> $crate::error::Result<()> { $body })
        }
    };
}
