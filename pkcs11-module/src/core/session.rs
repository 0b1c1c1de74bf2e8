//! A session: its slot and mode, and the find and sign operations active in it.

use std::collections::VecDeque;

use cryptoki_sys::*;

use crate::core::sign::SignOperation;

#[derive(Debug)]
pub struct Session {
    pub read_write: bool,
    pub find: Option<VecDeque<CK_OBJECT_HANDLE>>,
    pub sign: Option<SignOperation>,
}

impl Session {
    pub fn new(read_write: bool) -> Self {
        Self {
            read_write,
            find: None,
            sign: None,
        }
    }

    /// `CK_SESSION_INFO.state` for this session, given the application's login state.
    pub fn state(&self, logged_in: bool) -> CK_STATE {
        match (self.read_write, logged_in) {
            (false, false) => CKS_RO_PUBLIC_SESSION,
            (false, true) => CKS_RO_USER_FUNCTIONS,
            (true, false) => CKS_RW_PUBLIC_SESSION,
            (true, true) => CKS_RW_USER_FUNCTIONS,
        }
    }

    /// Ends the operations that used the login's objects (at `C_Logout`).
    pub fn end_operations(&mut self) {
        self.find = None;
        self.sign = None;
    }
}
