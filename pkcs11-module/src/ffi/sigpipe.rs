//! SIGPIPE while the module talks to the gateway.
//!
//! A write to a connection the gateway (or a proxy in between) has reset raises SIGPIPE, whose default action ends
//! the process. A Rust program ignores SIGPIPE from its start, but this module lives in a C host (pkcs11-tool,
//! p11tool, a JVM) that may not, and the TLS stack writes with `writev`, which has no `MSG_NOSIGNAL`. So while a
//! function that talks to the gateway runs (`C_Login`, `C_Sign`, `C_SignFinal`), SIGPIPE is blocked on the calling
//! thread, where all of the module's network I/O happens (see `common::client`); the write then fails with EPIPE,
//! a network error the client retries or reports. A SIGPIPE the call raised is discarded before the thread's mask
//! is restored, the way libpq does it. A host that blocks SIGPIPE itself keeps its mask and its pending signal
//! untouched.

use std::mem::MaybeUninit;

/// Blocks SIGPIPE on this thread until dropped.
pub struct SigpipeBlocked {
    /// The thread's mask before, to restore; None when SIGPIPE was blocked already (nothing to undo).
    previous: Option<libc::sigset_t>,
    /// Whether a SIGPIPE was pending before the call: that one is the host's, not ours, and is left alone.
    pending_before: bool,
}

fn sigpipe_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given; sigaddset then adds a valid signal number to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

fn sigpipe_pending() -> bool {
    let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given when it returns 0; the set is read only then.
    unsafe {
        libc::sigpending(pending.as_mut_ptr()) == 0 && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
    }
}

impl SigpipeBlocked {
    pub fn new() -> Self {
        let block = sigpipe_set();
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both sets are valid for reading and writing; `previous` is filled when the call returns 0, and
        // read only then.
        let previous = unsafe {
            if libc::pthread_sigmask(libc::SIG_BLOCK, &block, previous.as_mut_ptr()) != 0 {
                None
            } else {
                let previous = previous.assume_init();
                (libc::sigismember(&previous, libc::SIGPIPE) != 1).then_some(previous)
            }
        };
        let pending_before = previous.is_some() && sigpipe_pending();
        Self {
            previous,
            pending_before,
        }
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        let Some(previous) = self.previous else {
            return;
        };
        if !self.pending_before && sigpipe_pending() {
            let set = sigpipe_set();
            let no_wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `set` and `no_wait` are valid for reading; a NULL siginfo is allowed. SIGPIPE is blocked, so
            // the pending one is taken here without waiting.
            while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &no_wait) } == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
        // SAFETY: `previous` is the mask pthread_sigmask returned; restoring it is what the host had.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write to a closed pipe while blocked: EPIPE, no signal delivered, none left pending, the mask as before.
    #[test]
    fn a_sigpipe_raised_while_blocked_is_discarded() {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: closing the read end we own.
        unsafe { libc::close(fds[0]) };
        {
            let _blocked = SigpipeBlocked::new();
            // SAFETY: writing one byte from a valid buffer to the write end we own.
            let written = unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
            assert_eq!(written, -1);
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPIPE));
            assert!(sigpipe_pending() || cfg!(not(target_os = "linux")));
        }
        assert!(!sigpipe_pending());
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: reading the current mask into a set valid for writing.
        let blocked = unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
            libc::sigismember(mask.as_ptr(), libc::SIGPIPE)
        };
        assert_eq!(blocked, 0, "SIGPIPE is unblocked again");
        // SAFETY: closing the write end we own.
        unsafe { libc::close(fds[1]) };
    }
}
