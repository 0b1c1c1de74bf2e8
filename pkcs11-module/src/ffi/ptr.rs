//! Reading the caller's pointers: every pointer an exported function touches goes through one of these, so a NULL
//! where the specification requires a value is `CKR_ARGUMENTS_BAD` everywhere, and the length conventions of
//! §5.2 (NULL buffer → length; short buffer → `CKR_BUFFER_TOO_SMALL` with the length) are written once.

use cryptoki_sys::CK_ULONG;

use crate::core::Output;
use crate::error::{Error, Result};

fn len(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad("length out of range"))
}

/// A required pointer to one value the caller reads back.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of one `T` for `'a`.
pub unsafe fn out<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T> {
    // SAFETY: the caller's contract: NULL (rejected here) or valid and unaliased for 'a.
    unsafe { p.as_mut() }.ok_or(Error::ArgumentsBad(what))
}

/// A required pointer to one value the function reads.
///
/// # Safety
/// `p` is NULL or valid for reads of one `T` for `'a`.
pub unsafe fn input<'a, T>(p: *const T, what: &'static str) -> Result<&'a T> {
    // SAFETY: the caller's contract: NULL (rejected here) or valid for reads for 'a.
    unsafe { p.as_ref() }.ok_or(Error::ArgumentsBad(what))
}

/// An input array: NULL is allowed only with a length of 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `n` values of `T` for `'a`.
pub unsafe fn slice<'a, T>(p: *const T, n: CK_ULONG, what: &'static str) -> Result<&'a [T]> {
    let n = len(n)?;
    if p.is_null() {
        return if n == 0 {
            Ok(&[])
        } else {
            Err(Error::ArgumentsBad(what))
        };
    }
    // SAFETY: p is non-NULL and, by the caller's contract, points at n readable values of T.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Copies `value` into the caller's buffer of `capacity` bytes.
///
/// # Safety
/// `p` is valid for writes of `capacity` bytes, and `value.len() <= capacity`.
pub unsafe fn copy_out(value: &[u8], p: *mut u8, capacity: usize) -> Result<()> {
    if p.is_null() || value.len() > capacity {
        return Err(Error::ArgumentsBad("output buffer"));
    }
    // SAFETY: p is non-NULL, writable for capacity >= value.len() bytes, and cannot overlap `value`, which the
    // module owns.
    unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), p, value.len()) };
    Ok(())
}

/// The capacity of an output buffer described by (`p`, `*p_len`): `None` for a length query (NULL `p`).
///
/// # Safety
/// `p_len` is NULL or valid for reads and writes of one `CK_ULONG`.
pub unsafe fn capacity(p: *const u8, p_len: *mut CK_ULONG) -> Result<Option<usize>> {
    // SAFETY: forwarded contract.
    let n = *unsafe { out(p_len, "NULL length pointer") }?;
    if p.is_null() {
        Ok(None)
    } else {
        len(n).map(Some)
    }
}

/// Answers a length-returning function (`C_Sign`, `C_SignFinal`) from the core's [`Output`].
///
/// # Safety
/// `p` is NULL or valid for writes of `*p_len` bytes; `p_len` is valid for reads and writes.
pub unsafe fn write_output(output: Output, p: *mut u8, p_len: *mut CK_ULONG) -> Result<()> {
    // SAFETY: forwarded contract.
    let p_len = unsafe { out(p_len, "NULL length pointer") }?;
    match output {
        Output::Length(n) => {
            *p_len = n as CK_ULONG;
            Ok(())
        }
        Output::TooSmall(n) => {
            *p_len = n as CK_ULONG;
            Err(Error::BufferTooSmall)
        }
        Output::Done(value) => {
            // SAFETY: the core produced `value` only after checking it fits the capacity read from *p_len.
            unsafe { copy_out(&value, p, len(*p_len)?) }?;
            *p_len = value.len() as CK_ULONG;
            Ok(())
        }
    }
}

/// Answers a list function (`C_GetSlotList`, `C_GetMechanismList`) by §5.2.
///
/// # Safety
/// `p` is NULL or valid for writes of `*p_count` values of `T`; `p_count` is NULL or valid for reads and writes.
pub unsafe fn write_list<T: Copy>(items: &[T], p: *mut T, p_count: *mut CK_ULONG) -> Result<()> {
    // SAFETY: forwarded contract.
    let count = unsafe { out(p_count, "NULL count pointer") }?;
    if p.is_null() {
        *count = items.len() as CK_ULONG;
        return Ok(());
    }
    if len(*count)? < items.len() {
        *count = items.len() as CK_ULONG;
        return Err(Error::BufferTooSmall);
    }
    // SAFETY: p is non-NULL and writable for *count >= items.len() values; `items` belongs to the module.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    *count = items.len() as CK_ULONG;
    Ok(())
}
